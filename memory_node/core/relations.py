"""Spatial relations between present objects: ``in``, ``on`` and ``near``.

For an ordered pair (subject s, parent p) of present objects, with axis-aligned boxes:

* ``in``: p's box is larger than s's and at least ``in_min_fraction`` of s's points (of its box
  volume when it has no points) lie inside p's box grown by ``in_margin_m``;
* ``on`` (support): not ``in``; s's bottom is within ``contact_tolerance_m`` of p's top,
  s's centre is above p's centre, and the xy overlap covers at least ``min_support_overlap`` of
  s's footprint;
* ``near``: neither of the above in either direction and the gap between the two boxes is at
  most ``near_distance_m``. ``near`` is symmetric and emitted once, with the smaller id as the
  subject.

Candidate pairs come from an xy spatial hash (cells of ``cell_size_m``; each box is entered in
the cells its footprint grown by ``near_distance_m / 2`` covers), so the cost grows with the
number of nearby pairs, not with N^2. Each predicate depends on its pair only, so
:func:`update_relations` recomputing the pairs of changed objects gives exactly the result of a
full :func:`compute_relations`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from memory_node.core.config import param
from memory_node.core.types import Relation, SceneObject

_LOG = logging.getLogger(__name__)

_MAX_CELLS_PER_OBJECT = 4096


@dataclass
class RelationConfig:
    """Thresholds of the spatial relations."""

    contact_tolerance_m: float = param(
        0.05,
        "`on`: largest gap (or overlap) between the subject's bottom and the parent's top",
        min_value=0.0,
        max_value=1.0,
    )
    min_support_overlap: float = param(
        0.3,
        "`on`: least share of the subject's xy footprint overlapping the parent's",
        min_value=0.0,
        max_value=1.0,
    )
    in_min_fraction: float = param(
        0.95,
        "`in`: least share of the subject's points inside the parent's box",
        min_value=0.0,
        max_value=1.0,
    )
    in_margin_m: float = param(
        0.02, "`in`: growth of the parent's box for the inside test", min_value=0.0, max_value=0.5
    )
    near_distance_m: float = param(
        0.5, "`near`: largest gap between two boxes", min_value=0.0, max_value=10.0
    )
    cell_size_m: float = param(
        1.0, "cell size of the xy spatial hash for candidate pairs", min_value=0.05
    )


def _candidate_pairs(
    mins: np.ndarray, maxs: np.ndarray, config: RelationConfig, only: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unordered index pairs (i < j), each once, whose grown xy footprints share a hash cell.

    Args:
        mins: (N, 3) lower box corners, metres, map frame.
        maxs: (N, 3) upper box corners.
        config: hash cell size and near distance.
        only: optional (N,) bool; keep pairs with at least one flagged member.
    """
    n = len(mins)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    grow = 0.5 * config.near_distance_m + 1e-6
    cell = config.cell_size_m
    lo = np.floor((mins[:, :2] - grow) / cell).astype(np.int64)
    hi = np.floor((maxs[:, :2] + grow) / cell).astype(np.int64)
    buckets: dict[tuple[int, int], list[int]] = {}
    big = []  # objects spanning too many cells are paired with every object instead
    cells = (hi[:, 0] - lo[:, 0] + 1) * (hi[:, 1] - lo[:, 1] + 1)
    for i in range(n):
        if cells[i] > _MAX_CELLS_PER_OBJECT:
            big.append(i)
            continue
        for cx in range(lo[i, 0], hi[i, 0] + 1):
            for cy in range(lo[i, 1], hi[i, 1] + 1):
                buckets.setdefault((cx, cy), []).append(i)
    firsts, seconds = [], []
    for (cx, cy), members in buckets.items():
        if len(members) < 2:
            continue
        m = np.asarray(members, dtype=np.int64)  # increasing, so m[a] < m[b]
        a, b = np.triu_indices(len(m), k=1)
        mi, mj = m[a], m[b]
        # two boxes share every cell of the overlap of their cell ranges: keep the pair only in
        # its lowest one, so each pair comes out once (no np.unique over all pairs)
        keep = (np.maximum(lo[mi, 0], lo[mj, 0]) == cx) & (np.maximum(lo[mi, 1], lo[mj, 1]) == cy)
        firsts.append(mi[keep])
        seconds.append(mj[keep])
    if big:
        is_big = np.zeros(n, dtype=bool)
        is_big[big] = True
        everyone = np.arange(n, dtype=np.int64)
        for i in big:
            others = everyone[(~is_big) | (everyone > i)]
            others = others[others != i]
            firsts.append(np.minimum(others, i))
            seconds.append(np.maximum(others, i))
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i_all, j_all = np.concatenate(firsts), np.concatenate(seconds)
    if only is not None:
        keep_only = only[i_all] | only[j_all]
        i_all, j_all = i_all[keep_only], j_all[keep_only]
    return i_all, j_all


def _inside_fraction(subject: SceneObject, pmin: np.ndarray, pmax: np.ndarray) -> float:
    points = np.asarray(subject.points)
    if len(points):
        inside = np.all((points >= pmin) & (points <= pmax), axis=1)
        return float(inside.mean())
    smin, smax = subject.box_min, subject.box_max
    extent = np.clip(np.minimum(smax, pmax) - np.maximum(smin, pmin), 0.0, None)
    volume = float(np.prod(smax - smin))
    return float(np.prod(extent)) / volume if volume > 0 else 0.0


def _pair_relations(
    objects: Sequence[SceneObject],
    mins: np.ndarray,
    maxs: np.ndarray,
    i_idx: np.ndarray,
    j_idx: np.ndarray,
    config: RelationConfig,
) -> list[Relation]:
    relations: list[Relation] = []
    if len(i_idx) == 0:
        return relations
    centers = 0.5 * (mins + maxs)
    sizes = maxs - mins
    volume = np.prod(sizes, axis=1)
    footprint = sizes[:, 0] * sizes[:, 1]
    tol = config.contact_tolerance_m
    related = np.zeros(len(i_idx), dtype=bool)
    for s_idx, p_idx in ((i_idx, j_idx), (j_idx, i_idx)):
        # "in": prefilter on boxes, then count points
        overlap = np.clip(
            np.minimum(maxs[s_idx], maxs[p_idx]) - np.maximum(mins[s_idx], mins[p_idx]), 0, None
        )
        inter = np.prod(overlap, axis=1)
        maybe_in = (volume[p_idx] > volume[s_idx]) & (inter >= 0.5 * volume[s_idx] - 1e-12)
        is_in = np.zeros(len(s_idx), dtype=bool)
        for k in np.flatnonzero(maybe_in):
            s, p = objects[s_idx[k]], objects[p_idx[k]]
            frac = _inside_fraction(
                s, mins[p_idx[k]] - config.in_margin_m, maxs[p_idx[k]] + config.in_margin_m
            )
            if frac >= config.in_min_fraction:
                is_in[k] = True
                relations.append(Relation(s.id, "in", p.id, round(frac, 4)))
        # "on": contact of the subject's bottom with the parent's top, overlapping footprints
        gap = mins[s_idx, 2] - maxs[p_idx, 2]
        xy_overlap = overlap[:, 0] * overlap[:, 1]
        share = np.where(
            footprint[s_idx] > 0,
            xy_overlap / np.maximum(footprint[s_idx], 1e-12),
            np.all(
                (centers[s_idx, :2] >= mins[p_idx, :2]) & (centers[s_idx, :2] <= maxs[p_idx, :2]),
                axis=1,
            ).astype(np.float64),
        )
        is_on = (
            ~is_in
            & (np.abs(gap) <= tol)
            & (centers[s_idx, 2] > centers[p_idx, 2])
            & (share >= config.min_support_overlap)
        )
        for k in np.flatnonzero(is_on):
            conf = min(1.0, float(share[k])) * (1.0 - 0.5 * abs(float(gap[k])) / max(tol, 1e-9))
            relations.append(
                Relation(objects[s_idx[k]].id, "on", objects[p_idx[k]].id, round(conf, 4))
            )
        related |= is_in | is_on
    # "near": box gap, for pairs without a support/containment relation
    sep = np.clip(np.maximum(mins[i_idx] - maxs[j_idx], mins[j_idx] - maxs[i_idx]), 0, None)
    box_gap = np.linalg.norm(sep, axis=1)
    is_near = ~related & (box_gap <= config.near_distance_m)
    d = max(config.near_distance_m, 1e-9)
    for k in np.flatnonzero(is_near):
        a, b = objects[i_idx[k]].id, objects[j_idx[k]].id
        if b < a:
            a, b = b, a
        relations.append(Relation(a, "near", b, round(1.0 - float(box_gap[k]) / d, 4)))
    return relations


def _boxes(objects: Sequence[SceneObject]) -> tuple[np.ndarray, np.ndarray]:
    if not objects:
        return np.zeros((0, 3)), np.zeros((0, 3))
    centers = np.array([np.asarray(o.center, dtype=np.float64).reshape(3) for o in objects])
    half = 0.5 * np.abs(
        np.array([np.asarray(o.size, dtype=np.float64).reshape(3) for o in objects])
    )
    return centers - half, centers + half


def _sorted(relations: list[Relation]) -> list[Relation]:
    return sorted(relations, key=lambda r: (r.subject_id, r.predicate, r.object_id))


def compute_relations(objects: Sequence[SceneObject], config: RelationConfig) -> list[Relation]:
    """All relations between present objects, sorted by (subject, predicate, object)."""
    present = [o for o in objects if o.present and np.isfinite(o.center).all()]
    mins, maxs = _boxes(present)
    i_idx, j_idx = _candidate_pairs(mins, maxs, config)
    return _sorted(_pair_relations(present, mins, maxs, i_idx, j_idx, config))


def update_relations(
    previous: Sequence[Relation],
    objects: Sequence[SceneObject],
    changed_ids: Iterable[str],
    config: RelationConfig,
) -> list[Relation]:
    """Relations after the objects ``changed_ids`` moved, appeared, vanished or changed shape.

    Keeps the ``previous`` relations between unchanged present objects and recomputes the pairs
    that involve a changed object; equal to :func:`compute_relations` on ``objects``.
    """
    changed = set(changed_ids)
    present = [o for o in objects if o.present and np.isfinite(o.center).all()]
    present_ids = {o.id for o in present}
    kept = [
        r
        for r in previous
        if r.subject_id not in changed
        and r.object_id not in changed
        and r.subject_id in present_ids
        and r.object_id in present_ids
    ]
    flags = np.array([o.id in changed for o in present], dtype=bool)
    if not flags.any():
        return _sorted(kept)
    mins, maxs = _boxes(present)
    # restrict the hash to objects whose grown footprint meets a changed object's
    grow = 0.5 * config.near_distance_m + 1e-6
    lo, hi = mins[:, :2] - grow, maxs[:, :2] + grow
    involved = flags.copy()
    for c in np.flatnonzero(flags):
        involved |= np.all((lo <= hi[c]) & (hi >= lo[c]), axis=1)
    sub = np.flatnonzero(involved)
    i_sub, j_sub = _candidate_pairs(mins[sub], maxs[sub], config, only=flags[sub])
    i_idx, j_idx = sub[i_sub], sub[j_sub]
    fresh = _pair_relations(present, mins, maxs, i_idx, j_idx, config)
    _LOG.debug("relations: %d kept, %d recomputed pairs", len(kept), len(i_idx))
    return _sorted(kept + fresh)
