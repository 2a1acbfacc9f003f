"""Known-answer tests of the SceneMemory facade on a tiny ray-cast box world."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from memory_node.core.scene_memory import IngestReport, SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import ChangeKind, Frame, InvalidInput, QueryRequest

W, H = 160, 120
K = intrinsics(W, H, fov_deg=70.0)
EYE = np.array([0.0, 0.0, 1.4])
TARGET = np.array([2.5, 0.0, 0.2])


def config(**overrides: object) -> SceneMemoryConfig:
    cfg = SceneMemoryConfig()
    cfg.features.mode = "off"
    cfg.depth.pixel_stride = 1
    for name, value in overrides.items():
        section, leaf = name.split("__")
        setattr(getattr(cfg, section), leaf, value)
    return cfg


def crate(center: tuple[float, float, float] = (2.5, 0.0, 0.25), iid: int = 1) -> Box:
    return Box(np.array(center), np.array([0.5, 0.5, 0.5]), "crate", iid, (180, 40, 40))


def mug(center: tuple[float, float, float] = (2.2, 0.8, 0.1), iid: int = 2) -> Box:
    return Box(np.array(center), np.array([0.2, 0.2, 0.2]), "mug", iid, (40, 180, 40))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self, dt: float = 0.1) -> float:
        self.t += dt
        return self.t


def view(
    world: BoxWorld, stamp: float, eye: np.ndarray = EYE, target: np.ndarray = TARGET
) -> Frame:
    return render(world, K, look_at(eye, target), W, H, stamp)


def feed(
    mem: SceneMemory, world: BoxWorld, clock: Clock, n: int, **kw: np.ndarray
) -> list[IngestReport]:
    return [mem.ingest(view(world, clock(), **kw)) for _ in range(n)]


def by_label(mem: SceneMemory, label: str) -> list:  # type: ignore[type-arg]
    return [o for o in mem.objects.values() if o.label == label]


def test_two_identical_detections_merge_into_one_object() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate()])
    clock = Clock()
    r1 = mem.ingest(view(world, clock()))
    r2 = mem.ingest(view(world, clock()))
    assert r1.num_new == 1 and r2.num_new == 0 and r2.num_matched == 1
    objs = mem.objects
    assert len(objs) == 1
    (obj,) = objs.values()
    assert obj.label == "crate" and obj.observations == 2
    # Confirmed, but seen for the first time where nobody had looked: not a change.
    assert r1.events == [] and r2.events == []


def test_an_object_put_where_free_space_was_seen_appears() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate()])
    clock = Clock()
    feed(mem, world, clock, 2)
    world.boxes.append(mug())  # put down in view, where the floor was seen through it
    reports = feed(mem, world, clock, 2)
    events = [e for r in reports for e in r.events]
    assert [(e.kind, e.label) for e in events] == [(ChangeKind.APPEARED, "mug")]
    np.testing.assert_allclose(events[0].new_position, [2.2, 0.8, 0.1], atol=0.05)


def test_without_free_space_every_new_object_appears() -> None:
    mem = SceneMemory(config(free_space__enabled=False))
    reports = feed(mem, BoxWorld([crate(), mug()]), Clock(), 2)
    assert sorted(e.label for e in reports[1].events) == ["crate", "mug"]


def test_box_seen_from_two_poses_fuses_to_one_object_with_right_centroid() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate()])
    clock = Clock()
    feed(mem, world, clock, 3, eye=np.array([0.0, -1.5, 1.4]))
    feed(mem, world, clock, 3, eye=np.array([0.5, 2.0, 1.4]))
    feed(mem, world, clock, 3, eye=np.array([5.0, 0.5, 1.4]))
    crates = by_label(mem, "crate")
    assert len(crates) == 1
    # Seen from the front, both sides and the back: the fused box is the true box.
    np.testing.assert_allclose(crates[0].center, [2.5, 0.0, 0.25], atol=0.03)
    np.testing.assert_allclose(crates[0].size, [0.5, 0.5, 0.5], atol=0.06)


def test_moved_box_keeps_its_id_and_leaves_no_ghost() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    feed(mem, world, clock, 8)  # 0.8 s: the whole view, incl. the mug's new place, is known
    (m,) = by_label(mem, "mug")
    old_id, old_center = m.id, m.center.copy()
    mem.drain_events()
    world.boxes[1] = mug(center=(2.0, -0.9, 0.1))
    reports = feed(mem, world, clock, 4)
    mugs = by_label(mem, "mug")
    assert [o.id for o in mugs] == [old_id]
    assert mugs[0].present
    np.testing.assert_allclose(mugs[0].center, [2.0, -0.9, 0.1], atol=0.05)
    # Nothing remains at the old place.
    for o in mem.objects.values():
        assert np.linalg.norm(o.center - old_center) > 0.3
    hits = mem.query(QueryRequest(near=old_center, radius=0.25))
    assert hits == []
    events = [e for r in reports for e in r.events]
    moved = [e for e in events if e.kind == ChangeKind.MOVED]
    assert len(moved) == 1 and moved[0].object_id == old_id
    np.testing.assert_allclose(moved[0].old_position, old_center)
    assert not [e for e in events if e.kind in (ChangeKind.APPEARED, ChangeKind.DISAPPEARED)]
    assert len(mem.objects) == 2


LEFT = np.array([2.5, 2.5, 0.2])  # look-at targets of two separate places
RIGHT = np.array([2.5, -2.5, 0.2])


def mug_left_right_empty(mem: SceneMemory) -> tuple[BoxWorld, Clock]:
    """Show ``mem`` a mug at the left-hand place and the right-hand place empty."""
    world = BoxWorld([mug(center=(2.5, 2.5, 0.1))])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)
    feed(mem, world, clock, 2, target=RIGHT)
    return world, clock


def test_a_second_instance_seen_later_is_a_new_object_not_a_move() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([mug(center=(2.5, 2.5, 0.1), iid=2), mug(center=(2.5, -2.5, 0.1), iid=3)])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)
    clock(10.0)  # long unseen, still not verified gone
    reports = feed(mem, world, clock, 3, target=RIGHT)
    kinds = [e.kind for r in reports for e in r.events]
    assert kinds == []  # neither MOVED nor APPEARED: nobody had looked there before
    assert len(by_label(mem, "mug")) == 2


def test_a_unique_looking_object_seen_elsewhere_is_moved_at_once() -> None:
    mem = SceneMemory(config())
    world, clock = mug_left_right_empty(mem)
    (m,) = by_label(mem, "mug")
    mem.drain_events()
    world.boxes[0] = mug(center=(2.5, -2.5, 0.1))  # moved while the robot looked away
    clock(10.0)
    reports = feed(mem, world, clock, 3, target=RIGHT)  # the old place is not seen again
    events = [e for r in reports for e in r.events]
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, m.id)]
    assert reports[1].events  # as soon as it is confirmed (second frame that shows it)
    assert [o.id for o in by_label(mem, "mug")] == [m.id]


def test_a_lookalike_elsewhere_is_not_taken_for_a_moved_object() -> None:
    mem = SceneMemory(config())
    world, clock = mug_left_right_empty(mem)
    world.boxes.append(mug(center=(2.5, 1.9, 0.1), iid=3))  # a second, identical mug
    feed(mem, world, clock, 3, target=LEFT)
    assert len(by_label(mem, "mug")) == 2
    mem.drain_events()
    world.boxes = [mug(center=(2.5, -2.5, 0.1), iid=4)]  # both gone; an identical one there
    clock(10.0)
    reports = feed(mem, world, clock, 3, target=RIGHT)
    kinds = [e.kind for r in reports for e in r.events]
    assert ChangeKind.MOVED not in kinds  # which of the two? not known yet


def test_a_differently_coloured_instance_is_not_a_moved_object() -> None:
    mem = SceneMemory(config())
    world, clock = mug_left_right_empty(mem)
    (m,) = by_label(mem, "mug")
    world.boxes = [Box(np.array([2.5, -2.5, 0.1]), np.array([0.2, 0.2, 0.2]), "mug", 5,
                       (40, 40, 200))]  # fmt: skip
    clock(10.0)
    feed(mem, world, clock, 3, target=RIGHT)  # a blue mug where the floor was empty
    reports = feed(mem, world, clock, 4, target=LEFT)  # and the green one's place is empty
    events = [(e.kind, e.object_id) for r in reports for e in r.events]
    assert events == [(ChangeKind.DISAPPEARED, m.id)]
    assert len(by_label(mem, "mug")) == 2 and not mem.objects[m.id].present


def test_move_seen_at_the_new_place_first_is_linked_when_the_old_place_is_empty() -> None:
    mem = SceneMemory(config(association__use_appearance=False))
    world, clock = mug_left_right_empty(mem)
    (m,) = by_label(mem, "mug")
    mem.drain_events()
    world.boxes[0] = mug(center=(2.5, -2.5, 0.1))  # moved while the robot looked away
    clock(10.0)
    feed(mem, world, clock, 3, target=RIGHT)  # new place first: looks like a new mug
    assert len(by_label(mem, "mug")) == 2
    reports = feed(mem, world, clock, 4, target=LEFT)  # the old place is empty
    events = [e for r in reports for e in r.events]
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, m.id)]
    assert reports[0].events  # one look at the empty place, a look-alike newly elsewhere
    mugs = by_label(mem, "mug")
    assert [o.id for o in mugs] == [m.id] and mugs[0].present
    np.testing.assert_allclose(mugs[0].center, [2.5, -2.5, 0.1], atol=0.05)
    np.testing.assert_allclose(events[0].old_position, [2.5, 2.5, 0.1], atol=0.05)


def test_a_missing_object_is_not_linked_to_one_first_seen_in_unexplored_space() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([mug(center=(2.5, 2.5, 0.1), iid=2)])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)  # the right-hand side is never looked at
    (m,) = by_label(mem, "mug")
    mem.drain_events()
    world.boxes = [mug(center=(2.5, -2.5, 0.1), iid=3)]  # another mug, where nobody looked
    clock(10.0)
    feed(mem, world, clock, 3, target=RIGHT)
    reports = feed(mem, world, clock, 4, target=LEFT)
    events = [e for r in reports for e in r.events]
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.DISAPPEARED, m.id)]
    assert len(by_label(mem, "mug")) == 2 and not mem.objects[m.id].present


def test_object_in_view_but_not_observed_becomes_absent_then_reappears() -> None:
    cfg = config(change__absent_below_log_odds=-1.0)  # three frames seen through
    mem = SceneMemory(cfg)
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    feed(mem, world, clock, 3)
    (m,) = by_label(mem, "mug")
    mem.drain_events()
    world.boxes.pop(1)  # the mug is taken away; the floor behind it is seen through
    reports = feed(mem, world, clock, 2)
    assert all(not r.events for r in reports)
    assert mem.objects[m.id].present  # not enough evidence yet
    r = mem.ingest(view(world, clock()))
    assert [(e.kind, e.object_id) for e in r.events] == [(ChangeKind.DISAPPEARED, m.id)]
    obj = mem.objects[m.id]  # kept as "last seen"
    assert not obj.present
    assert mem.drain_events()[-1].kind == ChangeKind.DISAPPEARED
    # Where was it last seen? The query still answers, flagged absent.
    found = mem.query(QueryRequest(text="mug"))
    assert found and found[0].obj.id == m.id and not found[0].obj.present
    # Put it back: the same id reappears.
    world.boxes.append(mug())
    r = mem.ingest(view(world, clock()))
    assert [(e.kind, e.object_id) for e in r.events] == [(ChangeKind.APPEARED, m.id)]
    assert mem.objects[m.id].present and mem.objects[m.id].miss_count == 0


def test_occluded_or_out_of_view_objects_do_not_disappear() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    feed(mem, world, clock, 3)
    # Look the other way for a while: nothing is in view, nothing disappears.
    reports = feed(mem, world, clock, 5, target=np.array([-2.0, 0.0, 0.2]))
    assert not [e for r in reports for e in r.events]
    assert all(o.present for o in mem.objects.values())


def test_missed_detection_of_a_visible_object_is_not_an_absence() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    feed(mem, world, clock, 3)
    for _ in range(6):
        f = view(world, clock())
        assert f.instance is not None
        f.instance[f.instance == 2] = 0  # the segmenter misses the mug, the depth still sees it
        assert not mem.ingest(f).events
    assert all(o.present for o in mem.objects.values())


def test_state_change_is_reported() -> None:
    mem = SceneMemory(config())
    box = crate()
    box.state = "closed"
    world = BoxWorld([box])
    clock = Clock()
    feed(mem, world, clock, 2)
    box.state = "open"
    r = mem.ingest(view(world, clock()))
    (e,) = r.events
    assert e.kind == ChangeKind.STATE_CHANGED and (e.old_state, e.new_state) == ("closed", "open")
    assert next(iter(mem.objects.values())).state == "open"


def test_a_flipped_label_on_the_same_object_is_a_vote_not_a_new_object() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate(), mug(center=(2.5, 0.0, 0.6))])  # mug on the crate
    clock = Clock()
    feed(mem, world, clock, 3)
    f = view(world, clock())
    assert f.instance_labels is not None
    f.instance_labels[1] = ("box", 1.0)  # the segmenter calls the crate a box once
    r = mem.ingest(f)
    assert r.num_new == 0 and not r.events
    labels = sorted(o.label for o in mem.objects.values())
    assert labels == ["crate", "mug"]  # the mug on top never merged into the crate
    (c,) = by_label(mem, "crate")
    assert c.label_votes == {"crate": 3.0, "box": 1.0} and c.label_confidence == 0.75


def test_single_frame_noise_is_not_an_object() -> None:
    mem = SceneMemory(config(mapping__min_observations_to_confirm=2))
    clock = Clock()
    mem.ingest(view(BoxWorld([crate(), mug()]), clock()))
    feed(mem, BoxWorld([crate()]), clock, 3)
    assert [o.label for o in mem.objects.values()] == ["crate"]
    assert mem.stats()["objects_tentative"] == 0  # the one-off mug was seen through and dropped


def test_bad_frames_are_refused_and_memory_is_unchanged() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate()])
    clock = Clock()
    feed(mem, world, clock, 2)
    before = {k: (o.observations, o.center.copy()) for k, o in mem.objects.items()}
    good = view(world, clock())
    bad_frames = []
    for make in (
        lambda f: setattr(f, "depth", np.zeros_like(f.depth)),
        lambda f: setattr(f, "depth", np.full_like(f.depth, np.nan)),
        lambda f: setattr(f, "depth", np.full_like(f.depth, 65.535)),
        lambda f: setattr(f, "rgb", np.zeros((H, W + 4, 3), np.uint8)),
        lambda f: f.map_T_camera.__setitem__((1, 3), np.nan),
        lambda f: f.map_T_camera.__setitem__((slice(0, 3), slice(0, 3)), 2.0 * np.eye(3)),
    ):
        f = view(world, good.stamp)
        make(f)
        bad_frames.append(f)
    for f in bad_frames:
        with pytest.raises(InvalidInput):
            mem.ingest(f)
    mem.ingest(good)
    with pytest.raises(InvalidInput, match="not after"):
        mem.ingest(view(world, good.stamp))  # duplicate stamp
    with pytest.raises(InvalidInput, match="not after"):
        mem.ingest(view(world, good.stamp - 1.0))  # out of order
    stats = mem.stats()
    assert stats["frames_accepted"] == 3
    assert stats["frames_dropped"] == 8
    assert stats["dropped_no_valid_depth"] == 3
    assert stats["dropped_size_mismatch"] == 1
    assert stats["dropped_pose"] == 2
    assert stats["dropped_out_of_order"] == 2
    after = mem.objects
    assert set(after) == set(before)
    for k, (obs, _) in before.items():
        assert after[k].observations == obs + 1  # only the good frame counted


def test_mask_ids_missing_from_labels_are_ignored_and_counted() -> None:
    mem = SceneMemory(config())
    f = view(BoxWorld([crate(), mug()]), 1.0)
    assert f.instance_labels is not None
    del f.instance_labels[2]
    r = mem.ingest(f)
    assert r.ignored_instance_ids == 1 and r.num_detections == 1
    assert mem.stats()["ignored_instance_ids"] == 1


def test_query_requests_are_validated() -> None:
    mem = SceneMemory(config())
    feed(mem, BoxWorld([crate(), mug()]), Clock(), 2)
    with pytest.raises(InvalidInput):
        mem.query(QueryRequest(near=np.array([np.nan, 0.0, 0.0])))
    with pytest.raises(InvalidInput):
        mem.query(QueryRequest(near=np.zeros(3), radius=-1.0))
    with pytest.raises(InvalidInput):
        mem.query(QueryRequest(k=10**9))
    with pytest.raises(InvalidInput):
        mem.query(QueryRequest(k=-1))
    got = mem.query(QueryRequest(text="mug", k=1))
    assert len(got) == 1 and got[0].obj.label == "mug"
    near = mem.query(QueryRequest(near=np.array([2.5, 0.0, 0.25]), radius=0.5))
    assert [s.obj.label for s in near] == ["crate"]


def test_changes_and_drain_events() -> None:
    mem = SceneMemory(config())
    clock = Clock()
    world = BoxWorld([])
    feed(mem, world, clock, 2)  # the empty floor
    world.boxes = [crate(), mug()]
    feed(mem, world, clock, 2)
    drained = mem.drain_events()
    assert sorted(e.label for e in drained) == ["crate", "mug"]
    assert mem.drain_events() == []
    changes = mem.changes(since=0.0, object_id="", max_results=10)
    assert len(changes) == 2
    assert mem.changes(since=clock.t + 100.0, object_id="", max_results=10) == []
    with pytest.raises(InvalidInput):
        mem.changes(since=float("nan"), object_id="", max_results=1)


def test_save_load_round_trip_keeps_ids_and_reassociates(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "memory.db")
    mem = SceneMemory(config())
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    feed(mem, world, clock, 3)
    ids = sorted(mem.objects)
    mem.save(path)

    fresh = SceneMemory(config())
    fresh.load(path)
    assert sorted(fresh.objects) == ids
    for oid in ids:
        np.testing.assert_allclose(fresh.objects[oid].center, mem.objects[oid].center, atol=1e-5)
    # Re-observing the same scene associates to the loaded ids; no new object.
    reports = feed(fresh, world, clock, 2)
    assert sum(r.num_new for r in reports) == 0
    assert sorted(fresh.objects) == ids
    # New objects get fresh ids after the loaded ones (never reused).
    world.boxes.append(Box(np.array([1.8, -1.0, 0.15]), np.array([0.3] * 3), "ball", 3))
    feed(fresh, world, clock, 2)
    new_ids = sorted(set(fresh.objects) - set(ids))
    assert len(new_ids) == 1 and new_ids[0] > max(ids)

    # A corrupt file is refused and leaves memory unchanged.
    bad = os.path.join(str(tmp_path), "bad.db")
    with open(bad, "wb") as fh:
        fh.write(b"SQLite format 3\x00" + b"\x13" * 4000)
    before = sorted(fresh.objects)
    with pytest.raises(InvalidInput):
        fresh.load(bad)
    with pytest.raises(InvalidInput):
        fresh.load(os.path.join(str(tmp_path), "missing.db"))
    assert sorted(fresh.objects) == before


def test_a_loaded_memory_knows_the_floor_it_had_seen_empty(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "memory.db")
    clock = Clock()
    floor = BoxWorld([])
    a = SceneMemory(config())
    feed(a, floor, clock, 3)
    assert a.objects == {} and a.stats()["free_space_keyframes"] >= 1
    a.save(path)

    b = SceneMemory(config())
    b.load(path)
    assert b.stats()["free_space_keyframes"] == a.stats()["free_space_keyframes"]
    saved, loaded = a.snapshot().free_space, b.snapshot().free_space
    assert saved is not None and loaded is not None
    assert np.array_equal(saved.depth, loaded.depth) and saved.depth.any()
    assert np.array_equal(saved.stamps, loaded.stamps)  # stamps kept as they were
    floor.boxes.append(mug())  # put on the floor B knows empty from A's keyframes
    reports = feed(b, floor, clock, 2)
    events = [(e.kind, e.label) for r in reports for e in r.events]
    assert events == [(ChangeKind.APPEARED, "mug")]

    # Without the keyframes the mug is merely seen for the first time.
    c = SceneMemory(config())
    c.load(path)
    c.restore(dataclasses.replace(c.snapshot(), free_space=None))
    assert c.stats()["free_space_keyframes"] == 0
    assert [e for r in feed(c, floor, clock, 2) for e in r.events] == []


def test_keyframes_follow_the_free_space_switch_and_bad_ones_change_nothing(
    tmp_path: object,
) -> None:
    mem = SceneMemory(config())
    clock = Clock()
    feed(mem, BoxWorld([crate()]), clock, 3)
    snap = mem.snapshot()
    assert snap.free_space is not None and len(snap.free_space) == 1
    assert SceneMemory(config(free_space__enabled=False)).snapshot().free_space is None
    off = SceneMemory(config(free_space__enabled=False))
    off.restore(snap)  # kept objects, dropped keyframes it would not use
    assert len(off.objects) == 1 and off.stats()["free_space_keyframes"] == 0

    path = os.path.join(str(tmp_path), "memory.db")
    mem.save(path)
    ids, kf = sorted(mem.objects), snap.free_space
    bad = dataclasses.replace(snap, free_space=dataclasses.replace(kf, K=kf.K * -1.0))
    with pytest.raises(InvalidInput, match="K has fx or fy <= 0"):
        mem.restore(bad)
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("UPDATE free_space SET camera_T_map = zeroblob(100)")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInput, match="free_space row 0 camera_T_map"):
        mem.load(path)
    assert sorted(mem.objects) == ids
    after = mem.snapshot().free_space
    assert after is not None and np.array_equal(after.depth, kf.depth)
    assert np.array_equal(after.camera_T_map, kf.camera_T_map)


def test_memory_is_bounded_for_a_static_scene() -> None:
    mem = SceneMemory(config(mapping__max_voxels_per_object=300))
    world = BoxWorld([crate(), mug()])
    clock = Clock()
    eyes = [np.array([0.0, y, 1.4]) for y in (-0.6, -0.3, 0.0, 0.3, 0.6)]
    for i in range(25):
        mem.ingest(view(world, clock(), eye=eyes[i % 5]))
    s1 = mem.stats()
    for i in range(50):
        mem.ingest(view(world, clock(), eye=eyes[i % 5]))
    s2 = mem.stats()
    assert s2["objects"] == s1["objects"] == 2
    assert s2["voxels"] <= 2 * 300
    assert s2["patches"] == s1["patches"]
    assert s2["short_term_entries"] == s1["short_term_entries"]
    assert all(len(o.history) <= mem.config.mapping.history_length for o in mem.objects.values())


def test_naive_baseline_gives_the_same_map() -> None:
    world = BoxWorld(
        [crate(), mug(), Box(np.array([1.8, -1.0, 0.15]), np.array([0.3] * 3), "ball", 3)]
    )
    results = []
    for use_index in (True, False):
        mem = SceneMemory(config(mapping__spatial_index=use_index))
        clock = Clock()
        feed(mem, world, clock, 3)
        feed(mem, world, clock, 3, eye=np.array([0.0, -1.0, 1.4]))
        results.append(sorted((o.id, o.label, o.observations) for o in mem.objects.values()))
    assert results[0] == results[1]


def test_relations_zones_and_render_are_served() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate(), Box(np.array([2.5, 0.0, 0.6]), np.array([0.2] * 3), "mug", 2)])
    feed(mem, world, Clock(), 3)
    rels = {(r.subject_id, r.predicate, r.object_id) for r in mem.relations}
    ids = {o.label: o.id for o in mem.objects.values()}
    assert (ids["mug"], "on", ids["crate"]) in rels
    assert isinstance(mem.zones, list)
    pytest.importorskip("memory_node.core.render")
    g = mem.render(focus="", max_objects=0, max_tokens=0)
    assert {o.id for o in g.objects} == set(ids.values())
    assert g.token_count > 0 and "mug" in g.text
    with pytest.raises(InvalidInput):
        mem.render(focus="", max_objects=-1, max_tokens=0)


def test_an_opened_door_seen_alone_is_part_of_its_cabinet_not_a_new_object() -> None:
    mem = SceneMemory(config())
    body = Box(np.array([2.5, 0.0, 0.5]), np.array([0.5, 0.5, 1.0]), "cabinet", 1,
               (150, 150, 60), state="closed")  # fmt: skip
    world = BoxWorld([body])
    clock = Clock()
    feed(mem, world, clock, 3)
    (cab,) = by_label(mem, "cabinet")
    # the door swings open on its hinge into free space; seen with its own mask
    door = Box(np.array([2.0, 0.27, 0.5]), np.array([0.5, 0.04, 0.95]), "cabinet", 7,
               (150, 150, 60), state="open")  # fmt: skip
    world.boxes = [dataclasses.replace(body, state="open"), door]
    reports = feed(mem, world, clock, 4)
    kinds = [e.kind for r in reports for e in r.events]
    assert ChangeKind.APPEARED not in kinds and ChangeKind.MOVED not in kinds
    assert [o.id for o in by_label(mem, "cabinet")] == [cab.id]
    assert mem.objects[cab.id].state == "open"
    assert ChangeKind.STATE_CHANGED in kinds


def test_an_object_put_where_a_removed_one_stood_appears() -> None:
    mem = SceneMemory(config())
    world = BoxWorld([crate()])
    clock = Clock()
    feed(mem, world, clock, 3)  # the crate hides the floor behind and under it
    (c,) = by_label(mem, "crate")
    # the crate is taken away and a bin put in its place at once
    world.boxes = [Box(np.array([2.5, 0.0, 0.2]), np.array([0.3, 0.3, 0.4]), "bin", 9,
                       (40, 40, 200))]  # fmt: skip
    reports = feed(mem, world, clock, 5)
    events = [(e.kind, e.label) for r in reports for e in r.events]
    assert (ChangeKind.DISAPPEARED, "crate") in events
    assert (ChangeKind.APPEARED, "bin") in events
    assert not mem.objects[c.id].present


def test_a_gone_object_is_not_taken_for_one_that_looks_more_like_another() -> None:
    from memory_node.core import appearance

    mem = SceneMemory(config())
    world = BoxWorld([mug(center=(2.5, 2.5, 0.1), iid=2), mug(center=(2.5, -2.5, 0.1), iid=3)])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)
    feed(mem, world, clock, 3, target=RIGHT)
    feed(mem, world, clock, 3)  # the floor in the middle is seen empty
    a, b = sorted(by_label(mem, "mug"), key=lambda o: o.center[1], reverse=True)  # left, right
    # mug a looks only fairly like the green mugs (say, a green mug with a red pattern)
    green = appearance.colour_descriptor(np.tile(np.array([[40, 180, 40]], np.uint8), (50, 1)))
    red = appearance.colour_descriptor(np.tile(np.array([[200, 40, 40]], np.uint8), (50, 1)))
    mem.objects[a.id].appearance = appearance.blend(green, red, 2.0)
    world.boxes = [world.boxes[1]]  # a is taken away ...
    feed(mem, world, clock, 4, target=LEFT)
    assert not mem.objects[a.id].present
    world.boxes = [mug(center=(2.5, 0.0, 0.1), iid=3)]  # ... and b is moved to the middle
    clock(10.0)
    reports = feed(mem, world, clock, 3)
    events = [(e.kind, e.object_id) for r in reports for e in r.events]
    assert events == [(ChangeKind.MOVED, b.id)]  # b, which looks the same, not a
    assert not mem.objects[a.id].present


def mug_detected_once(mem: SceneMemory) -> tuple[BoxWorld, Clock, list[IngestReport]]:
    """Put a mug by the crate: one detection, then a frame where only the depth shows it."""
    world = BoxWorld([crate()])
    clock = Clock()
    feed(mem, world, clock, 2)
    world.boxes.append(mug())
    first = mem.ingest(view(world, clock()))  # one detection of the new mug
    missed = view(world, clock())
    assert missed.instance is not None
    missed.instance[missed.instance == 2] = 0  # the segmenter misses it; the depth shows it
    return world, clock, [first, mem.ingest(missed)]


def test_one_detection_plus_depth_support_makes_no_event_until_seen_again() -> None:
    mem = SceneMemory(config())
    world, clock, (first, second) = mug_detected_once(mem)
    assert second.num_confirmed == 1  # confirmed by the depth ...
    assert first.events == [] and second.events == []  # ... but one detection is no event
    third = mem.ingest(view(world, clock()))
    assert [(e.kind, e.label) for e in third.events] == [(ChangeKind.APPEARED, "mug")]


def test_a_thin_object_taken_off_a_surface_disappears() -> None:
    mem = SceneMemory(config())
    book = Box(np.array([2.5, 0.0, 0.515]), np.array([0.4, 0.4, 0.03]), "book", 3, (40, 40, 200))
    world = BoxWorld([crate(), book])
    clock = Clock()
    feed(mem, world, clock, 3)
    (b,) = by_label(mem, "book")
    mem.drain_events()
    world.boxes.pop()  # the crate's top, 3 cm lower, is seen where the book lay
    reports = feed(mem, world, clock, 4)
    events = [(e.kind, e.object_id) for r in reports for e in r.events]
    assert events == [(ChangeKind.DISAPPEARED, b.id)]
    assert not mem.objects[b.id].present


def test_an_object_put_where_another_moved_out_of_appears() -> None:
    mem = SceneMemory(config())
    world, clock = mug_left_right_empty(mem)
    (m,) = by_label(mem, "mug")
    mem.drain_events()
    toy = Box(np.array([2.5, 2.5, 0.08]), np.array([0.16, 0.16, 0.16]), "toy", 8, (40, 40, 200))
    world.boxes = [mug(center=(2.5, -2.5, 0.1)), toy]  # the mug moved; a toy in its place
    clock(10.0)
    reports = feed(mem, world, clock, 3, target=RIGHT)
    assert [(e.kind, e.object_id) for r in reports for e in r.events] == [(ChangeKind.MOVED, m.id)]
    reports = feed(mem, world, clock, 3, target=LEFT)
    assert [(e.kind, e.label) for r in reports for e in r.events] == [(ChangeKind.APPEARED, "toy")]


def test_an_object_detected_once_goes_away_without_an_event() -> None:
    mem = SceneMemory(config())
    world, clock, (_, second) = mug_detected_once(mem)  # say, a mislabelled view of something
    assert second.num_confirmed == 1  # confirmed by the depth alone
    (m,) = by_label(mem, "mug")
    world.boxes.pop()
    reports = feed(mem, world, clock, 4)
    assert not mem.objects[m.id].present  # kept as last seen, marked absent ...
    assert [e for r in reports for e in r.events] == []  # ... but no DISAPPEARED


def two_alike_mugs_one_moved_right(mem: SceneMemory) -> tuple[BoxWorld, Clock, str]:
    """Show two identical mugs on the left, the right empty; then move one to the right."""
    world = BoxWorld([mug(center=(2.5, 2.5, 0.1), iid=2), mug(center=(2.5, 1.9, 0.1), iid=3)])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)
    feed(mem, world, clock, 2, target=RIGHT)
    a = max(by_label(mem, "mug"), key=lambda o: o.center[1])
    mem.drain_events()
    world.boxes[0] = mug(center=(2.5, -2.5, 0.1), iid=2)
    clock(10.0)
    return world, clock, a.id


def test_a_new_object_like_several_known_ones_waits_until_their_places_are_seen() -> None:
    mem = SceneMemory(config())
    world, clock, moved_id = two_alike_mugs_one_moved_right(mem)
    reports = feed(mem, world, clock, 3, target=RIGHT)
    assert [e for r in reports for e in r.events] == []  # which mug? neither event yet
    reports = feed(mem, world, clock, 4, target=LEFT)  # one mug is there, one place is empty
    events = [(e.kind, e.object_id) for r in reports for e in r.events]
    assert events == [(ChangeKind.MOVED, moved_id)]
    assert len(by_label(mem, "mug")) == 2 and mem.objects[moved_id].center[1] < 0


def test_an_undecided_new_object_appears_when_the_wait_is_over() -> None:
    mem = SceneMemory(config(change__ambiguous_wait_s=1.0))
    world, clock, _ = two_alike_mugs_one_moved_right(mem)
    reports = feed(mem, world, clock, 14, target=RIGHT)  # the left is never looked at again
    kinds = [[e.kind for e in r.events] for r in reports]
    assert [k for ks in kinds for k in ks] == [ChangeKind.APPEARED]
    assert kinds[-1] == [] and not any(kinds[:10])  # after the wait (1 s), not at once


def test_an_object_glimpsed_once_appears_when_it_is_detected_again_later() -> None:
    mem = SceneMemory(config())
    world, clock, (first, second) = mug_detected_once(mem)  # one detection, say from afar
    assert second.num_confirmed == 1 and first.events == second.events == []
    away = feed(mem, world, clock, 20, target=np.array([-2.0, 0.0, 0.2]))  # 2 s elsewhere
    assert [e for r in away for e in r.events] == []
    r = mem.ingest(view(world, clock()))  # the second detection, long after the first
    assert [(e.kind, e.label) for e in r.events] == [(ChangeKind.APPEARED, "mug")]


def test_a_small_look_alike_is_not_a_big_object_moved() -> None:
    mem = SceneMemory(config())
    big = Box(np.array([2.5, 2.5, 0.3]), np.array([0.6, 0.6, 0.6]), "bin", 2, (40, 180, 40))
    world = BoxWorld([big])
    clock = Clock()
    feed(mem, world, clock, 3, target=LEFT)
    feed(mem, world, clock, 2, target=RIGHT)
    (b,) = by_label(mem, "bin")
    mem.drain_events()
    # a small thing of the same colour, under the same label, where the floor was seen empty
    world.boxes.append(Box(np.array([2.5, -2.5, 0.075]), np.array([0.15, 0.15, 0.15]), "bin", 3,
                           (40, 180, 40)))  # fmt: skip
    clock(10.0)
    reports = feed(mem, world, clock, 3, target=RIGHT)
    events = [(e.kind, e.object_id) for r in reports for e in r.events]
    assert len(events) == 1 and events[0][0] == ChangeKind.APPEARED and events[0][1] != b.id
    assert mem.objects[b.id].center[1] > 2.0  # the big bin stays where it was


def test_a_piece_of_a_known_object_seen_alone_is_no_new_object() -> None:
    mem = SceneMemory(config())
    brown = (150, 100, 60)
    seat = Box(np.array([2.5, 0.0, 0.2]), np.array([0.8, 1.2, 0.4]), "sofa", 1, brown)
    back = Box(np.array([2.8, 0.0, 0.6]), np.array([0.2, 1.2, 0.8]), "sofa", 1, brown)
    world = BoxWorld([seat, back])
    clock = Clock()
    feed(mem, world, clock, 4)  # the space over the seat is seen through, inside the sofa's box
    (sofa,) = by_label(mem, "sofa")
    mem.drain_events()
    # a blue cushion on the seat, segmented alone under the sofa's label
    world.boxes.append(Box(np.array([2.45, 0.0, 0.5]), np.array([0.3, 0.3, 0.2]), "sofa", 5,
                           (40, 40, 200)))  # fmt: skip
    reports = feed(mem, world, clock, 4)
    assert [e for r in reports for e in r.events] == []  # each sighting joins the sofa
    assert mem.objects[sofa.id].present and mem.objects[sofa.id].label == "sofa"
