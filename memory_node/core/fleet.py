"""Fleet memory: the long-term objects of several robots merged into one graph with global ids.

Robots in one map frame push their long-term objects (their local ids, stamps, boxes, labels,
features and colour descriptors) to a shared store (:mod:`memory_node.core.storage`). Each push
is merged here, in pure Python, into the fleet objects:

* **Provenance first.** A robot's object already linked to a fleet object updates that object.
* **Association.** An unlinked object is fused with the best fleet object of the same label near
  it (centre distance within ``match_distance_m`` or half the smaller box diagonal, similar size,
  colour descriptors alike when both have one) that no other object of the same robot is linked
  to: a robot's two objects stay two objects. Otherwise it becomes a new fleet object
  (``fleet_000042``; ids are never reused).
* **Conflicts.** The latest evidence wins: the object's box, state and presence follow the
  source with the newest evidence (its ``last_seen``, or for an object a robot found gone, the
  stamp of its DISAPPEARED event, see :func:`absence_stamps`); older evidence is kept as
  provenance (per robot: local id, last seen, evidence time, observations) but moves nothing.
  A fleet-level change (APPEARED, MOVED, DISAPPEARED, STATE_CHANGED) is recorded with the robot
  whose evidence caused it.

Short-term memories stay on the robots; only long-term objects are merged.

:class:`FleetSync` is the robot side: it pushes the objects that changed since the last
acknowledged push, and keeps them pending while the store is unreachable (local memory is never
touched), so a robot resyncs everything when the database comes back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from memory_node.core import appearance
from memory_node.core.config import param
from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput, SceneObject

if TYPE_CHECKING:
    from memory_node.core.storage import FleetStore

log = logging.getLogger(__name__)

FLEET_ID_PREFIX = "fleet_"


@dataclass
class FleetConfig:
    """How robots' objects are associated and merged into the fleet memory."""

    map_frame: str = param(
        "map", "Frame every robot of the fleet publishes in; pushes in another frame are refused."
    )
    cell_size_m: float = param(
        2.0,
        "Side of the grid cells indexing fleet objects for near-queries and association, metres.",
        min_value=0.1,
        max_value=100.0,
    )
    match_distance_m: float = param(
        0.6,
        "Objects of one label whose centres are this close (or within half the smaller box "
        "diagonal) are one object, metres.",
        min_value=0.01,
        max_value=10.0,
    )
    max_size_ratio: float = param(
        3.0,
        "Largest ratio of box diagonals between two views of one object.",
        min_value=1.0,
        max_value=100.0,
    )
    min_appearance_similarity: float = param(
        0.5,
        "Least colour-descriptor similarity (Bhattacharyya, 0-1) to fuse two views; ignored when "
        "either has none.",
        min_value=0.0,
        max_value=1.0,
    )
    same_robot_containment: float = param(
        0.7,
        "Two objects of one robot are one fleet object only when this share of the smaller box "
        "lies inside the other (a robot's duplicate or a piece seen apart).",
        min_value=0.0,
        max_value=1.0,
    )
    move_threshold_m: float = param(
        0.3,
        "Newer evidence that moves an object's centre by more than this records MOVED, metres.",
        min_value=0.0,
        max_value=100.0,
    )


@dataclass
class Source:
    """What one robot contributed to a fleet object (provenance).

    Attributes:
        object_id: the robot's local id of the object.
        last_seen: seconds, the robot's last sighting.
        observations: frames the robot associated the object in.
        center: (3,) float64 where the robot last saw it, metres, map frame.
        present: whether the robot believes it is still there.
        state: the state the robot last saw.
        evidence: seconds, when the robot last had evidence of the object: ``last_seen``, or
            later when it found the object gone.
    """

    object_id: str
    last_seen: float
    observations: int
    center: np.ndarray
    present: bool = True
    state: str = ""
    evidence: float = -math.inf

    def __post_init__(self) -> None:
        self.evidence = max(self.evidence, self.last_seen)


@dataclass
class FleetObject:
    """One object of the fleet memory.

    Attributes:
        obj: the fused object; ``obj.id`` is the global id, its box, state and presence are the
            latest evidence's; ``first_seen``/``last_seen`` span every robot's sightings and
            ``observations`` sums them.
        sources: robot id -> :class:`Source` (one per robot that saw it).
        winner: id of the robot whose evidence set the current box, state and presence.
        seq: the store's update counter when the object last changed (0 before it is stored).
    """

    obj: SceneObject
    sources: dict[str, Source] = field(default_factory=dict)
    winner: str = ""
    seq: int = 0

    @property
    def id(self) -> str:
        """The global id."""
        return self.obj.id


@dataclass
class FleetChange:
    """A fleet-level change event and the robot whose evidence caused it."""

    event: ChangeEvent
    robot_id: str


@dataclass
class MergeResult:
    """What one push changed.

    Attributes:
        objects: the fleet objects created or updated by the push (id -> object).
        removed: fleet objects merged into another by the push (dropped id -> kept id); their
            robots' links move to the kept one.
        links: the pushed local ids -> their fleet ids.
        changes: fleet-level change events, in push order.
        fused: pushed objects newly associated to an existing fleet object.
        created: new fleet objects.
        stale: pushed objects whose evidence was older than the fleet object's (provenance only).
    """

    objects: dict[str, FleetObject] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    changes: list[FleetChange] = field(default_factory=list)
    fused: int = 0
    created: int = 0
    stale: int = 0


class FleetError(InvalidInput):
    """A push the fleet memory refuses (wrong frame, malformed object); nothing was written."""


def make_fleet_id(index: int) -> str:
    """Global id of the ``index``-th fleet object."""
    return f"{FLEET_ID_PREFIX}{index:06d}"


def cell_of(x: float, y: float, cell_size: float) -> int:
    """Key of the grid cell holding map point (x, y): one int64 packing both cell indices."""
    cx, cy = math.floor(x / cell_size), math.floor(y / cell_size)
    return (cx + (1 << 31)) * (1 << 32) + (cy + (1 << 31)) - (1 << 63)


def cells_around(
    center: Sequence[float] | np.ndarray, radius: float, cell_size: float
) -> list[int]:
    """Keys of every cell touching the square of half-side ``radius`` around ``center`` (x, y)."""
    x, y = float(center[0]), float(center[1])
    lo_x, hi_x = math.floor((x - radius) / cell_size), math.floor((x + radius) / cell_size)
    lo_y, hi_y = math.floor((y - radius) / cell_size), math.floor((y + radius) / cell_size)
    return [
        cell_of((i + 0.5) * cell_size, (j + 0.5) * cell_size, cell_size)
        for i in range(lo_x, hi_x + 1)
        for j in range(lo_y, hi_y + 1)
    ]


def validate_object(obj: SceneObject, robot_id: str) -> None:
    """Raise :class:`FleetError` unless ``obj`` can be merged (finite box, non-empty id)."""
    if not obj.id:
        raise FleetError(f"robot {robot_id!r} pushed an object without an id")
    for name in ("center", "size"):
        v = np.asarray(getattr(obj, name), np.float64).reshape(-1)
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise FleetError(f"robot {robot_id!r} object {obj.id}: {name} is not finite (3,)")
    for name in ("first_seen", "last_seen"):
        if not math.isfinite(float(getattr(obj, name))):
            raise FleetError(f"robot {robot_id!r} object {obj.id}: {name} is not finite")


def search_radius(obj: SceneObject, config: FleetConfig) -> float:
    """Distance around ``obj``'s centre within which a fleet object may be the same one."""
    return max(config.match_distance_m, 0.5 * float(np.linalg.norm(obj.size)))


def match_score(
    evidence: SceneObject, candidate: SceneObject, config: FleetConfig
) -> float | None:
    """Cost of fusing ``evidence`` with ``candidate`` (lower is better), None when they differ.

    Same label, centres within ``match_distance_m`` or half the smaller box diagonal, box
    diagonals within ``max_size_ratio`` (a partial view is smaller), colour descriptors at least
    ``min_appearance_similarity`` alike when both have one.
    """
    if evidence.label != candidate.label:
        return None
    dist = math.dist(evidence.center, candidate.center)  # plain floats: called per candidate
    d_e = max(math.hypot(*evidence.size), 1e-3)
    d_c = max(math.hypot(*candidate.size), 1e-3)
    reach = max(config.match_distance_m, 0.5 * min(d_e, d_c))
    if dist > reach:
        return None
    if max(d_e, d_c) > config.max_size_ratio * min(d_e, d_c):
        return None
    sim = appearance.similarity(evidence.appearance, candidate.appearance)
    if sim is not None and sim < config.min_appearance_similarity:
        return None
    return dist / reach + (0.0 if sim is None else 1.0 - sim)


def containment(a: SceneObject, b: SceneObject) -> float:
    """Share of the smaller of two boxes that lies inside the other, in [0, 1]."""
    lo = np.maximum(a.box_min, b.box_min)
    hi = np.minimum(a.box_max, b.box_max)
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    smaller = min(
        float(np.prod(np.maximum(np.asarray(a.size, float), 1e-3))),
        float(np.prod(np.maximum(np.asarray(b.size, float), 1e-3))),
    )
    return min(1.0, inter / smaller)


def _may_join(obj: SceneObject, fleet: FleetObject, robot_id: str, config: FleetConfig) -> bool:
    """Whether ``robot_id``'s ``obj`` may join ``fleet``: another robot's, or nearly inside it."""
    return robot_id not in fleet.sources or (
        containment(obj, fleet.obj) >= config.same_robot_containment
    )


def _absorb(keep: FleetObject, drop: FleetObject) -> None:
    """Fold ``drop`` into ``keep`` (in place): provenance united, the latest evidence wins."""
    for robot, src in drop.sources.items():
        if robot not in keep.sources or keep.sources[robot].evidence < src.evidence:
            keep.sources[robot] = src
    a, b = keep.obj, drop.obj
    if evidence_time(drop) > evidence_time(keep):
        a.center, a.size = np.array(b.center), np.array(b.size)
        a.state, a.present = b.state, b.present
        a.label_confidence, a.label_votes = b.label_confidence, dict(b.label_votes)
        keep.winner = drop.winner
        if b.feature is not None:
            a.feature = b.feature
        if b.appearance is not None:
            a.appearance = b.appearance
    a.first_seen = min(a.first_seen, b.first_seen)
    a.last_seen = max(a.last_seen, b.last_seen)
    a.observations = sum(s.observations for s in keep.sources.values())


def evidence_time(fleet: FleetObject) -> float:
    """Seconds of the evidence that set ``fleet``'s box, state and presence."""
    src = fleet.sources.get(fleet.winner)
    return src.evidence if src is not None else float(fleet.obj.last_seen)


def absence_stamps(events: Iterable[ChangeEvent]) -> dict[str, float]:
    """Object id -> stamp of its latest DISAPPEARED event (a robot's evidence of absence)."""
    out: dict[str, float] = {}
    for e in events:
        if e.kind == ChangeKind.DISAPPEARED:
            out[e.object_id] = max(out.get(e.object_id, -math.inf), float(e.stamp))
    return out


def _copy_object(obj: SceneObject, new_id: str) -> SceneObject:
    return replace(
        obj,
        id=new_id,
        center=np.array(obj.center, np.float64).reshape(3),
        size=np.array(obj.size, np.float64).reshape(3),
        points=np.zeros((0, 3), np.float32),  # points stay on the robots
        label_votes=dict(obj.label_votes),
        history=[],
    )


def _event(
    kind: ChangeKind, obj: SceneObject, stamp: float, old: SceneObject | None
) -> ChangeEvent:
    return ChangeEvent(
        kind=kind,
        object_id=obj.id,
        label=obj.label,
        stamp=float(stamp),
        old_position=np.array(old.center if old is not None else obj.center, np.float64),
        new_position=np.array(obj.center, np.float64),
        old_state=old.state if old is not None else "",
        new_state=obj.state,
    )


def apply_evidence(
    fleet: FleetObject,
    robot_id: str,
    evidence: SceneObject,
    config: FleetConfig,
    stamp: float | None = None,
) -> tuple[bool, list[ChangeEvent]]:
    """Fold one robot's view of an object into ``fleet`` (in place).

    Provenance is always recorded. When the evidence time ``stamp`` (default
    ``evidence.last_seen``) is at least the fleet object's (:func:`evidence_time`), the
    evidence wins: box, state, presence, label, features follow it. Returns (won, events).
    """
    obj = fleet.obj
    stamp = max(float(evidence.last_seen), -math.inf if stamp is None else float(stamp))
    current = evidence_time(fleet) if fleet.sources else -math.inf
    fleet.sources[robot_id] = Source(
        object_id=evidence.id,
        last_seen=float(evidence.last_seen),
        observations=int(evidence.observations),
        center=np.array(evidence.center, np.float64).reshape(3),
        present=bool(evidence.present),
        state=evidence.state,
        evidence=stamp,
    )
    obj.first_seen = min(obj.first_seen, float(evidence.first_seen))
    obj.last_seen = max(obj.last_seen, float(evidence.last_seen))
    obj.observations = sum(s.observations for s in fleet.sources.values())
    if obj.feature is None and evidence.feature is not None:
        obj.feature = np.asarray(evidence.feature, np.float32).copy()
    if obj.appearance is None and evidence.appearance is not None:
        obj.appearance = np.asarray(evidence.appearance, np.float32).copy()
    if stamp < current:
        return False, []
    old = SceneObject(id=obj.id, center=obj.center, state=obj.state, present=obj.present)
    obj.center = np.array(evidence.center, np.float64).reshape(3)
    obj.size = np.array(evidence.size, np.float64).reshape(3)
    obj.state = evidence.state
    obj.present = bool(evidence.present)
    obj.label_confidence = float(evidence.label_confidence)
    obj.label_votes = dict(evidence.label_votes)
    obj.miss_count = float(evidence.miss_count)
    if evidence.feature is not None:
        obj.feature = np.asarray(evidence.feature, np.float32).copy()
    if evidence.appearance is not None:
        obj.appearance = np.asarray(evidence.appearance, np.float32).copy()
    fleet.winner = robot_id
    events: list[ChangeEvent] = []
    if old.present and not obj.present:
        events.append(_event(ChangeKind.DISAPPEARED, obj, stamp, old))
    elif obj.present and not old.present:
        events.append(_event(ChangeKind.APPEARED, obj, stamp, old))
    elif obj.present and math.dist(obj.center, old.center) > config.move_threshold_m:
        events.append(_event(ChangeKind.MOVED, obj, stamp, old))
    if obj.present and old.state and obj.state and old.state != obj.state:
        events.append(_event(ChangeKind.STATE_CHANGED, obj, stamp, old))
    return True, events


def merge_push(
    robot_id: str,
    evidence: Sequence[SceneObject],
    links: Mapping[str, str],
    fleet: Mapping[str, FleetObject],
    config: FleetConfig,
    new_id: Callable[[], str],
    stamps: Mapping[str, float] | None = None,
) -> MergeResult:
    """Merge one robot's pushed objects into the fleet objects (pure: inputs are not modified).

    Args:
        robot_id: the pushing robot.
        evidence: the robot's objects (local ids), changed since its last push.
        links: the robot's local id -> fleet id, for every object it pushed before.
        fleet: the fleet objects the push may touch: those linked to ``evidence`` and every one
            within :func:`search_radius` of an unlinked pushed object (the store fetches them
            through its grid-cell index).
        config: association and merge parameters.
        new_id: returns a fresh global id.
        stamps: local id -> evidence time when later than its ``last_seen`` (absent objects:
            :func:`absence_stamps`).

    Returns:
        The created and updated fleet objects, the new links and the fleet-level changes.
    """
    out = MergeResult()
    work: dict[str, FleetObject] = {}
    stamps = stamps or {}

    def get(fid: str) -> FleetObject | None:
        if fid not in work:
            src = fleet.get(fid)
            if src is None:
                return None
            work[fid] = FleetObject(
                obj=_copy_object(src.obj, src.obj.id),
                sources={k: replace(v) for k, v in src.sources.items()},
                winner=src.winner,
                seq=src.seq,
            )
        return work[fid]

    taken = {fid for fid in links.values()}  # fleet objects this robot already holds
    linked = [e for e in evidence if e.id in links and links[e.id] in fleet]
    unlinked = [e for e in evidence if not (e.id in links and links[e.id] in fleet)]
    for e in linked:
        target = get(links[e.id])
        assert target is not None
        won, events = apply_evidence(target, robot_id, e, config, stamps.get(e.id))
        out.stale += not won
        out.changes += [FleetChange(ev, robot_id) for ev in events]
        out.objects[target.id] = target
        out.links[e.id] = target.id

    # Unlinked objects: best pairs first, one fleet object per robot object.
    grid: dict[tuple[int, str], list[str]] = {}
    for fid, cand in fleet.items():
        if fid not in taken:
            c = cand.obj.center
            grid.setdefault((cell_of(c[0], c[1], config.cell_size_m), cand.obj.label), []).append(
                fid
            )
    pairs: list[tuple[float, int, str]] = []
    for i, e in enumerate(unlinked):
        cells = cells_around(e.center, search_radius(e, config), config.cell_size_m)
        for fid in (f for key in cells for f in grid.get((key, e.label), ())):
            cand = fleet[fid]
            if not _may_join(e, cand, robot_id, config):
                continue
            cost = match_score(e, cand.obj, config)
            if cost is not None:
                pairs.append((cost, i, fid))
    pairs.sort()
    chosen: dict[int, str] = {}
    for _cost, i, fid in pairs:
        if i in chosen or fid in taken:
            continue
        chosen[i] = fid
        taken.add(fid)
    for i, e in enumerate(unlinked):
        fid = chosen.get(i, "")
        target = get(fid) if fid else None
        if target is None:
            obj = _copy_object(e, new_id())
            target = FleetObject(obj=obj, winner=robot_id)
            apply_evidence(target, robot_id, e, config, stamps.get(e.id))
            work[target.id] = target
            out.created += 1
            if obj.present:
                out.changes.append(
                    FleetChange(_event(ChangeKind.APPEARED, obj, obj.first_seen, None), robot_id)
                )
        else:
            won, events = apply_evidence(target, robot_id, e, config, stamps.get(e.id))
            out.fused += 1
            out.stale += not won
            out.changes += [FleetChange(ev, robot_id) for ev in events]
        out.objects[target.id] = target
        out.links[e.id] = target.id
    _merge_duplicates(out, work, fleet, get, config)
    return out


def _merge_duplicates(
    out: MergeResult,
    work: dict[str, FleetObject],
    fleet: Mapping[str, FleetObject],
    get: Callable[[str], FleetObject | None],
    config: FleetConfig,
) -> None:
    """Merge each object the push touched with a present look-alike next to it.

    Links are sticky, so two fleet objects made from early partial views of one object (by two
    robots, or twice by one robot) stay apart until they are merged here: same label, geometry
    and colour as for association, and for two objects holding the same robot, the smaller box
    nearly inside the other. The older id is kept.
    """
    pool: dict[str, FleetObject] = {**fleet, **work}
    grid: dict[tuple[int, str], list[str]] = {}
    for fid, f in pool.items():
        c = f.obj.center
        grid.setdefault((cell_of(c[0], c[1], config.cell_size_m), f.obj.label), []).append(fid)
    for fid in sorted(out.objects):
        if fid in out.removed:
            continue
        a = work[fid]
        if not a.obj.present:
            continue
        cells = cells_around(a.obj.center, search_radius(a.obj, config), config.cell_size_m)
        label = a.obj.label
        for other in sorted({f for key in cells for f in grid.get((key, label), ())}):
            if other == fid or other in out.removed:
                continue
            b = pool[other]
            if not b.obj.present or match_score(a.obj, b.obj, config) is None:
                continue
            shared = set(a.sources) & set(b.sources)
            if shared and containment(a.obj, b.obj) < config.same_robot_containment:
                continue
            keep_id, drop_id = min(fid, other), max(fid, other)
            keep, drop = get(keep_id), get(drop_id)
            assert keep is not None and drop is not None
            _absorb(keep, drop)
            out.removed[drop_id] = keep_id
            out.objects.pop(drop_id, None)
            out.objects[keep_id] = keep
            pool[keep_id] = keep
            for local, linked in out.links.items():
                if linked == drop_id:
                    out.links[local] = keep_id
            if drop_id == fid:
                break
            a = keep


def object_signature(obj: SceneObject) -> tuple[object, ...]:
    """Return what a push must carry again when it changes (stamps, box, state, label)."""
    return (
        float(obj.last_seen),
        int(obj.observations),
        bool(obj.present),
        obj.state,
        obj.label,
        tuple(np.round(np.asarray(obj.center, float), 4).tolist()),
        tuple(np.round(np.asarray(obj.size, float), 4).tolist()),
    )


@dataclass
class SyncReport:
    """Result of one :meth:`FleetSync.push`.

    Attributes:
        ok: the store acknowledged the push (or nothing was pending).
        pushed: objects written.
        pending: objects still waiting for the store (0 when ok).
        error: why the push failed, "" when ok.
    """

    ok: bool
    pushed: int = 0
    pending: int = 0
    error: str = ""


class FleetSync:
    """Robot side of the fleet memory: push what changed, retry while the store is down.

    Args:
        store: the shared store (see :func:`memory_node.core.storage.open_store`), or a
            function opening it: then it is opened at the first push and again after a failed
            open (a robot may start while the database is down).
        robot_id: this robot's id (e.g. its namespace), unique in the fleet.
        frame_id: the frame of this robot's map; the store refuses another than the fleet's.
    """

    def __init__(
        self, store: FleetStore | Callable[[], FleetStore], robot_id: str, frame_id: str
    ) -> None:
        if not robot_id:
            raise InvalidInput("fleet sync needs a non-empty robot id")
        self._open = store if callable(store) else None
        self.store: FleetStore | None = None if callable(store) else store
        self.robot_id = robot_id
        self.frame_id = frame_id
        self._acked: dict[str, tuple[object, ...]] = {}
        self.failures = 0

    def pending(self, objects: Iterable[SceneObject]) -> list[SceneObject]:
        """Return the objects whose state differs from what the store last acknowledged."""
        return [o for o in objects if self._acked.get(o.id) != object_signature(o)]

    def push(
        self, objects: Iterable[SceneObject], stamps: Mapping[str, float] | None = None
    ) -> SyncReport:
        """Push every object that changed since the last acknowledged push.

        ``stamps``: evidence times later than ``last_seen`` (see :func:`absence_stamps`). Never
        raises for an unreachable store or a refused push: the report says why, the
        objects stay pending and the next call sends them again. Local objects are only read.
        """
        from memory_node.core.storage import StorageError

        todo = self.pending(objects)
        if not todo:
            return SyncReport(ok=True)
        signatures = {o.id: object_signature(o) for o in todo}
        try:
            if self.store is None:
                assert self._open is not None
                self.store = self._open()
            self.store.push(self.robot_id, self.frame_id, todo, stamps)
        except (StorageError, InvalidInput) as err:
            self.failures += 1
            return SyncReport(ok=False, pending=len(todo), error=str(err))
        self._acked.update(signatures)
        return SyncReport(ok=True, pushed=len(todo))
