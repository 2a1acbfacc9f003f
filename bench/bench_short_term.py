"""Hit rate of the short-term memory's replacement policies on a query trace.

By default the trace is synthetic (:func:`memory_node.core.short_term.zipf_trace`: Zipf-popular
changes and queries, queries about recently changed objects, and periodic tours revealing
one-off objects); ``--trace`` replays a recorded one instead (JSON lines, see
:func:`memory_node.core.short_term.save_trace`), e.g. from the simulator episodes.

Usage::

    python bench/bench_short_term.py [--capacities 50 100 200 400] [--trace t1.jsonl t2.jsonl]

Prints a table of hit rate per policy and capacity and writes ``output/bench/short_term.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from memory_node.core.short_term import POLICIES, compare_policies, load_trace, zipf_trace


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument(
        "--trace",
        nargs="+",
        default=[],
        help="recorded traces (JSON lines); hit rates are averaged over them",
    )
    parser.add_argument("--objects", type=int, default=2000, help="synthetic: object count")
    parser.add_argument("--ops", type=int, default=50000, help="synthetic: operations")
    parser.add_argument("--seeds", type=int, default=3, help="synthetic: traces averaged")
    parser.add_argument("--out", default="output/bench/short_term.json")
    args = parser.parse_args(argv)

    if args.trace:
        traces = {path: load_trace(path) for path in args.trace}
    else:
        traces = {
            f"zipf_seed{seed}": zipf_trace(n_objects=args.objects, n_ops=args.ops, seed=seed)
            for seed in range(args.seeds)
        }
    t0 = time.perf_counter()
    rates: dict[tuple[str, int], list[float]] = {}
    runs = []
    for name, trace in traces.items():
        for r in compare_policies(trace, args.capacities):
            rates.setdefault((r.policy, r.capacity), []).append(r.hit_rate)
            runs.append(
                {
                    "trace": name,
                    "policy": r.policy,
                    "capacity": r.capacity,
                    "hit_rate": round(r.hit_rate, 4),
                    "hits": r.hits,
                    "misses": r.misses,
                    "evictions": r.evictions,
                }
            )
    elapsed = time.perf_counter() - t0
    mean = {key: sum(v) / len(v) for key, v in rates.items()}
    best = {cap: max(POLICIES, key=lambda p, cap=cap: mean[(p, cap)]) for cap in args.capacities}
    over_capacities = {
        p: sum(mean[(p, c)] for c in args.capacities) / len(args.capacities) for p in POLICIES
    }
    result: dict[str, object] = {
        "source": " ".join(args.trace) or "synthetic zipf_trace",
        "traces": {name: len(trace) for name, trace in traces.items()},
        "mean_hit_rate": {
            policy: {str(cap): round(mean[(policy, cap)], 4) for cap in args.capacities}
            for policy in POLICIES
        },
        "best_policy_per_capacity": {str(cap): p for cap, p in best.items()},
        "mean_over_capacities": {p: round(v, 4) for p, v in over_capacities.items()},
        "runs": runs,
        "replay_seconds": round(elapsed, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"trace: {result['source']} ({sum(len(t) for t in traces.values())} operations)")
    print("policy  " + "".join(f"{'cap ' + str(c):>10}" for c in args.capacities) + "      mean")
    for policy in POLICIES:
        row = "".join(f"{mean[(policy, c)]:>10.3f}" for c in args.capacities)
        print(f"{policy:<8}{row}{over_capacities[policy]:>10.3f}")
    print("best    " + "".join(f"{best[c]:>10}" for c in args.capacities))
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
