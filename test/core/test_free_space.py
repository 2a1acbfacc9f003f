"""Known-answer tests of the free-space keyframes."""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core.free_space import FreeSpaceConfig, FreeSpaceMap
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import InvalidInput

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


def wander(fs: FreeSpaceMap, frames: int, seed: int, t0: float = 0.0) -> list[float]:
    """Observe a box world from random poses, two image sizes, sometimes standing still.

    Returns the stamps of the frames kept as keyframes.
    """
    rng = np.random.default_rng(seed)
    world = BoxWorld(
        [
            Box(np.array([2.5, 0.0, 0.25]), np.array([0.5, 0.5, 0.5]), "crate", 1),
            Box(np.array([1.0, -2.0, 0.4]), np.array([0.6, 0.4, 0.8]), "bin", 2),
        ]
    )
    sizes = [(W, H, K), (128, 96, intrinsics(128, 96, fov_deg=60.0))]
    kept, stamp, eye, target = [], t0, EYE, TARGET
    for i in range(frames):
        stamp += 0.3
        if i % 4:  # otherwise stand still: only time decides
            eye = np.array([*rng.uniform(-1.0, 1.0, 2), rng.uniform(1.0, 1.6)])
            target = np.array([*rng.uniform(-3.0, 3.0, 2), 0.0])
        w, h, k = sizes[int(rng.integers(2))]
        f = render(world, k, look_at(eye, target), w, h, stamp)
        if fs.observe(f.depth, f.K, f.map_T_camera, stamp):
            kept.append(stamp)
    return kept


def questions(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the world and random ``before`` stamps."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-1.0, -3.0, 0.0], [4.0, 3.0, 1.5], size=(n, 3))
    return pts, rng.uniform(0.0, 40.0, size=n)


def answers(fs: FreeSpaceMap, pts: np.ndarray, before: np.ndarray) -> np.ndarray:
    # one question per small ball of points, as scene memory asks them
    return np.concatenate(
        [fs.seen_free(pts[i : i + 4], float(before[i])) for i in range(0, len(pts), 4)]
    )


def test_restored_keyframes_answer_like_the_saved_map_and_continue_its_ring() -> None:
    cfg = FreeSpaceConfig(max_keyframes=40)
    fs = FreeSpaceMap(cfg)
    kept = wander(fs, 120, seed=1)
    assert len(kept) > 60 and len(fs) == 40  # the ring wrapped
    kf = fs.keyframes()
    # oldest first: the stamps of the last 40 frames kept, in order
    assert kf.stamps.tolist() == kept[-40:]
    assert {tuple(s) for s in kf.sizes} == {(15, 20), (12, 16)}  # both image sizes kept

    back = FreeSpaceMap(FreeSpaceConfig(max_keyframes=40))
    back.restore(kf)
    assert len(back) == 40
    pts, before = questions(seed=2)
    expected = answers(fs, pts, before)
    assert 0.05 < expected.mean() < 0.95  # the questions tell seen-free from not
    assert np.array_equal(answers(back, pts, before), expected)

    # observing on, both drop the same oldest keyframes and keep the same new ones
    more_fs = wander(fs, 60, seed=3, t0=kept[-1] + 1.0)
    more_back = wander(back, 60, seed=3, t0=kept[-1] + 1.0)
    assert more_back == more_fs and len(more_fs) > 20
    pts, before = questions(seed=4)
    before += kept[-1] - 20.0  # ask about the time of the old and the new keyframes
    expected = answers(fs, pts, before)
    assert 0.05 < expected.mean() < 0.95
    assert np.array_equal(answers(back, pts, before), expected)
    assert fs.keyframes().stamps.tolist() == back.keyframes().stamps.tolist()


def test_restore_continues_from_the_newest_keyframe() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig(keyframe_max_interval_s=2.0))
    assert observe(fs, BoxWorld([]), 10.0, eye=EYE + np.array([1.0, 0.0, 0.0]))
    assert observe(fs, BoxWorld([]), 11.0)  # moved back: the newest keyframe is at EYE
    back = FreeSpaceMap(FreeSpaceConfig(keyframe_max_interval_s=2.0))
    back.restore(fs.keyframes())
    assert not observe(back, BoxWorld([]), 12.0)  # same pose as the newest, 1 s later
    assert observe(back, BoxWorld([]), 13.5)  # 2.5 s after it
    assert len(back) == 3


def test_restoring_more_keyframes_than_the_ring_holds_keeps_the_newest() -> None:
    big = FreeSpaceMap(FreeSpaceConfig(max_keyframes=100))
    kept = wander(big, 80, seed=5)
    small = FreeSpaceMap(FreeSpaceConfig(max_keyframes=10))
    small.restore(big.keyframes())
    assert small.keyframes().stamps.tolist() == kept[-10:]
    # the same as a map of 10 keyframes that saw those frames (it kept the same ones)
    reference = FreeSpaceMap(FreeSpaceConfig(max_keyframes=10))
    assert wander(reference, 80, seed=5) == kept
    pts, before = questions(seed=6)
    before += kept[-10] - 15.0
    expected = answers(reference, pts, before)
    assert expected.any() and not expected.all()
    assert np.array_equal(answers(small, pts, before), expected)
    # an empty export empties the map
    small.restore(FreeSpaceMap().keyframes())
    assert len(small) == 0 and not small.seen_free(pts, 1e9).any()


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda kf: kf.sizes.__setitem__((1, 0), -3), "keyframe 1 of 3: size is not positive"),
        (lambda kf: kf.sizes.__setitem__((2, 1), 99), "keyframe 2 of 3: size exceeds depth"),
        (lambda kf: kf.K.__setitem__((0, 0, 0), np.nan), "keyframe 0 of 3: K is not finite"),
        (lambda kf: kf.K.__setitem__((1, 1, 1), 0.0), "keyframe 1 of 3: K has fx or fy"),
        (lambda kf: kf.camera_T_map.__setitem__((2, 0, 3), np.inf), "camera_T_map is not fin"),
        (lambda kf: kf.camera_T_map.__setitem__((0, 0, 0), 3.0), "not orthonormal"),
        (lambda kf: kf.stamps.__setitem__(1, np.nan), "keyframe 1 of 3: stamp is not finite"),
        (lambda kf: kf.depth.__setitem__((0, 2, 2), -1.0), "keyframe 0 of 3: depth has NaN"),
        (lambda kf: kf.depth.__setitem__((2, 1, 1), np.nan), "keyframe 2 of 3: depth has NaN"),
        (lambda kf: setattr(kf, "K", kf.K[:2]), r"K has shape \(2, 3, 3\), expected \(3, 3, 3\)"),
    ],
)
def test_restore_refuses_bad_keyframes_and_keeps_the_map(spoil, reason: str) -> None:  # type: ignore[no-untyped-def]
    source = FreeSpaceMap()
    for t in (1.0, 4.0, 7.0):
        observe(source, BoxWorld([]), t)
    kf = source.keyframes()
    spoil(kf)
    fs = FreeSpaceMap()
    observe(fs, BoxWorld([]), 2.0)
    pts = np.array([[2.0, 0.8, 0.3]])
    assert fs.seen_free(pts, before=3.0).all()
    with pytest.raises(InvalidInput, match=reason):
        fs.restore(kf)
    assert len(fs) == 1 and fs.seen_free(pts, before=3.0).all()


# --- surface evidence (memory_node/core/support_surface.py): a thin object put on a table

TABLE = Box(np.array([2.5, 0.0, 0.35]), np.array([1.0, 1.0, 0.7]), "table", 1)  # top at 0.70 m
BOOK = Box(np.array([2.5, 0.0, 0.715]), np.array([0.25, 0.18, 0.03]), "book", 2)  # 3 cm thick
KB = intrinsics(320, 240, fov_deg=60.0)  # the change benchmark's camera


def book_top(height: float = 0.73) -> np.ndarray:
    """Points on the book's top face, as fusion would hold them."""
    xs, ys = np.meshgrid(np.linspace(2.39, 2.61, 5), np.linspace(-0.08, 0.08, 4))
    return np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, height)], -1)


def table_view(fs: FreeSpaceMap, world: BoxWorld, stamp: float, seed: int | None = None) -> None:
    """Observe the table from 2.5 m at 320x240 (``seed``: with the simulator's depth noise)."""
    f = render(world, KB, look_at(EYE, TARGET), 320, 240, stamp)
    if seed is not None:
        rng = np.random.default_rng(seed)
        valid = f.depth > 0
        f.depth[valid] += rng.standard_normal(np.count_nonzero(valid)) * (
            0.001 + 0.0025 * f.depth[valid] ** 2
        )
    fs.observe(f.depth, f.K, f.map_T_camera, stamp)


def test_the_table_top_seen_empty_frees_the_place_of_a_thin_object_put_there() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig())
    table_view(fs, BoxWorld([TABLE]), 1.0)  # the table, empty
    top = book_top()
    # hardly anything to see through: the table lies a few centimetres beyond the book's top
    assert fs.free_before(top, 5.0) < FreeSpaceConfig().appeared_min_free_fraction
    assert fs.surface_free(top, before=5.0).all()
    assert not fs.surface_free(top, before=1.0).any()  # only keyframes older than `before`
    off = FreeSpaceMap(FreeSpaceConfig(surface_evidence=False))
    table_view(off, BoxWorld([TABLE]), 1.0)
    assert not off.surface_free(top, before=5.0).any()


def test_a_thin_object_that_stood_there_all_along_is_not_free() -> None:
    for seed in range(5):
        fs = FreeSpaceMap(FreeSpaceConfig())
        table_view(fs, BoxWorld([TABLE, BOOK]), 1.0, seed)
        assert not fs.surface_free(book_top(), before=5.0).any()


def test_depth_noise_on_an_empty_table_does_not_free_the_space_just_above_it() -> None:
    # points 1 cm above the table (within the margin): the noisy table top must not pass for
    # a surface clearly below them; 4 cm above, it does
    xs, ys = np.meshgrid(np.linspace(2.1, 2.9, 9), np.linspace(-0.4, 0.4, 9))
    skin = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 0.71)], -1)
    for seed in range(5):
        fs = FreeSpaceMap(FreeSpaceConfig())
        table_view(fs, BoxWorld([TABLE]), 1.0, seed)
        assert not fs.surface_free(skin, before=5.0).any()
        assert fs.surface_free(book_top(0.74), before=5.0).all()


def test_a_place_seen_from_below_or_never_seen_has_no_surface_evidence() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig())
    table_view(fs, BoxWorld([TABLE]), 1.0)
    shelf = np.array([[2.5, 0.0, 1.6], [2.3, 0.2, 1.5]])  # above the camera (1.4 m)
    elsewhere = np.array([[-2.0, 0.0, 0.5]])  # behind the camera
    assert not fs.surface_free(shelf, before=5.0).any()
    assert not fs.surface_free(elsewhere, before=5.0).any()
    far = FreeSpaceMap(FreeSpaceConfig(surface_max_range_m=1.0))
    table_view(far, BoxWorld([TABLE]), 1.0)
    assert not far.surface_free(book_top(), before=5.0).any()  # 2.5 m > 1 m


def test_restored_keyframes_keep_their_surface_evidence_unless_exported_without_it() -> None:
    fs = FreeSpaceMap(FreeSpaceConfig())
    table_view(fs, BoxWorld([TABLE]), 1.0)
    back = FreeSpaceMap(FreeSpaceConfig())
    back.restore(fs.keyframes())
    assert back.surface_free(book_top(), before=5.0).all()
    skin = book_top(0.71)  # within the margin above the table: not free, as in the saved map
    assert not back.surface_free(skin, before=5.0).any() and not fs.surface_free(skin, 5.0).any()
    # keyframes without block heights (a file of schema version 3): no surface evidence
    old = fs.keyframes()
    old.heights, old.height_sizes = None, None
    back.restore(old)
    assert not back.surface_free(book_top(), before=5.0).any()
    assert len(back) == len(fs)


def test_only_rays_coming_down_to_a_point_count() -> None:
    # a ray going up to a point meets an object standing there below the point: a block whose
    # readings all hit lower says nothing about it
    from memory_node.core.support_surface import below_surface

    point = np.array([[0.0, 0.0, 1.0]])
    z, heights, inside = np.array([[2.0], [2.0]]), np.array([[0.9], [0.9]]), np.ones((2, 1), bool)
    origins = np.array([[-2.0, 0.0, 1.5], [-2.0, 0.0, 0.5]])  # above, below the point
    got = below_surface(point, origins, z, heights, inside, margin_m=0.02, max_range_m=3.0)
    assert got[:, 0].tolist() == [True, False]
    nan = np.full((2, 1), np.nan)
    assert not below_surface(point, origins, z, nan, inside, 0.02, 3.0).any()  # no reading


def test_each_point_reads_the_height_block_its_pixel_falls_in() -> None:
    # the height grid (surface_pool_px) is finer than the depth grid (pool_px): a point must
    # read the block of the full-resolution pixel it projects to
    from memory_node.core.support_surface import pool_heights

    cfg = FreeSpaceConfig()
    fs = FreeSpaceMap(cfg)
    f = render(BoxWorld([TABLE, BOOK]), KB, look_at(EYE, TARGET), 320, 240, 1.0)
    fs.observe(f.depth, f.K, f.map_T_camera, 1.0)
    pts = np.random.default_rng(0).uniform([1.5, -1.0, 0.0], [3.5, 1.0, 1.0], size=(300, 3))
    got = fs._readings(pts, 5.0, heights=True)
    assert got is not None
    height = got[3][0]
    camera_T_map = np.linalg.inv(f.map_T_camera)
    pc = pts @ camera_T_map[:3, :3].T + camera_T_map[:3, 3]
    u = np.floor(f.K[0, 0] * pc[:, 0] / pc[:, 2] + f.K[0, 2] + 0.5).astype(int)
    v = np.floor(f.K[1, 1] * pc[:, 1] / pc[:, 2] + f.K[1, 2] + 0.5).astype(int)
    ph = cfg.surface_pool_px
    grid = pool_heights(f.depth, f.K, f.map_T_camera, ph, cfg.min_valid_fraction)
    seen = (u >= 0) & (v >= 0) & (u < grid.shape[1] * ph) & (v < grid.shape[0] * ph)
    want = grid[v[seen] // ph, u[seen] // ph]
    np.testing.assert_allclose(height[seen], want, atol=2e-3)  # float16 storage


def box_points(box: Box, n: int = 8) -> np.ndarray:
    """Return an n x n x n grid of points filling ``box``."""
    lo, hi = box.center - box.size / 2, box.center + box.size / 2
    axes = [np.linspace(a, b, n) for a, b in zip(lo, hi, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


WALL = Box(np.array([3.5, 0.0, 1.0]), np.array([0.1, 6.0, 2.0]), "wall", 9)


def test_an_object_whose_readings_were_all_lost_is_not_seen_through() -> None:
    # A small object standing in front of a wall loses every reading (depth edges): its blocks
    # read the wall behind, but they lack at least as many readings as the object covers.
    cube = Box(np.array([2.5, 0.3, 0.6]), np.array([0.06, 0.06, 0.06]), "cube", 1)
    f = frame(BoxWorld([WALL, cube]), 1.0)
    lost = f.instance == cube.instance_id
    assert 4 <= lost.sum() <= 40  # a few pixels, within one or two blocks
    f.depth[lost] = 0.0
    fs = FreeSpaceMap(FreeSpaceConfig())
    fs.observe(f.depth, f.K, f.map_T_camera, 1.0)
    assert not fs.seen_free(box_points(cube), 2.0, (box_points(cube, 24), 0.003)).any()
    # its place seen with every reading: free (the wall is well beyond it)
    empty = FreeSpaceMap(FreeSpaceConfig())
    observe(empty, BoxWorld([WALL]), 1.0)
    assert empty.seen_free(box_points(cube), before=2.0).mean() > 0.9
    # lost readings give no evidence when the object is not known
    assert not fs.seen_free(box_points(cube), before=2.0).any()


@pytest.mark.parametrize(("share", "free"), [(1.0, True), (0.0, False)])
def test_a_few_lost_readings_do_not_hide_an_object_covering_many_pixels(
    share: float, free: bool
) -> None:
    # The place of a 0.3 m box, seen empty; a reading or two lost in each block (sensor
    # dropouts). Had the box stood there, most of its pixels would have read it: seen free.
    crate = Box(np.array([2.5, 0.3, 0.6]), np.array([0.3, 0.3, 0.3]), "crate", 1)
    f = frame(BoxWorld([WALL]), 1.0)
    f.depth[::7, ::5] = 0.0  # about 2 of the 64 readings of each 8 x 8 block
    fs = FreeSpaceMap(FreeSpaceConfig(max_missing_share=share))
    fs.observe(f.depth, f.K, f.map_T_camera, 1.0)
    footprint = (box_points(crate, 8), 0.3 / 7)  # points 4.3 cm apart: a few pixels each
    seen = fs.seen_free(box_points(crate), 2.0, footprint)
    assert (seen.mean() > 0.8) if free else not seen.any()  # its outer rim covers little
    # the same holds after a save and load (the counts of lost readings are kept)
    back = FreeSpaceMap(FreeSpaceConfig(max_missing_share=share))
    back.restore(fs.keyframes())
    assert np.array_equal(back.seen_free(box_points(crate), 2.0, footprint), seen)
