"""Run the task suite: variants of the agent on held-out houses, scored against the truth.

Usage::

    python -m memory_node.tasks [--seeds 2000-2017] [--small-house-seeds 2100-2101] [--quick]
                                [--variants no_memory long_term_only full_memory oracle]
                                [--llm-url http://127.0.0.1:8080/v1 --model M --api-key-env VAR]

Writes ``output/bench/tasks.json`` (every outcome, the summaries, prompt retrieval) and
``docs/img/tasks.png``, and prints the Markdown table used in ``docs/benchmarks.md``.
Seeds 100-103 and 1000 and the small house with 106 are the training block (settings were chosen
on them); the default report block 2000-2017 is held out. Each house's result is also written
to ``<output>.d/<seed>.json``; ``--reuse`` takes finished houses from there (a run can be
resumed, or its houses aggregated while others still run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.tasks.agent import VARIANTS, Outcome
from memory_node.tasks.runner import worker
from memory_node.tasks.score import summarise

TRAIN_SEEDS = "100-103,1000"
HELD_OUT_SEEDS = "2000-2017"
HELD_OUT_SMALL_HOUSE = "2100-2101"
QUICK_SEEDS = "2000-2001"
CHANGED = ("moved", "removed", "added", "state")


def parse_seeds(text: str) -> list[int]:
    """'1000-1003,1010' -> [1000, 1001, 1002, 1003, 1010]."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            seeds.extend(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def _summary_of(records: list[dict[str, Any]]) -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(Outcome)}
    return summarise(
        [Outcome(**{k: v for k, v in r.items() if k in fields and k != "found"}) for r in records]
    )


def aggregate(results: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    """Summaries per variant: all tasks, changed objects, moved/removed, per kind; targets."""
    outcomes = [o for r in results for o in r["outcomes"]]
    groups = {
        "all": lambda o: o["category"] != "never_existed",
        "changed": lambda o: o["category"] in CHANGED,
        "moved_removed": lambda o: o["category"] in ("moved", "removed"),
        "unchanged": lambda o: o["category"] == "unchanged",
        "never_existed": lambda o: o["category"] == "never_existed",
    }
    for kind in ("go_to", "bring", "is_open", "what_changed", "where_last"):
        groups[kind] = lambda o, kind=kind: o["kind"] == kind
    table: dict[str, Any] = {}
    for v in variants:
        table[v] = {
            g: _summary_of([o for o in outcomes if o["variant"] == v and f(o)])
            for g, f in groups.items()
        }
    targets: dict[str, Any] = {}
    if "full_memory" in table and "no_memory" in table:
        full, none = table["full_memory"]["changed"], table["no_memory"]["changed"]
        nav = [o for o in outcomes if o["category"] in CHANGED and o["kind"] in ("go_to", "bring")]

        def mean_path(v: str) -> float:
            xs = [o["path_m"] for o in nav if o["variant"] == v]
            return float(np.mean(xs)) if xs else float("nan")

        targets["success_ratio_full_vs_none_changed"] = (
            full["success"] / none["success"] if none["success"] else math.inf
        )
        targets["path_ratio_none_vs_full_changed_nav"] = mean_path("no_memory") / max(
            mean_path("full_memory"), 1e-9
        )
    if "full_memory" in table and "long_term_only" in table:
        targets["points_full_minus_long_term_moved_removed"] = 100 * (
            table["full_memory"]["moved_removed"]["success"]
            - table["long_term_only"]["moved_removed"]["success"]
        )
    claimed = sum(r["support"]["claimed"] for r in results)
    true = sum(r["support"]["true"] for r in results)
    correct = sum(r["support"]["correct"] for r in results)
    support = {
        "claimed": claimed,
        "true": true,
        "correct": correct,
        "precision": correct / claimed if claimed else float("nan"),
        "recall": correct / true if true else float("nan"),
    }
    return {
        "table": table,
        "targets": targets,
        "retrieval": aggregate_retrieval(results),
        "support_relations": support,
    }


def aggregate_retrieval(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean tokens and recall per rendering over the tasks with relevant objects."""
    rows = [r for res in results for r in res["retrieval"] if r["relevant"] > 0]
    keys = [k for k in (rows[0] if rows else {}) if isinstance(rows[0][k], dict)]
    out = {}
    for k in keys:
        tokens = [r[k]["tokens"] for r in rows]
        rec = [r[k]["recall"] for r in rows if not math.isnan(r[k]["recall"])]
        known = [r[k]["recall_remembered"] for r in rows if r["remembered"] > 0]
        out[k] = {
            "tokens": float(np.mean(tokens)),
            "recall": float(np.mean(rec)),
            "recall_remembered": float(np.mean(known)) if known else float("nan"),
            "n": len(rec),
            "n_remembered": len(known),
        }
    if "full_dump" in out:
        for k in out:
            out[k]["share_of_full_tokens"] = out[k]["tokens"] / max(
                out["full_dump"]["tokens"], 1e-9
            )
    return out


def markdown(summary: dict[str, Any], variants: list[str]) -> str:
    """Return the tables for docs/benchmarks.md."""
    lines = [
        "| variant | all tasks | changed objects | moved/removed | unchanged | path (m) "
        "| service calls | prompt tokens | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(s: dict[str, Any]) -> str:
        if not s["n"]:
            return "-"
        return f"{s['success']:.2f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}] (n={s['n']})"

    for v in variants:
        t = summary["table"][v]
        a = t["all"]
        lines.append(
            f"| {v} | {cell(a)} | {cell(t['changed'])} | {cell(t['moved_removed'])} "
            f"| {cell(t['unchanged'])} | {a['path_m']:.1f} | {a['service_calls']:.1f} "
            f"| {a['prompt_tokens']:.0f} | {a['wall_s']:.2f} |"
        )
    lines += [
        "",
        "| variant | go to | bring | is open | what changed | where last | never existed |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        t = summary["table"][v]
        lines.append(
            f"| {v} | "
            + " | ".join(
                f"{t[g]['success']:.2f}" if t[g]["n"] else "-"
                for g in (
                    "go_to",
                    "bring",
                    "is_open",
                    "what_changed",
                    "where_last",
                    "never_existed",
                )
            )
            + " |"
        )
    r = summary["retrieval"]
    if r:
        lines += [
            "",
            "| prompt | tokens | share of full dump | recall of task objects "
            "| recall of remembered task objects |",
            "|---|---|---|---|---|",
        ]
        for k, s in r.items():
            lines.append(
                f"| {k} | {s['tokens']:.0f} | {s.get('share_of_full_tokens', float('nan')):.3f} "
                f"| {s['recall']:.3f} | {s['recall_remembered']:.3f} |"
            )
    return "\n".join(lines)


def plot(summary: dict[str, Any], variants: list[str], path: Path) -> bool:
    """Bar chart of success (with intervals) and path length; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = ["all", "changed", "moved_removed", "unchanged"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        t = summary["table"][v]
        xs = np.arange(len(groups)) + i * width
        ys = [t[g]["success"] if t[g]["n"] else 0 for g in groups]
        err = np.clip(
            np.array(
                [
                    [y - t[g]["ci95"][0], t[g]["ci95"][1] - y]
                    for g, y in zip(groups, ys, strict=True)
                ]
            ).T,
            0.0,
            None,
        )  # rounding can make a bound cross the rate by 1e-16
        axes[0].bar(xs, ys, width, yerr=err, capsize=2, label=v)
        axes[1].bar(i, t["all"]["path_m"], 0.6, label=v)
    axes[0].set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    axes[0].set_ylabel("success (95 % Wilson interval)")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    axes[1].set_xticks(range(len(variants)), variants, rotation=15)
    axes[1].set_ylabel("mean path per task (m)")
    fig.suptitle("Task suite on held-out houses (procedural and the Gazebo small house)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    """Run the suite and write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--seeds", default=HELD_OUT_SEEDS, help="procedural house seeds (held out: 2000-2017)"
    )
    p.add_argument(
        "--small-house-seeds",
        default=HELD_OUT_SMALL_HOUSE,
        help="seeds run in the Gazebo small house (objects, dock and changes drawn from the "
        "seed); '' = none",
    )
    p.add_argument("--quick", action="store_true", help=f"two houses ({QUICK_SEEDS})")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--workers", type=int, default=2, help="houses run in parallel")
    p.add_argument(
        "--features",
        choices=("off", "label_text"),
        default="off",
        help="memory features.mode: off = label match (fast), label_text = MiniLM ranking",
    )
    p.add_argument("--llm-url", default="", help="OpenAI-compatible base URL ('' = rule-based)")
    p.add_argument("--model", default="default")
    p.add_argument("--api-key-env", default="", help="environment variable holding an API key")
    p.add_argument("--llm-timeout-s", type=float, default=30.0)
    p.add_argument("--output", default="output/bench/tasks.json")
    p.add_argument("--reuse", action="store_true", help="take finished houses from <output>.d/")
    p.add_argument("--plot", default="docs/img/tasks.png", help="'' = no plot")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("memory_node.core", "memory_sim"):
        logging.getLogger(name).setLevel(logging.WARNING)
    seeds = parse_seeds(QUICK_SEEDS if args.quick else args.seeds)
    args.small_house_seeds = set(parse_seeds("" if args.quick else args.small_house_seeds))
    seeds += sorted(args.small_house_seeds - set(seeds))
    t0 = time.perf_counter()
    jobs = [(s, args) for s in seeds]
    if args.workers > 1 and len(seeds) > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(args.workers, len(seeds))) as pool:
            results = pool.map(worker, jobs, chunksize=1)
    else:
        results = [worker(j) for j in jobs]
    summary = aggregate(results, args.variants)
    wall = time.perf_counter() - t0
    n_tasks = sum(len(r["tasks"]) for r in results)
    report = {
        "seeds": seeds,
        "small_house_seeds": sorted(args.small_house_seeds),
        "train_seeds": TRAIN_SEEDS,
        "tasks": n_tasks,
        "variants": args.variants,
        "planner": "llm" if args.llm_url else "rules",
        "features": args.features,
        "wall_s": wall,
        "summary": summary,
        "results": results,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float))
    print(markdown(summary, args.variants))
    print("\ntargets:", json.dumps(summary["targets"], indent=1))
    print("on/in relations vs the simulator's support truth:", summary["support_relations"])
    print(
        f"\n{n_tasks} tasks x {len(args.variants)} variants on {len(seeds)} houses in {wall:.0f} s"
    )
    if args.plot and plot(summary, args.variants, Path(args.plot)):
        print(f"plot: {args.plot}")
    print(f"report: {out}")


if __name__ == "__main__":
    main()
