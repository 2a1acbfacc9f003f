"""The memory as a plain JSON document: zones -> objects -> relations -> recent changes.

The document follows ``docs/export-schema.json`` (JSON Schema draft 2020-12), whose version is
:data:`SCHEMA_VERSION`. Layout::

    {"schema": "memory_node.export", "version": 1, "frame_id": "map", "stamp": 412.5,
     "zones": [{"id", "label", "center", "size", "objects": [object, ...]}, ...],
     "unzoned_objects": [object, ...],
     "relations": [{"subject_id", "predicate", "object_id", "confidence"}, ...],
     "changes": [{"kind", "object_id", "label", "stamp", "old_position", "new_position",
                  "old_state", "new_state"}, ...]}

An object is ``{"id", "label", "label_confidence", "pose": {"position", "orientation"},
"box": {"center", "size"}, "state", "present", "first_seen", "last_seen", "observations"}``.
Positions and sizes are metres in the map frame, stamps seconds, ``orientation`` a unit
quaternion ``[x, y, z, w]`` (boxes are axis-aligned: always the identity). ``changes`` holds the
most recent ones, newest first. Each object appears exactly once: under the zone named by its
``zone_id``, else in ``unzoned_objects``.

:func:`to_document` builds the document from a :class:`MemorySnapshot`; :func:`from_document`
reads one back (without points, features or free space, which the export leaves out).
"""

from __future__ import annotations

import math
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

SCHEMA_NAME = "memory_node.export"
SCHEMA_VERSION = 1
"""Version of the exported document; raised whenever a field changes meaning or goes away."""

IDENTITY_QUATERNION = [0.0, 0.0, 0.0, 1.0]


def _vec(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, np.float64).reshape(3)]


def _object(obj: SceneObject) -> dict[str, Any]:
    center = _vec(obj.center)
    return {
        "id": obj.id,
        "label": obj.label,
        "label_confidence": float(obj.label_confidence),
        "pose": {"position": center, "orientation": list(IDENTITY_QUATERNION)},
        "box": {"center": center, "size": _vec(obj.size)},
        "state": obj.state,
        "present": bool(obj.present),
        "first_seen": float(obj.first_seen),
        "last_seen": float(obj.last_seen),
        "observations": int(obj.observations),
    }


def _change(event: ChangeEvent) -> dict[str, Any]:
    return {
        "kind": ChangeKind(event.kind).name,
        "object_id": event.object_id,
        "label": event.label,
        "stamp": float(event.stamp),
        "old_position": _vec(event.old_position),
        "new_position": _vec(event.new_position),
        "old_state": event.old_state,
        "new_state": event.new_state,
    }


def to_document(
    snapshot: MemorySnapshot, frame_id: str = "map", max_changes: int = 100
) -> dict[str, Any]:
    """Return the JSON-ready document of ``snapshot``.

    Args:
        snapshot: the memory, e.g. from :func:`memory_node.core.persistence.load_memory`.
        frame_id: frame of every position.
        max_changes: most recent change events kept (newest first); 0 keeps none.

    Raises:
        InvalidInput: a position, size or stamp is not finite (JSON has no NaN).
    """
    if max_changes < 0:
        raise InvalidInput(f"max_changes must be >= 0, got {max_changes}")
    zone_ids = {z.id for z in snapshot.zones}
    by_zone: dict[str, list[dict[str, Any]]] = {z.id: [] for z in snapshot.zones}
    unzoned: list[dict[str, Any]] = []
    for obj in sorted(snapshot.objects, key=lambda o: o.id):
        entry = _object(obj)
        (by_zone[obj.zone_id] if obj.zone_id in zone_ids else unzoned).append(entry)
    zones = [
        {
            "id": z.id,
            "label": z.label,
            "center": _vec(z.center),
            "size": _vec(z.size),
            "objects": by_zone[z.id],
        }
        for z in snapshot.zones
    ]
    recent = list(reversed(snapshot.changes))[:max_changes]
    stamps = [o.last_seen for o in snapshot.objects] + [e.stamp for e in snapshot.changes]
    doc = {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "frame_id": frame_id,
        "stamp": float(max(stamps, default=0.0)),
        "zones": zones,
        "unzoned_objects": unzoned,
        "relations": [
            {
                "subject_id": r.subject_id,
                "predicate": r.predicate,
                "object_id": r.object_id,
                "confidence": float(r.confidence),
            }
            for r in snapshot.relations
        ],
        "changes": [_change(e) for e in recent],
    }
    _check_finite(doc, "document")
    return doc


def memory_document(memory: Any, frame_id: str = "map", max_changes: int = 100) -> dict[str, Any]:
    """Return the document of a live :class:`~memory_node.core.scene_memory.SceneMemory`.

    Reads its objects, relations, zones and newest ``max_changes`` changes (no copy of points or
    free space); call it under the lock that guards the memory.
    """
    newest_first = memory.changes(0.0, "", max_changes) if max_changes > 0 else []
    snapshot = MemorySnapshot(
        objects=list(memory.objects.values()),
        relations=list(memory.relations),
        zones=list(memory.zones),
        changes=list(reversed(newest_first)),
    )
    return to_document(snapshot, frame_id=frame_id, max_changes=max_changes)


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"cannot export: {where} is {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, f"{where}[{i}]")


def from_document(doc: dict[str, Any]) -> MemorySnapshot:
    """Read a document written by :func:`to_document` back into a snapshot.

    Points, features, label votes, histories and free space are not exported, so they come
    back empty; ``changes`` come back oldest first.

    Raises:
        InvalidInput: another schema, a newer version, or a missing field (named).
    """
    if doc.get("schema") != SCHEMA_NAME:
        raise InvalidInput(f"not a {SCHEMA_NAME} document (schema {doc.get('schema')!r})")
    version = doc.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise InvalidInput(f"unsupported {SCHEMA_NAME} version {version!r}")
    try:
        objects: list[SceneObject] = []
        zones: list[Zone] = []

        def add(entry: dict[str, Any], zone_id: str) -> None:
            objects.append(
                SceneObject(
                    id=entry["id"],
                    label=entry["label"],
                    label_confidence=float(entry["label_confidence"]),
                    center=np.array(entry["box"]["center"], np.float64),
                    size=np.array(entry["box"]["size"], np.float64),
                    state=entry["state"],
                    zone_id=zone_id,
                    first_seen=float(entry["first_seen"]),
                    last_seen=float(entry["last_seen"]),
                    observations=int(entry["observations"]),
                    present=bool(entry["present"]),
                )
            )

        for z in doc["zones"]:
            members = z["objects"]
            for entry in members:
                add(entry, z["id"])
            zones.append(
                Zone(
                    id=z["id"],
                    label=z["label"],
                    center=np.array(z["center"], np.float64),
                    size=np.array(z["size"], np.float64),
                    object_ids=[m["id"] for m in members],
                )
            )
        for entry in doc["unzoned_objects"]:
            add(entry, "")
        relations = [
            Relation(r["subject_id"], r["predicate"], r["object_id"], float(r["confidence"]))
            for r in doc["relations"]
        ]
        changes = [
            ChangeEvent(
                kind=ChangeKind[c["kind"]],
                object_id=c["object_id"],
                label=c["label"],
                stamp=float(c["stamp"]),
                old_position=np.array(c["old_position"], np.float64),
                new_position=np.array(c["new_position"], np.float64),
                old_state=c["old_state"],
                new_state=c["new_state"],
            )
            for c in reversed(doc["changes"])
        ]
    except KeyError as err:
        raise InvalidInput(f"{SCHEMA_NAME} document lacks the field {err}") from err
    return MemorySnapshot(objects=objects, relations=relations, zones=zones, changes=changes)
