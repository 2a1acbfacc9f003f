"""Precision and recall of the memory's support relations ("on"/"in") against the simulator.

The truth is :func:`memory_sim.ground_truth.support_relations` (what rests on what). Memory
objects are matched one-to-one to the true objects (:func:`memory_node.evaluation.match_objects`:
same label, nearest centre); a memory relation ``a on b`` or ``a in b`` between matched objects
is right when the truth has the subject resting on the matched object. Recall counts the true
relations whose two objects are both matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from memory_node.core.types import Relation, SceneObject
from memory_node.evaluation import MemObject, match_objects
from memory_sim.ground_truth import ObjectTruth, support_relations

SUPPORT = ("on", "in")


def support_metrics(
    truth: Sequence[ObjectTruth],
    objects: Sequence[SceneObject],
    relations: Sequence[Relation],
    max_distance_m: float = 0.3,
) -> dict[str, Any]:
    """Return counts, precision and recall of the on/in relations, and the errors."""
    gt = [replace(t, frames_seen=10**6) for t in truth]  # every true object counts
    mem = [
        MemObject(o.id, o.label, np.asarray(o.center), np.asarray(o.size), o.present)
        for o in objects
    ]
    matches = match_objects(gt, mem, max_distance_m=max_distance_m).matches
    mem_to_gt = {m: g for g, m, _ in matches}
    name_of = {t.instance_id: t.name for t in truth}
    true_pairs = {(r["subject"], r["object"]) for r in support_relations(list(truth))}
    matched_names = {name_of[g] for g in mem_to_gt.values()}
    claimed, wrong = set(), []
    for r in relations:
        if r.predicate not in SUPPORT:
            continue
        if r.subject_id not in mem_to_gt or r.object_id not in mem_to_gt:
            continue
        pair = (name_of[mem_to_gt[r.subject_id]], name_of[mem_to_gt[r.object_id]])
        claimed.add(pair)
        if pair not in true_pairs:
            wrong.append(f"{pair[0]} {r.predicate} {pair[1]}")
    reachable = {p for p in true_pairs if p[0] in matched_names and p[1] in matched_names}
    hits = claimed & reachable
    return {
        "claimed": len(claimed),
        "true": len(reachable),
        "correct": len(hits),
        "precision": len(hits) / len(claimed) if claimed else float("nan"),
        "recall": len(hits) / len(reachable) if reachable else float("nan"),
        "wrong": sorted(wrong),
        "missed": sorted(f"{a} on {b}" for a, b in reachable - claimed),
    }
