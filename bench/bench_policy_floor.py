"""Policy memory step against its FLOP floor: in-core and ``~/step`` round trip, per thread count.

The floor is what the step's matrix products alone cost on this machine, now: every GEMM of one
step (exact shapes from the model: query/output projections, attention scores and values per
head, feed-forward, gate, the new entry's key/value projections) is timed as a bare
``torch.matmul`` into a preallocated output, and the times are summed. Everything the step does
beyond those products (softmax, norms, copies, consolidation, Python) shows as the ratio
step / floor.

For each device (CPU; CUDA when ``torch.cuda.is_available()``, else the column says "not
available") and each thread count, one pass over the floor's products and one step of each
variant alternate, ``steps`` times per repeat; a repeat's ratio is the median step over the
median floor pass, and the reported ratio is the median over ``repeats`` repeats, so load from
other processes hits the floor and the step alike. Each setting runs in a fresh process (its
thread count set once, before any torch work, as in the node). Steps run at capacity: each timed
step reads L entries, writes and consolidates.

Variants timed in the same run:

* ``step``: :class:`PolicyMemory` as the node runs it (in-place banks, cached projections);
* ``functional`` (``--reference``): the batched torch module with B = 1 (training path);
* ``service``: ``~/step`` called from this process on a ``policy_memory`` node in another
  process (real DDS), the node started with the same thread count; ``transport`` is the round
  trip of a step on an empty bank (no compute: the tokens go there and back), ``trivial`` the
  round trip of ``~/reset``.

Usage::

    python -m bench.bench_policy_floor --threads 1 2 --repeats 5

Writes ``output/bench/policy_floor.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.bench_policy import latency_stats, make_tokens
from memory_node.core.policy_bank import PolicyBankConfig, PolicyMemory


@dataclass(frozen=True)
class Gemm:
    """``count`` products of (batch, m, k) x (batch, k, n) matrices."""

    name: str
    batch: int
    m: int
    k: int
    n: int
    count: int

    @property
    def flops(self) -> int:
        """Multiply-adds x 2 of all ``count`` products."""
        return 2 * self.batch * self.m * self.k * self.n * self.count


def step_gemms(config: PolicyBankConfig, num_tokens: int, bank_size: int) -> list[Gemm]:
    """Every matrix product of one step that reads ``bank_size`` entries and writes one.

    Per stream (perceptual: ``num_tokens`` queries; cognitive: 1) and retrieval layer: query and
    output projections, attention scores (heads x queries x keys) and weighted values, the
    feed-forward block; then the gate on ``[x, memory]`` and the key/value projections of the
    written entry. Consolidation adds no product (merges average cached projections).
    """
    dim, ffn, heads, layers = config.dim, config.ffn_dim, config.num_heads, config.num_layers
    head_dim = dim // heads
    gemms = []
    for stream, queries in (("perceptual", num_tokens), ("cognitive", 1)):
        keys = bank_size * queries
        gemms += [
            Gemm(f"{stream}: query + output projections", 1, queries, dim, dim, 2 * layers),
            Gemm(f"{stream}: attention scores", heads, queries, head_dim, keys, layers),
            Gemm(f"{stream}: attention x values", heads, queries, keys, head_dim, layers),
            Gemm(f"{stream}: feed-forward in", 1, queries, dim, ffn, layers),
            Gemm(f"{stream}: feed-forward out", 1, queries, ffn, dim, layers),
            Gemm(f"{stream}: gate", 1, queries, 2 * dim, dim, 1),
            Gemm(f"{stream}: new entry keys + values", 1, queries, dim, dim, 2 * layers),
        ]
    return gemms


def sync(device: torch.device) -> None:
    """Wait for queued kernels (CUDA timing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Floor:
    """Times the step's GEMMs as bare ``torch.matmul`` calls on preallocated tensors."""

    def __init__(self, gemms: list[Gemm], device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.operands = [
            (
                g,
                torch.randn(g.batch, g.m, g.k, device=device, dtype=dtype),
                torch.randn(g.batch, g.k, g.n, device=device, dtype=dtype),
                torch.empty(g.batch, g.m, g.n, device=device, dtype=dtype),
            )
            for g in gemms
        ]

    def measure(self) -> float:
        """Seconds of one pass over all the step's products, each ``count`` times, in order."""
        with torch.inference_mode():
            sync(self.device)
            start = time.perf_counter()
            for g, a, b, out in self.operands:
                for _ in range(g.count):
                    torch.matmul(a, b, out=out)
            sync(self.device)
            return time.perf_counter() - start


def bank_step(
    config: PolicyBankConfig, in_place: bool, device: torch.device
) -> Callable[[int, np.ndarray, np.ndarray], object]:
    """Step function of a fresh bank that writes every step (synchronised on CUDA)."""
    memory = PolicyMemory(config)
    memory.in_place = in_place

    def step(t: int, p: np.ndarray, c: np.ndarray) -> object:
        out = memory.step(t, p, c, write=True)
        sync(device)
        return out

    return step


def timed(step: Callable[[int, np.ndarray, np.ndarray], object], t: int, inputs: Any) -> float:
    """Seconds of one call ``step(t, *inputs)``."""
    start = time.perf_counter()
    step(t, *inputs)
    return time.perf_counter() - start


class ServiceRun:
    """A ``policy_memory`` node in another process and a client in this one."""

    def __init__(self, config: PolicyBankConfig, threads: int) -> None:
        import rclpy

        from memory_node.ros.client import MemoryClient

        params = {
            "dim": config.dim,
            "capacity": config.capacity,
            "max_tokens": config.max_tokens,
            "num_threads": threads,
            "device": config.device,
        }
        # A namespace of its own: other nodes or clients on this DDS domain must not interfere.
        namespace = f"bench_policy_floor_{os.getpid()}_{threads}"
        cmd = [sys.executable, "-m", "memory_node.ros.bringup", "--nodes", "policy_memory"]
        cmd += ["--namespace", namespace, "--log-level", "warn"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        self.proc = subprocess.Popen(cmd, env=os.environ.copy())
        if not rclpy.ok():
            rclpy.init()
        self.client = MemoryClient(namespace=namespace, node_name="bench_policy_floor_client")
        deadline = time.monotonic() + 120.0
        while True:
            try:
                self.client.policy_reset()
                break
            except TimeoutError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"policy_memory did not come up (exit {self.proc.returncode})")

    def step(self, t: int, p: np.ndarray, c: np.ndarray, write: bool = True) -> object:
        """One ``~/step`` round trip; raises when the node refuses it."""
        from memory_interfaces.srv import PolicyMemoryStep

        req = PolicyMemoryStep.Request(
            timestep=t, num_tokens=p.shape[0], dim=p.shape[1], write=write
        )
        req.perceptual, req.cognitive = array.array("f"), array.array("f")
        req.perceptual.frombytes(memoryview(np.ascontiguousarray(p, np.float32)).cast("B"))
        req.cognitive.frombytes(memoryview(np.ascontiguousarray(c, np.float32)).cast("B"))
        res = self.client.call(PolicyMemoryStep, "policy_memory/step", req, timeout_s=300.0)
        if not res.success:
            raise RuntimeError(f"~/step failed: {res.message}")
        return res

    def reset(self) -> None:
        """One ``~/reset`` round trip."""
        self.client.policy_reset()

    def close(self) -> None:
        """Stop the client and the node process."""
        import rclpy

        self.client.close()
        rclpy.try_shutdown()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def ratio_summary(values: list[float], floors: list[float]) -> dict[str, float]:
    """Median ms and median per-repeat ratio to the floor of paired per-repeat medians."""
    return {
        "median_ms": 1e3 * statistics.median(values),
        "ratio_to_floor": statistics.median(v / f for v, f in zip(values, floors, strict=True)),
        "ratios": [v / f for v, f in zip(values, floors, strict=True)],
    }


def run_device(
    args: argparse.Namespace, device: torch.device, threads: int, service: bool
) -> dict[str, Any]:
    """Floor, in-core step (and service round trip) for one device and thread count."""
    torch.set_num_threads(threads)
    service = service and not args.no_service
    dtype = torch.float32
    config = dataclasses.replace(
        PolicyBankConfig(),
        dim=args.dim,
        capacity=args.capacity,
        max_tokens=max(args.tokens, 1024),
        num_threads=threads,
        device=str(device),
    )
    gemms = step_gemms(config, args.tokens, args.capacity)
    floor = Floor(gemms, device, dtype)
    fill = args.capacity + 2
    inputs = make_tokens(fill + args.repeats * args.steps, args.tokens, args.dim)
    steps = {"step": bank_step(config, True, device)}
    if args.reference:
        steps["functional"] = bank_step(config, False, device)
    run = ServiceRun(config, threads) if service else None
    if run is not None:
        steps["service"] = run.step
    try:
        transport: list[float] = []
        trivial: list[float] = []
        if run is not None:  # empty bank: the tokens go there and back, nothing is computed
            for t, (p, c) in enumerate(inputs[: args.steps * 2]):
                transport.append(timed(lambda *a: run.step(*a, write=False), t, (p, c)))
                trivial.append(timed(lambda *_: run.reset(), t, ()))
        torch.set_num_threads(threads)  # the client node must not have changed it
        for t in range(fill):
            for step in steps.values():
                step(t, *inputs[t])
        floor.measure()  # warm-up
        floors: list[float] = []
        per_variant: dict[str, list[float]] = {name: [] for name in steps}
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for r in range(args.repeats):
            block = range(fill + r * args.steps, fill + (r + 1) * args.steps)
            floor_times: list[float] = []
            times: dict[str, list[float]] = {name: [] for name in steps}
            for t in block:  # one floor pass, then each variant's step, alternating
                floor_times.append(floor.measure())
                for name, step in steps.items():
                    times[name].append(timed(step, t, inputs[t]))
            floors.append(statistics.median(floor_times))
            for name, values in times.items():
                per_variant[name].append(statistics.median(values))
                samples[name] += values
    finally:
        if run is not None:
            run.close()
    flops = sum(g.flops for g in gemms)
    result: dict[str, Any] = {
        "threads": threads,
        "floor_ms": 1e3 * statistics.median(floors),
        "floor_gflops_per_s": flops / statistics.median(floors) / 1e9,
        "floor_ms_per_repeat": [1e3 * f for f in floors],
    }
    for name in steps:
        result[name] = {
            **ratio_summary(per_variant[name], floors),
            **latency_stats(samples[name]),
        }
    if run is not None:
        result["transport"] = latency_stats(transport)
        result["trivial_service"] = latency_stats(trivial)
        result["service_minus_step_ms"] = (
            statistics.median(
                s - i for s, i in zip(per_variant["service"], per_variant["step"], strict=True)
            )
            * 1e3
        )
    return result


def print_table(report: dict[str, Any]) -> None:
    """Print ms and ratios to the floor per device and thread count."""
    cfg = report["config"]
    print(
        f"policy step vs FLOP floor: {cfg['num_tokens']} tokens x {cfg['dim']} dims, "
        f"L={cfg['capacity']}, {report['flops'] / 1e9:.2f} GFLOP/step, "
        f"{cfg['repeats']} repeats x {cfg['steps']} steps, "
        f"OMP_WAIT_POLICY={cfg['omp_wait_policy']}"
    )
    header = f"{'device':<6} {'thr':>3} {'floor ms':>9} {'GFLOP/s':>8} "
    header += f"{'step ms':>8} {'x floor':>7} {'~/step ms':>9} {'x floor':>7} {'transp ms':>9}"
    print(header)
    for device, by_threads in report["results"].items():
        if isinstance(by_threads, str):
            print(f"{device:<6} {by_threads}")
            continue
        for threads, r in by_threads.items():
            line = f"{device:<6} {threads:>3} {r['floor_ms']:9.1f} {r['floor_gflops_per_s']:8.1f} "
            line += f"{r['step']['median_ms']:8.1f} {r['step']['ratio_to_floor']:7.2f} "
            if "service" in r:
                line += f"{r['service']['median_ms']:9.1f} {r['service']['ratio_to_floor']:7.2f} "
                line += f"{r['transport']['p50_ms']:9.1f}"
            print(line)
            if "functional" in r:
                f = r["functional"]
                print(
                    f"{'':<10} functional (batched module): {f['median_ms']:.1f} ms, "
                    f"{f['ratio_to_floor']:.2f} x floor"
                )


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    """Environment of the measuring processes: ``OMP_WAIT_POLICY`` as asked.

    OpenMP threads spin while they wait for work by default; on a CPU shared with other busy
    processes the spinning thread takes the time slice the working one needs (a 2-thread step
    became several times slower than a 1-thread one here). PASSIVE makes them sleep instead.
    """
    env = os.environ.copy()
    if args.omp_wait_policy != "inherit":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    return env


def run_setting(
    args: argparse.Namespace, argv: list[str] | None, device: str, threads: int
) -> dict[str, Any]:
    """Run one (device, threads) setting in a fresh Python process; return its result."""
    forwarded = list(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable, str(Path(__file__).resolve()), *forwarded]
    cmd += ["--setting", f"{device}:{threads}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=worker_env(args))
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"{device}:{threads} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="perceptual tokens per step")
    parser.add_argument("--dim", type=int, default=512, help="token width")
    parser.add_argument("--capacity", type=int, default=16, help="bank capacity L")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="floor/step pairs per setting")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per repeat")
    parser.add_argument("--no-service", action="store_true", help="skip the ~/step round trip")
    parser.add_argument(
        "--reference", action="store_true", help="also time the batched module (B = 1)"
    )
    parser.add_argument("--output", type=Path, default=Path("output/bench/policy_floor.json"))
    parser.add_argument(
        "--omp-wait-policy",
        choices=("PASSIVE", "ACTIVE", "inherit"),
        default="PASSIVE",
        help="OMP_WAIT_POLICY of the measuring processes and the node (inherit = as set here)",
    )
    parser.add_argument("--setting", help=argparse.SUPPRESS)  # DEVICE:THREADS, worker process
    args = parser.parse_args(argv)

    if args.setting:  # one setting in a fresh process: threads set once, before any torch work
        device, threads = args.setting.split(":")
        torch.set_num_threads(int(threads))
        result = run_device(args, torch.device(device), int(threads), device == "cpu")
        print("RESULT " + json.dumps(result), flush=True)
        return result

    config = dataclasses.replace(PolicyBankConfig(), dim=args.dim, capacity=args.capacity)
    gemms = step_gemms(config, args.tokens, args.capacity)
    settings = [("cpu", t) for t in args.threads]
    if torch.cuda.is_available():
        settings.append(("cuda", 1))
    results: dict[str, Any] = {
        "cpu": {},
        "cuda": "not available (torch.cuda.is_available() is false on this machine)",
    }
    for device, threads in settings:
        print(f"{device}, {threads} thread(s) ...", flush=True)
        result = run_setting(args, argv, device, threads)
        if device == "cuda" and isinstance(results["cuda"], str):
            results["cuda"] = {}
        results[device][str(threads)] = result
    report = {
        "benchmark": "policy_step_vs_flop_floor",
        "config": {
            "num_tokens": args.tokens,
            "dim": args.dim,
            "capacity": args.capacity,
            "num_heads": config.num_heads,
            "num_layers": config.num_layers,
            "ffn_dim": config.ffn_dim,
            "repeats": args.repeats,
            "steps": args.steps,
            "omp_wait_policy": args.omp_wait_policy,
        },
        "flops": sum(g.flops for g in gemms),
        "gemms": [{**dataclasses.asdict(g), "flops": g.flops} for g in gemms],
        "machine": {
            "cores_available": len(os.sched_getaffinity(0)),
            "load_average_1min": os.getloadavg()[0],
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
        },
        "results": results,
    }
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
