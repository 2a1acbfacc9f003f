"""Visibility reasoning: is an object that should be in view actually there.

An object's voxels are projected into the current depth image. A voxel is *in view* when it
projects inside the image (away from the border), lies in front of the camera and within
``max_range_m``, and the pixel holds a valid depth reading. Comparing the reading with the voxel's
depth along the optical axis:

* reading > voxel depth + margin: the sensor saw *through* the voxel (free-space evidence);
* |reading - voxel depth| <= margin: the voxel is *consistent* with the reading;
* reading < voxel depth - margin: the voxel is *occluded* (no evidence either way).

With the frame's segmentation (an owner grid of label codes), a consistent voxel is also
*claimed* when the reading lies at or behind it and the pixel belongs to a detection of another
label: what the sensor sees there is that other object (a shelf where a thin block lay). Such
voxels count towards absence like seen-through ones; they are how the removal of an object too
thin to be seen through (within ``depth_margin_m`` of its support) is noticed.

An object that was not associated in a frame but is mostly in view and mostly seen through
accumulates miss evidence (Dynam3D-style frustum removal, but the object is marked absent rather
than deleted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory_node.core.config import param
from memory_node.core.geometry import project_points, transform_points


@dataclass
class VisibilityConfig:
    """Visibility evidence: what a depth image says about an object's voxels."""

    max_range_m: float = param(
        4.0, "voxels farther than this from the camera give no evidence, metres", min_value=0.1
    )
    depth_margin_m: float = param(
        0.1, "tolerance between a voxel's depth and the reading, metres", min_value=0.0
    )
    border_px: int = param(
        4, "projections this close to the image border are ignored", min_value=0
    )
    max_points_checked: int = param(
        200, "voxels projected per object and frame (evenly subsampled)", min_value=8
    )
    min_points_in_view: int = param(
        5, "fewest in-view voxels for a frame to count as evidence", min_value=1
    )
    min_in_view_fraction: float = param(
        0.3,
        "least share of an object's checked voxels in view for a frame to count",
        min_value=0.0,
        max_value=1.0,
    )
    seen_through_fraction: float = param(
        0.6,
        "share of in-view voxels seen through for a frame to count as a miss",
        min_value=0.0,
        max_value=1.0,
    )
    present_fraction: float = param(
        0.5,
        "share of in-view voxels consistent with the depth for a frame to count as the object "
        "still being there (a missed detection, not an absence)",
        min_value=0.0,
        max_value=1.0,
    )
    use_masks: bool = param(
        True,
        "count an unmatched object's voxels as missing where the pixel belongs to a detection of "
        "another label at or behind the voxel's depth (notices thin objects taken off a surface)",
    )
    claim_min_gap_m: float = param(
        0.02,
        "a claimed voxel's reading lies at least this far behind it, metres (a surface shared "
        "with the other object, as a mislabelled duplicate has, is no evidence)",
        min_value=0.0,
    )


@dataclass
class Evidence:
    """What one frame says about one object."""

    checked: int = 0
    in_view: int = 0
    seen_through: int = 0
    consistent: int = 0
    occluded: int = 0
    claimed: int = 0

    def in_view_enough(self, config: VisibilityConfig) -> bool:
        """Tell whether the object was meaningfully in view this frame."""
        return (
            self.in_view >= config.min_points_in_view
            and self.in_view >= config.min_in_view_fraction * max(self.checked, 1)
        )

    def is_miss(self, config: VisibilityConfig) -> bool:
        """Tell whether it is in view and mostly seen through or claimed (evidence of absence)."""
        return self.in_view_enough(config) and (
            self.seen_through + self.claimed >= config.seen_through_fraction * self.in_view
        )

    def is_there(self, config: VisibilityConfig) -> bool:
        """Tell whether it is in view and mostly consistent with the depth (still there).

        Unlike :meth:`is_miss`, a partial view is enough (no least in-view share): seeing part
        of an object where it should be is evidence that it is there.
        """
        return self.in_view >= config.min_points_in_view and (
            self.consistent - self.claimed >= config.present_fraction * self.in_view
        )


def check_points(
    points_map: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    camera_T_map: np.ndarray,
    config: VisibilityConfig,
    owners: np.ndarray | None = None,
    stride: int = 1,
    own_code: int = -1,
) -> Evidence:
    """Evidence about an object from one depth image.

    Args:
        points_map: (N, 3) float32 object voxel centres, metres, map frame.
        depth: (H, W) float32 depth, metres; 0/NaN = no reading.
        K: (3, 3) intrinsics.
        camera_T_map: (4, 4) map -> camera optical frame.
        config: thresholds.
        owners: optional (h, w) int32 grid of the label code of the detection covering each
            pixel of the strided grid (pixel ``(r * stride, c * stride)``), -1 for none.
        stride: pixel stride of ``owners``.
        own_code: the object's label code in ``owners`` (-1 when no detection has its label).
    """
    n = points_map.shape[0]
    if n == 0:
        return Evidence()
    if n > config.max_points_checked:
        points_map = points_map[:: int(np.ceil(n / config.max_points_checked))]
    u, v, z = project_points(points_map, camera_T_map, K)
    h, w = depth.shape
    b = config.border_px
    ui = np.floor(u + 0.5).astype(np.int64)
    vi = np.floor(v + 0.5).astype(np.int64)
    inside = (
        (z > 1e-3)
        & (z <= config.max_range_m)
        & (ui >= b)
        & (ui < w - b)
        & (vi >= b)
        & (vi < h - b)
    )
    ev = Evidence(checked=int(points_map.shape[0]))
    if not inside.any():
        return ev
    vi, ui = vi[inside], ui[inside]
    reading = depth[vi, ui]
    zi = z[inside]
    valid = np.isfinite(reading) & (reading > 0)
    reading, zi = reading[valid], zi[valid]
    ev.in_view = int(reading.size)
    m = config.depth_margin_m
    ev.seen_through = int(np.count_nonzero(reading > zi + m))
    ev.occluded = int(np.count_nonzero(reading < zi - m))
    ev.consistent = ev.in_view - ev.seen_through - ev.occluded
    if owners is not None and config.use_masks and ev.consistent:
        gh, gw = owners.shape
        rows = np.minimum((vi[valid] + stride // 2) // stride, gh - 1)
        cols = np.minimum((ui[valid] + stride // 2) // stride, gw - 1)
        code = owners[rows, cols]
        behind = (reading >= zi + config.claim_min_gap_m) & (reading <= zi + m)
        ev.claimed = int(np.count_nonzero(behind & (code >= 0) & (code != own_code)))
    return ev


def frustum_box(
    K: np.ndarray, shape: tuple[int, int], map_T_camera: np.ndarray, max_range: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the axis-aligned box (min, max), metres, map frame, of the view frustum."""
    h, w = shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    corners = []
    for px, py in ((0, 0), (w, 0), (0, h), (w, h)):
        corners.append([(px - cx) / fx * max_range, (py - cy) / fy * max_range, max_range])
    corners.append([0.0, 0.0, 0.0])
    pts = transform_points(map_T_camera, np.asarray(corners, np.float32))
    return pts.min(axis=0).astype(np.float64), pts.max(axis=0).astype(np.float64)
