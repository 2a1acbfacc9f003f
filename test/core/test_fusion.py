"""Known-answer tests of voxel fusion, association scores, assignment and the spatial index."""

from __future__ import annotations

import numpy as np

from memory_node.core.association import (
    INFEASIBLE,
    AssociationConfig,
    assign,
    detection_geometry,
    pair_score,
)
from memory_node.core.fusion import (
    MappingConfig,
    box_voxels,
    fuse,
    merge_models,
    new_model,
    refresh_geometry,
    remove_outliers,
    replace_geometry,
)
from memory_node.core.segmentation import Detection
from memory_node.core.spatial_index import GridIndex, PatchLayer

VS = 0.025


def cube(center: tuple[float, float, float], side: float = 0.2, label: str = "box") -> Detection:
    g = np.arange(-side / 2, side / 2 + 1e-9, VS / 2)
    xx, yy, zz = np.meshgrid(g, g, g)
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1) + np.asarray(center)
    pts = pts.astype(np.float32)
    return Detection.from_points(pts, VS, label, 1.0, "", 1, (0, 0, 1, 1), pts.shape[0])


def test_fusing_the_same_detection_twice_keeps_voxels_and_counts_hits() -> None:
    cfg = MappingConfig()
    d = cube((1.0, 0.0, 0.5))
    m = new_model(0, d, 1.0, cfg)
    n = m.keys.size
    fuse(m, cube((1.0, 0.0, 0.5)), 2.0, cfg)
    assert m.keys.size == n
    assert np.all(m.hits == 2.0)
    assert m.obj.observations == 2 and m.obj.last_seen == 2.0 and m.obj.first_seen == 1.0
    # The box spans the voxel means: within a quarter voxel of the true faces here.
    np.testing.assert_allclose(m.obj.center, [1.0, 0.0, 0.5], atol=0.01)
    np.testing.assert_allclose(m.obj.size, [0.2, 0.2, 0.2], atol=0.015)
    assert m.obj.label == "box" and m.obj.label_confidence == 1.0


def test_label_votes_pick_the_majority() -> None:
    cfg = MappingConfig()
    m = new_model(0, cube((0, 0, 0), label="cup"), 1.0, cfg)
    fuse(m, cube((0, 0, 0), label="mug"), 2.0, cfg)
    fuse(m, cube((0, 0, 0), label="mug"), 3.0, cfg)
    assert m.obj.label == "mug"
    assert abs(m.obj.label_confidence - 2 / 3) < 1e-6


def test_voxel_cap_bounds_an_object() -> None:
    cfg = MappingConfig(max_voxels_per_object=50)
    m = new_model(0, cube((0, 0, 0), side=0.5), 1.0, cfg)
    assert m.keys.size == 50 and m.means.shape == (50, 3) and m.hits.size == 50
    assert np.all(np.diff(m.keys) > 0)


def test_the_cap_keeps_a_large_object_growing_over_new_views() -> None:
    # A 3 x 2 m slab seen in two halves: both fit, so the box spans the whole slab.
    cfg = MappingConfig()
    g = np.arange(0.0, 1.5, VS / 2)
    xx, yy = np.meshgrid(g, np.arange(0.0, 2.0, VS / 2))
    half = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], axis=1).astype(np.float32)
    d1 = Detection.from_points(half, VS, "carpet", 1.0, "", 1, (0, 0, 1, 1), half.shape[0])
    other = half + np.float32([1.5, 0.0, 0.0])
    d2 = Detection.from_points(other, VS, "carpet", 1.0, "", 1, (0, 0, 1, 1), half.shape[0])
    m = new_model(0, d1, 1.0, cfg)
    fuse(m, d1, 2.0, cfg)
    fuse(m, d2, 3.0, cfg)
    np.testing.assert_allclose(m.obj.size[:2], [3.0, 2.0], atol=0.03)


def weighted(det: Detection, weight: float) -> Detection:
    det.weights = np.full(det.keys.size, weight, np.float32)
    return det


def test_far_noisy_voxels_count_less_and_do_not_stretch_the_box() -> None:
    cfg = MappingConfig()
    m = new_model(0, cube((0, 0, 0)), 1.0, cfg)
    fuse(m, cube((0, 0, 0)), 2.0, cfg)
    assert np.all(m.hits == 2.0)
    # A far view (weight 1/16) with readings smeared 10 cm behind the cube.
    far = weighted(cube((0.1, 0, 0)), 1 / 16)
    fuse(m, far, 3.0, cfg)
    assert m.hits.max() == np.float32(2 + 1 / 16) and m.hits.min() == np.float32(1 / 16)
    np.testing.assert_allclose(m.obj.center, [0.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(m.obj.size, [0.2, 0.2, 0.2], atol=0.015)
    assert m.obj.points[:, 0].max() > 0.15  # the voxels are kept, only the box ignores them
    # Without the support threshold the box covers the smear.
    refresh_geometry(m, MappingConfig(box_min_support=0.0), 3.0, record_history=False)
    assert m.obj.size[0] > 0.28


def test_an_object_seen_only_from_far_keeps_its_best_supported_voxels() -> None:
    hits = np.array([0.1, 0.1, 0.1, 0.4, 0.4, 0.4, 0.4, 0.2], np.float32)
    keep = box_voxels(hits, 1.0)
    np.testing.assert_array_equal(keep, hits >= 0.2)
    assert box_voxels(np.array([0.05], np.float32), 1.0).all()
    assert box_voxels(hits, 0.0).all()
    far = weighted(cube((0, 0, 0)), 1 / 16)
    m = new_model(0, far, 1.0, MappingConfig())
    np.testing.assert_allclose(m.obj.size, [0.2, 0.2, 0.2], atol=0.015)


def test_replace_geometry_leaves_nothing_at_the_old_place() -> None:
    cfg = MappingConfig()
    m = new_model(0, cube((0, 0, 0)), 1.0, cfg)
    replace_geometry(m, cube((2.0, 0, 0)), 2.0, cfg)
    assert m.obj.points[:, 0].min() > 1.8
    np.testing.assert_allclose([h[1][0] for h in m.obj.history], [0.0, 2.0], atol=0.01)


def test_isolated_voxels_are_removed_as_outliers() -> None:
    cfg = MappingConfig()
    d = cube((0, 0, 0))
    stray = np.vstack([d.points, [[1.0, 1.0, 1.0]]]).astype(np.float32)
    m = new_model(0, Detection.from_points(stray, VS, "box", 1, "", 1, (0, 0, 1, 1), 1), 1.0, cfg)
    assert m.obj.size[0] > 0.9
    assert remove_outliers(m) == 1
    refresh_geometry(m, cfg, 1.0, record_history=False)
    assert m.obj.size[0] < 0.3


def test_merge_models_unions_voxels_and_votes() -> None:
    cfg = MappingConfig()
    a = new_model(0, cube((0, 0, 0)), 1.0, cfg)
    b = new_model(1, cube((0.1, 0, 0)), 2.0, cfg)
    merge_models(a, b, cfg)
    np.testing.assert_allclose(a.obj.box_min, [-0.1, -0.1, -0.1], atol=0.01)
    np.testing.assert_allclose(a.obj.box_max, [0.2, 0.1, 0.1], atol=0.01)
    assert a.obj.observations == 2 and a.obj.label_votes["box"] == 2.0
    assert a.obj.first_seen == 1.0 and a.obj.last_seen == 2.0


def test_pair_score_needs_overlap_and_compatible_labels() -> None:
    cfg = MappingConfig()
    acfg = AssociationConfig()
    m = new_model(0, cube((0, 0, 0), label="mug"), 1.0, cfg)
    same = cube((0.01, 0, 0), label="mug")
    far = cube((1.0, 0, 0), label="mug")
    other = cube((0, 0, 0), label="table")
    s_same = pair_score(same, detection_geometry(same, acfg), m, acfg)
    assert s_same > 1.0  # geometry ~1 + label 0.5
    assert pair_score(far, detection_geometry(far, acfg), m, acfg) == INFEASIBLE
    # A different label on the very same voxels: feasible (a flipped label), but scored lower.
    s_other = pair_score(other, detection_geometry(other, acfg), m, acfg)
    assert np.isfinite(s_other) and s_other < s_same - 0.9
    # A different label that only touches the object (a mug on a table): infeasible.
    touching = cube((0.0, 0.0, 0.17), label="table")
    assert pair_score(touching, detection_geometry(touching, acfg), m, acfg) == INFEASIBLE


def test_assign_maximises_total_score_over_feasible_pairs() -> None:
    scores = np.array([[2.0, 1.9], [1.8, INFEASIBLE], [INFEASIBLE, INFEASIBLE]])
    # Greedy would give (0,0) and leave row 1 unmatched; the optimum is (0,1) + (1,0).
    assert sorted(assign(scores)) == [(0, 1), (1, 0)]
    assert assign(np.full((2, 2), INFEASIBLE)) == []
    assert assign(np.zeros((0, 3))) == []


def test_grid_index_returns_only_nearby_objects() -> None:
    idx = GridIndex(0.5)
    idx.update("a", np.array([0.0, 0, 0]), np.array([0.4, 0.4, 0.4]))
    idx.update("b", np.array([5.0, 5, 0]), np.array([5.4, 5.4, 0.4]))
    idx.update("huge", np.array([-100.0, -100, -1]), np.array([100.0, 100, 3]))
    assert idx.query(np.array([0.1, 0.1, 0.1]), np.array([0.2, 0.2, 0.2])) == {"a", "huge"}
    assert idx.query(np.array([5.1, 5.1, 0.1]), np.array([5.2, 5.2, 0.2])) == {"b", "huge"}
    idx.update("a", np.array([5.0, 5, 0]), np.array([5.1, 5.1, 0.1]))  # moved
    assert idx.query(np.array([0.1, 0.1, 0.1]), np.array([0.2, 0.2, 0.2])) == {"huge"}
    idx.remove("b")
    assert "b" not in idx.query(np.array([5.1, 5.1, 0.1]), np.array([5.2, 5.2, 0.2]))


def test_patch_layer_records_objects_and_features() -> None:
    layer = PatchLayer(0.25)
    pts = np.array([[0.1, 0.1, 0.1], [0.6, 0.1, 0.1]], np.float32)
    f = np.array([1.0, 0.0], np.float32)
    layer.observe("obj_a", pts, 1.0, f)
    layer.observe("obj_a", pts[:1], 2.0, np.array([0.0, 1.0], np.float32))
    assert len(layer) == 2
    p = layer.patches[next(iter(layer.patches))]
    assert p.object_id == "obj_a"
    layer.rename_object("obj_a", "obj_b")
    assert all(p.object_id == "obj_b" for p in layer.patches.values())
    layer.forget_object("obj_b")
    assert len(layer) == 0
