"""Tests of the scene description, its loader, and the procedural household."""

from __future__ import annotations

import collections
import math

import numpy as np
import pybullet
import pytest
from pybullet_utils.bullet_client import BulletClient

from memory_sim.assets import CATALOGUE, asset, object_from_asset
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import (
    ObjectSpec,
    PartSpec,
    Pose,
    RoomSpec,
    SceneError,
    SceneSpec,
    body_aabb,
    load_scene,
    scene_from_dict,
    scene_to_dict,
)
from memory_sim.simulator import SimConfig, Simulator


@pytest.fixture(scope="module")
def house() -> SceneSpec:
    return generate_house(ProceduralConfig(seed=0))


def test_same_seed_same_house_other_seed_other_house(house: SceneSpec) -> None:
    assert generate_house(ProceduralConfig(seed=0)) == house
    other = generate_house(ProceduralConfig(seed=1))
    assert other != house
    assert [o.name for o in other.objects] != [o.name for o in house.objects]


def test_house_has_rooms_labels_and_at_least_30_objects(house: SceneSpec) -> None:
    objects = [o for o in house.objects if not o.structure]
    assert len(objects) >= 30
    assert all(o.label for o in objects)
    labels = collections.Counter(o.label for o in objects)
    for label in ("mug", "table", "refrigerator", "sofa", "bed", "lamp", "door"):
        assert labels[label] >= 1, label
    assert {r.label for r in house.rooms} >= {"kitchen", "living room", "bedroom", "bathroom"}
    assert len({r.name for r in house.rooms}) == len(house.rooms) == 6
    stateful = [o for o in objects if o.states]
    assert {s for o in stateful for s in o.states} >= {"open", "closed", "on", "off"}
    assert sum(not o.static for o in objects) >= 20


def test_every_object_lies_in_its_room_and_rooms_are_connected(house: SceneSpec) -> None:
    for obj in house.objects:
        if obj.room and obj.label != "door":
            x, y = obj.pose.position[:2]
            assert house.room(obj.room).contains(x, y), obj.name
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for p in house.portals:
        graph[p.room_a].add(p.room_b)
        graph[p.room_b].add(p.room_a)
    seen, todo = set(), [house.rooms[0].name]
    while todo:
        r = todo.pop()
        if r not in seen:
            seen.add(r)
            todo.extend(graph[r])
    assert seen == {r.name for r in house.rooms}


def test_small_objects_rest_on_something(house: SceneSpec) -> None:
    config = SimConfig()
    config.camera.width_px, config.camera.height_px = 16, 12
    with Simulator(house, config) as sim:
        truths = sim.objects()
    tops = [0.0] + [t.box_max[2] for t in truths if t.static]
    for t in truths:
        if t.static or t.label in ("chair", "plant"):
            continue
        # resting on the floor, a furniture top, or a shelf board (board tops are inside boxes)
        bottom = t.box_min[2]
        inside = [
            s
            for s in truths
            if s.static
            and np.all(s.box_min[:2] <= t.center[:2])
            and np.all(t.center[:2] <= s.box_max[:2])
            and s.box_min[2] <= bottom <= s.box_max[2]
        ]
        supported = min(abs(bottom - z) for z in tops) < 0.02 or bool(inside)
        assert supported, t.name
        assert bottom > -0.01, t.name


def test_scene_dict_round_trip(house: SceneSpec) -> None:
    assert scene_from_dict(scene_to_dict(house)) == house


def test_invalid_scenes_name_the_object() -> None:
    ok = ObjectSpec("a", "box", parts=(PartSpec("box"),))
    with pytest.raises(SceneError, match="duplicate object name 'a'"):
        SceneSpec("s", objects=[ok, ok]).validate()
    bad_shape = ObjectSpec("b", "box", parts=(PartSpec("cone"),))
    with pytest.raises(SceneError, match="'b' part 0: shape 'cone'"):
        SceneSpec("s", objects=[bad_shape]).validate()
    nan_pose = ObjectSpec("c", "box", Pose((math.nan, 0, 0)), parts=(PartSpec("box"),))
    with pytest.raises(SceneError, match="'c': non-finite pose"):
        SceneSpec("s", objects=[nan_pose]).validate()
    bad_state = ObjectSpec("d", "door", parts=(PartSpec("box"),), state="ajar", states=("open",))
    with pytest.raises(SceneError, match="'d': state 'ajar'"):
        SceneSpec("s", objects=[bad_state]).validate()
    with pytest.raises(SceneError, match="unknown room 'attic'"):
        SceneSpec(
            "s", objects=[ObjectSpec("e", "x", parts=(PartSpec("box"),), room="attic")]
        ).validate()
    with pytest.raises(SceneError, match="exactly one of urdf or parts"):
        SceneSpec("s", objects=[ObjectSpec("f", "x")]).validate()


def test_missing_asset_file_names_the_object() -> None:
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        spec = SceneSpec("s", objects=[ObjectSpec("ghost", "mug", urdf="no/such/file.urdf")])
        with pytest.raises(SceneError, match="'ghost': asset file not found"):
            load_scene(client, spec)
        mesh = ObjectSpec("m", "x", parts=(PartSpec("mesh", mesh_path="/nope.obj"),))
        with pytest.raises(SceneError, match="'m': asset file not found"):
            load_scene(client, SceneSpec("s", objects=[mesh]))
    finally:
        client.disconnect()


def test_load_scene_poses_bodies_and_meshes() -> None:
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        spec = SceneSpec(
            "s",
            rooms=[RoomSpec("k", "kitchen", (0, 0), (4, 4))],
            objects=[
                ObjectSpec(
                    "top", "table", Pose.from_xyz_rpy((1, 2, 0), yaw=math.pi / 2),
                    parts=(PartSpec("mesh", mesh_path="table/table.obj", rgba=None,
                                    mesh_scale=(1.0, 0.5, 0.04), pose=Pose((0, 0, 0.7))),),
                    room="k",
                ),
                object_from_asset("mug", "mug", Pose((3, 3, 0)), room="k"),
            ],
        )  # fmt: skip
        bodies = load_scene(client, spec)
        lo, hi = body_aabb(client, bodies["top"])
        # the 1.0 x 0.5 top turned by 90 degrees spans 0.5 in x and 1.0 in y
        np.testing.assert_allclose(hi - lo, [0.5, 1.0, 0.04], atol=0.02)
        np.testing.assert_allclose((lo + hi) / 2, [1, 2, 0.7], atol=0.02)
    finally:
        client.disconnect()


def test_catalogue_entries_load_with_household_sizes() -> None:
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        for key in [*CATALOGUE, "toy_042"]:
            body = load_scene(
                client, SceneSpec("s", objects=[object_from_asset(key, key, Pose())])
            )[key]
            lo, hi = body_aabb(client, body)
            size = float(np.max(hi - lo))
            assert 0.02 < size < 0.7, (key, size)
            client.removeBody(body)
        with pytest.raises(SceneError, match="unknown asset 'piano'"):
            asset("piano")
    finally:
        client.disconnect()
