"""Seeded sensor imperfections applied to noise-free renders.

Defaults resemble a structured-light/stereo RGB-D camera (RealSense-class) and a decent instance
segmenter: depth noise growing with the square of range, isolated and blob-shaped dropouts, lost
readings at depth discontinuities, eroded and occasionally missed masks, small segments dropped,
and occasional wrong labels. Every draw comes from the ``numpy.random.Generator`` passed in, so a
seed reproduces a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memory_node.core.config import param


@dataclass
class NoiseConfig:
    """Sensor imperfection model; ``enabled=False`` gives ground-truth images."""

    enabled: bool = param(True, "apply the imperfections below (False: perfect sensor)")
    depth_sigma_m: float = param(
        0.001, "constant term a of the depth noise std sigma = a + b * z^2", min_value=0.0
    )
    depth_sigma_quadratic_per_m: float = param(
        0.0025, "quadratic term b (1/m) of the depth noise std sigma = a + b * z^2", min_value=0.0
    )
    depth_dropout_prob: float = param(
        0.005, "probability that a single depth pixel reads 0", min_value=0.0, max_value=1.0
    )
    depth_holes_per_frame: float = param(
        1.5, "mean number (Poisson) of elliptic holes of missing depth per frame", min_value=0.0
    )
    depth_hole_radius_frac: float = param(
        0.03, "mean hole radius as a fraction of the image width", min_value=0.0, max_value=0.5
    )
    depth_edge_threshold_m: float = param(
        0.08, "depth jump between neighbours that marks a discontinuity", min_value=0.0
    )
    depth_edge_dropout_prob: float = param(
        0.5, "probability that a pixel on a discontinuity reads 0", min_value=0.0, max_value=1.0
    )
    rgb_sigma: float = param(2.0, "std of additive colour noise, 8-bit levels", min_value=0.0)
    mask_erode_px: int = param(
        1, "erode every instance mask by this many pixels", min_value=0, max_value=20
    )
    mask_miss_prob: float = param(
        0.05, "probability that an instance is missed in a frame", min_value=0.0, max_value=1.0
    )
    mask_min_pixels: int = param(
        30, "instances with fewer pixels after erosion are dropped", min_value=0
    )
    label_flip_prob: float = param(
        0.03,
        "probability that an instance gets a wrong label from the scene's vocabulary",
        min_value=0.0,
        max_value=1.0,
    )
    score_min: float = param(
        0.5, "label scores are drawn uniformly in [score_min, 1]", min_value=0.0, max_value=1.0
    )
    pose_sigma_m: float = param(
        0.0, "std of the position noise of the reported camera pose", min_value=0.0
    )
    pose_sigma_deg: float = param(
        0.0, "std of the rotation noise of the reported camera pose", min_value=0.0
    )


def depth_sigma(config: NoiseConfig, z: np.ndarray) -> np.ndarray:
    """Return the depth noise std (metres) at range ``z`` (metres): a + b * z^2."""
    return config.depth_sigma_m + config.depth_sigma_quadratic_per_m * np.square(z)


def noisy_depth(config: NoiseConfig, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply range-dependent noise and dropouts to a depth image.

    Args:
        config: noise model.
        depth: (H, W) float32 metres, 0 = no reading.
        rng: source of every random draw.

    Returns:
        (H, W) float32 metres, 0 = no reading; never negative, never NaN.
    """
    h, w = depth.shape
    valid = depth > 0
    out = depth.astype(np.float32, copy=True)
    noise = rng.standard_normal(depth.shape, dtype=np.float32)
    out[valid] += noise[valid] * depth_sigma(config, depth[valid]).astype(np.float32)
    drop = rng.random(depth.shape, dtype=np.float32) < config.depth_dropout_prob
    if config.depth_edge_dropout_prob > 0:
        edge = np.zeros(depth.shape, dtype=bool)
        jump_x = np.abs(np.diff(depth, axis=1)) > config.depth_edge_threshold_m
        jump_y = np.abs(np.diff(depth, axis=0)) > config.depth_edge_threshold_m
        edge[:, 1:] |= jump_x
        edge[:, :-1] |= jump_x
        edge[1:, :] |= jump_y
        edge[:-1, :] |= jump_y
        drop |= edge & (rng.random(depth.shape, dtype=np.float32) < config.depth_edge_dropout_prob)
    n_holes = rng.poisson(config.depth_holes_per_frame) if config.depth_holes_per_frame > 0 else 0
    for _ in range(n_holes):
        r_mean = config.depth_hole_radius_frac * w
        rx, ry = r_mean * rng.uniform(0.5, 1.5, size=2)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
        y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((xx - cx) / max(rx, 1e-6)) ** 2 + ((yy - cy) / max(ry, 1e-6)) ** 2 <= 1.0
        drop[y0:y1, x0:x1] |= inside
    out[drop | ~valid | (out <= 0)] = 0.0
    return out


def noisy_rgb(config: NoiseConfig, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian colour noise; (H, W, 3) uint8 in and out."""
    if config.rgb_sigma <= 0:
        return rgb
    noise = rng.standard_normal(rgb.shape, dtype=np.float32)
    noise *= config.rgb_sigma
    noise += rgb
    return np.clip(noise, 0, 255, out=noise).astype(np.uint8)


def erode_instances(instance: np.ndarray, radius_px: int) -> np.ndarray:
    """Erode every instance mask by ``radius_px`` (square structuring element).

    A pixel keeps its id only when all pixels within ``radius_px`` (Chebyshev distance) carry the
    same id; others become 0. (H, W) int32 in and out.
    """
    if radius_px <= 0:
        return instance
    h, w = instance.shape
    r = radius_px
    padded = np.pad(instance, r, mode="constant", constant_values=0)
    keep = np.ones(instance.shape, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            keep &= padded[r + dy : r + dy + h, r + dx : r + dx + w] == instance
    return np.where(keep, instance, 0).astype(np.int32)


def noisy_instances(
    config: NoiseConfig,
    instance: np.ndarray,
    labels: dict[int, str],
    vocabulary: list[str],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[int, tuple[str, float]]]:
    """Degrade a ground-truth instance image and its labels like a real segmenter.

    Args:
        config: noise model.
        instance: (H, W) int32 ids, 0 = none.
        labels: id -> true class label for (at least) the ids in ``instance``.
        vocabulary: labels a wrong guess is drawn from.
        rng: source of every random draw.

    Returns:
        (H, W) int32 instance image and id -> (label, score) for the ids still present.
    """
    out = erode_instances(instance, config.mask_erode_px).copy()  # never alias the input
    ids, counts = np.unique(out, return_counts=True)
    result: dict[int, tuple[str, float]] = {}
    removed: list[int] = []
    for iid, count in zip(ids.tolist(), counts.tolist(), strict=True):
        if iid == 0:
            continue
        if count < config.mask_min_pixels or rng.random() < config.mask_miss_prob:
            removed.append(iid)
            continue
        label = labels[iid]
        if rng.random() < config.label_flip_prob:
            others = [v for v in vocabulary if v != label]
            if others:
                label = others[int(rng.integers(len(others)))]
        result[iid] = (label, float(rng.uniform(config.score_min, 1.0)))
    if removed:
        out[np.isin(out, removed)] = 0
    return out, result


def noisy_pose(
    config: NoiseConfig, map_T_camera: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Perturb a (4, 4) pose by Gaussian translation (metres) and rotation (degrees) noise."""
    if config.pose_sigma_m <= 0 and config.pose_sigma_deg <= 0:
        return map_T_camera
    T = np.array(map_T_camera, dtype=np.float64)
    T[:3, 3] += rng.standard_normal(3) * config.pose_sigma_m
    axis_angle = rng.standard_normal(3) * math.radians(config.pose_sigma_deg)
    angle = float(np.linalg.norm(axis_angle))
    if angle > 0:
        k = axis_angle / angle
        Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        R = np.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * Kx @ Kx
        T[:3, :3] = R @ T[:3, :3]
    return T
