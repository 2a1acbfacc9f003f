"""Tests of the pooled change-detection figures (memory_node.eval_changes), hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memory_node.core.types import ChangeEvent, ChangeKind
from memory_node.eval_changes import pair_changes, score_episode, summarize, wilson_interval
from memory_node.evaluation import MemObject


def _obj(iid: int, name: str, label: str, center: tuple[float, float, float]) -> dict:
    c = np.asarray(center, float)
    h = {
        "stamp": 0.0,
        "name": name,
        "label": label,
        "static": False,
        "present": True,
        "center": c.tolist(),
        "box_min": (c - 0.05).tolist(),
        "box_max": (c + 0.05).tolist(),
    }
    return {"instance_id": iid, "history": [h], "visibility": {"frames": 50}}  # fmt: skip


def _change(kind: str, iid: int, name: str, label: str, stamp: float, old, new) -> dict:
    return {"kind": kind, "stamp": stamp, "instance_id": iid, "name": name, "label": label,
            "old_position": list(old), "new_position": list(new)}  # fmt: skip


def _frames(n: int, seen: dict[str, int] | None = None, vacated: dict[str, float] | None = None):
    return [{"stamp": 0.1 * (i + 1), "visible_in_range": seen or {},
             "vacated_in_view": vacated or {}} for i in range(n)]  # fmt: skip


def _ev(kind: str, oid: str, label: str, stamp: float, old=(0, 0, 0), new=(0, 0, 0)):
    kind_ = ChangeKind[kind]
    return ChangeEvent(kind_, oid, label, stamp, np.asarray(old, float), np.asarray(new, float))


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_pair_changes_one_to_one_by_label_time_and_place() -> None:
    gt = [
        _change("MOVED", 1, "a/mug_0", "mug", 5.0, (0, 0, 1), (2, 0, 1)),
        _change("MOVED", 2, "a/mug_1", "mug", 5.0, (0, 1, 1), (2, 1, 1)),
    ]
    events = [
        _ev("MOVED", "m1", "mug", 6.0, new=(2.05, 1.0, 1)),  # the second one
        _ev("MOVED", "m2", "mug", 4.0, new=(2.0, 0.0, 1)),  # before the change: no match
        _ev("MOVED", "m3", "bowl", 6.0, new=(2.0, 0.0, 1)),  # wrong label
        _ev("MOVED", "m4", "mug", 7.0, new=(2.0, 0.1, 1)),  # the first one
        _ev("DISAPPEARED", "m5", "mug", 7.0, old=(2.0, 0.0, 1)),  # other kind
    ]
    assert pair_changes("MOVED", gt, events) == [(0, 1), (3, 0)]
    assert pair_changes("DISAPPEARED", gt, events) == []


def _episode() -> tuple[dict, list[ChangeEvent]]:
    objects = [
        _obj(1, "a/mug_0", "mug", (0, 0, 1)),
        _obj(2, "a/mug_1", "mug", (0, 1, 1)),
        _obj(3, "a/book_0", "book", (3, 3, 1)),
        _obj(4, "a/bowl_0", "bowl", (4, 0, 1)),
    ]
    objects[0]["history"].append({**objects[0]["history"][0], "stamp": 5.0,
                                  "center": [2.0, 0.0, 1.0], "box_min": [1.95, -0.05, 0.95],
                                  "box_max": [2.05, 0.05, 1.05]})  # fmt: skip
    objects[3]["history"].append({**objects[3]["history"][0], "stamp": 5.0, "present": False})
    changes = [
        _change("MOVED", 1, "a/mug_0", "mug", 5.0, (0, 0, 1), (2, 0, 1)),
        _change("DISAPPEARED", 4, "a/bowl_0", "bowl", 5.0, (4, 0, 1), (0, 0, 0)),
    ]
    seen = {"1": 500, "2": 500, "3": 500, "4": 500}
    frames = _frames(100, seen=seen, vacated={"1": 1.0, "4": 1.0})
    gt = {"objects": objects, "changes": changes, "frames": frames}
    events = [
        _ev("DISAPPEARED", "o9", "book", 2.0, old=(3, 3, 1)),  # before any change: false
        _ev("MOVED", "o2", "mug", 5.5, old=(0, 1, 1), new=(2, 0, 1)),  # the other mug: a swap
        _ev("DISAPPEARED", "o4", "bowl", 6.0, old=(4, 0, 1)),
        _ev("DISAPPEARED", "o5", "book", 7.0, old=(3, 3, 1)),  # false
    ]
    return gt, events


def test_score_episode_counts_swaps_delays_and_false_events() -> None:
    gt, events = _episode()
    memory = [
        MemObject("o1", "mug", np.array([2.0, 0.0, 1.0]), np.full(3, 0.1)),
        MemObject("o2", "mug", np.array([0.0, 1.0, 1.0]), np.full(3, 0.1)),
        MemObject("o3", "mug", np.array([0.02, 1.0, 1.0]), np.full(3, 0.1)),  # duplicate
    ]
    s = score_episode("ep", "smooth", False, gt, events, memory)
    assert s.frames == 100 and s.pre_change_frames == 49
    assert s.pre_change_events["DISAPPEARED"] == 1
    moved, gone = s.kinds["MOVED"], s.kinds["DISAPPEARED"]
    assert (moved.gt, moved.reported, moved.true_positives) == (1, 1, 1)
    assert (gone.gt, gone.reported, gone.true_positives) == (1, 2, 1)
    assert moved.delays_s == [pytest.approx(0.5)] and gone.delays_s == [pytest.approx(1.0)]
    assert s.moves_matched == 1 and s.lookalike_moves_matched == 1
    assert s.lookalike_swaps == 1 and len(s.swaps) == 1
    assert (s.objects_considered, s.objects_found, s.duplicates) == (3, 2, 1)
    assert s.objects_missed == ["ep: a/book_0"]
    faint = score_episode("ep", "smooth", False, gt, events, memory, min_view_pixels=600)
    assert faint.objects_considered == 0
    assert (faint.kinds["MOVED"].gt, faint.kinds["MOVED"].unobservable) == (0, 1)

    static = score_episode("st", "smooth", True, {**gt, "changes": []}, events[:1], memory)
    summary = summarize([s, static])
    assert summary["static"]["false_events"] == 1 and summary["static"]["frames"] == 100
    assert summary["static"]["per_1000_frames"] == pytest.approx(10.0)
    assert summary["pre_change"]["events"] == 1
    assert summary["kinds"]["DISAPPEARED"]["precision"]["value"] == pytest.approx(0.5)
    assert summary["identity_swaps"]["lookalike_moves"]["value"] == 1.0
    assert summary["median_delay_s"] == pytest.approx(0.75)


def _move_episode(seen_before: bool, new_seen_at: float | None, old_seen_at: float | None):
    """Build a mug moved at 5 s (frames every 0.1 s) with its new/old place shown as given."""
    objects = [_obj(1, "a/mug_0", "mug", (0, 0, 1))]
    changes = [_change("MOVED", 1, "a/mug_0", "mug", 5.0, (0, 0, 1), (2, 0, 1))]
    frames = _frames(100)
    for f in frames:
        t = f["stamp"]
        shown = (t < 5.0 and seen_before) or (new_seen_at is not None and t >= new_seen_at)
        f["visible_in_range"] = {"1": 500} if shown else {}
        emptied = old_seen_at is not None and t >= old_seen_at
        f["vacated_in_view"] = {"1": 1.0} if emptied else {}
    return {"objects": objects, "changes": changes, "frames": frames}


def test_a_move_counts_as_what_the_camera_showed_of_it() -> None:
    gone = _ev("DISAPPEARED", "o1", "mug", 6.0, old=(0, 0, 1))
    came = _ev("APPEARED", "o2", "mug", 7.0, new=(2, 0, 1))
    moved = _ev("MOVED", "o1", "mug", 8.0, old=(0, 0, 1), new=(2, 0, 1))
    # only the old place seen empty: a DISAPPEARED there is the hit, a MOVED would be unasked
    s = score_episode("ep", "smooth", False, _move_episode(True, None, 5.5), [gone], [])
    k = s.kinds
    assert (k["DISAPPEARED"].gt, k["DISAPPEARED"].true_positives) == (1, 1)
    assert (k["MOVED"].gt, k["MOVED"].true_changes) == (0, 1)
    # ... the object then shown at its new place, which no frame had shown before the move:
    # the DISAPPEARED is still the hit; a MOVED there as well is right, though not required
    ep = _move_episode(True, 7.5, 5.5)
    for f in ep["frames"]:
        f["new_place_in_view"] = {}
    s = score_episode("ep", "smooth", False, ep, [gone, moved], [])
    k = s.kinds
    assert (k["DISAPPEARED"].gt, k["DISAPPEARED"].true_positives) == (1, 1)
    assert (k["MOVED"].gt, k["MOVED"].unforeseen, k["MOVED"].reported) == (0, 1, 0)
    assert not k["MOVED"].false and len(k["MOVED"].excused) == 1
    # ... but a MOVED of it to somewhere else is false
    astray = _ev("MOVED", "o1", "mug", 8.0, old=(0, 0, 1), new=(5, 5, 1))
    s = score_episode("ep", "smooth", False, ep, [gone, astray], [])
    assert len(s.kinds["MOVED"].false) == 1
    # only the new place seen: APPEARED there, or MOVED (a unique look-alike linked at once)
    ep = _move_episode(True, 6.5, None)
    s = score_episode("ep", "smooth", False, ep, [came], [])
    assert (s.kinds["APPEARED"].gt, s.kinds["APPEARED"].true_positives) == (1, 1)
    s = score_episode("ep", "smooth", False, ep, [moved], [])
    assert (s.kinds["MOVED"].gt, s.kinds["MOVED"].true_positives, s.kinds["APPEARED"].gt) == (
        1, 1, 0)  # fmt: skip
    # an object never shown before its move: its new place holds a new object
    s = score_episode("ep", "smooth", False, _move_episode(False, 6.5, 5.5), [came], [])
    assert (s.kinds["APPEARED"].gt, s.kinds["APPEARED"].true_positives) == (1, 1)
    assert s.kinds["MOVED"].gt == 0
    # never shown after it: in no recall, and an event about it is not false
    s = score_episode("ep", "smooth", False, _move_episode(True, None, None), [gone], [])
    assert all(k.gt == 0 for k in s.kinds.values()) and s.kinds["MOVED"].unobservable == 1
    assert s.kinds["DISAPPEARED"].reported == 0 and not s.kinds["DISAPPEARED"].false


def test_an_event_right_when_made_is_excused_and_a_wrong_one_is_not() -> None:
    ep = _move_episode(True, 7.5, 5.5)  # old place seen empty at 5.5, the mug elsewhere at 7.5
    gone_early = _ev("DISAPPEARED", "o1", "mug", 6.0, old=(0, 0, 1))
    moved = _ev("MOVED", "o1", "mug", 8.0, old=(0, 0, 1), new=(2, 0, 1))
    s = score_episode("ep", "smooth", False, ep, [gone_early, moved], [])
    k = s.kinds
    assert (k["MOVED"].gt, k["MOVED"].true_positives, k["MOVED"].reported) == (1, 1, 1)
    assert k["DISAPPEARED"].reported == 0 and len(k["DISAPPEARED"].excused) == 1
    # gone after the camera showed it elsewhere: false
    gone_late = _ev("DISAPPEARED", "o1", "mug", 7.6, old=(0, 0, 1))
    s = score_episode("ep", "smooth", False, ep, [gone_late, moved], [])
    assert s.kinds["DISAPPEARED"].reported == 1 and len(s.kinds["DISAPPEARED"].false) == 1
