"""Train the cue-task policy from scripted demonstrations, with and without the memory bank.

Usage::

    python -m memory_node.policy_task.train --episodes 600 --iterations 600

Writes to ``--output-dir`` (default ``output/policy_task``): ``policy_<variant>.pt`` (whole
policy), ``bank_memory.pt`` (the bank alone, loadable by the ``policy_memory`` node with the
matching dim/heads/layers/ffn_dim), ``train_<variant>.json`` (as soon as that variant is done,
with its loss history), then ``train.json`` (all variants of the run) and ``train_loss.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from memory_node.core.policy_bank import resolve_device, save_checkpoint
from memory_node.policy_task.env import TaskConfig
from memory_node.policy_task.policy import PolicyConfig, TaskPolicy, save_policy
from memory_node.policy_task.rollout import Demonstrations, collect_demonstrations

VARIANTS = ("memory", "no_memory")


def train_policy(
    policy: TaskPolicy,
    demos: Demonstrations,
    iterations: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Behaviour cloning with teacher forcing over whole episodes.

    Returns:
        One record per iteration: ``loss``, the cross-entropy over every step of the batch, and
        ``accuracy``, the share of those steps where the argmax equals the oracle's action.
    """
    rng = np.random.default_rng(seed)
    device = policy.device
    frames = torch.from_numpy(demos.frames)
    actions = torch.from_numpy(demos.actions)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=max(iterations, 1), pct_start=0.1
    )
    policy.train()
    history = []
    bar = tqdm(range(iterations), desc=f"train {policy_name(policy)}", disable=not progress)
    for it in bar:
        index = torch.from_numpy(rng.choice(len(frames), size=batch_size, replace=False))
        logits = policy(frames[index].to(device))
        labels = actions[index].to(device)
        loss = functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        accuracy = float((logits.argmax(-1) == labels).float().mean())
        history.append({"iteration": it, "loss": float(loss.detach()), "accuracy": accuracy})
        if it % 20 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{accuracy:.3f}")
    policy.eval()
    return history


def policy_name(policy: TaskPolicy) -> str:
    """Variant name of a policy."""
    return "memory" if policy.config.use_memory else "no_memory"


def plot_history(histories: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Training loss per iteration, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, history in histories.items():
        ax.plot([h["iteration"] for h in history], [h["loss"] for h in history], label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.set_title("behaviour cloning loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=600, help="demonstration episodes")
    parser.add_argument("--iterations", type=int, default=600, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=32, help="episodes per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--action-noise", type=float, default=0.3, help="demo action noise")
    parser.add_argument("--capacity", type=int, default=4, help="bank capacity L")
    parser.add_argument("--consolidation", choices=("merge", "fifo"), default="merge")
    parser.add_argument("--dim", type=int, default=64, help="token width")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and initialisation")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]"
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--output-dir", type=Path, default=Path("output/policy_task"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Collect demonstrations, train each variant, save checkpoints and a report."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    task = TaskConfig()
    start = time.perf_counter()
    demos = collect_demonstrations(
        task,
        args.episodes,
        seed=args.seed * 1_000_003,
        action_noise=args.action_noise,
        progress=not args.quiet,
    )
    collect_s = time.perf_counter() - start
    args.output_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "task": dataclasses.asdict(task),
        "demonstrations": {
            "episodes": args.episodes,
            "seconds": collect_s,
            "action_noise": args.action_noise,
        },
        "training": {
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "torch_threads": args.threads,
            "device": str(device),
        },
        "variants": {},
    }
    histories = {}
    for name in args.variants:
        config = PolicyConfig(
            dim=args.dim,
            use_memory=name == "memory",
            capacity=args.capacity,
            consolidation=args.consolidation,
            image_px=task.image_px,
        )
        torch.manual_seed(args.seed)
        policy = TaskPolicy(config).to(device)
        began = time.perf_counter()
        history = train_policy(
            policy,
            demos,
            args.iterations,
            args.batch_size,
            args.lr,
            args.seed,
            progress=not args.quiet,
        )
        seconds = time.perf_counter() - began
        histories[name] = history
        tail = history[-20:]
        summary = {
            "train_seconds": seconds,
            "parameters": sum(p.numel() for p in policy.parameters()),
            "final_loss": float(np.mean([h["loss"] for h in tail])),
            "final_accuracy": float(np.mean([h["accuracy"] for h in tail])),
            "policy_config": dataclasses.asdict(config),
        }
        summary["iterations_per_second"] = args.iterations / seconds
        report["variants"][name] = summary
        save_policy(policy, task, args.output_dir / f"policy_{name}.pt", extra=summary)
        record = {**report, "variants": {name: summary}, "history": history}
        (args.output_dir / f"train_{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        if config.use_memory:
            save_checkpoint(policy.memory, args.output_dir / "bank_memory.pt")
        print(
            f"{name:<10} trained in {seconds:6.1f} s, final loss {summary['final_loss']:.4f}, "
            f"accuracy {summary['final_accuracy']:.3f}"
        )
    report["total_seconds"] = time.perf_counter() - start
    (args.output_dir / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_history(histories, args.output_dir / "train_loss.png")
    print(f"wrote {args.output_dir / 'train.json'}")
    return report


if __name__ == "__main__":
    main()
