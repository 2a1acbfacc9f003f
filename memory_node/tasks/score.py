"""Score an agent's outcome against the simulator's truth, and summarise with intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from memory_node.tasks.agent import Found, Outcome, labels_in
from memory_node.tasks.suite import Task
from memory_node.tasks.world import TaskWorld

WHERE_TOLERANCE_M = 1.0
"""A "where did you last see" answer counts within this distance of the true place."""

REACH_SLACK_M = 0.3
"""Slack on the reach distance for a goal counted as reached (grid cells, box edges)."""


def reached(world: TaskWorld, name: str, found: Found | None) -> bool:
    """Whether ``found`` is the object ``name``: it was in the confirming frame, within reach."""
    if found is None:
        return False
    truth = world.sim.object_truth(name)
    if not truth.present or found.truth_visible.get(truth.instance_id, 0) < 1:
        return False
    d = np.clip(
        np.maximum(truth.box_min[:2] - found.robot_xy, found.robot_xy - truth.box_max[:2]), 0, None
    )
    return float(np.hypot(*d)) <= world.config.reach_m + REACH_SLACK_M


def score(task: Task, out: Outcome, world: TaskWorld) -> Outcome:
    """Fill ``out.success`` and ``out.score`` (in [0, 1]) from the truth; return ``out``."""
    t = task.truth
    ok, value = False, 0.0
    if task.kind == "go_to":
        if t.get("absent"):
            ok = task.label not in out.found
        else:
            ok = reached(world, t["name"], out.found.get(task.label))
    elif task.kind == "bring":
        ok = reached(world, t["name"], out.found.get(task.label)) and reached(
            world, t["dest_name"], out.found.get(task.dest_label)
        )
    elif task.kind == "is_open":
        answer = out.answer.lower()
        said = "open" if ("open" in answer or answer.startswith("yes")) else ""
        said = "closed" if ("closed" in answer or answer.startswith("no")) else said
        ok = said == t["state"]
    elif task.kind == "what_changed":
        truth = set(t["labels"])
        vocab = sorted({o.label for o in world.sim.objects(include_absent=True)})
        said = set(
            out.answer_labels if out.answer_labels is not None else labels_in(out.answer, vocab)
        )
        hit = len(truth & said)
        p = hit / len(said) if said else (1.0 if not truth else 0.0)
        r = hit / len(truth) if truth else (1.0 if not said else 0.0)
        value = 2 * p * r / (p + r) if p + r > 0 else 0.0
        ok = p >= 0.5 and r >= 0.5
    elif task.kind == "where_last" and out.answer_position is not None:
        err = np.linalg.norm(np.asarray(out.answer_position) - np.asarray(t["position"]))
        ok = float(err) <= WHERE_TOLERANCE_M
    out.success = bool(ok)
    out.score = float(value if task.kind == "what_changed" else ok)
    return out


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate (0, 1 when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    """Success (with Wilson interval), mean path, calls, tokens and wall time of outcomes."""
    n = len(outcomes)
    k = sum(o.success for o in outcomes)
    lo, hi = wilson(k, n)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {
        "n": n,
        "success": k / n if n else float("nan"),
        "ci95": [lo, hi],
        "path_m": mean([o.path_m for o in outcomes]),
        "frames": mean([o.frames for o in outcomes]),
        "service_calls": mean([o.service_calls for o in outcomes]),
        "prompt_tokens": mean([o.prompt_tokens for o in outcomes]),
        "wall_s": mean([o.wall_s for o in outcomes]),
    }
