"""Surface evidence: "this place was free" from the height of what a depth keyframe saw there.

The see-through test of :mod:`~memory_node.core.free_space` needs a keyframe's reading to lie
``free_space.margin_m`` beyond a point. A thin object put on a table (a book, a lego brick)
rises a few centimetres above it: seen from a standing camera, the ray through its top meets
the table only a few centimetres further on, and the min-pooled block (its nearest reading)
lies nearer still. Its place is then never known to have been free, and the addition makes
no event.

Heights are better conditioned for such places. Each keyframe also keeps, per block of
``free_space.surface_pool_px`` pixels, the *highest* point (map frame z) its depth readings
hit. A ray that goes *down* to a point ``p`` would have met an object standing at ``p`` at or
above ``p``'s height: whatever the ray meets before ``p`` lies higher than ``p``. So when every
valid reading of the block around ``p``'s pixel hit lower than ``p`` by more than
``free_space.surface_margin_m``, the keyframe saw the surface beneath ``p`` (e.g. the table
top) and nothing standing at ``p``: ``p`` was free then. Rays going up to ``p`` (camera below
it) say nothing, as do blocks missing readings (``free_space.min_valid_fraction``: a thin object
may have lost its readings) and points farther than ``free_space.surface_max_range_m``
(depth noise grows with the square of range; a small object far away covers a pixel or two
of the block).

This is the one model of this module: a block's highest hit below a point seen from above.
"""

from __future__ import annotations

import numpy as np


def pool_heights(
    depth: np.ndarray,
    K: np.ndarray,
    map_T_camera: np.ndarray,
    pool_px: int,
    min_valid_fraction: float,
) -> np.ndarray:
    """Return the (h // pool_px, w // pool_px) highest map-frame z that each block's readings hit.

    A block with a smaller share of valid readings than ``min_valid_fraction`` gets NaN (no
    evidence).

    Args:
        depth: (h, w) metres along the optical axis; 0 or non-finite = no reading.
        K: (3, 3) intrinsics of ``depth``.
        map_T_camera: (4, 4) pose of the optical frame in the map.
        pool_px: block size, pixels.
        min_valid_fraction: share of valid readings a block needs.
    """
    p = pool_px
    h, w = depth.shape
    hp, wp = h // p, w // p
    d = np.asarray(depth[: hp * p, : wp * p], np.float32)
    valid = np.isfinite(d) & (d > 0)
    u = (np.arange(wp * p, dtype=np.float32) - np.float32(K[0, 2])) / np.float32(K[0, 0])
    v = (np.arange(hp * p, dtype=np.float32) - np.float32(K[1, 2])) / np.float32(K[1, 1])
    r = np.asarray(map_T_camera[2, :3], np.float32)  # map z of the camera axes
    # map z of the point at depth d along pixel (u, v): t_z + d * (r0 * u + r1 * v + r2)
    slope = r[0] * u[None, :] + r[1] * v[:, None] + r[2]
    z = np.where(valid, np.float32(map_T_camera[2, 3]) + d * slope, -np.inf)
    heights = z.reshape(hp, p, wp, p).max(axis=(1, 3))
    heights[valid.reshape(hp, p, wp, p).mean(axis=(1, 3)) < min_valid_fraction] = np.nan
    return np.asarray(heights, np.float32)


def below_surface(
    points: np.ndarray,
    origins: np.ndarray,
    z: np.ndarray,
    heights: np.ndarray,
    inside: np.ndarray,
    margin_m: float,
    max_range_m: float,
) -> np.ndarray:
    """Return (k, N) bool: keyframe k saw only a surface clearly below point n, from above.

    Args:
        points: (N, 3) map frame.
        origins: (k, 3) camera centre of each keyframe, map frame.
        z: (k, N) depth of each point in each keyframe.
        heights: (k, N) highest hit of the block at the point's pixel (NaN = none).
        inside: (k, N) the point is in view of the keyframe.
        margin_m: the block's highest hit must be this much below the point.
        max_range_m: points farther (depth) give no evidence.
    """
    pz = np.asarray(points, np.float64)[None, :, 2]
    from_above = origins[:, None, 2] > pz + margin_m
    with np.errstate(invalid="ignore"):
        low = heights < pz - margin_m  # NaN: False
    return np.asarray(inside & from_above & (z <= max_range_m) & low)
