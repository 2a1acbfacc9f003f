"""The task suite: a house, a first tour, changes while the robot is away, tasks with truth.

For a seed (:func:`build_scenario`):

1. a procedural house (:func:`memory_sim.procedural.generate_house`) or the Gazebo small house
   (``house_kind="small_house"``: :func:`memory_sim.change_episodes.small_house_scene`, rooms
   around the stops of its tour, catalogue objects drawn from the seed on its supports), the
   robot docked in one room;
2. **first tour**: the robot visits every room (A* paths, frames while driving, a spin in each
   room) and the memory ingests every frame; it returns to the dock. The long-term-only variant
   keeps the memory as it is now (a stale map);
3. **changes while away**: objects moved across rooms, removed, added, and furniture opened or
   closed;
4. **return tour** through a seeded subset of the rooms: the memory sees some of the changes;
5. **tasks**, each checkable against the simulator's truth: "go to the X" (moved, added,
   removed, unchanged and never-existing objects), "bring the X to the Y", "is the Z open?",
   "what changed in the R?", "where did you last see the X?". The small house has no furniture
   that opens: no state changes there, so no "is the Z open?" tasks.

Every task starts from the dock with a fresh copy of the memory of step 4.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory_node.core.config import param
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.types import ChangeKind, InvalidInput, MemorySnapshot
from memory_node.tasks.world import TaskWorld, WorldConfig
from memory_sim.assets import CATALOGUE, object_from_asset
from memory_sim.change_episodes import SMALL_HOUSE_STOP_NAMES, SMALL_HOUSE_STOPS, small_house_scene
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import Pose
from memory_sim.simulator import SimStep

SURFACE_LABELS = (
    "table",
    "coffee table",
    "desk",
    "sideboard",
    "counter",
    "nightstand",
    "dresser",
    "tv stand",
    "drawer cabinet",
    # the Gazebo small house's (memory_sim.change_episodes.SUPPORT_LABELS); not its cooking
    # bench: it stands on the kitchen cabinet, whose box (an obstacle) keeps it out of reach
    "kitchen table",
    "reading desk",
    "balcony table",
    "tv cabinet",
    "night stand",
)
"""Furniture that small objects are put on when moved or added."""

HOUSE_KINDS = ("procedural", "small_house")

NEVER_EXISTED = ("giraffe", "umbrella", "guitar", "skateboard", "kettle", "toaster")
"""Labels no house holds: "go to the giraffe" must end with "not found"."""

NOT_SMALL = ("chair", "plant")


@dataclass
class SuiteConfig:
    """How each scenario of the suite is made."""

    moves: int = param(3, "objects moved across rooms while the robot is away", min_value=0)
    removals: int = param(2, "objects removed while the robot is away", min_value=0)
    additions: int = param(2, "objects added while the robot is away", min_value=0)
    state_changes: int = param(2, "furniture opened or closed while away", min_value=0)
    return_share: float = param(
        0.5, "share of the rooms the return tour visits", min_value=0.0, max_value=1.0
    )
    small_house_objects: int = param(
        9, "catalogue objects put on the small house's supports (one per asset)", min_value=0
    )


@dataclass
class Task:
    """One task and its truth.

    Attributes:
        id: unique in the suite, e.g. "s1003_t04".
        kind: "go_to", "bring", "is_open", "what_changed" or "where_last".
        text: the instruction, e.g. "bring the duck to the sofa".
        label: the object named (X or Z); "" for what_changed.
        dest_label: Y of "bring the X to the Y".
        room: room name of "what changed in the R?".
        category: what happened to the object: "moved", "removed", "added", "state",
            "unchanged", "never_existed"; "room" for what_changed.
        truth: expected answer: ``name`` (go_to/bring), ``dest_name``, ``absent`` (nothing to
            find), ``state``, ``labels`` (what changed), ``position`` (where last seen).
    """

    id: str
    kind: str
    text: str
    label: str = ""
    dest_label: str = ""
    room: str = ""
    category: str = "unchanged"
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the task is about an object that changed while the robot was away."""
        return self.category in ("moved", "removed", "added", "state")


@dataclass
class Scenario:
    """A house after its tours and changes, the memories built, and its tasks."""

    seed: int
    world: TaskWorld
    dock_xy: np.ndarray
    tour_end_s: float
    return_start_s: float
    long_term: MemorySnapshot
    full: MemorySnapshot
    memory_config: SceneMemoryConfig
    tasks: list[Task]
    last_seen: dict[int, tuple[float, np.ndarray]]
    rooms_on_return: list[str]
    house_kind: str = "procedural"


def task_memory_config(features_mode: str = "off") -> SceneMemoryConfig:
    """Return the memory's configuration for the suite: defaults, every depth pixel used.

    The suite's camera is small (320 x 240), so the default stride of 2 (set for 640 x 480)
    would leave a mug a few points; stride 1 keeps the same points per object as 640 x 480
    at stride 2. ``features_mode`` "off" (the benchmark's default) ranks queries by label
    match only: the segmenter gives labels, and the MiniLM text model would dominate the run
    time on a loaded 2-core machine; "label_text" uses it.
    """
    config = SceneMemoryConfig()
    config.depth.pixel_stride = 1
    config.features.mode = features_mode
    return config


def room_words(name: str) -> str:
    """Return how a room is said in a task (``living_room`` -> "living room")."""
    return name.replace("_", " ")


def tour(world: TaskWorld, rooms: list[str]) -> None:
    """Visit ``rooms`` in order (A* to each room's centre, then a spin)."""
    for room in rooms:
        path = world.plan_to(world.room_goal(room))
        if path is None:
            continue
        world.follow(path)
        world.spin()


def nearest_first(world: TaskWorld, rooms: list[str]) -> list[str]:
    """Order ``rooms`` greedily by straight-line distance from the robot."""
    order, todo, here = [], list(rooms), world.xy.copy()
    while todo:
        nxt = min(todo, key=lambda r: float(np.hypot(*(world.room_centre(r) - here))))
        order.append(nxt)
        todo.remove(nxt)
        here = world.room_centre(nxt)
    return order


def go_dock(world: TaskWorld, dock_xy: np.ndarray) -> None:
    """Drive back to the dock."""
    goal = np.zeros_like(world.grid.free)
    goal[world.grid.cell(dock_xy)] = True
    path = world.plan_to(goal)
    if path is not None:
        world.follow(path)
    world.xy = dock_xy.copy()


def _place_on(world: TaskWorld, rng: np.random.Generator, surface: Any, lo: np.ndarray) -> Pose:
    """Return a pose on the top of ``surface`` (ObjectTruth) clear of other small objects."""
    others = [o for o in world.sim.objects() if not o.static]
    for _ in range(30):
        x = rng.uniform(surface.box_min[0] + 0.12, surface.box_max[0] - 0.12)
        y = rng.uniform(surface.box_min[1] + 0.12, surface.box_max[1] - 0.12)
        if all(np.hypot(o.center[0] - x, o.center[1] - y) > 0.25 for o in others):
            break
    z = float(surface.box_max[2] - lo[2] + 0.002)
    return Pose.from_xyz_rpy((x, y, z), yaw=float(rng.uniform(-math.pi, math.pi)))


def apply_changes(
    world: TaskWorld, rng: np.random.Generator, config: SuiteConfig, seen: set[int]
) -> None:
    """Move, remove, add and open/close objects (the robot is away and sees nothing).

    Moved and removed objects are among those the robot saw on its tour (``seen`` instance
    ids): an object the segmenter never reports cannot be the subject of a fair task.
    """
    sim = world.sim
    present = sim.objects()
    ever = Counter(o.label for o in sim.objects(include_absent=True))
    small = [
        o for o in present if not o.static and o.label not in NOT_SMALL and o.instance_id in seen
    ]
    unique_first = sorted(small, key=lambda o: (ever[o.label] != 1, rng.random()))
    surfaces = [o for o in present if o.static and o.label in SURFACE_LABELS]
    used: set[str] = set()
    for obj in unique_first[: config.moves]:
        targets = [s for s in surfaces if s.room and s.room != obj.room]
        if not targets:
            continue
        surface = targets[int(rng.integers(len(targets)))]
        lo, _ = sim.local_extent(obj.name)
        sim.move_object(obj.name, _place_on(world, rng, surface, lo))
        used.add(obj.name)
    rest = [o for o in unique_first if o.name not in used]
    for obj in rest[: config.removals]:
        sim.remove_object(obj.name)
    labels_now = set(ever)
    fresh = [k for k, e in sorted(CATALOGUE.items()) if e.label not in labels_now]
    rng.shuffle(fresh)
    for k, key in enumerate(fresh[: config.additions]):
        surface = surfaces[int(rng.integers(len(surfaces)))]
        spec = object_from_asset(key, f"{surface.room}/new_{key}_{k}", Pose())
        lo, _ = sim.measure(spec)
        spec.pose = _place_on(world, rng, surface, lo)
        spec.room = surface.room
        sim.add_object(spec)
    stateful = [
        o
        for o in present
        if o.state in ("open", "closed") and ever[o.label] == 1 and o.label != "door"
    ]
    rng.shuffle(stateful)
    for obj in stateful[: config.state_changes]:
        sim.set_state(obj.name, "closed" if obj.state == "open" else "open")


def build_scenario(
    seed: int,
    world_config: WorldConfig | None = None,
    suite_config: SuiteConfig | None = None,
    memory_config: SceneMemoryConfig | None = None,
    house: ProceduralConfig | None = None,
    house_kind: str = "procedural",
) -> Scenario:
    """Make the house of ``seed``, run the tours and changes, and list its tasks.

    ``house_kind``: "procedural" (``house`` configures it) or "small_house" (the Gazebo small
    house; its objects are drawn from ``seed``).

    Raises:
        memory_sim.change_episodes.HouseUnavailable: the small house's world file is absent.
    """
    if house_kind not in HOUSE_KINDS:
        raise ValueError(f"unknown house_kind {house_kind!r}; known: {', '.join(HOUSE_KINDS)}")
    rng = np.random.default_rng(seed)
    suite_config = suite_config or SuiteConfig()
    memory_config = memory_config or task_memory_config()
    if house_kind == "small_house":
        scene = small_house_scene(
            np.random.default_rng([seed, 4]), suite_config.small_house_objects
        )
    else:
        house = copy.deepcopy(house) if house is not None else ProceduralConfig()
        house.seed = seed
        scene = generate_house(house)
    wc = copy.deepcopy(world_config) if world_config is not None else WorldConfig()
    wc.seed = seed
    world = TaskWorld(scene, wc)
    if house_kind == "small_house":  # look around from the tour's stops, not the rooms' centres
        world.room_centres.update(
            (name, np.array(p, dtype=np.float64))
            for name, p in zip(SMALL_HOUSE_STOP_NAMES, SMALL_HOUSE_STOPS, strict=True)
        )
    dock_room = scene.rooms[int(rng.integers(len(scene.rooms)))]
    dock = world.grid.nearest_free(world.room_centre(dock_room.name), max_m=3.0)
    if dock is None:
        raise RuntimeError(f"seed {seed}: no free cell near the dock room's centre")
    world.xy = dock.copy()
    memory = SceneMemory(memory_config)
    last_seen: dict[int, tuple[float, np.ndarray]] = {}

    def ingest(step: SimStep) -> None:
        with contextlib.suppress(InvalidInput):
            memory.ingest(step.frame)
        # what the segmenter reported with the true label: the robot saw it there
        labels = step.frame.instance_labels or {}
        for iid, px in step.truth.visible_in_range.items():
            truth = world.sim.object_truth(iid)
            if px >= wc.min_pixels and labels.get(iid, ("",))[0] == truth.label:
                last_seen[iid] = (step.frame.stamp, truth.center.copy())

    world.sinks = [ingest]
    all_rooms = [r.name for r in scene.rooms]
    tour(world, nearest_first(world, all_rooms))
    go_dock(world, dock)
    tour_end = world.sim.time
    long_term = copy.deepcopy(memory.snapshot())
    apply_changes(world, rng, suite_config, set(last_seen))
    return_start = world.sim.time
    k = round(suite_config.return_share * len(all_rooms))
    chosen = list(rng.choice(all_rooms, size=k, replace=False)) if k else []
    tour(world, nearest_first(world, [str(r) for r in chosen]))
    go_dock(world, dock)
    full = copy.deepcopy(memory.snapshot())
    world.sinks = []
    world.odometry = type(world.odometry)()
    tasks = make_tasks(seed, world, last_seen, rng)
    return Scenario(
        seed=seed,
        world=world,
        dock_xy=dock,
        tour_end_s=tour_end,
        return_start_s=return_start,
        long_term=long_term,
        full=full,
        memory_config=memory_config,
        tasks=tasks,
        last_seen=last_seen,
        rooms_on_return=[str(r) for r in chosen],
        house_kind=house_kind,
    )


def make_tasks(
    seed: int,
    world: TaskWorld,
    last_seen: dict[int, tuple[float, np.ndarray]],
    rng: np.random.Generator,
) -> list[Task]:
    """Return the tasks of a scenario, with their truth taken from the simulator."""
    sim = world.sim
    present = sim.objects()
    ever = Counter(o.label for o in sim.objects(include_absent=True))
    by_name = {o.name: o for o in sim.objects(include_absent=True)}
    kinds: dict[str, str] = {}
    for ch in sim.changes:
        kinds[ch.name] = {
            ChangeKind.MOVED: "moved",
            ChangeKind.DISAPPEARED: "removed",
            ChangeKind.APPEARED: "added",
            ChangeKind.STATE_CHANGED: "state",
        }[ch.kind]
    unique = [o for o in by_name.values() if ever[o.label] == 1]
    small = [o for o in unique if not o.static and o.label not in NOT_SMALL]
    unchanged_small = [
        o for o in small if o.name not in kinds and o.present and o.instance_id in last_seen
    ]
    rng.shuffle(unchanged_small)
    tasks: list[Task] = []

    def add(kind: str, text: str, **kw: Any) -> None:
        tasks.append(Task(f"s{seed}_t{len(tasks):02d}", kind, text, **kw))

    def seen(o: Any) -> bool:
        return o.instance_id in last_seen

    moved = [o for o in small if kinds.get(o.name) == "moved"]
    added = [o for o in small if kinds.get(o.name) == "added"]
    removed = [o for o in small if kinds.get(o.name) == "removed"]
    for o in moved + added + unchanged_small[:1]:
        add(
            "go_to",
            f"go to the {o.label}",
            label=o.label,
            category=kinds.get(o.name, "unchanged"),
            truth={"name": o.name},
        )
    for o in removed[:1]:
        add(
            "go_to",
            f"go to the {o.label}",
            label=o.label,
            category="removed",
            truth={"absent": True},
        )
    absent_label = next(lab for lab in NEVER_EXISTED if lab not in ever)
    add(
        "go_to",
        f"go to the {absent_label}",
        label=absent_label,
        category="never_existed",
        truth={"absent": True},
    )
    dests = [
        o
        for o in present
        if o.static and o.label in (*SURFACE_LABELS, "sofa", "bed") and ever[o.label] == 1
    ]
    for o in (moved[:1] + unchanged_small[1:2]) if dests else []:
        cands = [d for d in dests if d.room != o.room] or dests
        d = cands[int(rng.integers(len(cands)))]
        add(
            "bring",
            f"bring the {o.label} to the {d.label}",
            label=o.label,
            dest_label=d.label,
            category=kinds.get(o.name, "unchanged"),
            truth={"name": o.name, "dest_name": d.name},
        )
    stateful = [
        o
        for o in present
        if o.state in ("open", "closed") and ever[o.label] == 1 and o.label != "door"
    ]
    changed_state = [o for o in stateful if kinds.get(o.name) == "state"]
    same_state = [o for o in stateful if o.name not in kinds]
    rng.shuffle(same_state)
    for o in changed_state + same_state[:1]:
        add(
            "is_open",
            f"is the {o.label} open?",
            label=o.label,
            category=kinds.get(o.name, "unchanged"),
            truth={"state": o.state, "name": o.name},
        )
    per_room: Counter[str] = Counter()
    room_labels: dict[str, set[str]] = {r.name: set() for r in world.scene.rooms}
    for ch in sim.changes:
        for room in {ch.old_room, ch.new_room} - {""}:
            per_room[room] += 1
            room_labels[room].add(ch.event.label)
    busiest = [r for r, _ in per_room.most_common(1)]
    others = [r.name for r in world.scene.rooms if r.name not in busiest]
    picks = busiest + ([others[int(rng.integers(len(others)))]] if others else [])
    for room in picks:
        add(
            "what_changed",
            f"what changed in the {room_words(room)}?",
            room=room,
            category="room",
            truth={"labels": sorted(room_labels[room])},
        )
    for o in [o for o in moved if seen(o)][:1] + [o for o in unchanged_small[2:] if seen(o)][:1]:
        add(
            "where_last",
            f"where did you last see the {o.label}?",
            label=o.label,
            category=kinds.get(o.name, "unchanged"),
            truth={"position": last_seen[o.instance_id][1].tolist(), "name": o.name},
        )
    return tasks


def fresh_memory(scenario: Scenario, which: str) -> SceneMemory:
    """Return a new memory restored from the scenario's ``"full"`` or ``"long_term"`` snapshot."""
    memory = SceneMemory(scenario.memory_config)
    memory.restore(copy.deepcopy(scenario.full if which == "full" else scenario.long_term))
    return memory
