"""The ``scene_memory`` node: long-term scene-graph memory and short-term object-state memory.

Inputs (sensor-data QoS, remappable): ``rgb/image``, ``depth/image``, ``rgb/camera_info``,
``camera/pose`` and, with ``inputs.use_masks``, ``instance/image`` + ``instance/labels``.
Messages of one observation are paired by header stamp (``sync.slop_s``), never by arrival.
Outputs: ``~/scene_graph`` (reliable, transient local), ``~/markers``, ``~/changes``.
Services: ``~/query_objects``, ``~/get_scene_graph``, ``~/get_changes``, ``~/save``, ``~/load``,
``~/export`` (JSON to ``persistence.export_path``).

Concurrency: subscriptions run in one mutually-exclusive callback group and only decode and pair
messages; a worker thread ingests the newest complete frame (older pending frames are dropped
when it is behind); services and the publish timer run in a second group. One lock guards the
core, so a service call waits at most one frame's ingest.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
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
from memory_node.core.export import memory_document
from memory_node.core.features import ClipEncoder
from memory_node.core.memory_view import MemoryView, ViewRetriever, replay_accesses
from memory_node.core.pose_buffer import PoseConfig
from memory_node.core.retrieval import Retriever
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.stamp_guard import check_not_ahead
from memory_node.core.sync import Bundle, StampSynchronizer, SyncConfig, diagnose_pairing
from memory_node.core.types import Frame, InvalidInput, QueryRequest
from memory_node.ros import conversions as conv
from memory_node.ros.environment import use_large_data_profile
from memory_node.ros.guarded import guarded_call
from memory_node.ros.lifecycle_guard import refuse_invalid_transitions
from memory_node.ros.params import declare_config, reject_runtime_changes
from memory_node.ros.pose_source import POSE_SOURCES, PoseSource, make_pose_source
from memory_node.ros.spin import spin_nodes
from memory_node.tools.export import write_new_file


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
        "best_available",
        "Reliability of the camera subscriptions: best_available (reliable from reliable "
        "publishers, best-effort from best-effort ones; a subscription made before its publisher "
        "appears is switched to best_effort when a best-effort publisher shows up), best_effort "
        "(sensor-data QoS, matches every driver) or reliable (only reliable publishers match).",
        choices=("best_available", "best_effort", "reliable"),
    )
    qos_depth: int = param(
        5, "Queue depth of each camera subscription.", min_value=1, max_value=100
    )
    camera_frame: str = param(
        "", "Optical frame looked up in TF when pose_source is tf ('' = the image's frame_id)."
    )
    max_image_pixels: int = param(
        1920 * 1200,
        "Images with more pixels (width x height) are dropped on arrival, counted as "
        "rejected image_too_large (a 4000x3000 stream would stall ingest).",
        min_value=1,
        max_value=100_000_000,
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
class DiagnosticsConfig:
    """Health published on /diagnostics."""

    period_s: float = param(
        1.0, "Period of the /diagnostics status, in seconds.", min_value=0.1, max_value=60.0
    )
    window_s: float = param(
        5.0,
        "Pairing losses are judged over this many seconds of input (warning: the likely cause).",
        min_value=1.0,
        max_value=600.0,
    )


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
    export_path: str = param(
        "",
        "JSON file written by ~/export (zones -> objects -> relations -> recent changes, "
        "docs/export-schema.json); '' = the service refuses.",
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
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    fleet: FleetSyncConfig = field(default_factory=FleetSyncConfig)


RELIABILITY = {
    "best_available": ReliabilityPolicy.BEST_AVAILABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
}


class _Rejected(InvalidInput):
    """A frame refused by the node, with a short reason key for the counters."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


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
        # Services read an immutable view swapped in after each frame (never the live memory).
        self._view: MemoryView | None = None
        self._retriever: ViewRetriever | None = None
        self._graph_time = -math.inf  # when the view's relations and zones were refreshed
        self._published_version = -1
        self._last_save = time.monotonic()
        self._last_fleet_push = 0.0
        self._fleet: Any = None  # FleetSync, made at the first push
        self._throttle = _Throttle()
        # Counters since start: messages delivered per topic, frames paired, ingested, skipped
        # (a newer frame replaced it while the worker was busy) and rejected (by reason).
        self.delivered: dict[str, int] = {}
        self.counters: dict[str, int] = dict.fromkeys(
            ("frames_paired", "frames_ingested", "frames_skipped", "frames_rejected"), 0
        )
        self.rejected: dict[str, int] = {}
        self._history: list[tuple[float, dict[str, int], int]] = []  # (time, delivered, paired)
        self._models = "not loaded"
        self._sync: StampSynchronizer | None = None
        self._camera_info: CameraInfo | None = None
        self._pose: PoseSource | None = None
        # topic -> subscription, and what it was made with (to switch its reliability)
        self._subs: dict[str, Any] = {}
        self._sub_args: dict[str, tuple[Any, Callable[[Any], None]]] = {}
        self._paired_topics: dict[str, str] = {}  # synchronised stream -> topic
        self._to_best_effort: set[str] = set()  # best_available topics met a best-effort writer
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
        self.create_service(Trigger, "~/export", self._on_export, callback_group=g)
        self.create_timer(
            self.node_config.publish.graph_period_s, self._on_publish_timer, callback_group=g
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(
            self.node_config.diagnostics.period_s, self._on_diagnostics_timer, callback_group=g
        )
        self.create_timer(0.2, self._fix_subscriptions, callback_group=self._sensor_group)
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
        try:
            self._models = self._warm_up(memory)
        except Exception as err:  # a model that cannot load is reported, not raised
            self.get_logger().error(f"cannot load the feature encoder: {err}")
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
            self._retriever = ViewRetriever(
                lambda: Retriever(memory.config.retrieval, memory.encode_text)
            )
            self._new_view()
        self.get_logger().info(f"scene memory configured; models: {self._models}")
        return TransitionCallbackReturn.SUCCESS

    def _warm_up(self, memory: SceneMemory) -> str:
        """Load and run the encoders once, so no frame waits for a model; describe them."""
        mode = self.memory_config.features.mode
        if mode == "off":
            return "none (features.mode off)"
        t0 = time.monotonic()
        memory.warm_up()
        encode = memory.encode_text
        if encode is not None:
            encode(["warm up"])
        encoder = memory.encoder
        if isinstance(encoder, ClipEncoder):
            encoder.encode_crops(np.zeros((224, 224, 3), np.uint8), [(0, 0, 224, 224)])
        name = self.memory_config.features.clip_model if mode == "clip" else "all-MiniLM-L6-v2"
        return f"{mode} ({name}) loaded in {time.monotonic() - t0:.1f} s"

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
        self._paired_topics = {}

        def paired(msg_type: Any, topic: str, stream: str) -> None:
            self._paired_topics[stream] = topic
            self._subscribe(topic, msg_type, lambda m: self._on_stream(stream, m))

        paired(Image, "rgb/image", "rgb")
        paired(Image, "depth/image", "depth")
        if pose.stream:
            paired(pose.msg_type, pose.topic, pose.stream)
        elif pose.topic:
            self._subscribe(pose.topic, pose.msg_type, self._on_base_pose)
        if cfg.inputs.use_masks:
            paired(Image, "instance/image", "instance")
            paired(InstanceLabels, "instance/labels", "labels")
        if cfg.inputs.pair_camera_info:
            paired(CameraInfo, "rgb/camera_info", "info")
        else:
            self._subscribe("rgb/camera_info", CameraInfo, self._on_camera_info)
        with self._lock:
            if self.memory is not None:
                self.memory.reset_stamps()  # the streams restart: earlier stamps are fine
        self._running = True
        self._worker = threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: pairing {streams} by stamp ({cfg.inputs.qos_reliability} subscriptions); "
            f"models: {self._models}"
        )
        return super().on_activate(state)

    def _subscribe(
        self,
        topic: str,
        msg_type: Any,
        callback: Callable[[Any], None],
        reliability: str | None = None,
    ) -> None:
        """(Re)create the subscription of an input topic; every message is counted."""
        reliability = reliability or self.node_config.inputs.qos_reliability
        old = self._subs.pop(topic, None)
        if old is not None:
            self.destroy_subscription(old)
        self._sub_args[topic] = (msg_type, callback)
        self.delivered.setdefault(topic, 0)
        qos = QoSProfile(
            depth=self.node_config.inputs.qos_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=RELIABILITY[reliability],
            durability=DurabilityPolicy.VOLATILE,
        )

        def counted(msg: Any) -> None:
            self.delivered[topic] += 1
            callback(msg)

        def incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
            if reliability == "best_available":
                self._to_best_effort.add(topic)
                return
            self._throttle(
                f"qos {topic}",
                self.get_logger().warning,
                f"{topic}: a publisher's QoS is incompatible with inputs.qos_reliability="
                f"{reliability} (policy {info.last_policy_kind}); its messages are not received "
                "(use best_available)",
            )

        self._subs[topic] = self.create_subscription(
            msg_type,
            topic,
            counted,
            qos,
            callback_group=self._sensor_group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=incompatible),
        )

    def _fix_subscriptions(self) -> None:
        """Switch best_available subscriptions that met a best-effort publisher to best_effort.

        best_available picks reliable when no publisher exists yet; a best-effort driver that
        starts later would then never be received.
        """
        while self._to_best_effort and self._running:
            topic = self._to_best_effort.pop()
            if topic in self._subs:
                msg_type, callback = self._sub_args[topic]
                self._subscribe(topic, msg_type, callback, "best_effort")
                self.get_logger().info(
                    f"{topic}: best-effort publisher found; subscription switched to best_effort"
                )

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop ingesting (memory and services stay)."""
        self._stop_ingest()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the memory."""
        with self._lock:
            self.memory = None
            self._view = None
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
        self.get_logger().info(
            f"frames: {self.counters}; delivered: {self.delivered}; rejected: {self.rejected}; "
            f"unpaired messages: {dropped}"
        )

    def _stop_ingest(self) -> None:
        self._running = False
        with self._pending_cv:
            self._pending_cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        for sub in self._subs.values():
            self.destroy_subscription(sub)
        self._subs = {}

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
        if isinstance(msg, Image):
            limit = self.node_config.inputs.max_image_pixels
            if msg.width * msg.height > limit:
                self._drop(
                    "image_too_large",
                    f"{self._paired_topics.get(stream, stream)} is {msg.width}x{msg.height}, "
                    f"above inputs.max_image_pixels={limit}",
                )
                return
        stamp = self._admit_stamp(stream, msg.header.stamp, sync)
        if stamp is None:
            return
        bundle = sync.add(stream, stamp, msg)
        if bundle is None:
            return
        self.counters["frames_paired"] += 1
        with self._pending_cv:
            if self._pending is not None:
                self.counters["frames_skipped"] += 1
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
                self._drop("bad_stamp", str(err))
            return None
        if sync.last_emitted - stamp > cfg.max_jump_back_s:
            self.get_logger().warning(
                f"clock jumped back from {sync.last_emitted:.3f} to {stamp:.3f} s on {stream}: "
                "restarting the stamp pairing"
            )
            sync.reset()
        return stamp

    def _drop(self, reason: str, text: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.counters["frames_rejected"] += 1
        self._throttle(text, self.get_logger().warning, f"dropped a frame: {text}")

    def _bundle_to_frame(self, bundle: Bundle) -> Frame:
        items = bundle.items
        if self._pose is None:
            raise InvalidInput("scene_memory is not active")
        info = items.get("info", self._camera_info)
        if info is None:
            raise _Rejected("no_camera_info", "no camera_info received yet on rgb/camera_info")
        try:
            map_T_camera = self._pose.camera_pose(items, bundle.stamp)
        except InvalidInput as err:
            raise _Rejected("no_pose", str(err)) from err
        return conv.frame_of(bundle.stamp, items, info, map_T_camera)

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
                self._new_view(refresh_graph=False)
        except _Rejected as err:
            self._drop(err.reason, str(err))
            return
        except InvalidInput as err:
            self._drop("invalid_frame", str(err))
            return
        except Exception as err:  # a bad frame must never kill the node
            self._drop("internal_error", f"internal error: {err}")
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

    def _new_view(self, refresh_graph: bool = True) -> None:
        """Swap in the read view of the memory as it is now (call with the lock held).

        Relations and zones are brought up to date at most every ``publish.graph_period_s``
        during ingest (their zone labelling runs the text model); objects and changes always.
        """
        memory = self.memory
        if memory is None:
            return
        replay_accesses(memory, self._view)
        self._version += 1
        now = time.monotonic()
        if now - self._graph_time >= self.node_config.publish.graph_period_s:
            refresh_graph = True
        if refresh_graph or self._view is None:
            self._graph_time = now
            self._view = MemoryView.of(memory, self._version)
        else:
            self._view = MemoryView.of(memory, self._version, graph_from=self._view)

    def _on_publish_timer(self) -> None:
        self._autosave()
        self._push_fleet()
        view = self._view
        if view is None or view.version == self._published_version:
            return
        version = view.version
        objects = list(view.objects.values())
        header = self._header()
        graph = conv.graph_to_msg(objects, view.relations, view.zones, header)
        markers = (
            conv.graph_to_markers(objects, view.relations, view.zones, header)
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

    def _on_diagnostics_timer(self) -> None:
        """Publish the ingestion health on /diagnostics; warn with the likely cause of losses."""
        now = time.monotonic()
        delivered = {s: self.delivered.get(t, 0) for s, t in self._paired_topics.items()}
        self._history.append((now, delivered, self.counters["frames_paired"]))
        window = self.node_config.diagnostics.window_s
        while len(self._history) > 2 and now - self._history[1][0] >= window:
            self._history.pop(0)
        t0, before, paired0 = self._history[0]
        causes: list[str] = []
        if self._running and now - t0 >= 0.8 * window:
            causes = diagnose_pairing(
                {s: delivered[s] - before.get(s, 0) for s in delivered},
                self.counters["frames_paired"] - paired0,
                self._paired_topics,
                ever=delivered,
            )
        for cause in causes:
            self._throttle(cause.split(" ")[0], self.get_logger().warning, f"frames lost: {cause}")
        status = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name()}: ingestion",
            hardware_id=self.get_fully_qualified_name(),
        )
        if self.memory is None:
            status.level, status.message = DiagnosticStatus.ERROR, "not configured"
        elif causes:
            status.level, status.message = DiagnosticStatus.WARN, "; ".join(causes)
        elif not self._running:
            status.level, status.message = DiagnosticStatus.OK, "inactive (not ingesting)"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ingesting"
        values = {
            "models": self._models,
            **{f"delivered {topic}": n for topic, n in self.delivered.items()},
            **{k.replace("_", " "): v for k, v in self.counters.items()},
            **{f"rejected {k}": v for k, v in sorted(self.rejected.items())},
        }
        if self._sync is not None:
            values.update({f"unpaired {k}": v for k, v in self._sync.dropped.items()})
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        self._diag_pub.publish(DiagnosticArray(header=self._header(), status=[status]))

    # --- services -------------------------------------------------------------------------
    def _call_core(self, res: Any, fn: Callable[[SceneMemory], Any]) -> Any:
        """Run ``fn`` on the memory under the lock; errors become success=false + message."""
        with self._lock:
            memory = self.memory
            if memory is None:
                res.success, res.message = False, "scene_memory is not configured"
                return None
            return guarded_call(
                res, lambda: fn(memory), self.get_logger(), (InvalidInput, OSError)
            )

    def _call_view(self, res: Any, fn: Callable[[MemoryView, Retriever], Any]) -> Any:
        """Run ``fn`` on the current read view, without waiting for an ingest in progress."""
        view, retriever = self._view, self._retriever
        if view is None or retriever is None:
            res.success, res.message = False, "scene_memory is not configured"
            return None
        return guarded_call(
            res, lambda: fn(view, retriever.for_view(view)), self.get_logger(), (InvalidInput,)
        )

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
        found = self._call_view(res, lambda v, r: v.query(r, query))
        if found is None:
            return res

        def build() -> None:
            res.objects = [
                conv.object_to_msg(s.obj, s.score, query.include_embeddings) for s in found
            ]
            res.message = f"{len(found)} objects"

        return self._reply(res, build)

    def _on_graph(self, req: GetSceneGraph.Request, res: GetSceneGraph.Response) -> Any:
        encode = self.memory.encode_text if self.memory is not None else None
        out = self._call_view(
            res,
            lambda v, r: v.render(req.focus, int(req.max_objects), int(req.max_tokens), encode, r),
        )
        if out is None:
            return res
        objects, relations, zones, text, tokens = out

        def build() -> None:
            res.graph = conv.graph_to_msg(objects, relations, zones, self._header())
            res.text = text
            res.token_count = int(tokens)
            res.message = f"{len(objects)} objects, {tokens} tokens"

        return self._reply(res, build)

    def _on_changes(self, req: GetObjectChanges.Request, res: GetObjectChanges.Response) -> Any:
        since = conv.time_to_sec(req.since)
        out = self._call_view(
            res, lambda v, _: v.changes(since, req.object_id, int(req.max_results))
        )
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

    def _on_export(self, req: Trigger.Request, res: Trigger.Response) -> Any:
        path = self.node_config.persistence.export_path
        if not path:
            res.success, res.message = False, "persistence.export_path is ''"
            return res
        doc = self._call_core(res, lambda m: memory_document(m, self.node_config.publish.frame_id))
        if doc is None:
            return res
        try:
            write_new_file(path, json.dumps(doc, indent=1) + "\n", force=True)
        except InvalidInput as err:
            res.success, res.message = False, str(err)
            return res
        res.message = f"exported {sum(len(z['objects']) for z in doc['zones'])} zoned and "
        res.message += f"{len(doc['unzoned_objects'])} other objects to {path}"
        return res

    def _on_load(self, req: LoadMemory.Request, res: LoadMemory.Response) -> Any:
        path = req.path or self.node_config.persistence.load_path
        if not path:
            res.success, res.message = False, "no path given and persistence.load_path is ''"
            return res
        self._call_core(res, lambda m: m.load(path))
        if res.success:
            with self._lock:
                self._new_view()
                n = len(self.memory.objects) if self.memory else 0
            res.message = f"loaded {n} objects from {path}"
        return res


def main(args: list[str] | None = None) -> None:
    """Run the scene_memory node until Ctrl-C."""
    use_large_data_profile()
    rclpy.init(args=args)
    spin_nodes([SceneMemoryNode()])
