"""Known-answer tests of the visibility evidence (seen through / consistent / occluded)."""

from __future__ import annotations

import numpy as np

from memory_node.core.geometry import invert_transform
from memory_node.core.synthetic import intrinsics, look_at
from memory_node.core.visibility import VisibilityConfig, check_points, frustum_box

W, H = 80, 60
K = intrinsics(W, H, fov_deg=60.0)
# Camera at the origin looking along map +x.
POSE = look_at(np.zeros(3), np.array([1.0, 0.0, 0.0]))
CAM_T_MAP = invert_transform(POSE)


def patch(x: float) -> np.ndarray:
    """Make a 0.2 m square of points facing the camera at distance x, map frame."""
    g = np.linspace(-0.1, 0.1, 9)
    yy, zz = np.meshgrid(g, g)
    return np.stack([np.full(yy.size, x), yy.ravel(), zz.ravel()], axis=1).astype(np.float32)


def wall(distance: float) -> np.ndarray:
    return np.full((H, W), distance, np.float32)


def test_points_in_front_of_a_farther_wall_are_seen_through() -> None:
    cfg = VisibilityConfig()
    ev = check_points(patch(2.0), wall(3.0), K, CAM_T_MAP, cfg)
    assert ev.in_view == 81 and ev.seen_through == 81
    assert ev.is_miss(cfg) and not ev.is_there(cfg)


def test_points_on_the_observed_surface_are_consistent() -> None:
    cfg = VisibilityConfig()
    ev = check_points(patch(2.0), wall(2.05), K, CAM_T_MAP, cfg)
    assert ev.consistent == 81
    assert ev.is_there(cfg) and not ev.is_miss(cfg)


def test_points_behind_a_nearer_surface_are_occluded_not_missing() -> None:
    cfg = VisibilityConfig()
    ev = check_points(patch(2.0), wall(1.0), K, CAM_T_MAP, cfg)
    assert ev.occluded == 81
    assert not ev.is_miss(cfg) and not ev.is_there(cfg)


def test_out_of_view_beyond_range_or_without_reading_gives_no_evidence() -> None:
    cfg = VisibilityConfig(max_range_m=4.0)
    behind = patch(-2.0)
    assert check_points(behind, wall(3.0), K, CAM_T_MAP, cfg).in_view == 0
    far = patch(5.0)
    assert check_points(far, wall(6.0), K, CAM_T_MAP, cfg).in_view == 0
    no_reading = np.zeros((H, W), np.float32)
    ev = check_points(patch(2.0), no_reading, K, CAM_T_MAP, cfg)
    assert ev.in_view == 0 and not ev.is_miss(cfg)


def test_frustum_box_holds_the_camera_and_the_far_corners() -> None:
    lo, hi = frustum_box(K, (H, W), POSE, 4.0)
    assert np.all(lo <= 0.0) and np.all(hi >= 0.0)
    assert hi[0] >= 4.0 - 1e-6 and lo[0] <= 0.0
    assert hi[1] > 1.0 and lo[1] < -1.0  # half-width at 4 m with a 60 degree field of view


def owners(code: int, stride: int = 2) -> np.ndarray:
    """Return an owner grid (stride 2) with every pixel covered by a detection of ``code``."""
    return np.full((H // stride, W // stride), code, np.int32)


def test_voxels_where_another_labels_surface_lies_just_behind_are_claimed() -> None:
    cfg = VisibilityConfig()
    surface = wall(2.06)  # a shelf 6 cm behind a thin block's voxels: within the margin
    plain = check_points(patch(2.0), surface, K, CAM_T_MAP, cfg)
    assert plain.consistent == 81 and plain.claimed == 0 and plain.is_there(cfg)
    ev = check_points(patch(2.0), surface, K, CAM_T_MAP, cfg, owners(0), 2, own_code=1)
    assert ev.consistent == 81 and ev.claimed == 81
    assert ev.is_miss(cfg) and not ev.is_there(cfg)
    # its own label's mask there: the object itself (or one like it) is seen, not a miss
    same = check_points(patch(2.0), surface, K, CAM_T_MAP, cfg, owners(1), 2, own_code=1)
    assert same.claimed == 0 and same.is_there(cfg)
    # no detection covers the pixels (a missed detection): no claim
    none = check_points(patch(2.0), surface, K, CAM_T_MAP, cfg, owners(-1), 2, own_code=1)
    assert none.claimed == 0 and none.is_there(cfg)
    off = VisibilityConfig(use_masks=False)
    assert check_points(patch(2.0), surface, K, CAM_T_MAP, off, owners(0), 2, 1).claimed == 0


def test_a_surface_shared_with_or_in_front_of_the_voxels_is_no_claim() -> None:
    cfg = VisibilityConfig()
    for reading in (2.01, 1.97):  # the same surface (a mislabelled duplicate), or in front
        ev = check_points(patch(2.0), wall(reading), K, CAM_T_MAP, cfg, owners(0), 2, 1)
        assert ev.consistent == 81 and ev.claimed == 0, reading
        assert ev.is_there(cfg) and not ev.is_miss(cfg)
