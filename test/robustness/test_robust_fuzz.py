"""Property-based fuzzing of every input, in-process (the ``make test`` tier).

Every subscribed topic, every service request, generated corruptions of memory files, policy
steps and stamp sequences. Each case checks: no exception escapes the node's handler and no
"internal error" (what crashed or would crash the process), an answer within a deadline
(:data:`DEADLINE_S`, a hang detector, not a speed check), and that a rejected input leaves the
memory identical (full snapshot fingerprints, not counts). Replies are serialised as rclpy
would, so a value the message cannot hold shows up here instead of aborting the node.

``MEMORY_FUZZ_EXAMPLES`` sets the cases per interface (default 300; ``make soak`` runs 10,000).
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from robust_helpers import fingerprint, memory_fingerprint  # noqa: E402
from robust_msgs import (  # noqa: E402
    LOAD_ONLY_PATHS,
    STREAMS,
    check_serializable,
    messages,
    special_paths,
)
from robust_strategies import (  # noqa: E402
    TOPIC_MUTATIONS,
    changes_request,
    graph_request,
    mutate,
    query_request,
    stamp_offsets,
    step_request,
)

from memory_interfaces.srv import (  # noqa: E402
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    PolicyMemoryStep,
    QueryObjects,
    SaveMemory,
)
from memory_node.core.persistence import load_memory  # noqa: E402
from memory_node.core.stamp_guard import StampConfig, StampGuard, check_not_ahead  # noqa: E402
from memory_node.core.sync import Bundle  # noqa: E402
from memory_node.core.types import InvalidInput  # noqa: E402
from memory_node.ros.policy_memory_node import PolicyMemoryNode  # noqa: E402
from memory_node.ros.scene_memory_node import SceneMemoryNode  # noqa: E402

EXAMPLES = int(os.environ.get("MEMORY_FUZZ_EXAMPLES", "300"))
DEADLINE_S = 10.0
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def answered(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail when it raises or has not returned within DEADLINE_S."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # reported below: an escaping exception is a crash
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(DEADLINE_S)
    assert not t.is_alive(), f"no answer within {DEADLINE_S} s (hang)"
    if errors:
        raise AssertionError(f"exception escaped the handler: {errors[0]!r}") from errors[0]
    return out[0] if out else None


class SceneRig:
    """A scene_memory node (not spun: its callbacks are called directly) and its drop log."""

    def __init__(self, node: SceneMemoryNode) -> None:
        self.node = node
        self.reasons: list[str] = []
        node._drop = lambda reason, text: self.reasons.append(reason)  # type: ignore[method-assign]
        self.clock = itertools.count(1)
        self.base = [messages(1.0, i) for i in range(4)]

    def observation(self) -> tuple[float, dict[str, Any]]:
        """Return a fresh valid observation with a stamp after every earlier one."""
        k = next(self.clock)
        stamp = 1000.0 + 0.05 * k
        msgs = {s: copy.deepcopy(m) for s, m in self.base[k % 4].items()}
        t = msgs["rgb"].header.stamp
        t.sec, t.nanosec = int(stamp), round((stamp % 1.0) * 1e9) % 1_000_000_000
        for m in msgs.values():
            m.header.stamp = t
        return stamp, msgs

    def fingerprint(self) -> str:
        with self.node._lock:
            assert self.node.memory is not None
            return memory_fingerprint(self.node.memory)


@pytest.fixture(scope="module")
def rig() -> Iterator[SceneRig]:
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = SceneMemoryNode(
        context=context, parameter_overrides=[Parameter("features.mode", value="off")]
    )
    r = SceneRig(node)
    for _ in range(4):  # some memory to protect
        stamp, msgs = r.observation()
        node._ingest(Bundle(stamp, msgs))
    assert node.memory is not None and node.memory.objects, r.reasons
    try:
        yield r
    finally:
        node.close()
        node.destroy_node()
        rclpy.shutdown(context=context)


# --- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_fuzzed_topic_messages_never_crash_nor_change_memory_when_dropped(
    rig: SceneRig, stream: str
) -> None:
    node = rig.node

    @FUZZ
    @given(mutation=TOPIC_MUTATIONS[stream][0], seed=st.integers(0, 2**16))
    def case(mutation: dict[str, Any], seed: int) -> None:
        stamp, msgs = rig.observation()
        msgs[stream] = mutate(stream, msgs[stream], mutation)
        before, dropped = rig.fingerprint(), len(rig.reasons)
        answered(lambda: node._ingest(Bundle(stamp, msgs)))
        if len(rig.reasons) > dropped:
            reason = rig.reasons[-1]
            assert "internal error" not in reason, reason
            assert rig.fingerprint() == before, f"dropped ({reason}) yet memory changed"

    case()


@FUZZ
@given(offsets=stamp_offsets)
def test_no_stamp_sequence_stops_ingest(offsets: list[float]) -> None:
    cfg = StampConfig()
    guard = StampGuard(cfg)
    now = 1.7e9
    for offset in offsets:
        stamp = now + offset
        try:
            check_not_ahead(stamp, now, cfg.max_future_s)
            guard.check(stamp)
        except InvalidInput:
            continue
        guard.accept(stamp)
        now += 0.05
    # whatever came before, a frame stamped by the clock once it has moved on is used
    now += cfg.max_future_s + 0.01
    check_not_ahead(now, now, cfg.max_future_s)
    guard.check(now)


# --- services --------------------------------------------------------------------------------


def read_only_case(rig: SceneRig, call: Callable[[], Any]) -> Any:
    before = rig.fingerprint()
    res = answered(call)
    assert isinstance(res.success, bool) and (res.success or res.message)
    assert "internal error" not in res.message, res.message
    check_serializable(res)
    assert rig.fingerprint() == before, "a read-only service changed the memory"
    return res


@FUZZ
@given(req=query_request())
def test_fuzzed_queries(rig: SceneRig, req: QueryObjects.Request) -> None:
    res = read_only_case(rig, lambda: rig.node._on_query(req, QueryObjects.Response()))
    for obj in res.objects:
        assert np.isfinite([obj.pose.position.x, obj.pose.position.y, obj.score]).all()


@FUZZ
@given(req=graph_request())
def test_fuzzed_scene_graph_requests(rig: SceneRig, req: GetSceneGraph.Request) -> None:
    read_only_case(rig, lambda: rig.node._on_graph(req, GetSceneGraph.Response()))


@FUZZ
@given(req=changes_request())
def test_fuzzed_change_requests(rig: SceneRig, req: GetObjectChanges.Request) -> None:
    read_only_case(rig, lambda: rig.node._on_changes(req, GetObjectChanges.Response()))


@pytest.fixture(scope="module")
def paths(rig: SceneRig, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("paths")
    good = root / "good.db"
    assert rig.node.memory is not None
    rig.node.memory.save(str(good))
    made = special_paths(root / "special", good)
    yield made
    (root / "special" / "readonly").chmod(0o755)


SAVE_KINDS = [
    "missing",
    "missing_dir",
    "directory",
    "fifo",
    "device",
    "link_device",
    "link_fifo",
    "link_good",
    "link_dangling",
    "link_dir",
    "link_loop",
    "readonly_dir",
    "nul",
    "long",
    "long_component",
    "unicode",
    "empty_file",
    "junk",
    "good",
]


PATH_SUFFIX = st.one_of(
    st.sampled_from(["", "", "/", "/..", "/./x.db", ".db", "\x00"]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
)


@FUZZ
@given(kind=st.sampled_from(SAVE_KINDS), suffix=PATH_SUFFIX)
def test_fuzzed_save_paths(rig: SceneRig, paths: dict[str, str], kind: str, suffix: str) -> None:
    path = paths[kind] + suffix
    before = rig.fingerprint()
    was_special = {k: os.path.lexists(p) and os.lstat(p).st_mode for k, p in paths.items()
                   if k in ("fifo", "device", "link_device", "link_fifo", "link_dir")}  # fmt: skip
    res = answered(lambda: rig.node._on_save(SaveMemory.Request(path=path), SaveMemory.Response()))
    assert res.success or res.message
    assert "internal error" not in res.message, res.message
    assert rig.fingerprint() == before, "a save changed the memory"
    for k, mode in was_special.items():  # never replaced
        assert os.lstat(paths[k]).st_mode == mode, f"save to {path!r} replaced {k}"
    if res.success:
        snap = load_memory(path)
        with rig.node._lock:
            assert rig.node.memory is not None
            saved = rig.node.memory.snapshot()
        assert fingerprint(snap.objects) == fingerprint(saved.objects)


NEVER_LOADABLE = {"directory", "fifo", "device", "link_device", "link_fifo", "link_dir", "nul"}
NEVER_LOADABLE |= {"long", "link_loop", "empty", "truncated", "missing_dir", *LOAD_ONLY_PATHS}


@FUZZ
@given(
    kind=st.sampled_from(sorted({*SAVE_KINDS, *LOAD_ONLY_PATHS, "truncated", "empty"})),
    suffix=PATH_SUFFIX,
)
def test_fuzzed_load_paths(rig: SceneRig, paths: dict[str, str], kind: str, suffix: str) -> None:
    path = LOAD_ONLY_PATHS.get(kind, paths.get(kind, "")) + suffix
    before = rig.fingerprint()
    res = answered(lambda: rig.node._on_load(LoadMemory.Request(path=path), LoadMemory.Response()))
    assert "internal error" not in res.message, res.message
    if res.success:  # a memory file (some were written by the save cases): memory = file
        assert suffix or kind not in NEVER_LOADABLE, f"{kind} loaded"
        with rig.node._lock:
            assert rig.node.memory is not None
            loaded = rig.node.memory.snapshot()
        assert fingerprint(load_memory(path).objects) == fingerprint(loaded.objects)
    else:
        assert res.message and rig.fingerprint() == before


# --- memory files ----------------------------------------------------------------------------

SQL_VALUES = st.one_of(
    st.sampled_from(["yesterday", "", "ñ", "{}", "[]", "null", "1e999", "-1", "obj_000001"]),
    st.binary(max_size=64),
    st.sampled_from([b"", b"\x00", b"\xff\xfe"]),
    st.sampled_from([-1, 0, 1, -(2**63), 2**63 - 1, 2**31]),
    st.integers(-(10**6), 10**6),
    st.sampled_from([-1.0, 1e300, -1e300, 1e-300, 0.5, float("inf"), float("-inf")]),
    st.none(),
)


@st.composite
def corruption(draw: Any, columns: dict[str, list[str]]) -> tuple[str, str, Any, str]:
    """(table, column, value, which rows) of one generated corruption of a memory file."""
    table = draw(st.sampled_from(sorted(columns)))
    column = draw(st.sampled_from(columns[table]))
    rows = draw(st.sampled_from(["first", "all", "last"]))
    kind = draw(st.sampled_from(["value", "value", "value", "truncate", "drop_table"]))
    if kind == "truncate":
        return table, column, draw(st.integers(0, 40)), "truncate"
    if kind == "drop_table":
        return table, "", None, "drop_table"
    return table, column, draw(SQL_VALUES), rows


@pytest.fixture(scope="module")
def good_file(rig: SceneRig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "good.db"
    assert rig.node.memory is not None
    rig.node.memory.save(str(path))
    return path


def _columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def test_fuzzed_memory_files_are_refused_whole_or_answer_every_service(
    rig: SceneRig, good_file: Path, tmp_path: Path
) -> None:
    columns = _columns(good_file)
    counter = itertools.count()
    node = rig.node

    @FUZZ
    @given(spoil=corruption(columns))
    def case(spoil: tuple[str, str, Any, str]) -> None:
        table, column, value, rows = spoil
        path = tmp_path / f"c{next(counter) % 4}.db"
        shutil.copyfile(good_file, path)
        conn = sqlite3.connect(path)
        try:
            if rows == "drop_table":
                conn.execute(f"DROP TABLE {table}")
            elif rows == "truncate":
                conn.execute(f"UPDATE {table} SET {column} = substr({column}, 1, ?)", (value,))
            else:
                where = {"first": f"WHERE rowid = (SELECT min(rowid) FROM {table})",
                         "last": f"WHERE rowid = (SELECT max(rowid) FROM {table})",
                         "all": ""}[rows]  # fmt: skip
                conn.execute(f"UPDATE {table} SET {column} = ? {where}", (value,))
            conn.commit()
        except sqlite3.Error:
            pass  # a constraint refused the change: the file is still a valid case
        finally:
            conn.close()
        before = rig.fingerprint()
        res = answered(
            lambda: node._on_load(LoadMemory.Request(path=str(path)), LoadMemory.Response())
        )
        assert "internal error" not in res.message, res.message
        if not res.success:
            assert rig.fingerprint() == before, f"refused ({res.message}) yet memory changed"
            return
        for call in (
            lambda: node._on_query(QueryObjects.Request(k=1000), QueryObjects.Response()),
            lambda: node._on_query(QueryObjects.Request(text="mug"), QueryObjects.Response()),
            lambda: node._on_graph(GetSceneGraph.Request(), GetSceneGraph.Response()),
            lambda: node._on_changes(GetObjectChanges.Request(), GetObjectChanges.Response()),
        ):
            reply = answered(call)
            assert reply.success, f"{spoil} loaded but a service failed: {reply.message}"
            check_serializable(reply)
        node._on_publish_timer()  # the published graph and markers are built too

    case()


# --- policy steps ----------------------------------------------------------------------------

DIM, MAX_TOKENS = 16, 8


@pytest.fixture(scope="module")
def policy() -> Iterator[PolicyMemoryNode]:
    context = rclpy.context.Context()
    rclpy.init(context=context)
    overrides = {"dim": DIM, "capacity": 4, "num_heads": 2, "num_layers": 1, "ffn_dim": 32}
    overrides["max_tokens"] = MAX_TOKENS
    node = PolicyMemoryNode(
        context=context,
        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
    )
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def _bank(node: PolicyMemoryNode) -> dict[str, np.ndarray]:
    assert node._memory is not None
    return node._memory.snapshot()


@FUZZ
@given(steps=st.lists(step_request(DIM, MAX_TOKENS), min_size=1, max_size=4))
def test_fuzzed_policy_steps_keep_the_bank_finite(
    policy: PolicyMemoryNode, steps: list[PolicyMemoryStep.Request]
) -> None:
    for req in steps:
        before = _bank(policy)
        res = answered(lambda req=req: policy._on_step(req, PolicyMemoryStep.Response()))
        assert "internal error" not in res.message, res.message
        check_serializable(res)
        after = _bank(policy)
        if not res.success:
            assert all(np.array_equal(before[k], after[k]) for k in before), res.message
        else:
            assert (
                np.isfinite(res.perceptual_fused).all() and np.isfinite(res.cognitive_fused).all()
            )
        for v in after.values():
            assert np.isfinite(v).all(), "non-finite values stored in the bank"
    # the bank answers finite outputs afterwards
    assert policy._memory is not None
    n = policy._memory.num_tokens or 2
    rng = np.random.default_rng(0)
    out = policy._memory.step(
        2**24, rng.normal(size=(n, DIM)).astype(np.float32), np.ones(DIM, np.float32), False
    )
    assert np.isfinite(out.perceptual_fused).all() and np.isfinite(out.cognitive_fused).all()


def test_answered_reports_a_hang_and_an_escaping_exception() -> None:
    """The deadline check can fail (with a short deadline for the test)."""
    global DEADLINE_S
    saved, DEADLINE_S = DEADLINE_S, 0.2
    try:
        with pytest.raises(AssertionError, match="hang"):
            answered(lambda: time.sleep(1.0))
        with pytest.raises(AssertionError, match="escaped"):
            answered(lambda: 1 / 0)
    finally:
        DEADLINE_S = saved
