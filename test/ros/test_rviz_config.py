"""rviz/memory.rviz shows what the nodes publish, on their topics, with QoS that matches."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memory_node.ros.scene_memory_node import SceneMemoryNode

ROOT = Path(__file__).resolve().parents[2]


def displays() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "rviz" / "memory.rviz").read_text())
    return {d["Class"].split("/")[-1]: d for d in config["Visualization Manager"]["Displays"]}


def test_rviz_config_shows_the_node_topics_with_matching_qos(ros):
    node = ros.add(SceneMemoryNode(context=ros.context))
    shown = displays()
    assert {"MarkerArray", "Image", "Pose", "TF", "Grid"} <= set(shown)
    markers = shown["MarkerArray"]["Topic"]
    wanted = {shown[d]["Topic"]["Value"] for d in ("MarkerArray", "Image", "Pose")}

    def graph() -> tuple[dict, dict]:
        pubs = dict(node.get_publisher_names_and_types_by_node("scene_memory", "/"))
        subs = dict(node.get_subscriber_names_and_types_by_node("scene_memory", "/"))
        return pubs, subs

    # the ROS graph learns of the node's own endpoints asynchronously: wait for them
    assert ros.wait_for(lambda: wanted <= set(graph()[0]) | set(graph()[1]), 20.0), graph()
    published, subscribed = graph()
    assert published[markers["Value"]] == ["visualization_msgs/msg/MarkerArray"]
    # a late RViz gets the latched markers only with transient local + reliable
    (info,) = node.get_publishers_info_by_topic(markers["Value"])
    assert (
        info.qos_profile.durability.name.lower()
        == markers["Durability Policy"].replace(" ", "_").lower()
    )
    assert info.qos_profile.reliability.name.lower() == markers["Reliability Policy"].lower()
    assert subscribed[shown["Image"]["Topic"]["Value"]] == ["sensor_msgs/msg/Image"]
    assert subscribed[shown["Pose"]["Topic"]["Value"]] == ["geometry_msgs/msg/PoseStamped"]


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
