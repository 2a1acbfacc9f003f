"""Known-answer tests of the memory-vs-ground-truth comparison."""

import numpy as np

from memory_node.evaluation import (
    MemEvent,
    MemObject,
    change_metrics,
    gt_objects_at,
    match_objects,
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
                "stamp": 50.0,
                "label": "mug",
                "old_position": [1, 0, 1],
                "new_position": [3, 0, 1],
            },
            {
                "kind": "DISAPPEARED",
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
        MemEvent("MOVED", "a", "mug", 71.0, np.array([1, 0, 1.0]), np.array([3.1, 0, 1.0])),
        MemEvent("MOVED", "x", "mug", 72.0, np.zeros(3), np.array([8.0, 0, 1.0])),  # false
        MemEvent("DISAPPEARED", "t", "teddy", 40.0, np.array([5, 5, 0.5]), np.zeros(3)),  # early
        MemEvent("APPEARED", "q", "duck", 5.0, np.zeros(3), np.ones(3)),  # before since_s
    ]
    m = change_metrics(gt_doc()["changes"], events, since_s=30.0)
    assert (m["MOVED"].true_positives, m["MOVED"].precision, m["MOVED"].recall) == (1, 0.5, 1.0)
    assert m["MOVED"].median_delay_s == 21.0
    assert m["DISAPPEARED"].recall == 0.0 and m["DISAPPEARED"].reported == 1
    assert m["APPEARED"].reported == 0 and np.isnan(m["APPEARED"].precision)
