"""Data model shared by every part of the core.

Plain dataclasses holding numpy arrays; no ROS types. Conventions:

* positions are metres in the ``map`` frame;
* times are seconds (float) on the clock that stamped the frames (sim time or wall time);
* transforms are named ``a_T_b``: a (4, 4) float64 matrix mapping b-frame points into frame a;
* the camera optical frame is z forward, x right, y down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class InvalidInput(ValueError):
    """A frame or request that the core refuses; the message says why. Memory is unchanged."""


@dataclass
class Frame:
    """One posed RGB-D observation, optionally with instance masks.

    Attributes:
        stamp: seconds.
        rgb: (H, W, 3) uint8, RGB order.
        depth: (H, W) float32, metres along the optical axis; 0 or NaN means no reading.
        K: (3, 3) float64 pinhole intrinsics (fx, fy, cx, cy).
        map_T_camera: (4, 4) float64 pose of the camera optical frame in the map frame.
        instance: optional (H, W) int32 instance ids, 0 = no instance.
        instance_labels: optional id -> (label, score) for the ids of ``instance``; ids of the
            image missing here are ignored.
        instance_states: optional id -> state string (e.g. "open") when the segmenter or
            simulator knows it.
    """

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    map_T_camera: np.ndarray
    instance: np.ndarray | None = None
    instance_labels: dict[int, tuple[str, float]] | None = None
    instance_states: dict[int, str] | None = None


@dataclass
class SceneObject:
    """One object of the long-term memory (an instance node of the graph).

    Attributes:
        id: stable id, e.g. "obj_000042"; never reused.
        label: best label by vote, "" when unknown.
        label_confidence: share of the votes held by ``label``, in [0, 1].
        label_votes: label -> accumulated score.
        center: (3,) float64 axis-aligned box centre, metres, map frame.
        size: (3,) float64 box extents, metres.
        points: (N, 3) float32 voxel centres of the object's fused points, map frame, capped.
        feature: optional (D,) float32 unit-norm open-vocabulary feature (running mean).
        state: e.g. "open", "closed", "on"; "" when unknown.
        zone_id: id of the zone holding the object, "" when none.
        first_seen, last_seen: seconds.
        observations: number of frames the object was associated in.
        present: False once visibility reasoning marked it absent (kept as "last seen").
        miss_count: accumulated evidence of absence since the last observation.
        history: bounded list of (stamp, (3,) centre) of past positions, oldest first.
        appearance: optional (D,) float32 unit colour descriptor (running mean; see
            :mod:`memory_node.core.appearance`), used to tell instances of one label apart.
    """

    id: str
    label: str = ""
    label_confidence: float = 0.0
    label_votes: dict[str, float] = field(default_factory=dict)
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    size: np.ndarray = field(default_factory=lambda: np.zeros(3))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    feature: np.ndarray | None = None
    state: str = ""
    zone_id: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    observations: int = 0
    present: bool = True
    miss_count: float = 0.0
    history: list[tuple[float, np.ndarray]] = field(default_factory=list)
    appearance: np.ndarray | None = None

    @property
    def box_min(self) -> np.ndarray:
        """(3,) lower corner of the axis-aligned box, metres, map frame."""
        return np.asarray(self.center) - 0.5 * np.asarray(self.size)

    @property
    def box_max(self) -> np.ndarray:
        """(3,) upper corner of the axis-aligned box, metres, map frame."""
        return np.asarray(self.center) + 0.5 * np.asarray(self.size)


@dataclass
class Relation:
    """A directed edge ``subject predicate object``, e.g. mug on table."""

    subject_id: str
    predicate: str
    object_id: str
    confidence: float = 1.0


@dataclass
class Zone:
    """A zone/room node: an axis-aligned region holding objects, labelled from its contents."""

    id: str
    label: str
    center: np.ndarray
    size: np.ndarray
    object_ids: list[str] = field(default_factory=list)


class ChangeKind(enum.IntEnum):
    """Kinds of object change; values equal the ObjectChange message constants."""

    APPEARED = 0
    MOVED = 1
    DISAPPEARED = 2
    STATE_CHANGED = 3


@dataclass
class ChangeEvent:
    """One change of one object, produced online by the long-term memory."""

    kind: ChangeKind
    object_id: str
    label: str
    stamp: float
    old_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    new_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    old_state: str = ""
    new_state: str = ""


@dataclass
class QueryRequest:
    """An object query.

    Attributes:
        text: open-vocabulary text, "" for no text ranking.
        near: optional (3,) point, metres, map frame; rank/filter by distance to it.
        radius: metres, 0 = no limit (only used with ``near``).
        zone_id: "" = any zone.
        k: number of results, 0 = default.
        include_embeddings: return features with the objects.
    """

    text: str = ""
    near: np.ndarray | None = None
    radius: float = 0.0
    zone_id: str = ""
    k: int = 0
    include_embeddings: bool = False


@dataclass
class ScoredObject:
    """A query answer: an object and its relevance score (0 when no ranking applied)."""

    obj: SceneObject
    score: float


@dataclass
class MemorySnapshot:
    """Everything the long-term and short-term memories persist, as saved and loaded.

    Attributes:
        objects: all objects, present and absent.
        relations: current relations.
        zones: current zones.
        changes: the short-term memory's events, oldest first.
        next_object_index: the next integer used to make an object id (ids are never reused).
        meta: free-form metadata (config used, clock of the last frame, ...), JSON-serialisable.
    """

    objects: list[SceneObject] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    changes: list[ChangeEvent] = field(default_factory=list)
    next_object_index: int = 0
    meta: dict[str, object] = field(default_factory=dict)
