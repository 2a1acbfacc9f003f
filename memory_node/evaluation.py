"""Compare what the memory remembers with the simulator's ground truth.

Pure functions over plain records (no ROS, no simulator import), used by the demo and the
benchmarks. Ground truth is the JSON document written by ``memory_sim`` (``objects`` with a
``history`` of states, ``changes``, ``frames``); an object's true state is an
:class:`ObjectTruth` (the record the simulator itself keeps). Reported events are the core's
:class:`~memory_node.core.types.ChangeEvent` (from the core directly, or from messages through
``memory_node.ros.conversions.msg_to_change``); memory objects are small records built from the
core's dataclasses or from the service answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from memory_node.core.geometry import invert_transform
from memory_node.core.types import ChangeEvent, ChangeKind

KINDS = tuple(k.name for k in ChangeKind)  # APPEARED, MOVED, DISAPPEARED, STATE_CHANGED


@dataclass
class ObjectTruth:
    """True state of one object at one time: the record the simulator writes and scores read.

    Attributes:
        instance_id: id in the simulator's instance image (>= 1).
        name: scene name, e.g. "kitchen/mug_1".
        label: class label.
        room: name of the room holding the box centre ("" when outside every room).
        static: furniture (True) or movable object (False).
        state: e.g. "open"; "" for stateless objects.
        present: False once removed.
        position: (3,) base position of the body, metres, map frame.
        box_min, box_max: (3,) axis-aligned bounds of its geometry, metres, map frame.
        frames_seen: frames of the episode that showed it (filled in when read back for
            scoring; 0 while the simulator runs).
    """

    instance_id: int
    name: str
    label: str
    room: str
    static: bool
    state: str
    present: bool
    position: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    frames_seen: int = 0

    @property
    def center(self) -> np.ndarray:
        """(3,) centre of the box, metres, map frame."""
        return 0.5 * (np.asarray(self.box_min, float) + np.asarray(self.box_max, float))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (without ``frames_seen``)."""
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "label": self.label,
            "room": self.room,
            "static": self.static,
            "state": self.state,
            "present": self.present,
            "position": _list(self.position),
            "center": _list(self.center),
            "box_min": _list(self.box_min),
            "box_max": _list(self.box_max),
        }


def _list(values: Any) -> list[Any]:
    """Return a nested list of Python floats (rounded to 1e-6) from an array-like."""
    return np.round(np.asarray(values, dtype=np.float64), 6).tolist()


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


def gt_objects_at(gt: dict[str, Any], t: float = float("inf")) -> list[ObjectTruth]:
    """Each object's ground-truth state valid at sim time ``t`` (its last entry at or before t)."""
    out = []
    for obj in gt.get("objects", []):
        history = [h for h in obj["history"] if h["stamp"] <= t] or obj["history"][:1]
        h = history[-1]
        box_min, box_max = np.asarray(h["box_min"], float), np.asarray(h["box_max"], float)
        out.append(
            ObjectTruth(
                instance_id=int(obj["instance_id"]),
                name=h["name"],
                label=h["label"],
                room=h.get("room", ""),
                static=bool(h["static"]),
                state=h.get("state", ""),
                present=bool(h["present"]) and h["stamp"] <= t,
                position=np.asarray(h.get("position", 0.5 * (box_min + box_max)), float),
                box_min=box_min,
                box_max=box_max,
                frames_seen=int(obj.get("visibility", {}).get("frames", 0)),
            )
        )
    return out


def _pair_cost(gt: ObjectTruth, mem: MemObject, max_distance_m: float) -> float:
    """Distance between centres when the labels agree and it is within reach, else inf."""
    if gt.label != mem.label:
        return np.inf
    d = float(np.linalg.norm(gt.center - np.asarray(mem.center, float)))
    reach = max(max_distance_m, 0.5 * float(np.linalg.norm(gt.box_max - gt.box_min)))
    return d if d <= reach else np.inf


def match_objects(
    gt_objects: Sequence[ObjectTruth],
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
    """Precision/recall of one kind of change event, and how soon events came.

    ``median_delay_s``/``max_delay_s``: event stamp minus the change's *first view* (see
    :func:`first_views`) over the true positives; ``late`` counts those above ``max_delay_s``
    allowed by the caller (``late_after_s``). ``recall_viewed`` leaves out the true changes
    the camera never saw after they happened (needs frame truth). ``missed`` names the true
    changes no event matched, ``false`` describes the events that matched no true change,
    ``unviewed`` names true changes never seen after they happened (they cannot be detected).
    """

    kind: str
    gt: int = 0
    reported: int = 0
    true_positives: int = 0
    precision: float = float("nan")
    recall: float = float("nan")
    recall_viewed: float = float("nan")
    median_delay_s: float = float("nan")
    max_delay_s: float = float("nan")
    late: int = 0
    late_names: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)
    unviewed: list[str] = field(default_factory=list)


BOX_SAMPLE_FRACTIONS = (0.2, 0.5, 0.8)  # where a box is sampled along each side
PLACE_TOLERANCE_M = 0.05  # a reading this much nearer than a place still shows the place


def box_samples(box_min: Any, box_max: Any) -> np.ndarray:
    """Return (27, 3) points inside a box, at 0.2, 0.5 and 0.8 of each side."""
    lo, hi = np.asarray(box_min, float), np.asarray(box_max, float)
    t = np.array(BOX_SAMPLE_FRACTIONS)
    grid = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.asarray(lo + grid * (hi - lo))


def share_in_view(
    points: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    camera_T_map: np.ndarray,
    max_range_m: float,
) -> float:
    """Share of ``points`` (map frame) that a depth image shows: the place, or what is behind it.

    A point counts when it projects inside the image, lies in front of the camera within
    ``max_range_m``, and the depth there is a reading no nearer than the point (less
    ``PLACE_TOLERANCE_M``): nothing hides it. Used for a place an object left (seen empty) and
    for a place an object is about to take (seen before, so that it can be new there).
    """
    pc = points @ camera_T_map[:3, :3].T + camera_T_map[:3, 3]
    z = pc[:, 2]
    front = (z > 1e-3) & (z <= max_range_m)
    if not front.any():
        return 0.0
    h, w = depth.shape
    u = K[0, 0] * pc[front, 0] / z[front] + K[0, 2]
    v = K[1, 1] * pc[front, 1] / z[front] + K[1, 2]
    ui, vi = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
    reading = depth[vi[inside], ui[inside]]
    seen = (reading > 0) & (reading >= z[front][inside] - PLACE_TOLERANCE_M)
    return float(np.count_nonzero(seen)) / points.shape[0]


def new_places(gt: dict[str, Any]) -> dict[int, tuple[float, np.ndarray]]:
    """Return change index -> (stamp, box samples) of the place each addition or move takes."""
    boxes: dict[tuple[str, float], Any] = {}
    for o in gt.get("objects", []):
        for h in o.get("history", []):
            if h.get("present", True):
                boxes[(str(o["instance_id"]), float(h["stamp"]))] = (h["box_min"], h["box_max"])
    out = {}
    for i, c in enumerate(gt.get("changes", [])):
        box = boxes.get((str(c["instance_id"]), float(c["stamp"])))
        if c["kind"] in ("APPEARED", "MOVED") and box is not None:
            out[i] = (float(c["stamp"]), box_samples(*box))
    return out


def mark_new_places(
    gt: dict[str, Any],
    views: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    max_range_m: float,
) -> None:
    """Record in each frame truth how much of each coming addition's or move's place it shows.

    ``views`` are (depth, K, map_T_camera) of the frames of ``gt["frames"]``, in order (the
    depth may be subsampled, with K to match). Each frame before a change gets
    ``new_place_in_view``: instance id -> share (0-1] of the box the object is about to take
    (:func:`share_in_view`). A change whose new place no frame showed before it cannot be told
    from an object seen for the first time (:func:`observable_changes`).
    """
    places = new_places(gt)
    for f, (depth, K, map_T_camera) in zip(gt["frames"], views, strict=True):
        seen: dict[str, float] = {}
        camera_T_map = invert_transform(np.asarray(map_T_camera, float))
        K = np.asarray(K, float)
        for i, (stamp, pts) in places.items():
            if f["stamp"] + 1e-9 < stamp:
                share = share_in_view(pts, depth, K, camera_T_map, max_range_m)
                iid = str(gt["changes"][i]["instance_id"])
                if share > 0:
                    seen[iid] = max(seen.get(iid, 0.0), round(share, 3))
        f["new_place_in_view"] = seen


def _sightings(
    change: dict[str, Any],
    frames: Sequence[dict[str, Any]],
    min_pixels: int,
    min_vacated: float,
) -> tuple[int, float | None, float | None, bool]:
    """Return (frames showing it before the change, shown after, old place empty, place known).

    The object is shown by a frame with at least ``min_pixels`` pixels of it with a depth
    reading (``visible_in_range`` of the frame truth; all its pixels, ``visible``, for truth
    recorded without it: beyond the sensor's range an RGB-D memory cannot place what the camera
    shows); its old place is seen empty by a frame showing at least ``min_vacated`` of the box
    it left (``vacated_in_view``), and its new place was seen before by a frame before the
    change showing at least ``min_vacated`` of the box it was to take (``new_place_in_view``,
    :func:`mark_new_places`; True for truth recorded without it). Stamps are of the first such
    frame at or after the change.
    """
    iid, t0 = str(change["instance_id"]), float(change["stamp"])
    before = 0
    shown = emptied = None
    recorded = foreseen = False
    for f in frames:
        pixels = f.get("visible_in_range", f.get("visible", {})).get(iid, 0)
        if f["stamp"] + 1e-9 < t0:
            before += int(pixels >= min_pixels)
            ahead = f.get("new_place_in_view")
            recorded |= ahead is not None
            foreseen |= ahead is not None and ahead.get(iid, 0.0) >= min_vacated
            continue
        if shown is None and pixels >= min_pixels:
            shown = float(f["stamp"])
        if emptied is None and f.get("vacated_in_view", {}).get(iid, 0.0) >= min_vacated:
            emptied = float(f["stamp"])
        if shown is not None and emptied is not None:
            break
    return before, shown, emptied, foreseen or not recorded


def first_views(
    gt_changes: Sequence[dict[str, Any]],
    frames: Sequence[dict[str, Any]],
    min_pixels: int = 300,
    min_vacated: float = 0.5,
) -> list[float | None]:
    """Sim time at which each true change could first be seen (None = never after it).

    * APPEARED, STATE_CHANGED: the first frame at or after the change showing the object
      (at least ``min_pixels`` pixels with depth, see :func:`_sightings`);
    * DISAPPEARED: the first frame showing at least ``min_vacated`` of the box it left;
    * MOVED: the first frame by which both have happened: the object seen at its new place and
      its old place seen empty (until then a moved object cannot be told from a second one).
    """
    out: list[float | None] = []
    for c in gt_changes:
        _, shown, emptied, _ = _sightings(c, frames, min_pixels, min_vacated)
        kind = c["kind"]
        if kind in ("APPEARED", "STATE_CHANGED"):
            out.append(shown)
        elif kind == "DISAPPEARED":
            out.append(emptied)
        else:
            both = shown is not None and emptied is not None
            out.append(max(shown, emptied) if both else None)  # type: ignore[type-var]
    return out


@dataclass
class Observable:
    """What the camera showed of one true change (:func:`observable_changes`).

    Attributes:
        kind: the event a memory could make of what it was shown ("" = none: left out of
            recall).
        also: another kind that is right as well ("" = none): MOVED for a move seen only at
            its new place (a memory sure of a unique look-alike may link it at once).
        view: first frame that showed it (the delay runs from here), None when ``kind`` is "".
        shown: first frame showing the object after the change (None = never).
        emptied: first frame showing its old place empty after the change (None = never).
        known: the object was shown before the change in at least ``min_frames_known`` frames.
        foreseen: a frame before the change showed the place the object was to take (True
            for removals and state changes, and for truth recorded without it).
    """

    kind: str
    also: str
    view: float | None
    shown: float | None
    emptied: float | None
    known: bool
    foreseen: bool = True


def observable_changes(
    gt_changes: Sequence[dict[str, Any]],
    frames: Sequence[dict[str, Any]],
    min_pixels: int = 300,
    min_frames_known: int = 2,
    min_vacated: float = 0.5,
) -> list[Observable]:
    """Return, for each true change, the event the delivered frames allow (the rule).

    A memory can only report what the camera showed it. An object is *known* before its change
    when at least ``min_frames_known`` frames before it showed it (the bar for expecting an
    object in memory). An object is *new* at a place only when a frame before the change had
    shown that place (``foreseen``: at least ``min_vacated`` of its box, :func:`_sightings`):
    seen at a place never looked at before, it is an object seen for the first time, which no
    memory can tell from one that stood there all along. A change is judged as the frames show
    it:

    * APPEARED: when the added object is shown at a place shown before;
    * STATE_CHANGED: when a known object is shown after it;
    * DISAPPEARED: when the old place of a known object is seen empty;
    * MOVED of a known object: MOVED when both its new place (the object shown there, the place
      shown before) and its old place (seen empty) are; only the old place: DISAPPEARED there;
      only the new place: APPEARED there (or MOVED, see :attr:`Observable.also`);
    * MOVED of an object not known before: APPEARED at its new place when shown there (the
      place shown before);
    * anything else: nothing (left out of recall; an event that matches it is not false).

    ``frames`` are the frames the memory was given (dropped frames left out).
    """
    out = []
    for c in gt_changes:
        before, shown, emptied, foreseen = _sightings(c, frames, min_pixels, min_vacated)
        foreseen = foreseen or c["kind"] not in ("APPEARED", "MOVED")
        known = before >= min_frames_known
        new_there = shown if foreseen else None  # the object shown where it is new
        kind, also, view = "", "", None
        if c["kind"] == "APPEARED" or (c["kind"] == "MOVED" and not known):
            kind, view = ("APPEARED", new_there) if new_there is not None else ("", None)
        elif not known:
            pass
        elif c["kind"] == "STATE_CHANGED":
            kind, view = ("STATE_CHANGED", shown) if shown is not None else ("", None)
        elif c["kind"] == "DISAPPEARED":
            kind, view = ("DISAPPEARED", emptied) if emptied is not None else ("", None)
        elif new_there is not None and emptied is not None:
            kind, view = "MOVED", max(new_there, emptied)
        elif emptied is not None:
            kind, view = "DISAPPEARED", emptied
        elif new_there is not None:
            kind, also, view = "APPEARED", "MOVED", new_there
        out.append(Observable(kind, also, view, shown, emptied, known, foreseen))
    return out


def pair_changes(
    kind: str,
    gt_changes: Sequence[dict[str, Any]],
    events: Sequence[ChangeEvent],
    max_distance_m: float = 0.5,
) -> list[tuple[int, int]]:
    """Match events of ``kind`` to true changes of ``kind``: (event index, change index) pairs.

    An event pairs with a true change of its label that took effect no later than the event,
    within ``max_distance_m`` of the changed place (the old place for DISAPPEARED, either
    place for STATE_CHANGED); pairs are one-to-one with the least total distance. Indices are
    into the given sequences.
    """
    ev = [j for j, e in enumerate(events) if e.kind.name == kind]
    gt = [i for i, c in enumerate(gt_changes) if c["kind"] == kind]
    if not ev or not gt:
        return []
    cost = np.full((len(ev), len(gt)), np.inf)
    for a, j in enumerate(ev):
        e = events[j]
        pos = np.asarray(e.old_position if kind == "DISAPPEARED" else e.new_position, float)
        for b, i in enumerate(gt):
            c = gt_changes[i]
            if c["label"] != e.label or e.stamp + 1e-6 < c["stamp"]:
                continue
            ref = c["old_position"] if kind == "DISAPPEARED" else c["new_position"]
            d = float(np.linalg.norm(pos - np.asarray(ref, float)))
            if kind == "STATE_CHANGED":  # a door swinging open moves the box: either side
                d = min(d, float(np.linalg.norm(pos - np.asarray(c["old_position"], float))))
            if d <= max_distance_m:
                cost[a, b] = d
    if not np.isfinite(cost).any():
        return []
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
    return sorted(
        (ev[r], gt[c]) for r, c in zip(rows, cols, strict=True) if np.isfinite(cost[r, c])
    )


def change_metrics(
    gt_changes: Iterable[dict[str, Any]],
    events: Iterable[ChangeEvent],
    since_s: float = 0.0,
    max_distance_m: float = 0.5,
    frames: Sequence[dict[str, Any]] | None = None,
    late_after_s: float = 1.0,
    min_view_pixels: int = 300,
) -> dict[str, ChangeMetrics]:
    """Per-kind precision and recall of reported events against true changes after ``since_s``.

    An event matches a true change of the same kind and label when it is stamped at or after the
    change and its position (new for APPEARED/MOVED, old for DISAPPEARED, either for
    STATE_CHANGED) is within ``max_distance_m`` of the change's; matching is one-to-one with
    the least total distance (Hungarian). With the episode's ``frames`` (frame truth), delays
    run from each change's first view (:func:`first_views`); without them from the change
    itself (an upper bound, since the robot may have been elsewhere).
    """
    gts = [c for c in gt_changes if c["stamp"] >= since_s]
    evs = [e for e in events if e.stamp >= since_s]
    views = (
        first_views(gts, frames, min_pixels=min_view_pixels)
        if frames is not None
        else [float(c["stamp"]) for c in gts]
    )
    out = {}
    for kind in KINDS:
        idx = [i for i, c in enumerate(gts) if c["kind"] == kind]
        g_kind = [gts[i] for i in idx]
        e_kind = sorted((e for e in evs if e.kind.name == kind), key=lambda e: e.stamp)
        m = ChangeMetrics(kind=kind, gt=len(g_kind), reported=len(e_kind))
        # event -> true change, one-to-one, least total distance
        pairs = dict(pair_changes(kind, g_kind, e_kind, max_distance_m))
        used = set(pairs.values())
        delays = []
        for j, e in enumerate(e_kind):
            if j not in pairs:
                pos = e.old_position if kind == "DISAPPEARED" else e.new_position
                m.false.append(
                    f"{e.label} {e.object_id} at {e.stamp:.1f} s "
                    f"({', '.join(f'{x:.2f}' for x in np.asarray(pos, float))})"
                )
                continue
            best = pairs[j]
            view = views[idx[best]]
            if frames is not None and view is None:
                continue  # seen too little to say when it was first seen: no delay figure
            start = view if view is not None else float(g_kind[best]["stamp"])
            delays.append(max(0.0, e.stamp - start))
            if delays[-1] > late_after_s + 1e-9:
                name = g_kind[best].get("name", g_kind[best]["label"])
                m.late_names.append(f"{name} {delays[-1]:.1f} s after first view at {start:.1f}")
        m.true_positives = len(used)
        m.missed = [c.get("name", c["label"]) for i, c in enumerate(g_kind) if i not in used]
        m.unviewed = [
            c.get("name", c["label"]) for i, c in zip(idx, g_kind, strict=True) if views[i] is None
        ]
        if e_kind:
            m.precision = len(used) / len(e_kind)
        if g_kind:
            m.recall = len(used) / len(g_kind)
        viewed = [i for i, gi in enumerate(idx) if views[gi] is not None]
        if viewed:
            m.recall_viewed = len(used & set(viewed)) / len(viewed)
        if delays:
            m.median_delay_s = float(np.median(delays))
            m.max_delay_s = float(np.max(delays))
            m.late = sum(1 for d in delays if d > late_after_s + 1e-9)
        out[kind] = m
    return out
