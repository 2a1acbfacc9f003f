"""In-core step latency of the policy memory bank, side by side with baselines.

Every variant is timed in steady state: the bank is first filled past capacity, so each timed
step retrieves from L entries, writes, and consolidates. Variants alternate step by step so that
load from other processes hits them alike. Variants:

* ``passthrough``: no memory, only copies of the tokens (the floor);
* ``recompute``: the batched module (B = 1) recomputing every stored entry's key/value
  projections each step (the straightforward implementation);
* ``functional``: the batched module (B = 1) with cached projections, which copies the bank
  on every append and merge (the training path);
* ``merge`` / ``fifo``: :class:`PolicyMemory` as the node uses it (in-place banks, cached
  projections), with either consolidation.

Usage::

    python bench/bench_policy.py --tokens 256 --dim 512 --capacity 16 --steps 200

Writes ``output/bench/policy.json`` and prints a table. :func:`latency_stats` and
:func:`make_tokens` are meant for reuse by the service round-trip benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memory_node.core.policy_bank import PolicyBankConfig, PolicyMemory


def make_tokens(
    num_steps: int, num_tokens: int, dim: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random step inputs: per step (num_tokens, dim) and (dim,) float32 tokens."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.standard_normal((num_tokens, dim)).astype(np.float32),
            rng.standard_normal(dim).astype(np.float32),
        )
        for _ in range(num_steps)
    ]


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50/p95/mean/max in milliseconds of a list of durations in seconds."""
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "samples": len(ms),
    }


def time_steps(
    step: Callable[[int, np.ndarray, np.ndarray], object],
    inputs: list[tuple[np.ndarray, np.ndarray]],
    warmup: int,
) -> list[float]:
    """Call ``step(t, p, c)`` for every input; return the durations after ``warmup`` calls."""
    durations = []
    for t, (p, c) in enumerate(inputs):
        start = time.perf_counter()
        step(t, p, c)
        if t >= warmup:
            durations.append(time.perf_counter() - start)
    return durations


def time_interleaved(
    steps: dict[str, Callable[[int, np.ndarray, np.ndarray], object]],
    inputs: list[tuple[np.ndarray, np.ndarray]],
    warmup: int,
) -> dict[str, list[float]]:
    """Like :func:`time_steps` for several variants, alternating them step by step.

    Alternating spreads load from other processes on a shared machine evenly over the variants.
    """
    durations: dict[str, list[float]] = {name: [] for name in steps}
    for t, (p, c) in enumerate(inputs):
        for name, step in steps.items():
            start = time.perf_counter()
            step(t, p, c)
            if t >= warmup:
                durations[name].append(time.perf_counter() - start)
    return durations


def bank_step(
    config: PolicyBankConfig, in_place: bool = True, cache: bool = True
) -> Callable[[int, np.ndarray, np.ndarray], object]:
    """Make the step function of a fresh bank that writes every step."""
    memory = PolicyMemory(config)
    memory.in_place = in_place
    memory.module.cache_projections = cache

    def step(t: int, p: np.ndarray, c: np.ndarray) -> object:
        return memory.step(t, p, c, write=True)

    return step


def passthrough_step(t: int, p: np.ndarray, c: np.ndarray) -> object:
    """No memory: return copies of the inputs (what a memory-less node would send back)."""
    return p.copy(), c.copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="perceptual tokens per step")
    parser.add_argument("--dim", type=int, default=512, help="token width")
    parser.add_argument("--capacity", type=int, default=16, help="bank capacity L")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=Path("output/bench/policy.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    warmup = args.capacity + 5
    inputs = make_tokens(warmup + args.steps, args.tokens, args.dim)
    base = dataclasses.replace(
        PolicyBankConfig(), dim=args.dim, capacity=args.capacity, num_threads=args.threads
    )
    variants: dict[str, Callable[[int, np.ndarray, np.ndarray], object]] = {
        "passthrough": passthrough_step,
        "recompute": bank_step(base, in_place=False, cache=False),
        "functional": bank_step(base, in_place=False, cache=True),
        "merge": bank_step(base),
        "fifo": bank_step(dataclasses.replace(base, consolidation="fifo")),
    }
    durations = time_interleaved(variants, inputs, warmup)
    results = {name: latency_stats(values) for name, values in durations.items()}

    print(
        f"policy bank step, L={args.capacity}, {args.tokens} tokens x {args.dim} dims, "
        f"{args.threads} thread(s), {args.steps} steps"
    )
    print(f"{'variant':<12} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for name, r in results.items():
        print(f"{name:<12} {r['p50_ms']:9.2f} {r['p95_ms']:9.2f} {r['mean_ms']:9.2f}")

    report = {
        "benchmark": "policy_bank_step_in_core",
        "config": {
            "capacity": args.capacity,
            "num_tokens": args.tokens,
            "dim": args.dim,
            "num_heads": base.num_heads,
            "num_layers": base.num_layers,
            "ffn_dim": base.ffn_dim,
            "timed_steps": args.steps,
            "warmup_steps": warmup,
            "torch_threads": args.threads,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
