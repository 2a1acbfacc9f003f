"""Segmentation front-ends: given masks (known answers) and the geometric segmenter."""

from __future__ import annotations

import os

import numpy as np
import pytest

from memory_node.core.geometry import DepthConfig, backproject
from memory_node.core.segmentation import (
    SegmentationConfig,
    fit_planes,
    segment_frame,
    segment_geometric,
    segment_given,
)
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import Frame

W, H = 160, 120
K = intrinsics(W, H, 70.0)
POSE = look_at(np.array([0.0, 0.0, 1.4]), np.array([2.5, 0.0, 0.2]))
VS = 0.025


def scene() -> Frame:
    world = BoxWorld(
        [
            Box(np.array([2.5, 0.0, 0.25]), np.array([0.5] * 3), "crate", 7),
            Box(np.array([2.2, 0.9, 0.15]), np.array([0.3] * 3), "mug", 9),
        ]
    )
    return render(world, K, POSE, W, H, 1.0)


def points(f: Frame, stride: int = 1):  # type: ignore[no-untyped-def]
    fp, _ = backproject(f.depth, f.K, f.map_T_camera, DepthConfig(pixel_stride=stride))
    return fp


def test_given_masks_give_one_detection_per_labelled_instance() -> None:
    f = scene()
    dets, ignored = segment_given(f, points(f), VS, SegmentationConfig())
    assert ignored == 0
    assert sorted((d.instance_id, d.label) for d in dets) == [(7, "crate"), (9, "mug")]
    crate = next(d for d in dets if d.label == "crate")
    # Every point of the crate lies on the crate's surface.
    assert np.all(crate.points >= np.array([2.25, -0.25, 0.0]) - 1e-3)
    assert np.all(crate.points <= np.array([2.75, 0.25, 0.5]) + 1e-3)
    assert np.all(np.diff(crate.keys) > 0) and crate.means.shape == (crate.keys.size, 3)
    c0, r0, c1, r1 = crate.bbox_px
    assert 0 <= c0 < c1 <= W and 0 <= r0 < r1 <= H


def test_given_detections_carry_voxel_weights_from_depth() -> None:
    f = scene()
    fp = points(f)
    assert fp.weights is not None
    dets, _ = segment_given(f, fp, VS, SegmentationConfig())
    crate = next(d for d in dets if d.label == "crate")
    assert crate.weights is not None and crate.weights.shape == crate.keys.shape
    # The crate is 2.2-2.9 m away: the nearest voxels count fully, the farthest less.
    assert crate.weights.max() == 1.0 and 0.4 < crate.weights.min() < 1.0


def test_ids_missing_from_labels_are_ignored_and_tiny_masks_dropped() -> None:
    f = scene()
    assert f.instance is not None and f.instance_labels is not None
    f.instance[-2:, :2] = 42  # 4 floor pixels of an unlabelled id
    f.instance_labels[43] = ("ghost", 1.0)  # a labelled id with no pixel
    del f.instance_labels[9]
    dets, ignored = segment_given(f, points(f), VS, SegmentationConfig(min_points=5))
    assert [d.label for d in dets] == ["crate"]
    assert ignored == 2  # ids 9 and 42


def test_labels_none_accepts_every_instance_unlabelled() -> None:
    f = scene()
    f.instance_labels = None
    dets, _ = segment_given(f, points(f), VS, SegmentationConfig())
    assert sorted(d.label for d in dets) == ["", ""]


def test_auto_mode_uses_masks_when_present_and_geometry_otherwise() -> None:
    f = scene()
    cfg = SegmentationConfig(mode="auto")
    dets, _ = segment_frame(f, points(f), VS, cfg)
    assert sorted(d.label for d in dets) == ["crate", "mug"]
    f.instance = None
    dets, _ = segment_frame(f, points(f), VS, cfg)
    assert dets and all(d.label == "" for d in dets)


def test_ransac_finds_the_floor() -> None:
    rng = np.random.default_rng(0)
    floor = np.c_[rng.uniform(0, 3, (2000, 2)), rng.normal(0, 0.003, 2000)]
    blob = rng.normal([1.5, 1.5, 0.5], 0.05, (300, 3))
    pts = np.vstack([floor, blob]).astype(np.float32)
    on = fit_planes(pts, SegmentationConfig(), rng)
    assert on[:2000].mean() > 0.98 and on[2000:].mean() < 0.05


def test_geometric_segmenter_separates_two_boxes_on_the_floor() -> None:
    f = scene()
    for clustering in ("image", "dbscan"):
        if clustering == "dbscan":
            pytest.importorskip("open3d")
        # At 160x120 the crate's top, seen at a grazing angle, has rows ~6 cm apart: DBSCAN
        # needs a wider radius than its 640x480 default.
        cfg = SegmentationConfig(
            geometric_clustering=clustering, geometric_min_points=20, dbscan_eps_m=0.08
        )
        dets = segment_geometric(f, points(f), VS, cfg)
        assert len(dets) == 2, clustering
        centres = sorted((tuple(d.points.mean(axis=0)[:2]) for d in dets), key=lambda c: c[1])
        # The crate (seen front and top) and the mug, by their xy.
        assert abs(centres[0][1]) < 0.2 and abs(centres[1][1] - 0.9) < 0.2


ICL = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "icl_nuim_livingroom"
)


@pytest.mark.skipif(not os.path.isdir(ICL), reason="ICL-NUIM frames not available")
def test_geometric_segmenter_on_real_icl_nuim_frame() -> None:
    from PIL import Image

    depth = np.asarray(Image.open(os.path.join(ICL, "depth", "00000.png")), np.float32) / 1000.0
    rgb = np.asarray(Image.open(os.path.join(ICL, "color", "00000.jpg")).convert("RGB"))
    with open(os.path.join(ICL, "trajectory.log")) as fh:
        rows = [r.split() for r in fh.read().splitlines() if r]
    pose = np.array([[float(x) for x in r] for r in rows[1:5]])
    Kicl = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
    f = Frame(0.0, rgb, depth, Kicl, pose)
    fp, _ = backproject(depth, Kicl, pose, DepthConfig(pixel_stride=4))
    dets = segment_geometric(f, fp, VS, SegmentationConfig())
    # The floor and walls are removed; what remains is a handful of object-sized segments.
    assert 3 <= len(dets) <= 40
    for d in dets:
        assert np.all(d.points.max(axis=0) - d.points.min(axis=0) <= 3.0)
    assert sum(d.num_pixels for d in dets) < 0.8 * fp.points_map.shape[0]


def test_join_touching_joins_chains_and_keeps_far_segments_apart() -> None:
    from memory_node.core.segmentation import _join_touching

    # Segments 3 -> 1 -> 0 touch in a chain (2 cm apart); segment 2 is 1 m away; -1 stays none.
    pts = np.array(
        [[0.0, 0, 0], [0.02, 0, 0], [0.04, 0, 0], [1.0, 1, 1], [0.5, 0.5, 0.5]], np.float32
    )
    labels = np.array([3, 1, 0, 2, -1], np.int64)
    out = _join_touching(pts, labels, 0.03)
    assert out.tolist() == [0, 0, 0, 2, -1]
