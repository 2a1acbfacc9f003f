"""Tests of the simulated sensor imperfections: statistics, seeding, masks and labels."""

from __future__ import annotations

import numpy as np
import pytest

from memory_sim.camera import look_pose
from memory_sim.scene import ObjectSpec, PartSpec, Pose, SceneSpec
from memory_sim.sensor_noise import (
    NoiseConfig,
    depth_sigma,
    erode_instances,
    noisy_depth,
    noisy_instances,
)
from memory_sim.simulator import SimConfig, Simulator


def _quiet(**changes: float) -> NoiseConfig:
    """Return a noise model with every imperfection off except ``changes``."""
    config = NoiseConfig(
        depth_sigma_m=0.0,
        depth_sigma_quadratic_per_m=0.0,
        depth_dropout_prob=0.0,
        depth_holes_per_frame=0.0,
        depth_edge_dropout_prob=0.0,
        rgb_sigma=0.0,
        mask_erode_px=0,
        mask_miss_prob=0.0,
        mask_min_pixels=0,
        label_flip_prob=0.0,
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.mark.parametrize("z", [1.0, 4.0])
def test_depth_noise_std_follows_a_plus_b_z_squared(z: float) -> None:
    config = _quiet(depth_sigma_m=0.002, depth_sigma_quadratic_per_m=0.003)
    depth = np.full((200, 200), z, np.float32)
    out = noisy_depth(config, depth, np.random.default_rng(1))
    expected = 0.002 + 0.003 * z**2
    assert float(depth_sigma(config, np.array(z))) == pytest.approx(expected)
    assert np.std(out - z) == pytest.approx(expected, rel=0.05)
    assert abs(np.mean(out - z)) < 0.1 * expected


def test_dropout_and_holes_zero_pixels_and_never_produce_nan() -> None:
    depth = np.full((120, 160), 2.0, np.float32)
    dropped = noisy_depth(_quiet(depth_dropout_prob=0.2), depth, np.random.default_rng(0))
    assert np.mean(dropped == 0) == pytest.approx(0.2, abs=0.02)
    holes = noisy_depth(
        _quiet(depth_holes_per_frame=3.0, depth_hole_radius_frac=0.05),
        depth,
        np.random.default_rng(0),
    )
    assert 0 < np.mean(holes == 0) < 0.5
    assert np.all(np.isfinite(holes)) and np.all(holes >= 0)


def test_depth_edges_lose_readings() -> None:
    depth = np.full((40, 40), 1.0, np.float32)
    depth[:, 20:] = 3.0
    out = noisy_depth(_quiet(depth_edge_dropout_prob=1.0), depth, np.random.default_rng(0))
    assert np.all(out[:, 19:21] == 0)
    assert np.all(out[:, :19] == 1.0) and np.all(out[:, 21:] == 3.0)


def test_erosion_known_answer() -> None:
    inst = np.zeros((9, 9), np.int32)
    inst[2:7, 2:7] = 5
    out = erode_instances(inst, 1)
    expected = np.zeros_like(inst)
    expected[3:6, 3:6] = 5
    np.testing.assert_array_equal(out, expected)


def test_missed_masks_and_label_flips() -> None:
    inst = np.zeros((20, 20), np.int32)
    inst[:10] = 1
    inst[10:] = 2
    labels = {1: "mug", 2: "duck"}
    rng = np.random.default_rng(0)
    out, lab = noisy_instances(_quiet(mask_miss_prob=1.0), inst, labels, ["mug", "duck"], rng)
    assert not out.any() and lab == {}
    out, lab = noisy_instances(_quiet(label_flip_prob=1.0), inst, labels, ["mug", "duck"], rng)
    assert lab[1][0] == "duck" and lab[2][0] == "mug"
    np.testing.assert_array_equal(out, inst)
    out, lab = noisy_instances(_quiet(mask_min_pixels=500), inst, labels, ["mug"], rng)
    assert lab == {}


def _scene() -> SceneSpec:
    return SceneSpec(
        "s",
        objects=[
            ObjectSpec(
                "wall", "wall", Pose((3.0, 0, 1)), parts=(PartSpec("box", (0.1, 8, 3)),),
                structure=True,
            ),
            ObjectSpec("cube", "box", Pose((2.0, 0, 1.0)), parts=(PartSpec("box", (0.4,) * 3),)),
        ],
    )  # fmt: skip


def _frames(seed: int, enabled: bool = True) -> list[np.ndarray]:
    config = SimConfig(seed=seed)
    config.camera.width_px, config.camera.height_px = 64, 48
    config.noise.enabled = enabled
    config.noise.pose_sigma_m = 0.01
    with Simulator(_scene(), config) as sim:
        step = sim.step(look_pose(np.array([0.0, 0.0, 1.0]), 0.0, 0.0))
    f = step.frame
    assert f.instance is not None
    return [f.rgb, f.depth, f.instance, f.map_T_camera, step.truth.map_T_camera, step.depth_truth]


def test_noise_is_seeded() -> None:
    a, b, c = _frames(3), _frames(3), _frames(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_noise_off_gives_ground_truth_and_pose_noise_only_touches_reported_pose() -> None:
    clean = _frames(0, enabled=False)
    noisy = _frames(0, enabled=True)
    np.testing.assert_array_equal(clean[1], clean[5])  # depth == truth
    np.testing.assert_array_equal(clean[3], clean[4])  # pose == truth
    np.testing.assert_array_equal(noisy[4], clean[4])  # true pose unchanged
    assert 0 < np.abs(noisy[3][:3, 3] - noisy[4][:3, 3]).max() < 0.1
    assert np.all(np.isfinite(noisy[3]))
