"""The ``scene_memory`` node: long-term scene-graph memory and short-term object-state memory.

Inputs (sensor-data QoS, remappable): ``rgb/image``, ``depth/image``, ``rgb/camera_info``,
``camera/pose`` and, with ``inputs.use_masks``, ``instance/image`` + ``instance/labels``.
Messages of one observation are paired by header stamp (``sync.slop_s``), never by arrival.
Outputs: ``~/scene_graph`` (reliable, transient local), ``~/markers``, ``~/changes``.
Services: ``~/query_objects``, ``~/get_scene_graph``, ``~/get_changes``, ``~/save``, ``~/load``.

Concurrency: subscriptions run in one mutually-exclusive callback group and only decode and pair
messages; a worker thread ingests the newest complete frame (older pending frames are dropped
when it is behind); services and the publish timer run in a second group. One lock guards the
core, so a service call waits at most one frame's ingest.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from memory_interfaces.msg import InstanceLabels, ObjectChange, SceneGraph
from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    QueryObjects,
    SaveMemory,
)
from memory_node.core.config import flatten, param
from memory_node.core.pose_buffer import PoseConfig
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.stamp_guard import check_not_ahead
from memory_node.core.sync import Bundle, StampSynchronizer, SyncConfig
from memory_node.core.types import Frame, InvalidInput, QueryRequest
from memory_node.ros import conversions as conv
from memory_node.ros.lifecycle_guard import refuse_invalid_transitions
from memory_node.ros.params import declare_config, reject_runtime_changes
from memory_node.ros.pose_source import POSE_SOURCES, PoseSource, make_pose_source


@dataclass
class InputConfig:
    """Which inputs the node waits for."""

    use_masks: bool = param(
        True,
        "Wait for instance/image + instance/labels with each frame (given-mask segmentation). "
        "Set false for cameras without a segmenter (geometric segmenter).",
    )
    pose_source: str = param(
        "topic",
        "Where the camera pose comes from: topic = camera/pose (PoseStamped of the optical frame "
        "in map, paired by stamp); odometry = odom (nav_msgs/Odometry of the base) or "
        "base_pose = base/pose (PoseStamped of the base), interpolated to the image stamp and "
        "composed with pose.base_to_camera_*; tf = map -> camera optical frame at the image "
        "stamp (needs tf2_ros).",
        choices=POSE_SOURCES,
    )
    pair_camera_info: bool = param(
        True,
        "Pair rgb/camera_info by stamp like the images (false: use the latest camera_info "
        "received, for drivers that publish it rarely or latched).",
    )
    qos_reliability: str = param(
        "best_effort",
        "Reliability of the camera subscriptions: best_effort (sensor-data QoS, matches every "
        "driver; large images may lose frames under load) or reliable (every frame arrives; "
        "needs reliable publishers, such as sim_publisher).",
        choices=("best_effort", "reliable"),
    )
    qos_depth: int = param(
        5, "Queue depth of each camera subscription.", min_value=1, max_value=100
    )
    camera_frame: str = param(
        "", "Optical frame looked up in TF when pose_source is tf ('' = the image's frame_id)."
    )


@dataclass
class PublishConfig:
    """What the node publishes and how often."""

    frame_id: str = param("map", "Frame of the published scene graph and markers.")
    graph_period_s: float = param(
        1.0,
        "Period of ~/scene_graph and ~/markers, in seconds; published only after a change.",
        min_value=0.05,
        max_value=3600.0,
    )
    markers: bool = param(True, "Publish RViz markers on ~/markers.")


@dataclass
class PersistenceConfig:
    """Loading at start-up and saving on the way."""

    load_path: str = param("", "SQLite memory file loaded at configure ('' = start empty).")
    autosave_path: str = param(
        "", "SQLite file written every autosave_period_s and at shutdown ('' = never)."
    )
    autosave_period_s: float = param(
        60.0,
        "Autosave period in seconds (0 = only at shutdown).",
        min_value=0.0,
        max_value=86400.0,
    )


@dataclass
class FleetSyncConfig:
    """Pushing this robot's long-term objects to the fleet memory (see fleet_memory)."""

    url: str = param(
        "",
        "Fleet store to push to ('' = no fleet): sqlite:///path/fleet.db or "
        "postgresql://user:password@host:port/db. Local memory never depends on it.",
    )
    robot_id: str = param("", "This robot's id in the fleet ('' = the node's namespace).")
    sync_period_s: float = param(
        2.0,
        "Period of pushing changed objects (kept pending while the store is down), seconds.",
        min_value=0.1,
        max_value=3600.0,
    )


@dataclass
class SceneNodeConfig:
    """Node-level parameters of scene_memory (the core's parameters are declared beside)."""

    inputs: InputConfig = field(default_factory=InputConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    fleet: FleetSyncConfig = field(default_factory=FleetSyncConfig)


class _Throttle:
    """Log a message at most once per period per key."""

    def __init__(self, period_s: float = 5.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def __call__(self, key: str, log: Callable[[str], Any], text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.period_s:
            self._last[key] = now
            log(text)


class SceneMemoryNode(LifecycleNode):
    """Thin adapter between ROS topics/services and :class:`SceneMemory`."""

    def __init__(self, node_name: str = "scene_memory", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameter(
            "autostart",
            True,
            ParameterDescriptor(description="Configure and activate the node at start-up."),
        )
        self.node_config = declare_config(self, SceneNodeConfig)
        self.memory_config = declare_config(self, SceneMemoryConfig)
        reject_runtime_changes(self, flatten(SceneNodeConfig()) + flatten(SceneMemoryConfig()))
        self.memory: SceneMemory | None = None
        self._lock = threading.Lock()  # guards self.memory
        self._pending: Bundle | None = None
        self._pending_cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self._running = False
        self._closed = False
        self._version = 0
        self._published_version = -1
        self._last_save = time.monotonic()
        self._last_fleet_push = 0.0
        self._fleet: Any = None  # FleetSync, made at the first push
        self._throttle = _Throttle()
        self.counters: dict[str, int] = {
            "frames_received": 0,
            "frames_ingested": 0,
            "frames_dropped": 0,
            "frames_behind": 0,
        }
        self._sync: StampSynchronizer | None = None
        self._camera_info: CameraInfo | None = None
        self._pose: PoseSource | None = None
        self._subs: list[Any] = []
        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        latched = QoSProfile(
            depth=1,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._graph_pub = self.create_publisher(SceneGraph, "~/scene_graph", latched)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", latched)
        self._change_pub = self.create_publisher(ObjectChange, "~/changes", 50)
        g = self._service_group
        self.create_service(QueryObjects, "~/query_objects", self._on_query, callback_group=g)
        self.create_service(GetSceneGraph, "~/get_scene_graph", self._on_graph, callback_group=g)
        self.create_service(GetObjectChanges, "~/get_changes", self._on_changes, callback_group=g)
        self.create_service(SaveMemory, "~/save", self._on_save, callback_group=g)
        self.create_service(LoadMemory, "~/load", self._on_load, callback_group=g)
        self.create_timer(
            self.node_config.publish.graph_period_s, self._on_publish_timer, callback_group=g
        )
        refuse_invalid_transitions(self)
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            self.trigger_activate()

    # --- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the memory; load ``persistence.load_path`` when set."""
        try:
            memory = SceneMemory(self.memory_config)
        except Exception as err:  # any failure to build is reported, not raised
            self.get_logger().error(f"cannot build the scene memory: {err}")
            return TransitionCallbackReturn.FAILURE
        path = self.node_config.persistence.load_path
        if path:
            try:
                memory.load(path)
                self.get_logger().info(f"loaded {len(memory.objects)} objects from {path}")
            except InvalidInput as err:
                self.get_logger().error(f"cannot load {path}: {err}; starting empty")
        with self._lock:
            self.memory = memory
            self._version += 1
        self.get_logger().info("scene memory configured")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera streams and start the ingest worker."""
        cfg = self.node_config
        try:
            self._pose = pose = make_pose_source(
                cfg.inputs.pose_source,
                cfg.pose,
                cfg.publish.frame_id,
                self,
                cfg.inputs.camera_frame,
            )
        except InvalidInput as err:
            self.get_logger().error(str(err))
            return TransitionCallbackReturn.FAILURE
        streams = ["rgb", "depth"] + ([pose.stream] if pose.stream else [])
        if cfg.inputs.use_masks:
            streams += ["instance", "labels"]
        if cfg.inputs.pair_camera_info:
            streams.append("info")
        self._sync = StampSynchronizer(streams, cfg.sync)
        qos = QoSProfile(
            depth=cfg.inputs.qos_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE
            if cfg.inputs.qos_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )
        grp = self._sensor_group

        def sub(msg_type: Any, topic: str, stream: str) -> None:
            self._subs.append(
                self.create_subscription(
                    msg_type, topic, lambda m: self._on_stream(stream, m), qos, callback_group=grp
                )
            )

        sub(Image, "rgb/image", "rgb")
        sub(Image, "depth/image", "depth")
        if pose.stream:
            sub(pose.msg_type, pose.topic, pose.stream)
        elif pose.topic:
            self._subs.append(
                self.create_subscription(
                    pose.msg_type, pose.topic, self._on_base_pose, qos, callback_group=grp
                )
            )
        if cfg.inputs.use_masks:
            sub(Image, "instance/image", "instance")
            sub(InstanceLabels, "instance/labels", "labels")
        if cfg.inputs.pair_camera_info:
            sub(CameraInfo, "rgb/camera_info", "info")
        else:
            self._subs.append(
                self.create_subscription(
                    CameraInfo, "rgb/camera_info", self._on_camera_info, qos, callback_group=grp
                )
            )
        with self._lock:
            if self.memory is not None:
                self.memory.reset_stamps()  # the streams restart: earlier stamps are fine
        self._running = True
        self._worker = threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)
        self._worker.start()
        self.get_logger().info(f"scene memory active; pairing {streams} by stamp")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop ingesting (memory and services stay)."""
        self._stop_ingest()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the memory."""
        with self._lock:
            self.memory = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop ingesting and autosave (see :meth:`close`)."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop ingesting, autosave, and log how many frames were used; safe to call twice.

        Called by the shutdown transition and by the process on its way out (Ctrl-C shuts the
        ROS context down before any transition can run).
        """
        if self._closed:
            return
        self._closed = True
        self._stop_ingest()
        self._autosave(force=True)
        self._push_fleet(force=True)
        dropped = dict(self._sync.dropped) if self._sync is not None else {}
        self.get_logger().info(f"frames: {self.counters}; unpaired messages: {dropped}")

    def _stop_ingest(self) -> None:
        self._running = False
        with self._pending_cv:
            self._pending_cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []

    # --- inputs ---------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_base_pose(self, msg: Any) -> None:
        pose = self._pose
        if pose is None:
            return
        try:
            pose.add(msg)
        except InvalidInput as err:
            log = self.get_logger().error
            if "backwards" not in str(err):
                self._throttle("base pose", log, f"base pose refused: {err}")
                return
            log(f"{err}; the clock was reset: earlier base poses are forgotten")
            pose.reset()
            pose.add(msg)

    def _on_stream(self, stream: str, msg: Any) -> None:
        sync = self._sync
        if sync is None:
            return
        if stream == "rgb":
            self.counters["frames_received"] += 1
        stamp = self._admit_stamp(stream, msg.header.stamp, sync)
        if stamp is None:
            return
        bundle = sync.add(stream, stamp, msg)
        if bundle is None:
            return
        with self._pending_cv:
            if self._pending is not None:
                self.counters["frames_behind"] += 1
            self._pending = bundle
            self._pending_cv.notify()

    def _admit_stamp(self, stream: str, t: Any, sync: StampSynchronizer) -> float | None:
        """Return the message's stamp in seconds, or None when it is refused (see stamp_guard).

        Refuses malformed stamps (nanosec >= 1e9) and stamps too far ahead of the node's clock;
        resets the synchronizer on a clock jump back, so ingest never stays stopped.
        """
        cfg = self.memory_config.stamps
        try:
            if not 0 <= int(t.nanosec) < 1_000_000_000:
                raise InvalidInput(f"malformed stamp: nanosec = {t.nanosec} is not below 1e9")
            stamp = conv.time_to_sec(t)
            now = self.get_clock().now().nanoseconds * 1e-9
            check_not_ahead(stamp, now, cfg.max_future_s)
        except InvalidInput as err:
            if stream == "rgb":
                self._drop(str(err))
            return None
        if sync.last_emitted - stamp > cfg.max_jump_back_s:
            self.get_logger().warning(
                f"clock jumped back from {sync.last_emitted:.3f} to {stamp:.3f} s on {stream}: "
                "restarting the stamp pairing"
            )
            sync.reset()
        return stamp

    def _drop(self, reason: str) -> None:
        self.counters["frames_dropped"] += 1
        self._throttle(reason, self.get_logger().warning, f"dropped a frame: {reason}")

    def _bundle_to_frame(self, bundle: Bundle) -> Frame:
        items = bundle.items
        if self._pose is None:
            raise InvalidInput("scene_memory is not active")
        map_T_camera = self._pose.camera_pose(items, bundle.stamp)
        return conv.frame_of(
            bundle.stamp, items, items.get("info", self._camera_info), map_T_camera
        )

    def _ingest_loop(self) -> None:
        while self._running:
            with self._pending_cv:
                while self._pending is None and self._running:
                    self._pending_cv.wait(timeout=0.5)
                bundle, self._pending = self._pending, None
            if bundle is None:
                continue
            self._ingest(bundle)

    def _ingest(self, bundle: Bundle) -> None:
        pose = self._pose
        if pose is not None and not pose.ready(bundle.stamp):
            # the base pose after the image stamp makes interpolation possible: wait for it a
            # little (max_age_s); past that the newest pose is held or the frame refused
            deadline = time.monotonic() + self.node_config.pose.max_age_s
            while self._running and not pose.ready(bundle.stamp) and time.monotonic() < deadline:
                time.sleep(0.002)
        try:
            frame = self._bundle_to_frame(bundle)
            with self._lock:
                if self.memory is None:
                    return
                self.memory.ingest(frame)
                events = self.memory.drain_events()
                self._version += 1
        except InvalidInput as err:
            self._drop(str(err))
            return
        except Exception as err:  # a bad frame must never kill the node
            self._drop(f"internal error: {err}")
            self.get_logger().error(traceback.format_exc())
            return
        self.counters["frames_ingested"] += 1
        for event in events:
            self._change_pub.publish(conv.change_to_msg(event))

    # --- outputs --------------------------------------------------------------------------
    def _header(self) -> Header:
        return Header(
            frame_id=self.node_config.publish.frame_id, stamp=self.get_clock().now().to_msg()
        )

    def _on_publish_timer(self) -> None:
        self._autosave()
        self._push_fleet()
        if self._version == self._published_version:
            return
        with self._lock:
            if self.memory is None:
                return
            version = self._version
            objects = list(self.memory.objects.values())
            relations = list(self.memory.relations)
            zones = list(self.memory.zones)
            header = self._header()
            graph = conv.graph_to_msg(objects, relations, zones, header)
            markers = (
                conv.graph_to_markers(objects, relations, zones, header)
                if self.node_config.publish.markers
                else None
            )
        self._graph_pub.publish(graph)
        if markers is not None:
            self._marker_pub.publish(markers)
        self._published_version = version

    def _autosave(self, force: bool = False) -> None:
        cfg = self.node_config.persistence
        if not cfg.autosave_path or self.memory is None:
            return
        period = cfg.autosave_period_s
        if not force and (period <= 0.0 or time.monotonic() - self._last_save < period):
            return
        self._last_save = time.monotonic()
        try:
            with self._lock:
                self.memory.save(cfg.autosave_path)
        except (InvalidInput, OSError) as err:
            self.get_logger().error(f"autosave to {cfg.autosave_path} failed: {err}")

    def _push_fleet(self, force: bool = False) -> None:
        """Push the objects changed since the last acknowledged push (``fleet.url`` set)."""
        cfg = self.node_config.fleet
        if not cfg.url or self.memory is None:
            return
        if not force and time.monotonic() - self._last_fleet_push < cfg.sync_period_s:
            return
        self._last_fleet_push = time.monotonic()
        if self._fleet is None:
            from memory_node.core.fleet import FleetSync
            from memory_node.core.storage import open_store

            robot = cfg.robot_id or self.get_namespace().strip("/") or self.get_name()
            self._fleet = FleetSync(
                lambda: open_store(cfg.url), robot, self.node_config.publish.frame_id
            )
        from memory_node.core.fleet import absence_stamps

        with self._lock:  # copies: the push runs outside the lock, ingest goes on
            todo = [copy.copy(o) for o in self._fleet.pending(self.memory.objects.values())]
            gone = absence_stamps(self.memory.short_term.events()) if todo else {}
        if not todo:
            return
        report = self._fleet.push(todo, gone)
        if report.ok:
            self.get_logger().debug(f"pushed {report.pushed} objects to the fleet memory")
        else:
            self._throttle(
                "fleet",
                self.get_logger().error,
                f"fleet push failed, {report.pending} objects kept pending: {report.error}",
            )

    # --- services -------------------------------------------------------------------------
    def _call_core(self, res: Any, fn: Callable[[SceneMemory], Any]) -> Any:
        """Run ``fn`` on the memory under the lock; errors become success=false + message."""
        res.success = False
        with self._lock:
            memory = self.memory
            if memory is None:
                res.message = "scene_memory is not configured"
                return None
            try:
                out = fn(memory)
            except (InvalidInput, OSError) as err:
                res.message = str(err)
                return None
            except Exception as err:  # a bad request must never kill the node
                self.get_logger().error(traceback.format_exc())
                res.message = f"internal error: {err}"
                return None
        res.success = True
        return out

    def _reply(self, res: Any, build: Callable[[], None]) -> Any:
        """Fill ``res`` with ``build``; a conversion error answers success=false, never raises."""
        try:
            build()
        except Exception as err:  # a value the message cannot hold must not kill the node
            self.get_logger().error(traceback.format_exc())
            fresh = type(res)()
            fresh.success = False
            fresh.message = f"internal error while building the reply: {err}"
            return fresh
        return res

    def _on_query(self, req: QueryObjects.Request, res: QueryObjects.Response) -> Any:
        near = np.array([req.near.x, req.near.y, req.near.z]) if req.use_near else None
        query = QueryRequest(
            text=req.text,
            near=near,
            radius=float(req.radius),
            zone_id=req.zone_id,
            k=int(req.k),
            include_embeddings=bool(req.include_embeddings),
        )
        found = self._call_core(res, lambda m: m.query(query))
        if found is None:
            return res

        def build() -> None:
            res.objects = [
                conv.object_to_msg(s.obj, s.score, query.include_embeddings) for s in found
            ]
            res.message = f"{len(found)} objects"

        return self._reply(res, build)

    def _on_graph(self, req: GetSceneGraph.Request, res: GetSceneGraph.Response) -> Any:
        out = self._call_core(
            res, lambda m: m.render(req.focus, int(req.max_objects), int(req.max_tokens))
        )
        if out is None:
            return res

        def build() -> None:
            res.graph = conv.graph_to_msg(out.objects, out.relations, out.zones, self._header())
            res.text = out.text
            res.token_count = int(out.token_count)
            res.message = f"{len(out.objects)} objects, {out.token_count} tokens"

        return self._reply(res, build)

    def _on_changes(self, req: GetObjectChanges.Request, res: GetObjectChanges.Response) -> Any:
        since = conv.time_to_sec(req.since)
        out = self._call_core(res, lambda m: m.changes(since, req.object_id, int(req.max_results)))
        if out is None:
            return res

        def build() -> None:
            res.changes = [conv.change_to_msg(e) for e in out]
            res.message = f"{len(out)} changes"

        return self._reply(res, build)

    def _on_save(self, req: SaveMemory.Request, res: SaveMemory.Response) -> Any:
        path = req.path or self.node_config.persistence.autosave_path
        if not path:
            res.success, res.message = False, "no path given and persistence.autosave_path is ''"
            return res
        if self._call_core(res, lambda m: m.save(path)) is None and not res.success:
            return res
        res.message = f"saved to {path}"
        return res

    def _on_load(self, req: LoadMemory.Request, res: LoadMemory.Response) -> Any:
        path = req.path or self.node_config.persistence.load_path
        if not path:
            res.success, res.message = False, "no path given and persistence.load_path is ''"
            return res
        self._call_core(res, lambda m: m.load(path))
        if res.success:
            with self._lock:
                self._version += 1
                n = len(self.memory.objects) if self.memory else 0
            res.message = f"loaded {n} objects from {path}"
        return res


def main(args: list[str] | None = None) -> None:
    """Run the scene_memory node until Ctrl-C."""
    from memory_node.ros.bringup import spin_nodes

    rclpy.init(args=args)
    spin_nodes([SceneMemoryNode()])
