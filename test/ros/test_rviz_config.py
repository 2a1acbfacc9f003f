"""rviz/memory.rviz shows what the nodes publish, on their topics, with QoS that matches."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from memory_node.ros.scene_memory_node import SceneMemoryNode

ROOT = Path(__file__).resolve().parents[2]


def displays() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "rviz" / "memory.rviz").read_text())
    return {d["Class"].split("/")[-1]: d for d in config["Visualization Manager"]["Displays"]}


def test_rviz_config_shows_the_node_topics_with_matching_qos(ros):
    node = ros.add(
        SceneMemoryNode(
            context=ros.context, parameter_overrides=[Parameter("features.mode", value="off")]
        )
    )
    shown = displays()
    assert {"MarkerArray", "Image", "Pose", "TF", "Grid"} <= set(shown)
    markers = shown["MarkerArray"]["Topic"]

    def endpoints() -> tuple[dict, dict]:
        """Return the node's own publishers and subscriptions by fully qualified topic."""
        pubs = {p.topic_name: p for p in node.publishers}
        subs = {s.topic_name: s for s in node.subscriptions}
        return pubs, subs

    wanted = {shown[d]["Topic"]["Value"] for d in ("Image", "Pose")}
    assert ros.wait_for(lambda: wanted <= set(endpoints()[1]), 60.0), endpoints()
    published, subscribed = endpoints()
    marker_pub = published[markers["Value"]]
    assert marker_pub.msg_type.__name__ == "MarkerArray"
    # a late RViz gets the latched markers only with transient local + reliable
    qos = marker_pub.qos_profile
    assert qos.durability.name.lower() == markers["Durability Policy"].replace(" ", "_").lower()
    assert qos.reliability.name.lower() == markers["Reliability Policy"].lower()
    assert subscribed[shown["Image"]["Topic"]["Value"]].msg_type.__name__ == "Image"
    assert subscribed[shown["Pose"]["Topic"]["Value"]].msg_type.__name__ == "PoseStamped"


def test_launch_file_starts_rviz_on_request():
    launch = pytest.importorskip(
        "launch", reason="ros2 launch is not on PyPI (it is on robots with ROS 2 from apt)"
    )
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "memory_launch", ROOT / "launch" / "memory.launch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = [
        e.name for e in description.entities if isinstance(e, launch.actions.DeclareLaunchArgument)
    ]
    assert "rviz" in names
