"""The agent's memory services over ROS 2: the real ``scene_memory`` node's services and topics.

Queries go through ``~/query_objects``, ``~/get_changes`` and ``~/get_scene_graph`` (via
:class:`memory_node.ros.client.MemoryClient`); the frames the agent sees are published on the
node's camera topics (``rgb/image``, ``depth/image``, ``rgb/camera_info``, ``camera/pose``,
``instance/image``, ``instance/labels``), as a robot's camera driver would. Answers are turned
back into core types, so the agent cannot tell this from :class:`CoreServices`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from memory_interfaces.msg import InstanceLabels
from memory_node.core.types import ChangeEvent, ChangeKind, Frame, SceneObject
from memory_node.ros import conversions as conv
from memory_node.ros.client import MemoryClient


class ServiceError(RuntimeError):
    """A memory service answered success = false."""


class RosServices:
    """The three services and the camera topics of a ``scene_memory`` node (see module doc).

    Args:
        client: a MemoryClient (its node also publishes the frames).
        topic_prefix: namespace of the camera topics ('' = the client's namespace).
    """

    def __init__(self, client: MemoryClient, topic_prefix: str = "") -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.round_trips_ms: dict[str, list[float]] = {}  # service -> each call's round trip
        node = client.node
        p = topic_prefix.rstrip("/") + "/" if topic_prefix else ""
        self._pubs = {
            "rgb": node.create_publisher(Image, p + "rgb/image", 10),
            "depth": node.create_publisher(Image, p + "depth/image", 10),
            "info": node.create_publisher(CameraInfo, p + "rgb/camera_info", 10),
            "pose": node.create_publisher(PoseStamped, p + "camera/pose", 10),
            "instance": node.create_publisher(Image, p + "instance/image", 10),
            "labels": node.create_publisher(InstanceLabels, p + "instance/labels", 10),
        }
        self.frames_published = 0

    def _call(self, name: str, fn: Callable[..., Any], **request: Any) -> Any:
        """Call ``fn`` (a client method), counting the call and timing its round trip."""
        self.calls[name] += 1
        t0 = time.perf_counter()
        try:
            return fn(**request)
        finally:
            self.round_trips_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)

    def query_objects(
        self, text: str = "", near: np.ndarray | None = None, radius: float = 0.0, k: int = 0
    ) -> list[SceneObject]:
        """``~/query_objects`` -> core objects, best first."""
        point = None if near is None else tuple(float(v) for v in np.asarray(near)[:3])
        res = self._call(
            "query_objects", self.client.query, text=text, near=point, radius=radius, k=k
        )
        if not res.success:
            raise ServiceError(f"query_objects failed: {res.message}")
        out = []
        for m in res.objects:
            p = m.pose.position
            out.append(
                SceneObject(
                    id=m.id,
                    label=m.label,
                    label_confidence=float(m.label_confidence),
                    center=np.array([p.x, p.y, p.z]),
                    size=np.array([m.size.x, m.size.y, m.size.z]),
                    state=m.state,
                    zone_id=m.zone_id,
                    first_seen=conv.time_to_sec(m.first_seen),
                    last_seen=conv.time_to_sec(m.last_seen),
                    observations=int(m.observations),
                    present=bool(getattr(m, "present", True)),
                )
            )
        return out

    def get_changes(self, since: float = -math.inf) -> list[ChangeEvent]:
        """``~/get_changes`` -> core change events, newest first."""
        since_s = max(0.0, since) if math.isfinite(since) else 0.0
        res = self._call("get_changes", self.client.changes, since_s=since_s)
        if not res.success:
            raise ServiceError(f"get_changes failed: {res.message}")
        return [
            ChangeEvent(
                ChangeKind(int(c.kind)),
                c.object_id,
                c.label,
                conv.time_to_sec(c.stamp),
                np.array([c.old_position.x, c.old_position.y, c.old_position.z]),
                np.array([c.new_position.x, c.new_position.y, c.new_position.z]),
                c.old_state,
                c.new_state,
            )
            for c in res.changes
        ]

    def get_scene_graph(self, focus: str = "", max_tokens: int = 0) -> tuple[str, int]:
        """``~/get_scene_graph`` -> (text, token count)."""
        res = self._call(
            "get_scene_graph", self.client.scene_graph, focus=focus, max_tokens=max_tokens
        )
        if not res.success:
            raise ServiceError(f"get_scene_graph failed: {res.message}")
        return res.text, int(res.token_count)

    def ingest(self, frame: Frame) -> None:
        """Publish ``frame`` on the camera topics (one stamp for all of them)."""
        header = Header(frame_id="camera_optical_frame", stamp=conv.sec_to_time(frame.stamp))
        h, w = frame.depth.shape
        pose = PoseStamped(header=Header(frame_id="map", stamp=header.stamp))
        pose.pose = conv.matrix_to_pose(frame.map_T_camera)
        self._pubs["info"].publish(conv.camera_info_of(frame.K, w, h, header))
        self._pubs["pose"].publish(pose)
        self._pubs["depth"].publish(conv.depth_to_image(frame.depth, header))
        self._pubs["rgb"].publish(conv.rgb_to_image(frame.rgb, header))
        if frame.instance is not None and frame.instance_labels is not None:
            self._pubs["instance"].publish(conv.instances_to_image(frame.instance, header))
            self._pubs["labels"].publish(
                conv.labels_msg(frame.instance_labels, frame.instance_states, header)
            )
        self.frames_published += 1
