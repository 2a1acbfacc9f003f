"""Randomized change episodes for the change-detection benchmark (``bench/bench_changes.py``).

One seed gives one episode: a procedural house, a group of identical look-alikes, a random change
set, and a camera path in one trajectory style. The house, the look-alikes and the change set
depend on the seed only, so one seed can be played in every style; the viewpoints of the
inspection style come from the seed and the style.

An episode is: a first visit of every room (segment ``tour1``), two seconds in which every change
happens at once (``away``; the camera stays where it is), and a second visit (``tour2``).
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

import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from memory_sim.assets import CATALOGUE, object_from_asset
from memory_sim.episode import CameraPath, Episode, Event, Segment
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import ObjectSpec, Pose, RoomSpec, SceneSpec, scene_to_dict
from memory_sim.simulator import SimConfig, Simulator

TRAINING_SEEDS = tuple(range(0, 20))
HELD_OUT_SEEDS = tuple(range(100, 140))
MIN_MOVE_M = 0.8  # a move shorter than this could be read as the same object re-measured
CHANGE_WINDOW_S = 2.0  # length of the CHANGE_SEGMENT; every change happens inside it
TOUR_SPEED_MPS = 0.8  # a brisk robot: a third fewer frames than the shipped episodes' 0.6 m/s
TOUR_YAW_RATE_DPS = 90.0  # and 60 deg/s; 9 degrees between frames at 10 Hz, 45 at 2 Hz
CHANGE_SEGMENT = "away"  # its name, as in tour_changes_tour (the demo asks what changed since)
SUPPORT_LABELS = (
    "table", "coffee table", "counter", "cabinet", "desk", "sideboard", "nightstand", "dresser",
    "drawer cabinet", "tv stand", "stove", "washing machine",
    "kitchen table", "reading desk", "balcony table", "tv cabinet", "cooking bench", "night stand",
)  # fmt: skip
# The Gazebo small house has no rooms: episodes there visit two consecutive stops of the tour of
# sim/episodes/small_house_tour.yaml (living room, kitchen, dining area, fitness corner and
# balcony, bedroom, study), driving through its intermediate points; changes are drawn on the
# supports within SMALL_HOUSE_REGION_M of a stop.
SMALL_HOUSE_STOPS = ((1.5, -3.2), (6.5, -2.2), (5.0, 2.5), (-0.5, 2.8), (-5.5, 0.2), (-6.5, -2.5))
SMALL_HOUSE_STOP_NAMES = (
    "living_room", "kitchen", "dining_area", "fitness_corner_and_balcony", "bedroom", "study",
)  # fmt: skip
SMALL_HOUSE_VIA = {
    ((1.5, -3.2), (6.5, -2.2)): ((4.5, -2.5),),
    ((5.0, 2.5), (-0.5, 2.8)): ((1.0, 2.5),),
    ((-0.5, 2.8), (-5.5, 0.2)): ((-2.0, 0.5),),
}
SMALL_HOUSE_REGION_M = 3.5  # half side of the square around a stop
SMALL_HOUSE_WINDOWS = 2  # episodes visit stops 0-1 or 1-2 (around the others: few supports)
SMALL_HOUSE_OBJECTS = 4  # catalogue objects put on the supports around each stop
SMALL_HOUSE_PITCH_DEG = -20.0
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


class HouseUnavailable(FileNotFoundError):
    """The house an episode needs is not on this machine (the small house's world file)."""


def house_of_seed(seed: int) -> str:
    """Return the house of a seed: the Gazebo small house for one seed in seven, else procedural.

    Seeds 6, 13, 104, 111, 118, 125, 132, 139: several styles, static ones included.
    """
    return "small_house" if seed % 7 == 6 else "procedural"


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
        episode: segments ``tour1``, ``away`` (the changes) and ``tour2``, and the events.
        lookalikes: names of the look-alike instances (one asset, one tint).
        house: "procedural" or "small_house".
    """

    seed: int
    style: TrajectoryStyle
    static: bool
    scene: SceneSpec
    episode: Episode
    lookalikes: list[str] = field(default_factory=list)
    house: str = "procedural"

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


@dataclass
class _Region:
    """A part of the house that changes are drawn in: a room, or the area around a stop.

    Attributes:
        name: the room's name, or the stop's.
        lo, hi: (2,) corners of its rectangle, metres, map frame.
        stop: (2,) a free place inside it (the room centre; a stop of the small-house tour).
        view_radius: inspection viewpoints stand at most this far from ``stop`` (metres).
        floor: objects may be put on its floor.
    """

    name: str
    lo: np.ndarray
    hi: np.ndarray
    stop: np.ndarray
    view_radius: float = math.inf
    floor: bool = True

    def contains(self, xy: np.ndarray, margin: float = 0.0) -> bool:
        """Tell whether ``xy`` lies inside the rectangle shrunk by ``margin``."""
        return bool(np.all(self.lo + margin <= xy[:2]) and np.all(xy[:2] <= self.hi - margin))


def _room_regions(scene: SceneSpec) -> list[_Region]:
    """One region per room of ``scene``."""
    return [
        _Region(r.name, np.asarray(r.min_xy, float), np.asarray(r.max_xy, float),
                np.asarray(r.center_xy, float))
        for r in scene.rooms
    ]  # fmt: skip


class _Places:
    """Finds free places for objects on supports and floors, never reusing a claimed box.

    Boxes of objects that leave (moved or removed) stay claimed, so no change lands where another
    object stood: a vacated place seen empty must mean the object left.
    """

    def __init__(
        self,
        scene: SceneSpec,
        sim: Simulator,
        rng: np.random.Generator,
        regions: list[_Region],
    ) -> None:
        self.scene = scene
        self.sim = sim
        self.rng = rng
        self.regions = {r.name: r for r in regions}
        self.truth = {t.name: t for t in sim.objects()}
        self.region_of = {
            name: self._region_at(t.room, t.center) for name, t in self.truth.items()
        }
        self.claimed = [_Box(t.box_min.copy(), t.box_max.copy()) for t in self.truth.values()]
        self.supports = [
            t
            for t in self.truth.values()
            if t.static
            and t.label in SUPPORT_LABELS
            and 0.35 <= t.box_max[2] <= 1.0
            and self.region_of[t.name]
        ]
        self._extents: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, spec: ObjectSpec) -> None:
        """Add an object to the scratch simulator, so later changes may use it."""
        self.sim.add_object(spec, stamp=0.0)
        truth = self.sim.object_truth(spec.name)
        self.truth[spec.name] = truth
        self.region_of[spec.name] = self._region_at(truth.room, truth.center)

    def _region_at(self, room: str, centre: np.ndarray) -> str:
        """Return the region of an object: its room's, or the nearest stop's holding it."""
        if room in self.regions:
            return room
        holding = [r for r in self.regions.values() if r.contains(centre)]
        if not holding:
            return ""
        return min(holding, key=lambda r: float(np.linalg.norm(r.stop - centre[:2]))).name

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

        ``rooms`` are region names (:class:`_Region`).

        Supports first, the floor for floor assets; ``away_from``: at least ``MIN_MOVE_M`` from
        this point. None when no place is found.
        """
        lo0, hi0 = self.extent(key)
        rooms = [r for r in rooms if r in self.regions]
        supports = [s for s in self.supports if self.region_of[s.name] in rooms]
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
            elif on_floor and all(self.regions[r].floor for r in rooms):
                region = self.regions[rooms[int(self.rng.integers(len(rooms)))]]
                span_lo = region.lo + 0.5 + half
                span_hi = region.hi - 0.5 - half
                z = 0.0
            elif not supports:
                return None
            else:
                continue
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
    seed: int, style: str | None = None, static: bool | None = None, house: str | None = None
) -> ChangeEpisode:
    """Generate the episode of ``seed`` in ``style`` (default :func:`style_of_seed`).

    ``static`` defaults to :func:`is_static_seed`, ``house`` ("procedural" or "small_house") to
    :func:`house_of_seed`. The same arguments always give the same episode.

    Raises:
        HouseUnavailable: the small house's world file is not on this machine.
    """
    style_name = style or style_of_seed(seed)
    if style_name not in STYLES:
        raise ValueError(f"unknown trajectory style {style_name!r}; known: {list(STYLES)}")
    st = STYLES[style_name]
    static = is_static_seed(seed) if static is None else static
    house = house or house_of_seed(seed)
    rng = np.random.default_rng([seed, 1])
    config = SimConfig()
    config.camera.width_px, config.camera.height_px = 64, 48
    if house == "procedural":
        rooms_x, rooms_y = ((2, 1), (1, 2))[int(rng.integers(2))]
        scene = generate_house(
            ProceduralConfig(seed=seed, rooms_x=rooms_x, rooms_y=rooms_y, objects_per_room=6)
        )
        regions = _room_regions(scene)
        stops: list[tuple[float, float]] = []
    elif house == "small_house":
        scene, regions, stops = _small_house(rng)
    else:
        raise ValueError(f"unknown house {house!r}; known: procedural, small_house")
    with Simulator(scene, config, keep_frame_truth=False) as sim:
        places = _Places(scene, sim, rng, regions)
        if house == "small_house":
            _scatter(scene, places, rng)
        lookalikes = _add_lookalikes(scene, places, rng, seed)
        events = [] if static else _change_set(scene, places, rng, lookalikes)
        viewpoints_rng = np.random.default_rng([seed, 2, STYLE_NAMES.index(style_name)])
        start = int(rng.integers(len(regions)))
        if st.path == "inspection":
            tours = [
                [Segment("viewpoints", {"points": _viewpoints(places, viewpoints_rng, st)})]
                for _ in range(2)
            ]
        elif house == "procedural":
            tours = [[Segment("coverage", {"turns": 1.0})] for _ in range(2)]
        else:
            tours = [_stop_tour(stops), _stop_tour(stops[::-1])]
    tours[0][0].name, tours[1][0].name = "tour1", "tour2"
    segments = [
        *tours[0],
        Segment("hold", {"duration_s": CHANGE_WINDOW_S}, name=CHANGE_SEGMENT),
        *tours[1],
    ]
    camera = CameraPath(
        start_room=regions[start].name, start_yaw_deg=float(rng.uniform(-180, 180))
    )
    if st.path == "inspection":
        x, y, yaw_deg, _ = segments[0].args["points"][0]
        camera = CameraPath(start_xy=(x, y), start_yaw_deg=yaw_deg)
    elif house == "small_house":
        camera = CameraPath(start_xy=stops[0], start_yaw_deg=camera.start_yaw_deg)
    if house == "small_house":
        camera.pitch_deg = SMALL_HOUSE_PITCH_DEG
    camera.speed_mps, camera.yaw_rate_dps = TOUR_SPEED_MPS, TOUR_YAW_RATE_DPS
    tag = "" if house == "procedural" else f"_{house}"
    name = f"changes_seed{seed}_{style_name}{tag}" + ("_static" if static else "")
    episode = Episode(
        path=f"<generated {name}>",
        name=name,
        description=f"seed {seed}, {house}, {st.description}, "
        + ("static" if static else f"{len(events)} changes"),
        scene_source="generated",
        scene_args={"seed": seed, "house": house},
        camera=camera,
        segments=segments,
        events=events,
    )
    return ChangeEpisode(seed, st, static, scene, episode, lookalikes, house)


def _stop_tour(stops: list[tuple[float, float]]) -> list[Segment]:
    """Drive from stop to stop (through the tour's intermediate points), turning at each stop."""
    out = [Segment("spin", {"turns": 1.0})]
    for a, b in itertools.pairwise(stops):
        via = SMALL_HOUSE_VIA.get((a, b)) or SMALL_HOUSE_VIA.get((b, a)) or ()
        out.append(Segment("waypoints", {"points": [list(p) for p in (*via, b)]}))
        out.append(Segment("spin", {"turns": 1.0}))
    return out


def small_house_world() -> Path | None:
    """Return the Gazebo small house's world file, or None when it is not on this machine.

    Looked for under ``$MEMORY_SIM_SHARED_DATA`` and in ``shared/data`` beside the checkout.
    """
    rel = Path("aws_small_house") / "worlds" / "small_house.world"
    roots = [os.environ.get("MEMORY_SIM_SHARED_DATA", "")]
    here = Path(__file__).resolve()
    roots += [str(p / "shared" / "data") for p in here.parents[2:5]]
    for root in roots:
        if root and (Path(root) / rel).is_file():
            return Path(root) / rel
    return None


def import_small_house(rooms: list[RoomSpec] | None = None) -> SceneSpec:
    """Import the Gazebo small house (its objects get the room of ``rooms`` holding them).

    Raises:
        HouseUnavailable: the world file is not on this machine (:func:`small_house_world`).
    """
    from memory_sim.gazebo import import_world

    world = small_house_world()
    if world is None:
        raise HouseUnavailable(
            "the Gazebo small house (aws_small_house/worlds/small_house.world) is not under "
            "$MEMORY_SIM_SHARED_DATA nor in shared/data beside the checkout"
        )
    mesh_log = logging.getLogger("memory_sim.mesh_cache")
    level = mesh_log.level
    mesh_log.setLevel(logging.ERROR)  # the world's missing photo textures, once per episode
    try:
        return import_world(world, rooms=rooms or ())
    finally:
        mesh_log.setLevel(level)  # a process-wide setting: other importers still hear of them


def small_house_rooms() -> list[RoomSpec]:
    """Return rooms of the small house: one rectangle around each stop of its tour.

    Named :data:`SMALL_HOUSE_STOP_NAMES`. Each starts as the box holding every stop's square of
    half side ``SMALL_HOUSE_REGION_M`` (the whole house); two rectangles that overlap are cut at
    the midpoint of their stops along the axis on which the stops lie farther apart. The rooms
    do not overlap and each holds its stop (not at its centre); a few strips between them belong
    to no room.
    """
    stops = np.asarray(SMALL_HOUSE_STOPS, dtype=np.float64)
    lo = np.tile(stops.min(axis=0) - SMALL_HOUSE_REGION_M, (len(stops), 1))
    hi = np.tile(stops.max(axis=0) + SMALL_HOUSE_REGION_M, (len(stops), 1))
    for i, j in itertools.combinations(range(len(stops)), 2):
        if np.all(lo[i] < hi[j]) and np.all(lo[j] < hi[i]):
            axis = int(np.argmax(np.abs(stops[j] - stops[i])))
            mid = 0.5 * (stops[i, axis] + stops[j, axis])
            a, b = (i, j) if stops[i, axis] < stops[j, axis] else (j, i)
            hi[a, axis], lo[b, axis] = min(hi[a, axis], mid), max(lo[b, axis], mid)
    return [
        RoomSpec(
            name, name.replace("_", " "), (float(a[0]), float(a[1])), (float(b[0]), float(b[1]))
        )
        for name, a, b in zip(SMALL_HOUSE_STOP_NAMES, lo, hi, strict=True)
    ]


def small_house_scene(rng: np.random.Generator, objects: int) -> SceneSpec:
    """Return the small house with :func:`small_house_rooms` and catalogue objects on its supports.

    ``objects`` catalogue assets whose labels the house has not (one of each, drawn with
    ``rng``) go on the supports (:data:`SUPPORT_LABELS`) of the rooms in turn.

    Raises:
        HouseUnavailable: the world file is not on this machine.
    """
    rooms = small_house_rooms()
    scene = import_small_house(rooms)
    labels = {o.label for o in scene.objects}
    keys = [k for k in sorted(CATALOGUE) if CATALOGUE[k].label not in labels]
    keys = [keys[i] for i in rng.permutation(len(keys))[:objects]]
    regions = [
        _Region(r.name, np.asarray(r.min_xy), np.asarray(r.max_xy), np.asarray(p), floor=False)
        for r, p in zip(rooms, SMALL_HOUSE_STOPS, strict=True)
    ]
    config = SimConfig()
    config.camera.width_px, config.camera.height_px = 64, 48
    with Simulator(scene, config, keep_frame_truth=False) as sim:
        _scatter(scene, _Places(scene, sim, rng, regions), rng, keys)
    return scene


def _small_house(
    rng: np.random.Generator,
) -> tuple[SceneSpec, list[_Region], list[tuple[float, float]]]:
    """Import the small house; pick two consecutive stops of its tour as regions."""
    scene = import_small_house()
    first = int(rng.integers(SMALL_HOUSE_WINDOWS))
    stops = list(SMALL_HOUSE_STOPS[first : first + 2])
    r = SMALL_HOUSE_REGION_M
    regions = [
        _Region(
            f"stop_{first + k}", np.array(p) - r, np.array(p) + r, np.array(p),
            view_radius=1.0, floor=False,
        )
        for k, p in enumerate(stops)
    ]  # fmt: skip
    return scene, regions, stops


def _scatter(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, keys: list[str] | None = None
) -> None:
    """Put catalogue objects on the supports of the regions.

    Default: ``SMALL_HOUSE_OBJECTS`` random :data:`ADDED_ASSETS` on each region. ``keys``: one
    object of each asset, on the regions with supports in turn.
    """
    regions = list(places.regions)
    if keys is not None:
        regions = [
            r for r in regions if any(places.region_of[s.name] == r for s in places.supports)
        ]
    count = len(regions) * SMALL_HOUSE_OBJECTS if keys is None else len(keys) * bool(regions)
    for i in range(count):
        if keys is None:
            region, k = regions[i // SMALL_HOUSE_OBJECTS], i % SMALL_HOUSE_OBJECTS
            key = ADDED_ASSETS[int(rng.integers(len(ADDED_ASSETS)))]
        else:
            region, k, key = regions[i % len(regions)], i, keys[i]
        found = places.find(key, [region])
        if found is None:
            continue
        base, yaw_deg = found
        pose = Pose.from_xyz_rpy(tuple(base), yaw=math.radians(yaw_deg))
        spec = object_from_asset(key, f"{region}/{key}_{k}", pose)
        scene.objects.append(spec)
        places.add(spec)


def _add_lookalikes(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, seed: int
) -> list[str]:
    """Add 2-7 identical instances of one asset around the house; return their names."""
    key = LOOKALIKE_ASSETS[int(rng.integers(len(LOOKALIKE_ASSETS)))]
    count = int(rng.integers(2, 8))
    rooms = list(places.regions)
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
            room=room if room in {r.name for r in scene.rooms} else "",
            tint_key=f"lookalike_{seed}",
        )
        scene.objects.append(spec)
        places.add(spec)
        names.append(name)
    return names


def _change_set(
    scene: SceneSpec, places: _Places, rng: np.random.Generator, lookalikes: list[str]
) -> list[Event]:
    """Draw the episode's changes; every event falls inside the change segment."""
    rooms = list(places.regions)
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
        here = places.region_of.get(name, "")
        targets = [r for r in rooms if (r != here) == across] or rooms
        found = places.find(KEY_OF_LABEL[t.label], targets, away_from=t.center)
        if found is None:
            return False
        plans.append(("move", {"object": name, "position": found[0], "yaw_deg": found[1]}))
        return True

    unmoved: list[str] = []  # no free place found for them: still fine to remove
    for across in (False, True):
        for _ in range(int(rng.integers(1, 3))):
            while small:
                name = small.pop()
                if move(name, across):
                    break
                unmoved.append(name)
    small += unmoved[::-1]
    for _ in range(int(rng.integers(1, 3))):
        if small:
            plans.append(("remove", {"object": small.pop()}))
    chairs = [t.name for t in truth.values() if t.label == "chair" and places.region_of[t.name]]
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
        Event(kind, args, at_s=round(step * (i + 1), 3), after=CHANGE_SEGMENT)
        for i, (kind, args) in enumerate(plans)
    ]


def _viewpoints(
    places: _Places, rng: np.random.Generator, style: TrajectoryStyle
) -> list[list[float]]:
    """Return inspection viewpoints [x, y, yaw_deg, hold_s] over every room, shuffled.

    Each room gets 10-14 viewpoints, each looking at one of the room's objects (furniture or
    small) from 1.2-2.8 m away, from inside the room and never from inside furniture.
    """
    furniture = [t for t in places.truth.values() if t.static]
    out: list[list[float]] = []
    for room in places.regions.values():
        targets = [
            t.center[:2] for n, t in places.truth.items() if places.region_of[n] == room.name
        ]
        n_views = int(rng.integers(10, 15))
        for _ in range(n_views):
            target = targets[int(rng.integers(len(targets)))] if targets else room.stop
            for _attempt in range(50):
                d, a = rng.uniform(1.2, 2.8), rng.uniform(-math.pi, math.pi)
                x, y = target[0] + d * math.cos(a), target[1] + d * math.sin(a)
                if not room.contains(np.array([x, y]), margin=0.45):
                    continue
                if math.dist(room.stop, (x, y)) > room.view_radius:
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
