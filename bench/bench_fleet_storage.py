"""Fleet store at scale: PostgreSQL against the SQLite file, same data, same run.

For each backend (``sqlite`` in ``output/bench``, ``postgres`` on a private server started
with ``tools/postgres.sh`` in ``output/pg_bench``):

1. **load**: ``--objects`` fleet objects (random boxes over a ``--extent-m`` square, 20 labels,
   ``--dim``-d float32 features) pushed by 10 robots in batches of ``--batch`` (one transaction
   each);
2. **upsert**: one push of ``--batch`` new objects by a new robot, then one push of the same
   objects updated (the linked path), wall time each;
3. **query**: ``--queries`` near-queries (radius 2 m, through the grid cells) without and with a
   text vector re-ranked in process against the stored features: p50 and p95 latency;
4. **writers**: 3 processes pushing at once, each ``--writer-rounds`` pushes of the same
   ``--writer-objects`` shared places (contention on the same fleet objects): objects per
   second, and lost updates (see :func:`lost_updates`);
5. **soak** (``--soak-s`` > 0): 3 writer processes for that long; with ``--outage-s`` the
   PostgreSQL server is stopped in the middle of it for that long: writers keep their objects
   pending (:class:`~memory_node.core.fleet.FleetSync`) and push them when it is back.

Usage::

    python -m bench.bench_fleet_storage [--objects 100000] [--batch 10000] [--queries 300]
        [--soak-s 60 --outage-s 10] [--backends sqlite postgres] [--output PATH]

Writes ``output/bench/fleet_storage.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.fleet import FleetConfig, FleetSync
from memory_node.core.storage import FleetStore, StorageError, open_store
from memory_node.core.types import SceneObject

REPO = Path(__file__).resolve().parents[1]
LABELS = [f"label_{i}" for i in range(20)]


def make_objects(
    rng: np.random.Generator, n: int, prefix: str, extent: float, dim: int, t: float
) -> list[SceneObject]:
    """``n`` random small objects over an ``extent`` square (metres), unit features."""
    centres = np.column_stack([rng.uniform(0, extent, (n, 2)), rng.uniform(0.2, 1.5, n)])
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return [
        SceneObject(
            id=f"{prefix}{i}",
            label=LABELS[i % len(LABELS)],
            center=centres[i],
            size=np.array([0.2, 0.2, 0.2]),
            feature=feats[i],
            first_seen=t,
            last_seen=t,
            observations=1,
        )
        for i in range(n)
    ]


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds."""
    a = 1000.0 * np.asarray(samples)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "max_ms": float(a.max()),
    }


class PgServer:
    """The benchmark's own PostgreSQL cluster (tools/postgres.sh with MEMORY_PG_DIR)."""

    def __init__(self) -> None:
        self.env = {**os.environ, "MEMORY_PG_DIR": str(REPO / "output" / "pg_bench")}

    def run(self, command: str) -> str:
        """Run tools/postgres.sh ``command`` and return its output."""
        done = subprocess.run(
            ["bash", str(REPO / "tools" / "postgres.sh"), command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"tools/postgres.sh {command} failed:\n{done.stderr}")
        return done.stdout.strip()

    def fresh_database(self, name: str) -> str:
        """Drop and create database ``name``; return its URL."""
        import psycopg

        url = self.run("url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return url.rsplit("/", 1)[0] + "/" + name


def lost_updates(store: FleetStore, acked: dict[str, dict[str, tuple[float, list[float]]]]) -> int:
    """Count updates a writer had acknowledged that the store does not show.

    A robot's row must hold the last acknowledged ``last_seen`` and centre of each of its
    objects; each fleet object must show the centre of its newest source (latest evidence
    wins) and its provenance must match the robot rows.
    """
    lost = 0
    for robot, objs in acked.items():
        rows = {o.id: o for o, _ in store.robot_objects(robot)}
        for oid, (last_seen, center) in objs.items():
            row = rows.get(oid)
            if row is None or row.last_seen != last_seen or not np.allclose(row.center, center):
                lost += 1
    fleet, _ = store.objects()
    for f in fleet:  # several sources may tie on the newest stamp: any of them may win
        latest = max(s.evidence for s in f.sources.values())
        newest = [s for s in f.sources.values() if s.evidence == latest]
        if not any(np.allclose(f.obj.center, s.center) for s in newest):
            lost += 1
    return lost


def _writer(args: tuple[str, str, int, int, float, float, int, Any]) -> None:
    """One writer process: push the shared places again and again; report what was acked."""
    url, robot, seed, n, period_s, duration_s, rounds, queue = args
    rng = np.random.default_rng(seed)
    base = make_objects(np.random.default_rng(1234), n, "p", 40.0, 16, 0.0)
    store_holder: list[FleetStore] = []

    def opener() -> FleetStore:
        store_holder.append(open_store(url))
        return store_holder[-1]

    sync = FleetSync(opener, robot, "map")
    acked: dict[str, tuple[float, list[float]]] = {}
    pushed = failures = 0
    t_end = time.monotonic() + duration_s
    r = 0
    while (rounds and r < rounds) or (not rounds and time.monotonic() < t_end):
        r += 1
        now = time.time()
        local = []
        for o in base:
            jitter = np.append(rng.normal(0, 0.05, 2), 0.0)
            local.append(
                SceneObject(
                    id=o.id,
                    label=o.label,
                    center=o.center + jitter,
                    size=o.size,
                    feature=o.feature,
                    first_seen=0.0,
                    last_seen=now,
                    observations=r,
                )
            )
        report = sync.push(local)
        if report.ok:
            pushed += report.pushed
            acked = {o.id: (o.last_seen, o.center.tolist()) for o in local}
        else:
            failures += 1
            # the robot keeps its newest local objects: retry them until the store is back
            while not report.ok and time.monotonic() < t_end + 120.0:
                time.sleep(0.5)
                report = sync.push(local)
            if report.ok:
                pushed += report.pushed
                acked = {o.id: (o.last_seen, o.center.tolist()) for o in local}
        if period_s:
            time.sleep(period_s)
    for s in store_holder:
        s.close()
    queue.put((robot, acked, pushed, failures, r))


def run_writers(
    url: str,
    n: int,
    rounds: int = 0,
    duration_s: float = 0.0,
    period_s: float = 0.0,
    outage: tuple[PgServer, float] | None = None,
) -> dict[str, Any]:
    """Three writer processes at once; throughput, failures and lost updates."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    robots = [f"writer{i}" for i in range(3)]
    procs = [
        ctx.Process(target=_writer, args=((url, r, i, n, period_s, duration_s, rounds, queue),))
        for i, r in enumerate(robots)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    outage_at = None
    if outage is not None:
        server, seconds = outage
        time.sleep(duration_s / 2)
        outage_at = time.monotonic() - t0
        server.run("stop")
        time.sleep(seconds)
        server.run("start")
    results = [queue.get(timeout=duration_s + 600) for _ in procs]
    for p in procs:
        p.join()
    wall = time.monotonic() - t0
    acked = {robot: objs for robot, objs, _, _, _ in results}
    store = open_store(url)
    lost = lost_updates(store, acked)
    fleet_objects = store.count()
    store.close()
    pushed = sum(r[2] for r in results)
    return {
        "wall_s": wall,
        "pushed_objects": pushed,
        "objects_per_s": pushed / wall,
        "rounds": {r[0]: r[4] for r in results},
        "failed_pushes": sum(r[3] for r in results),
        "lost_updates": lost,
        "fleet_objects": fleet_objects,
        "shared_places": n,
        "outage_at_s": outage_at,
    }


def bench_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load, upsert, query and concurrent writers on one backend."""
    rng = np.random.default_rng(0)
    store = open_store(url, FleetConfig(), migrate=True)
    out: dict[str, Any] = {"backend": name}
    t0 = time.monotonic()
    per_robot = args.objects // 10
    for r in range(10):
        objs = make_objects(rng, per_robot, f"r{r}_", args.extent_m, args.dim, 1.0)
        for i in range(0, per_robot, args.batch):
            store.push(f"robot{r}", "map", objs[i : i + args.batch])
    out["load_s"] = time.monotonic() - t0
    out["fleet_objects"] = store.count()
    new = make_objects(rng, args.batch, "new_", args.extent_m, args.dim, 2.0)
    t0, c0 = time.monotonic(), time.process_time()
    store.push("robot_new", "map", new)
    out["upsert_new_s"] = time.monotonic() - t0
    out["upsert_new_cpu_s"] = time.process_time() - c0  # this process only (not the server)
    for o in new:
        o.last_seen = 3.0
        o.center = o.center + np.array([0.1, 0.0, 0.0])
    t0, c0 = time.monotonic(), time.process_time()
    store.push("robot_new", "map", new)
    out["upsert_update_s"] = time.monotonic() - t0
    out["upsert_update_cpu_s"] = time.process_time() - c0
    for text in (False, True):
        times, hits = [], 0
        for _ in range(args.queries):
            p = np.append(rng.uniform(0, args.extent_m, 2), 0.8)
            vec = None
            if text:
                vec = rng.normal(size=args.dim).astype(np.float32)
                vec /= np.linalg.norm(vec)
            t0 = time.perf_counter()
            found = store.query(near=p, radius=2.0, text_vector=vec, k=10)
            times.append(time.perf_counter() - t0)
            hits += len(found)
        key = "query_near_text" if text else "query_near"
        out[key] = {**percentiles(times), "mean_results": hits / args.queries}
    store.close()
    out["writers"] = run_writers(url, args.writer_objects, rounds=args.writer_rounds)
    return out


def main() -> None:
    """Run the benchmark on each backend and print a table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=384, help="feature size (MiniLM: 384)")
    p.add_argument("--extent-m", type=float, default=300.0)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--writer-objects", type=int, default=1000)
    p.add_argument("--writer-rounds", type=int, default=10)
    p.add_argument("--soak-s", type=float, default=0.0, help="soak duration (0 = no soak)")
    p.add_argument("--soak-period-s", type=float, default=0.2, help="pause between pushes")
    p.add_argument("--outage-s", type=float, default=0.0, help="server stopped mid-soak (pg)")
    p.add_argument("--output", default="output/bench/fleet_storage.json")
    args = p.parse_args()
    bench_dir = REPO / "output" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    server = PgServer()
    results: dict[str, Any] = {
        "args": vars(args),
        "backends": {},
        "loadavg_start": os.getloadavg(),
    }
    started = False
    try:
        for name in args.backends:
            if name == "sqlite":
                path = bench_dir / "fleet_storage.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
                url = f"sqlite:///{path}"
            else:
                server.run("start")
                started = True
                url = server.fresh_database("fleet_bench")
            print(f"--- {name}: {args.objects} objects, dim {args.dim}", flush=True)
            res = bench_backend(name, url, args)
            if args.soak_s > 0:
                outage = (server, args.outage_s) if name == "postgres" and args.outage_s else None
                soak_url = url if name == "sqlite" else server.fresh_database("fleet_soak")
                if name == "sqlite":
                    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    open_store(soak_url, migrate=True).close()
                else:
                    open_store(soak_url, migrate=True).close()
                res["soak"] = run_writers(
                    soak_url,
                    args.writer_objects // 4,
                    duration_s=args.soak_s,
                    period_s=args.soak_period_s,
                    outage=outage,
                )
            results["backends"][name] = res
            print(json.dumps(res, indent=1), flush=True)
    except StorageError as err:
        raise SystemExit(f"bench_fleet_storage: {err}") from err
    finally:
        if started:
            server.run("stop")
    results["loadavg_end"] = os.getloadavg()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    rows = [
        ("load (s)", lambda r: f"{r['load_s']:.1f}"),
        ("fleet objects", lambda r: f"{r['fleet_objects']}"),
        ("push 10k new: wall / client CPU (s)",
         lambda r: f"{r['upsert_new_s']:.2f} / {r['upsert_new_cpu_s']:.2f}"),
        ("push 10k updated: wall / client CPU (s)",
         lambda r: f"{r['upsert_update_s']:.2f} / {r['upsert_update_cpu_s']:.2f}"),
        ("near query p50/p95 (ms)",
         lambda r: f"{r['query_near']['p50_ms']:.1f} / {r['query_near']['p95_ms']:.1f}"),
        ("near+text query p50/p95 (ms)",
         lambda r: f"{r['query_near_text']['p50_ms']:.1f} / {r['query_near_text']['p95_ms']:.1f}"),
        ("3 writers (objects/s)", lambda r: f"{r['writers']['objects_per_s']:.0f}"),
        ("3 writers lost updates", lambda r: f"{r['writers']['lost_updates']}"),
    ]  # fmt: skip
    if args.soak_s > 0:
        rows += [
            ("soak pushes ok / failed", lambda r: f"{r['soak']['pushed_objects']} / "
             f"{r['soak']['failed_pushes']}"),
            ("soak lost updates", lambda r: f"{r['soak']['lost_updates']}"),
        ]  # fmt: skip
    names = list(results["backends"])
    print("\n| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for label, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt(results["backends"][n]) for n in names) + " |")
    print(f"load average {results['loadavg_start'][0]:.1f} -> {results['loadavg_end'][0]:.1f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
