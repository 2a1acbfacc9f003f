"""Run every benchmark in turn (``make bench``) and list the JSON reports they wrote.

Each benchmark prints its own table, compares itself with a baseline in the same run, and writes
``output/bench/<name>.json``. Timings on a shared machine vary: run on a quiet one.

Usage::

    python -m bench.run_all [--only ingest query ...] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCHES = {
    "sim": ["bench.bench_sim", "--width", "640", "--height", "480"],
    "ingest": ["bench.bench_ingest"],
    "query": ["bench.bench_query"],
    "short_term": ["bench.bench_short_term"],
    "policy": ["bench.bench_policy", "--tokens", "256", "--dim", "512", "--capacity", "16"],
    "policy_floor": ["bench.bench_policy_floor", "--tokens", "256", "--dim", "512", "--reference"],
    "icl_segmentation": ["bench.icl_segmentation"],
    "segmenter": ["bench.bench_segmenter"],
    "accuracy": ["bench.bench_accuracy", "--episode", "tour_changes_tour"],
    "changes": ["bench.bench_changes"],  # held-out seeds 100-139
    "replay": ["bench.bench_replay"],
    "tasks": ["memory_node.tasks"],  # held-out houses 2000-2017 + small house, four variants
    "tasks_ros": ["bench.bench_tasks_ros"],  # full-memory agent vs scene_memory in a process
    # 100k objects, PostgreSQL vs SQLite; 60 s soak of 3 writers with the server down for 10 s
    "fleet_storage": ["bench.bench_fleet_storage", "--soak-s", "60", "--outage-s", "10"],
    "ros_ingest": ["bench.bench_ros_ingest"],
}
QUICK = {
    "ingest": ["--quick"],
    "segmenter": ["--frames", "15"],
    "tasks": ["--quick"],
    "tasks_ros": ["--seeds", "2000", "--tasks-per-house", "4"],
    "changes": ["--quick"],
    "replay": ["--frames", "60"],
    "policy_floor": ["--repeats", "2", "--steps", "3"],
    "fleet_storage": ["--objects", "20000", "--soak-s", "20", "--outage-s", "5"],
    "ros_ingest": ["--quick"],
}


def main() -> None:
    """Run the selected benchmarks; exit non-zero if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=list(BENCHES))
    parser.add_argument("--quick", action="store_true", help="shorter runs where supported")
    args = parser.parse_args()
    failed = []
    for name in args.only:
        cmd = [sys.executable, "-m", *BENCHES[name], *(QUICK.get(name, []) if args.quick else [])]
        print(f"\n===== {name}: {' '.join(cmd[2:])}", flush=True)
        t0 = time.monotonic()
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
        print(f"===== {name}: {time.monotonic() - t0:.0f} s", flush=True)
    reports = sorted(Path("output/bench").glob("*.json"))
    print("\nreports:\n" + "\n".join(f"  {p}" for p in reports))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
