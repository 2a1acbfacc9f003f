"""A cheap colour descriptor of an object's pixels, for re-identifying moved objects.

Label-text features say *what* an object is, not *which* one: two mugs have the same label
feature. The open_clip image features can tell instances apart but cost a network pass per crop.
This descriptor is a hue histogram of the object's (strided) mask pixels, with three extra bins
for unsaturated pixels (dark, mid, bright), computed in microseconds for every detection.
Hue is fairly stable under the brightness changes of shading and viewpoint; the histogram is
square-rooted and unit-normalised, so the dot product of two descriptors is their
Bhattacharyya coefficient (1 = same colour distribution, 0 = disjoint).
"""

from __future__ import annotations

import numpy as np

HUE_BINS = 18
DIM = HUE_BINS + 3
MIN_SATURATION = 0.2
MIN_VALUE = 0.12
MAX_PIXELS = 500  # pixels sampled per detection (evenly)


def colour_descriptor(pixels: np.ndarray) -> np.ndarray | None:
    """Return the (DIM,) float32 unit descriptor of (N, 3) uint8 RGB pixels (None when N = 0)."""
    if pixels.size == 0:
        return None
    rgb = np.asarray(pixels, np.float32).reshape(-1, 3) / 255.0
    mx = rgb.max(axis=1)
    mn = rgb.min(axis=1)
    chroma = mx - mn
    sat = np.where(mx > 1e-6, chroma / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    safe = np.maximum(chroma, 1e-6)
    hue = (
        np.where(
            mx == r,
            ((g - b) / safe) % 6.0,
            np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
        )
        / 6.0
    )  # in [0, 1)
    coloured = (sat >= MIN_SATURATION) & (mx >= MIN_VALUE)
    hist = np.zeros(DIM, np.float64)
    if coloured.any():
        bins = np.minimum((hue[coloured] * HUE_BINS).astype(np.int64), HUE_BINS - 1)
        hist[:HUE_BINS] = np.bincount(bins, minlength=HUE_BINS)
    grey = mx[~coloured]
    if grey.size:
        hist[HUE_BINS:] = np.bincount(np.minimum((grey * 3.0).astype(np.int64), 2), minlength=3)
    hist = np.sqrt(hist / hist.sum())
    out: np.ndarray = (hist / np.linalg.norm(hist)).astype(np.float32)
    return out


def blend(old: np.ndarray | None, new: np.ndarray | None, weight: float) -> np.ndarray | None:
    """Return the running mean (``weight`` = observations already in ``old``), unit-norm."""
    if new is None:
        return old
    if old is None or old.shape != new.shape:
        return new.astype(np.float32)
    w = min(max(weight, 0.0), 50.0)  # a cap keeps the mean able to follow a repaint
    mixed = (w * old + new) / (w + 1.0)
    n = float(np.linalg.norm(mixed))
    out: np.ndarray = (mixed / n).astype(np.float32) if n > 0 else new.astype(np.float32)
    return out


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Bhattacharyya coefficient of two descriptors, None when either is missing."""
    if a is None or b is None or a.shape != b.shape:
        return None
    return float(np.clip(np.dot(a, b), 0.0, 1.0))
