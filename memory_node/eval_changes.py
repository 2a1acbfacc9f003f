"""Change-detection figures pooled over many episodes: the metrics of ``bench/bench_changes.py``.

Pure functions over the ground-truth document of ``memory_sim`` and the records of
:mod:`memory_node.evaluation` (no ROS, no simulator import). :func:`score_episode` turns one
episode into counts; :func:`summarize` pools the counts of many episodes, so precision and recall
come with Wilson 95 % intervals over all the changes of a group, and delays are medians over all
its detections, not medians of medians.

Definitions:

* an event matches a true change as in :func:`memory_node.evaluation.change_metrics` (same kind
  and label, stamped at or after the change, within ``max_distance_m`` of its position;
  one-to-one with the least total distance);
* delay: event stamp minus the change's first view (:func:`memory_node.evaluation.first_views`,
  over the frames the memory was given);
* identity swap: a MOVED event matched to a true move (by where the object went) whose old
  position is more than ``max_distance_m`` from where the moved object came from: the memory
  moved the wrong one of several look-alikes;
* false events: in a static episode every event is false; in a changing one, every event before
  the first change (``pre_change_*`` figures);
* objects: recall and duplicates at the end of the episode (:func:`match_objects`), over the
  objects present then that the memory was shown well enough (``min_frames_seen`` frames
  with ``min_view_pixels`` pixels with depth).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory_node.core.types import ChangeEvent
from memory_node.evaluation import (
    KINDS,
    MemObject,
    first_views,
    gt_objects_at,
    match_objects,
    pair_changes,
)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion (95 % for z = 1.96).

    (nan, nan) when there are no trials.
    """
    if trials <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= trials:
        raise ValueError(f"wilson_interval: {successes} successes of {trials} trials")
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class KindCounts:
    """Counts of one kind of change over one or more episodes."""

    gt: int = 0
    reported: int = 0
    true_positives: int = 0
    viewed: int = 0  # true changes seen after they happened
    viewed_found: int = 0  # of those, matched by an event
    delays_s: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    def add(self, other: KindCounts) -> None:
        """Add another's counts to these."""
        self.gt += other.gt
        self.reported += other.reported
        self.true_positives += other.true_positives
        self.viewed += other.viewed
        self.viewed_found += other.viewed_found
        self.delays_s += other.delays_s
        self.missed += other.missed
        self.false += other.false


@dataclass
class EpisodeScore:
    """What one episode contributes to the pooled figures."""

    name: str
    style: str
    static: bool
    frames: int = 0
    kinds: dict[str, KindCounts] = field(default_factory=lambda: {k: KindCounts() for k in KINDS})
    moves_matched: int = 0
    lookalike_moves_matched: int = 0
    swaps: list[str] = field(default_factory=list)
    lookalike_swaps: int = 0
    objects_considered: int = 0
    objects_found: int = 0
    objects_remembered: int = 0
    duplicates: int = 0
    objects_missed: list[str] = field(default_factory=list)
    false_events: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    pre_change_frames: int = 0
    pre_change_events: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})


def score_episode(
    name: str,
    style: str,
    static: bool,
    gt: dict[str, Any],
    events: Sequence[ChangeEvent],
    objects: Sequence[MemObject],
    min_frames_seen: int = 2,
    max_distance_m: float = 0.5,
    min_view_pixels: int = 300,
) -> EpisodeScore:
    """Score one episode from its ground truth, the published events and the final objects.

    ``gt`` is the simulator's ground-truth document; its ``frames`` must be the frames the
    memory was given (dropped frames left out). An object or a change counts as seen in a frame
    showing at least ``min_view_pixels`` of it with depth (scale it with the image size);
    objects seen in fewer than ``min_frames_seen`` frames are not expected in memory.
    """
    frames = gt.get("frames", [])
    score = EpisodeScore(name, style, static, frames=len(frames))
    changes = list(gt.get("changes", []))
    first_change = min((float(c["stamp"]) for c in changes), default=math.inf)
    if static:
        for e in events:
            score.false_events[e.kind.name] += 1
    else:
        score.pre_change_frames = sum(1 for f in frames if f["stamp"] < first_change)
        for e in events:
            if e.stamp < first_change:
                score.pre_change_events[e.kind.name] += 1
    after = [e for e in events if e.stamp >= first_change]
    views = first_views(changes, frames, min_pixels=min_view_pixels) if changes else []
    label_count: dict[str, int] = {}
    for obj in gt.get("objects", []):
        label = obj["history"][0]["label"]
        label_count[label] = label_count.get(label, 0) + 1
    for kind in KINDS:
        k = score.kinds[kind]
        idx = [i for i, c in enumerate(changes) if c["kind"] == kind]
        k.gt = len(idx)
        k.viewed = sum(1 for i in idx if views[i] is not None)
        k.reported = sum(1 for e in after if e.kind.name == kind)
        pairs = pair_changes(kind, changes, after, max_distance_m)
        k.true_positives = len(pairs)
        matched_gt = {i for _, i in pairs}
        matched_ev = {j for j, _ in pairs}
        k.missed = [f"{name}: {changes[i]['name']}" for i in idx if i not in matched_gt]
        k.false = [
            f"{name}: {e.label} {e.object_id} at {e.stamp:.1f} s"
            for j, e in enumerate(after)
            if e.kind.name == kind and j not in matched_ev
        ]
        for j, i in pairs:
            view = views[i]
            if view is not None:
                k.viewed_found += 1
                k.delays_s.append(max(0.0, after[j].stamp - view))
            if kind != "MOVED":
                continue
            c, e = changes[i], after[j]
            lookalike = label_count.get(c["label"], 0) >= 2
            score.moves_matched += 1
            score.lookalike_moves_matched += int(lookalike)
            d = float(np.linalg.norm(np.asarray(e.old_position) - np.asarray(c["old_position"])))
            if d > max_distance_m:
                score.swaps.append(f"{name}: {c['name']} reported from {d:.2f} m away")
                score.lookalike_swaps += int(lookalike)
    seen: dict[int, int] = {}
    for f in frames:
        for iid, pixels in f.get("visible_in_range", {}).items():
            if pixels >= min_view_pixels:
                seen[int(iid)] = seen.get(int(iid), 0) + 1
    truth = [
        dataclasses.replace(g, frames_seen=seen.get(g.instance_id, 0))
        for g in gt_objects_at(gt, math.inf)
    ]
    om = match_objects(truth, objects, min_frames_seen=min_frames_seen)
    score.objects_considered = om.gt_considered
    score.objects_found = om.found
    score.objects_remembered = om.remembered
    score.duplicates = om.duplicates
    score.objects_missed = [f"{name}: {m}" for m in om.missed]
    return score


def _ratio(k: int, n: int) -> dict[str, Any]:
    """Return a proportion with its Wilson 95 % interval and the counts it comes from."""
    lo, hi = wilson_interval(k, n)
    return {"value": k / n if n else math.nan, "ci95": [lo, hi], "k": k, "n": n}


def summarize(scores: Iterable[EpisodeScore]) -> dict[str, Any]:
    """Pool episode scores into the report's figures (JSON-serialisable)."""
    scores = list(scores)
    kinds = {k: KindCounts() for k in KINDS}
    for s in scores:
        for kind in KINDS:
            kinds[kind].add(s.kinds[kind])
    changing = [s for s in scores if not s.static]
    static = [s for s in scores if s.static]
    static_frames = sum(s.frames for s in static)
    static_false = sum(sum(s.false_events.values()) for s in static)
    pre_frames = sum(s.pre_change_frames for s in changing)
    pre_events = sum(sum(s.pre_change_events.values()) for s in changing)
    all_delays = [d for k in kinds.values() for d in k.delays_s]
    moves = sum(s.moves_matched for s in scores)
    look_moves = sum(s.lookalike_moves_matched for s in scores)
    out: dict[str, Any] = {
        "episodes": len(scores),
        "static_episodes": len(static),
        "frames": sum(s.frames for s in scores),
        "kinds": {},
        "objects": {
            "recall": _ratio(
                sum(s.objects_found for s in scores), sum(s.objects_considered for s in scores)
            ),
            "duplicates": _ratio(
                sum(s.duplicates for s in scores), sum(s.objects_remembered for s in scores)
            ),
            "missed": [m for s in scores for m in s.objects_missed],
        },
        "identity_swaps": {
            "all_moves": _ratio(sum(len(s.swaps) for s in scores), moves),
            "lookalike_moves": _ratio(sum(s.lookalike_swaps for s in scores), look_moves),
            "list": [w for s in scores for w in s.swaps],
        },
        "median_delay_s": float(np.median(all_delays)) if all_delays else math.nan,
        "static": {
            "frames": static_frames,
            "false_events": static_false,
            "per_1000_frames": 1000.0 * static_false / static_frames
            if static_frames
            else math.nan,
            "by_kind": {k: sum(s.false_events[k] for s in static) for k in KINDS},
        },
        "pre_change": {
            "frames": pre_frames,
            "events": pre_events,
            "per_1000_frames": 1000.0 * pre_events / pre_frames if pre_frames else math.nan,
            "by_kind": {k: sum(s.pre_change_events[k] for s in changing) for k in KINDS},
        },
    }
    for kind, k in kinds.items():
        out["kinds"][kind] = {
            "precision": _ratio(k.true_positives, k.reported),
            "recall": _ratio(k.true_positives, k.gt),
            "recall_viewed": _ratio(k.viewed_found, k.viewed),
            "median_delay_s": float(np.median(k.delays_s)) if k.delays_s else math.nan,
            "delays_over_1s": sum(1 for d in k.delays_s if d > 1.0 + 1e-9),
            "missed": k.missed,
            "false": k.false,
        }
    return out
