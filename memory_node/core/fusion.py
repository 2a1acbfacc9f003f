"""Per-object fusion: voxel sets with hit counts, label votes, features, geometry, history.

Each object keeps its fused points as a sorted int64 voxel-key array with a float32 hit count per
voxel (see :func:`memory_node.core.geometry.voxel_keys`). Fusing a detection is a
``searchsorted`` against the object's keys, so the cost is that of the detection and the object,
never of the whole map. The number of voxels per object is capped (lowest hits dropped first),
so memory stays bounded for a static scene however many frames arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memory_node.core.config import param
from memory_node.core.geometry import key_indices, pack_indices, voxel_keys, voxelize
from memory_node.core.segmentation import Detection
from memory_node.core.types import SceneObject


@dataclass
class MappingConfig:
    """Object map: voxel size, caps, confirmation, maintenance periods."""

    voxel_size_m: float = param(
        0.025, "voxel size of the fused object points, metres", min_value=0.005, max_value=0.5
    )
    max_voxels_per_object: int = param(
        16000,
        "cap on fused voxels per object (least supported dropped); at 2.5 cm voxels 16000 "
        "cover 10 m2 of surface, a sofa, bed or carpet (a lower cap drops the newly seen parts "
        "of a large object at once: its box stays truncated and later views become duplicates)",
        min_value=16,
    )
    box_min_support: float = param(
        1.0,
        "an object's box (centre, size) spans the voxels whose support (sum of the weights of "
        "the readings fused into them: 1 for one reading within depth.full_weight_range_m) "
        "reaches this, or half the object's 75th percentile of support when lower (objects seen "
        "only from far); 0 = all voxels",
        min_value=0.0,
    )
    min_observations_to_confirm: int = param(
        2,
        "frames an object must be seen in before it enters the graph (and APPEARED is emitted)",
        min_value=1,
    )
    tentative_timeout_s: float = param(
        5.0,
        "unconfirmed objects not seen again within this time are dropped, seconds (0 = never: "
        "only when a later view sees through them); one-off partial views at the image border "
        "would otherwise become duplicates when seen once more much later",
        min_value=0,
    )
    history_length: int = param(
        32, "positions kept in each object's history", min_value=1, max_value=10000
    )
    history_min_step_m: float = param(
        0.05,
        "a history entry is added when the centre moved at least this far, metres",
        min_value=0,
    )
    merge_every_n_frames: int = param(
        10, "run the duplicate merge every n accepted frames (0 = never)", min_value=0
    )
    merge_overlap: float = param(
        0.5,
        "merge two objects when this share of the smaller one's voxels (at the association "
        "voxel size) overlaps the other",
        min_value=0.0,
        max_value=1.0,
    )
    # 0.5: on the training change seeds (0-19), large objects seen from far-apart viewpoints
    # (an L-shaped sofa, a coffee table, a carpet) were held as two objects whose boxes mostly
    # overlap but whose points, of different surfaces, hardly do: 36 duplicates -> 26 (small
    # house 4.4 % -> 3.1 %), and a chair's sliver no longer made a false event; no event lost.
    merge_box_overlap: float = param(
        0.5,
        "... or when this share of the smaller one's box lies inside the other's box (two views "
        "of one object that saw different surfaces of it; 0 = off)",
        min_value=0.0,
        max_value=1.0,
    )
    outlier_every_n_observations: int = param(
        5, "remove isolated voxels of an object every n observations (0 = never)", min_value=0
    )
    index_cell_m: float = param(
        0.5, "cell size of the spatial hash of object boxes, metres", min_value=0.05
    )
    patch_size_m: float = param(
        0.25, "patch layer cell size, metres (0 disables the patch layer)", min_value=0.0
    )
    graph_update_every_n_frames: int = param(
        10,
        "recompute relations and zones at most every n frames during ingest; queries and "
        "renders always see an up-to-date graph",
        min_value=1,
    )
    space_sample_every: int = param(
        8,
        "every n-th valid (strided) point of a frame marks its patch as observed space",
        min_value=1,
    )
    depth_confirms: bool = param(
        True,
        "an unconfirmed object counts one more observation when a later frame's depth shows it "
        "again although the segmenter missed it",
    )
    spatial_index: bool = param(
        True,
        "look up association and visibility candidates in the spatial hash (False = test every "
        "object, the naive baseline of the benchmark)",
    )


@dataclass
class ObjectModel:
    """Internal state of one object beyond its public :class:`SceneObject`.

    Attributes:
        obj: the public object (its points/center/size are refreshed from ``keys``).
        index: integer behind ``obj.id``.
        keys: (M,) int64 sorted voxel keys at ``voxel_size_m``.
        means: (M, 3) float32 running mean point of each voxel, metres, map frame.
        hits: (M,) float32 support per voxel: the sum of the weights of the detections' voxels
            fused into it (one per observation when readings are near, less when far).
        confirmed: seen in enough frames to be part of the graph.
        depth_support: 1 once a later frame's depth showed the unconfirmed object again where
            the segmenter missed it (counts as one observation towards confirmation).
        best_view_pixels: largest detection (pixels) whose crop was encoded.
        encoded_at: observation count at the last encoding.
        feature_weight: number of features averaged into ``obj.feature``.
        coarse: cached sorted keys at the association voxel size (None = stale).
        belief: log-odds that the object is still where it is held (see
            :mod:`memory_node.core.change.existence`); None = just detected there (certain).
        belief_stamp: seconds, time of the last belief update.
    """

    obj: SceneObject
    index: int
    keys: np.ndarray
    means: np.ndarray
    hits: np.ndarray
    confirmed: bool = False
    depth_support: int = 0
    best_view_pixels: int = 0
    encoded_at: int = 0
    feature_weight: float = 0.0
    coarse: np.ndarray | None = field(default=None, repr=False)
    belief: float | None = None
    belief_stamp: float = 0.0

    def coarse_keys(self, voxel: float) -> np.ndarray:
        """Sorted unique keys of the object's voxels at ``voxel`` metres (cached)."""
        if self.coarse is None:
            self.coarse = coarse_keys(self.means, voxel)
        return self.coarse


def coarse_keys(points: np.ndarray, coarse: float) -> np.ndarray:
    """Sorted unique (K,) int64 keys of (N, 3) points at the voxel size ``coarse`` metres."""
    if points.shape[0] == 0:
        return np.zeros(0, np.int64)
    out: np.ndarray = np.unique(voxel_keys(points, coarse))
    return out


def make_id(index: int) -> str:
    """Object id of an integer index, e.g. ``obj_000042``."""
    return f"obj_{index:06d}"


def new_model(index: int, det: Detection, stamp: float, config: MappingConfig) -> ObjectModel:
    """Make a tentative object from one detection."""
    obj = SceneObject(id=make_id(index), first_seen=stamp, last_seen=stamp, observations=1)
    model = ObjectModel(
        obj=obj,
        index=index,
        keys=det.keys.copy(),
        means=det.means.copy(),
        hits=_det_weights(det),
    )
    _vote(obj, det)
    if det.state:
        obj.state = det.state
    _cap(model, config)
    refresh_geometry(model, config, stamp, record_history=True)
    return model


def _det_weights(det: Detection) -> np.ndarray:
    """(M,) float32 support a detection adds to each of its voxels (1 when unweighted)."""
    if det.weights is None:
        return np.ones(det.keys.size, np.float32)
    return np.maximum(np.asarray(det.weights, np.float32), np.float32(1e-3))


def _vote(obj: SceneObject, det: Detection) -> None:
    if det.label:
        obj.label_votes[det.label] = obj.label_votes.get(det.label, 0.0) + max(det.score, 1e-3)
    if obj.label_votes:
        best = max(obj.label_votes.items(), key=lambda kv: kv[1])
        total = sum(obj.label_votes.values())
        obj.label = best[0]
        obj.label_confidence = float(best[1] / total) if total > 0 else 0.0


def fuse(model: ObjectModel, det: Detection, stamp: float, config: MappingConfig) -> None:
    """Add an associated detection to ``model``: voxels, votes, counts, times (not state)."""
    keys, means, hits = model.keys, model.means, model.hits
    w = _det_weights(det)
    if keys.size:
        idx = np.minimum(np.searchsorted(keys, det.keys), keys.size - 1)
        found = keys[idx] == det.keys
        at = idx[found]  # keys are unique on both sides: no repeated index
        h = hits[at]
        wf = w[found]
        means = means.copy()
        means[at] = (means[at] * h[:, None] + det.means[found] * wf[:, None]) / (h + wf)[:, None]
        hits = hits.copy()
        hits[at] = h + wf
        new = ~found
    else:
        new = np.ones(det.keys.size, dtype=bool)
    if new.any():
        keys = np.concatenate([keys, det.keys[new]])
        means = np.concatenate([means, det.means[new]])
        hits = np.concatenate([hits, w[new]])
        order = np.argsort(keys, kind="stable")
        keys, means, hits = keys[order], means[order], hits[order]
    model.keys, model.means, model.hits = keys, means, hits
    obj = model.obj
    obj.observations += 1
    obj.last_seen = max(obj.last_seen, stamp)
    obj.miss_count = 0.0
    _vote(obj, det)
    _cap(model, config)
    if (
        config.outlier_every_n_observations
        and obj.observations % config.outlier_every_n_observations == 0
    ):
        remove_outliers(model)
    refresh_geometry(model, config, stamp, record_history=True)


def replace_geometry(
    model: ObjectModel, det: Detection, stamp: float, config: MappingConfig
) -> None:
    """Replace the voxels of a moved object by the detection's (no ghost left behind)."""
    model.keys = det.keys.copy()
    model.means = det.means.copy()
    model.hits = _det_weights(det)
    obj = model.obj
    obj.observations += 1
    obj.last_seen = max(obj.last_seen, stamp)
    obj.miss_count = 0.0
    _vote(obj, det)
    _cap(model, config)
    refresh_geometry(model, config, stamp, record_history=True)


def _cap(model: ObjectModel, config: MappingConfig) -> None:
    n = config.max_voxels_per_object
    if model.keys.size <= n:
        return
    keep = np.argpartition(-model.hits, n - 1)[:n]
    keep.sort()
    model.keys = model.keys[keep]
    model.means = model.means[keep]
    model.hits = model.hits[keep]


def remove_outliers(model: ObjectModel) -> int:
    """Drop voxels with no occupied 26-neighbour, unless that would empty the object.

    Returns:
        Number of voxels removed.
    """
    keys = model.keys
    if keys.size < 8:
        return 0
    idx = key_indices(keys)
    has_neighbour = np.zeros(keys.size, dtype=bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                if dx == dy == dz == 0:
                    continue
                nk = pack_indices(idx + np.array([dx, dy, dz]))
                pos = np.minimum(np.searchsorted(keys, nk), keys.size - 1)
                has_neighbour |= keys[pos] == nk
    removed = int((~has_neighbour).sum())
    if removed and removed < keys.size:
        model.keys = keys[has_neighbour]
        model.means = model.means[has_neighbour]
        model.hits = model.hits[has_neighbour]
        model.coarse = None
        return removed
    return 0


def refresh_geometry(
    model: ObjectModel, config: MappingConfig, stamp: float, record_history: bool
) -> None:
    """Recompute points, box and (optionally) history of ``model.obj`` from its voxels.

    ``obj.points`` holds every voxel; the box only the well supported ones (see
    :func:`box_voxels`), so that a few deep, noisy readings do not stretch it.
    """
    model.coarse = None
    obj = model.obj
    if model.keys.size == 0:
        obj.points = np.zeros((0, 3), np.float32)
        return
    obj.points = model.means
    pts = model.means[box_voxels(model.hits, config.box_min_support)]
    lo = pts.min(axis=0).astype(np.float64)
    hi = pts.max(axis=0).astype(np.float64)
    obj.center = 0.5 * (lo + hi)
    obj.size = hi - lo
    if record_history:
        hist = obj.history
        if (
            not hist
            or float(np.linalg.norm(hist[-1][1] - obj.center)) >= config.history_min_step_m
        ):
            hist.append((float(stamp), obj.center.copy()))
            if len(hist) > config.history_length:
                del hist[: len(hist) - config.history_length]


def box_voxels(hits: np.ndarray, min_support: float) -> np.ndarray:
    """Which voxels an object's box spans.

    Args:
        hits: (M,) float support of each voxel (M >= 1).
        min_support: support a voxel needs; objects seen only from far (most voxels below it)
            need half the 75th percentile of their supports instead.

    Returns:
        (M,) bool, never all False.
    """
    if min_support <= 0 or hits.size == 0:
        return np.ones(hits.size, dtype=bool)
    threshold = min(float(min_support), 0.5 * float(np.percentile(hits, 75)))
    keep: np.ndarray = hits >= threshold * (1.0 - 1e-6)
    return keep


def merge_models(keep: ObjectModel, drop: ObjectModel, config: MappingConfig) -> None:
    """Fold ``drop`` into ``keep`` (duplicates of one object); ``drop`` is then discarded."""
    keys = np.concatenate([keep.keys, drop.keys])
    hits = np.concatenate([keep.hits, drop.hits]).astype(np.float64)
    means = np.concatenate([keep.means, drop.means]).astype(np.float64)
    uk, inv = np.unique(keys, return_inverse=True)
    uh = np.bincount(inv, weights=hits, minlength=uk.size)
    um = np.empty((uk.size, 3), np.float32)
    for j in range(3):
        um[:, j] = np.bincount(inv, weights=means[:, j] * hits, minlength=uk.size) / uh
    keep.keys, keep.means, keep.hits = uk, um, uh.astype(np.float32)
    a, b = keep.obj, drop.obj
    for lab, v in b.label_votes.items():
        a.label_votes[lab] = a.label_votes.get(lab, 0.0) + v
    if a.label_votes:
        best = max(a.label_votes.items(), key=lambda kv: kv[1])
        a.label = best[0]
        a.label_confidence = float(best[1] / sum(a.label_votes.values()))
    if b.feature is not None:
        if a.feature is None:
            a.feature = b.feature.copy()
            keep.feature_weight = drop.feature_weight
        else:
            wa, wb = max(keep.feature_weight, 1.0), max(drop.feature_weight, 1.0)
            f = a.feature * wa + b.feature * wb
            a.feature = (f / max(float(np.linalg.norm(f)), 1e-12)).astype(np.float32)
            keep.feature_weight = wa + wb
    a.first_seen = min(a.first_seen, b.first_seen)
    if b.last_seen > a.last_seen:
        a.last_seen = b.last_seen
        if b.state:
            a.state = b.state
    a.observations += b.observations
    a.present = a.present or b.present
    a.miss_count = min(a.miss_count, b.miss_count)
    keep.confirmed = keep.confirmed or drop.confirmed
    _cap(keep, config)
    refresh_geometry(keep, config, a.last_seen, record_history=False)


def update_feature(model: ObjectModel, feature: np.ndarray, max_weight: float = 100.0) -> None:
    """Average a unit-norm feature into the object's (weight capped to keep adapting)."""
    obj = model.obj
    f = np.asarray(feature, np.float32)
    if obj.feature is None or obj.feature.shape != f.shape:
        obj.feature = f.copy()
        model.feature_weight = 1.0
        return
    w = min(model.feature_weight, max_weight)
    m = obj.feature * w + f
    obj.feature = (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)
    model.feature_weight = w + 1.0


def models_from_objects(objects: list[SceneObject], config: MappingConfig) -> list[ObjectModel]:
    """Rebuild the internal models of loaded objects (voxels from their points), vectorized.

    Saved points are voxel means, one per voxel; objects whose points share voxels (saved with
    another voxel size) are re-voxelized. ``index`` is left at -1 for the caller to set.
    """
    pts_list = [np.asarray(o.points, np.float32).reshape(-1, 3) for o in objects]
    counts = np.array([p.shape[0] for p in pts_list], dtype=np.int64)
    all_pts = np.concatenate(pts_list) if pts_list else np.zeros((0, 3), np.float32)
    all_keys = voxel_keys(all_pts, config.voxel_size_m)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    models = []
    for i, obj in enumerate(objects):
        pts = pts_list[i]
        keys = all_keys[bounds[i] : bounds[i + 1]]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if keys.size < 2 or bool(np.all(keys[1:] != keys[:-1])):
            means = pts[order]
        else:
            keys, means = voxelize(pts, config.voxel_size_m)
        hits = np.full(keys.size, float(max(1, min(obj.observations, 10))), np.float32)
        model = ObjectModel(obj=obj, index=-1, keys=keys, means=means, hits=hits, confirmed=True)
        if obj.feature is not None:
            model.feature_weight = float(max(1, min(obj.observations, 100)))
        models.append(model)
    return models
