"""The fleet store on both backends: SQLite file and a real PostgreSQL server (tools/postgres.sh).

Near-queries through the grid cells against brute force, migrations and old schemas, bad
connection strings, another map frame, three concurrent writers, and a server stopped mid-run.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memory_node.core.fleet import FleetConfig, FleetError, FleetSync
from memory_node.core.storage import (
    SchemaMismatch,
    StorageError,
    StoreUnavailable,
    open_store,
)
from memory_node.core.types import SceneObject

LABELS = ("mug", "book", "bowl", "chair")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/fleet.db"
    return request.getfixturevalue("postgres_server").new_database()


def random_objects(rng, n, t, prefix="o", extent=20.0):
    out = []
    for i in range(n):
        feature = rng.normal(size=8).astype(np.float32)
        out.append(
            SceneObject(
                id=f"{prefix}{i}",
                label=LABELS[i % len(LABELS)],
                center=np.append(rng.uniform(0, extent, 2), 0.5),
                size=np.full(3, 0.2),
                feature=feature / np.linalg.norm(feature),
                first_seen=t,
                last_seen=t,
                observations=1,
            )
        )
    return out


def test_near_query_through_the_grid_equals_brute_force(store_url):
    rng = np.random.default_rng(0)
    store = open_store(store_url, FleetConfig(cell_size_m=1.5), migrate=True)
    objs = random_objects(rng, 300, 1.0)
    store.push("r1", "map", objs)
    assert store.count() == 300
    centers = {o.id: o.center for o in objs}
    fleet, _ = store.objects()
    by_local = {f.sources["r1"].object_id: f for f in fleet}
    for _ in range(10):
        p, radius = np.append(rng.uniform(0, 20, 2), 0.5), float(rng.uniform(0.5, 4))
        got = {f.sources["r1"].object_id for f, _ in store.query(near=p, radius=radius, k=1000)}
        want = {i for i, c in centers.items() if np.linalg.norm(c - p) <= radius}
        assert got == want
        got_mugs = store.query(near=p, radius=radius, label="mug", k=1000)
        assert {f.sources["r1"].object_id for f, _ in got_mugs} == {
            i for i in want if by_local[i].obj.label == "mug"
        }
    # features come back as stored (bytea/blob) and are re-ranked in process
    target = objs[7]
    best, score = store.query(text_vector=target.feature, k=1)[0]
    assert best.sources["r1"].object_id == "o7" and score == pytest.approx(1.0, abs=1e-6)
    store.close()


def test_an_older_schema_is_refused_until_migrated(store_url):
    old = open_store(store_url, verify=False)
    assert old.migrate(target=1) == [1]
    old.close()
    with pytest.raises(SchemaMismatch, match="version 1, older than"):
        open_store(store_url)
    store = open_store(store_url, migrate=True)
    assert store.schema_version() == 3
    store.push("r1", "map", random_objects(np.random.default_rng(1), 3, 1.0))
    assert len(store.changes()) == 3
    store.close()


def test_an_empty_database_names_the_fix(store_url):
    with pytest.raises(SchemaMismatch, match="migrate"):
        open_store(store_url)


def test_another_map_frame_is_refused_and_nothing_written(store_url):
    store = open_store(store_url, migrate=True)
    store.push("r1", "map", random_objects(np.random.default_rng(2), 4, 1.0))
    local = random_objects(np.random.default_rng(3), 4, 2.0, prefix="x")
    before = [o.center.copy() for o in local]
    with pytest.raises(FleetError, match="frame 'odom'"):
        store.push("r2", "odom", local)
    assert store.count() == 4 and store.robots() == ["r1"]
    assert all(np.array_equal(a, o.center) for a, o in zip(before, local, strict=True))
    store.close()


def test_bad_connection_strings_give_clear_errors(postgres_server, tmp_path):
    url = postgres_server.url
    wrong_password = url.replace("memory:", "memory:wrong", 1)
    with pytest.raises(StoreUnavailable, match="password authentication failed") as err:
        open_store(wrong_password)
    assert "wrong" not in str(err.value)  # the password is not echoed
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        open_store(url.rsplit(":", 1)[0] + ":1/memory")
    with pytest.raises(StorageError, match="unsupported storage URL"):
        open_store("mysql://x@y/z")
    with pytest.raises(StoreUnavailable, match="no directory"):
        open_store(f"sqlite:///{tmp_path}/missing/fleet.db")


def test_three_concurrent_writers_lose_no_update(store_url):
    """Three robots push the same 40 objects (shared places) 15 times each, concurrently."""
    setup = open_store(store_url, migrate=True)
    rounds, n = 15, 40
    base = random_objects(np.random.default_rng(4), n, 0.0)
    errors: list[BaseException] = []

    def writer(robot: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        store = open_store(store_url)
        try:
            for r in range(rounds):
                objs = []
                for o in base:
                    t = r * 10.0 + seed + rng.uniform(0, 1)
                    jitter = np.append(rng.normal(0, 0.05, 2), 0.0)
                    objs.append(
                        SceneObject(
                            id=o.id,
                            label=o.label,
                            center=o.center + jitter,
                            size=o.size,
                            first_seen=0.0,
                            last_seen=t,
                            observations=r + 1,
                        )
                    )
                store.push(robot, "map", objs)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(f"r{i}", i)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    lost = 0
    fleet, _ = setup.objects()
    for f in fleet:
        newest = max(f.sources.values(), key=lambda s: s.last_seen)
        lost += f.obj.last_seen != newest.last_seen
        lost += not np.allclose(f.obj.center, newest.center)
        lost += any(s.observations != rounds for s in f.sources.values())
    for robot in ("r0", "r1", "r2"):
        rows = setup.robot_objects(robot)
        assert len(rows) == n
        lost += sum(o.observations != rounds for o, _ in rows)
    assert lost == 0
    assert len(fleet) <= n + 2  # one object per place (jitter may split a rare pair)
    setup.close()


def test_server_down_mid_run_robot_keeps_memory_and_resyncs(postgres_server):
    url = postgres_server.new_database()
    open_store(url, migrate=True).close()
    store = open_store(url)
    sync = FleetSync(store, "robot1", "map")
    rng = np.random.default_rng(5)
    local = {o.id: o for o in random_objects(rng, 20, 1.0)}
    assert sync.push(local.values()).pushed == 20
    postgres_server.stop()
    try:
        for step in range(3):  # the robot keeps working while the database is down
            for o in list(local.values())[step::3]:
                o.last_seen = 2.0 + step
                o.center = o.center + np.array([0.5, 0.0, 0.0])
            for o in random_objects(rng, 2, 2.0 + step, prefix=f"new{step}_"):
                local[o.id] = o
            report = sync.push(local.values())
            assert not report.ok and report.pending > 0
            assert "unreachable" in report.error or "cannot connect" in report.error
    finally:
        postgres_server.start()
    assert len(local) == 26
    report = sync.push(local.values())
    assert report.ok and report.pushed > 0
    assert sync.pending(local.values()) == []
    stored = {o.id: o for o, _ in store.robot_objects("robot1")}
    assert set(stored) == set(local)
    for oid, o in local.items():
        assert stored[oid].last_seen == o.last_seen
        np.testing.assert_allclose(stored[oid].center, o.center)
    store.close()
