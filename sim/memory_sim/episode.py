"""Scripted episodes: a scene, a camera path and timed scene changes, with exported ground truth.

Episode file (YAML)::

    name: tour_changes_tour            # required
    description: free text
    scene:                             # exactly one source
      procedural: {seed: 0}            #   ProceduralConfig leaves (defaults for the rest)
      # file: scene.json               #   a SceneSpec written by memory_sim.scene.scene_to_dict
      # gazebo: {world: small_house.world, model_paths: [...]}
    camera:                            # all optional
      height_m: 1.3
      pitch_deg: -25
      speed_mps: 0.6
      yaw_rate_dps: 60
      start: {room: kitchen, yaw_deg: 0}     # or {position: [x, y], yaw_deg: 0}
    segments:                          # the camera path, in order
      - {name: tour1, coverage: {rooms: [kitchen, bedroom], turns: 1}}  # rooms omitted = all
      - {goto: {room: bathroom}}       # or {goto: {position: [x, y]}}
      - {name: away, hold: {duration_s: 30}}
      - {spin: {turns: 0.5}}
      - {turn: {yaw_deg: 90}}
      - {waypoints: {points: [[x, y], [x, y, yaw_deg]]}}
      - {viewpoints: {points: [[x, y, yaw_deg, hold_s]]}}  # jump between places, hold each
      - {coverage: {}, repeat: 3}      # any segment may repeat
    events:                            # applied before the first frame at or after their time
      - {at_s: 2.0, after: away, move: {object: kitchen/mug_0, onto: dining_room/table_0,
                                        offset_xy_m: [0.1, 0.0], yaw_deg: 30}}
      - {at_s: 3.0, move: {object: kitchen/mug_1, position: [1.0, 2.0, 0.9], yaw_deg: 0}}
      - {at_s: 4.0, remove: {object: office/book_0}}
      - {at_s: 5.0, add: {name: kitchen/new_mug, asset: mug, onto: kitchen/counter_0}}
      - {at_s: 6.0, set_state: {object: bedroom/wardrobe_0, state: open}}

``at_s`` is seconds from the start of the episode, or from the start of segment ``after``.
``onto`` rests the object on top of the support's bounding box, centred plus ``offset_xy_m``
(metres, map frame); ``position`` gives the base position (a 2-vector puts it on the floor).
Object names are SceneSpec names; assets are keys of :mod:`memory_sim.assets`.

Malformed YAML, unknown keys, wrong types, unknown objects/rooms/assets/states and events out of
the episode's time range raise :class:`EpisodeError` naming the file and line.

Use::

    runner = EpisodeRunner(load_episode("sim/episodes/full_tour.yaml"), SimConfig())
    for step in runner:          # SimStep per frame (step.frame is a memory_node Frame)
        ...
    runner.save_ground_truth("output/full_tour_gt.json")
    runner.close()
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from memory_node.core.config import flatten, unflatten
from memory_sim.assets import asset, object_from_asset
from memory_sim.ground_truth import save_json, support_relations
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import Pose, SceneError, SceneSpec, scene_from_dict
from memory_sim.simulator import SimConfig, SimStep, SimulationError, Simulator
from memory_sim.trajectory import Trajectory, TrajectoryBuilder, TrajectoryError

LOG = logging.getLogger(__name__)

EVENT_KINDS = ("move", "remove", "add", "set_state")
SEGMENT_KINDS = ("coverage", "goto", "hold", "spin", "turn", "waypoints", "viewpoints")


class EpisodeError(ValueError):
    """An episode file that cannot be used; the message names the file and the line."""


# ---------------------------------------------------------------------------- YAML with lines
class _Map(dict[str, Any]):
    """A YAML mapping remembering its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _Seq(list[Any]):
    """A YAML sequence remembering its line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise EpisodeError(
                f"line {key_node.start_mark.line + 1}: keys must be strings, got {key!r} "
                "(YAML reads unquoted on/off/yes/no as booleans)"
            )
        if key in out:
            raise EpisodeError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


class _Ctx:
    """Error reporting for one file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, line: int, message: str) -> EpisodeError:
        """Return an EpisodeError located at ``line``."""
        return EpisodeError(f"{self.path}:{line}: {message}")

    def mapping(self, value: Any, line: int, what: str, allowed: tuple[str, ...]) -> _Map:
        """Check ``value`` is a mapping with only ``allowed`` keys; return it."""
        if not isinstance(value, _Map):
            raise self.error(line, f"{what} must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.error(
                    value.key_lines[key],
                    f"unknown key {key!r} in {what}; allowed: {list(allowed)}",
                )
        return value

    def number(self, m: _Map, key: str, what: str, default: float | None = None) -> float:
        """Return a finite float at ``m[key]`` (``default`` when absent and given)."""
        if key not in m:
            if default is None:
                raise self.error(m.line, f"{what} needs {key!r}")
            return default
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.error(m.key_lines[key], f"{what}.{key} must be a finite number, got {v!r}")
        return float(v)

    def string(self, m: _Map, key: str, what: str, default: str | None = None) -> str:
        """Return a non-empty string at ``m[key]`` (``default`` when absent and given)."""
        if key not in m:
            if default is None:
                raise self.error(m.line, f"{what} needs {key!r}")
            return default
        v = m[key]
        if not isinstance(v, str) or not v:
            raise self.error(m.key_lines[key], f"{what}.{key} must be a non-empty string")
        return v

    def vector(self, m: _Map, key: str, what: str, sizes: tuple[int, ...]) -> list[float]:
        """Return a list of finite floats at ``m[key]`` whose length is one of ``sizes``."""
        v = m[key]
        line = m.key_lines[key]
        if not isinstance(v, list) or len(v) not in sizes:
            raise self.error(line, f"{what}.{key} must be a list of {sizes} numbers, got {v!r}")
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise self.error(line, f"{what}.{key} has a non-finite or non-number {x!r}")
            out.append(float(x))
        return out


# ---------------------------------------------------------------------------- data model
@dataclass
class Segment:
    """One step of the camera path: ``kind`` in SEGMENT_KINDS with its ``args``."""

    kind: str
    args: dict[str, Any]
    name: str = ""
    repeat: int = 1
    line: int = 0


@dataclass
class Event:
    """One scheduled change: ``kind`` in EVENT_KINDS with its ``args``.

    Attributes:
        at_s: seconds after the episode start, or after the start of segment ``after``.
        time_s: absolute episode time, resolved when the episode is planned.
    """

    kind: str
    args: dict[str, Any]
    at_s: float
    after: str = ""
    line: int = 0
    time_s: float = 0.0


@dataclass
class CameraPath:
    """Motion parameters of the camera (metres, degrees, seconds)."""

    height_m: float = 1.3
    pitch_deg: float = -25.0
    speed_mps: float = 0.6
    yaw_rate_dps: float = 60.0
    start_room: str = ""
    start_xy: tuple[float, float] | None = None
    start_yaw_deg: float = 0.0


@dataclass
class Episode:
    """A parsed (not yet planned) episode file."""

    path: str
    name: str
    description: str
    scene_source: str
    scene_args: dict[str, Any]
    camera: CameraPath
    segments: list[Segment]
    events: list[Event] = field(default_factory=list)
    scene_line: int = 0

    def build_scene(self) -> SceneSpec:
        """Return the episode's SceneSpec (EpisodeError naming the file when it fails)."""
        ctx = _Ctx(self.path)
        try:
            if self.scene_source == "procedural":
                return generate_house(unflatten(ProceduralConfig, dict(self.scene_args)))
            if self.scene_source == "file":
                scene_path = _relative(self.path, self.scene_args["path"])
                with open(scene_path) as stream:
                    return scene_from_dict(json.load(stream))
            from memory_sim.gazebo import import_world

            world = _relative(self.path, self.scene_args["world"])
            model_paths = [_relative(self.path, p) for p in self.scene_args.get("model_paths", [])]
            return import_world(world, model_paths or None)
        except (ValueError, OSError, SceneError) as exc:
            raise ctx.error(self.scene_line, f"cannot build the scene: {exc}") from exc


def _relative(episode_path: str, path: str) -> str:
    """Resolve ``path`` relative to the episode file's folder."""
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(episode_path)), path)


# ---------------------------------------------------------------------------- parsing
def load_episode(path: str) -> Episode:
    """Parse and check an episode file; raise EpisodeError naming the file and line."""
    try:
        with open(path) as stream:
            text = stream.read()
    except OSError as exc:
        raise EpisodeError(f"{path}: cannot read: {exc}") from exc
    return parse_episode(text, path)


def parse_episode(text: str, path: str = "<string>") -> Episode:
    """Parse episode YAML text; ``path`` is used in error messages."""
    ctx = _Ctx(path)
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except EpisodeError as exc:
        raise EpisodeError(f"{path}:{str(exc).removeprefix('line ')}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ctx.error(line, f"malformed YAML: {getattr(exc, 'problem', exc)}") from exc
    top = ctx.mapping(
        doc, 1, "episode", ("name", "description", "scene", "camera", "segments", "events")
    )
    name = ctx.string(top, "name", "episode")
    description = top.get("description", "")
    if not isinstance(description, str):
        raise ctx.error(top.key_lines["description"], "description must be a string")

    if "scene" not in top:
        raise ctx.error(top.line, "episode needs 'scene'")
    scene = ctx.mapping(
        top["scene"], top.key_lines["scene"], "scene", ("procedural", "file", "gazebo")
    )
    if len(scene) != 1:
        raise ctx.error(scene.line, "scene needs exactly one of procedural, file, gazebo")
    source = next(iter(scene))
    value = scene[source]
    scene_line = scene.key_lines[source]
    if source == "procedural":
        args = ctx.mapping(value or _empty_map(scene_line), scene_line, "scene.procedural",
                           tuple(s.name for s in flatten(ProceduralConfig())))  # fmt: skip
        try:
            unflatten(ProceduralConfig, dict(args))
        except (ValueError, TypeError) as exc:
            raise ctx.error(scene_line, f"scene.procedural: {exc}") from exc
        scene_args: dict[str, Any] = dict(args)
    elif source == "file":
        if not isinstance(value, str):
            raise ctx.error(scene_line, "scene.file must be a path string")
        scene_args = {"path": value}
    else:
        g = ctx.mapping(value, scene_line, "scene.gazebo", ("world", "model_paths"))
        scene_args = {"world": ctx.string(g, "world", "scene.gazebo")}
        if "model_paths" in g:
            mp = g["model_paths"]
            if not isinstance(mp, list) or not all(isinstance(p, str) for p in mp):
                raise ctx.error(g.key_lines["model_paths"], "model_paths must be a list of paths")
            scene_args["model_paths"] = list(mp)

    camera = _parse_camera(ctx, top)
    if "segments" not in top:
        raise ctx.error(top.line, "episode needs 'segments' (the camera path)")
    segs = top["segments"]
    if not isinstance(segs, _Seq) or not segs:
        raise ctx.error(top.key_lines["segments"], "segments must be a non-empty list")
    segments = [
        _parse_segment(ctx, s, line) for s, line in zip(segs, segs.item_lines, strict=True)
    ]
    names = [s.name for s in segments if s.name]
    if len(names) != len(set(names)):
        raise ctx.error(segs.line, "segment names must be unique")

    events: list[Event] = []
    if "events" in top and top["events"] is not None:
        evs = top["events"]
        if not isinstance(evs, _Seq):
            raise ctx.error(top.key_lines["events"], "events must be a list")
        for e, line in zip(evs, evs.item_lines, strict=True):
            event = _parse_event(ctx, e, line)
            if event.after and event.after not in names:
                raise ctx.error(event.line, f"event refers to unknown segment {event.after!r}")
            events.append(event)
    return Episode(
        path, name, description, source, scene_args, camera, segments, events, scene_line
    )


def _empty_map(line: int) -> _Map:
    """Return an empty line-aware mapping."""
    m = _Map()
    m.line, m.key_lines = line, {}
    return m


def _parse_camera(ctx: _Ctx, top: _Map) -> CameraPath:
    """Parse the optional ``camera`` block."""
    cam = CameraPath()
    if "camera" not in top:
        return cam
    c = ctx.mapping(
        top["camera"], top.key_lines["camera"], "camera",
        ("height_m", "pitch_deg", "speed_mps", "yaw_rate_dps", "start"),
    )  # fmt: skip
    cam.height_m = ctx.number(c, "height_m", "camera", cam.height_m)
    cam.pitch_deg = ctx.number(c, "pitch_deg", "camera", cam.pitch_deg)
    cam.speed_mps = ctx.number(c, "speed_mps", "camera", cam.speed_mps)
    cam.yaw_rate_dps = ctx.number(c, "yaw_rate_dps", "camera", cam.yaw_rate_dps)
    for key in ("height_m", "speed_mps", "yaw_rate_dps"):
        if getattr(cam, key) <= 0:
            raise ctx.error(c.key_lines[key], f"camera.{key} must be positive")
    if not -89.0 <= cam.pitch_deg <= 89.0:
        raise ctx.error(c.key_lines["pitch_deg"], "camera.pitch_deg must be in [-89, 89]")
    if "start" in c:
        s = ctx.mapping(
            c["start"], c.key_lines["start"], "camera.start", ("room", "position", "yaw_deg")
        )
        if ("room" in s) == ("position" in s):
            raise ctx.error(s.line, "camera.start needs exactly one of room, position")
        if "room" in s:
            cam.start_room = ctx.string(s, "room", "camera.start")
        else:
            x, y = ctx.vector(s, "position", "camera.start", (2,))
            cam.start_xy = (x, y)
        cam.start_yaw_deg = ctx.number(s, "yaw_deg", "camera.start", 0.0)
    return cam


def _parse_segment(ctx: _Ctx, value: Any, line: int) -> Segment:
    """Parse one item of ``segments``."""
    m = ctx.mapping(value, line, "segment", (*SEGMENT_KINDS, "name", "repeat"))
    kinds = [k for k in SEGMENT_KINDS if k in m]
    if len(kinds) != 1:
        raise ctx.error(m.line, f"a segment needs exactly one of {list(SEGMENT_KINDS)}")
    kind = kinds[0]
    name = ctx.string(m, "name", "segment", "")
    repeat = 1
    if "repeat" in m:
        repeat = m["repeat"]
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ctx.error(m.key_lines["repeat"], "repeat must be a positive integer")
    line_k = m.key_lines[kind]
    raw = m[kind] if m[kind] is not None else _empty_map(line_k)
    what = f"segment.{kind}"
    args: dict[str, Any] = {}
    if kind == "coverage":
        a = ctx.mapping(raw, line_k, what, ("rooms", "turns"))
        if "rooms" in a:
            rooms = a["rooms"]
            if (
                not isinstance(rooms, list)
                or not rooms
                or not all(isinstance(r, str) for r in rooms)
            ):
                raise ctx.error(
                    a.key_lines["rooms"], "coverage.rooms must be a list of room names"
                )
            args["rooms"] = list(rooms)
        args["turns"] = ctx.number(a, "turns", what, 1.0)
    elif kind == "goto":
        a = ctx.mapping(raw, line_k, what, ("room", "position"))
        if ("room" in a) == ("position" in a):
            raise ctx.error(a.line, "goto needs exactly one of room, position")
        if "room" in a:
            args["room"] = ctx.string(a, "room", what)
        else:
            args["position"] = ctx.vector(a, "position", what, (2,))
    elif kind == "hold":
        a = ctx.mapping(raw, line_k, what, ("duration_s",))
        args["duration_s"] = ctx.number(a, "duration_s", what)
        if args["duration_s"] < 0:
            raise ctx.error(a.key_lines["duration_s"], "hold.duration_s must be >= 0")
    elif kind == "spin":
        a = ctx.mapping(raw, line_k, what, ("turns",))
        args["turns"] = ctx.number(a, "turns", what, 1.0)
    elif kind == "turn":
        a = ctx.mapping(raw, line_k, what, ("yaw_deg",))
        args["yaw_deg"] = ctx.number(a, "yaw_deg", what)
    else:
        a = ctx.mapping(raw, line_k, what, ("points",))
        pts = a.get("points")
        if not isinstance(pts, _Seq) or not pts:
            raise ctx.error(a.line, f"{kind}.points must be a non-empty list")
        points = []
        sizes = (2, 3) if kind == "waypoints" else (4,)
        for p, pline in zip(pts, pts.item_lines, strict=True):
            holder = _empty_map(pline)
            holder["p"] = p
            holder.key_lines["p"] = pline
            points.append(ctx.vector(holder, "p", f"{kind}.points", sizes))
            if kind == "viewpoints" and points[-1][3] <= 0:
                raise ctx.error(pline, "viewpoints.points: hold_s must be positive")
        args["points"] = points
    return Segment(kind, args, name, repeat, m.line)


def _parse_event(ctx: _Ctx, value: Any, line: int) -> Event:
    """Parse one item of ``events``."""
    m = ctx.mapping(value, line, "event", (*EVENT_KINDS, "at_s", "after"))
    kinds = [k for k in EVENT_KINDS if k in m]
    if len(kinds) != 1:
        raise ctx.error(m.line, f"an event needs exactly one of {list(EVENT_KINDS)}")
    kind = kinds[0]
    at_s = ctx.number(m, "at_s", "event")
    if at_s < 0:
        raise ctx.error(m.key_lines["at_s"], "event.at_s must be >= 0")
    after = ctx.string(m, "after", "event", "")
    what = f"event.{kind}"
    line_k = m.key_lines[kind]
    place_keys = ("onto", "offset_xy_m", "position", "yaw_deg")
    args: dict[str, Any] = {}
    if kind == "remove":
        a = ctx.mapping(m[kind], line_k, what, ("object",))
        args["object"] = ctx.string(a, "object", what)
    elif kind == "set_state":
        a = ctx.mapping(m[kind], line_k, what, ("object", "state"))
        args["object"] = ctx.string(a, "object", what)
        args["state"] = ctx.string(a, "state", what)
    else:
        extra = ("object",) if kind == "move" else ("name", "asset", "label")
        a = ctx.mapping(m[kind], line_k, what, (*extra, *place_keys))
        for key in extra:
            if key != "label":
                args[key] = ctx.string(a, key, what)
        if kind == "add":
            if "label" in a:
                args["label"] = ctx.string(a, "label", what)
            try:
                asset(args["asset"])
            except SceneError as exc:
                raise ctx.error(a.key_lines["asset"], str(exc)) from exc
        if ("onto" in a) == ("position" in a):
            raise ctx.error(a.line, f"{what} needs exactly one of onto, position")
        if "onto" in a:
            args["onto"] = ctx.string(a, "onto", what)
            args["offset_xy_m"] = (
                ctx.vector(a, "offset_xy_m", what, (2,)) if "offset_xy_m" in a else [0.0, 0.0]
            )
        else:
            if "offset_xy_m" in a:
                raise ctx.error(a.key_lines["offset_xy_m"], "offset_xy_m goes with 'onto' only")
            args["position"] = ctx.vector(a, "position", what, (2, 3))
        args["yaw_deg"] = ctx.number(a, "yaw_deg", what, 0.0)
    return Event(kind, args, at_s, after, m.line)


# ---------------------------------------------------------------------------- planning
def plan_trajectory(episode: Episode, scene: SceneSpec) -> Trajectory:
    """Build the camera path of ``episode`` in ``scene``; EpisodeError naming the segment."""
    ctx = _Ctx(episode.path)
    cam = episode.camera
    try:
        if cam.start_xy is not None:
            start = cam.start_xy
        elif cam.start_room:
            start = scene.room(cam.start_room).center_xy
        elif scene.rooms:
            first = next((s for s in episode.segments if s.kind in ("coverage", "goto")), None)
            room_name = scene.rooms[0].name
            if first is not None and first.kind == "coverage" and first.args.get("rooms"):
                room_name = first.args["rooms"][0]
            elif first is not None and first.kind == "goto" and "room" in first.args:
                room_name = first.args["room"]
            start = scene.room(room_name).center_xy
        else:
            start = (0.0, 0.0)
    except SceneError as exc:
        raise ctx.error(0, f"camera.start: {exc}") from exc
    builder = TrajectoryBuilder(
        scene,
        start,
        math.radians(cam.start_yaw_deg),
        cam.height_m,
        math.radians(cam.pitch_deg),
        cam.speed_mps,
        math.radians(cam.yaw_rate_dps),
    )
    for seg in episode.segments:
        t0 = builder.now.t
        try:
            for _ in range(seg.repeat):
                _apply_segment(builder, seg)
        except (TrajectoryError, SceneError) as exc:
            raise ctx.error(seg.line, f"segment {seg.kind}: {exc}") from exc
        if seg.name:
            builder.mark(seg.name, t0)
    return builder.build()


def _apply_segment(builder: TrajectoryBuilder, seg: Segment) -> None:
    """Append one segment's motion."""
    a = seg.args
    if seg.kind == "coverage":
        builder.coverage(a.get("rooms"), a["turns"])
    elif seg.kind == "goto":
        if "room" in a:
            builder.goto_room(a["room"])
        else:
            builder.move_to(*a["position"])
    elif seg.kind == "hold":
        builder.hold(a["duration_s"])
    elif seg.kind == "spin":
        builder.spin(a["turns"])
    elif seg.kind == "turn":
        builder.turn_to(math.radians(a["yaw_deg"]))
    elif seg.kind == "viewpoints":
        for x, y, yaw_deg, hold_s in a["points"]:
            builder.viewpoint(x, y, math.radians(yaw_deg), hold_s)
    else:
        for p in a["points"]:
            builder.move_to(p[0], p[1])
            if len(p) == 3:
                builder.turn_to(math.radians(p[2]))


# ---------------------------------------------------------------------------- running
class EpisodeRunner:
    """Runs an episode: builds the scene and simulator, plans the path, applies events.

    Iterating yields one :class:`SimStep` per frame (``frame_count`` of them, at the simulator's
    rate). Construction checks every event against the scene (a dry run of names and states), so
    a bad file fails before the first frame.

    Args:
        episode: a parsed episode.
        config: simulator configuration (resolution, rate, noise...).
        scene: use this scene instead of building the episode's (e.g. already imported).
        keep_frame_truth: keep per-frame ground truth for :meth:`ground_truth`.
    """

    def __init__(
        self,
        episode: Episode,
        config: SimConfig | None = None,
        scene: SceneSpec | None = None,
        keep_frame_truth: bool = True,
    ) -> None:
        self.episode = episode
        self.ctx = _Ctx(episode.path)
        self.scene = scene if scene is not None else episode.build_scene()
        self.trajectory = plan_trajectory(episode, self.scene)
        self.events = self._resolve_times(episode.events)
        self._dry_run()
        self.sim = Simulator(self.scene, config, keep_frame_truth=keep_frame_truth)
        self._rehearse()
        self.initial_relations = support_relations(self.sim.objects())
        self.frame_count = math.floor(self.trajectory.duration * self.sim.config.rate_hz + 1e-9)
        self._next_event = 0
        self.sim.log.meta.update(
            {
                "episode": episode.name,
                "episode_file": episode.path,
                "description": episode.description,
                "duration_s": self.trajectory.duration,
                "frame_count": self.frame_count,
                "segments": {k: list(v) for k, v in self.trajectory.segments.items()},
                "K": self.sim.K.tolist(),
                "sim_config": {s.name: s.default for s in flatten(self.sim.config)},
            }
        )
        LOG.info(
            "episode %s: %.1f s, %d frames, %d events",
            episode.name,
            self.trajectory.duration,
            self.frame_count,
            len(self.events),
        )

    def _resolve_times(self, events: list[Event]) -> list[Event]:
        """Return the events with absolute times, sorted (stable), checked against the path."""
        out = []
        for e in events:
            start = self.trajectory.segments[e.after][0] if e.after else 0.0
            t = start + e.at_s
            if t > self.trajectory.duration:
                raise self.ctx.error(
                    e.line,
                    f"event at {t:.2f} s is after the end of the episode "
                    f"({self.trajectory.duration:.2f} s)",
                )
            out.append(dataclasses.replace(e, time_s=t))
        return sorted(out, key=lambda e: e.time_s)

    def _dry_run(self) -> None:
        """Check every event's names, assets and states against the scene, in time order."""
        present = {o.name: o for o in self.scene.objects if not o.structure}
        structure = {o.name for o in self.scene.objects if o.structure}
        known = set(present) | structure
        for e in self.events:
            a = e.args

            def need(name: str, what: str = "object", e: Event = e) -> None:
                if name in structure:
                    raise self.ctx.error(e.line, f"{what} {name!r} is structure (walls, floors)")
                if name not in present:
                    state = "was removed before" if name in known else "is unknown"
                    raise self.ctx.error(
                        e.line, f"event {e.kind} at {e.time_s:.2f} s: {what} {name!r} {state}"
                    )

            if e.kind in ("move", "remove", "set_state"):
                need(a["object"])
            if "onto" in a:
                need(a["onto"], "support")
            if e.kind == "set_state" and a["state"] not in present[a["object"]].states:
                raise self.ctx.error(
                    e.line,
                    f"object {a['object']!r} cannot be {a['state']!r}; "
                    f"its states are {list(present[a['object']].states)}",
                )
            if e.kind == "remove":
                del present[a["object"]]
            if e.kind == "add":
                if a["name"] in known:
                    raise self.ctx.error(e.line, f"add: the name {a['name']!r} is already used")
                spec = object_from_asset(a["asset"], a["name"], Pose(), label=a.get("label", ""))
                present[a["name"]] = spec
                known.add(a["name"])

    def _rehearse(self) -> None:
        """Apply every event to a scratch simulator (no rendering) so placements fail early."""
        real = self.sim
        self.sim = Simulator(self.scene, real.config, keep_frame_truth=False)
        try:
            for e in self.events:
                self._apply(e)
        finally:
            self.sim.close()
            self.sim = real

    def __iter__(self) -> Iterator[SimStep]:
        """Yield every remaining frame of the episode."""
        while self.sim.frame_index < self.frame_count:
            yield self.step()

    def step(self) -> SimStep:
        """Apply due events and render the next frame."""
        if self.sim.frame_index >= self.frame_count:
            raise EpisodeError(
                f"{self.episode.path}: episode finished ({self.frame_count} frames)"
            )
        t = (self.sim.frame_index + 1) * self.sim.dt
        self.apply_events_until(t)
        return self.sim.step(self.trajectory.pose_at(t))

    def skip(self) -> None:
        """Let the next frame pass unrendered (a frame the camera dropped); due events apply."""
        if self.sim.frame_index >= self.frame_count:
            raise EpisodeError(
                f"{self.episode.path}: episode finished ({self.frame_count} frames)"
            )
        self.apply_events_until((self.sim.frame_index + 1) * self.sim.dt)
        self.sim.skip_frame()

    def apply_events_until(self, t: float) -> int:
        """Apply every pending event scheduled at or before ``t`` seconds; return how many.

        :meth:`step` calls it before each frame; calling it directly fast-forwards the scene
        without rendering (the simulator's clock does not move).
        """
        done = 0
        while self._next_event < len(self.events) and self.events[self._next_event].time_s <= t:
            self._apply(self.events[self._next_event])
            self._next_event += 1
            done += 1
        return done

    def _apply(self, e: Event) -> None:
        """Apply one event to the simulator at its scheduled time."""
        a = e.args
        try:
            if e.kind == "remove":
                self.sim.remove_object(a["object"], stamp=e.time_s)
            elif e.kind == "set_state":
                self.sim.set_state(a["object"], a["state"], stamp=e.time_s)
            elif e.kind == "move":
                pose = self._target_pose(a, self.sim.local_extent(a["object"]))
                self.sim.move_object(a["object"], pose, stamp=e.time_s)
            else:
                spec = object_from_asset(a["asset"], a["name"], Pose(), label=a.get("label", ""))
                spec.pose = self._target_pose(a, self.sim.measure(spec))
                spec.room = self.scene.room_at(spec.pose.position[0], spec.pose.position[1])
                self.sim.add_object(spec, stamp=e.time_s)
        except (SimulationError, SceneError) as exc:
            raise self.ctx.error(e.line, f"event {e.kind} at {e.time_s:.2f} s: {exc}") from exc

    def _target_pose(self, a: dict[str, Any], extent: tuple[np.ndarray, np.ndarray]) -> Pose:
        """Return the base pose for a move/add: on a support or at an explicit position.

        ``extent`` is the object's (min, max) box relative to its base at the identity pose.
        """
        yaw = math.radians(a["yaw_deg"])
        lo, _hi = extent
        if "onto" in a:
            support = self.sim.object_truth(a["onto"])
            x = float(support.center[0] + a["offset_xy_m"][0])
            y = float(support.center[1] + a["offset_xy_m"][1])
            inside = (
                support.box_min[0] <= x <= support.box_max[0]
                and support.box_min[1] <= y <= support.box_max[1]
            )
            if not inside:
                raise SimulationError(f"offset puts the object off its support {a['onto']!r}")
            z = float(support.box_max[2] - lo[2] + 0.002)
            return Pose.from_xyz_rpy((x, y, z), yaw=yaw)
        p = a["position"]
        z = p[2] if len(p) == 3 else float(-lo[2] + 0.002)
        return Pose.from_xyz_rpy((p[0], p[1], z), yaw=yaw)

    def ground_truth(self) -> dict[str, Any]:
        """Return the ground-truth document (see :class:`GroundTruthLog`).

        Adds ``relations``: the "on" relations at the start (``initial``) and now (``final``).
        """
        doc = self.sim.log.to_json()
        doc["relations"] = {
            "initial": self.initial_relations,
            "final": support_relations(self.sim.objects()),
        }
        return doc

    def save_ground_truth(self, path: str) -> None:
        """Write the ground truth JSON (:meth:`ground_truth`) atomically to ``path``."""
        save_json(self.ground_truth(), path)

    def close(self) -> None:
        """Release the simulator."""
        self.sim.close()

    def __enter__(self) -> EpisodeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """Run an episode headless and write its ground truth (and optionally a few frames)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("episode", help="episode YAML file")
    parser.add_argument("--out", default="output/episodes", help="output folder")
    parser.add_argument("--width", type=int, default=320, help="image width, pixels")
    parser.add_argument("--height", type=int, default=240, help="image height, pixels")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="frames per sim second")
    parser.add_argument("--max-frames", type=int, default=0, help="stop early (0 = all)")
    parser.add_argument("--check", action="store_true", help="only parse and plan, no frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = SimConfig(rate_hz=args.rate_hz)
    config.camera.width_px, config.camera.height_px = args.width, args.height
    try:
        episode = load_episode(args.episode)
        runner = EpisodeRunner(episode, config)
    except EpisodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with runner:
        print(f"{episode.name}: {runner.trajectory.duration:.1f} s, {runner.frame_count} frames")
        if args.check:
            return 0
        for step in runner:
            if args.max_frames and runner.sim.frame_index >= args.max_frames:
                break
            if step.truth.index % 100 == 0:
                print(f"frame {step.truth.index}/{runner.frame_count} t={step.frame.stamp:.1f}s")
        out = os.path.join(args.out, f"{episode.name}_ground_truth.json")
        runner.save_ground_truth(out)
        print(f"ground truth: {out}; {runner.sim.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
