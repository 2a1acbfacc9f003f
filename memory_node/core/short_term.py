"""Short-term object-state memory: recent change events per object, bounded, with replacement.

The store holds one *entry* per object that recently changed: its last few events (appeared,
moved, disappeared, state changed), a bounded position history and access statistics. Its
capacity is a number of entries; when a new object's event arrives and the store is full, one
entry is evicted by the configured policy:

* ``fifo``: the entry created first;
* ``lru``: the entry least recently accessed (a query hit or a new event for it);
* ``lfu``: the entry with the fewest query hits (ties: least recently accessed);
* ``arc``: adaptive replacement in the style of ARC (Megiddo & Modha, 2003): entries hit only
  since they entered live in T1, entries hit by a query live in T2; ghost lists B1/B2 remember
  recently evicted ids, and a query or event for a ghost id moves the target size of T1 towards
  recency (B1) or frequency (B2). A scan of one-off objects then cycles through T1 and leaves
  the frequently queried entries in T2.

Accounting: a query for one object id is a *hit* when the object has an entry (the entry's
access bookkeeping is updated), a *miss* otherwise. A query over all objects updates the
bookkeeping of each entry it returns but does not change :attr:`ShortTermMemory.hits` or
:attr:`ShortTermMemory.misses` (it cannot miss).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.config import param
from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput

_LOG = logging.getLogger(__name__)

POLICIES = ("fifo", "lru", "lfu", "arc")


@dataclass
class ShortTermConfig:
    """Capacity and replacement policy of the short-term memory."""

    capacity: int = param(
        100, "objects (entries) held; the least valuable by `policy` is evicted", min_value=1
    )
    policy: str = param(
        "lru",
        "replacement policy when full: fifo, lru, lfu or arc (lru: best mean hit rate on the "
        "traces recorded from the simulator's change episode, three noise seeds; arc wins the "
        "synthetic Zipf trace)",
        choices=POLICIES,
    )
    events_per_object: int = param(
        16, "latest change events kept per object", min_value=1, max_value=10000
    )
    position_history: int = param(
        32, "latest positions (stamp, centre) kept per object", min_value=1, max_value=10000
    )
    default_max_results: int = param(
        50, "changes returned when a query asks for max_results = 0", min_value=1
    )
    max_results_limit: int = param(
        10000, "larger max_results requests are clamped to this", min_value=1
    )
    consolidate: bool = param(
        True,
        "keep the log as the planner wants it: a MOVED replaces the same object's DISAPPEARED "
        "just before it, and an object found to be a known one moved loses its APPEARED",
    )


@dataclass
class ShortTermEntry:
    """What the store remembers about one object.

    Attributes:
        object_id, label: of the object (label of its latest event).
        events: latest events, oldest first, with their global sequence numbers.
        positions: latest (stamp, (3,) float64 centre in metres, map frame), oldest first.
        hits: query hits since the entry was created.
    """

    object_id: str
    label: str
    events: deque[tuple[int, ChangeEvent]]
    positions: deque[tuple[float, np.ndarray]]
    hits: int = 0

    @property
    def last_event(self) -> ChangeEvent:
        """The newest event of the object."""
        return self.events[-1][1]


class _Policy:
    """Replacement bookkeeping over entry ids. ``insert`` evicts and returns victims."""

    def insert(self, key: str, capacity: int) -> list[str]:
        raise NotImplementedError

    def touch(self, key: str, hit: bool) -> None:
        """Record an access to a resident key: ``hit`` for a query hit, else a new event."""
        raise NotImplementedError

    def miss(self, key: str) -> None:
        """Record a query for a key that is not resident (only ARC learns from it)."""

    def remove(self, key: str) -> None:
        """Forget a resident key without counting an eviction."""
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class _Fifo(_Policy):
    def __init__(self) -> None:
        self.order: OrderedDict[str, None] = OrderedDict()

    def insert(self, key: str, capacity: int) -> list[str]:
        victims = []
        while len(self.order) >= capacity:
            victims.append(self.order.popitem(last=False)[0])
        self.order[key] = None
        return victims

    def touch(self, key: str, hit: bool) -> None:
        pass

    def remove(self, key: str) -> None:
        self.order.pop(key, None)

    def clear(self) -> None:
        self.order.clear()


class _Lru(_Fifo):
    def touch(self, key: str, hit: bool) -> None:
        self.order.move_to_end(key)


class _Lfu(_Policy):
    """Least hits first; ties broken by least recent access. Lazy-deletion heap."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[int, int]] = {}  # key -> (hits, last access tick)
        self.heap: list[tuple[int, int, str]] = []
        self.tick = 0

    def _push(self, key: str, hits: int) -> None:
        self.tick += 1
        self.state[key] = (hits, self.tick)
        heapq.heappush(self.heap, (hits, self.tick, key))
        if len(self.heap) > 4 * len(self.state) + 64:  # compact stale heap items
            self.heap = [(h, t, k) for k, (h, t) in self.state.items()]
            heapq.heapify(self.heap)

    def insert(self, key: str, capacity: int) -> list[str]:
        victims = []
        while len(self.state) >= capacity:
            hits, tick, victim = heapq.heappop(self.heap)
            if self.state.get(victim) == (hits, tick):
                del self.state[victim]
                victims.append(victim)
        self._push(key, 0)
        return victims

    def touch(self, key: str, hit: bool) -> None:
        self._push(key, self.state[key][0] + int(hit))

    def remove(self, key: str) -> None:
        self.state.pop(key, None)  # its heap items go stale

    def clear(self) -> None:
        self.state.clear()
        self.heap.clear()
        self.tick = 0


class _Arc(_Policy):
    """ARC adapted to a store that cannot fetch an evicted entry back (see module docstring)."""

    def __init__(self) -> None:
        self.t1: OrderedDict[str, None] = OrderedDict()
        self.t2: OrderedDict[str, None] = OrderedDict()
        self.b1: OrderedDict[str, None] = OrderedDict()
        self.b2: OrderedDict[str, None] = OrderedDict()
        self.p = 0.0  # target size of T1
        self.capacity = 1

    def _adapt(self, key: str) -> bool:
        """Move the target on a ghost access; True when ``key`` was a ghost."""
        c = self.capacity
        if key in self.b1:
            self.p = min(float(c), self.p + max(len(self.b2) / len(self.b1), 1.0))
            return True
        if key in self.b2:
            self.p = max(0.0, self.p - max(len(self.b1) / len(self.b2), 1.0))
            return True
        return False

    def _replace(self, in_b2: bool) -> str:
        prefer_t1 = len(self.t1) > self.p or (in_b2 and len(self.t1) == int(self.p))
        if self.t1 and (prefer_t1 or not self.t2):
            victim = self.t1.popitem(last=False)[0]
            self.b1[victim] = None
        else:
            victim = self.t2.popitem(last=False)[0]
            self.b2[victim] = None
        return victim

    def insert(self, key: str, capacity: int) -> list[str]:
        self.capacity = c = capacity
        victims: list[str] = []
        ghost = self._adapt(key)
        in_b2 = key in self.b2
        if ghost:
            self.b1.pop(key, None)
            self.b2.pop(key, None)
        elif len(self.t1) + len(self.b1) >= c:
            if len(self.t1) < c and self.b1:
                self.b1.popitem(last=False)
            elif self.t1:
                victims.append(self.t1.popitem(last=False)[0])  # no ghost kept
        elif len(self.t1) + len(self.t2) + len(self.b1) + len(self.b2) >= 2 * c and self.b2:
            self.b2.popitem(last=False)
        while len(self.t1) + len(self.t2) >= c:
            victims.append(self._replace(in_b2))
        # keep the directory bounded: |T1| + |B1| <= c, |T1| + |T2| + |B1| + |B2| <= 2c
        while len(self.t1) + len(self.b1) > c and self.b1:
            self.b1.popitem(last=False)
        while len(self.t1) + len(self.t2) + len(self.b1) + len(self.b2) > 2 * c and self.b2:
            self.b2.popitem(last=False)
        (self.t2 if ghost else self.t1)[key] = None
        return victims

    def touch(self, key: str, hit: bool) -> None:
        if hit:
            self.t1.pop(key, None)
            self.t2[key] = None
            self.t2.move_to_end(key)
        elif key in self.t1:
            self.t1.move_to_end(key)
        else:
            self.t2.move_to_end(key)

    def miss(self, key: str) -> None:
        self._adapt(key)

    def remove(self, key: str) -> None:
        self.t1.pop(key, None)
        self.t2.pop(key, None)

    def clear(self) -> None:
        for lst in (self.t1, self.t2, self.b1, self.b2):
            lst.clear()
        self.p = 0.0


def _make_policy(name: str) -> _Policy:
    policies: dict[str, type[_Policy]] = {"fifo": _Fifo, "lru": _Lru, "lfu": _Lfu, "arc": _Arc}
    if name not in policies:
        raise ValueError(f"unknown short-term policy {name!r}; choose one of {list(POLICIES)}")
    return policies[name]()


class ShortTermMemory:
    """Bounded store of recent change events, one entry per object.

    Not thread-safe: the caller holds the memory lock.
    """

    def __init__(self, config: ShortTermConfig) -> None:
        if config.capacity < 1:
            raise ValueError(f"short-term capacity must be >= 1, got {config.capacity}")
        self.config = config
        self._policy = _make_policy(config.policy)
        self._entries: dict[str, ShortTermEntry] = {}
        self._seq = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._entries

    @property
    def hit_rate(self) -> float:
        """Hits / (hits + misses) of single-object queries; 0 before any."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def record(self, event: ChangeEvent) -> None:
        """Store ``event`` in its object's entry, creating (and possibly evicting) entries.

        With ``consolidate``, a MOVED that follows the object's DISAPPEARED replaces it (the
        object was not gone but moved; the MOVED keeps the old position).
        """
        cfg = self.config
        entry = self._entries.get(event.object_id)
        if (
            cfg.consolidate
            and entry is not None
            and event.kind == ChangeKind.MOVED
            and entry.events
            and entry.events[-1][1].kind == ChangeKind.DISAPPEARED
        ):
            entry.events.pop()
        if entry is None:
            for victim in self._policy.insert(event.object_id, cfg.capacity):
                del self._entries[victim]
                self.evictions += 1
            entry = ShortTermEntry(
                object_id=event.object_id,
                label=event.label,
                events=deque(maxlen=cfg.events_per_object),
                positions=deque(maxlen=cfg.position_history),
            )
            self._entries[event.object_id] = entry
        else:
            self._policy.touch(event.object_id, hit=False)
        self._seq += 1
        entry.events.append((self._seq, event))
        if event.label:
            entry.label = event.label
        if event.kind in (ChangeKind.APPEARED, ChangeKind.MOVED):
            entry.positions.append(
                (float(event.stamp), np.asarray(event.new_position, dtype=np.float64).copy())
            )

    def _limit(self, max_results: int) -> int:
        if max_results < 0:
            raise InvalidInput(f"max_results must be >= 0, got {max_results}")
        if max_results == 0:
            return self.config.default_max_results
        return min(max_results, self.config.max_results_limit)

    def query(self, since: float, object_id: str = "", max_results: int = 0) -> list[ChangeEvent]:
        """Events with ``stamp >= since``, newest first.

        Args:
            since: seconds; in the future -> no events; -inf -> all.
            object_id: "" = all objects; an unknown id -> no events (a miss).
            max_results: 0 -> ``default_max_results``; larger than ``max_results_limit`` ->
                clamped.

        Raises:
            InvalidInput: ``since`` is NaN or ``max_results`` is negative.
        """
        if math.isnan(since):
            raise InvalidInput("since is NaN")
        limit = self._limit(max_results)
        if object_id:
            entry = self._entries.get(object_id)
            if entry is None:
                self.misses += 1
                self._policy.miss(object_id)
                return []
            self.hits += 1
            entry.hits += 1
            self._policy.touch(object_id, hit=True)
            found = [(e.stamp, seq, e) for seq, e in entry.events if e.stamp >= since]
            found.sort(key=lambda x: (x[0], x[1]), reverse=True)
            return [e for _, _, e in found[:limit]]
        found_all = [
            (e.stamp, seq, e)
            for entry in self._entries.values()
            for seq, e in entry.events
            if e.stamp >= since
        ]
        newest = heapq.nlargest(limit, found_all, key=lambda x: (x[0], x[1]))
        for oid in dict.fromkeys(e.object_id for _, _, e in newest):
            entry = self._entries[oid]
            entry.hits += 1
            self._policy.touch(oid, hit=True)
        return [e for _, _, e in newest]

    def forget(self, object_id: str) -> bool:
        """Drop an object's entry (its id no longer exists); returns whether one was held."""
        if object_id not in self._entries:
            return False
        del self._entries[object_id]
        self._policy.remove(object_id)
        return True

    def entry(self, object_id: str) -> ShortTermEntry | None:
        """Return the entry of an object, without access bookkeeping; None when not held."""
        return self._entries.get(object_id)

    def last_event(self, object_id: str) -> ChangeEvent | None:
        """Return the newest held event of an object, without access bookkeeping."""
        entry = self._entries.get(object_id)
        return None if entry is None else entry.last_event

    def positions(self, object_id: str) -> list[tuple[float, np.ndarray]]:
        """Held position history of an object, oldest first; (stamp s, (3,) centre metres)."""
        entry = self._entries.get(object_id)
        return [] if entry is None else list(entry.positions)

    def events(self) -> list[ChangeEvent]:
        """Every held event, oldest first (in the order they were recorded), for persistence."""
        held = [(seq, e) for entry in self._entries.values() for seq, e in entry.events]
        held.sort(key=lambda x: x[0])
        return [e for _, e in held]

    def clear(self) -> None:
        """Forget every entry and reset statistics."""
        self._entries.clear()
        self._policy.clear()
        self._seq = 0
        self.hits = self.misses = self.evictions = 0

    def restore(self, events: Iterable[ChangeEvent]) -> None:
        """Replace the content by ``events`` (oldest first), e.g. from a loaded snapshot."""
        self.clear()
        for event in events:
            self.record(event)
        self.evictions = 0


# --------------------------------------------------------------------------------------------
# Offline evaluation of the replacement policies


@dataclass(frozen=True)
class TraceOp:
    """One step of a short-term memory trace.

    Attributes:
        op: "event" (an object changed) or "query" (someone asked about the object).
        object_id: the object.
        stamp: seconds.
        kind: change kind for "event" operations.
    """

    op: str
    object_id: str
    stamp: float
    kind: ChangeKind = ChangeKind.MOVED


@dataclass
class TraceResult:
    """Outcome of :func:`replay`."""

    policy: str
    capacity: int
    hits: int
    misses: int
    evictions: int
    hit_rate: float = field(init=False)

    def __post_init__(self) -> None:
        total = self.hits + self.misses
        self.hit_rate = self.hits / total if total else 0.0


def replay_trace(trace: Sequence[TraceOp], config: ShortTermConfig) -> float:
    """Hit rate of the queries of ``trace`` replayed on a fresh :class:`ShortTermMemory`."""
    return replay(trace, config).hit_rate


def replay(trace: Sequence[TraceOp], config: ShortTermConfig) -> TraceResult:
    """Replay ``trace`` on a fresh :class:`ShortTermMemory`; hits, misses and evictions."""
    memory = ShortTermMemory(config)
    for step in trace:
        if step.op == "event":
            memory.record(
                ChangeEvent(kind=step.kind, object_id=step.object_id, label="", stamp=step.stamp)
            )
        elif step.op == "query":
            memory.query(-math.inf, step.object_id, 1)
        else:
            raise ValueError(f"unknown trace operation {step.op!r}")
    return TraceResult(
        policy=config.policy,
        capacity=config.capacity,
        hits=memory.hits,
        misses=memory.misses,
        evictions=memory.evictions,
    )


def zipf_trace(
    n_objects: int = 2000,
    n_ops: int = 50000,
    query_share: float = 0.5,
    alpha: float = 1.0,
    recent_share: float = 0.3,
    scan_every: int = 5000,
    scan_length: int = 300,
    seed: int = 0,
) -> list[TraceOp]:
    """Make a synthetic trace mixing the access patterns a planner produces.

    * events hit objects with Zipf(``alpha``) popularity (a few objects change often);
    * queries ask about objects by an independent Zipf popularity over a shuffled ranking
      (``1 - recent_share``) or about one of the last 20 changed objects (``recent_share``);
    * every ``scan_every`` operations a tour reveals ``scan_length`` one-off objects
      (APPEARED events never queried), the pattern that flushes LRU and FIFO.

    Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, n_objects + 1, dtype=np.float64)
    weights = ranks**-alpha
    weights /= weights.sum()
    event_ids = rng.choice(n_objects, size=n_ops, p=weights)
    query_perm = rng.permutation(n_objects)
    query_ids = query_perm[rng.choice(n_objects, size=n_ops, p=weights)]
    is_query = rng.random(n_ops) < query_share
    use_recent = rng.random(n_ops) < recent_share
    recent: deque[int] = deque(maxlen=20)
    trace: list[TraceOp] = []
    scan_counter = 0
    t = 0.0
    for i in range(n_ops):
        t += 0.1
        if scan_every and i and i % scan_every == 0:
            for _ in range(scan_length):
                trace.append(TraceOp("event", f"scan_{scan_counter:07d}", t, ChangeKind.APPEARED))
                scan_counter += 1
        if is_query[i]:
            if use_recent[i] and recent:
                oid = recent[int(rng.integers(len(recent)))]
            else:
                oid = int(query_ids[i])
            trace.append(TraceOp("query", f"obj_{oid:06d}", t))
        else:
            oid = int(event_ids[i])
            recent.append(oid)
            trace.append(TraceOp("event", f"obj_{oid:06d}", t))
    return trace


def save_trace(path: str, trace: Sequence[TraceOp]) -> None:
    """Write a trace as JSON lines ``{"op", "object_id", "stamp", "kind"}``."""
    with open(path, "w", encoding="utf-8") as f:
        for step in trace:
            row = {"op": step.op, "object_id": step.object_id, "stamp": step.stamp}
            row["kind"] = int(step.kind)
            f.write(json.dumps(row) + "\n")


def load_trace(path: str) -> list[TraceOp]:
    """Read a trace written by :func:`save_trace` (e.g. recorded from simulator episodes).

    Raises:
        InvalidInput: a line is not a valid trace operation (the message gives its number).
    """
    trace = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                op = str(row["op"])
                if op not in ("event", "query"):
                    raise ValueError(f"op {op!r}")
                trace.append(
                    TraceOp(
                        op,
                        str(row["object_id"]),
                        float(row["stamp"]),
                        ChangeKind(int(row.get("kind", ChangeKind.MOVED))),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}:{number}: not a trace operation ({exc})") from exc
    return trace


def compare_policies(
    trace: Sequence[TraceOp], capacities: Sequence[int], base: ShortTermConfig | None = None
) -> list[TraceResult]:
    """Replay ``trace`` for every policy and capacity."""
    base = base or ShortTermConfig()
    return [
        replay(trace, dataclasses.replace(base, policy=policy, capacity=capacity))
        for capacity in capacities
        for policy in POLICIES
    ]
