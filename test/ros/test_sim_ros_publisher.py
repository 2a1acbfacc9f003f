"""The sim_publisher node in-process: topics, shared stamps, encodings, parameters."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from memory_interfaces.msg import InstanceLabels
from memory_sim.ros_publisher import SimPublisher, publisher_specs


def _stamp(msg: Any) -> float:
    s = msg.clock if isinstance(msg, Clock) else msg.header.stamp
    return s.sec + 1e-9 * s.nanosec


def test_publisher_declares_and_publishes_one_stamp_per_frame(tmp_path: Path) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    gt = tmp_path / "gt.json"
    episode = tmp_path / "short.yaml"
    episode.write_text(
        "name: short\n"
        "scene: {procedural: {seed: 1, rooms_x: 2, rooms_y: 1, objects_per_room: 2}}\n"
        "segments: [{spin: {turns: 0.5}}, {hold: {duration_s: 0.5}}]\n"
    )
    overrides = [
        Parameter("episode_path", value=str(episode)),
        Parameter("camera.width_px", value=32),
        Parameter("camera.height_px", value=24),
        Parameter("rate_hz", value=20.0),
        Parameter("realtime_factor", value=4.0),  # 12.5 ms per frame: no queue overflow
        Parameter("loop", value=False),
        Parameter("ground_truth_path", value=str(gt)),
        Parameter("noise.enabled", value=False),
    ]
    node = SimPublisher(context=context, parameter_overrides=overrides)
    listener = rclpy.create_node("listener", context=context)
    got: dict[str, list[Any]] = defaultdict(list)
    lock = threading.Lock()

    def keep(topic: str) -> Any:
        def cb(msg: Any) -> None:
            with lock:
                got[topic].append(msg)

        return cb

    for msg_type, topic in [
        (Image, "rgb/image"), (Image, "depth/image"), (CameraInfo, "rgb/camera_info"),
        (PoseStamped, "camera/pose"), (Image, "instance/image"),
        (InstanceLabels, "instance/labels"), (Clock, "/clock"),
    ]:  # fmt: skip
        listener.create_subscription(msg_type, topic, keep(topic), qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(listener)
    try:
        for spec in publisher_specs():
            assert node.has_parameter(spec.name), spec.name
        descriptor = node.describe_parameter("camera.fov_deg")
        assert "field of view" in descriptor.description
        end = time.monotonic() + 60.0
        while time.monotonic() < end and not node.finished:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(20):  # deliver what is still queued
            executor.spin_once(timeout_sec=0.01)
        assert node.finished and gt.is_file()
        frame_count = node.runner.frame_count
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        rclpy.shutdown(context=context)
    with lock:
        assert frame_count == 70  # half a turn at 60 deg/s (3 s) + 0.5 s hold, at 20 Hz
        assert len(got["camera/pose"]) >= 0.5 * frame_count
        grid = {round(0.05 * k, 6) for k in range(1, frame_count + 1)}
        common = None
        for topic in ("camera/pose", "rgb/image", "depth/image", "rgb/camera_info",
                      "instance/image", "instance/labels", "/clock"):  # fmt: skip
            stamps = {round(_stamp(m), 6) for m in got[topic]}
            assert len(stamps) >= 0.5 * frame_count, topic
            assert stamps <= grid, topic  # every stamp is a frame's sim time
            common = stamps if common is None else common & stamps
        # the same frames arrive on every topic with the same stamp
        assert common is not None and len(common) >= 0.5 * frame_count
        pose_stamps = {_stamp(m) for m in got["camera/pose"]}
        depth = got["depth/image"][-1]
        assert (depth.encoding, depth.width, depth.height, depth.step) == ("32FC1", 32, 24, 128)
        values = np.frombuffer(bytes(depth.data), np.float32)
        assert np.all(np.isfinite(values)) and values.max() > 0
        rgb = got["rgb/image"][-1]
        assert rgb.encoding == "rgb8" and rgb.step == 96
        inst = got["instance/image"][-1]
        assert inst.encoding == "32SC1"
        ids = set(np.frombuffer(bytes(inst.data), np.int32).tolist()) - {0}
        labels = next(m for m in got["instance/labels"] if _stamp(m) == _stamp(inst))
        assert ids <= set(labels.instance_ids)
        assert len(labels.labels) == len(labels.scores) == len(labels.states)
        info = got["rgb/camera_info"][-1]
        assert info.k[0] == pytest.approx(16 / np.tan(np.radians(69.0) / 2))
        pose = got["camera/pose"][-1]
        assert pose.header.frame_id == "map"
        q = pose.pose.orientation
        assert np.linalg.norm([q.x, q.y, q.z, q.w]) == pytest.approx(1.0)
        assert min(pose_stamps) == pytest.approx(0.05)
