"""Known-answer tests of frames -> 3-D points, validity masks and voxel keys."""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core.geometry import (
    DepthConfig,
    FrameRejected,
    backproject,
    depth_weights,
    flying_pixel_mask,
    invert_transform,
    key_centers,
    key_indices,
    pack_indices,
    project_points,
    validate_frame,
    voxel_keys,
    voxelize,
    voxelize_weighted,
)
from memory_node.core.types import Frame, InvalidInput

W, H = 64, 48
K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])


def frame(depth: np.ndarray, pose: np.ndarray | None = None, **kw: object) -> Frame:
    h, w = depth.shape
    return Frame(
        stamp=1.0,
        rgb=np.zeros((h, w, 3), np.uint8),
        depth=depth.astype(np.float32),
        K=K.copy(),
        map_T_camera=np.eye(4) if pose is None else pose,
        **kw,  # type: ignore[arg-type]
    )


def test_plane_at_two_metres_gives_z_two_and_pinhole_xy() -> None:
    cfg = DepthConfig(pixel_stride=1)
    depth = np.full((H, W), 2.0, np.float32)
    fp, ok = backproject(depth, K, np.eye(4), cfg)
    assert ok.all()
    assert fp.points_map.shape == (H * W, 3)
    np.testing.assert_allclose(fp.points_map[:, 2], 2.0)
    # Pixel (row 0, col 0): x = (0 - cx) * z / fx.
    np.testing.assert_allclose(fp.points_map[0, :2], [-31.5 * 2 / 50, -23.5 * 2 / 50], rtol=1e-6)
    # The principal point maps onto the optical axis (cx, cy are half-pixels here: check symmetry).
    np.testing.assert_allclose(fp.points_map[:, 0].mean(), 0.0, atol=1e-5)


def test_pose_transforms_points_into_the_map_frame() -> None:
    cfg = DepthConfig(pixel_stride=1)
    depth = np.full((H, W), 1.0, np.float32)
    # Camera at (1, 2, 3) looking along map +x: optical z -> map x, optical x -> map -y,
    # optical y -> map -z.
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    T[:3, 3] = [1, 2, 3]
    fp, _ = backproject(depth, K, T, cfg)
    np.testing.assert_allclose(fp.points_map[:, 0], 2.0, atol=1e-6)  # 1 + depth 1
    centre = fp.points_map.mean(axis=0)
    np.testing.assert_allclose(centre, [2.0, 2.0, 3.0], atol=1e-4)


def test_invalid_readings_are_masked() -> None:
    cfg = DepthConfig(pixel_stride=1, max_depth_m=5.0, flying_pixel_jump_rel=0.0)
    depth = np.full((H, W), 2.0, np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = 0.0
    depth[2, 2] = 7.0  # beyond range
    depth[3, 3] = np.inf
    fp, ok = backproject(depth, K, np.eye(4), cfg)
    assert not ok[0, 0] and not ok[1, 1] and not ok[2, 2] and not ok[3, 3]
    assert fp.points_map.shape[0] == H * W - 4
    assert np.isfinite(fp.points_map).all()


def test_flying_pixels_at_a_depth_step_are_removed() -> None:
    depth = np.full((H, W), 1.0, np.float32)
    depth[:, W // 2 :] = 3.0
    flag = flying_pixel_mask(depth, 0.05)
    # Only the two columns at the step are flagged.
    assert flag[:, W // 2 - 1].all() and flag[:, W // 2].all()
    assert flag.sum() == 2 * H
    # A smooth slope is not an edge.
    slope = np.tile(np.linspace(1.0, 1.5, W, dtype=np.float32), (H, 1))
    assert not flying_pixel_mask(slope, 0.05).any()


def test_stride_subsamples_the_grid() -> None:
    depth = np.full((H, W), 2.0, np.float32)
    fp, ok = backproject(depth, K, np.eye(4), DepthConfig(pixel_stride=4))
    assert ok.shape == (H // 4, W // 4)
    assert fp.points_map.shape[0] == (H // 4) * (W // 4)
    assert set(np.unique(fp.cols)) == set(range(0, W, 4))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: setattr(f, "depth", np.zeros((H, W), np.float32)), "no_valid_depth"),
        (lambda f: setattr(f, "depth", np.full((H, W), np.nan, np.float32)), "no_valid_depth"),
        # 16UC1 full of 65535 mm, converted to metres by the node.
        (lambda f: setattr(f, "depth", np.full((H, W), 65.535, np.float32)), "no_valid_depth"),
        (lambda f: setattr(f, "rgb", np.zeros((H + 2, W, 3), np.uint8)), "size_mismatch"),
        (lambda f: f.map_T_camera.__setitem__((0, 3), np.nan), "pose"),
        (
            lambda f: f.map_T_camera.__setitem__((slice(0, 3), slice(0, 3)), 1.1 * np.eye(3)),
            "pose",
        ),
        (lambda f: f.K.__setitem__((0, 0), 0.0), "intrinsics"),
        (lambda f: setattr(f, "stamp", float("nan")), "stamp"),
        (lambda f: setattr(f, "instance", np.zeros((H, W + 1), np.int32)), "instance_shape"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    f = frame(np.full((H, W), 2.0, np.float32), pose=np.eye(4))
    mutate(f)
    with pytest.raises(InvalidInput) as info:
        validate_frame(f, DepthConfig())
    assert isinstance(info.value, FrameRejected)
    assert info.value.reason == reason
    assert str(info.value)


def test_good_frame_passes_validation() -> None:
    validate_frame(frame(np.full((H, W), 2.0, np.float32)), DepthConfig())


def test_voxel_keys_round_trip_including_negative_coordinates() -> None:
    pts = np.array([[0.01, -0.01, 0.0], [-1.26, 2.5, -3.99], [100.0, -100.0, 50.0]], np.float32)
    keys = voxel_keys(pts, 0.025)
    idx = key_indices(keys)
    np.testing.assert_array_equal(idx, np.floor(pts / 0.025).astype(np.int64))
    np.testing.assert_array_equal(pack_indices(idx), keys)
    c = key_centers(keys, 0.025)
    assert np.all(np.abs(c - pts) <= 0.0125 + 1e-5)


def test_voxelize_averages_points_per_voxel() -> None:
    pts = np.array([[0.001, 0.001, 0.001], [0.003, 0.003, 0.003], [0.5, 0.5, 0.5]], np.float32)
    keys, means = voxelize(pts, 0.025)
    assert keys.size == 2 and np.all(np.diff(keys) > 0)
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order[0]], [0.002, 0.002, 0.002], atol=1e-6)


def test_projection_inverts_backprojection() -> None:
    cfg = DepthConfig(pixel_stride=1)
    T = np.eye(4)
    T[:3, 3] = [0.5, -0.2, 0.1]
    depth = np.full((H, W), 1.5, np.float32)
    fp, _ = backproject(depth, K, T, cfg)
    u, v, z = project_points(fp.points_map, invert_transform(T), K)
    np.testing.assert_allclose(u, fp.cols, atol=1e-3)
    np.testing.assert_allclose(v, fp.rows, atol=1e-3)
    np.testing.assert_allclose(z, 1.5, atol=1e-5)


def test_depth_weights_are_inverse_variance_of_a_quadratic_depth_noise() -> None:
    w = depth_weights(np.array([1.0, 2.5, 5.0, 7.5], np.float32), 2.5)
    np.testing.assert_allclose(w, [1.0, 1.0, 1 / 16, 1 / 81], rtol=1e-6)
    np.testing.assert_allclose(depth_weights(np.array([9.0]), 0.0), [1.0])


def test_backprojected_points_carry_their_depth_weight() -> None:
    depth = np.full((H, W), 2.0, np.float32)
    depth[:, W // 2 :] = 5.0
    fp, _ = backproject(depth, K, np.eye(4), DepthConfig(pixel_stride=1, full_weight_range_m=2.5))
    assert fp.weights is not None and fp.weights.shape == (fp.points_map.shape[0],)
    near = fp.points_map[:, 2] < 3.0
    np.testing.assert_allclose(fp.weights[near], 1.0)
    np.testing.assert_allclose(fp.weights[~near], 1 / 16, rtol=1e-5)


def test_voxelize_weighted_averages_points_and_weights_per_voxel() -> None:
    pts = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5]], np.float32)
    keys, means, w = voxelize_weighted(pts, 0.1, np.array([1.0, 0.5, 0.25], np.float32))
    assert keys.size == 2
    k0, _ = voxelize(pts, 0.1)
    np.testing.assert_array_equal(keys, k0)
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order[0]], [0.015] * 3, atol=1e-6)
    np.testing.assert_allclose(w[order], [0.75, 0.25])
