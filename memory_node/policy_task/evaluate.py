"""Evaluate trained cue-task policies with and without the memory bank on seeded episodes.

Usage::

    python -m memory_node.policy_task.evaluate --episodes 200

Conditions (each on the same seeded episodes, disjoint from the training seeds):

* ``memory``: the policy trained with the bank, bank on (merge consolidation, as trained);
* ``memory_fifo``: same weights, FIFO consolidation instead of merging;
* ``memory_bank_off``: same weights, bank bypassed (an ablation of the trained policy);
* ``no_memory``: the policy trained without the bank (the fair baseline);
* ``oracle`` and ``random``: references (the oracle reads the target from the simulator).

Writes ``evaluate.json`` (success rates with 95 % Wilson intervals) and ``success.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from memory_node.core.policy_bank import resolve_device
from memory_node.policy_task.policy import load_policy
from memory_node.policy_task.rollout import (
    Controller,
    NetworkController,
    OracleController,
    RandomController,
    run_episodes,
    summarize,
    with_bank,
)

#: Evaluation seeds start here; training uses seeds below (train seed * 1_000_003 + episode).
EVAL_SEED_OFFSET = 10_000_000


def plot_results(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Bar chart of success rates with 95 % Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    rates = [results[n]["success_rate"] for n in names]
    low = [max(0.0, results[n]["success_rate"] - results[n]["ci95_low"]) for n in names]
    high = [max(0.0, results[n]["ci95_high"] - results[n]["success_rate"]) for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.bar(names, rates, yerr=[low, high], capsize=4, color="#4c72b0")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95 % Wilson CI)")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per condition")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed block")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]"
    )
    parser.add_argument(
        "--input-dir",
        type=Path,
        default=Path("output/policy_task"),
        help="where train wrote policy_memory.pt / policy_no_memory.pt",
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="default: --input-dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every condition on the same seeds; write JSON and a plot; print a table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    output_dir = args.output_dir or args.input_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    memory_policy, task, _ = load_policy(args.input_dir / "policy_memory.pt", device)
    baseline_policy, baseline_task, _ = load_policy(args.input_dir / "policy_no_memory.pt", device)
    if baseline_task != task:
        raise ValueError("the two policies were trained on different task configurations")
    trained = memory_policy.config.consolidation
    other = "fifo" if trained == "merge" else "merge"
    conditions: dict[str, Controller] = {
        "memory": NetworkController(with_bank(memory_policy, True, trained)),
        f"memory_{other}": NetworkController(with_bank(memory_policy, True, other)),
        "memory_bank_off": NetworkController(with_bank(memory_policy, False, trained)),
        "no_memory": NetworkController(baseline_policy),
        "oracle": OracleController(),
        "random": RandomController(seed=args.seed),
    }
    seeds = range(
        EVAL_SEED_OFFSET + args.seed * args.episodes,
        EVAL_SEED_OFFSET + (args.seed + 1) * args.episodes,
    )
    results: dict[str, dict[str, Any]] = {}
    for name, controller in conditions.items():
        start = time.perf_counter()
        outcomes = run_episodes(task, controller, seeds, None if args.quiet else name)
        results[name] = {**summarize(outcomes), "seconds": time.perf_counter() - start}

    chance = 1.0 / task.num_pads
    print(
        f"cue-delay-reach, {args.episodes} episodes per condition (chance {chance:.2f}), "
        f"bank capacity L={memory_policy.config.capacity}"
    )
    print(f"{'condition':<18} {'success':>8} {'95% CI':>16}")
    for name, r in results.items():
        ci = f"[{r['ci95_low']:.3f}, {r['ci95_high']:.3f}]"
        print(f"{name:<18} {r['success_rate']:8.3f} {ci:>16}")
    report = {
        "task": "cue-delay-reach (memory_node.policy_task.env)",
        "episodes_per_condition": args.episodes,
        "seeds": [seeds.start, seeds.stop],
        "chance": chance,
        "bank_capacity": memory_policy.config.capacity,
        "device": str(device),
        "trained_consolidation": trained,
        "results": results,
    }
    (output_dir / "evaluate.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_results(
        results,
        output_dir / "success.png",
        f"cue-delay-reach: {args.episodes} episodes/condition, L={memory_policy.config.capacity}",
    )
    print(f"wrote {output_dir / 'evaluate.json'}")
    return report


if __name__ == "__main__":
    main()
