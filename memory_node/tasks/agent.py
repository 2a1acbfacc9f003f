"""The agent: plans a task from the memory's services, then drives, looks and searches.

Variants (the same tasks, the same planner, different knowledge):

* ``no_memory``: no services; every object is searched for room by room (nearest room first);
* ``long_term_only``: the map of the first tour, frozen (no ingest, changes never asked): a
  stale map;
* ``full_memory``: the memory after the return tour, through ``query_objects``, ``get_changes``
  and ``get_scene_graph``; it keeps ingesting what the agent sees;
* ``oracle``: the simulator's truth in place of the memory.

Execution: ``goto`` drives by A* to a remembered object, turns the camera to it and confirms
it from the frame (the segmenter's label within ``confirm_radius_m`` of the remembered place, or
anywhere in view, then approached). When a ``goto`` fails, the next step runs (the next
candidate, then ``search``). ``search`` first approaches sightings of the label made on the way,
then visits the rooms not searched yet and spins in each: a bounded search that ends with "not
found". Without memory every room is visited, nearest first. With memory the rooms are ranked by
what the memory observed (:meth:`Agent._search_ranks`): first the rooms it has not observed
since the object was last confirmed at a place, then those observed since but before it was
known gone, nearest first within a rank; rooms observed after it was known gone come last (the
memory can miss a small object in a room it observed).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.types import ChangeEvent, ChangeKind, SceneObject
from memory_node.planner.plan import Plan, PlanContext, Planner, RuleBasedPlanner, Step
from memory_node.planner.prompt import build_prompt, describe_change
from memory_node.tasks.services import CoreServices, MemoryServices
from memory_node.tasks.suite import Scenario, Task, fresh_memory
from memory_node.tasks.world import Sighting
from memory_sim.simulator import SimStep

_LOG = logging.getLogger(__name__)

VARIANTS = ("no_memory", "long_term_only", "full_memory", "oracle")

LAST_RANK = 2
"""Search rank of rooms the memory observed after the object was known gone (searched last)."""


@dataclass
class Found:
    """A confirmed object: where the robot saw it from, and what the frame truly showed."""

    label: str
    position: np.ndarray
    robot_xy: np.ndarray
    truth_visible: dict[int, int]
    state: str = ""


@dataclass
class Outcome:
    """What the agent did on one task and how it scored (see :mod:`memory_node.tasks.score`)."""

    task_id: str
    kind: str
    category: str
    variant: str
    success: bool = False
    score: float = 0.0
    answer: str = ""
    path_m: float = 0.0
    frames: int = 0
    service_calls: int = 0
    prompt_tokens: int = 0
    wall_s: float = 0.0
    rooms_searched: int = 0
    plan_source: str = ""
    refused_steps: int = 0
    error: str = ""
    found: dict[str, Found] = field(default_factory=dict)
    answer_position: list[float] | None = None
    answer_labels: list[str] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class AgentConfig:
    """Knobs of the agent."""

    prompt_budget_tokens: int = 400
    confirm_radius_m: float = 1.0
    query_k: int = 10
    max_objects: int = 10000
    observed_quantile: float = 0.25
    small_object_m: float = 0.5


class Agent:
    """Runs tasks of one scenario in one variant (see the module docstring).

    Args:
        scenario: the house, its memories and tasks.
        variant: one of :data:`VARIANTS`.
        planner: the planner (rule-based when None).
        services: the memory services to use instead of the in-core ones (e.g. over ROS);
            only for the memory variants.
    """

    def __init__(
        self,
        scenario: Scenario,
        variant: str,
        planner: Planner | None = None,
        services: MemoryServices | None = None,
        config: AgentConfig | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")
        self.scenario = scenario
        self.world = scenario.world
        self.variant = variant
        self.planner = planner or RuleBasedPlanner()
        self.config = config or AgentConfig()
        self._given_services = services
        self.services: MemoryServices | None = None
        self._observed: dict[str, float] | None = None

    # ------------------------------------------------------------------ set-up per task
    def _services(self) -> MemoryServices | None:
        if self.variant in ("no_memory", "oracle"):
            return None
        if self._given_services is not None:
            return self._given_services
        if self.variant == "full_memory":
            return CoreServices(fresh_memory(self.scenario, "full"), ingest_frames=True)
        return CoreServices(fresh_memory(self.scenario, "long_term"), ingest_frames=False)

    def run(self, task: Task) -> Outcome:
        """Plan and do ``task`` from the dock; return the outcome (not yet scored)."""
        t0 = time.perf_counter()
        world = self.world
        world.xy = self.scenario.dock_xy.copy()
        world.yaw = 0.0
        world.odometry = type(world.odometry)()
        self.services = self._services()
        self.seen: list[tuple[Sighting, SimStep]] = []
        self.found: dict[str, Found] = {}
        self.searched: set[str] = set()
        self.holding = ""
        self.placed = ""
        self.answer = ""
        self.answer_position: np.ndarray | None = None
        self.answer_labels: list[str] | None = None
        self.notes: list[str] = []
        self._observed = None
        services = self.services

        def perceive(step: SimStep) -> None:
            if services is not None:
                services.ingest(step.frame)
            for s in world.sightings(step):
                self.seen.append((s, step))

        world.sinks = [perceive]
        out = Outcome(task.id, task.kind, task.category, self.variant)
        try:
            ctx = self.context(task)
            plan = self.planner.plan(ctx)
            out.plan_source, out.refused_steps, out.error = (
                plan.source,
                len(plan.refused),
                plan.error,
            )
            out.prompt_tokens = ctx.prompt_tokens
            self.ctx = ctx
            self.execute(plan, task)
        finally:
            world.sinks = []
        out.path_m = world.odometry.path_m
        out.frames = world.odometry.frames
        out.service_calls = sum(services.calls.values()) if services is not None else 0
        out.rooms_searched = len(self.searched)
        out.answer = self.answer
        out.found = dict(self.found)
        out.answer_position = (
            self.answer_position.tolist() if self.answer_position is not None else None
        )
        out.answer_labels = self.answer_labels
        out.notes = self.notes
        out.wall_s = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------ context
    def context(self, task: Task) -> PlanContext:
        """Return what the planner gets: memory answers (or truth, or nothing) and the prompt."""
        sc = self.scenario
        ctx = PlanContext(
            task=task.text,
            kind=task.kind,
            label=task.label,
            dest_label=task.dest_label,
            room=task.room,
            rooms=[r.name for r in self.world.scene.rooms],
            since_s=sc.tour_end_s,
        )
        if self.variant == "oracle":
            self._truth_context(ctx)
            return ctx
        svc = self.services
        if svc is None:
            return ctx
        for label in (task.label, task.dest_label):
            if label:
                for o in svc.query_objects(text=label, k=self.config.query_k):
                    ctx.objects[o.id] = o
        changes: list[ChangeEvent] = []
        if self.variant == "full_memory":
            changes = svc.get_changes(since=sc.tour_end_s)
        ctx.changes = changes
        if task.kind in ("go_to", "bring", "is_open"):  # may search: where has it looked?
            self._observed = self._room_observed(svc)
        if task.kind == "what_changed":
            room = self.world.scene.room(task.room)
            centre = np.array([*room.center_xy, 0.5])
            radius = 0.5 * math.hypot(
                room.max_xy[0] - room.min_xy[0], room.max_xy[1] - room.min_xy[1]
            )
            near = svc.query_objects(near=centre, radius=radius, k=50)
            inside = [o for o in near if self.world.room_of(o.center[:2]) == task.room]
            if inside:
                ctx.room_last_seen[task.room] = max(o.last_seen for o in inside)
        text, tokens = svc.get_scene_graph(
            focus=task.text, max_tokens=self.config.prompt_budget_tokens
        )
        prompt = build_prompt(task.text, text, changes, tokens, now_s=self.world.sim.time)
        ctx.messages = prompt.messages
        from memory_node.core.render import count_tokens

        change_text = "\n".join(describe_change(c) for c in changes[:20])
        ctx.prompt_tokens = tokens + count_tokens(change_text)
        return ctx

    def _truth_context(self, ctx: PlanContext) -> None:
        sim = self.world.sim
        now = sim.time
        for o in sim.objects(include_absent=ctx.kind == "where_last"):
            if ctx.kind == "where_last":  # the truth of "where did you last see": the sighting
                seen = self.scenario.last_seen.get(o.instance_id)
                if seen is None:
                    continue
                o = dataclasses.replace(o, box_min=seen[1] - 0.05, box_max=seen[1] + 0.05)
            ctx.objects[o.name] = SceneObject(
                id=o.name,
                label=o.label,
                center=o.center.copy(),
                size=o.box_max - o.box_min,
                state=o.state,
                present=True,
                last_seen=now,
            )
        for ch in sim.changes:
            if ch.stamp >= ctx.since_s:
                ctx.changes.append(ch.event)
        ctx.room_last_seen = {r: math.inf for r in ctx.rooms}

    # ------------------------------------------------------------------ execution
    def execute(self, plan: Plan, task: Task) -> None:
        """Run the plan's steps in order (see the module docstring)."""
        for step in plan.steps:
            handler = getattr(self, f"_do_{step.action}")
            handler(step, task)

    def _label_of(self, target: str) -> str:
        obj = self.ctx.objects.get(target)
        return obj.label if obj is not None else target

    def _confirm(self, label: str, where: np.ndarray | None, step: SimStep) -> Sighting | None:
        """Return the largest sighting of ``label`` in ``step`` (near ``where`` if given)."""
        best = None
        for s in self.world.sightings(step):
            if s.label != label:
                continue
            if (
                where is not None
                and np.hypot(*(s.position[:2] - where[:2])) > self.config.confirm_radius_m
            ):
                continue
            if best is None or s.pixels > best.pixels:
                best = s
        return best

    def _approach(self, label: str, position: np.ndarray, size: np.ndarray | None = None) -> bool:
        """Drive to ``position``, look at it, and confirm ``label`` there; record it found."""
        half = 0.5 * (size if size is not None else np.full(3, 0.2))
        path = self.world.plan_to_box(position - half, position + half)
        if path is None:
            self.notes.append(f"no path to {label} at {np.round(position, 2).tolist()}")
            return False
        self.world.follow(path)
        step = self.world.look_at(position)
        s = self._confirm(label, position, step)
        if s is None:
            # maybe it is in view elsewhere (moved nearby): approach that sighting once
            s2 = self._confirm(label, None, step)
            if s2 is None:
                return False
            path = self.world.plan_to_box(s2.position - 0.1, s2.position + 0.1)
            if path is None:
                return False
            self.world.follow(path)
            step = self.world.look_at(s2.position)
            s = self._confirm(label, s2.position, step)
            if s is None:
                return False
        self.found[label] = Found(
            label, s.position.copy(), self.world.xy.copy(), dict(step.truth.visible), s.state
        )
        return True

    def _do_goto(self, step: Step, task: Task) -> None:
        obj = self.ctx.objects[step.target]
        if obj.label in self.found:
            return
        self._approach(obj.label, np.asarray(obj.center, float), np.asarray(obj.size, float))

    def _do_search(self, step: Step, task: Task) -> None:
        label = step.target
        if label in self.found:
            return
        tried: list[np.ndarray] = []

        def try_sightings() -> bool:
            for s, _ in list(self.seen):
                if s.label != label or any(
                    np.hypot(*(s.position[:2] - t[:2])) < 0.5 for t in tried
                ):
                    continue
                tried.append(s.position)
                if self._approach(label, s.position):
                    return True
            return False

        if try_sightings():
            return
        from memory_node.tasks.suite import nearest_first

        ranks = self._search_ranks(label)
        while True:
            todo = [r.name for r in self.world.scene.rooms if r.name not in self.searched]
            if not todo:
                self.notes.append(f"{label}: not found after searching every room")
                return
            best = min(ranks.get(r, 0) for r in todo)
            room = nearest_first(self.world, [r for r in todo if ranks.get(r, 0) == best])[0]
            self.searched.add(room)
            path = self.world.plan_to(self.world.room_goal(room))
            if path is None:
                continue
            self.world.follow(path)
            self.world.spin()
            if try_sightings():
                return

    def _room_observed(self, svc: MemoryServices) -> dict[str, float]:
        """Room -> when the memory last observed its small objects (a low ``last_seen`` quantile).

        One ``query_objects`` call (every object, no text), asked when the task is planned,
        before the agent's own frames refresh the memory. Only small objects (xy extent below
        ``small_object_m``) count: they are what moves, and furniture is seen from afar when
        the robot merely crosses a room. A room counts as observed at t when most of them
        (``1 - observed_quantile``) were seen at or after t; a room without small objects is
        never observed.
        """
        seen: dict[str, list[float]] = {}
        for o in svc.query_objects(k=self.config.max_objects):
            small = float(np.max(np.asarray(o.size, float)[:2])) < self.config.small_object_m
            room = self.world.room_of(o.center[:2]) if o.present and small else ""
            if room:
                seen.setdefault(room, []).append(o.last_seen)
        q = self.config.observed_quantile
        return {room: float(np.quantile(ts, q)) for room, ts in seen.items()}

    def _search_ranks(self, label: str) -> dict[str, int]:
        """Room -> search rank for ``label``: lower first, :data:`LAST_RANK` last.

        Without memory every room has rank 0 (room by room, nearest first). With memory two
        times bound when the object left the place where it was remembered: the latest time
        it was confirmed there (``last_seen`` of the label's remembered instances) and the
        time it was known gone (the newest DISAPPEARED or MOVED event of those instances; for
        a present instance just found missing, now). A label the memory never saw was absent
        from every observation: both times are the task's ``since_s`` (when the robot was last
        away).

        * 0: rooms not observed since it was last confirmed (it may have gone there unseen);
        * 1: rooms observed after that but before it was known gone (it may have arrived after
          the observation);
        * :data:`LAST_RANK`: rooms observed after it was known gone: they did not show it (a
          present instance there would be a remembered candidate, tried before the search),
          but the memory misses small objects: on the training houses (100-103, 1000) every
          full-memory go-to/bring failure (8 of 8) ended with such rooms skipped, so they
          come last.
        """
        if self.services is None or self._observed is None:
            return {}
        instances = [o for o in self.ctx.objects.values() if o.label == label]
        if instances:
            reference = max(o.last_seen for o in instances)
            ids = {o.id for o in instances}
            kinds = (ChangeKind.DISAPPEARED, ChangeKind.MOVED)
            gone = max(
                (c.stamp for c in self.ctx.changes if c.object_id in ids and c.kind in kinds),
                default=math.inf,
            )
        else:
            reference = gone = self.ctx.since_s
        ranks = {}
        for room in self.world.scene.rooms:
            t = self._observed.get(room.name, -math.inf)
            ranks[room.name] = LAST_RANK if t > gone else (1 if t > reference else 0)
        return ranks

    def _do_inspect(self, step: Step, task: Task) -> None:
        label = self._label_of(step.target)
        if label not in self.found:
            if step.target in self.ctx.objects:
                self._do_goto(Step("goto", step.target), task)
            if label not in self.found:
                self._do_search(Step("search", label), task)
        found = self.found.get(label)
        self.answer = found.state if found is not None and found.state else "unknown"

    def _do_look(self, step: Step, task: Task) -> None:
        path = self.world.plan_to(self.world.room_goal(step.target))
        if path is not None:
            self.world.follow(path)
            self.world.spin()

    def _do_pick(self, step: Step, task: Task) -> None:
        label = self._label_of(step.target)
        if label in self.found:
            self.holding = label
            self.found[label].truth_visible = dict(self.found[label].truth_visible)
        else:
            self.notes.append(f"pick {label}: not found")

    def _do_place(self, step: Step, task: Task) -> None:
        label = self._label_of(step.target)
        if self.holding and label in self.found:
            self.placed = label
        else:
            self.notes.append(f"place at {label}: nothing held or destination not found")

    def _do_report_changes(self, step: Step, task: Task) -> None:
        changes = list(self.ctx.changes)
        if self.variant == "full_memory" and self.services is not None:
            changes = self.services.get_changes(since=self.ctx.since_s)
        labels = set()
        for c in changes:
            for p in (c.old_position, c.new_position):
                if c.kind == ChangeKind.APPEARED and p is c.old_position:
                    continue
                if c.kind == ChangeKind.DISAPPEARED and p is c.new_position:
                    continue
                if self.world.room_of(np.asarray(p)[:2]) == step.target and c.label:
                    labels.add(c.label)
        self.answer_labels = sorted(labels)
        self.answer = ", ".join(self.answer_labels) if labels else "nothing changed"

    def _do_answer(self, step: Step, task: Task) -> None:
        if step.target:
            obj = self.ctx.objects[step.target]
            self.answer_position = np.asarray(obj.center, float).copy()
            room = self.world.room_of(self.answer_position[:2])
            self.answer = f"{obj.label} at {np.round(self.answer_position, 2).tolist()} ({room})"
        else:
            self.answer = step.text


def labels_in(text: str, vocabulary: list[str]) -> list[str]:
    """Labels of ``vocabulary`` named in free text (for scoring LLM answers)."""
    low = text.lower()
    return sorted({v for v in vocabulary if v and v.lower() in low})


def counts(outcomes: list[Outcome]) -> Counter[str]:
    """Outcomes per variant."""
    return Counter(o.variant for o in outcomes)
