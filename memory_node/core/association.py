"""Detection -> object association: geometric overlap + label + feature, Hungarian assignment.

The candidates of a detection come from the spatial hash (:class:`GridIndex`), so the cost of a
frame depends on the number of detections and of objects near them, not on the map size. The
score of a pair is

    geometric_weight * geo + label_weight * label_agreement + feature_weight * cosine

where ``geo = max(voxel overlap, 0.5 * share of the detection inside the object's box,
0.5 * centre proximity)``. A pair is feasible when ``geo >= min_geometric_score`` and the labels
do not contradict each other (both known and different).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from memory_node.core.config import param
from memory_node.core.fusion import ObjectModel, coarse_keys
from memory_node.core.segmentation import Detection

INFEASIBLE = -np.inf


@dataclass
class AssociationConfig:
    """Matching detections to objects, and re-identification of moved objects."""

    overlap_voxel_m: float = param(
        0.05, "voxel size of the overlap test, metres", min_value=0.005, max_value=1.0
    )
    box_margin_m: float = param(
        0.05, "object boxes are grown by this before the inside test, metres", min_value=0.0
    )
    center_distance_m: float = param(
        0.15, "centres closer than this count as geometric support, metres", min_value=0.0
    )
    search_margin_m: float = param(
        0.1, "margin around a detection's box when looking up candidates, metres", min_value=0.0
    )
    min_geometric_score: float = param(
        0.2, "least geometric agreement of an associated pair", min_value=0.0, max_value=1.0
    )
    geometric_weight: float = param(1.0, "weight of geometric agreement", min_value=0.0)
    label_weight: float = param(0.5, "weight of label agreement", min_value=0.0)
    feature_weight: float = param(0.5, "weight of feature cosine similarity", min_value=0.0)
    label_mismatch_min_overlap: float = param(
        0.6,
        "a detection whose label differs from an object's associates only when this share of "
        "the smaller voxel set overlaps (a flipped label on the same thing), never a mug with "
        "the table under it",
        min_value=0.0,
        max_value=1.01,
    )
    use_appearance: bool = param(
        True,
        "keep a colour descriptor per object and require it to agree when re-identifying a "
        "moved object (tells a removed mug and a new mug apart)",
    )
    min_appearance_similarity: float = param(
        0.4,
        "a detection is not associated to an object seen 3+ times whose colours agree less "
        "than this (Bhattacharyya, 0-1): another instance put where this one stood",
        min_value=0.0,
        max_value=1.0,
    )


@dataclass
class DetectionGeometry:
    """Per-detection quantities reused across its candidate pairs."""

    coarse: np.ndarray
    centers: np.ndarray
    center: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray


def detection_geometry(det: Detection, config: AssociationConfig) -> DetectionGeometry:
    """Coarse keys, voxel centres, centre and box of a detection (metres, map frame)."""
    centers = det.means
    lo = centers.min(axis=0).astype(np.float64)
    hi = centers.max(axis=0).astype(np.float64)
    return DetectionGeometry(
        coarse=coarse_keys(det.means, config.overlap_voxel_m),
        centers=centers,
        center=0.5 * (lo + hi),
        box_min=lo,
        box_max=hi,
    )


def inside_box(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
    """Return (N,) bool: each point lies in the box ``lo``-``hi`` grown by ``margin``."""
    result: np.ndarray = np.all((points >= lo - margin) & (points <= hi + margin), axis=1)
    return result


def geometric_score(
    dg: DetectionGeometry, model: ObjectModel, config: AssociationConfig
) -> tuple[float, float]:
    """Geometric agreement of a detection and an object, and their voxel overlap, in [0, 1]."""
    ok = model.coarse_keys(config.overlap_voxel_m)
    if ok.size == 0 or dg.coarse.size == 0:
        return 0.0, 0.0
    inter = np.intersect1d(dg.coarse, ok, assume_unique=True).size
    overlap = inter / min(dg.coarse.size, ok.size)
    obj = model.obj
    c = dg.centers
    if c.shape[0] > 256:
        c = c[:: c.shape[0] // 256 + 1]
    inside = float(np.mean(inside_box(c, obj.box_min, obj.box_max, config.box_margin_m)))
    prox = 0.0
    if config.center_distance_m > 0:
        d = float(np.linalg.norm(dg.center - obj.center))
        prox = max(0.0, 1.0 - d / config.center_distance_m)
    return max(overlap, 0.5 * inside, 0.5 * prox), overlap


def labels_agree(det_label: str, obj_label: str) -> float | None:
    """1 same label, 0 when one is unknown, None when both known and different."""
    if not det_label or not obj_label:
        return 0.0
    return 1.0 if det_label == obj_label else None


def feature_similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Cosine of two unit-norm features, 0 when either is missing or shapes differ."""
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float(np.dot(a, b))


def pair_score(
    det: Detection,
    dg: DetectionGeometry,
    model: ObjectModel,
    config: AssociationConfig,
) -> float:
    """Association score of a pair, or ``INFEASIBLE``.

    Different known labels are infeasible unless the voxels overlap by at least
    ``label_mismatch_min_overlap`` (the same thing seen again under a flipped label: the vote
    decides the label); such a pair then scores ``-label_weight`` for the disagreement.
    """
    agree = labels_agree(det.label, model.obj.label)
    geo, overlap = geometric_score(dg, model, config)
    if geo < config.min_geometric_score:
        return INFEASIBLE
    if agree is None:
        if overlap < config.label_mismatch_min_overlap:
            return INFEASIBLE
        agree = -1.0
    return (
        config.geometric_weight * geo
        + config.label_weight * agree
        + config.feature_weight * feature_similarity(det.feature, model.obj.feature)
    )


def assign(scores: np.ndarray) -> list[tuple[int, int]]:
    """Maximum-score one-to-one assignment over feasible pairs.

    Args:
        scores: (D, O) float, ``-inf`` where infeasible.

    Returns:
        (detection row, object column) pairs, all feasible.
    """
    if scores.size == 0:
        return []
    feasible = np.isfinite(scores)
    if not feasible.any():
        return []
    cost = np.where(feasible, -scores, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if feasible[r, c]]
