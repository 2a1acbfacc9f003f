"""Frames to 3D: frame validation, depth validity masks, flying-pixel removal, back-projection.

Conventions (see :mod:`memory_node.core.types`): the camera optical frame is z forward, x right,
y down; ``map_T_camera`` maps camera-frame points into the map frame; depth is metres along the
optical axis. Voxel keys pack three signed 21-bit voxel indices into one int64 so that sets of
voxels are plain sorted 1-D integer arrays (fast ``searchsorted``/``intersect1d``; no
``np.unique(axis=0)`` over 3-D points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memory_node.core.config import param
from memory_node.core.types import Frame, InvalidInput

_KEY_BITS = 21
_KEY_OFFSET = 1 << (_KEY_BITS - 1)
_KEY_MASK = (1 << _KEY_BITS) - 1


class FrameRejected(InvalidInput):
    """A frame refused by :func:`validate_frame`; ``reason`` is a short key for counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class DepthConfig:
    """How depth images become points."""

    pixel_stride: int = param(
        2, "use every n-th pixel in both directions (1 = all pixels)", min_value=1, max_value=16
    )
    min_depth_m: float = param(
        0.1, "depth readings below this are invalid, metres", min_value=0.0, max_value=10.0
    )
    max_depth_m: float = param(
        6.0, "depth readings beyond this are invalid, metres", min_value=0.2, max_value=100.0
    )
    flying_pixel_jump_rel: float = param(
        0.05,
        "a pixel whose depth differs from a (strided) 4-neighbour by more than this fraction of "
        "its depth lies on a depth edge and is dropped (0 disables)",
        min_value=0.0,
        max_value=1.0,
    )
    full_weight_range_m: float = param(
        2.5,
        "points up to this depth count fully towards an object's voxels; deeper ones weigh "
        "(range / depth)^4, the inverse variance of a depth noise growing with depth squared, "
        "metres (0 = every point counts fully)",
        min_value=0.0,
    )
    world_extent_m: float = param(
        10000.0,
        "camera positions, object coordinates and loaded memories farther than this from the "
        "map origin are refused, metres",
        min_value=1.0,
        max_value=1e9,
    )
    min_focal_px: float = param(
        1.0,
        "intrinsics with fx or fy below this many pixels are refused",
        min_value=1e-6,
        max_value=1e6,
    )
    rotation_tolerance: float = param(
        1e-3,
        "largest accepted deviation of the pose rotation from orthonormal (max |R^T R - I|)",
        min_value=1e-9,
        max_value=0.1,
    )


@dataclass
class FramePoints:
    """Valid points of one frame on the strided pixel grid.

    Attributes:
        points_map: (N, 3) float32, metres, map frame.
        rows, cols: (N,) int32 full-resolution pixel coordinates of each point.
        flat_index: (N,) int64 index of each point into the strided grid (row-major).
        grid_shape: (h, w) of the strided grid.
        stride: pixel stride used.
        weights: (N,) float32 confidence of each point in (0, 1] (see :func:`depth_weights`);
            None = all 1.
    """

    points_map: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    flat_index: np.ndarray
    grid_shape: tuple[int, int]
    stride: int
    weights: np.ndarray | None = None


def validate_frame(frame: Frame, config: DepthConfig) -> None:
    """Raise :class:`InvalidInput` when ``frame`` cannot be ingested; the message says why.

    Checks shapes and dtypes, intrinsics (fx, fy at least ``min_focal_px``), pose (finite,
    within ``world_extent_m``, orthonormal rotation, last row 0 0 0 1), stamp finiteness,
    instance image shape, and that some depth reading lies in range.
    """
    if not isinstance(frame.stamp, (int, float, np.number)) or not math.isfinite(frame.stamp):
        raise FrameRejected("stamp", f"stamp must be a finite number, got {frame.stamp!r}")
    depth = np.asarray(frame.depth)
    if depth.ndim != 2 or depth.size == 0:
        raise FrameRejected("depth_shape", f"depth must be (H, W), got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise FrameRejected("depth_dtype", f"depth must be float metres, got dtype {depth.dtype}")
    rgb = np.asarray(frame.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FrameRejected("rgb_shape", f"rgb must be (H, W, 3), got shape {rgb.shape}")
    if rgb.shape[:2] != depth.shape:
        raise FrameRejected(
            "size_mismatch",
            f"rgb {rgb.shape[1]}x{rgb.shape[0]} and depth {depth.shape[1]}x{depth.shape[0]} "
            "differ in size",
        )
    K = np.asarray(frame.K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise FrameRejected("intrinsics", "K must be a finite (3, 3) matrix")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise FrameRejected(
            "intrinsics", f"K is not a pinhole intrinsic matrix (fx, fy > 0, last row 0 0 1): {K}"
        )
    if min(K[0, 0], K[1, 1]) < config.min_focal_px or np.abs(K[:2, 2]).max() > 1e6:
        raise FrameRejected(
            "intrinsics",
            f"focal lengths fx={K[0, 0]:.3g}, fy={K[1, 1]:.3g} below depth.min_focal_px = "
            f"{config.min_focal_px} px, or a principal point beyond 1e6 px",
        )
    T = np.asarray(frame.map_T_camera, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise FrameRejected("pose", "map_T_camera must be a finite (4, 4) matrix")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
        raise FrameRejected("pose", "map_T_camera last row must be 0 0 0 1")
    if float(np.abs(T[:3, 3]).max()) > config.world_extent_m:
        raise FrameRejected(
            "pose",
            f"camera position {T[:3, 3]} is beyond depth.world_extent_m = "
            f"{config.world_extent_m} m from the map origin",
        )
    R = T[:3, :3]
    err = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if err > config.rotation_tolerance or np.linalg.det(R) < 0:
        raise FrameRejected(
            "pose",
            f"map_T_camera rotation is not orthonormal (max |R^T R - I| = {err:.3g}); "
            "was the quaternion normalised?",
        )
    if frame.instance is not None:
        inst = np.asarray(frame.instance)
        if inst.shape != depth.shape:
            raise FrameRejected(
                "instance_shape",
                f"instance image shape {inst.shape} differs from depth shape {depth.shape}",
            )
        if not np.issubdtype(inst.dtype, np.integer):
            raise FrameRejected(
                "instance_dtype", f"instance image must hold integers, got dtype {inst.dtype}"
            )
    s = config.pixel_stride
    sub = depth[::s, ::s]
    with np.errstate(invalid="ignore"):
        ok = (sub > config.min_depth_m) & (sub <= config.max_depth_m)
    if not np.any(ok):
        raise FrameRejected(
            "no_valid_depth",
            f"depth has no valid reading in ({config.min_depth_m}, {config.max_depth_m}] m "
            "(all zero, NaN or out of range)",
        )


def valid_depth_mask(depth: np.ndarray, config: DepthConfig) -> np.ndarray:
    """Return the validity of each reading of ``depth``.

    Args:
        depth: (h, w) float depth, metres (may already be strided).
        config: thresholds.

    Returns:
        (h, w) bool: finite, above ``min_depth_m``, at most ``max_depth_m``, and (when enabled)
        not a flying pixel at a depth edge.
    """
    with np.errstate(invalid="ignore"):
        ok = (depth > config.min_depth_m) & (depth <= config.max_depth_m)
    if config.flying_pixel_jump_rel > 0:
        ok &= ~flying_pixel_mask(depth, config.flying_pixel_jump_rel)
    return ok


def flying_pixel_mask(depth: np.ndarray, jump_rel: float) -> np.ndarray:
    """Pixels on depth discontinuities.

    A pixel is flagged when the depth of one of its 4-neighbours differs from its own by more
    than ``jump_rel * depth``. Invalid neighbours (0 or NaN) do not flag a pixel.

    Args:
        depth: (h, w) float, metres.
        jump_rel: relative jump threshold.

    Returns:
        (h, w) bool, True on flying/edge pixels.
    """
    d = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32, copy=False)
    flag = np.zeros(d.shape, dtype=bool)
    thr = jump_rel * d
    # Vertical neighbours.
    a, b = d[:-1], d[1:]
    jump = np.abs(a - b)
    both = (a > 0) & (b > 0)
    flag[:-1] |= both & (jump > thr[:-1])
    flag[1:] |= both & (jump > thr[1:])
    # Horizontal neighbours.
    a, b = d[:, :-1], d[:, 1:]
    jump = np.abs(a - b)
    both = (a > 0) & (b > 0)
    flag[:, :-1] |= both & (jump > thr[:, :-1])
    flag[:, 1:] |= both & (jump > thr[:, 1:])
    return flag


def backproject(
    depth: np.ndarray,
    K: np.ndarray,
    map_T_camera: np.ndarray,
    config: DepthConfig,
) -> tuple[FramePoints, np.ndarray]:
    """Back-project the valid pixels of a depth image into the map frame.

    Args:
        depth: (H, W) float, metres along the optical axis.
        K: (3, 3) intrinsics.
        map_T_camera: (4, 4) camera pose in the map frame.
        config: stride, validity thresholds.

    Returns:
        The valid points, and the (h, w) bool validity mask of the strided grid.
    """
    s = config.pixel_stride
    sub = np.asarray(depth[::s, ::s], dtype=np.float32)
    ok = valid_depth_mask(sub, config)
    h, w = sub.shape
    flat = np.flatnonzero(ok.ravel())
    rows_s = (flat // w).astype(np.int32)
    cols_s = (flat % w).astype(np.int32)
    rows = rows_s * s
    cols = cols_s * s
    z = sub.ravel()[flat]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x = (cols.astype(np.float32) - np.float32(cx)) * z / np.float32(fx)
    y = (rows.astype(np.float32) - np.float32(cy)) * z / np.float32(fy)
    pts_cam = np.stack([x, y, z], axis=1)
    pts_map = transform_points(map_T_camera, pts_cam)
    weights = depth_weights(z, config.full_weight_range_m)
    return FramePoints(pts_map, rows, cols, flat.astype(np.int64), (h, w), s, weights), ok


def depth_weights(depth: np.ndarray, full_weight_range_m: float) -> np.ndarray:
    """Confidence of depth readings whose noise std grows with the square of the depth.

    Args:
        depth: (N,) float, metres along the optical axis (> 0).
        full_weight_range_m: readings up to this depth get weight 1; deeper ones
            ``(full_weight_range_m / depth)^4`` (inverse variance relative to that depth);
            0 gives every reading weight 1.

    Returns:
        (N,) float32 weights in (0, 1].
    """
    d = np.asarray(depth, dtype=np.float32)
    if full_weight_range_m <= 0:
        return np.ones(d.shape, np.float32)
    r = np.float32(full_weight_range_m) / np.maximum(d, np.float32(1e-6))
    out: np.ndarray = np.minimum(r, np.float32(1.0)) ** 4
    return out


def transform_points(a_T_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Map (N, 3) points from frame b into frame a; returns (N, 3) float32.

    Written as three fused multiply-adds per output column rather than a matrix product: an
    (N, 3) x (3, 3) product goes through BLAS, which is slow for this shape on a busy CPU.
    """
    R = np.asarray(a_T_b[:3, :3], dtype=np.float64)
    t = np.asarray(a_T_b[:3, 3], dtype=np.float64)
    p = points_b.astype(np.float32, copy=False)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    out = np.empty((p.shape[0], 3), np.float32)
    for i in range(3):
        col = out[:, i]
        np.multiply(x, np.float32(R[i, 0]), out=col)
        col += np.float32(R[i, 1]) * y
        col += np.float32(R[i, 2]) * z
        col += np.float32(t[i])
    return out


def invert_transform(a_T_b: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform: returns b_T_a, float64."""
    R = a_T_b[:3, :3]
    t = a_T_b[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def voxel_keys(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Pack the voxel index of each point into one int64 key.

    Args:
        points: (N, 3) float, metres.
        voxel_size: metres.

    Returns:
        (N,) int64 keys (not deduplicated). Indices must lie within +-2^20 voxels.
    """
    q = np.floor(points / voxel_size).astype(np.int64) + _KEY_OFFSET
    q &= _KEY_MASK
    keys: np.ndarray = (q[:, 0] << (2 * _KEY_BITS)) | (q[:, 1] << _KEY_BITS) | q[:, 2]
    return keys


def voxelize(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Group points by voxel.

    Args:
        points: (N, 3) float, metres.
        voxel_size: metres.

    Returns:
        keys: (M,) int64 sorted unique voxel keys; means: (M, 3) float32 mean of the points of
        each voxel, metres.
    """
    if points.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    keys, inv = np.unique(voxel_keys(points, voxel_size), return_inverse=True)
    counts = np.bincount(inv, minlength=keys.size).astype(np.float64)
    means = np.empty((keys.size, 3), np.float32)
    for j in range(3):
        means[:, j] = np.bincount(inv, weights=points[:, j], minlength=keys.size) / counts
    return keys, means


def voxelize_weighted(
    points: np.ndarray, voxel_size: float, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group weighted points by voxel.

    Args:
        points: (N, 3) float, metres.
        voxel_size: metres.
        weights: (N,) float point weights.

    Returns:
        keys: (M,) int64 sorted unique voxel keys; means: (M, 3) float32 mean of the points of
        each voxel, metres; voxel_weights: (M,) float32 mean weight of the points of each voxel.
    """
    if points.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
    keys, inv = np.unique(voxel_keys(points, voxel_size), return_inverse=True)
    counts = np.bincount(inv, minlength=keys.size).astype(np.float64)
    means = np.empty((keys.size, 3), np.float32)
    for j in range(3):
        means[:, j] = np.bincount(inv, weights=points[:, j], minlength=keys.size) / counts
    w = np.bincount(inv, weights=np.asarray(weights, np.float64), minlength=keys.size) / counts
    return keys, means, w.astype(np.float32)


def key_indices(keys: np.ndarray) -> np.ndarray:
    """Unpack int64 voxel keys into (N, 3) int64 voxel indices."""
    ix = ((keys >> (2 * _KEY_BITS)) & _KEY_MASK) - _KEY_OFFSET
    iy = ((keys >> _KEY_BITS) & _KEY_MASK) - _KEY_OFFSET
    iz = (keys & _KEY_MASK) - _KEY_OFFSET
    return np.stack([ix, iy, iz], axis=1)


def key_centers(keys: np.ndarray, voxel_size: float) -> np.ndarray:
    """Voxel centres of int64 keys: (N, 3) float32, metres."""
    out: np.ndarray = ((key_indices(keys).astype(np.float64) + 0.5) * voxel_size).astype(
        np.float32
    )
    return out


def pack_indices(idx: np.ndarray) -> np.ndarray:
    """Pack (N, 3) int64 voxel indices into int64 keys (inverse of :func:`key_indices`)."""
    q = (idx.astype(np.int64) + _KEY_OFFSET) & _KEY_MASK
    keys: np.ndarray = (q[:, 0] << (2 * _KEY_BITS)) | (q[:, 1] << _KEY_BITS) | q[:, 2]
    return keys


def project_points(
    points_map: np.ndarray, camera_T_map: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project map-frame points into the image.

    Args:
        points_map: (N, 3) float, metres, map frame.
        camera_T_map: (4, 4) map -> camera optical frame.
        K: (3, 3) intrinsics.

    Returns:
        u, v: (N,) float64 pixel coordinates (column, row); z: (N,) float64 depth, metres
        (values for z <= 0 are meaningless; check ``z``).
    """
    pc = transform_points(camera_T_map, points_map).astype(np.float64)
    z = pc[:, 2]
    zs = np.where(z > 1e-9, z, 1e-9)
    u = K[0, 0] * pc[:, 0] / zs + K[0, 2]
    v = K[1, 1] * pc[:, 1] / zs + K[1, 2]
    return u, v, z
