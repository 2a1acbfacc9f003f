"""``memory_viewer``: a node that shows the running memory in Rerun (no RViz needed).

Subscribes to what ``scene_memory`` publishes (``scene_memory/scene_graph``,
``scene_memory/changes``) and to the camera it listens to (``rgb/image``, ``rgb/camera_info``,
``camera/pose``), and logs them with :class:`~memory_node.viz.rerun_log.RerunLogger`: to an
``.rrd`` file, or live to a Rerun viewer. The scene_memory node itself is not touched.

    memory_viewer --rrd memory.rrd            # or --connect rerun+http://HOST:9876/proxy
    memory_bringup --viewer rerun --rrd memory.rrd   # the same, inside the bringup process

The recording is finalised when the node closes (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from memory_interfaces.msg import ObjectChange, SceneGraph
from memory_node.core import types as core
from memory_node.core.types import InvalidInput
from memory_node.ros import conversions as conv
from memory_node.viz.rerun_log import RerunLogger


def graph_from_msg(
    graph: SceneGraph,
) -> tuple[list[core.SceneObject], list[core.Relation], list[core.Zone]]:
    """Core objects, relations and zones of a SceneGraph message (no points or features)."""

    def vec(v: Any) -> np.ndarray:
        return np.array([v.x, v.y, v.z], np.float64)

    objects = [
        core.SceneObject(
            id=o.id,
            label=o.label,
            label_confidence=float(o.label_confidence),
            center=vec(o.pose.position),
            size=vec(o.size),
            state=o.state,
            zone_id=o.zone_id,
            first_seen=conv.time_to_sec(o.first_seen),
            last_seen=conv.time_to_sec(o.last_seen),
            observations=int(o.observations),
            present=bool(o.present),
        )
        for o in graph.objects
    ]
    relations = [
        core.Relation(r.subject_id, r.predicate, r.object_id, float(r.confidence))
        for r in graph.relations
    ]
    zones = [
        core.Zone(z.id, z.label, vec(z.center), vec(z.size), list(z.object_ids))
        for z in graph.zones
    ]
    return objects, relations, zones


def change_from_msg(msg: ObjectChange) -> core.ChangeEvent:
    """Core change event of an ObjectChange message."""
    return core.ChangeEvent(
        kind=core.ChangeKind(msg.kind),
        object_id=msg.object_id,
        label=msg.label,
        stamp=conv.time_to_sec(msg.stamp),
        old_position=np.array([msg.old_position.x, msg.old_position.y, msg.old_position.z]),
        new_position=np.array([msg.new_position.x, msg.new_position.y, msg.new_position.z]),
        old_state=msg.old_state,
        new_state=msg.new_state,
    )


class RerunViewerNode(Node):
    """Logs the memory's topics and the camera to Rerun; see the module docstring."""

    def __init__(
        self,
        logger: RerunLogger,
        memory_node: str = "scene_memory",
        node_name: str = "memory_viewer",
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.logger = logger
        self.closed = False
        self._poses: OrderedDict[float, np.ndarray] = OrderedDict()  # stamp -> map_T_camera
        self._info: CameraInfo | None = None
        latched = QoSProfile(
            depth=1,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        camera = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_AVAILABLE)
        self.create_subscription(SceneGraph, f"{memory_node}/scene_graph", self._on_graph, latched)
        self.create_subscription(ObjectChange, f"{memory_node}/changes", self._on_change, 50)
        self.create_subscription(Image, "rgb/image", self._on_image, camera)
        self.create_subscription(CameraInfo, "rgb/camera_info", self._on_info, camera)
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, camera)

    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            self._poses[conv.time_to_sec(msg.header.stamp)] = conv.pose_to_matrix(msg.pose)
        except InvalidInput:
            return
        while len(self._poses) > 50:
            self._poses.popitem(last=False)

    def _on_image(self, msg: Image) -> None:
        if self.closed:
            return
        stamp = conv.time_to_sec(msg.header.stamp)
        # the pose of this stamp, else the latest (a pose that comes another way), else none
        pose = self._poses.get(stamp, next(reversed(self._poses.values()), None))
        try:
            K = conv.camera_info_to_K(self._info) if self._info is not None else None
            wanted = self.logger.frames % self.logger.image_every == 0
            rgb = conv.image_to_rgb(msg) if wanted else None
        except InvalidInput as err:
            self.get_logger().warning(f"image not logged: {err}", throttle_duration_sec=5.0)
            return
        self.logger.log_camera(stamp, rgb, K, pose)

    def _on_graph(self, msg: SceneGraph) -> None:
        if self.closed:
            return
        objects, relations, zones = graph_from_msg(msg)
        # on the frames' clock, like the camera: the newest observation in the graph
        stamp = max([o.last_seen for o in objects], default=conv.time_to_sec(msg.header.stamp))
        self.logger.log_graph(stamp, objects, relations, zones)

    def _on_change(self, msg: ObjectChange) -> None:
        if not self.closed:
            self.logger.log_changes([change_from_msg(msg)])

    def close(self) -> None:
        """Finalise the recording (the .rrd file appears now); safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.logger.close(keep=True)
        self.get_logger().info(
            f"rerun: {self.logger.frames} frames, {self.logger.events} change events logged"
            + (f" to {self.logger.save_path}" if self.logger.save_path else "")
        )


def add_viewer_arguments(parser: argparse.ArgumentParser, switch: bool = True) -> None:
    """Add --viewer (with ``switch``), --rrd, --connect, --image-every to a command line."""
    if switch:
        parser.add_argument(
            "--viewer", default="none", choices=["none", "rerun"], help="log the memory to Rerun"
        )
    parser.add_argument("--rrd", default="", help="--viewer rerun: write this .rrd file")
    parser.add_argument(
        "--connect", default="", help="--viewer rerun: stream to a viewer at this gRPC URL"
    )
    parser.add_argument("--image-every", type=int, default=1, help="log every n-th image")


def logger_from_args(args: argparse.Namespace) -> RerunLogger | None:
    """Return the RerunLogger the viewer arguments ask for (None for --viewer none)."""
    if getattr(args, "viewer", "rerun") != "rerun":
        return None
    if not (args.rrd or args.connect):
        raise SystemExit("Rerun logging needs --rrd FILE or --connect URL")
    return RerunLogger(save_path=args.rrd, connect=args.connect, image_every=args.image_every)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``memory_viewer``: log until Ctrl-C."""
    from memory_node.ros.spin import spin_nodes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_viewer_arguments(parser, switch=False)
    parser.add_argument("--namespace", default="", help="namespace of the memory's topics")
    args, ros_args = parser.parse_known_args(argv)
    logger = logger_from_args(args)
    if logger is None:
        raise SystemExit("memory_viewer: nothing to log to")
    rclpy.init(args=ros_args)
    spin_nodes([RerunViewerNode(logger, namespace=args.namespace)])


if __name__ == "__main__":
    main()
