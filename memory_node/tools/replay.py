"""``memory_replay``: play a recorded rosbag2 (sqlite3 or MCAP) into the memory.

    memory_replay BAG [--core] [--rate R | --max-speed] [--remap FROM:=TO ...]
                  [--params-file F] [-p NAME:=VALUE ...] [--save memory.db] [--force]
                  [--viewer rerun --rrd memory.rrd | --connect URL]

Two ways:

* into the ``scene_memory`` node's topics (default): the bag's messages are published as
  recorded (serialized bytes, reliable QoS) on the node's input names, at the recorded pace
  times ``--rate``; ``/clock`` too when the bag holds it. Run ``memory_bringup`` beside it.
* straight into the core (``--core``): the same decoding, pairing by stamp, pose source and
  frame building as the node, with no transport and no frame skipped; ``--save`` writes the
  memory at the end. ``--max-speed`` replays as fast as ingest goes.

Which topics are needed follows the node's parameters (``--params-file``, ``-p``): images,
camera_info, the pose source's topic (``camera/pose``, ``odom`` or ``base/pose``) and, with
``inputs.use_masks``, the instance topics. ``--remap /camera/color/image_raw:=/rgb/image`` maps a
bag topic onto an input. A bag that cannot be read, lacks a needed topic (the message lists the
topics it has), carries a needed topic with another message type, or whose odometry stamps go
backwards stops the replay with exit status 2; outputs are written only after a complete replay.

``--viewer rerun`` logs the camera images, the fused objects, relations and change events to a
Rerun recording (``--rrd``) or a live viewer (``--connect``): in-process with ``--core``, else
through a viewer node listening to the running memory's topics.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memory_node.core.config import flatten, unflatten
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.sync import Bundle, StampSynchronizer
from memory_node.core.types import ChangeEvent, Frame, InvalidInput
from memory_node.tools.bag import BagError, message_class, open_bag, read_errors

EXPECTED_TYPES = {
    "rgb": "sensor_msgs/msg/Image",
    "depth": "sensor_msgs/msg/Image",
    "info": "sensor_msgs/msg/CameraInfo",
    "pose": "geometry_msgs/msg/PoseStamped",
    "instance": "sensor_msgs/msg/Image",
    "labels": "memory_interfaces/msg/InstanceLabels",
    "odometry": "nav_msgs/msg/Odometry",
    "base_pose": "geometry_msgs/msg/PoseStamped",
}
"""Message type of each input stream."""

Observer = Callable[[Frame, SceneMemory, list[ChangeEvent]], None]
"""Called after each ingested frame with the frame, the memory and the frame's events."""


@dataclass
class ReplayStats:
    """What a replay did."""

    messages: int = 0
    frames: int = 0
    ingested: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    bag_duration_s: float = 0.0
    wall_s: float = 0.0

    def summary(self) -> str:
        """Return a one-line account (speed relative to the recording)."""
        speed = self.bag_duration_s / self.wall_s if self.wall_s > 0 else float("inf")
        text = (
            f"{self.messages} messages, {self.frames} frames, {self.ingested} ingested, "
            f"{sum(self.dropped.values())} dropped; {self.bag_duration_s:.1f} s of recording "
            f"in {self.wall_s:.1f} s ({speed:.2f}x real time)"
        )
        if self.dropped:
            text += "; dropped because: " + "; ".join(
                f"{n} x {why}" for why, n in self.dropped.most_common(3)
            )
        return text


def load_params(files: Sequence[str], overrides: Sequence[str]) -> tuple[Any, SceneMemoryConfig]:
    """(node config, core config) of scene_memory from YAML files and NAME:=VALUE overrides.

    Raises:
        InvalidInput: an unreadable file, an unknown parameter or a value out of range.
    """
    from memory_node.ros.param_files import flatten_yaml
    from memory_node.ros.scene_memory_node import SceneNodeConfig

    values: dict[str, Any] = {}
    for f in files:
        try:
            tree = yaml.safe_load(Path(f).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise InvalidInput(f"cannot read parameter file {f}: {err}") from err
        for section in tree.values():
            if isinstance(section, dict) and "ros__parameters" in section:
                values.update(flatten_yaml(section["ros__parameters"]))
    node_specs = {s.name: s for s in flatten(SceneNodeConfig())}
    core_specs = {s.name: s for s in flatten(SceneMemoryConfig())}
    for item in overrides:
        name, sep, text = item.partition(":=")
        if not sep:
            raise InvalidInput(f"-p expects NAME:=VALUE, got {item!r}")
        spec = node_specs.get(name) or core_specs.get(name)
        # a string parameter takes the text as it is ('off' stays 'off', as in ROS)
        values[name] = text if spec and isinstance(spec.default, str) else yaml.safe_load(text)
    node_names = set(node_specs)
    # old names of the change.* parameters are accepted (with a warning) for one release
    core_names = set(core_specs) | set(SceneMemoryConfig.renamed_params())
    unknown = set(values) - node_names - core_names - {"autostart", "use_sim_time"}
    if unknown:
        raise InvalidInput(f"unknown scene_memory parameters: {', '.join(sorted(unknown))}")
    try:
        node_cfg = unflatten(SceneNodeConfig, {k: v for k, v in values.items() if k in node_names})
        core_cfg = unflatten(
            SceneMemoryConfig, {k: v for k, v in values.items() if k in core_names}
        )
    except ValueError as err:
        raise InvalidInput(str(err)) from err
    return node_cfg, core_cfg


def needed_streams(node_cfg: Any) -> dict[str, str]:
    """Input stream -> node topic (absolute) that a replay with ``node_cfg`` needs."""
    streams = {"rgb": "/rgb/image", "depth": "/depth/image", "info": "/rgb/camera_info"}
    source = node_cfg.inputs.pose_source
    if source == "topic":
        streams["pose"] = "/camera/pose"
    elif source == "odometry":
        streams["odometry"] = "/odom"
    elif source == "base_pose":
        streams["base_pose"] = "/base/pose"
    if node_cfg.inputs.use_masks:
        streams["instance"] = "/instance/image"
        streams["labels"] = "/instance/labels"
    return streams


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """Bag topic -> node topic of ``FROM:=TO`` items (both made absolute)."""
    out: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition(":=")
        if not sep or not src or not dst:
            raise InvalidInput(f"--remap expects FROM:=TO, got {item!r}")
        out["/" + src.lstrip("/")] = "/" + dst.lstrip("/")
    return out


def match_topics(reader: Any, needed: dict[str, str], remaps: dict[str, str]) -> dict[str, str]:
    """Bag topic -> stream for every needed stream.

    Raises:
        BagError: a needed topic is missing (the message lists the bag's topics and types) or
            has another message type.
    """
    present = {c.topic: c.msgtype for c in reader.connections}
    by_node_topic = {remaps.get(t, t): t for t in present}
    missing = [t for t in needed.values() if t not in by_node_topic]
    if missing:
        have = ", ".join(f"{t} ({present[t]})" for t in sorted(present)) or "no topics"
        hint = "; map a bag topic onto an input with --remap FROM:=TO" if present else ""
        raise BagError(f"bag lacks {', '.join(missing)}; it holds {have}{hint}")
    out: dict[str, str] = {}
    for stream, topic in needed.items():
        bag_topic = by_node_topic[topic]
        if present[bag_topic] != EXPECTED_TYPES[stream]:
            raise BagError(
                f"topic {bag_topic} has message type {present[bag_topic]}; the {stream} input "
                f"needs {EXPECTED_TYPES[stream]}"
            )
        out[bag_topic] = stream
    return out


class _Pacer:
    """Sleep so that log time t is reached at wall time (t - t0) / rate; rate 0 = no waiting."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.t0: float | None = None
        self.wall0 = 0.0

    def wait(self, t: float) -> None:
        if self.rate <= 0:
            return
        if self.t0 is None:
            self.t0, self.wall0 = t, time.monotonic()
            return
        delay = self.wall0 + (t - self.t0) / self.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _progress(total: int, enabled: bool) -> Any:
    """Return a tqdm bar over ``total`` messages, or a stand-in when tqdm is absent/disabled."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="msg", file=sys.stderr, desc="replay")
        except ImportError:
            pass

    class _Quiet:
        def update(self, n: int = 1) -> None:
            pass

        def close(self) -> None:
            pass

    return _Quiet()


def _messages(reader: Any, connections: list[Any], bag: str) -> Any:
    """Yield (connection, log time ns, raw bytes); a read failure becomes a BagError."""
    errors = read_errors()
    stream = reader.messages(connections=connections)
    while True:
        try:
            item = next(stream)
        except StopIteration:
            return
        except errors as err:
            raise BagError(f"cannot read bag {bag}: it is corrupt or truncated ({err})") from err
        yield item


def _decode(raw: bytes, cls: Any, topic: str, index: int) -> Any:
    from rclpy.serialization import deserialize_message

    try:
        return deserialize_message(raw, cls)
    except Exception as err:  # rclpy raises plain exceptions for malformed CDR
        raise BagError(f"message {index} on {topic} cannot be decoded: {err}") from err


def replay_core(
    bag: str,
    node_cfg: Any,
    memory_cfg: SceneMemoryConfig,
    remaps: dict[str, str] | None = None,
    rate: float = 0.0,
    progress: bool = False,
    observers: Sequence[Observer] = (),
) -> tuple[SceneMemory, ReplayStats]:
    """Replay ``bag`` straight into a new core memory; return it with the replay's account.

    Frames go through the node's own steps (decode, pair by stamp, pose source, frame building)
    and every complete frame is ingested in order. ``rate`` 0 = as fast as possible.

    Raises:
        BagError: an unreadable, corrupt or truncated bag, a missing topic or a wrong type,
            odometry going backwards, a bad extrinsic.
    """
    from memory_node.ros import conversions as conv
    from memory_node.ros.pose_source import make_pose_source

    if node_cfg.inputs.pose_source == "tf":
        raise BagError("the tf pose source needs tf2_ros; replay with topic/odometry/base_pose")
    try:
        pose = make_pose_source(
            node_cfg.inputs.pose_source, node_cfg.pose, node_cfg.publish.frame_id
        )
    except InvalidInput as err:
        raise BagError(str(err)) from err
    reader = open_bag(bag)
    stats = ReplayStats()
    bar = None
    try:
        topics = match_topics(reader, needed_streams(node_cfg), remaps or {})
        connections = [c for c in reader.connections if c.topic in topics]
        classes = {c.topic: message_class(c.msgtype) for c in connections}
        streams = [s for s in topics.values() if s not in ("odometry", "base_pose")]
        if not node_cfg.inputs.pair_camera_info:
            streams.remove("info")
        sync = StampSynchronizer(streams, node_cfg.sync)
        memory = SceneMemory(memory_cfg)
        pacer = _Pacer(rate)
        bar = _progress(sum(c.msgcount for c in connections), progress)
        latest_info: Any = None
        pending: deque[Bundle] = deque()
        max_age = node_cfg.pose.max_age_s

        def ingest(bundle: Bundle) -> None:
            try:
                map_T_camera = pose.camera_pose(bundle.items, bundle.stamp)
                info = bundle.items.get("info", latest_info)
                frame = conv.frame_of(bundle.stamp, bundle.items, info, map_T_camera)
                memory.ingest(frame)
            except InvalidInput as err:
                stats.dropped[str(err)] += 1
                return
            events = memory.drain_events()
            stats.ingested += 1
            for observer in observers:
                observer(frame, memory, events)

        first = last = None
        newest = float("-inf")
        start = time.monotonic()
        for index, (conn, t_log, raw) in enumerate(_messages(reader, connections, bag)):
            t = t_log * 1e-9
            first = t if first is None else first
            last = t
            pacer.wait(t)
            msg = _decode(raw, classes[conn.topic], conn.topic, index)
            stats.messages += 1
            bar.update()
            stream = topics[conn.topic]
            stamp = conv.time_to_sec(msg.header.stamp)
            newest = max(newest, stamp)  # header stamps: log times may be on another clock
            if stream in ("odometry", "base_pose"):
                try:
                    pose.add(msg)
                except InvalidInput as err:
                    raise BagError(f"{conn.topic}: {err}") from err
            elif stream == "info" and "info" not in streams:
                latest_info = msg
            else:
                bundle = sync.add(stream, stamp, msg)
                if bundle is not None:
                    stats.frames += 1
                    pending.append(bundle)
            # a frame waits for the base pose after its stamp (interpolation), at most max_age_s
            while pending and (
                pose.ready(pending[0].stamp) or newest > pending[0].stamp + max_age
            ):
                ingest(pending.popleft())
        while pending:
            ingest(pending.popleft())
        stats.wall_s = time.monotonic() - start
        stats.bag_duration_s = (last - first) if first is not None and last is not None else 0.0
    finally:
        if bar is not None:
            bar.close()
        reader.close()
    return memory, stats


def check_messages(bag: str, topics: set[str]) -> int:
    """Read every message of ``topics`` once (no decoding); return how many.

    Raises:
        BagError: the bag is corrupt or truncated.
    """
    reader = open_bag(bag)
    try:
        connections = [c for c in reader.connections if c.topic in topics]
        return sum(1 for _ in _messages(reader, connections, bag))
    finally:
        reader.close()


def replay_topics(
    bag: str,
    node_cfg: Any,
    remaps: dict[str, str] | None = None,
    rate: float = 1.0,
    progress: bool = False,
    namespace: str = "",
    wait_for_subscribers_s: float = 10.0,
    viewer: Any = None,
) -> ReplayStats:
    """Publish the needed topics of ``bag`` (and /clock, /tf, /tf_static when present).

    The whole bag is read once before anything is published, so a corrupt bag publishes
    nothing. Publishers are reliable (they match reliable and best-effort subscriptions).

    Raises:
        BagError: as :func:`replay_core`.
    """
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    remaps = remaps or {}
    reader = open_bag(bag)
    try:
        topics = set(match_topics(reader, needed_streams(node_cfg), remaps))
        extra = {c.topic for c in reader.connections if c.topic in ("/clock", "/tf", "/tf_static")}
        connections = [c for c in reader.connections if c.topic in topics | extra]
        for c in connections:
            message_class(c.msgtype)
    finally:
        reader.close()
    check_messages(bag, topics | extra)
    stats = ReplayStats()
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("memory_replay", namespace=namespace or None, context=context)
    viewer_node = executor = None
    if viewer is not None:  # a viewer node in this process logs what the memory publishes
        import threading

        from rclpy.executors import SingleThreadedExecutor

        from memory_node.viz.viewer_node import RerunViewerNode

        viewer_node = RerunViewerNode(viewer, namespace=namespace or None, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(viewer_node)
        threading.Thread(target=executor.spin, daemon=True).start()
    reader = open_bag(bag)
    bar = None
    try:
        pubs = {}
        for c in connections:
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            if c.topic == "/tf_static":
                qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
            # inputs are relative to --namespace, as the node's are; clock and TF are global
            name = c.topic if c.topic in extra else remaps.get(c.topic, c.topic).lstrip("/")
            pubs[c.topic] = node.create_publisher(message_class(c.msgtype), name, qos)
        deadline = time.monotonic() + wait_for_subscribers_s
        image_pubs = [pubs[t] for t in topics]
        while time.monotonic() < deadline and not all(
            p.get_subscription_count() > 0 for p in image_pubs
        ):
            time.sleep(0.05)
        pacer = _Pacer(rate)
        bar = _progress(sum(c.msgcount for c in connections), progress)
        first = last = None
        start = time.monotonic()
        for conn, t_log, raw in _messages(reader, connections, bag):
            t = t_log * 1e-9
            first = t if first is None else first
            last = t
            pacer.wait(t)
            pubs[conn.topic].publish(bytes(raw))
            stats.messages += 1
            bar.update()
        stats.wall_s = time.monotonic() - start
        stats.bag_duration_s = (last - first) if first is not None and last is not None else 0.0
        time.sleep(0.5)  # let reliable publishers deliver their last samples
    finally:
        if bar is not None:
            bar.close()
        reader.close()
        if viewer_node is not None and executor is not None:
            executor.shutdown(timeout_sec=2.0)
            viewer_node.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return stats


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line of memory_replay."""
    parser = argparse.ArgumentParser(
        prog="memory_replay",
        description="Play a recorded rosbag2 (sqlite3 or MCAP) into scene_memory or its core.",
    )
    parser.add_argument("bag", help="rosbag2 directory (metadata.yaml + .db3/.mcap)")
    parser.add_argument("--core", action="store_true", help="replay straight into the core")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=1.0, help="times the recorded pace")
    speed.add_argument("--max-speed", action="store_true", help="as fast as possible")
    parser.add_argument(
        "--remap", action="append", default=[], metavar="FROM:=TO", help="bag topic -> input"
    )
    parser.add_argument(
        "--params-file",
        action="append",
        default=None,
        help="scene_memory parameter YAML (repeatable); default: the package's",
    )
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="override"
    )
    parser.add_argument("--namespace", default="", help="namespace of the node's topics")
    parser.add_argument("--save", default="", help="--core: write the memory here at the end")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --save")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from memory_node.viz.viewer_node import add_viewer_arguments

    add_viewer_arguments(parser)
    return parser.parse_args(argv)


def rerun_observer(logger: Any) -> Observer:
    """Observer logging each ingested frame, the memory and the frame's events to Rerun."""

    def observe(frame: Frame, memory: SceneMemory, events: list[ChangeEvent]) -> None:
        logger.log_camera(frame.stamp, frame.rgb, frame.K, frame.map_T_camera)
        logger.log_graph(
            frame.stamp, list(memory.objects.values()), memory.relations, memory.zones
        )
        logger.log_changes(events)

    return observe


def main(argv: Sequence[str] | None = None, observers: Sequence[Observer] = ()) -> int:
    """Entry point of ``memory_replay``; returns the exit status (0 ok, 2 bad input)."""
    from memory_node.ros.bringup import default_config_dir
    from memory_node.viz.viewer_node import logger_from_args

    args = parse_args(argv)
    rate = 0.0 if args.max_speed else args.rate
    viewer = None
    try:
        if rate < 0:
            raise InvalidInput(f"--rate must be >= 0, got {rate}")
        if args.save and not args.core:
            raise InvalidInput("--save needs --core (the node saves through ~/save)")
        for out in (args.save, args.rrd):
            if out and Path(out).exists() and not args.force:
                raise InvalidInput(f"{out} exists; pass --force to overwrite it")
        files = args.params_file or [str(default_config_dir() / "scene_memory.yaml")]
        node_cfg, core_cfg = load_params(files, args.param)
        remaps = parse_remaps(args.remap)
        if args.viewer == "rerun" and not (args.rrd or args.connect):
            raise InvalidInput("--viewer rerun needs --rrd FILE or --connect URL")
        viewer = logger_from_args(args)
        if args.core:
            watchers = [*observers, *([rerun_observer(viewer)] if viewer else [])]
            memory, stats = replay_core(
                args.bag, node_cfg, core_cfg, remaps, rate, not args.no_progress, watchers
            )
            if args.save:
                memory.save(args.save)
            objects = len(memory.objects)
            print(f"memory_replay: {stats.summary()}; {objects} objects", file=sys.stderr)
        else:
            stats = replay_topics(
                args.bag,
                node_cfg,
                remaps,
                rate,
                not args.no_progress,
                args.namespace,
                viewer=viewer,
            )
            print(f"memory_replay: {stats.summary()}", file=sys.stderr)
    except InvalidInput as err:
        if viewer is not None:
            viewer.close(keep=False)
        print(f"memory_replay: {err}", file=sys.stderr)
        return 2
    if viewer is not None:
        viewer.close(keep=True)
        if args.rrd:
            print(f"memory_replay: wrote {args.rrd}", file=sys.stderr)
    return 0


def entry_point() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
