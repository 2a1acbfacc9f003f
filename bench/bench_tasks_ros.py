"""The task suite's full-memory agent over ROS, against ``scene_memory`` in another process.

For each house the scenario (tours, changes, tasks) is built in this process, as in
``python -m memory_node.tasks``; its full memory is saved to an SQLite file. A ``scene_memory``
node runs in a separate process (``memory_bringup --nodes scene_memory``, default middleware
settings). Before each task the node loads the saved memory through ``~/load``; the agent then
plans through ``~/query_objects``, ``~/get_changes`` and ``~/get_scene_graph`` and publishes
every frame it sees on the node's camera topics, as a camera driver would (reliable publishers,
queue depth 10, at the simulator's rendering pace). The same tasks are run by the in-core agent
in the same run (the baseline).

Reported per run, and written to ``output/bench/tasks_ros.json``: success of both agents, the
tasks where their answers differ, service calls and round trips (median/p95), frames published,
delivered, ingested and skipped by the node (from its /diagnostics counters)::

    python -m bench.bench_tasks_ros [--seeds 2000-2001] [--tasks-per-house 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_ros_ingest import ingestion_values

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "output" / "bench" / "tasks_ros.json"


class Diagnostics:
    """The node's ingestion counters, from the last /diagnostics message."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.values: dict[str, str] = {}
        self.received = threading.Event()
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_diag(self, msg: Any) -> None:
        values = ingestion_values(msg)
        if values is not None:
            self.values = values
            self.received.set()

    def counters(self) -> dict[str, int]:
        """Frames paired, ingested, skipped, rejected and messages delivered (since start)."""
        out = {}
        for k, v in self.values.items():
            if k.startswith(("frames ", "delivered ")):
                out[k] = int(v)
        return out

    def settled(self, timeout_s: float = 20.0, period_s: float = 0.6) -> dict[str, int]:
        """Wait until the counters stop moving (the node has taken every frame); return them."""
        deadline = time.monotonic() + timeout_s
        last = self.counters()
        while time.monotonic() < deadline:
            time.sleep(period_s)
            now = self.counters()
            if now == last:
                return now
            last = now
        return last


def start_node() -> subprocess.Popen:
    """``memory_bringup`` with scene_memory only, configured as the suite's in-core memory."""
    cmd = [sys.executable, "-m", "memory_node.ros.bringup", "--nodes", "scene_memory"]
    cmd += ["--log-level", "warn", "-p", "depth.pixel_stride:=1", "-p", "features.mode:='off'"]
    cmd += ["-p", "diagnostics.period_s:=0.3"]
    return subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL)


def run_house(seed: int, client: Any, diag: Diagnostics, args: argparse.Namespace) -> dict:
    """Build house ``seed``; run its tasks over ROS and in-core; return the records."""
    from memory_node.tasks.agent import Agent
    from memory_node.tasks.ros_services import RosServices
    from memory_node.tasks.runner import outcome_record
    from memory_node.tasks.score import score
    from memory_node.tasks.suite import build_scenario, fresh_memory, task_memory_config

    scenario = build_scenario(seed, memory_config=task_memory_config("off"))
    records = []
    try:
        path = str(Path(tempfile.mkdtemp(prefix="tasks_ros_")) / f"{seed}.db")
        fresh_memory(scenario, "full").save(path)
        services = RosServices(client)
        over_ros = Agent(scenario, "full_memory", services=services)
        in_core = Agent(scenario, "full_memory")
        tasks = scenario.tasks[: args.tasks_per_house or None]
        for task in tasks:
            loaded = client.load(path)
            if not loaded.success:
                raise RuntimeError(f"~/load failed: {loaded.message}")
            before = diag.settled()
            services.calls.clear()
            published0 = services.frames_published
            a = score(task, over_ros.run(task), scenario.world)
            after = diag.settled()
            b = score(task, in_core.run(task), scenario.world)
            d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            records.append(
                {
                    "seed": seed,
                    "ros": outcome_record(a),
                    "core": outcome_record(b),
                    "frames_published": services.frames_published - published0,
                    "frames_paired": d.get("frames paired", 0),
                    "frames_ingested": d.get("frames ingested", 0),
                    "frames_skipped": d.get("frames skipped", 0),
                    "frames_rejected": d.get("frames rejected", 0),
                }
            )
            print(
                f"  {task.id} {task.kind:12s} ros={'ok' if a.success else '--'} "
                f"core={'ok' if b.success else '--'} frames {records[-1]['frames_published']}"
                f"->{records[-1]['frames_ingested']} calls {a.service_calls}",
                flush=True,
            )
    finally:
        scenario.world.close()
    return {"records": records, "round_trips_ms": services.round_trips_ms}


def summarise(houses: list[dict]) -> dict[str, Any]:
    """Success of both agents, disagreements, frames and round trips over every house."""
    from memory_node.tasks.score import wilson

    recs = [r for h in houses for r in h["records"] if r["ros"]["category"] != "never_existed"]
    n = len(recs)
    out: dict[str, Any] = {"tasks": n}
    for side in ("ros", "core"):
        k = sum(r[side]["success"] for r in recs)
        out[f"success_{side}"] = {"value": k / n if n else float("nan"), "ci95": wilson(k, n)}
    out["answers_differ"] = sum(
        (r["ros"]["success"], r["ros"]["answer"]) != (r["core"]["success"], r["core"]["answer"])
        for r in recs
    )
    for key in ("frames_published", "frames_paired", "frames_ingested", "frames_skipped"):
        out[key] = int(sum(r[key] for r in recs))
    out["service_calls_per_task"] = float(np.mean([r["ros"]["service_calls"] for r in recs]))
    trips: dict[str, list[float]] = {}
    for h in houses:
        for name, xs in h["round_trips_ms"].items():
            trips.setdefault(name, []).extend(xs)
    out["round_trip_ms"] = {
        name: {
            "n": len(xs),
            "median": float(np.median(xs)),
            "p95": float(np.percentile(xs, 95)),
        }
        for name, xs in sorted(trips.items())
    }
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the houses, print the summary, write the JSON report."""
    import rclpy

    from memory_node.ros.client import MemoryClient
    from memory_node.tasks.__main__ import parse_seeds

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="2000-2001", help="held-out house seeds")
    p.add_argument("--tasks-per-house", type=int, default=0, help="0 = every task")
    p.add_argument("--output", default=str(OUT))
    args = p.parse_args(argv)
    node = start_node()
    rclpy.init()
    client = MemoryClient(node_name="task_agent")
    diag = Diagnostics(client.node)
    houses = []
    t0 = time.perf_counter()
    try:
        if not diag.received.wait(60.0):
            raise RuntimeError("scene_memory published no diagnostics within 60 s")
        for seed in parse_seeds(args.seeds):
            print(f"house {seed}", flush=True)
            houses.append(run_house(seed, client, diag, args))
    finally:
        client.close()
        rclpy.try_shutdown()
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
    summary = summarise(houses)
    summary["wall_s"] = time.perf_counter() - t0
    summary["seeds"] = parse_seeds(args.seeds)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "houses": houses}, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
