"""Short-term memory: queries, bounds, and each replacement policy's eviction order."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from memory_node.core.config import flatten
from memory_node.core.short_term import (
    POLICIES,
    ShortTermConfig,
    ShortTermMemory,
    TraceOp,
    compare_policies,
    load_trace,
    replay,
    replay_trace,
    save_trace,
    zipf_trace,
)
from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput


def ev(oid: str, stamp: float, kind: ChangeKind = ChangeKind.MOVED, x: float = 0.0) -> ChangeEvent:
    return ChangeEvent(
        kind=kind, object_id=oid, label=f"label_{oid}", stamp=stamp, new_position=np.full(3, x)
    )


def memory(policy: str, capacity: int, **kw) -> ShortTermMemory:
    return ShortTermMemory(ShortTermConfig(capacity=capacity, policy=policy, **kw))


def held(mem: ShortTermMemory, ids: str) -> set[str]:
    return {oid for oid in ids if oid in mem}


def test_config_declares_policy_choices() -> None:
    specs = {s.name: s for s in flatten(ShortTermConfig())}
    assert specs["policy"].choices == POLICIES
    assert specs["policy"].default in POLICIES


def test_fifo_evicts_oldest_entry_even_if_queried() -> None:
    mem = memory("fifo", 2)
    mem.record(ev("A", 1))
    mem.record(ev("B", 2))
    assert mem.query(0, "A")  # hit: FIFO ignores accesses
    mem.record(ev("C", 3))
    assert held(mem, "ABC") == {"B", "C"}


def test_lru_evicts_least_recently_accessed() -> None:
    mem = memory("lru", 2)
    mem.record(ev("A", 1))
    mem.record(ev("B", 2))
    mem.query(0, "A")
    mem.record(ev("C", 3))
    assert held(mem, "ABC") == {"A", "C"}
    mem.record(ev("A", 4))  # a new event for A is an access too
    mem.record(ev("D", 5))
    assert held(mem, "ABCD") == {"A", "D"}


def test_lfu_evicts_least_hits() -> None:
    mem = memory("lfu", 2)
    mem.record(ev("A", 1))
    mem.record(ev("B", 2))
    mem.query(0, "A")
    mem.query(0, "A")
    mem.query(0, "B")
    mem.record(ev("B", 3))  # B is the most recent, but has fewer hits
    mem.record(ev("C", 4))
    assert held(mem, "ABC") == {"A", "C"}


def test_lfu_breaks_ties_by_recency() -> None:
    mem = memory("lfu", 2)
    mem.record(ev("A", 1))
    mem.record(ev("B", 2))
    mem.record(ev("A", 3))
    mem.record(ev("C", 4))
    assert held(mem, "ABC") == {"A", "C"}


@pytest.mark.parametrize(
    "policy, keeps_frequent", [("arc", True), ("lru", False), ("fifo", False)]
)
def test_scan_keeps_frequent_entries_only_with_arc(policy: str, keeps_frequent: bool) -> None:
    mem = memory(policy, 4)
    mem.record(ev("A", 1))
    mem.record(ev("B", 2))
    for _ in range(3):
        mem.query(0, "A")
        mem.query(0, "B")
    for i in range(20):  # a tour reveals 20 one-off objects
        mem.record(ev(f"scan{i}", 10 + i, ChangeKind.APPEARED))
    assert len(mem) == 4
    assert (held(mem, "AB") == {"A", "B"}) is keeps_frequent
    assert f"scan{19}" in mem


def test_arc_adapts_towards_recency_on_ghost_hits() -> None:
    mem = memory("arc", 3)
    mem.record(ev("A", 0))
    mem.query(0, "A")  # A moves to T2
    for i in range(6):
        mem.record(ev(f"o{i}", i + 1))
    # hand-worked: T2 = [A], T1 = [o4, o5], ghost list B1 = [o3]
    policy = mem._policy
    assert list(policy.t1) == ["o4", "o5"] and list(policy.b1) == ["o3"]  # type: ignore
    before = policy.p  # type: ignore[attr-defined]
    assert mem.query(0, "o3") == []  # a miss that T1 one entry larger would have hit
    assert policy.p > before  # type: ignore[attr-defined]
    mem.record(ev("o3", 10))  # a ghost coming back enters T2
    assert "o3" in policy.t2  # type: ignore[attr-defined]


@pytest.mark.parametrize("policy", POLICIES)
def test_capacity_is_never_exceeded(policy: str) -> None:
    mem = memory(policy, 7)
    rng = np.random.default_rng(1)
    for t in range(500):
        oid = f"o{int(rng.integers(40))}"
        if rng.random() < 0.5:
            mem.record(ev(oid, t))
        else:
            mem.query(0, oid)
        assert len(mem) <= 7
    assert mem.hits + mem.misses > 0


def test_query_newest_first_and_filters() -> None:
    mem = memory("lru", 10)
    mem.record(ev("A", 1.0, ChangeKind.APPEARED))
    mem.record(ev("B", 2.0, ChangeKind.APPEARED))
    mem.record(ev("A", 3.0, ChangeKind.MOVED, x=1.0))
    mem.record(ev("A", 4.0, ChangeKind.DISAPPEARED))
    assert [(e.object_id, e.stamp) for e in mem.query(0.0)] == [
        ("A", 4.0),
        ("A", 3.0),
        ("B", 2.0),
        ("A", 1.0),
    ]
    assert [e.stamp for e in mem.query(2.5, "A")] == [4.0, 3.0]
    assert [e.stamp for e in mem.query(0.0, "", 2)] == [4.0, 3.0]
    assert mem.last_event("A") is not None and mem.last_event("A").stamp == 4.0
    assert [t for t, _ in mem.positions("A")] == [1.0, 3.0]


def test_bad_requests_answer_sensibly() -> None:
    mem = memory("arc", 5, default_max_results=2, max_results_limit=3)
    for t in range(6):
        mem.record(ev("A", float(t)))
    assert mem.query(1e12) == []  # since in the future
    assert mem.query(0, "nobody") == [] and mem.misses == 1
    assert len(mem.query(-math.inf, "", 0)) == 2  # default
    assert len(mem.query(-math.inf, "", 10**9)) == 3  # clamped
    with pytest.raises(InvalidInput):
        mem.query(0, "", -1)
    with pytest.raises(InvalidInput):
        mem.query(float("nan"))


def test_bounded_per_object_history() -> None:
    mem = memory("lru", 3, events_per_object=4, position_history=2)
    for t in range(10):
        mem.record(ev("A", float(t), ChangeKind.MOVED, x=t))
    assert [e.stamp for e in mem.query(0, "A", 100)] == [9.0, 8.0, 7.0, 6.0]
    assert [t for t, _ in mem.positions("A")] == [8.0, 9.0]


def test_events_oldest_first_and_restore() -> None:
    mem = memory("arc", 10)
    mem.record(ev("B", 5.0))
    mem.record(ev("A", 1.0))  # recorded later with an older stamp: record order is kept
    mem.record(ev("B", 6.0))
    events = mem.events()
    assert [(e.object_id, e.stamp) for e in events] == [("B", 5.0), ("A", 1.0), ("B", 6.0)]
    other = memory("arc", 10)
    other.restore(events)
    assert [(e.object_id, e.stamp) for e in other.events()] == [
        (e.object_id, e.stamp) for e in events
    ]
    assert other.hits == 0 and other.misses == 0


def test_unknown_policy_refused() -> None:
    with pytest.raises(ValueError, match="policy"):
        ShortTermMemory(dataclasses.replace(ShortTermConfig(), policy="random"))


def test_replay_trace_counts_hits() -> None:
    trace = [
        TraceOp("event", "A", 0.0),
        TraceOp("query", "A", 1.0),
        TraceOp("query", "B", 2.0),
        TraceOp("event", "B", 3.0),
        TraceOp("query", "B", 4.0),
    ]
    config = ShortTermConfig(capacity=1, policy="lru")
    result = replay(trace, config)
    assert replay_trace(trace, config) == pytest.approx(2 / 3)
    assert (result.hits, result.misses, result.evictions) == (2, 1, 1)
    assert result.hit_rate == pytest.approx(2 / 3)


def test_zipf_trace_is_deterministic_and_policies_differ() -> None:
    a = zipf_trace(n_objects=200, n_ops=3000, scan_every=1000, scan_length=50, seed=3)
    b = zipf_trace(n_objects=200, n_ops=3000, scan_every=1000, scan_length=50, seed=3)
    assert a == b
    results = {r.policy: r.hit_rate for r in compare_policies(a, [20])}
    assert set(results) == set(POLICIES)
    assert all(0.0 < rate < 1.0 for rate in results.values())
    assert results["arc"] > results["fifo"]


def test_trace_file_round_trip(tmp_path) -> None:
    trace = zipf_trace(n_objects=20, n_ops=100, scan_every=50, scan_length=5, seed=1)
    path = str(tmp_path / "trace.jsonl")
    save_trace(path, trace)
    assert load_trace(path) == trace
    (tmp_path / "bad.jsonl").write_text(
        '{"op": "event", "object_id": "a", "stamp": 0}\n{"op": 1}\n'
    )
    with pytest.raises(InvalidInput, match=r"bad\.jsonl:2"):
        load_trace(str(tmp_path / "bad.jsonl"))


def test_a_move_replaces_the_disappearance_just_before_it() -> None:
    mem = memory("arc", 10)
    mem.record(ev("a", 1.0, ChangeKind.APPEARED))
    mem.record(ev("a", 2.0, ChangeKind.DISAPPEARED))
    mem.record(ev("a", 3.0, ChangeKind.MOVED, x=4.0))
    assert [e.kind for e in mem.query(-math.inf, "a")] == [ChangeKind.MOVED, ChangeKind.APPEARED]
    raw = memory("arc", 10, consolidate=False)
    for e in (ev("a", 1.0, ChangeKind.APPEARED), ev("a", 2.0, ChangeKind.DISAPPEARED)):
        raw.record(e)
    raw.record(ev("a", 3.0, ChangeKind.MOVED))
    assert len(raw.query(-math.inf, "a")) == 3
    # a MOVED after a state change keeps both
    mem.record(ev("b", 1.0, ChangeKind.STATE_CHANGED))
    mem.record(ev("b", 2.0, ChangeKind.MOVED))
    assert len(mem.query(-math.inf, "b")) == 2


@pytest.mark.parametrize("policy", POLICIES)
def test_forget_drops_an_entry_without_an_eviction(policy: str) -> None:
    mem = memory(policy, 2)
    mem.record(ev("a", 1.0))
    mem.record(ev("b", 2.0))
    assert mem.forget("a") and not mem.forget("a") and "a" not in mem
    mem.record(ev("c", 3.0))  # room again: nothing evicted
    assert held(mem, "abc") == {"b", "c"} and mem.evictions == 0
    mem.record(ev("d", 4.0))
    assert len(mem) == 2 and mem.evictions == 1
