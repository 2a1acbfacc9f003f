"""Known-answer tests of the free-space keyframes."""

from __future__ import annotations

import numpy as np

from memory_node.core.free_space import FreeSpaceConfig, FreeSpaceMap
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render

W, H = 160, 120
K = intrinsics(W, H, fov_deg=70.0)
EYE = np.array([0.0, 0.0, 1.4])
TARGET = np.array([2.5, 0.0, 0.2])


def frame(world: BoxWorld, stamp: float, eye: np.ndarray = EYE):  # type: ignore[no-untyped-def]
    return render(world, K, look_at(eye, TARGET), W, H, stamp)


def observe(fs: FreeSpaceMap, world: BoxWorld, stamp: float, eye: np.ndarray = EYE) -> bool:
    f = frame(world, stamp, eye)
    return fs.observe(f.depth, f.K, f.map_T_camera, stamp)


def test_space_above_the_floor_is_seen_free_but_not_behind_a_box() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig())
    crate = Box(np.array([2.5, 0.0, 0.25]), np.array([0.5, 0.5, 0.5]), "crate", 1)
    assert observe(fs, BoxWorld([crate]), 10.0)
    above_floor = np.array([[2.0, 0.8, 0.3], [2.2, -0.6, 0.35]])  # rays to the floor pass
    inside_crate = np.array([[2.5, 0.0, 0.25], [2.7, 0.1, 0.2]])
    behind_crate = np.array([[3.2, 0.0, 0.1]])  # hidden by the crate
    assert fs.seen_free(above_floor, before=11.0).all()
    assert not fs.seen_free(inside_crate, before=11.0).any()
    assert not fs.seen_free(behind_crate, before=11.0).any()
    # only keyframes older than `before` count
    assert not fs.seen_free(above_floor, before=10.0).any()
    assert fs.free_before(np.vstack([above_floor, inside_crate]), 11.0) == 0.5


def test_out_of_range_and_invalid_depth_give_no_evidence() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig(max_range_m=1.0))
    observe(fs, BoxWorld([]), 1.0)
    assert not fs.seen_free(np.array([[2.0, 0.0, 0.2]]), before=5.0).any()  # 2 m > 1 m
    fs = FreeSpaceMap(FreeSpaceConfig())
    f = frame(BoxWorld([]), 1.0)
    f.depth[:] = 0.0  # no reading anywhere
    fs.observe(f.depth, f.K, f.map_T_camera, 1.0)
    assert not fs.seen_free(np.array([[2.0, 0.0, 0.2]]), before=5.0).any()


def test_keyframes_are_taken_on_motion_or_time_and_bounded() -> None:
    cfg = FreeSpaceConfig(keyframe_max_interval_s=2.0, max_keyframes=3)
    fs = FreeSpaceMap(cfg)
    world = BoxWorld([])
    assert observe(fs, world, 0.0)
    assert not observe(fs, world, 0.5)  # same pose, little time
    assert observe(fs, world, 2.5)  # time passed
    assert observe(fs, world, 2.6, eye=EYE + np.array([0.5, 0.0, 0.0]))  # moved
    assert observe(fs, world, 2.7, eye=EYE + np.array([1.0, 0.0, 0.0]))
    assert len(fs) == 3  # oldest dropped
    # the first keyframe (t=0) is gone: nothing is older than 1.0 any more
    assert not fs.seen_free(np.array([[2.0, 0.8, 0.3]]), before=1.0).any()


def test_points_spread_around_the_camera_are_each_judged_by_the_keyframes_that_see_them() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig())
    observe(fs, BoxWorld([]), 1.0)  # looking along +x from EYE
    ahead = np.array([2.0, 0.8, 0.3])
    behind = np.array([-2.0, 0.0, 0.3])
    # one ball holding both: the keyframe must still be consulted for the point ahead
    assert fs.seen_free(np.vstack([ahead, behind]), before=5.0).tolist() == [True, False]
    assert not fs.seen_free(behind[None], before=5.0).any()  # only behind: nothing seen
