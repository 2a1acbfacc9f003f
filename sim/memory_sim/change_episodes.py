"""Randomized change episodes for the change-detection benchmark (``bench/bench_changes.py``).

One seed gives one episode: a procedural house, a group of identical look-alikes, a random change
set, and a camera path in one trajectory style. The house, the look-alikes and the change set
depend on the seed only, so one seed can be played in every style; the viewpoints of the
inspection style come from the seed and the style.

An episode is: a first visit of every room (segment ``tour1``), two seconds in which every change
happens at once (``changes``; the camera stays where it is), and a second visit (``tour2``).
Static episodes (:func:`is_static_seed`) have no changes. Change sets hold:

* moves within a room and across rooms (at least ``MIN_MOVE_M`` from where the object stood);
* removals (sometimes one of the chairs around a table, which look alike);
* additions of catalogue objects;
* state changes of furniture with states (doors excepted: a closed door would block the path);
* a group of 2-7 identical look-alikes (one asset, one tint) spread over the house, one of them
  moved and, in some episodes, another removed.

Trajectory styles (:data:`STYLES`): a smooth coverage tour at 10 Hz (every frame delivered),
inspection jumps between viewpoints (1-3 frames at each), the tour at 2 Hz and at 15 Hz, and the
tour with 30 % of frames dropped at random (:meth:`ChangeEpisode.dropped_frames`). The sensor
noise seed is the episode seed.

Seeds 0-19 are for tuning (:data:`TRAINING_SEEDS`); 100-139 are held out
(:data:`HELD_OUT_SEEDS`) and only reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from memory_sim.assets import CATALOGUE, object_from_asset
from memory_sim.episode import CameraPath, Episode, Event, Segment
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import Pose, SceneSpec, scene_to_dict
from memory_sim.simulator import SimConfig, Simulator

TRAINING_SEEDS = tuple(range(0, 20))
HELD_OUT_SEEDS = tuple(range(100, 140))
MIN_MOVE_M = 0.8  # a move shorter than this could be read as the same object re-measured
CHANGE_WINDOW_S = 2.0  # length of the ``changes`` segment; every change happens inside it
SUPPORT_LABELS = (
    "table", "coffee table", "counter", "cabinet", "desk", "sideboard", "nightstand", "dresser",
    "drawer cabinet", "tv stand", "stove", "washing machine",
)  # fmt: skip
FLOOR_ASSETS = ("ball", "teddy", "box")  # assets that may stand on the floor
ADDED_ASSETS = ("mug", "bowl", "bottle", "book", "duck", "teddy", "ball", "box", "lego", "laptop")
LOOKALIKE_ASSETS = ("mug", "bowl", "bottle", "book", "duck", "ball", "box")
KEY_OF_LABEL = {entry.label: key for key, entry in CATALOGUE.items()}


@dataclass(frozen=True)
class TrajectoryStyle:
    """How the camera covers the house and how its frames reach the memory.

    Attributes:
        name: key in :data:`STYLES`.
        rate_hz: frames per second of sim time.
        path: "tour" (smooth coverage: drive to each room, turn a full circle) or "inspection"
            (jump between viewpoints, ``frames_per_view`` frames at each).
        drop_prob: share of frames dropped at random before the memory sees them.
        description: one line for reports.
    """

    name: str
    rate_hz: float
    path: str
    drop_prob: float
    description: str
    frames_per_view: tuple[int, int] = (1, 3)


STYLES: dict[str, TrajectoryStyle] = {
    s.name: s
    for s in (
        TrajectoryStyle("smooth", 10.0, "tour", 0.0, "coverage tour, 10 Hz, every frame"),
        TrajectoryStyle("inspection", 10.0, "inspection", 0.0, "jumps, 1-3 frames per view"),
        TrajectoryStyle("rate_2hz", 2.0, "tour", 0.0, "coverage tour, 2 Hz"),
        TrajectoryStyle("rate_15hz", 15.0, "tour", 0.0, "coverage tour, 15 Hz"),
        TrajectoryStyle("drop30", 10.0, "tour", 0.3, "coverage tour, 10 Hz, 30 % dropped"),
    )
}
STYLE_NAMES = tuple(STYLES)


def style_of_seed(seed: int) -> str:
    """Return the style a seed is played in by default (the styles take turns)."""
    return STYLE_NAMES[seed % len(STYLE_NAMES)]


def is_static_seed(seed: int) -> bool:
    """Tell whether a seed's episode has no changes: one in four blocks of five seeds.

    Seeds 15-19, 35-39, ..., 115-119 and 135-139: every style gets static episodes.
    """
    return (seed // len(STYLE_NAMES)) % 4 == 3


@dataclass
class ChangeEpisode:
    """A generated episode, ready for :class:`memory_sim.episode.EpisodeRunner`.

    Attributes:
        seed: the seed it came from (also the sensor noise seed).
        style: its trajectory style.
        static: True when nothing changes.
        scene: the house with the look-alikes in it (pass as ``scene=`` to the runner).
        episode: segments ``tour1``, ``changes`` and ``tour2``, and the change events.
        lookalikes: names of the look-alike instances (one asset, one tint).
    """

    seed: int
    style: TrajectoryStyle
    static: bool
    scene: SceneSpec
    episode: Episode
    lookalikes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Return e.g. ``changes_seed103_inspection``."""
        return self.episode.name

    def sim_config(self, width_px: int = 320, height_px: int = 240) -> SimConfig:
        """Return the simulator configuration: the style's rate, the seed's sensor noise."""
        config = SimConfig(rate_hz=self.style.rate_hz, seed=self.seed)
        config.camera.width_px, config.camera.height_px = width_px, height_px
        return config

    def dropped_frames(self, frame_count: int) -> np.ndarray:
        """Return a (frame_count,) bool array: True for the frames the style drops."""
        rng = np.random.default_rng([self.seed, 3])
        return rng.random(frame_count) < self.style.drop_prob

    def write(self, folder: str | Path) -> Path:
        """Write the scene (JSON) and the episode (YAML, loadable by ``load_episode``).

        Returns the episode file's path; the sim publisher and ``make demo`` can play it.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        scene_file = folder / f"{self.name}_scene.json"
        scene_file.write_text(json.dumps(scene_to_dict(self.scene)))
        doc = episode_to_dict(self.episode, scene_file.name)
        path = folder / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
        return path


def episode_to_dict(episode: Episode, scene_file: str) -> dict[str, Any]:
    """Return the YAML document of ``episode`` with its scene read from ``scene_file``."""
    cam = episode.camera
    camera: dict[str, Any] = {
        "height_m": cam.height_m,
        "pitch_deg": cam.pitch_deg,
        "speed_mps": cam.speed_mps,
        "yaw_rate_dps": cam.yaw_rate_dps,
    }
    if cam.start_xy is not None:
        camera["start"] = {"position": list(cam.start_xy), "yaw_deg": cam.start_yaw_deg}
    elif cam.start_room:
        camera["start"] = {"room": cam.start_room, "yaw_deg": cam.start_yaw_deg}
    segments = []
    for s in episode.segments:
        item: dict[str, Any] = {"name": s.name} if s.name else {}
        item[s.kind] = dict(s.args)
        if s.repeat != 1:
            item["repeat"] = s.repeat
        segments.append(item)
    events = []
    for e in episode.events:
        item = {"after": e.after} if e.after else {}
        item["at_s"] = e.at_s
        item[e.kind] = dict(e.args)
        events.append(item)
    return {
        "name": episode.name,
        "description": episode.description,
        "scene": {"file": scene_file},
        "camera": camera,
        "segments": segments,
        "events": events,
    }


# ---------------------------------------------------------------------------- free places
@dataclass
class _Box:
    """An axis-aligned box claimed by an object (metres, map frame)."""

    lo: np.ndarray
    hi: np.ndarray


class _Places:
    """Finds free places for objects on supports and floors, never reusing a claimed box.

    Boxes of objects that leave (moved or removed) stay claimed, so no change lands where another
    object stood: a vacated place seen empty must mean the object left.
    """

    def __init__(self, scene: SceneSpec, sim: Simulator, rng: np.random.Generator) -> None:
        self.scene = scene
        self.sim = sim
        self.rng = rng
        self.truth = {t.name: t for t in sim.objects()}
        self.claimed = [_Box(t.box_min.copy(), t.box_max.copy()) for t in self.truth.values()]
        self.supports = [
            t
            for t in self.truth.values()
            if t.static and t.label in SUPPORT_LABELS and 0.35 <= t.box_max[2] <= 1.0
        ]
        self._extents: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def extent(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (min, max) of asset ``key`` relative to its base at yaw 0 (cached)."""
        if key not in self._extents:
            self._extents[key] = self.sim.measure(object_from_asset(key, "probe", Pose()))
        return self._extents[key]

    def is_free(self, lo: np.ndarray, hi: np.ndarray, margin: float = 0.05) -> bool:
        """Tell whether the box (lo, hi) grown by ``margin`` in x, y meets no claimed box."""
        for b in self.claimed:
            if (
                lo[0] - margin < b.hi[0]
                and b.lo[0] < hi[0] + margin
                and lo[1] - margin < b.hi[1]
                and b.lo[1] < hi[1] + margin
                and lo[2] + 0.005 < b.hi[2]
                and b.lo[2] < hi[2] - 0.005
            ):
                return False
        return True

    def find(
        self,
        key: str,
        rooms: list[str],
        away_from: np.ndarray | None = None,
        tries: int = 200,
    ) -> tuple[list[float], float] | None:
        """Return a free base position [x, y, z] and yaw for asset ``key`` in one of ``rooms``.

        Supports first, the floor for floor assets; ``away_from``: at least ``MIN_MOVE_M`` from
        this point. None when no place is found.
        """
        lo0, hi0 = self.extent(key)
        supports = [s for s in self.supports if s.room in rooms]
        on_floor = key in FLOOR_ASSETS
        for _ in range(tries):
            quarter = int(self.rng.integers(2))
            yaw = quarter * math.pi / 2
            lo, hi = lo0.copy(), hi0.copy()
            if quarter % 2:
                lo[:2], hi[:2] = -hi0[[1, 0]], -lo0[[1, 0]]  # a quarter turn swaps x and y
                lo[1], hi[1] = lo0[0], hi0[0]
            half = 0.5 * (hi[:2] - lo[:2]) + 0.03
            if supports and (not on_floor or self.rng.random() < 0.5):
                s = supports[int(self.rng.integers(len(supports)))]
                span_lo, span_hi = s.box_min[:2] + half, s.box_max[:2] - half
                z = float(s.box_max[2])
            elif on_floor:
                room = self.scene.room(rooms[int(self.rng.integers(len(rooms)))])
                span_lo = np.asarray(room.min_xy) + 0.5 + half
                span_hi = np.asarray(room.max_xy) - 0.5 - half
                z = 0.0
            else:
                return None
            if np.any(span_lo >= span_hi):
                continue
            cxy = self.rng.uniform(span_lo, span_hi)
            if z == 0.0 and not self._floor_ok(cxy):
                continue
            base = np.array([cxy[0] - 0.5 * (lo[0] + hi[0]), cxy[1] - 0.5 * (lo[1] + hi[1]), 0.0])
            base[2] = z - lo[2] + 0.002
            box_lo, box_hi = base + lo, base + hi
            centre = 0.5 * (box_lo + box_hi)
            if away_from is not None and np.linalg.norm(centre - away_from) < MIN_MOVE_M:
                continue
            if not self.is_free(box_lo, box_hi):
                continue
            self.claimed.append(_Box(box_lo, box_hi))
            return [round(float(v), 3) for v in base], round(math.degrees(yaw), 1)
        return None

    def _floor_ok(self, xy: np.ndarray) -> bool:
        """Tell whether a floor place is away from room centres (the camera spins there), doors."""
        for r in self.scene.rooms:
            if math.dist(r.center_xy, xy) < 1.0:
                return False
        return all(math.dist(p.position_xy, xy) >= 1.3 for p in self.scene.portals)


# ---------------------------------------------------------------------------- generation
def make_change_episode(
    seed: int, style: str | None = None, static: bool | None = None
) -> ChangeEpisode:
    """Generate the episode of ``seed`` in ``style`` (default :func:`style_of_seed`).

    ``static`` defaults to :func:`is_static_seed`. The same arguments always give the same
    episode.
    """
    style_name = style or style_of_seed(seed)
    if style_name not in STYLES:
        raise ValueError(f"unknown trajectory style {style_name!r}; known: {list(STYLES)}")
    st = STYLES[style_name]
    static = is_static_seed(seed) if static is None else static
    rng = np.random.default_rng([seed, 1])
    rooms_x, rooms_y = ((2, 1), (1, 2))[int(rng.integers(2))]
    scene = generate_house(
        ProceduralConfig(seed=seed, rooms_x=rooms_x, rooms_y=rooms_y, objects_per_room=6)
    )
    room_names = [r.name for r in scene.rooms]
    config = SimConfig()
    config.camera.width_px, config.camera.height_px = 64, 48
    with Simulator(scene, config, keep_frame_truth=False) as sim:
        places = _Places(scene, sim, rng)
        lookalikes = _add_lookalikes(scene, places, rng, seed)
    # The change set is planned against the scene with its look-alikes.
    with Simulator(scene, config, keep_frame_truth=False) as sim:
        places = _Places(scene, sim, rng)
        events = [] if static else _change_set(scene, places, rng, lookalikes)
        viewpoints_rng = np.random.default_rng([seed, 2, STYLE_NAMES.index(style_name)])
        start_room = room_names[int(rng.integers(len(room_names)))]
        if st.path == "tour":
            tours = [Segment("coverage", {"turns": 1.0}, name=name) for name in ("tour1", "tour2")]
        else:
            tours = [
                Segment(
                    "viewpoints",
                    {"points": _viewpoints(scene, places, viewpoints_rng, st)},
                    name=name,
                )
                for name in ("tour1", "tour2")
            ]
    segments = [
        tours[0],
        Segment("hold", {"duration_s": CHANGE_WINDOW_S}, name="changes"),
        tours[1],
    ]
    camera = CameraPath(start_room=start_room, start_yaw_deg=float(rng.uniform(-180, 180)))
    if st.path == "inspection":
        x, y, yaw_deg, _ = segments[0].args["points"][0]
        camera = CameraPath(start_xy=(x, y), start_yaw_deg=yaw_deg)
    name = f"changes_seed{seed}_{style_name}" + ("_static" if static else "")
    episode = Episode(
        path=f"<generated {name}>",
        name=name,
        description=f"seed {seed}, {st.description}, "
        + ("static" if static else f"{len(events)} changes"),
        scene_source="generated",
        scene_args={"seed": seed},
        camera=camera,
        segments=segments,
        events=events,
    )
    return ChangeEpisode(seed, st, static, scene, episode, lookalikes)


def _add_lookalikes(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, seed: int
) -> list[str]:
    """Add 2-7 identical instances of one asset around the house; return their names."""
    key = LOOKALIKE_ASSETS[int(rng.integers(len(LOOKALIKE_ASSETS)))]
    count = int(rng.integers(2, 8))
    rooms = [r.name for r in scene.rooms]
    names = []
    for k in range(count):
        room = rooms[int(rng.integers(len(rooms)))]
        found = places.find(key, [room])
        if found is None:
            continue
        base, yaw_deg = found
        name = f"{room}/lookalike_{key}_{k}"
        spec = object_from_asset(
            key,
            name,
            Pose.from_xyz_rpy(tuple(base), yaw=math.radians(yaw_deg)),
            room=room,
            tint_key=f"lookalike_{seed}",
        )
        scene.objects.append(spec)
        names.append(name)
    return names


def _change_set(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, lookalikes: list[str]
) -> list[Event]:
    """Draw the episode's changes; every event falls inside the ``changes`` segment."""
    rooms = [r.name for r in scene.rooms]
    truth = places.truth
    small = [
        t.name
        for t in truth.values()
        if not t.static and t.label in KEY_OF_LABEL and t.name not in lookalikes
    ]
    rng.shuffle(small)
    plans: list[tuple[str, dict[str, Any]]] = []

    def move(name: str, across: bool) -> bool:
        t = truth[name]
        targets = [r for r in rooms if (r != t.room) == across] or rooms
        found = places.find(KEY_OF_LABEL[t.label], targets, away_from=t.center)
        if found is None:
            return False
        plans.append(("move", {"object": name, "position": found[0], "yaw_deg": found[1]}))
        return True

    for across in (False, True):
        for _ in range(int(rng.integers(1, 3))):
            while small and not move(small.pop(), across):
                pass
    for _ in range(int(rng.integers(1, 3))):
        if small:
            plans.append(("remove", {"object": small.pop()}))
    chairs = [t.name for t in truth.values() if t.label == "chair"]
    if len(chairs) >= 2 and rng.random() < 0.4:
        plans.append(("remove", {"object": chairs[int(rng.integers(len(chairs)))]}))
    for k in range(int(rng.integers(1, 3))):
        key = ADDED_ASSETS[int(rng.integers(len(ADDED_ASSETS)))]
        room = rooms[int(rng.integers(len(rooms)))]
        found = places.find(key, [room])
        if found is not None:
            args = {"name": f"{room}/added_{key}_{k}", "asset": key, "position": found[0]}
            plans.append(("add", {**args, "yaw_deg": found[1]}))
    stateful = [o for o in scene.objects if o.states and o.label != "door" and not o.structure]
    rng.shuffle(stateful)
    for spec in stateful[: int(rng.integers(1, 3))]:
        other = [s for s in spec.states if s != spec.state]
        plans.append(("set_state", {"object": spec.name, "state": other[0]}))
    twins = list(lookalikes)
    rng.shuffle(twins)
    if twins:
        twin = twins.pop()
        move(twin, across=bool(rng.random() < 0.5))
    if len(twins) >= 2 and rng.random() < 0.6:
        plans.append(("remove", {"object": twins.pop()}))
    step = CHANGE_WINDOW_S / (len(plans) + 1)
    return [
        Event(kind, args, at_s=round(step * (i + 1), 3), after="changes")
        for i, (kind, args) in enumerate(plans)
    ]


def _viewpoints(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, style: TrajectoryStyle
) -> list[list[float]]:
    """Return inspection viewpoints [x, y, yaw_deg, hold_s] over every room, shuffled.

    Each room gets 10-14 viewpoints, each looking at one of the room's objects (furniture or
    small) from 1.2-2.8 m away, from inside the room and never from inside furniture.
    """
    furniture = [t for t in places.truth.values() if t.static]
    out: list[list[float]] = []
    for room in scene.rooms:
        targets = [t.center[:2] for t in places.truth.values() if t.room == room.name]
        n_views = int(rng.integers(10, 15))
        for _ in range(n_views):
            target = targets[int(rng.integers(len(targets)))] if targets else room.center_xy
            for _attempt in range(50):
                d, a = rng.uniform(1.2, 2.8), rng.uniform(-math.pi, math.pi)
                x, y = target[0] + d * math.cos(a), target[1] + d * math.sin(a)
                if not room.contains(x, y, margin=0.45):
                    continue
                if any(
                    t.box_min[0] - 0.25 < x < t.box_max[0] + 0.25
                    and t.box_min[1] - 0.25 < y < t.box_max[1] + 0.25
                    for t in furniture
                ):
                    continue
                yaw = math.atan2(target[1] - y, target[0] - x) + rng.normal(0.0, math.radians(10))
                frames = int(rng.integers(style.frames_per_view[0], style.frames_per_view[1] + 1))
                view = (x, y, math.degrees(yaw), frames / style.rate_hz)
                out.append([round(float(v), n) for v, n in zip(view, (3, 3, 1, 6), strict=True)])
                break
    order = rng.permutation(len(out))
    return [out[i] for i in order]
