"""An immutable read view of a :class:`SceneMemory`, so queries never wait for an ingest.

The ingest thread builds a view after each frame (:meth:`MemoryView.of`, a few hundred
microseconds for a hundred objects: object records are copied, arrays shared because ingest
replaces them rather than writing into them) and swaps it in; query threads answer from the
view they hold, without the memory's lock. What a query changes in the memory (the short-term
store's access statistics) is recorded in :attr:`MemoryView.accesses` and replayed on the live
memory by the ingest thread (:func:`replay_accesses`).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.render import render_graph
from memory_node.core.retrieval import Retriever
from memory_node.core.types import (
    ChangeEvent,
    InvalidInput,
    QueryRequest,
    Relation,
    SceneObject,
    ScoredObject,
    Zone,
)

EncodeText = Callable[[list[str]], np.ndarray]
# (since, object_id, max_results) of each ~/get_changes answered from a view
Access = tuple[float, str, int]


def _frozen_copy(obj: SceneObject) -> SceneObject:
    """Copy of an object record whose containers ingest cannot change under a reader."""
    return dataclasses.replace(obj, label_votes=dict(obj.label_votes), history=list(obj.history))


@dataclass
class MemoryView:
    """The memory's content after one frame: objects, relations, zones and change events.

    Attributes:
        version: increases with every view of one memory (readers cache by it).
        objects: id -> object copy (confirmed objects, present and absent).
        relations, zones: the graph at that frame.
        events: held change events, oldest first.
        accesses: change queries answered from this view, to replay on the live memory.
    """

    version: int
    objects: dict[str, SceneObject]
    relations: list[Relation]
    zones: list[Zone]
    events: list[ChangeEvent]
    max_k: int
    max_text_chars: int
    max_render_objects: int
    default_max_results: int
    max_results_limit: int
    accesses: deque[Access] = field(default_factory=lambda: deque(maxlen=1000))

    @classmethod
    def of(cls, memory: object, version: int, graph_from: MemoryView | None = None) -> MemoryView:
        """Build the view of a :class:`SceneMemory` (call with the memory's lock held).

        Args:
            memory: the live memory.
            version: the new view's version.
            graph_from: a previous view whose relations and zones are reused (they cost a
                zone clustering and labelling, worth refreshing about once a second, not
                every frame); None = bring them up to date now.
        """
        from memory_node.core.scene_memory import SceneMemory

        assert isinstance(memory, SceneMemory)
        cfg = memory.config
        if graph_from is None:
            relations, zones = memory.relations, memory.zones
        else:
            relations, zones = graph_from.relations, graph_from.zones
        return cls(
            version=version,
            objects={oid: _frozen_copy(o) for oid, o in memory.objects.items()},
            relations=relations,
            zones=zones,
            events=memory.short_term.events(),
            max_k=cfg.retrieval.max_k,
            max_text_chars=cfg.retrieval.max_text_chars,
            max_render_objects=cfg.max_render_objects,
            default_max_results=cfg.short_term.default_max_results,
            max_results_limit=cfg.short_term.max_results_limit,
        )

    def query(self, retriever: Retriever, req: QueryRequest) -> list[ScoredObject]:
        """Rank the objects for ``req`` with ``retriever`` (see :meth:`SceneMemory.query`)."""
        return retriever.query(self.objects, req)

    def render(
        self,
        focus: str,
        max_objects: int,
        max_tokens: int,
        encode_text: EncodeText | None,
        retriever: Retriever,
    ) -> tuple[list[SceneObject], list[Relation], list[Zone], str, int]:
        """Render the (focused) graph within a token budget (see :meth:`SceneMemory.render`).

        Raises:
            InvalidInput: negative budgets, too many objects asked, or an overlong focus.
        """
        if len(focus) > self.max_text_chars:
            raise InvalidInput(
                f"focus text has {len(focus)} characters, above the limit "
                f"{self.max_text_chars} (retrieval.max_text_chars)"
            )
        if max_objects < 0 or max_tokens < 0:
            raise InvalidInput("max_objects and max_tokens must be >= 0")
        if max_objects > self.max_render_objects:
            raise InvalidInput(
                f"max_objects={max_objects} is above the limit {self.max_render_objects}"
            )
        return render_graph(
            list(self.objects.values()),
            self.relations,
            self.zones,
            focus,
            max_objects,
            max_tokens,
            encode_text,
            retriever=retriever,
        )

    def changes(
        self, since: float = -math.inf, object_id: str = "", max_results: int = 0
    ) -> list[ChangeEvent]:
        """Events with ``stamp >= since``, newest first (see :meth:`ShortTermMemory.query`).

        Raises:
            InvalidInput: ``since`` is NaN or ``max_results`` is negative.
        """
        if math.isnan(since):
            raise InvalidInput("since is NaN")
        if max_results < 0:
            raise InvalidInput(f"max_results must be >= 0, got {max_results}")
        limit = min(max_results or self.default_max_results, self.max_results_limit)
        order = [
            (e.stamp, i, e)
            for i, e in enumerate(self.events)
            if e.stamp >= since and (not object_id or e.object_id == object_id)
        ]
        order.sort(key=lambda x: (x[0], x[1]), reverse=True)
        self.accesses.append((since, object_id, max_results))
        return [e for _, _, e in order[:limit]]


def replay_accesses(memory: object, view: MemoryView | None) -> None:
    """Apply the change queries answered from ``view`` to the live memory's statistics."""
    from memory_node.core.scene_memory import SceneMemory

    assert isinstance(memory, SceneMemory)
    while view is not None and view.accesses:
        since, object_id, max_results = view.accesses.popleft()
        memory.short_term.query(since, object_id, max_results)


class ViewRetriever:
    """One :class:`Retriever` for successive views, refreshed when the view changes.

    Its text-embedding caches survive across views; only the object index is rebuilt.
    """

    def __init__(self, make: Callable[[], Retriever]) -> None:
        self._retriever = make()
        self._version = -1
        self._lock = threading.Lock()

    def for_view(self, view: MemoryView) -> Retriever:
        """Return the retriever, its index invalidated if ``view`` is newer than the last one."""
        with self._lock:
            if view.version != self._version:
                self._retriever.invalidate()
                self._version = view.version
            return self._retriever
