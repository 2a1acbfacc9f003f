"""Ground-truth records of a simulation: object states, changes over time, per-frame visibility.

All positions are metres in the map frame, times are sim seconds. Instance ids are the ids of the
simulator's instance image (stable per object for the whole run, never reused).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory_node.core.types import ChangeEvent, ChangeKind
from memory_node.evaluation import ObjectTruth

__all__ = ["ChangeTruth", "FrameTruth", "GroundTruthLog", "ObjectTruth", "support_relations"]


@dataclass
class ChangeTruth:
    """One change made to the scene: the change event, and where the truth says it happened.

    Attributes:
        event: the change as the memory should report it (``object_id`` is the scene name,
            e.g. "kitchen/mug_1"; positions are box centres, zeros for the missing side of
            APPEARED/DISAPPEARED; states before/after; ``stamp`` is when the change took effect,
            visible from the first frame at or after it).
        instance_id: the object's id in the instance image.
        old_room, new_room: rooms before/after.
    """

    event: ChangeEvent
    instance_id: int
    old_room: str = ""
    new_room: str = ""

    @property
    def kind(self) -> ChangeKind:
        """APPEARED, MOVED, DISAPPEARED or STATE_CHANGED."""
        return self.event.kind

    @property
    def stamp(self) -> float:
        """Sim seconds when the change took effect."""
        return self.event.stamp

    @property
    def name(self) -> str:
        """Scene name of the object."""
        return self.event.object_id

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        e = self.event
        return {
            "kind": e.kind.name,
            "stamp": e.stamp,
            "instance_id": self.instance_id,
            "name": e.object_id,
            "label": e.label,
            "old_position": _list(e.old_position),
            "new_position": _list(e.new_position),
            "old_room": self.old_room,
            "new_room": self.new_room,
            "old_state": e.old_state,
            "new_state": e.new_state,
        }


@dataclass
class FrameTruth:
    """What one rendered frame really showed.

    Attributes:
        index: frame number from 0.
        stamp: sim seconds (equals the Frame's stamp).
        map_T_camera: (4, 4) true pose of the optical frame (the Frame may carry a noisy one).
        room: room holding the camera ("" when outside every room).
        visible: instance id -> pixel count in the noise-free instance image.
        visible_in_range: instance id -> count of those pixels with a depth reading (within the
            sensor's range): what an RGB-D memory can place.
        vacated_in_view: instance id -> share (0-1] of the box the object left (moved away or
            removed) that is in view, within range and not hidden: when the old place was seen.
    """

    index: int
    stamp: float
    map_T_camera: np.ndarray
    room: str
    visible: dict[int, int]
    vacated_in_view: dict[int, float] = field(default_factory=dict)
    visible_in_range: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        return {
            "index": self.index,
            "stamp": self.stamp,
            "map_T_camera": [_list(row) for row in self.map_T_camera],
            "room": self.room,
            "visible": {str(k): v for k, v in sorted(self.visible.items())},
            "visible_in_range": {str(k): v for k, v in sorted(self.visible_in_range.items())},
            "vacated_in_view": {str(k): v for k, v in sorted(self.vacated_in_view.items())},
        }


def support_relations(
    objects: list[ObjectTruth], tolerance_m: float = 0.03
) -> list[dict[str, Any]]:
    """Return the "on" relations of present objects (what rests on what).

    B supports A when A's box centre (x, y) lies inside B's box and A's bottom lies above B's
    bottom (by more than 5 mm: things standing on the floor side by side are not on each other)
    and at most ``tolerance_m`` above B's top (a table top, a shelf board, a sofa seat). Among
    several candidates the one standing highest wins (a mug on a tray on a table is on the
    tray); ties go to the top closest to A's bottom. Objects on the floor have no relation.

    Returns:
        dicts with ``subject``/``object`` names and instance ids, ``predicate`` "on".
    """
    present = [o for o in objects if o.present]
    out = []
    for a in present:
        bottom = float(a.box_min[2])
        candidates = [
            b
            for b in present
            if b is not a
            and np.all(b.box_min[:2] <= a.center[:2])
            and np.all(a.center[:2] <= b.box_max[:2])
            and b.box_min[2] + 0.005 < bottom <= b.box_max[2] + tolerance_m
        ]
        if not candidates:
            continue
        best = min(
            candidates,
            key=lambda b: (-round(float(b.box_min[2]), 2), abs(float(b.box_max[2]) - bottom)),
        )
        out.append(
            {
                "subject": a.name,
                "subject_id": a.instance_id,
                "predicate": "on",
                "object": best.name,
                "object_id": best.instance_id,
            }
        )
    return out


class GroundTruthLog:
    """Accumulates the ground truth of a run and writes it as one JSON document.

    The document holds: ``meta``; ``rooms``; ``objects`` (one entry per instance id with its
    ``history``: the object's state at the start and after each of its changes, each with a
    ``stamp``, and its ``visibility``: frames seen, most pixels, first/last stamp seen);
    ``changes`` (chronological); ``frames`` (per frame: stamp, true pose, room, visible ids with
    pixel counts).
    """

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.meta: dict[str, Any] = dict(meta or {})
        self.rooms: list[dict[str, Any]] = []
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.changes: list[ChangeTruth] = []
        self.frames: list[FrameTruth] = []

    def record_object(self, stamp: float, truth: ObjectTruth) -> None:
        """Append the state of an object valid from ``stamp`` on."""
        entry = truth.to_json()
        entry["stamp"] = stamp
        self.history.setdefault(truth.instance_id, []).append(entry)

    def record_change(self, change: ChangeTruth) -> None:
        """Append one change."""
        self.changes.append(change)

    def record_frame(self, frame: FrameTruth) -> None:
        """Append one frame's truth."""
        self.frames.append(frame)

    def visibility(self) -> dict[int, dict[str, Any]]:
        """Return per instance id: frames seen, most pixels, first and last stamp seen.

        Computed from the recorded frames (noise-free instance images); ids never seen are
        absent.
        """
        out: dict[int, dict[str, Any]] = {}
        for f in self.frames:
            for iid, count in f.visible.items():
                v = out.setdefault(
                    iid,
                    {"frames": 0, "max_pixels": 0, "first_seen": f.stamp, "last_seen": f.stamp},
                )
                v["frames"] += 1
                v["max_pixels"] = max(v["max_pixels"], count)
                v["last_seen"] = f.stamp
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the whole log as a JSON-serialisable dictionary."""
        seen = self.visibility()
        never = {"frames": 0, "max_pixels": 0, "first_seen": None, "last_seen": None}
        objects = []
        for iid in sorted(self.history):
            entries = self.history[iid]
            last = entries[-1]
            objects.append(
                {
                    "instance_id": iid,
                    "name": last["name"],
                    "label": last["label"],
                    "static": last["static"],
                    "visibility": seen.get(iid, never),
                    "history": entries,
                }
            )
        return {
            "meta": self.meta,
            "rooms": self.rooms,
            "objects": objects,
            "changes": [c.to_json() for c in self.changes],
            "frames": [f.to_json() for f in self.frames],
        }

    def save(self, path: str) -> None:
        """Write the JSON document atomically to ``path`` (parent folders are created)."""
        save_json(self.to_json(), path)


def save_json(document: dict[str, Any], path: str) -> None:
    """Write ``document`` as JSON to ``path`` atomically (temporary file, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as stream:
            json.dump(document, stream)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _list(values: Any) -> list[Any]:
    """Return a nested list of Python floats (rounded to 1e-6) from an array-like."""
    arr = np.asarray(values, dtype=np.float64)
    return np.round(arr, 6).tolist()
