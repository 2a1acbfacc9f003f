"""Compare what the memory remembers with the simulator's ground truth.

Pure functions over plain records (no ROS, no simulator import), used by the demo and the
benchmarks. Ground truth is the JSON document written by ``memory_sim`` (``objects`` with a
``history`` of states, ``changes``, ``frames``); memory objects and events are small records
built from the core's dataclasses or from the service answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

KINDS = ("APPEARED", "MOVED", "DISAPPEARED", "STATE_CHANGED")


@dataclass
class GtObject:
    """The true state of one object at one time (centre and box in metres, map frame)."""

    instance_id: int
    name: str
    label: str
    room: str
    static: bool
    state: str
    present: bool
    center: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    frames_seen: int = 0


@dataclass
class MemObject:
    """What the memory says of one object."""

    id: str
    label: str
    center: np.ndarray
    size: np.ndarray
    present: bool = True
    last_seen: float = 0.0
    state: str = ""


@dataclass
class MemEvent:
    """One change event reported by the memory (kind as in ``KINDS``)."""

    kind: str
    object_id: str
    label: str
    stamp: float
    old_position: np.ndarray
    new_position: np.ndarray


@dataclass
class ObjectMetrics:
    """How the remembered objects compare with the ground truth."""

    gt_considered: int = 0
    found: int = 0
    recall: float = 0.0
    remembered: int = 0
    duplicates: int = 0
    duplicate_rate: float = 0.0
    unmatched_memory: int = 0
    median_centroid_error_m: float = float("nan")
    matches: list[tuple[int, str, float]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


def gt_objects_at(gt: dict[str, Any], t: float = float("inf")) -> list[GtObject]:
    """Each object's ground-truth state valid at sim time ``t`` (its last entry at or before t)."""
    out = []
    for obj in gt.get("objects", []):
        history = [h for h in obj["history"] if h["stamp"] <= t] or obj["history"][:1]
        h = history[-1]
        out.append(
            GtObject(
                instance_id=int(obj["instance_id"]),
                name=h["name"],
                label=h["label"],
                room=h.get("room", ""),
                static=bool(h["static"]),
                state=h.get("state", ""),
                present=bool(h["present"]) and h["stamp"] <= t,
                center=np.asarray(h["center"], float),
                box_min=np.asarray(h["box_min"], float),
                box_max=np.asarray(h["box_max"], float),
                frames_seen=int(obj.get("visibility", {}).get("frames", 0)),
            )
        )
    return out


def _pair_cost(gt: GtObject, mem: MemObject, max_distance_m: float) -> float:
    """Distance between centres when the labels agree and it is within reach, else inf."""
    if gt.label != mem.label:
        return np.inf
    d = float(np.linalg.norm(gt.center - np.asarray(mem.center, float)))
    reach = max(max_distance_m, 0.5 * float(np.linalg.norm(gt.box_max - gt.box_min)))
    return d if d <= reach else np.inf


def match_objects(
    gt_objects: Sequence[GtObject],
    memory: Sequence[MemObject],
    min_frames_seen: int = 10,
    max_distance_m: float = 0.3,
    include_static: bool = True,
) -> ObjectMetrics:
    """One-to-one matching (Hungarian on centre distance, labels must agree) and its figures.

    Ground truth considered: present objects seen in at least ``min_frames_seen`` frames.
    A duplicate is an unmatched present memory object with the label of a considered ground-truth
    object whose box (grown by ``max_distance_m``) holds its centre.
    """
    considered = [
        g
        for g in gt_objects
        if g.present and g.frames_seen >= min_frames_seen and (include_static or not g.static)
    ]
    present = [m for m in memory if m.present]
    metrics = ObjectMetrics(gt_considered=len(considered), remembered=len(present))
    if not considered:
        return metrics
    cost = np.full((len(considered), max(len(present), 1)), np.inf)
    for i, g in enumerate(considered):
        for j, m in enumerate(present):
            cost[i, j] = _pair_cost(g, m, max_distance_m)
    finite = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(finite)
    matched_mem: set[int] = set()
    errors = []
    for i, j in zip(rows, cols, strict=True):
        if j < len(present) and np.isfinite(cost[i, j]):
            matched_mem.add(j)
            errors.append(cost[i, j])
            metrics.matches.append((considered[i].instance_id, present[j].id, float(cost[i, j])))
    matched_gt = {m[0] for m in metrics.matches}
    metrics.missed = [g.name for g in considered if g.instance_id not in matched_gt]
    metrics.found = len(matched_gt)
    metrics.recall = metrics.found / len(considered)
    for j, m in enumerate(present):
        if j in matched_mem:
            continue
        c = np.asarray(m.center, float)
        if any(
            g.label == m.label
            and np.all(c >= g.box_min - max_distance_m)
            and np.all(c <= g.box_max + max_distance_m)
            for g in considered
        ):
            metrics.duplicates += 1
        else:
            metrics.unmatched_memory += 1
    metrics.duplicate_rate = metrics.duplicates / max(1, len(present))
    if errors:
        metrics.median_centroid_error_m = float(np.median(errors))
    return metrics


@dataclass
class ChangeMetrics:
    """Precision/recall of one kind of change event."""

    kind: str
    gt: int = 0
    reported: int = 0
    true_positives: int = 0
    precision: float = float("nan")
    recall: float = float("nan")
    median_delay_s: float = float("nan")


def change_metrics(
    gt_changes: Iterable[dict[str, Any]],
    events: Iterable[MemEvent],
    since_s: float = 0.0,
    max_distance_m: float = 0.5,
) -> dict[str, ChangeMetrics]:
    """Per-kind precision and recall of reported events against true changes after ``since_s``.

    An event matches a true change of the same kind and label when it is stamped at or after the
    change and its position (new for APPEARED/MOVED, old for DISAPPEARED, either for
    STATE_CHANGED) is within ``max_distance_m`` of the change's; matching is one-to-one,
    earliest event first. The delay is event stamp minus change stamp (an upper bound of the
    time from first view to event, since the robot may have been elsewhere).
    """
    gts = [c for c in gt_changes if c["stamp"] >= since_s]
    evs = [e for e in events if e.stamp >= since_s]
    out = {}
    for kind in KINDS:
        g_kind = [c for c in gts if c["kind"] == kind]
        e_kind = sorted((e for e in evs if e.kind == kind), key=lambda e: e.stamp)
        used: set[int] = set()
        delays = []
        for e in e_kind:
            pos = np.asarray(e.old_position if kind == "DISAPPEARED" else e.new_position, float)
            best, best_d = None, np.inf
            for i, c in enumerate(g_kind):
                if i in used or c["label"] != e.label or e.stamp + 1e-6 < c["stamp"]:
                    continue
                ref = c["old_position"] if kind == "DISAPPEARED" else c["new_position"]
                d = float(np.linalg.norm(pos - np.asarray(ref, float)))
                if d <= max_distance_m and d < best_d:
                    best, best_d = i, d
            if best is not None:
                used.add(best)
                delays.append(e.stamp - g_kind[best]["stamp"])
        m = ChangeMetrics(
            kind=kind, gt=len(g_kind), reported=len(e_kind), true_positives=len(used)
        )
        if e_kind:
            m.precision = len(used) / len(e_kind)
        if g_kind:
            m.recall = len(used) / len(g_kind)
        if delays:
            m.median_delay_s = float(np.median(delays))
        out[kind] = m
    return out
