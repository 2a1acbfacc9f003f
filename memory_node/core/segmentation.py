"""Segmentation front-ends: frame points -> per-object detections.

Two front-ends, chosen by ``segmentation.mode``:

* ``given``: instance masks that come with the frame (the simulator's, or an external segmenter's
  ``instance/image`` + ``instance/labels``); ids absent from ``instance_labels`` are ignored and
  counted.
* ``geometric``: a class-agnostic segmenter for cameras without one. Large planes (floor, walls,
  table tops) are removed by RANSAC, then the remaining organised points are split into
  connected regions at depth discontinuities (``image`` clustering, numpy/scipy, milliseconds) or
  by DBSCAN in 3-D (``dbscan`` clustering, needs open3d).
* ``auto``: ``given`` when the frame carries an instance image, ``geometric`` otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from memory_node.core.config import param
from memory_node.core.geometry import FramePoints, voxelize, voxelize_weighted
from memory_node.core.types import Frame

log = logging.getLogger(__name__)


@dataclass
class SegmentationConfig:
    """Which front-end turns a frame into detections, and its thresholds."""

    mode: str = param(
        "auto",
        "given = instance masks of the frame; geometric = built-in class-agnostic segmenter; "
        "auto = given when the frame has masks, geometric otherwise",
        choices=("auto", "given", "geometric"),
    )
    # 6: with 12, on the training seeds 20 of the changes missed were of small objects (a mug,
    # a duck, a jenga block 2-3 m away: 75-120 pixels at 320x240) never detected at all: at
    # pixel stride 2, once the depth-edge pixels are dropped, they leave 6-11 points. A
    # detection must still be seen twice to become an object.
    min_points: int = param(
        6,
        "detections with fewer valid (strided) points are dropped (an object still needs "
        "mapping.min_observations_to_confirm detections)",
        min_value=1,
    )
    geometric_clustering: str = param(
        "image",
        "geometric segmenter clustering: image = connected regions between depth edges; "
        "dbscan = open3d DBSCAN in 3-D",
        choices=("image", "dbscan"),
    )
    plane_distance_m: float = param(
        0.02, "RANSAC inlier distance for support/wall planes, metres", min_value=0.001
    )
    plane_min_fraction: float = param(
        0.06,
        "a plane is removed when it holds at least this fraction of the frame's points",
        min_value=0.0,
        max_value=1.0,
    )
    plane_min_extent_m: float = param(
        0.6,
        "a plane is removed only when its inliers span at least this in both in-plane "
        "directions (floors, walls, table tops; not the face of a box), metres",
        min_value=0.0,
    )
    max_planes: int = param(6, "largest number of planes removed per frame", min_value=0)
    ransac_iterations: int = param(200, "RANSAC hypotheses per plane", min_value=1)
    edge_jump_rel: float = param(
        0.03,
        "image clustering: neighbours whose depths differ by more than this fraction are "
        "not connected",
        min_value=0.0,
        max_value=1.0,
    )
    dbscan_eps_m: float = param(0.05, "DBSCAN neighbourhood radius, metres", min_value=0.001)
    merge_distance_m: float = param(
        0.03,
        "geometric segments closer than this (per axis) are joined (an object split by its own "
        "occluding edge, e.g. a chair's seat and back); 0 disables",
        min_value=0.0,
    )
    geometric_min_points: int = param(
        40, "geometric segments with fewer (strided) points are dropped as clutter", min_value=1
    )
    max_object_extent_m: float = param(
        3.0,
        "geometric segments larger than this in any axis are structure, not objects, metres",
        min_value=0.1,
    )
    seed: int = param(0, "random seed of RANSAC (results are reproducible)", min_value=0)


@dataclass
class Detection:
    """One segment of one frame.

    Attributes:
        points: (N, 3) float32 points, metres, map frame.
        keys: (M,) int64 sorted unique voxel keys of ``points`` (see geometry.voxel_keys).
        means: (M, 3) float32 mean point of each voxel of ``keys``, metres, map frame.
        label: segmenter label, "" when unknown.
        score: segmenter confidence in [0, 1] (1 for geometric segments).
        state: object state reported with the mask ("" when unknown).
        instance_id: id in the frame's instance image (geometric: 1-based segment index).
        bbox_px: (col0, row0, col1, row1) full-resolution pixel box, end-exclusive.
        num_pixels: number of valid strided pixels.
        feature: optional (D,) float32 unit-norm feature, filled by the encoder.
        point_index: optional (N,) int64 rows of the frame's :class:`FramePoints` that make up
            the detection (for drawing; not kept in memory).
        weights: optional (M,) float32 confidence in (0, 1] of each voxel of ``keys`` (mean
            weight of its points, lower for deep, noisy readings); None = all 1.
    """

    points: np.ndarray
    keys: np.ndarray
    means: np.ndarray
    label: str
    score: float
    state: str
    instance_id: int
    bbox_px: tuple[int, int, int, int]
    num_pixels: int
    feature: np.ndarray | None = None
    point_index: np.ndarray | None = None
    weights: np.ndarray | None = None

    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        voxel_size: float,
        label: str,
        score: float,
        state: str,
        instance_id: int,
        bbox_px: tuple[int, int, int, int],
        num_pixels: int,
        point_weights: np.ndarray | None = None,
    ) -> Detection:
        """Make a detection from its (N, 3) float32 map-frame points, voxelized.

        ``point_weights`` (N,) gives each point's confidence; the voxels then carry the mean
        weight of their points in ``weights``.
        """
        if point_weights is None:
            keys, means = voxelize(points, voxel_size)
            return cls(points, keys, means, label, score, state, instance_id, bbox_px, num_pixels)
        keys, means, weights = voxelize_weighted(points, voxel_size, point_weights)
        return cls(
            points,
            keys,
            means,
            label,
            score,
            state,
            instance_id,
            bbox_px,
            num_pixels,
            weights=weights,
        )


def _bbox(rows: np.ndarray, cols: np.ndarray, stride: int) -> tuple[int, int, int, int]:
    return (
        int(cols.min()),
        int(rows.min()),
        int(cols.max()) + stride,
        int(rows.max()) + stride,
    )


def segment_given(
    frame: Frame, fp: FramePoints, voxel_size: float, config: SegmentationConfig
) -> tuple[list[Detection], int]:
    """Cut the frame's points by its instance image.

    Args:
        frame: must carry ``instance``; ``instance_labels`` None means every id is accepted with
            label "".
        fp: valid points of the frame.
        voxel_size: metres, for the detections' voxel keys.
        config: thresholds.

    Returns:
        Detections, and the number of distinct non-zero instance ids ignored because they are
        missing from ``instance_labels``.
    """
    assert frame.instance is not None
    ids = np.asarray(frame.instance)[fp.rows, fp.cols].astype(np.int64, copy=False)
    fg = np.flatnonzero(ids != 0)
    if fg.size == 0:
        return [], 0
    ids_fg = ids[fg]
    order = np.argsort(ids_fg, kind="stable")
    sorted_ids = ids_fg[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], sorted_ids.size]
    labels = frame.instance_labels
    states = frame.instance_states or {}
    detections: list[Detection] = []
    ignored = 0
    for a, b in zip(starts, ends, strict=True):
        iid = int(sorted_ids[a])
        if labels is not None and iid not in labels:
            ignored += 1
            continue
        if b - a < config.min_points:
            continue
        sel = fg[order[a:b]]
        pts = fp.points_map[sel]
        label, score = labels[iid] if labels is not None else ("", 1.0)
        detections.append(
            Detection.from_points(
                points=pts,
                voxel_size=voxel_size,
                label=str(label),
                score=float(score),
                state=str(states.get(iid, "")),
                instance_id=iid,
                bbox_px=_bbox(fp.rows[sel], fp.cols[sel], fp.stride),
                num_pixels=int(b - a),
                point_weights=None if fp.weights is None else fp.weights[sel],
            )
        )
        detections[-1].point_index = sel
    return detections, ignored


def _count_inliers(
    points: np.ndarray, normals: np.ndarray, offsets: np.ndarray, distance: float
) -> np.ndarray:
    """Inliers of each plane hypothesis: count of ``|points @ normal + offset| < distance``.

    Works in row blocks with one reused buffer, so the (points, hypotheses) distance matrix
    never exists whole (it would not fit in cache, and allocating it dominated the segmenter).

    Args:
        points: (S, 3) float64.
        normals: (H, 3) float64 unit normals.
        offsets: (H,) float64.
        distance: inlier distance.

    Returns:
        (H,) int64 counts.
    """
    block = 512
    nt = normals.T
    buf = np.empty((min(block, points.shape[0]), nt.shape[1]))
    hit = np.empty(buf.shape, dtype=bool)
    counts = np.zeros(nt.shape[1], dtype=np.int64)
    for i in range(0, points.shape[0], block):
        m = min(block, points.shape[0] - i)
        b, h = buf[:m], hit[:m]
        np.matmul(points[i : i + m], nt, out=b)
        b += offsets
        np.abs(b, out=b)
        np.less(b, distance, out=h)
        counts += np.count_nonzero(h, axis=0)
    return counts


def fit_planes(
    points: np.ndarray, config: SegmentationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Find large planes by iterative RANSAC.

    Args:
        points: (N, 3) float32, metres (any frame).
        config: plane thresholds.
        rng: random generator.

    Returns:
        (N,) bool, True for points on one of the removed planes.
    """
    n = points.shape[0]
    on_plane = np.zeros(n, dtype=bool)
    tried = np.zeros(n, dtype=bool)  # inliers of planes too small to remove
    min_inliers = max(3, int(config.plane_min_fraction * n))
    removed = 0
    for _ in range(2 * config.max_planes):
        if removed >= config.max_planes:
            break
        rest = np.flatnonzero(~on_plane & ~tried)
        if rest.size < min_inliers:
            break
        sub = rest if rest.size <= 4000 else rng.choice(rest, 4000, replace=False)
        P = points[sub].astype(np.float64)
        tri = rng.integers(0, P.shape[0], size=(config.ransac_iterations, 3))
        a, b, c = P[tri[:, 0]], P[tri[:, 1]], P[tri[:, 2]]
        normals = np.cross(b - a, c - a)
        norm = np.linalg.norm(normals, axis=1)
        good = norm > 1e-9
        if not np.any(good):
            break
        normals = normals[good] / norm[good, None]
        d = -np.einsum("ij,ij->i", normals, a[good])
        counts = _count_inliers(P, normals, d, config.plane_distance_m)
        best = int(np.argmax(counts))
        if counts[best] * rest.size / P.shape[0] < min_inliers:
            break
        normal, offset = normals[best], d[best]
        # Refine on all inliers with a least-squares plane (SVD).
        inl = rest[np.abs(points[rest] @ normal + offset) < config.plane_distance_m]
        Q = points[inl].astype(np.float64)
        centroid = Q.mean(axis=0)
        _, _, vt = np.linalg.svd(Q - centroid, full_matrices=False)
        normal = vt[2]
        offset = -normal @ centroid
        inl = rest[np.abs(points[rest] @ normal + offset) < config.plane_distance_m]
        if inl.size < min_inliers:
            break
        q = points[inl].astype(np.float64) - centroid
        extent = [np.percentile(q @ vt[j], 98) - np.percentile(q @ vt[j], 2) for j in (0, 1)]
        if min(extent) >= config.plane_min_extent_m:
            on_plane[inl] = True
            removed += 1
        else:
            tried[inl] = True
    return on_plane


def segment_geometric(
    frame: Frame, fp: FramePoints, voxel_size: float, config: SegmentationConfig
) -> list[Detection]:
    """Class-agnostic segments: plane removal, then clustering of what remains.

    Args:
        frame: the frame (its depth is used for discontinuities).
        fp: valid points of the frame.
        voxel_size: metres, for the detections' voxel keys.
        config: thresholds and clustering method.

    Returns:
        Detections with label "" and score 1.
    """
    if fp.points_map.shape[0] < config.min_points:
        return []
    rng = np.random.default_rng(config.seed)
    on_plane = fit_planes(fp.points_map, config, rng)
    keep = np.flatnonzero(~on_plane)
    if keep.size < config.min_points:
        return []
    h, w = fp.grid_shape
    if config.geometric_clustering == "dbscan":
        labels_keep = _dbscan(fp.points_map[keep], config)
    else:
        labels_keep = _image_components(frame, fp, keep, config)
    detections: list[Detection] = []
    if labels_keep.size == 0 or labels_keep.max() < 0:
        return detections
    if config.merge_distance_m > 0:
        labels_keep = _join_touching(fp.points_map[keep], labels_keep, config.merge_distance_m)
    order = np.argsort(labels_keep, kind="stable")
    sl = labels_keep[order]
    starts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1]])
    ends = np.r_[starts[1:], sl.size]
    index = 0
    for a, b in zip(starts, ends, strict=True):
        if sl[a] < 0 or b - a < max(config.min_points, config.geometric_min_points):
            continue
        sel = keep[order[a:b]]
        pts = fp.points_map[sel]
        extent = pts.max(axis=0) - pts.min(axis=0)
        if np.any(extent > config.max_object_extent_m):
            continue
        index += 1
        detections.append(
            Detection.from_points(
                points=pts,
                voxel_size=voxel_size,
                label="",
                score=1.0,
                state="",
                instance_id=index,
                bbox_px=_bbox(fp.rows[sel], fp.cols[sel], fp.stride),
                num_pixels=int(b - a),
                point_weights=None if fp.weights is None else fp.weights[sel],
            )
        )
        detections[-1].point_index = sel
    del h, w
    return detections


def _join_touching(points: np.ndarray, labels: np.ndarray, distance: float) -> np.ndarray:
    """Relabel so that segments with points closer than ``distance`` per axis share a label.

    Two points within ``distance`` of each other along every axis fall in a common cell of size
    ``2 * distance`` in at least one of the 8 grids shifted by ``distance`` along each axis.
    Points are first reduced to their distinct (``distance`` cell, label) pairs; a cell of a
    shifted grid is a 2 x 2 x 2 block of those cells. Segments sharing a cell are joined as
    connected components of the segment graph; each takes the smallest label of its component.

    Args:
        points: (N, 3) float32 points, metres.
        labels: (N,) int64 segment labels, -1 = none.
        distance: metres.

    Returns:
        (N,) int64 labels, -1 kept.
    """
    ok = labels >= 0
    if not ok.any():
        return labels
    lab = labels[ok]
    n_lab = int(labels.max()) + 1
    q = np.floor(points[ok].astype(np.float64) / distance).astype(np.int64)
    low = q.min(axis=0)
    q -= low - (low & 1)  # an even shift keeps the 2-cell grids where they were
    ext = q.max(axis=0) + 2
    if float(ext[0]) * float(ext[1]) * float(ext[2]) * n_lab >= 2.0**62:
        raise ValueError(f"segments span too many {distance} m cells to join")
    code = np.unique(((q[:, 0] * ext[1] + q[:, 1]) * ext[2] + q[:, 2]) * n_lab + lab)
    lab_u = code % n_lab
    cell = code // n_lab
    q = np.stack([cell // (ext[1] * ext[2]), (cell // ext[2]) % ext[1], cell % ext[2]], axis=1)
    e2 = ext // 2 + 1
    src, dst = [], []
    for shift in np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).T.reshape(-1, 3):
        c = (q + shift) // 2
        pairs = np.unique(((c[:, 0] * e2[1] + c[:, 1]) * e2[2] + c[:, 2]) * n_lab + lab_u)
        cells, labs = pairs // n_lab, pairs % n_lab
        same = np.flatnonzero(cells[1:] == cells[:-1])
        src.append(labs[same])
        dst.append(labs[same + 1])
    s_all = np.concatenate(src)
    graph = sparse.coo_matrix(
        (np.ones(s_all.size, dtype=np.int8), (s_all, np.concatenate(dst))), shape=(n_lab, n_lab)
    )
    _, comp = csgraph.connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)  # smallest label of each component
    out = labels.copy()
    out[ok] = first[comp][lab]
    return out


def _image_components(
    frame: Frame, fp: FramePoints, keep: np.ndarray, config: SegmentationConfig
) -> np.ndarray:
    """Label connected regions of the strided grid, cut at depth edges (-1 = none)."""
    h, w = fp.grid_shape
    s = fp.stride
    depth = np.asarray(frame.depth[::s, ::s], dtype=np.float32)
    depth = np.where(np.isfinite(depth), depth, 0.0)
    flat_mask = np.zeros(h * w, dtype=bool)
    flat_mask[fp.flat_index[keep]] = True
    mask = flat_mask.reshape(h, w)
    # Break connectivity at depth jumps: a pixel with a large jump to a neighbour is an edge.
    edge = np.zeros((h, w), dtype=bool)
    thr = config.edge_jump_rel * depth
    dv = np.abs(depth[1:] - depth[:-1])
    edge[1:] |= dv > thr[1:]
    edge[:-1] |= dv > thr[:-1]
    dh = np.abs(depth[:, 1:] - depth[:, :-1])
    edge[:, 1:] |= dh > thr[:, 1:]
    edge[:, :-1] |= dh > thr[:, :-1]
    lab, _ = ndimage.label(mask & ~edge)
    labels = lab.ravel()[fp.flat_index[keep]].astype(np.int64) - 1  # -1 = edge / none
    return labels


def _dbscan(points: np.ndarray, config: SegmentationConfig) -> np.ndarray:
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "segmentation.geometric_clustering=dbscan needs open3d: pip install open3d "
            "(and apt-get install libusb-1.0-0); or use geometric_clustering=image"
        ) from exc
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    labels = np.asarray(
        pcd.cluster_dbscan(eps=config.dbscan_eps_m, min_points=4, print_progress=False)
    )
    return labels.astype(np.int64)


def segment_frame(
    frame: Frame, fp: FramePoints, voxel_size: float, config: SegmentationConfig
) -> tuple[list[Detection], int]:
    """Run the configured front-end; returns detections and the count of ignored mask ids."""
    mode = config.mode
    if mode == "auto":
        mode = "given" if frame.instance is not None else "geometric"
    if mode == "given":
        if frame.instance is None:
            log.debug("segmentation.mode=given but the frame has no instance image")
            return [], 0
        return segment_given(frame, fp, voxel_size, config)
    return segment_geometric(frame, fp, voxel_size, config), 0
