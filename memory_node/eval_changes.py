"""Change-detection figures pooled over many episodes: the metrics of ``bench/bench_changes.py``.

Pure functions over the ground-truth document of ``memory_sim`` and the records of
:mod:`memory_node.evaluation` (no ROS, no simulator import). :func:`score_episode` turns one
episode into counts; :func:`summarize` pools the counts of many episodes, so precision and recall
come with Wilson 95 % intervals over all the changes of a group, and delays are medians over all
its detections, not medians of medians.

Definitions:

* a true change is judged as the frames the memory was given show it
  (:func:`memory_node.evaluation.observable_changes`, the rule): e.g. a move whose new place the
  camera never showed is a DISAPPEARED at its old place, a change the camera never showed after
  it happened counts in no recall (``unobservable``), a change to an object shown in fewer than
  ``min_frames_seen`` frames before it cannot be told from an addition, and an object added or
  moved to a place the camera had not shown before the change cannot be told from one seen
  for the first time (``unforeseen``: an addition there counts in no recall, a move there is a
  DISAPPEARED at its old place);
* an event matches a true change by :func:`memory_node.evaluation.pair_changes` (same kind
  and label, stamped at or after the change, within ``max_distance_m`` of its position;
  one-to-one with the least total distance);
* excused events count neither as right nor as false: an event of a true change's own kind
  that matches it when the change is not observable as that kind (it is right, but nothing
  required it: e.g. the MOVED of an object whose new place the camera had not shown before the
  move, besides the DISAPPEARED at its old place that was required), and an event that was
  right when it was made: a DISAPPEARED at the old place of a moved object before the camera
  showed the object at its new place, an APPEARED at its new place before the camera showed its
  old place empty (a later MOVED is then the hit);
* delay: event stamp minus the change's first view (:attr:`Observable.view`);
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
    gt_objects_at,
    match_objects,
    observable_changes,
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

    gt: int = 0  # true changes observable as this kind (the recall's denominator)
    true_changes: int = 0  # true changes of this kind, observable or not
    unobservable: int = 0  # of those, the camera showed too little to tell any event
    unforeseen: int = 0  # of those, the place taken had not been shown before the change
    reported: int = 0  # events of this kind, excused ones left out
    true_positives: int = 0
    delays_s: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)

    def add(self, other: KindCounts) -> None:
        """Add another's counts to these."""
        self.gt += other.gt
        self.true_changes += other.true_changes
        self.unobservable += other.unobservable
        self.unforeseen += other.unforeseen
        self.reported += other.reported
        self.true_positives += other.true_positives
        self.delays_s += other.delays_s
        self.missed += other.missed
        self.false += other.false
        self.excused += other.excused


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
    obs = observable_changes(
        changes, frames, min_pixels=min_view_pixels, min_frames_known=min_frames_seen
    )
    label_count: dict[str, int] = {}
    for obj in gt.get("objects", []):
        label = obj["history"][0]["label"]
        label_count[label] = label_count.get(label, 0) + 1
    # Moves seen only at their new place may be reported MOVED (else APPEARED): pair MOVED first.
    expected = [dict(c, kind=o.kind) for c, o in zip(changes, obs, strict=True)]
    as_moved = [dict(c, kind="MOVED" if "MOVED" in (o.kind, o.also) else "") for c, o in
                zip(changes, obs, strict=True)]  # fmt: skip
    pairs = {"MOVED": pair_changes("MOVED", as_moved, after, max_distance_m)}
    for _, i in pairs["MOVED"]:
        expected[i]["kind"] = "MOVED"
    for i, c in enumerate(expected):
        if c["kind"] == "MOVED" and i not in {i2 for _, i2 in pairs["MOVED"]}:
            c["kind"] = obs[i].kind  # an unmatched move seen only at its new place: APPEARED
    for kind in KINDS:
        if kind != "MOVED":
            pairs[kind] = pair_changes(kind, expected, after, max_distance_m)
    matched_ev = {j for p in pairs.values() for j, _ in p}
    # Events right about a change that nothing required them to report: of its true kind
    # (unless an event of that kind is already its hit), e.g. the MOVED of an object whose new
    # place the camera had not shown before, after the DISAPPEARED that was required
    hit_as = {i: kind for kind, p in pairs.items() for _, i in p}
    rest = [dict(c, kind="" if hit_as.get(i) == c["kind"] else c["kind"])
            for i, c in enumerate(changes)]  # fmt: skip
    excused: dict[int, str] = {}
    left = [j for j in range(len(after)) if j not in matched_ev]
    for kind in KINDS:
        for jj, i in pair_changes(kind, rest, [after[j] for j in left], max_distance_m):
            excused[left[jj]] = f"right, not required: {changes[i]['name']}"
    # Events right when they were made, about a move only half seen by then
    for j, e in enumerate(after):
        if j in matched_ev or j in excused:
            continue
        for c, o in zip(changes, obs, strict=True):
            if c["kind"] != "MOVED" or c["label"] != e.label or e.stamp + 1e-6 < c["stamp"]:
                continue
            if e.kind.name == "DISAPPEARED" and (o.shown is None or e.stamp < o.shown):
                d = np.linalg.norm(np.asarray(e.old_position) - np.asarray(c["old_position"]))
            elif e.kind.name == "APPEARED" and (o.emptied is None or e.stamp < o.emptied):
                d = np.linalg.norm(np.asarray(e.new_position) - np.asarray(c["new_position"]))
            else:
                continue
            if d <= max_distance_m:
                excused[j] = f"right when made: {c['name']} only half seen by then"
                break
    for kind in KINDS:
        k = score.kinds[kind]
        idx = [i for i, c in enumerate(expected) if c["kind"] == kind]
        k.gt = len(idx)
        k.true_changes = sum(1 for c in changes if c["kind"] == kind)
        k.unobservable = sum(1 for c, o in zip(changes, obs, strict=True)
                             if c["kind"] == kind and not o.kind)  # fmt: skip
        k.unforeseen = sum(1 for c, o in zip(changes, obs, strict=True)
                           if c["kind"] == kind and not o.foreseen)  # fmt: skip
        mine = [j for j, e in enumerate(after) if e.kind.name == kind]
        k.reported = sum(1 for j in mine if j not in excused)
        k.true_positives = len(pairs[kind])
        found = {i for _, i in pairs[kind]}
        k.missed = [f"{name}: {changes[i]['name']}" for i in idx if i not in found]
        k.false = [
            f"{name}: {after[j].label} {after[j].object_id} at {after[j].stamp:.1f} s"
            for j in mine
            if j not in matched_ev and j not in excused
        ]
        k.excused = [
            f"{name}: {after[j].label} {after[j].object_id} at {after[j].stamp:.1f} s "
            f"({excused[j]})"
            for j in mine
            if j in excused
        ]
        for j, i in pairs[kind]:
            view = obs[i].view
            if view is not None:
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
            "true_changes": k.true_changes,
            "unobservable": k.unobservable,
            "unforeseen": k.unforeseen,
            "excused": k.excused,
            "median_delay_s": float(np.median(k.delays_s)) if k.delays_s else math.nan,
            "delays_over_1s": sum(1 for d in k.delays_s if d > 1.0 + 1e-9),
            "missed": k.missed,
            "false": k.false,
        }
    return out
