"""Where the camera pose of each frame comes from (``inputs.pose_source``).

* ``topic``: ``camera/pose`` (geometry_msgs/PoseStamped of the optical frame in ``map``),
  paired with the images by stamp like every other stream;
* ``odometry``: ``odom`` (nav_msgs/Odometry of the base), and
* ``base_pose``: ``base/pose`` (geometry_msgs/PoseStamped of the base): buffered, interpolated to
  each image stamp and composed with the static extrinsic ``pose.base_to_camera_*``
  (:mod:`memory_node.core.pose_buffer`); the odometry frame is taken as the map frame;
* ``tf``: ``map -> <image frame>`` looked up in TF at the image stamp (needs tf2_ros).

The same objects serve the node (whose subscriptions call :meth:`PoseSource.add`) and the bag
replay (which calls it for each recorded message), so both get the same poses.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry

from memory_node.core.pose_buffer import PoseBuffer, PoseConfig, extrinsic
from memory_node.core.types import InvalidInput
from memory_node.ros import conversions as conv

POSE_SOURCES = ("topic", "odometry", "base_pose", "tf")


class PoseSource:
    """The camera pose of a frame from the camera/pose message paired with it (``topic``).

    Attributes:
        stream: name of the synchronised stream that carries the pose ("" when none).
        topic: topic subscribed for poses ("" when none).
        msg_type: message class of ``topic``.
    """

    stream = "pose"
    topic = "camera/pose"
    msg_type: Any = PoseStamped

    def __init__(self, map_frame: str) -> None:
        self.map_frame = map_frame

    def add(self, msg: Any) -> None:
        """Take one message of ``topic`` that is not paired with the images (none here)."""

    def reset(self) -> None:
        """Forget buffered poses (none here)."""

    def ready(self, stamp: float) -> bool:
        """Tell whether a pose at ``stamp`` can be had without waiting for newer messages."""
        return True

    def camera_pose(self, items: dict[str, Any], stamp: float) -> np.ndarray:
        """(4, 4) map_T_camera of a frame; raises InvalidInput when there is none."""
        pose: PoseStamped = items["pose"]
        if pose.header.frame_id not in ("", self.map_frame):
            raise InvalidInput(
                f"camera/pose is in frame {pose.header.frame_id!r}, expected {self.map_frame!r}"
            )
        return conv.pose_to_matrix(pose.pose)


class BasePoseSource(PoseSource):
    """Buffered base poses (Odometry or PoseStamped) composed with the camera extrinsic."""

    stream = ""

    def __init__(self, kind: str, config: PoseConfig, map_frame: str) -> None:
        super().__init__(map_frame)
        self.base_T_camera = extrinsic(config)  # raises InvalidInput for a bad extrinsic
        if kind == "odometry":
            self.topic, self.msg_type, name = "odom", Odometry, "odometry"
        else:
            self.topic, self.msg_type, name = "base/pose", PoseStamped, "base pose"
        self.buffer = PoseBuffer(config.max_age_s, config.history_s, name)
        self._lock = threading.Lock()  # add() runs in a subscription, camera_pose() in ingest

    def add(self, msg: Any) -> None:
        """Buffer one base pose; raises InvalidInput for bad values or stamps going backwards."""
        pose = msg.pose.pose if isinstance(msg, Odometry) else msg.pose
        T = conv.pose_to_matrix(pose)
        with self._lock:
            self.buffer.add(conv.time_to_sec(msg.header.stamp), T)

    def reset(self) -> None:
        """Forget the buffered poses (after the clock went backwards)."""
        with self._lock:
            self.buffer.clear()

    def ready(self, stamp: float) -> bool:
        """Tell whether a base pose at or after ``stamp`` arrived (interpolation can be done)."""
        with self._lock:
            newest = self.buffer.newest_stamp
        return newest is not None and newest >= stamp

    def camera_pose(self, items: dict[str, Any], stamp: float) -> np.ndarray:
        """(4, 4) map_T_camera = map_T_base(stamp) @ base_T_camera."""
        with self._lock:
            map_T_base = self.buffer.lookup(stamp)
        return map_T_base @ self.base_T_camera


class TfPoseSource(PoseSource):
    """map -> camera optical frame from TF at the image stamp."""

    stream = ""
    topic = ""

    def __init__(self, node: Any, camera_frame: str, map_frame: str) -> None:
        super().__init__(map_frame)
        try:
            import tf2_ros
        except ImportError as err:
            raise InvalidInput(
                "inputs.pose_source is 'tf' but tf2_ros is not installed "
                "(apt install ros-jazzy-tf2-ros); use 'topic', 'odometry' or 'base_pose'"
            ) from err
        self.camera_frame = camera_frame
        self.tf_buffer = tf2_ros.Buffer()
        self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, node)

    def camera_pose(self, items: dict[str, Any], stamp: float) -> np.ndarray:
        """(4, 4) map_T_camera looked up in TF at the image stamp."""
        import rclpy.time

        image = items["rgb"]
        camera = self.camera_frame or image.header.frame_id
        try:
            tf = self.tf_buffer.lookup_transform(
                self.map_frame, camera, rclpy.time.Time.from_msg(image.header.stamp)
            )
        except Exception as err:  # tf2 raises several exception types; all mean "no pose"
            raise InvalidInput(f"no TF from {camera} to map at the image stamp: {err}") from err
        t, q = tf.transform.translation, tf.transform.rotation
        pose = PoseStamped().pose
        pose.position.x, pose.position.y, pose.position.z = t.x, t.y, t.z
        pose.orientation = q
        return conv.pose_to_matrix(pose)


def make_pose_source(
    kind: str, config: PoseConfig, map_frame: str, node: Any = None, camera_frame: str = ""
) -> PoseSource:
    """Build the pose source named by ``inputs.pose_source``.

    Raises:
        InvalidInput: an unknown kind, a bad extrinsic, or tf without tf2_ros (message says
            which).
    """
    if kind == "topic":
        return PoseSource(map_frame)
    if kind in ("odometry", "base_pose"):
        return BasePoseSource(kind, config, map_frame)
    if kind == "tf":
        return TfPoseSource(node, camera_frame, map_frame)
    raise InvalidInput(f"unknown pose source {kind!r}; one of {', '.join(POSE_SOURCES)}")
