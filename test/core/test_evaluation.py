"""Known-answer tests of the memory-vs-ground-truth comparison."""

import numpy as np

from memory_node.core.types import ChangeEvent, ChangeKind
from memory_node.evaluation import (
    MemObject,
    box_samples,
    change_metrics,
    first_views,
    gt_objects_at,
    mark_new_places,
    match_objects,
    observable_changes,
    share_in_view,
)


def gt_doc():
    def entry(stamp, center, present=True, label="mug", name="kitchen/mug_0"):
        c = np.asarray(center, float)
        return {
            "stamp": stamp,
            "name": name,
            "label": label,
            "room": "kitchen",
            "static": False,
            "state": "",
            "present": present,
            "center": c.tolist(),
            "box_min": (c - 0.05).tolist(),
            "box_max": (c + 0.05).tolist(),
        }

    return {
        "objects": [
            {
                "instance_id": 1,
                "visibility": {"frames": 20},
                "history": [entry(0.0, [1, 0, 1]), entry(50.0, [3, 0, 1])],
            },
            {
                "instance_id": 2,
                "visibility": {"frames": 3},
                "history": [entry(0.0, [0, 2, 0.5], label="ball", name="ball_0")],
            },
            {
                "instance_id": 3,
                "visibility": {"frames": 15},
                "history": [
                    entry(0.0, [5, 5, 0.5], label="teddy", name="teddy_0"),
                    entry(60.0, [5, 5, 0.5], present=False, label="teddy", name="teddy_0"),
                ],
            },
        ],
        "changes": [
            {
                "kind": "MOVED",
                "instance_id": 1,
                "name": "kitchen/mug_0",
                "stamp": 50.0,
                "label": "mug",
                "old_position": [1, 0, 1],
                "new_position": [3, 0, 1],
            },
            {
                "kind": "DISAPPEARED",
                "instance_id": 3,
                "name": "teddy_0",
                "stamp": 60.0,
                "label": "teddy",
                "old_position": [5, 5, 0.5],
                "new_position": [0, 0, 0],
            },
        ],
    }


def test_ground_truth_state_at_a_time():
    early = {g.instance_id: g for g in gt_objects_at(gt_doc(), 10.0)}
    late = {g.instance_id: g for g in gt_objects_at(gt_doc())}
    assert np.allclose(early[1].center, [1, 0, 1]) and np.allclose(late[1].center, [3, 0, 1])
    assert early[3].present and not late[3].present


def test_matching_recall_duplicates_and_error():
    gt = gt_objects_at(gt_doc(), 10.0)
    mem = [
        MemObject("a", "mug", np.array([1.0, 0.04, 1.0]), np.ones(3) * 0.1),
        MemObject("b", "mug", np.array([1.1, 0.0, 1.0]), np.ones(3) * 0.1),  # duplicate
        MemObject("c", "teddy", np.array([9.0, 9.0, 0.5]), np.ones(3) * 0.1),  # far: not teddy
        MemObject("d", "ball", np.array([0.0, 2.0, 0.5]), np.ones(3) * 0.1),  # seen too little
    ]
    m = match_objects(gt, mem, min_frames_seen=10)
    assert m.gt_considered == 2 and m.found == 1 and m.recall == 0.5
    assert m.matches[0][:2] == (1, "a") and abs(m.median_centroid_error_m - 0.04) < 1e-9
    assert m.duplicates == 1 and m.unmatched_memory == 2 and m.missed == ["teddy_0"]


def test_change_precision_recall_and_delay():
    events = [
        ChangeEvent(
            ChangeKind.MOVED, "a", "mug", 71.0, np.array([1, 0, 1.0]), np.array([3.1, 0, 1.0])
        ),
        ChangeEvent(
            ChangeKind.MOVED, "x", "mug", 72.0, np.zeros(3), np.array([8.0, 0, 1.0])
        ),  # false
        ChangeEvent(
            ChangeKind.DISAPPEARED, "t", "teddy", 40.0, np.array([5, 5, 0.5]), np.zeros(3)
        ),  # early
        ChangeEvent(
            ChangeKind.APPEARED, "q", "duck", 5.0, np.zeros(3), np.ones(3)
        ),  # before since_s
    ]
    m = change_metrics(gt_doc()["changes"], events, since_s=30.0)
    assert (m["MOVED"].true_positives, m["MOVED"].precision, m["MOVED"].recall) == (1, 0.5, 1.0)
    assert m["MOVED"].median_delay_s == 21.0
    assert m["DISAPPEARED"].recall == 0.0 and m["DISAPPEARED"].reported == 1
    assert m["APPEARED"].reported == 0 and np.isnan(m["APPEARED"].precision)
    assert m["MOVED"].false == ["mug x at 72.0 s (8.00, 0.00, 1.00)"]
    assert m["DISAPPEARED"].missed == ["teddy_0"] and m["MOVED"].missed == []


def frames_doc():
    """Frame truth: the mug seen at its new place from 55 s, its old place empty at 65 s.

    The teddy's old place is glimpsed (30 %) at 61 s and seen from 62 s.
    """
    frames = []
    for k in range(0, 100):
        t = float(k)
        f = {"stamp": t, "visible": {}, "vacated_in_view": {}}
        if t >= 55:
            f["visible"]["1"] = 400 if t != 56 else 100
        if t == 65:
            f["vacated_in_view"]["1"] = 0.9
        if t == 61:
            f["vacated_in_view"]["3"] = 0.3
        if t >= 62:
            f["vacated_in_view"]["3"] = 0.7
        frames.append(f)
    return frames


def test_first_views_need_the_object_and_the_old_place():
    views = first_views(gt_doc()["changes"], frames_doc(), min_pixels=300, min_vacated=0.5)
    assert views == [65.0, 62.0]
    # a change never seen afterwards has no first view
    assert first_views(gt_doc()["changes"], frames_doc()[:60]) == [None, None]


def test_first_views_count_only_pixels_with_depth_when_the_truth_has_them():
    frames = frames_doc()
    for f in frames:  # the mug is beyond the depth range until 58 s
        f["visible_in_range"] = {"1": 400} if f["stamp"] >= 58 else {}
    changes = gt_doc()["changes"]
    frames[65]["vacated_in_view"]["1"] = 0.0
    frames[57]["vacated_in_view"]["1"] = 0.9  # the old place is seen before the mug is placed
    assert first_views(changes, frames)[0] == 58.0
    for f in frames:
        del f["visible_in_range"]
    assert first_views(changes, frames)[0] == 57.0


def test_delays_run_from_the_first_view():
    events = [
        ChangeEvent(
            ChangeKind.MOVED, "a", "mug", 65.4, np.array([1, 0, 1.0]), np.array([3.0, 0, 1.0])
        ),
        ChangeEvent(
            ChangeKind.DISAPPEARED, "t", "teddy", 64.0, np.array([5, 5, 0.5]), np.zeros(3)
        ),
    ]
    m = change_metrics(gt_doc()["changes"], events, frames=frames_doc(), late_after_s=1.0)
    assert abs(m["MOVED"].median_delay_s - 0.4) < 1e-9 and m["MOVED"].late == 0
    assert m["DISAPPEARED"].max_delay_s == 2.0 and m["DISAPPEARED"].late == 1
    assert m["MOVED"].unviewed == [] and m["DISAPPEARED"].recall == 1.0


def test_matching_is_optimal_not_first_come() -> None:
    """Two events at once near one removal: the nearer one is the true positive."""
    changes = [
        {"kind": "DISAPPEARED", "instance_id": 3, "name": "laptop_1", "stamp": 10.0,
         "label": "laptop", "old_position": [6.31, 1.72, 0.65], "new_position": [0, 0, 0]},
    ]  # fmt: skip
    events = [
        ChangeEvent(
            ChangeKind.DISAPPEARED, "a", "laptop", 12.0, np.array([6.48, 1.27, 0.65]), np.zeros(3)
        ),
        ChangeEvent(
            ChangeKind.DISAPPEARED, "b", "laptop", 12.0, np.array([6.31, 1.73, 0.65]), np.zeros(3)
        ),
    ]
    m = change_metrics(changes, events)["DISAPPEARED"]
    assert m.true_positives == 1 and m.false == ["laptop a at 12.0 s (6.48, 1.27, 0.65)"]


def looking_along_x(z: float = 1.0) -> np.ndarray:
    """map_T_camera of an optical frame at (0, 0, z) looking along +x."""
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    T[2, 3] = z
    return T


K_SMALL = np.array([[40.0, 0.0, 40.0], [0.0, 40.0, 30.0], [0.0, 0.0, 1.0]])


def test_a_place_is_shown_when_the_depth_reaches_it_or_beyond() -> None:
    pts = box_samples([2.95, -0.05, 0.95], [3.05, 0.05, 1.05])  # a mug-sized box 3 m ahead
    camera_T_map = np.linalg.inv(looking_along_x())
    wall = np.full((60, 80), 5.0)
    assert share_in_view(pts, wall, K_SMALL, camera_T_map, 4.0) == 1.0
    occluder = np.full((60, 80), 1.5)  # something nearer hides it
    assert share_in_view(pts, occluder, K_SMALL, camera_T_map, 4.0) == 0.0
    no_reading = np.zeros((60, 80))
    assert share_in_view(pts, no_reading, K_SMALL, camera_T_map, 4.0) == 0.0
    assert share_in_view(pts, wall, K_SMALL, camera_T_map, 2.0) == 0.0  # beyond range
    behind = np.linalg.inv(looking_along_x()) @ np.diag([-1.0, 1.0, -1.0, 1.0])
    assert share_in_view(pts, wall, K_SMALL, behind, 4.0) == 0.0  # looking away


def test_a_move_to_a_place_never_shown_before_is_a_disappearance() -> None:
    """The mug moves at 50 s to (3, 0, 1): MOVED only when a frame before showed that place."""
    gt = gt_doc()
    frames = frames_doc()
    for f in frames:
        f["visible"]["1"] = max(f["visible"].get("1", 0), 400 if f["stamp"] < 50 else 0)
        f["visible"]["3"] = 400 if f["stamp"] < 60 else 0  # the teddy, until it goes
    gt["frames"] = frames
    away = np.linalg.inv(np.linalg.inv(looking_along_x()) @ np.diag([-1.0, 1.0, -1.0, 1.0]))
    wall = np.full((60, 80), 5.0)
    # recorded without the field (older truth): judged as before
    assert observable_changes(gt["changes"], frames)[0].kind == "MOVED"
    # every frame before the move looked away from the new place
    mark_new_places(gt, [(wall, K_SMALL, away)] * len(frames), 4.0)
    assert frames[10]["new_place_in_view"] == {} and "new_place_in_view" in frames[70]
    obs = observable_changes(gt["changes"], frames)
    assert obs[0].kind == "DISAPPEARED" and not obs[0].foreseen
    assert obs[1].kind == "DISAPPEARED" and obs[1].foreseen  # a removal needs no new place
    # one frame before the move showed the new place through free space: MOVED
    views = [(wall, K_SMALL, looking_along_x() if k == 20 else away) for k in range(len(frames))]
    mark_new_places(gt, views, 4.0)
    assert frames[20]["new_place_in_view"] == {"1": 1.0}
    assert frames[60]["new_place_in_view"] == {}  # after the move: nothing to foresee
    obs = observable_changes(gt["changes"], frames)
    assert obs[0].kind == "MOVED" and obs[0].foreseen and obs[0].view == 65.0
