"""Policy memory step latency as a ROS 2 service round trip from another process.

Starts ``memory_bringup --nodes policy_memory`` in a subprocess (real DDS between processes),
then times ``~/step`` calls from this process with the same inputs as the in-core benchmark,
side by side with the in-core step and with a trivial service (``~/reset``) as the transport floor.

Usage::

    python -m bench.bench_policy_service --tokens 256 --dim 512 --capacity 16 --steps 200

Writes ``output/bench/policy_service.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from std_srvs.srv import Trigger

from bench.bench_policy import latency_stats, make_tokens
from memory_node.core.policy_bank import PolicyBankConfig, PolicyMemory
from memory_node.ros.client import MemoryClient


def main() -> None:
    """Run the benchmark and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--capacity", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--output", default="output/bench/policy_service.json")
    args = parser.parse_args()

    params = [
        f"dim:={args.dim}",
        f"capacity:={args.capacity}",
        f"max_tokens:={max(args.tokens, 1024)}",
    ]
    cmd = [
        sys.executable,
        "-m",
        "memory_node.ros.bringup",
        "--nodes",
        "policy_memory",
        "--log-level",
        "warn",
    ]
    for p in params:
        cmd += ["-p", p]
    proc = subprocess.Popen(cmd, env=os.environ.copy())
    rclpy.init()
    client = MemoryClient(node_name="bench_policy_client")
    try:
        probe = client.node.create_client(Trigger, "policy_memory/reset")
        while not probe.wait_for_service(timeout_sec=0.5):
            if proc.poll() is not None:
                raise SystemExit(f"memory_bringup exited with code {proc.returncode}")
        inputs = make_tokens(args.steps + args.capacity, args.tokens, args.dim)
        # warm up and fill the bank past capacity, so each timed step also consolidates
        for t, (p, c) in enumerate(inputs[: args.capacity]):
            res = client.policy_step(t, p, c, write=True)
            if not res.success:
                raise SystemExit(f"step failed: {res.message}")
        service: list[float] = []
        for t, (p, c) in enumerate(inputs[args.capacity :], start=args.capacity):
            t0 = time.perf_counter()
            res = client.policy_step(t, p, c, write=True)
            service.append(time.perf_counter() - t0)
            assert res.success and res.bank_size == args.capacity, res.message
        floor: list[float] = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            client.call(Trigger, "policy_memory/reset", Trigger.Request())
            floor.append(time.perf_counter() - t0)
    finally:
        client.close()
        rclpy.shutdown()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)

    cfg = PolicyBankConfig(dim=args.dim, capacity=args.capacity, max_tokens=max(args.tokens, 1024))
    memory = PolicyMemory(cfg)
    in_core: list[float] = []
    for t, (p, c) in enumerate(inputs):
        t0 = time.perf_counter()
        memory.step(t, p, c, True)
        if t >= args.capacity:
            in_core.append(time.perf_counter() - t0)

    report = {
        "config": vars(args),
        "in_core_step": latency_stats(in_core),
        "service_step_round_trip": latency_stats(service),
        "trivial_service_round_trip": latency_stats(floor),
    }
    print(f"policy step, {args.tokens} tokens x {args.dim} dims, L={args.capacity}")
    print(f"{'variant':34s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name in ("in_core_step", "service_step_round_trip", "trivial_service_round_trip"):
        s = report[name]
        print(f"{name:34s} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
