"""Known-answer tests of the colour descriptor."""

from __future__ import annotations

import numpy as np

from memory_node.core import appearance


def pixels(rgb: tuple[int, int, int], n: int = 200, jitter: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.tile(np.array(rgb, np.int64), (n, 1)) + rng.integers(-jitter, jitter + 1, (n, 3))
    return np.clip(p, 0, 255).astype(np.uint8)


def test_same_hue_under_shading_is_similar_and_other_hues_are_not() -> None:
    red = appearance.colour_descriptor(pixels((200, 40, 40), jitter=10))
    dark_red = appearance.colour_descriptor(pixels((110, 20, 20), jitter=5, seed=1))
    blue = appearance.colour_descriptor(pixels((40, 40, 200), jitter=10))
    grey = appearance.colour_descriptor(pixels((128, 128, 128), jitter=3))
    assert red is not None and red.shape == (appearance.DIM,)
    assert abs(float(np.linalg.norm(red)) - 1.0) < 1e-5
    assert appearance.similarity(red, dark_red) > 0.9  # type: ignore[operator]
    assert appearance.similarity(red, blue) < 0.1  # type: ignore[operator]
    assert appearance.similarity(red, grey) < 0.1  # type: ignore[operator]


def test_mixtures_and_missing_descriptors() -> None:
    half = np.vstack([pixels((200, 40, 40)), pixels((40, 40, 200))])
    mixed = appearance.colour_descriptor(half)
    red = appearance.colour_descriptor(pixels((200, 40, 40)))
    sim = appearance.similarity(mixed, red)
    assert sim is not None and 0.6 < sim < 0.8  # sqrt(0.5) ~ 0.71
    assert appearance.colour_descriptor(np.zeros((0, 3), np.uint8)) is None
    assert appearance.similarity(None, red) is None


def test_blend_follows_a_running_mean_and_stays_unit() -> None:
    red = appearance.colour_descriptor(pixels((200, 40, 40)))
    blue = appearance.colour_descriptor(pixels((40, 40, 200)))
    assert appearance.blend(None, red, 3) is red or np.array_equal(
        appearance.blend(None, red, 3),
        red,  # type: ignore[arg-type]
    )
    assert appearance.blend(red, None, 3) is red
    mixed = appearance.blend(red, blue, 1.0)  # equal weights
    assert mixed is not None and abs(float(np.linalg.norm(mixed)) - 1.0) < 1e-5
    s_red, s_blue = appearance.similarity(mixed, red), appearance.similarity(mixed, blue)
    assert s_red is not None and s_blue is not None and abs(s_red - s_blue) < 1e-5
    heavy = appearance.blend(red, blue, 9.0)
    assert appearance.similarity(heavy, red) > appearance.similarity(heavy, blue)  # type: ignore[operator]
