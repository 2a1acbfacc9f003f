"""Round trip, atomicity and refusal of bad files for the SQLite memory file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from memory_node.core import persistence
from memory_node.core.persistence import load_memory, save_memory
from memory_node.core.types import (
    ChangeEvent,
    ChangeKind,
    FreeSpaceKeyframes,
    InvalidInput,
    MemorySnapshot,
    Relation,
    SceneObject,
    Zone,
)

REPO = Path(__file__).resolve().parents[2]


def make_keyframes(n: int = 7, seed: int = 0) -> FreeSpaceKeyframes:
    """Random keyframes of two image sizes (padding zero), stamps increasing."""
    rng = np.random.default_rng(seed)
    sizes = np.array([(6, 8) if i % 3 else (4, 5) for i in range(n)], np.int64)
    depth = np.zeros((n, 6, 8), np.float16)
    for i, (h, w) in enumerate(sizes):
        block = rng.uniform(0.0, 9.0, size=(h, w)).astype(np.float16)
        block[rng.random((h, w)) < 0.2] = 0.0  # no evidence
        depth[i, :h, :w] = block
    K = np.tile(np.array([[7.5, 0.0, 3.4], [0.0, 7.25, 2.6], [0.0, 0.0, 1.0]]), (n, 1, 1))
    K[:, 0, 0] += rng.random(n) / 3.0
    T = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        T[i, :3, :3] = q * np.sign(np.linalg.det(q))
        T[i, :3, 3] = rng.normal(size=3)
    stamps = 50.0 + np.cumsum(rng.random(n) + 1.0 / 3.0)
    # block heights: some keyframes without (0, 0), NaN = no evidence in a block
    hsizes = np.array([(0, 0) if i % 4 == 1 else (3, 4) if i % 2 else (2, 3) for i in range(n)])
    heights = np.full((n, 3, 4), np.nan, np.float16)
    for i, (h, w) in enumerate(hsizes):
        block = rng.uniform(-0.5, 2.0, size=(h, w)).astype(np.float16)
        block[rng.random((h, w)) < 0.3] = np.nan
        heights[i, :h, :w] = block
    # readings each block lacks: none in some keyframes, 0-64 in others, 0 in padding
    missing = np.zeros((n, 6, 8), np.uint16)
    for i, (h, w) in enumerate(sizes):
        if i % 3 != 2:
            missing[i, :h, :w] = rng.integers(0, 65, size=(h, w)) * (rng.random((h, w)) < 0.4)
    return FreeSpaceKeyframes(
        depth=depth, sizes=sizes, K=K, camera_T_map=T, stamps=stamps,
        heights=heights, height_sizes=hsizes.astype(np.int64), missing=missing,
    )  # fmt: skip


def make_snapshot(n: int = 20, seed: int = 0) -> MemorySnapshot:
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n):
        objects.append(
            SceneObject(
                id=f"obj_{i:06d}",
                label=["mug", "table", "", "chair"][i % 4],
                label_confidence=float(rng.random()),
                label_votes={"mug": float(rng.random()), "cup": 1.0 / 3.0} if i % 3 else {},
                center=rng.normal(size=3),
                size=rng.random(3) + 0.01,
                points=rng.normal(size=(int(rng.integers(0, 50)), 3)).astype(np.float32),
                feature=None if i % 5 == 0 else rng.normal(size=16).astype(np.float32),
                state=["", "open", "closed"][i % 3],
                zone_id="zone_001" if i % 2 else "",
                first_seen=float(rng.random()),
                last_seen=1e9 + float(rng.random()),
                observations=int(rng.integers(0, 1000)),
                present=bool(i % 4),
                miss_count=float(rng.random()),
                history=[(float(t), rng.normal(size=3)) for t in range(i % 4)],
                appearance=None if i % 3 == 0 else rng.random(21).astype(np.float32),
            )
        )
    zones = [
        Zone("zone_001", "kitchen", rng.normal(size=3), rng.random(3), ["obj_000001"]),
        Zone("zone_002", "", np.zeros(3), np.ones(3), []),
    ]
    relations = [
        Relation("obj_000001", "on", "obj_000002", 0.75),
        Relation("obj_000003", "in", "obj_000002", 1.0 / 3.0),
    ]
    changes = [
        ChangeEvent(
            kind=kind,
            object_id=f"obj_{k:06d}",
            label="mug",
            stamp=100.0 + k / 7.0,
            old_position=rng.normal(size=3),
            new_position=rng.normal(size=3),
            old_state="closed" if kind == ChangeKind.STATE_CHANGED else "",
            new_state="open" if kind == ChangeKind.STATE_CHANGED else "",
        )
        for k, kind in enumerate(list(ChangeKind) * 2)
    ]
    return MemorySnapshot(
        objects=objects,
        relations=relations,
        zones=zones,
        changes=changes,
        next_object_index=n + 7,
        meta={"clock": 123.456, "config": {"voxel_size_m": 0.025}, "names": ["a", "b"]},
        free_space=make_keyframes(seed=seed),
    )


def assert_same(a: MemorySnapshot, b: MemorySnapshot) -> None:
    assert len(a.objects) == len(b.objects)
    for x, y in zip(a.objects, b.objects, strict=True):
        for name in ("id", "label", "label_confidence", "label_votes", "state", "zone_id"):
            assert getattr(x, name) == getattr(y, name), name
        for name in ("first_seen", "last_seen", "observations", "present", "miss_count"):
            assert getattr(x, name) == getattr(y, name), name
        assert y.center.dtype == np.float64 and np.array_equal(x.center, y.center)
        assert y.size.dtype == np.float64 and np.array_equal(x.size, y.size)
        assert y.points.dtype == np.float32 and y.points.shape == (len(x.points), 3)
        assert np.array_equal(x.points, y.points)
        if x.feature is None:
            assert y.feature is None
        else:
            assert y.feature is not None and y.feature.dtype == np.float32
            assert np.array_equal(x.feature, y.feature)
        if x.appearance is None:
            assert y.appearance is None
        else:
            assert y.appearance is not None and y.appearance.dtype == np.float32
            assert np.array_equal(x.appearance, y.appearance)
        assert len(x.history) == len(y.history)
        for (t1, c1), (t2, c2) in zip(x.history, y.history, strict=True):
            assert t1 == t2 and np.array_equal(c1, c2)
    assert [(z.id, z.label, z.object_ids) for z in a.zones] == [
        (z.id, z.label, z.object_ids) for z in b.zones
    ]
    for z1, z2 in zip(a.zones, b.zones, strict=True):
        assert np.array_equal(z1.center, z2.center) and np.array_equal(z1.size, z2.size)
    assert a.relations == b.relations
    assert len(a.changes) == len(b.changes)
    for e1, e2 in zip(a.changes, b.changes, strict=True):
        assert (e1.kind, e1.object_id, e1.label, e1.stamp, e1.old_state, e1.new_state) == (
            e2.kind,
            e2.object_id,
            e2.label,
            e2.stamp,
            e2.old_state,
            e2.new_state,
        )
        assert isinstance(e2.kind, ChangeKind)
        assert np.array_equal(e1.old_position, e2.old_position)
        assert np.array_equal(e1.new_position, e2.new_position)
    assert a.next_object_index == b.next_object_index
    assert a.meta == b.meta
    assert_same_keyframes(a.free_space, b.free_space)


def assert_same_keyframes(a: FreeSpaceKeyframes | None, b: FreeSpaceKeyframes | None) -> None:
    if a is None or len(a) == 0:
        assert b is None or len(b) == 0
        return
    assert b is not None
    assert b.depth.dtype == np.float16 and b.depth.shape == a.depth.shape
    assert np.array_equal(a.depth, b.depth)  # bit for bit, padding included
    assert b.sizes.dtype == np.int64 and np.array_equal(a.sizes, b.sizes)
    for name in ("K", "camera_T_map", "stamps"):
        x, y = getattr(a, name), getattr(b, name)
        assert y.dtype == np.float64 and np.array_equal(x, y), name
    if a.missing is None:  # no block lacks a reading: the loaded counts are all zero, if any
        assert b.missing is None or not np.asarray(b.missing).any()
    else:
        assert b.missing is not None and np.array_equal(a.missing, b.missing)
    if a.heights is None:
        assert b.heights is None and b.height_sizes is None
        return
    assert b.heights is not None and b.height_sizes is not None and a.height_sizes is not None
    assert np.array_equal(a.height_sizes, b.height_sizes)
    for i, (h, w) in enumerate(a.height_sizes):  # each keyframe's own blocks, NaN included
        assert np.array_equal(a.heights[i, :h, :w], b.heights[i, :h, :w], equal_nan=True)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    snap = make_snapshot()
    path = str(tmp_path / "memory.db")
    save_memory(path, snap)
    loaded = load_memory(path)
    assert_same(snap, loaded)
    for obj in loaded.objects:
        assert np.isfinite(obj.center).all() and np.isfinite(obj.points).all()
    # no side files or temporaries left next to the memory file
    assert sorted(os.listdir(tmp_path)) == ["memory.db"]


def test_file_is_wal_with_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    save_memory(str(path), make_snapshot(3))
    header = path.read_bytes()[:20]
    assert header[18:20] == b"\x02\x02"  # file format read/write versions 2 = WAL
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        assert conn.execute("SELECT version FROM schema").fetchall() == [
            (persistence.SCHEMA_VERSION,)
        ]
    finally:
        conn.close()


def run_sql(path: Path, sql: str, *args: object) -> None:
    """Run one statement on a memory file (to make an older or a corrupt one)."""
    conn = sqlite3.connect(str(path))
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def older_file(path: Path, snap: MemorySnapshot, table: str, version: int) -> None:
    """Save ``snap`` as a file of schema ``version``, written before ``table`` existed."""
    save_memory(str(path), snap)
    run_sql(path, f"DROP TABLE {table}")
    run_sql(path, f"UPDATE schema SET version = {version}")


def assert_table_required(path: Path, table: str) -> None:
    """Check that a file of the current version without ``table`` is refused, naming it."""
    save_memory(str(path), make_snapshot(2))
    run_sql(path, f"DROP TABLE {table}")
    with pytest.raises(InvalidInput, match=rf"missing tables \['{table}'\]"):
        load_memory(str(path))


def test_version_1_files_still_load(tmp_path: Path) -> None:
    """A file written before the appearance column existed loads, without appearances."""
    path = tmp_path / "v1.db"
    snap = make_snapshot(6)
    older_file(path, snap, "free_space", 1)
    run_sql(path, "ALTER TABLE objects DROP COLUMN appearance")
    loaded = load_memory(str(path))
    assert [o.appearance for o in loaded.objects] == [None] * 6
    assert loaded.free_space is None
    for o in snap.objects:
        o.appearance = None
    snap.free_space = None
    assert_same(snap, loaded)


def test_version_2_files_still_load_without_keyframes(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    snap = make_snapshot(6)
    older_file(path, snap, "free_space", 2)
    loaded = load_memory(str(path))
    assert loaded.free_space is None
    snap.free_space = None
    assert_same(snap, loaded)
    assert_table_required(tmp_path / "v4.db", "free_space")  # version 3 on must have it


@pytest.mark.parametrize(
    ("version", "table", "gone"),
    [
        (3, "surface_heights", ("heights", "height_sizes", "missing")),  # complete blocks only
        (4, "free_space_missing", ("missing",)),
    ],
)
def test_older_files_load_keyframes_without_what_came_later(
    tmp_path: Path, version: int, table: str, gone: tuple[str, ...]
) -> None:
    path = tmp_path / f"v{version}.db"
    snap = make_snapshot(4)
    older_file(path, snap, table, version)
    loaded = load_memory(str(path))
    assert loaded.free_space is not None and snap.free_space is not None
    for name in ("heights", "missing"):
        assert (getattr(loaded.free_space, name) is None) == (name in gone), name
    for name in gone:
        setattr(snap.free_space, name, None)
    assert_same(snap, loaded)
    assert_table_required(tmp_path / "current.db", table)  # the current version must have it


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE surface_heights SET idx = 40 WHERE idx = 0", "row 40 names no free_space"),
        ("UPDATE surface_heights SET height = 0 WHERE idx = 2", "row 2 has size 0 x"),
        ("UPDATE surface_heights SET heights = substr(heights, 3) WHERE idx = 3", "row 3 heights"),
        ("UPDATE surface_heights SET heights = ? WHERE idx = 3", "keyframe 3 of 7: heights"),
        ("UPDATE free_space_missing SET idx = 40 WHERE idx = 0", "row 40 names no free_space"),
        ("UPDATE free_space_missing SET missing = substr(missing, 3) WHERE idx = 1", "row 1 miss"),
        ("UPDATE free_space_missing SET missing = 'x' WHERE idx = 1", "row 1 missing blob"),
    ],
)
def test_load_refuses_corrupt_block_rows(tmp_path: Path, sql: str, reason: str) -> None:
    """Rows of block heights and of lost-reading counts: each bad one refused, named."""
    path = tmp_path / "memory.db"
    save_memory(str(path), MemorySnapshot(free_space=make_keyframes(7)))
    inf = np.full(12, np.inf, "<f2").tobytes()  # 3 x 4 infinities
    run_sql(path, sql, *((inf,) if "?" in sql else ()))
    with pytest.raises(InvalidInput, match=reason):
        load_memory(str(path))


def test_keyframes_are_stored_without_padding_in_their_own_table(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    kf = make_keyframes(5, seed=3)
    save_memory(str(path), MemorySnapshot(free_space=kf))
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        rows = conn.execute("SELECT * FROM free_space ORDER BY idx").fetchall()
    finally:
        conn.close()
    assert [r[:4] for r in rows] == [
        (i, float(kf.stamps[i]), int(kf.sizes[i, 0]), int(kf.sizes[i, 1])) for i in range(5)
    ]
    h, w = kf.sizes[1]
    assert rows[1][6] == kf.depth[1, :h, :w].astype("<f2").tobytes()
    assert rows[1][5] == kf.camera_T_map[1].astype("<f8").tobytes()
    assert rows[1][4] == kf.K[1].astype("<f8").tobytes()
    loaded = load_memory(str(path))
    assert_same_keyframes(kf, loaded.free_space)
    # an empty keyframe set saves no rows and loads as empty
    save_memory(str(path), MemorySnapshot(free_space=FreeSpaceKeyframes()))
    loaded = load_memory(str(path))
    assert loaded.free_space is not None and len(loaded.free_space) == 0


NAN9 = np.full(9, np.nan).tobytes()
INF16 = np.where(np.eye(4) > 0, np.inf, 0.0).tobytes()


@pytest.mark.parametrize(
    "sql, args, reason",
    [
        ("UPDATE free_space SET depth = substr(depth, 3) WHERE idx = 2", (), "row 2 depth has"),
        ("UPDATE free_space SET depth = substr(depth, 2) WHERE idx = 2", (), "row 2 depth blob"),
        ("UPDATE free_space SET K = ? WHERE idx = 1", (b"\0" * 64,), "row 1 K has 8 values"),
        ("UPDATE free_space SET K = ? WHERE idx = 4", (NAN9,), "row 4 K is not finite"),
        ("UPDATE free_space SET camera_T_map = ? WHERE idx = 0", (INF16,), "row 0 camera_T_map"),
        ("UPDATE free_space SET height = -4 WHERE idx = 3", (), "row 3 has size -4 x"),
        ("UPDATE free_space SET width = 0 WHERE idx = 3", (), "row 3 has size 4 x 0"),
        ("UPDATE free_space SET width = 'wide' WHERE idx = 3", (), "row 3 has size 4 x 'wide'"),
        ("UPDATE free_space SET stamp = 'soon' WHERE idx = 5", (), "row 5 has stamp 'soon'"),
        ("UPDATE free_space SET depth = NULL WHERE idx = 6", (), "row 6 depth blob"),
        (
            "UPDATE free_space SET K = ? WHERE idx = 2",
            (np.diag([-5.0, 5.0, 1.0]).tobytes(),),
            "free_space table: keyframe 2 of 7: K has fx or fy <= 0",
        ),
    ],
)
def test_load_refuses_corrupt_keyframe_rows(
    tmp_path: Path, sql: str, args: tuple[object, ...], reason: str
) -> None:
    path = tmp_path / "memory.db"
    save_memory(str(path), make_snapshot(3))
    if "NULL" in sql:  # the column is NOT NULL: rebuild the table without the constraint
        run_sql(path, "ALTER TABLE free_space RENAME TO old")
        run_sql(path, "CREATE TABLE free_space AS SELECT * FROM old")
    run_sql(path, sql, *args)
    with pytest.raises(InvalidInput, match="corrupt memory file: .*" + reason):
        load_memory(str(path))


def test_save_refuses_inconsistent_keyframes(tmp_path: Path) -> None:
    path = str(tmp_path / "memory.db")
    first = make_snapshot(4)
    save_memory(path, first)
    bad = make_snapshot(4)
    assert bad.free_space is not None
    bad.free_space.sizes[2] = (7, 8)  # taller than the depth array
    with pytest.raises(InvalidInput, match="cannot save: free-space keyframe 2 of 7: size"):
        save_memory(path, bad)
    assert_same(first, load_memory(path))
    assert sorted(os.listdir(tmp_path)) == ["memory.db"]


def test_empty_snapshot_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "empty.db")
    save_memory(path, MemorySnapshot())
    assert_same(MemorySnapshot(), load_memory(path))


def test_save_overwrites_previous(tmp_path: Path) -> None:
    path = str(tmp_path / "memory.db")
    save_memory(path, make_snapshot(5, seed=1))
    second = make_snapshot(9, seed=2)
    save_memory(path, second)
    assert_same(second, load_memory(path))


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "does not exist"),
        (b"", "not an SQLite file"),
        (np.random.default_rng(3).bytes(4096), "not an SQLite file"),
    ],
)
def test_load_refuses_bad_files(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.db"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInput, match=reason):
        load_memory(str(path))


def test_load_refuses_directory_and_empty_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="directory"):
        load_memory(str(tmp_path))
    with pytest.raises(InvalidInput, match="empty path"):
        load_memory("")


def test_load_refuses_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    save_memory(str(path), make_snapshot(200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"corrupt|truncated"):
        load_memory(str(path))


def test_load_refuses_foreign_and_wrong_version_sqlite(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE things (a INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInput, match="no schema table"):
        load_memory(str(foreign))

    path = tmp_path / "memory.db"
    save_memory(str(path), make_snapshot(2))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInput, match="schema version"):
        load_memory(str(path))


def test_save_refuses_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="directory"):
        save_memory(str(tmp_path), make_snapshot(1))
    with pytest.raises(InvalidInput, match="does not exist"):
        save_memory(str(tmp_path / "missing" / "m.db"), make_snapshot(1))


def test_failure_halfway_keeps_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = str(tmp_path / "memory.db")
    first = make_snapshot(10, seed=4)
    save_memory(path, first)
    real_rows = persistence._object_rows

    def failing_rows(objects):
        for i, row in enumerate(real_rows(objects)):
            if i == len(objects) // 2:
                raise RuntimeError("simulated crash halfway through the save")
            yield row

    monkeypatch.setattr(persistence, "_object_rows", failing_rows)
    with pytest.raises(RuntimeError, match="halfway"):
        save_memory(path, make_snapshot(40, seed=5))
    assert_same(first, load_memory(path))
    assert sorted(os.listdir(tmp_path)) == ["memory.db"]


KILLED_SAVER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from memory_node.core import persistence
    from memory_node.core.types import MemorySnapshot, SceneObject

    objects = [
        SceneObject(id=f"obj_{i:06d}", points=np.ones((100, 3), np.float32)) for i in range(400)
    ]

    real_rows = persistence._object_rows

    def slow_rows(objects):
        for i, row in enumerate(real_rows(objects)):
            if i == len(objects) // 2:
                print("HALFWAY", flush=True)
                time.sleep(60)
            yield row

    persistence._object_rows = slow_rows
    persistence.save_memory(sys.argv[1], MemorySnapshot(objects=objects))
    """
)


def test_sigkill_mid_save_leaves_previous_file_loadable(tmp_path: Path) -> None:
    path = str(tmp_path / "memory.db")
    first = make_snapshot(10, seed=7)
    save_memory(path, first)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVER, path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"HALFWAY"
        # the save is under way: its temporary file exists next to the memory file
        assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))
        time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -9
    assert_same(first, load_memory(path))
    # the next save cleans up what the killed one left behind
    second = make_snapshot(3, seed=8)
    save_memory(path, second)
    assert_same(second, load_memory(path))
    assert sorted(os.listdir(tmp_path)) == ["memory.db"]


def test_save_refuses_inconsistent_snapshots(tmp_path: Path) -> None:
    path = str(tmp_path / "memory.db")
    first = make_snapshot(4)
    save_memory(path, first)
    dup = make_snapshot(4)
    dup.objects.append(dup.objects[0])
    with pytest.raises(InvalidInput, match="inconsistent"):
        save_memory(path, dup)
    nan = make_snapshot(4)
    nan.objects[2].last_seen = float("nan")
    with pytest.raises(InvalidInput, match="NaN"):
        save_memory(path, nan)
    assert_same(first, load_memory(path))
    assert sorted(os.listdir(tmp_path)) == ["memory.db"]


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    save_memory(str(path), make_snapshot(1))
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    save_memory(str(path), make_snapshot(2))
    assert path.stat().st_mode & 0o777 == 0o600
