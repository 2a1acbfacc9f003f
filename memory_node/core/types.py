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
from typing import Any

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


@dataclass(eq=False)
class FreeSpaceKeyframes:
    """Free-space keyframes as exported, saved and restored (see :mod:`~.free_space`).

    Oldest first. Keyframes may differ in size: keyframe ``i`` is
    ``depth[i, :sizes[i, 0], :sizes[i, 1]]`` (the rest of its row is padding).

    Attributes:
        depth: (n, h, w) float16 min-pooled depth, metres along the optical axis; 0 = no
            evidence.
        sizes: (n, 2) int64 (height, width) of each pooled image, each at least 1.
        K: (n, 3, 3) float64 intrinsics of each pooled image.
        camera_T_map: (n, 4, 4) float64 pose of the map in each keyframe's optical frame.
        stamps: (n,) float64 seconds.
        heights: (n, hh, wh) float16 highest map-frame z per block of the surface evidence
            (:mod:`~.support_surface`), NaN = no evidence; keyframe ``i`` is
            ``heights[i, :height_sizes[i, 0], :height_sizes[i, 1]]``. None = none kept.
        height_sizes: (n, 2) int64 (rows, columns) of each keyframe's heights, (0, 0) = none;
            None exactly when ``heights`` is None.
        missing: (n, h, w) integer count of the depth readings each block of ``depth`` lacks
            (its reading is the nearest of the others; 0 in padding). None = no block lacks
            any (files of schema version 4 and older kept only complete blocks).
    """

    depth: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float16))
    sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    K: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    camera_T_map: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    stamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heights: np.ndarray | None = None
    height_sizes: np.ndarray | None = None
    missing: np.ndarray | None = None

    def __len__(self) -> int:
        """Return the number of keyframes."""
        return int(np.shape(self.stamps)[0]) if np.ndim(self.stamps) else 0

    def validate(self) -> None:
        """Raise :class:`InvalidInput` unless the arrays hold consistent, usable keyframes.

        Checks shapes, sizes within the depth array, finite stamps, intrinsics (finite,
        fx, fy > 0), poses (finite, last row 0 0 0 1, rotation near orthonormal) and depth
        readings (no NaN, none negative). The message names the first bad keyframe.
        """
        n = len(self)
        depth, sizes = np.asarray(self.depth), np.asarray(self.sizes)
        K, T = np.asarray(self.K), np.asarray(self.camera_T_map)
        stamps = np.asarray(self.stamps)
        if stamps.ndim != 1:
            raise InvalidInput(f"keyframe stamps has shape {stamps.shape}, expected (n,)")
        for name, arr, shape in (
            ("depth", depth, (n, None, None)),
            ("sizes", sizes, (n, 2)),
            ("K", K, (n, 3, 3)),
            ("camera_T_map", T, (n, 4, 4)),
        ):
            if arr.ndim != len(shape) or any(
                want not in (None, got) for got, want in zip(arr.shape, shape, strict=True)
            ):
                want_s = ", ".join("*" if d is None else str(d) for d in shape)
                raise InvalidInput(f"keyframe {name} has shape {arr.shape}, expected ({want_s})")
        if not np.issubdtype(depth.dtype, np.floating):
            raise InvalidInput(f"keyframe depth must be floating point, got {depth.dtype}")
        if not np.issubdtype(sizes.dtype, np.integer):
            raise InvalidInput(f"keyframe sizes must be integers, got {sizes.dtype}")

        def bad(mask: Any, what: str) -> None:
            if np.any(mask):
                i = int(np.flatnonzero(mask)[0])
                raise InvalidInput(f"keyframe {i} of {n}: {what}")

        bad(~np.isfinite(stamps), "stamp is not finite")
        bad((sizes < 1).any(axis=1), "size is not positive")
        bad((sizes[:, 0] > depth.shape[1]) | (sizes[:, 1] > depth.shape[2]), "size exceeds depth")
        bad(~np.isfinite(K).all(axis=(1, 2)), "K is not finite")
        bad((K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0), "K has fx or fy <= 0")
        bad(~np.isfinite(T).all(axis=(1, 2)), "camera_T_map is not finite")
        bad(np.abs(T[:, 3] - [0.0, 0.0, 0.0, 1.0]).max(axis=1) > 1e-9, "camera_T_map last row")
        R = T[:, :3, :3]
        err = np.abs(np.einsum("kji,kjl->kil", R, R) - np.eye(3)).max(axis=(1, 2))
        bad((err > 0.25) | (np.linalg.det(R) <= 0), "camera_T_map rotation is not orthonormal")
        if n == 0:
            return
        suspect = np.arange(n)
        if depth.dtype == np.float16:  # fast path: bit patterns above +inf are NaN or negative
            suspect = np.flatnonzero(depth.view(np.uint16).reshape(n, -1).max(axis=1) > 0x7C00)
        sub = depth[suspect]
        with np.errstate(invalid="ignore"):
            spoilt = (np.isnan(sub) | (sub < 0)).any(axis=(1, 2))
        bad(np.isin(np.arange(n), suspect[spoilt]), "depth has NaN or negatives")
        if self.missing is not None:
            missing = np.asarray(self.missing)
            if missing.shape != depth.shape or not np.issubdtype(missing.dtype, np.integer):
                raise InvalidInput(
                    f"keyframe missing has shape {missing.shape} and type {missing.dtype}, "
                    f"expected integers of the depth's shape {depth.shape}"
                )
            bad((missing < 0).any(axis=(1, 2)), "missing has negative counts")
        self._validate_heights(n, bad)

    def _validate_heights(self, n: int, bad: Any) -> None:
        if self.heights is None and self.height_sizes is None:
            return
        if self.heights is None or self.height_sizes is None:
            raise InvalidInput("keyframe heights and height_sizes must be given together")
        heights, hsizes = np.asarray(self.heights), np.asarray(self.height_sizes)
        if heights.ndim != 3 or heights.shape[0] != n:
            raise InvalidInput(f"keyframe heights has shape {heights.shape}, expected ({n}, *, *)")
        if hsizes.shape != (n, 2) or not np.issubdtype(hsizes.dtype, np.integer):
            raise InvalidInput(
                f"keyframe height_sizes has shape {hsizes.shape}, expected ({n}, 2)"
            )
        if not np.issubdtype(heights.dtype, np.floating):
            raise InvalidInput(f"keyframe heights must be floating point, got {heights.dtype}")
        bad((hsizes < 0).any(axis=1), "height size is negative")
        over = (hsizes[:, 0] > heights.shape[1]) | (hsizes[:, 1] > heights.shape[2])
        bad(over, "height size exceeds heights")
        bad(np.isinf(heights).any(axis=(1, 2)), "heights has infinities")


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
        free_space: the free-space keyframes, oldest first; None (or empty) when there are none
            (free space disabled, or a file written before they were saved).
    """

    objects: list[SceneObject] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    changes: list[ChangeEvent] = field(default_factory=list)
    next_object_index: int = 0
    meta: dict[str, object] = field(default_factory=dict)
    free_space: FreeSpaceKeyframes | None = None
