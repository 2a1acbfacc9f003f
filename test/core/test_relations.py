"""Relations: known answers for on / in / near, spatial hashing and incremental updates."""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core import relations as rel
from memory_node.core.relations import RelationConfig, compute_relations, update_relations
from memory_node.core.types import SceneObject


def box(oid: str, lo, hi, points: int = 0, seed: int = 0, **kw) -> SceneObject:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    pts = np.zeros((0, 3), np.float32)
    if points:
        pts = np.random.default_rng(seed).uniform(lo, hi, size=(points, 3)).astype(np.float32)
    return SceneObject(id=oid, label=oid, center=(lo + hi) / 2, size=hi - lo, points=pts, **kw)


def triples(relations) -> set[tuple[str, str, str]]:
    return {(r.subject_id, r.predicate, r.object_id) for r in relations}


def kitchen() -> list[SceneObject]:
    return [
        box("table", [0, 0, 0], [1.2, 0.8, 0.75], points=400),
        box("mug", [0.5, 0.3, 0.75], [0.58, 0.38, 0.85], points=50, seed=1),
        box("drawer", [2.0, 0.0, 0.5], [2.5, 0.4, 0.65], points=200, seed=2),
        box("spoon", [2.1, 0.1, 0.52], [2.3, 0.13, 0.54], points=30, seed=3),
        box("chair", [1.3, 0.1, 0.0], [1.7, 0.5, 0.9], points=100, seed=4),
        box("lamp", [8.0, 8.0, 0.0], [8.3, 8.3, 1.5], points=50, seed=5),
    ]


def test_known_answers() -> None:
    got = triples(compute_relations(kitchen(), RelationConfig()))
    assert ("mug", "on", "table") in got
    assert ("spoon", "in", "drawer") in got
    assert ("chair", "near", "table") in got
    assert ("table", "on", "mug") not in got
    assert ("mug", "in", "table") not in got
    assert ("spoon", "on", "drawer") not in got
    assert not any("lamp" in (s, o) for s, _, o in got)  # far from everything


def test_in_needs_95_percent_of_points() -> None:
    drawer = box("drawer", [0, 0, 0], [1, 1, 1])
    pts = np.random.default_rng(0).uniform(0.1, 0.9, size=(100, 3)).astype(np.float32)
    inside = SceneObject(id="spoon", center=np.full(3, 0.5), size=np.full(3, 0.8), points=pts)
    assert ("spoon", "in", "drawer") in triples(
        compute_relations([drawer, inside], RelationConfig())
    )
    pts[:10, 2] = 1.5  # 10% of the points stick out
    sticking = SceneObject(id="spoon", center=np.full(3, 0.5), size=np.full(3, 0.8), points=pts)
    got = triples(compute_relations([drawer, sticking], RelationConfig()))
    assert ("spoon", "in", "drawer") not in got


def test_on_needs_contact_and_overlap() -> None:
    table = box("table", [0, 0, 0], [1, 1, 0.75])
    floating = box("mug", [0.4, 0.4, 0.95], [0.5, 0.5, 1.05])  # 20 cm above the top
    beside = box("mug2", [1.2, 0.4, 0.75], [1.3, 0.5, 0.85])  # at the right height, off the table
    got = triples(compute_relations([table, floating, beside], RelationConfig()))
    assert ("mug", "on", "table") not in got
    assert ("mug2", "on", "table") not in got
    assert ("mug", "near", "table") in got and ("mug2", "near", "table") in got


def test_absent_objects_have_no_relations() -> None:
    objects = kitchen()
    objects[1].present = False  # the mug
    assert not any("mug" in t for t in triples(compute_relations(objects, RelationConfig())))


def brute_force(objects, config) -> set[tuple[str, str, str]]:
    present = [o for o in objects if o.present]
    mins, maxs = rel._boxes(present)
    n = len(present)
    i_idx, j_idx = np.triu_indices(n, k=1)
    return triples(rel._pair_relations(present, mins, maxs, i_idx, j_idx, config))


def random_scene(n: int, seed: int) -> list[SceneObject]:
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(n):
        lo = rng.uniform([0, 0, 0], [15, 15, 1.0])
        hi = lo + rng.uniform(0.05, 0.8, size=3)
        objects.append(box(f"o{i:04d}", lo, hi, points=20, seed=i))
    objects.append(box("floor", [-1, -1, -0.1], [400, 400, 0.0]))  # spans many hash cells
    return objects


def test_spatial_hash_matches_brute_force() -> None:
    objects = random_scene(300, seed=1)
    config = RelationConfig(cell_size_m=0.7)
    got = triples(compute_relations(objects, config))
    assert got == brute_force(objects, config)
    assert any(p == "near" for _, p, _ in got) and any(p == "on" for _, p, _ in got)


def test_spatial_hash_prunes_pairs() -> None:
    objects = random_scene(400, seed=2)[:-1]
    mins, maxs = rel._boxes(objects)
    i_idx, j_idx = rel._candidate_pairs(mins, maxs, RelationConfig())
    assert 0 < len(i_idx) < 0.2 * (400 * 399 / 2)
    assert np.all(i_idx < j_idx)
    assert len(set(zip(i_idx.tolist(), j_idx.tolist(), strict=True))) == len(i_idx)  # once each


@pytest.mark.parametrize("seed", [3, 4])
def test_incremental_update_equals_full_recompute(seed: int) -> None:
    config = RelationConfig()
    objects = random_scene(200, seed=seed)
    previous = compute_relations(objects, config)
    rng = np.random.default_rng(seed)
    changed = []
    for k in rng.choice(200, size=15, replace=False):
        obj = objects[int(k)]
        if k % 3 == 0:
            obj.present = False
        else:
            obj.center = obj.center + rng.normal(scale=0.5, size=3)
        changed.append(obj.id)
    objects.append(box("new", [5, 5, 0.0], [5.3, 5.3, 0.3]))
    changed.append("new")
    updated = update_relations(previous, objects, changed, config)
    assert triples(updated) == triples(compute_relations(objects, config))
    assert triples(update_relations(updated, objects, [], config)) == triples(updated)
