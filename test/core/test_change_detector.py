"""The change detector driven directly on a hand-built object store (no frames, no camera).

Evidence is written by hand the way :func:`visibility.check_points` would report it: a place
seen through, an object hidden behind something, a sliver of it at the image border.
"""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core.association import AssociationConfig
from memory_node.core.change import (
    ChangeConfig,
    ChangeDetector,
    DetectorContext,
    FrameEvidence,
    ObjectStore,
)
from memory_node.core.change.detector import make_event, pieces_of_one
from memory_node.core.change.existence import frame_weight
from memory_node.core.free_space import FreeSpaceConfig, FreeSpaceMap
from memory_node.core.fusion import MappingConfig, models_from_objects
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import ChangeKind, SceneObject
from memory_node.core.visibility import Evidence, VisibilityConfig

SEEN_THROUGH = Evidence(checked=100, in_view=80, seen_through=72, consistent=8)
HIDDEN = Evidence(checked=100, in_view=80, occluded=76, consistent=4)  # something in front
GRAZING = Evidence(checked=100, in_view=12, seen_through=12)  # a sliver at the image border
GLIMPSE = Evidence(checked=100, in_view=32, seen_through=20, consistent=12)  # a fifth seen through
IN_PLACE = Evidence(checked=100, in_view=80, consistent=78, seen_through=2)
LOOK = np.full(8, 1 / np.sqrt(8), np.float32)  # one colour descriptor: look-alikes


def thing(
    store: ObjectStore,
    label: str,
    lo: tuple[float, float, float],
    hi: tuple[float, float, float],
    first_seen: float,
    last_seen: float,
) -> str:
    """Add a confirmed, present object filling the box (lo, hi) with points; return its id."""
    lo_a, hi_a = np.asarray(lo), np.asarray(hi)
    axes = [np.linspace(a, b, 5) for a, b in zip(lo_a, hi_a, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)
    oid = f"obj_{store.next_index:06d}"
    obj = SceneObject(
        id=oid,
        label=label,
        label_confidence=1.0,
        label_votes={label: 6.0},
        center=0.5 * (lo_a + hi_a),
        size=hi_a - lo_a,
        points=points,
        first_seen=first_seen,
        last_seen=last_seen,
        observations=6,
        appearance=LOOK.copy(),
    )
    (model,) = models_from_objects([obj], MappingConfig())
    model.index = store.next_index
    store.next_index += 1
    store.add(model)
    return oid


def looked_at(store: ObjectStore, lo, hi, stamp: float) -> None:
    """Record that the camera had seen the box (lo, hi) (empty) at ``stamp``."""
    axes = [np.linspace(a, b, 9) for a, b in zip(lo, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)
    store.patches.observe_space(grid, stamp)


FAR_LO, FAR_HI = (6.0, 0.0, 0.0), (6.2, 0.2, 0.2)  # a place in another room, seen empty at 1 s


def ball_shows_up_far(store: ObjectStore, detector: ChangeDetector, stamp: float) -> str:
    """Confirm a ball at the far place (seen empty at 1 s), first seen 1 s before ``stamp``."""
    looked_at(store, FAR_LO, FAR_HI, 1.0)
    other = thing(store, "ball", FAR_LO, FAR_HI, stamp - 1.0, stamp)
    detector.confirmed(other)
    return other


@pytest.fixture
def world() -> tuple[ObjectStore, ChangeDetector]:
    store = ObjectStore(index_cell_m=0.5, patch_size_m=0.5)
    free = FreeSpaceConfig(enabled=False)  # "seen before" from the observed-space patches
    ctx = DetectorContext(
        mapping=MappingConfig(),
        association=AssociationConfig(),
        visibility=VisibilityConfig(),
        free_space=free,
        free=FreeSpaceMap(free),
    )
    return store, ChangeDetector(ChangeConfig(), store, ctx)


def frames(detector: ChangeDetector, t0: float, n: int, visibility: dict[str, Evidence]) -> list:
    """Feed ``n`` frames, 0.1 s apart from ``t0``, with the same evidence; return the events."""
    events = []
    for k in range(n):
        events += detector.update(FrameEvidence(stamp=t0 + 0.1 * k, visibility=dict(visibility)))
    return events


def test_an_object_hidden_behind_something_stays(world) -> None:
    store, detector = world
    mug = thing(store, "mug", (0.0, 0.0, 0.8), (0.1, 0.1, 0.9), 0.0, 1.0)
    assert frames(detector, 5.0, 30, {mug: HIDDEN}) == []
    assert store.objects[mug].present
    assert detector.belief(store.models[mug]) == ChangeConfig().seen_log_odds


def test_a_grazing_view_says_nothing(world) -> None:
    store, detector = world
    mug = thing(store, "mug", (0.0, 0.0, 0.8), (0.1, 0.1, 0.9), 0.0, 1.0)
    assert frames(detector, 5.0, 30, {mug: GRAZING}) == []
    assert store.objects[mug].present


def test_the_place_seen_empty_makes_one_disappeared_after_enough_evidence(world) -> None:
    store, detector = world
    mug = thing(store, "mug", (0.0, 0.0, 0.8), (0.1, 0.1, 0.9), 0.0, 1.0)
    # the camera keeps looking: detected at 4.9 s, then its place seen through
    assert detector.update(FrameEvidence(stamp=4.9, observed={mug})) == []
    assert frames(detector, 5.0, 2, {mug: SEEN_THROUGH}) == []  # two frames could be noise
    (event,) = frames(detector, 5.2, 1, {mug: SEEN_THROUGH})
    assert (event.kind, event.object_id) == (ChangeKind.DISAPPEARED, mug)
    np.testing.assert_allclose(event.old_position, [0.05, 0.05, 0.85])
    assert not store.objects[mug].present
    assert frames(detector, 5.3, 10, {mug: SEEN_THROUGH}) == []  # gone once, reported once


def test_a_look_says_the_same_at_any_rate(world) -> None:
    """A frame counts for the time since the object was last looked at, whatever the rate."""
    store, detector = world
    slow = thing(store, "mug", (0.0, 0.0, 0.8), (0.1, 0.1, 0.9), 0.0, 1.0)
    fast = thing(store, "bowl", (2.0, 0.0, 0.8), (2.1, 0.1, 0.9), 0.0, 1.0)
    steady = thing(store, "cup", (3.0, 0.0, 0.8), (3.1, 0.1, 0.9), 0.0, 1.0)
    # at 2 Hz one frame showing the mug's place empty is one look at it
    (event,) = detector.update(FrameEvidence(stamp=5.0, visibility={slow: SEEN_THROUGH}))
    assert (event.kind, event.object_id) == (ChangeKind.DISAPPEARED, slow)
    # and so is one 15 Hz frame: the camera sweeping past the bowl's place once
    (event,) = detector.update(FrameEvidence(stamp=5.0 + 1 / 15, visibility={fast: SEEN_THROUGH}))
    assert (event.kind, event.object_id) == (ChangeKind.DISAPPEARED, fast)
    # looking on at 15 Hz, three frames (0.2 s) after a detection are too little; 0.33 s is enough
    detector.update(FrameEvidence(stamp=6.0, observed={steady}))
    events = []
    for k in range(1, 6):
        stamp = 6.0 + k / 15.0
        events += detector.update(FrameEvidence(stamp=stamp, visibility={steady: SEEN_THROUGH}))
        if k == 3:
            assert events == [] and store.objects[steady].present
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.DISAPPEARED, steady)]
    # a glimpse through a fifth of an object is not a full look, even at 2 Hz
    glimpsed = thing(store, "cabinet", (4.0, 0.0, 0.0), (4.5, 0.5, 0.9), 0.0, 5.0)
    assert detector.update(FrameEvidence(stamp=7.0, visibility={glimpsed: GLIMPSE})) == []
    assert store.objects[glimpsed].present
    # a frame after a long pause in the stream is one look, not a minute of looking
    cfg = ChangeConfig()
    assert frame_weight(55.0, cfg) == cfg.evidence_max_frames == frame_weight(0.5, cfg)
    assert frame_weight(-1.0, cfg) == 0.0  # a stamp going back says nothing new


def test_consistent_depth_between_misses_keeps_it(world) -> None:
    store, detector = world
    mug = thing(store, "mug", (0.0, 0.0, 0.8), (0.1, 0.1, 0.9), 0.0, 1.0)
    evidence = [IN_PLACE, SEEN_THROUGH] * 10  # a flickering reading, the mug still there
    events = []
    for k, ev in enumerate(evidence):
        events += detector.update(FrameEvidence(stamp=5.0 + 0.1 * k, visibility={mug: ev}))
    assert events == [] and store.objects[mug].present


def test_one_of_several_look_alikes_elsewhere_is_no_move_until_an_old_place_is_seen_empty(
    world,
) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 0.0, 10.0)
    twin = thing(store, "ball", (0.0, 3.0, 0.0), (0.2, 3.2, 0.2), 0.0, 10.0)  # identical
    other = ball_shows_up_far(store, detector, 21.0)  # the camera had looked there
    # the new ball is seen for a while (another room); the old places are not in view
    for k in range(5):
        t = 21.0 + 0.1 * k
        events = detector.update(FrameEvidence(stamp=t, observed={other}, changed={other}))
        assert events == [], "which of the two balls? not known while both may be there"
    assert {ball, twin, other} <= set(store.objects)
    # one old place seen empty (one look): that ball moved there (one event, its id kept)
    events = frames(detector, 30.0, 1, {ball: SEEN_THROUGH})
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, ball)]
    np.testing.assert_allclose(events[0].new_position, [6.1, 0.1, 0.1], atol=1e-6)
    assert other not in store and store.objects[ball].present and store.objects[twin].present


def test_a_look_alike_that_moved_is_not_also_another_one_moved(world) -> None:
    """Once linked as moved, a ball is not "new over there" for a twin found gone later."""
    store, detector = world
    twin = thing(store, "ball", (0.0, 3.0, 0.0), (0.2, 3.2, 0.2), 0.0, 3.0)  # seen first
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 5.0, 10.0)  # then this one
    other = ball_shows_up_far(store, detector, 21.0)
    detector.update(FrameEvidence(stamp=21.0, observed={other, twin}, changed={other}))
    events = frames(detector, 30.0, 1, {ball: SEEN_THROUGH})
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, ball)]
    # the twin's place seen empty: it went (the ball over there is the ball that moved)
    events = frames(detector, 40.0, 3, {twin: SEEN_THROUGH})
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.DISAPPEARED, twin)]
    assert store.objects[ball].present and not store.objects[twin].present


def test_an_opened_door_seen_alone_is_its_refrigerator_changing_state(world) -> None:
    """A door swung open sticks out of the closed box: the part, in its new state, no APPEARED."""
    store, detector = world
    fridge = thing(store, "refrigerator", (0.0, 0.0, 0.0), (0.8, 0.7, 1.8), 0.0, 10.0)
    store.objects[fridge].state = "closed"
    door = thing(store, "refrigerator", (0.9, 1.2, 0.2), (1.0, 1.3, 1.7), 20.0, 21.0)
    store.objects[door].state = "open"  # its far end, 0.5 m from the closed box
    detector.confirmed(door)
    events = detector.update(FrameEvidence(stamp=21.0, observed={door}, changed={door}))
    assert [(e.kind, e.object_id, e.old_state, e.new_state) for e in events] == [
        (ChangeKind.STATE_CHANGED, fridge, "closed", "open")
    ]
    assert door not in store and store.objects[fridge].state == "open"
    # another one, in the same state, 0.5 m from it: a second refrigerator, not a part
    other = thing(store, "refrigerator", (1.5, 0.0, 0.0), (2.3, 0.7, 1.8), 30.0, 31.0)
    store.objects[other].state = "open"
    assert detector._parent_of_part(store.models[other]) is None


def test_a_door_seen_alone_belongs_to_the_nearest_of_counters_side_by_side(world) -> None:
    """Of two counters in a row, the opened one's door is its own, not the closed neighbour's."""
    store, detector = world
    closed = thing(store, "counter", (0.0, 0.0, 0.0), (0.9, 0.6, 0.9), 0.0, 10.0)  # known first
    store.objects[closed].state = "closed"
    opened = thing(store, "counter", (0.9, 0.0, 0.0), (1.8, 0.6, 0.9), 0.5, 10.0)
    store.objects[opened].state = "open"  # its opening already reported
    door = thing(store, "counter", (1.3, 0.65, 0.1), (1.75, 0.7, 0.8), 20.0, 21.0)
    store.objects[door].state = "open"  # 0.4 m from the closed one's box: within its reach
    detector.confirmed(door)
    events = detector.update(FrameEvidence(stamp=21.0, observed={door}, changed={door}))
    assert events == []  # the opened counter's door: nothing new
    assert door not in store
    assert store.objects[closed].state == "closed" and store.objects[opened].state == "open"


def test_a_fragment_merged_in_the_frame_of_its_state_change_speaks_for_its_object(world) -> None:
    """A fragment seen closed, then given the open detection, is the opened counter: one event."""
    store, detector = world
    counter = thing(store, "counter", (0.0, 0.0, 0.0), (0.9, 0.6, 0.9), 0.0, 21.0)
    store.objects[counter].state = "open"  # its opening already reported
    fragment = thing(store, "counter", (0.1, 0.1, 0.3), (0.6, 0.5, 0.9), 3.0, 21.0)
    store.objects[fragment].state = "open"
    # the fusion stage reported the fragment's change from the detection (closed -> open)
    fused = make_event(ChangeKind.STATE_CHANGED, store.objects[fragment], 21.0, old_state="closed")
    moved = make_event(ChangeKind.MOVED, store.objects[fragment], 21.0)
    detector.merge(store.models[counter], store.models[fragment])
    events = detector.consolidate([fused, moved])
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, counter)]
    # another state than the object had is its change; merges are forgotten after the frame
    fragment = thing(store, "counter", (0.1, 0.1, 0.3), (0.6, 0.5, 0.9), 3.0, 22.0)
    store.objects[fragment].state = "broken"
    fused = make_event(ChangeKind.STATE_CHANGED, store.objects[fragment], 22.0, old_state="open")
    detector.merge(store.models[counter], store.models[fragment])
    (event,) = detector.consolidate([fused, fused])
    assert (event.object_id, event.new_state) == (counter, "broken")
    assert detector.consolidate([fused]) == [fused]  # the next frame: nothing merged


def test_a_unique_look_alike_elsewhere_is_moved_at_once(world) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 0.0, 10.0)
    other = ball_shows_up_far(store, detector, 21.0)
    # the old place is not in view: the only ball of that look moved (no APPEARED first)
    events = detector.update(FrameEvidence(stamp=21.0, observed={other}, changed={other}))
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, ball)]
    np.testing.assert_allclose(events[0].old_position, [0.1, 0.1, 0.1], atol=1e-6)
    assert other not in store and store.objects[ball].present


def test_a_unique_look_alike_of_another_size_is_no_move(world) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.1, 0.1, 0.1), 0.0, 10.0)
    looked_at(store, (6.0, 0.0, 0.0), (7.0, 1.0, 1.0), 1.0)
    big = thing(store, "ball", (6.0, 0.0, 0.0), (7.0, 1.0, 1.0), 20.0, 21.0)
    detector.confirmed(big)
    events = detector.update(FrameEvidence(stamp=21.0, observed={big}, changed={big}))
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.APPEARED, big)]
    assert ball in store and store.objects[ball].present


def test_look_alikes_seen_in_their_places_make_the_new_one_appeared(world) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 0.0, 10.0)
    twin = thing(store, "ball", (0.0, 3.0, 0.0), (0.2, 3.2, 0.2), 0.0, 10.0)  # identical
    other = ball_shows_up_far(store, detector, 21.0)
    events = detector.update(FrameEvidence(stamp=21.0, observed={other}, changed={other}))
    assert events == []  # either ball may have moved there
    store.objects[ball].last_seen = 22.0  # detected in its place (as fusion records it)
    events += detector.update(FrameEvidence(stamp=22.0, observed={ball}))
    events += detector.update(FrameEvidence(stamp=22.1, changed={other}))
    assert events == []  # the twin still may have
    store.objects[twin].last_seen = 23.0
    events += detector.update(FrameEvidence(stamp=23.0, observed={twin}))
    events += detector.update(FrameEvidence(stamp=23.1, changed={other}))
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.APPEARED, other)]


def test_a_look_alike_seen_gone_before_a_new_one_shows_up_elsewhere_moved_there(world) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 0.0, 10.0)
    twin = thing(store, "ball", (0.0, 3.0, 0.0), (0.2, 3.2, 0.2), 0.0, 10.0)  # identical
    # the old place is seen empty first: gone, as far as anyone can tell yet
    events = frames(detector, 20.0, 5, {ball: SEEN_THROUGH})
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.DISAPPEARED, ball)]
    # then a ball of that look stands at a place seen empty before; the twin was just seen
    store.objects[twin].last_seen = 24.0
    other = ball_shows_up_far(store, detector, 26.0)
    events = detector.update(FrameEvidence(stamp=26.0, observed={other}, changed={other}))
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.MOVED, ball)]
    np.testing.assert_allclose(events[0].old_position, [0.1, 0.1, 0.1], atol=1e-6)
    assert other not in store and store.objects[ball].present and store.objects[twin].present


def test_a_new_object_unlike_the_one_gone_is_appeared(world) -> None:
    store, detector = world
    ball = thing(store, "ball", (0.0, 0.0, 0.0), (0.2, 0.2, 0.2), 0.0, 10.0)
    assert [e.kind for e in frames(detector, 20.0, 5, {ball: SEEN_THROUGH})] == [
        ChangeKind.DISAPPEARED
    ]
    looked_at(store, (6.0, 0.0, 0.0), (6.2, 0.2, 0.2), 1.0)
    other = thing(store, "ball", (6.0, 0.0, 0.0), (6.2, 0.2, 0.2), 25.0, 26.0)
    look = np.zeros(8, np.float32)
    look[0] = 1.0  # another colour altogether
    store.objects[other].appearance = look
    detector.confirmed(other)
    events = detector.update(FrameEvidence(stamp=26.0, observed={other}, changed={other}))
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.APPEARED, other)]
    assert not store.objects[ball].present


def test_an_object_held_as_two_fragments_moves_as_one(world) -> None:
    store, detector = world
    # one chair seen from two far-apart viewpoints, held as two touching pieces
    left = thing(store, "chair", (0.0, 0.0, 0.0), (0.25, 0.5, 0.9), 0.0, 10.0)
    right = thing(store, "chair", (0.25, 0.0, 0.0), (0.5, 0.5, 0.9), 0.5, 10.0)
    looked_at(store, (4.0, 0.0, 0.0), (4.5, 0.5, 0.9), 1.0)
    moved = thing(store, "chair", (4.0, 0.0, 0.0), (4.5, 0.5, 0.9), 20.0, 21.0)
    # one look through the old place: the pieces move as one
    events = frames(detector, 30.0, 1, {left: SEEN_THROUGH, right: SEEN_THROUGH})
    assert [e.kind for e in events] == [ChangeKind.MOVED]
    assert events[0].object_id in (left, right)
    assert {left, right, moved} & set(store.objects) == {events[0].object_id}
    assert frames(detector, 40.0, 10, {events[0].object_id: HIDDEN}) == []


def test_an_object_held_as_two_fragments_disappears_once(world) -> None:
    store, detector = world
    left = thing(store, "chair", (0.0, 0.0, 0.0), (0.25, 0.5, 0.9), 0.0, 10.0)
    right = thing(store, "chair", (0.25, 0.0, 0.0), (0.5, 0.5, 0.9), 0.5, 10.0)
    events = frames(detector, 30.0, 10, {left: SEEN_THROUGH, right: SEEN_THROUGH})
    assert [e.kind for e in events] == [ChangeKind.DISAPPEARED]


def test_a_sliver_inside_its_object_merges_into_it_whichever_came_first() -> None:
    """A sliver of a chair seen from afar before the chair is no second chair."""
    mem = SceneMemory(SceneMemoryConfig())
    store = mem._store
    sliver = thing(store, "chair", (0.75, 0.05, 0.4), (0.8, 0.1, 0.8), 1.0, 2.0)  # seen first
    chair = thing(store, "chair", (0.3, 0.0, 0.0), (0.8, 0.5, 0.9), 3.0, 4.0)
    beside = thing(store, "chair", (0.85, 0.0, 0.0), (1.35, 0.5, 0.9), 3.0, 4.0)  # its twin
    door = thing(store, "chair", (0.3, 0.45, 0.1), (0.35, 0.5, 0.3), 3.0, 4.0)
    store.objects[door].state = "folded"  # another state: a state change, not merged silently
    store.objects[chair].state = "unfolded"
    for oid in (sliver, chair, beside, door):
        store.confirm(oid)
    margin = mem.config.association.box_margin_m
    assert pieces_of_one(store.objects[sliver], store.objects[chair], margin)
    assert not pieces_of_one(store.objects[chair], store.objects[beside], margin)
    assert not pieces_of_one(store.objects[door], store.objects[chair], margin)
    # boxes that mostly overlap: one thing whose views saw different surfaces
    sofa = thing(store, "sofa", (0.0, 2.0, 0.0), (2.0, 3.0, 0.9), 3.0, 4.0)
    back = thing(store, "sofa", (0.6, 2.3, 0.0), (2.4, 3.2, 0.9), 5.0, 6.0)  # 0.78 inside
    objs = store.objects
    assert not pieces_of_one(objs[sofa], objs[back], margin)  # neither much smaller
    assert pieces_of_one(objs[sofa], objs[back], margin, box_overlap=0.5)
    assert not pieces_of_one(objs[sofa], objs[back], margin, box_overlap=0.8)
    assert not pieces_of_one(objs[chair], objs[beside], margin, box_overlap=0.5)  # touching
    mem._touched = {sliver, chair, beside, door, sofa, back}
    mem._merge_duplicates()
    assert set(store.objects) == {sliver, beside, door, sofa}  # one chair, one sofa
    np.testing.assert_allclose(store.objects[sliver].box_max, [0.8, 0.5, 0.9], atol=0.03)


def test_a_neighbour_of_its_kind_seen_in_place_stays(world) -> None:
    store, detector = world
    gone = thing(store, "chair", (0.0, 0.0, 0.0), (0.5, 0.5, 0.9), 0.0, 10.0)
    stays = thing(store, "chair", (0.52, 0.0, 0.0), (1.0, 0.5, 0.9), 0.0, 10.0)
    events = frames(detector, 30.0, 3, {gone: SEEN_THROUGH, stays: IN_PLACE})
    assert [(e.kind, e.object_id) for e in events] == [(ChangeKind.DISAPPEARED, gone)]
    assert store.objects[stays].present


# --- a thin object put on a table: "free before" from the table top seen beneath its place
# (free_space.surface_evidence), with the free-space keyframes of a rendered camera

TABLE = Box(np.array([2.5, 0.0, 0.35]), np.array([1.0, 1.0, 0.7]), "table", 1)  # top at 0.70 m
BOOK_LO, BOOK_HI = (2.375, -0.09, 0.70), (2.625, 0.09, 0.73)  # 3 cm thick, on the table
BOOK = Box(np.array([2.5, 0.0, 0.715]), np.array([0.25, 0.18, 0.03]), "book", 2)
KB = intrinsics(320, 240, fov_deg=60.0)


@pytest.fixture
def room() -> tuple[ObjectStore, ChangeDetector, FreeSpaceMap]:
    store = ObjectStore(index_cell_m=0.5, patch_size_m=0.5)
    free = FreeSpaceMap(FreeSpaceConfig())
    ctx = DetectorContext(
        mapping=MappingConfig(),
        association=AssociationConfig(),
        visibility=VisibilityConfig(),
        free_space=free.config,
        free=free,
    )
    return store, ChangeDetector(ChangeConfig(), store, ctx), free


def keyframe(
    free: FreeSpaceMap, world: BoxWorld, stamp: float, target=(2.5, 0.0, 0.2), seed=None
) -> None:
    """Give the free-space map a 320x240 view from (0, 0, 1.4) (with the simulator's noise)."""
    f = render(world, KB, look_at(np.array([0.0, 0.0, 1.4]), np.array(target)), 320, 240, stamp)
    if seed is not None:
        rng = np.random.default_rng(seed)
        valid = f.depth > 0
        f.depth[valid] += rng.standard_normal(np.count_nonzero(valid)) * (
            0.001 + 0.0025 * f.depth[valid] ** 2
        )
    assert free.observe(f.depth, f.K, f.map_T_camera, stamp)


def book_confirmed(store: ObjectStore, detector: ChangeDetector) -> list:
    """Confirm the book (first seen at 20 s) and return the events of that frame."""
    book = thing(store, "book", BOOK_LO, BOOK_HI, 20.0, 21.0)
    detector.confirmed(book)
    return detector.update(FrameEvidence(stamp=21.0, observed={book}, changed={book}))


def test_a_thin_object_put_on_a_table_seen_empty_before_is_appeared(room) -> None:
    store, detector, free = room
    keyframe(free, BoxWorld([TABLE]), 1.0)  # the table, empty
    book_pts = thing(store, "probe", BOOK_LO, BOOK_HI, 0.0, 0.0)  # the book's points
    pts = store.objects[book_pts].points
    store.remove(book_pts)
    # the see-through test alone does not know the place was free: too thin to see through
    assert free.free_before(pts, 20.0) < free.config.appeared_min_free_fraction
    events = book_confirmed(store, detector)
    assert [e.kind for e in events] == [ChangeKind.APPEARED]


def test_a_thin_object_whose_place_was_never_seen_makes_no_event(room) -> None:
    store, detector, free = room
    keyframe(free, BoxWorld([TABLE]), 1.0, target=(-2.5, 0.0, 0.2))  # looking the other way
    assert book_confirmed(store, detector) == []


def test_a_thin_object_there_all_along_seen_with_depth_noise_makes_no_event(room) -> None:
    for seed in range(3):
        store, detector, free = room
        free.clear()
        for oid in list(store.models):
            store.remove(oid)
        keyframe(free, BoxWorld([TABLE, BOOK]), 1.0, seed=seed)  # the book was there, far
        assert book_confirmed(store, detector) == []


def test_old_parameter_names_are_accepted_with_a_warning() -> None:
    from memory_node.core.config import unflatten
    from memory_node.core.scene_memory import SceneMemoryConfig

    with pytest.warns(DeprecationWarning, match="change.ambiguous_wait_s"):
        cfg = unflatten(SceneMemoryConfig, {"association.ambiguous_wait_s": 7.0})
    assert cfg.change.ambiguous_wait_s == 7.0
    with pytest.warns(DeprecationWarning, match="no longer used|change"):
        cfg = unflatten(
            SceneMemoryConfig,
            {"visibility.misses_to_absent": 4.0, "association.moved_unique_margin": 0.2},
        )
    c = cfg.change
    # four frames seeing through a just-seen object cross the threshold, three do not
    assert c.seen_log_odds + 4 * c.through_log_odds < c.absent_below_log_odds
    assert c.seen_log_odds + 3 * c.through_log_odds > c.absent_below_log_odds
    with pytest.raises(ValueError, match="unknown parameter"):
        unflatten(SceneMemoryConfig, {"association.no_such_thing": 1.0})
