"""The fleet memory facade: the shared store's objects served like one robot's scene memory.

:class:`FleetMemory` keeps an in-process copy of the store's fleet objects, refreshed
incrementally (objects changed since the last refresh, by the store's update counter), and
answers the same questions as :class:`~memory_node.core.scene_memory.SceneMemory`: queries by
text, near and zone (the same :class:`~memory_node.core.retrieval.Retriever`), the rendered graph
with relations and zones, the fleet-level changes, save and load (the SQLite memory file of
:mod:`memory_node.core.persistence`, with provenance in its meta). Robots push to the store
directly (:class:`~memory_node.core.fleet.FleetSync`); :meth:`push` is the same for in-process
robots.

Not thread-safe: the node holds one lock around every call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.features import FeatureConfig, make_encoder
from memory_node.core.fleet import FleetChange, FleetConfig, FleetObject, MergeResult, Source
from memory_node.core.persistence import load_memory, save_memory
from memory_node.core.relations import RelationConfig, update_relations
from memory_node.core.retrieval import RetrievalConfig, Retriever
from memory_node.core.scene_memory import RenderedGraph
from memory_node.core.storage import FleetStore
from memory_node.core.types import (
    ChangeEvent,
    InvalidInput,
    MemorySnapshot,
    QueryRequest,
    Relation,
    SceneObject,
    ScoredObject,
    Zone,
)
from memory_node.core.zones import ZoneConfig, compute_zones

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "memory_node.fleet_memory/1"


@dataclass
class FleetMemoryConfig:
    """Every parameter of the fleet memory (dotted names, as the node declares them)."""

    fleet: FleetConfig = field(default_factory=FleetConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    relations: RelationConfig = field(default_factory=RelationConfig)
    zones: ZoneConfig = field(default_factory=ZoneConfig)


class FleetMemory:
    """The fleet's shared long-term memory (see the module docstring).

    Args:
        store: the shared store (opened by the caller, who also closes it).
        config: parameters; ``features`` must match the robots' (their features are compared
            with this encoder's text embeddings).
    """

    def __init__(self, store: FleetStore, config: FleetMemoryConfig | None = None) -> None:
        self.store = store
        self.config = config or FleetMemoryConfig()
        self._encode: Callable[[list[str]], np.ndarray] | None = None
        if self.config.features.mode != "off":
            encoder = make_encoder(self.config.features)
            self._encode = None if encoder is None else encoder.encode_text
        self.retriever = Retriever(self.config.retrieval, self._encode)
        self._fleet: dict[str, FleetObject] = {}
        self._objects: dict[str, SceneObject] = {}
        self._seq = 0
        self._relations: list[Relation] = []
        self._zones: list[Zone] = []
        self._changed: set[str] = set()
        self._graph_dirty = False

    # ------------------------------------------------------------------ state

    def refresh(self) -> int:
        """Fetch the objects changed in the store since the last refresh; return how many.

        Raises:
            StorageError: the store is unreachable (the cached objects stay as they were).
        """
        changed, seq = self.store.objects(self._seq)
        merged = self.store.merged_since(self._seq)
        for fid in merged:
            self._fleet.pop(fid, None)
            self._objects.pop(fid, None)
        if merged:
            self.retriever.invalidate()
            self._relations = [
                r
                for r in self._relations
                if r.subject_id not in merged and r.object_id not in merged
            ]
            self._graph_dirty = True
        for f in changed:
            self._fleet[f.id] = f
            self._objects[f.id] = f.obj
        if changed:
            ids = [f.id for f in changed]
            self.retriever.invalidate(ids)
            self._changed.update(ids)
            self._graph_dirty = True
        self._seq = seq
        return len(changed) + len(merged)

    @property
    def objects(self) -> dict[str, SceneObject]:
        """Fleet objects (global id -> fused object) as of the last refresh."""
        return dict(self._objects)

    @property
    def fleet_objects(self) -> dict[str, FleetObject]:
        """Fleet objects with their provenance, as of the last refresh."""
        return dict(self._fleet)

    def push(
        self,
        robot_id: str,
        frame_id: str,
        objects: Sequence[SceneObject],
        stamps: Mapping[str, float] | None = None,
    ) -> MergeResult:
        """Merge an in-process robot's objects (see :meth:`FleetStore.push`), then refresh."""
        result = self.store.push(robot_id, frame_id, objects, stamps)
        self.refresh()
        return result

    def _ensure_graph(self) -> None:
        if not self._graph_dirty:
            return
        objs = list(self._objects.values())
        self._relations = update_relations(
            self._relations, objs, self._changed, self.config.relations
        )
        before = {o.id: o.zone_id for o in objs}
        self._zones = compute_zones(objs, self.config.zones, self._encode, self._zones)
        moved = [o.id for o in objs if o.zone_id != before[o.id]]
        if moved:
            self.retriever.invalidate(moved)
        self._changed = set()
        self._graph_dirty = False

    @property
    def relations(self) -> list[Relation]:
        """Relations between fleet objects."""
        self._ensure_graph()
        return list(self._relations)

    @property
    def zones(self) -> list[Zone]:
        """Zones of the fleet objects."""
        self._ensure_graph()
        return list(self._zones)

    # ------------------------------------------------------------------ queries

    def query(self, req: QueryRequest) -> list[ScoredObject]:
        """Rank the fleet objects for ``req`` (text, near, zone), best first.

        Raises:
            InvalidInput: a malformed request (as :meth:`Retriever.query`).
        """
        if req.zone_id:
            self._ensure_graph()
        return self.retriever.query(self._objects, req)

    def render(self, focus: str = "", max_objects: int = 0, max_tokens: int = 0) -> RenderedGraph:
        """Render the fleet graph (or the part relevant to ``focus``) within a token budget.

        Raises:
            InvalidInput: negative limits or a focus longer than ``retrieval.max_text_chars``.
        """
        if max_objects < 0 or max_tokens < 0:
            raise InvalidInput("max_objects and max_tokens must be >= 0")
        if len(focus) > self.config.retrieval.max_text_chars:
            raise InvalidInput(f"focus text has {len(focus)} characters, above the limit")
        self._ensure_graph()
        from memory_node.core.render import render_graph

        objs, rels, zones, text, tokens = render_graph(
            list(self._objects.values()),
            list(self._relations),
            list(self._zones),
            focus,
            max_objects,
            max_tokens,
            self._encode,
            retriever=self.retriever,
        )
        return RenderedGraph(objs, rels, zones, text, tokens)

    def changes(
        self, since: float = -math.inf, object_id: str = "", max_results: int = 0
    ) -> list[ChangeEvent]:
        """Fleet-level changes with ``stamp >= since``, newest first (from the store).

        Raises:
            InvalidInput: NaN ``since`` or negative ``max_results``.
        """
        return [c.event for c in self.store.changes(since, object_id, max_results)]

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> MemorySnapshot:
        """Return the fleet memory as a snapshot; provenance and robots in ``meta``."""
        self._ensure_graph()
        sources = {
            f.id: {
                "winner": f.winner,
                "sources": {
                    r: {
                        "object_id": s.object_id,
                        "last_seen": s.last_seen,
                        "observations": s.observations,
                        "center": [float(v) for v in s.center],
                        "present": s.present,
                        "state": s.state,
                        "evidence": s.evidence,
                    }
                    for r, s in f.sources.items()
                },
            }
            for f in self._fleet.values()
        }
        changes = self.store.changes(max_results=1_000_000)[::-1]
        return MemorySnapshot(
            objects=list(self._objects.values()),
            relations=list(self._relations),
            zones=list(self._zones),
            changes=[c.event for c in changes],
            meta={
                "format": SNAPSHOT_FORMAT,
                "map_frame": self.store.map_frame,
                "provenance": sources,
                "change_robots": [c.robot_id for c in changes],
            },
        )

    def save(self, path: str) -> None:
        """Write the fleet memory to ``path`` (the SQLite memory file format, atomic).

        Raises:
            InvalidInput: the path cannot be written; the previous file is untouched.
        """
        save_memory(path, self.snapshot())

    def load(self, path: str) -> None:
        """Replace the fleet memory (in the store) by the one saved at ``path``.

        A robot's own memory file loads too (its objects become fleet objects without
        provenance).

        Raises:
            InvalidInput: the file is missing or corrupt, or of another map frame; the store is
                unchanged.
        """
        snap = load_memory(path)
        meta = snap.meta
        frame = meta.get("map_frame", self.store.map_frame)
        if frame != self.store.map_frame:
            raise InvalidInput(
                f"{path} is a fleet memory in frame {frame!r}, not {self.store.map_frame!r}"
            )
        provenance = meta.get("provenance", {})
        if not isinstance(provenance, dict):
            raise InvalidInput(f"{path}: malformed provenance in meta")
        fleet = []
        for obj in snap.objects:
            p = provenance.get(obj.id, {})
            try:
                sources = {
                    r: Source(
                        object_id=str(s["object_id"]),
                        last_seen=float(s["last_seen"]),
                        observations=int(s["observations"]),
                        center=np.asarray(s["center"], np.float64).reshape(3),
                        present=bool(s["present"]),
                        state=str(s["state"]),
                        evidence=float(s.get("evidence", s["last_seen"])),
                    )
                    for r, s in p.get("sources", {}).items()
                }
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(f"{path}: malformed provenance of {obj.id} ({exc})") from exc
            fleet.append(FleetObject(obj=obj, sources=sources, winner=str(p.get("winner", ""))))
        robots = meta.get("change_robots", [])
        if not isinstance(robots, list) or len(robots) != len(snap.changes):
            robots = [""] * len(snap.changes)
        changes = [FleetChange(e, str(r)) for e, r in zip(snap.changes, robots, strict=True)]
        self.store.replace_all(fleet, changes)
        self._fleet, self._objects, self._seq = {}, {}, 0
        self._relations, self._zones = [], []
        self.retriever.invalidate()
        self.refresh()
