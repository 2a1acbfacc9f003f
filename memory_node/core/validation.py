"""Checks of a loaded memory: a memory file is input like any other.

:func:`validate_snapshot` refuses a :class:`MemorySnapshot` whose fields have the wrong types,
non-finite or out-of-range values, or ids that repeat, so that a file is either refused whole or
loads into a memory that answers every service. Storage back-ends only decode; this module
decides what a valid memory is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from memory_node.core.types import (
    ChangeEvent,
    ChangeKind,
    InvalidInput,
    MemorySnapshot,
    Relation,
    SceneObject,
    Zone,
)

MAX_INDEX = 2**62
"""Largest ``next_object_index`` (and object count) accepted."""

MAX_COUNT = 2**31 - 1
"""Largest observation count accepted (message fields are uint32)."""


def _bad(what: str, why: str) -> InvalidInput:
    return InvalidInput(f"invalid memory: {what} {why}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(what, f"must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(what, "is not valid UTF-8 text") from exc
    return value


def _real(value: Any, what: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(what, f"must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or not low <= v <= high:
        raise _bad(what, f"= {v!r} is not finite or outside [{low}, {high}]")
    return v


def _integer(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _bad(what, f"must be an integer, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise _bad(what, f"= {int(value)} is outside [{low}, {high}]")
    return int(value)


def _array(value: Any, what: str, shape: tuple[int | None, ...], extent: float) -> None:
    if not isinstance(value, np.ndarray):
        raise _bad(what, f"must be an array, got {type(value).__name__}")
    if value.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
    ):
        raise _bad(what, f"has shape {value.shape}, expected {shape}")
    if not np.issubdtype(value.dtype, np.floating) and not np.issubdtype(value.dtype, np.integer):
        raise _bad(what, f"has dtype {value.dtype}")
    if value.size and not (np.isfinite(value).all() and np.abs(value).max() <= extent):
        raise _bad(what, f"has values that are not finite or beyond {extent:g}")


def _object(obj: Any, extent: float) -> None:
    if not isinstance(obj, SceneObject):
        raise _bad("object", f"is a {type(obj).__name__}")
    oid = _text(obj.id, "object id")
    if not oid:
        raise _bad("object id", "is empty")
    w = f"object {oid}"
    for name in ("label", "state", "zone_id"):
        _text(getattr(obj, name), f"{w} {name}")
    _real(obj.label_confidence, f"{w} label_confidence", 0.0, 1.0 + 1e-6)
    if not isinstance(obj.label_votes, dict):
        raise _bad(f"{w} label_votes", "is not a mapping")
    for label, votes in obj.label_votes.items():
        _text(label, f"{w} vote label")
        _real(votes, f"{w} votes of {label!r}", 0.0)
    _array(obj.center, f"{w} center", (3,), extent)
    _array(obj.size, f"{w} size", (3,), 2.0 * extent)
    if (np.asarray(obj.size) < 0).any():
        raise _bad(f"{w} size", f"{obj.size} has negative extents")
    _array(obj.points, f"{w} points", (None, 3), extent)
    for name in ("feature", "appearance"):
        value = getattr(obj, name)
        if value is not None:
            _array(value, f"{w} {name}", (None,), math.inf)
    first = _real(obj.first_seen, f"{w} first_seen")
    last = _real(obj.last_seen, f"{w} last_seen")
    if last < first:
        raise _bad(w, f"was last seen ({last}) before it was first seen ({first})")
    _integer(obj.observations, f"{w} observations", 0, MAX_COUNT)
    if not isinstance(obj.present, (bool, np.bool_)):
        raise _bad(f"{w} present", f"must be a boolean, got {type(obj.present).__name__}")
    _real(obj.miss_count, f"{w} miss_count", 0.0)
    if not isinstance(obj.history, list):
        raise _bad(f"{w} history", "is not a list")
    for stamp, centre in obj.history:
        _real(stamp, f"{w} history stamp")
        _array(centre, f"{w} history position", (3,), extent)


def _zone(zone: Any, extent: float) -> None:
    if not isinstance(zone, Zone):
        raise _bad("zone", f"is a {type(zone).__name__}")
    w = f"zone {_text(zone.id, 'zone id')}"
    _text(zone.label, f"{w} label")
    _array(zone.center, f"{w} center", (3,), extent)
    _array(zone.size, f"{w} size", (3,), 2.0 * extent)
    if (np.asarray(zone.size) < 0).any():
        raise _bad(f"{w} size", "has negative extents")
    if not isinstance(zone.object_ids, list):
        raise _bad(f"{w} object_ids", "is not a list")
    for oid in zone.object_ids:
        _text(oid, f"{w} object id")


def _relation(rel: Any) -> None:
    if not isinstance(rel, Relation):
        raise _bad("relation", f"is a {type(rel).__name__}")
    for name in ("subject_id", "predicate", "object_id"):
        _text(getattr(rel, name), f"relation {name}")
    _real(rel.confidence, "relation confidence")


def _change(i: int, event: Any, extent: float) -> None:
    if not isinstance(event, ChangeEvent):
        raise _bad(f"change {i}", f"is a {type(event).__name__}")
    if not isinstance(event.kind, ChangeKind):
        raise _bad(f"change {i} kind", f"{event.kind!r} is not a change kind")
    for name in ("object_id", "label", "old_state", "new_state"):
        _text(getattr(event, name), f"change {i} {name}")
    _real(event.stamp, f"change {i} stamp")
    _array(event.old_position, f"change {i} old_position", (3,), extent)
    _array(event.new_position, f"change {i} new_position", (3,), extent)


def _list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise _bad(what, f"must be a list, got {type(value).__name__}")
    return value


def validate_snapshot(snap: MemorySnapshot, world_extent_m: float = 1e6) -> None:
    """Raise :class:`InvalidInput` unless ``snap`` is a memory every service can answer from.

    Checks the type of every field, that numbers are finite and in range (confidences in
    [0, 1], counts and sizes not negative, first seen not after last seen, coordinates within
    ``world_extent_m`` of the origin), array shapes, unique object ids and the free-space
    keyframes. The message names the first bad field.
    """
    if not isinstance(snap, MemorySnapshot):
        raise _bad("snapshot", f"is a {type(snap).__name__}")
    seen: set[str] = set()
    for obj in _list(snap.objects, "objects"):
        _object(obj, world_extent_m)
        if obj.id in seen:
            raise _bad(f"object {obj.id}", "appears twice")
        seen.add(obj.id)
    for zone in _list(snap.zones, "zones"):
        _zone(zone, world_extent_m)
    for rel in _list(snap.relations, "relations"):
        _relation(rel)
    for i, event in enumerate(_list(snap.changes, "changes")):
        _change(i, event, world_extent_m)
    _integer(snap.next_object_index, "next_object_index", 0, MAX_INDEX)
    if not isinstance(snap.meta, dict):
        raise _bad("meta", "is not a mapping")
    if snap.free_space is not None:
        snap.free_space.validate()
