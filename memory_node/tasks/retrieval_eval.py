"""Prompt retrieval measured per task: tokens, and recall of the task's objects at their place.

For one task and one memory, each rendering (focused at several budgets, the full graph dump,
the full change history) is scored by:

* ``tokens``: WordPiece tokens of the text (the renderer's counter);
* ``recall``: share of the task-relevant objects (the object named, the destination, the
  objects changed in the room asked about; present ones, as they are now) that the text names
  on a line holding a position within ``tolerance_m`` of the object's true centre;
* ``recall_remembered``: the same over the relevant objects that the full dump holds at their
  true place (what a rendering can at best keep: the rest the memory does not know).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from memory_node.core.render import count_tokens
from memory_node.core.scene_memory import SceneMemory
from memory_node.planner.prompt import describe_change
from memory_node.tasks.suite import Task
from memory_node.tasks.world import TaskWorld

_XYZ = re.compile(r"\((-?\d+\.\d+), (-?\d+\.\d+), (-?\d+\.\d+)\)")

BUDGETS = (100, 200, 400, 800)


def relevant_objects(task: Task, world: TaskWorld) -> list[tuple[str, np.ndarray]]:
    """(label, true centre) of the present objects the task is about."""
    sim = world.sim
    names: list[str] = []
    for key in ("name", "dest_name"):
        if key in task.truth:
            names.append(task.truth[key])
    if task.kind == "what_changed":
        for ch in sim.changes:
            if task.room in (ch.old_room, ch.new_room):
                names.append(ch.name)
    out = []
    for name in dict.fromkeys(names):
        truth = sim.object_truth(name)
        if truth.present:
            out.append((truth.label, truth.center.copy()))
    return out


def recall(text: str, relevant: list[tuple[str, np.ndarray]], tolerance_m: float = 0.5) -> float:
    """Share of ``relevant`` named on a line of ``text`` with a position near the truth."""
    if not relevant:
        return float("nan")
    lines = text.splitlines()
    hits = 0
    for label, centre in relevant:
        pattern = re.compile(rf"\b{re.escape(label)}\b")
        for line in lines:
            if not pattern.search(line):
                continue
            pts = [np.array([float(v) for v in m]) for m in _XYZ.findall(line)]
            if any(np.linalg.norm(p - centre) <= tolerance_m for p in pts):
                hits += 1
                break
    return hits / len(relevant)


def measure(task: Task, memory: SceneMemory, world: TaskWorld) -> dict[str, Any]:
    """Tokens and recall of each rendering for ``task`` (see the module docstring)."""
    relevant = relevant_objects(task, world)
    full = memory.render()
    known = [r for r in relevant if recall(full.text, [r]) == 1.0]
    out: dict[str, Any] = {
        "task_id": task.id,
        "kind": task.kind,
        "relevant": len(relevant),
        "remembered": len(known),
    }

    def entry(text: str, tokens: int) -> dict[str, Any]:
        return {
            "tokens": tokens,
            "recall": recall(text, relevant),
            "recall_remembered": recall(text, known),
        }

    for budget in BUDGETS:
        r = memory.render(focus=task.text, max_tokens=budget)
        out[f"focused_{budget}"] = entry(r.text, r.token_count)
    out["full_dump"] = entry(full.text, full.token_count)
    history = "\n".join(describe_change(c) for c in memory.changes())
    out["change_history"] = entry(history, count_tokens(history))
    return out
