"""Memory-augmented prompting for an LLM task planner (KARMA-style long + short-term memory).

Pure functions: they take the scene-graph text (``scene_memory/get_scene_graph`` with the task
as focus and a token budget) and the recent changes (``scene_memory/get_changes``), and build the
messages of a chat-completion request. The ROS client in :mod:`memory_node.planner.client`
fetches the two and sends the prompt to an LLM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.types import ChangeEvent

CHANGE_WORDS = {0: "appeared", 1: "moved", 2: "disappeared", 3: "changed state"}

SYSTEM_PROMPT = (
    "You are the task planner of a household robot. You receive the robot's memory of its "
    "surroundings: a long-term scene graph (rooms, objects with positions in metres in the map "
    "frame, relations) and the short-term memory of recent changes (objects that appeared, moved, "
    "disappeared or changed state, with the time they were seen). Objects marked 'last seen' "
    "are not where the robot last looked; go to the last seen place or search. "
    "Use only ids from memory."
)


@dataclass
class PlannerPrompt:
    """A chat prompt: messages in the OpenAI chat-completion format, and what went into it."""

    messages: list[dict[str, str]] = field(default_factory=list)
    scene_tokens: int = 0
    num_changes: int = 0


def _fmt(p: Sequence[float] | np.ndarray) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in p) + ")"


def describe_change(change: ChangeEvent, now_s: float | None = None) -> str:
    """One line of text for a change, e.g. ``mug [obj_000003] moved from (...) to (...)``."""
    what = CHANGE_WORDS.get(int(change.kind), f"changed (kind {int(change.kind)})")
    name = f"{change.label or 'object'} [{change.object_id}]"
    if change.kind == 1:
        detail = f" from {_fmt(change.old_position)} to {_fmt(change.new_position)}"
    elif change.kind == 3:
        detail = f" from '{change.old_state or '?'}' to '{change.new_state or '?'}'"
    elif change.kind == 2:
        detail = f", last seen at {_fmt(change.old_position)}"
    else:
        detail = f" at {_fmt(change.new_position)}"
    when = f"t={change.stamp:.1f} s"
    if now_s is not None and math.isfinite(now_s) and now_s >= change.stamp:
        when += f" ({now_s - change.stamp:.0f} s ago)"
    return f"- {when}: {name} {what}{detail}"


def build_prompt(
    task: str,
    scene_text: str,
    changes: Sequence[ChangeEvent],
    scene_tokens: int = 0,
    max_changes: int = 20,
    now_s: float | None = None,
) -> PlannerPrompt:
    """Messages for a planner LLM: system rules, then memory, then the task.

    Args:
        task: the user's instruction, e.g. "bring me the mug".
        scene_text: the compact scene-graph rendering (already within its token budget).
        changes: recent changes, newest first.
        max_changes: at most this many changes are listed.
        scene_tokens: token count of ``scene_text`` as reported by the memory.
        now_s: current time, seconds, to say how long ago each change was.
    """
    if not task.strip():
        raise ValueError("the task text is empty")
    used = list(changes)[: max(0, max_changes)]
    lines = [describe_change(c, now_s) for c in used] or ["- (no recent changes)"]
    memory = (
        "## Long-term memory (scene graph)\n"
        + (scene_text.strip() or "(empty: nothing observed yet)")
        + "\n\n## Short-term memory (recent changes, newest first)\n"
        + "\n".join(lines)
    )
    return PlannerPrompt(
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{memory}\n\n## Task\n{task.strip()}"},
        ],
        scene_tokens=scene_tokens,
        num_changes=len(used),
    )
