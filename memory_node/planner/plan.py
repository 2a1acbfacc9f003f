"""Plans: the steps a planner gives the agent, their JSON form, and two planners.

A plan is a list of :class:`Step` (``action`` + ``target`` + ``text``). Actions:

==================  ===========================================================================
``goto``            drive to a remembered object (``target``: object id) and confirm it by camera
``search``          look for an object room by room (``target``: label)
``inspect``         go to an object (id or label) and read its state (open/closed) by camera
``look``            drive to a room (``target``: room name) and look around
``pick``/``place``  take the object in reach / put it down at the object in reach (id or label)
``report_changes``  answer with the memory's changes in a room (``target``: room name)
``answer``          answer the user (``text``; ``target``: an object id for "where")
==================  ===========================================================================

An LLM answers JSON: ``{"steps": [{"action": "goto", "target": "obj_000012"}, ...]}``.
:func:`parse_plan` reads it (code fences tolerated) and refuses, step by step, steps with an
unknown action, an object id the memory never returned, or an unknown room; the refusals are
kept in the plan with their reason. :class:`RuleBasedPlanner` makes the same plans from the
structured memory answers, deterministically; :class:`LLMPlanner` asks an OpenAI-compatible
server and, when given a fallback, hands over to it on any server or parsing error.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from memory_node.core.types import ChangeEvent, SceneObject
from memory_node.planner.llm import ChatCompletionClient, LLMError

_LOG = logging.getLogger(__name__)

ACTIONS = ("goto", "search", "inspect", "look", "pick", "place", "report_changes", "answer")
ID_ACTIONS = ("goto",)
ROOM_ACTIONS = ("look", "report_changes")

PLAN_FORMAT = (
    'Answer with JSON only: {"steps": [{"action": ..., "target": ..., "text": ...}, ...]}. '
    "Actions: goto (target: object id), search (target: label), inspect (target: object id or "
    "label; reads open/closed), look (target: room name), pick / place (target: object id or "
    "label), report_changes (target: room name), answer (text; target: object id for 'where'). "
    "Use only object ids that appear in the memory above."
)


class PlanError(ValueError):
    """A planner reply that is not a plan (not JSON, or no list of steps)."""


@dataclass
class Step:
    """One action of a plan (see the module docstring)."""

    action: str
    target: str = ""
    text: str = ""


@dataclass
class Refusal:
    """A step of a reply that was not accepted, and why."""

    index: int
    step: Any
    reason: str


@dataclass
class Plan:
    """Accepted steps, refused steps, who made it, and any error met on the way."""

    steps: list[Step] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    source: str = "rules"
    error: str = ""


@dataclass
class PlanContext:
    """What a planner knows when it plans a task.

    Attributes:
        task: the instruction text.
        kind, label, dest_label, room: the task's parts (see ``memory_node.tasks.suite.Task``).
        objects: objects the memory returned for the task (query_objects), by id.
        changes: changes the memory returned (get_changes), newest first.
        rooms: names of the rooms of the floor plan.
        room_last_seen: room -> latest ``last_seen`` of the memory's objects in it, seconds.
        since_s: the time the task asks about ("what changed" since then), seconds.
        messages: the chat prompt (scene graph + changes + task) for an LLM.
        prompt_tokens: tokens of the prompt's scene graph and changes.
    """

    task: str
    kind: str = ""
    label: str = ""
    dest_label: str = ""
    room: str = ""
    objects: dict[str, SceneObject] = field(default_factory=dict)
    changes: list[ChangeEvent] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    room_last_seen: dict[str, float] = field(default_factory=dict)
    since_s: float = 0.0
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0


class Planner(Protocol):
    """Anything that turns a :class:`PlanContext` into a :class:`Plan`."""

    def plan(self, ctx: PlanContext) -> Plan:
        """Return the plan for ``ctx``."""
        ...


def _json_payload(text: str) -> Any:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    body = fenced.group(1) if fenced else text
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise PlanError(f"the reply holds no JSON: {text[:120]!r}")
    try:
        return json.JSONDecoder().raw_decode(body[start:])[0]
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"the reply is not valid JSON ({exc.msg} at {exc.pos}): {text[:120]!r}"
        ) from exc


def parse_plan(text: str, ctx: PlanContext, source: str = "llm") -> Plan:
    """Read a JSON plan and check each step against the memory (see the module docstring).

    Raises:
        PlanError: no JSON, malformed JSON, or no list of steps.
    """
    payload = _json_payload(text)
    raw = payload.get("steps") if isinstance(payload, dict) else payload
    if not isinstance(raw, list):
        raise PlanError("the reply has no list of steps ({'steps': [...]})")
    plan = Plan(source=source)
    known_labels = {ctx.label, ctx.dest_label} - {""}
    known_labels |= {o.label for o in ctx.objects.values() if o.label}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            plan.refused.append(Refusal(i, item, "a step must be an object"))
            continue
        action = str(item.get("action", "")).strip().lower()
        target = str(item.get("target", item.get("id", "")) or "").strip()
        text_field = str(item.get("text", "") or "")
        reason = ""
        if action not in ACTIONS:
            reason = f"unknown action {action!r} (known: {', '.join(ACTIONS)})"
        elif action in ID_ACTIONS and target not in ctx.objects:
            reason = f"unknown object id {target!r}: the memory returned no such object"
        elif action in ("inspect", "pick", "place") and (
            target not in ctx.objects and target not in known_labels
        ):
            reason = f"unknown object {target!r}: neither an id from memory nor a task label"
        elif action in ROOM_ACTIONS and target not in ctx.rooms:
            reason = f"unknown room {target!r} (rooms: {', '.join(ctx.rooms)})"
        elif action == "search" and not target:
            reason = "search needs a label"
        elif action == "answer" and target and target not in ctx.objects:
            reason = f"unknown object id {target!r} in the answer"
        if reason:
            plan.refused.append(Refusal(i, item, reason))
            continue
        plan.steps.append(Step(action, target, text_field))
    return plan


class RuleBasedPlanner:
    """Deterministic plans from the memory's structured answers (no LLM needed).

    * go to / bring: the remembered instances of the label, most recently seen first, then a
      search; bring adds pick, the same for the destination, and place;
    * is ... open: the remembered state when known, else inspect;
    * what changed: look at the room first when nothing in it was seen since the time asked
      about, then report the changes;
    * where did you last see: the remembered instance seen last (absent ones included).
    """

    max_candidates: int = 3

    def _candidates(self, ctx: PlanContext, label: str) -> list[SceneObject]:
        found = [o for o in ctx.objects.values() if o.label == label and o.present]
        found.sort(key=lambda o: -o.last_seen)
        return found[: self.max_candidates]

    def _fetch(self, ctx: PlanContext, label: str) -> list[Step]:
        return [Step("goto", o.id) for o in self._candidates(ctx, label)] + [Step("search", label)]

    def plan(self, ctx: PlanContext) -> Plan:
        """Return the plan of ``ctx``'s task."""
        steps: list[Step] = []
        if ctx.kind == "go_to":
            steps = self._fetch(ctx, ctx.label)
        elif ctx.kind == "bring":
            steps = [
                *self._fetch(ctx, ctx.label),
                Step("pick", ctx.label),
                *self._fetch(ctx, ctx.dest_label),
                Step("place", ctx.dest_label),
            ]
        elif ctx.kind == "is_open":
            known = [o for o in self._candidates(ctx, ctx.label) if o.state in ("open", "closed")]
            steps = (
                [Step("answer", text=known[0].state)] if known else [Step("inspect", ctx.label)]
            )
        elif ctx.kind == "what_changed":
            stale = ctx.room_last_seen.get(ctx.room, float("-inf")) < ctx.since_s
            steps = ([Step("look", ctx.room)] if stale else []) + [
                Step("report_changes", ctx.room)
            ]
        elif ctx.kind == "where_last":
            seen = [o for o in ctx.objects.values() if o.label == ctx.label]
            steps = (
                [Step("answer", max(seen, key=lambda o: o.last_seen).id)]
                if seen
                else [Step("answer", text="I have not seen it")]
            )
        else:
            steps = [Step("answer", text=f"I cannot do '{ctx.task}'")]
        return Plan(steps=steps, source="rules")


@dataclass
class LLMPlanner:
    """Plans from an OpenAI-compatible chat server; ``fallback`` takes over on any error.

    Attributes:
        client: the chat-completion client (base URL, model, key variable, timeout).
        fallback: planner used when the server fails or its reply is not a plan; None to
            raise instead.
        max_reply_tokens: completion budget.
    """

    client: ChatCompletionClient
    fallback: Planner | None = None
    max_reply_tokens: int = 400

    def plan(self, ctx: PlanContext) -> Plan:
        """Ask the server; refuse bad steps; fall back (or raise LLMError/PlanError)."""
        messages = [dict(m) for m in ctx.messages] or [{"role": "user", "content": ctx.task}]
        messages[-1]["content"] = messages[-1]["content"] + "\n\n" + PLAN_FORMAT
        try:
            reply = self.client.complete(messages, self.max_reply_tokens)
            plan = parse_plan(reply, ctx, source="llm")
            if not plan.steps:
                raise PlanError(f"no usable step ({len(plan.refused)} refused)")
            return plan
        except (LLMError, PlanError) as exc:
            if self.fallback is None:
                raise
            _LOG.warning("LLM planner failed (%s); the rule-based planner takes over", exc)
            plan = self.fallback.plan(ctx)
            plan.source = "llm->rules"
            plan.error = str(exc)
            return plan
