"""Scoring helpers with hand-made inputs: prompt recall and support-relation precision/recall."""

from __future__ import annotations

import numpy as np

from memory_node.core.types import Relation, SceneObject
from memory_node.tasks.relations_eval import support_metrics
from memory_node.tasks.retrieval_eval import recall
from memory_sim.ground_truth import ObjectTruth


def test_recall_needs_the_label_and_a_position_near_the_truth():
    text = (
        "zone_001 kitchen:\n"
        "- obj_000002 mug at (1.00, 2.00, 0.80), seen 0.0 s ago; on obj_000001 table\n"
        "- obj_000005 teddy bear at (5.00, 5.00, 0.30), absent, last seen 9.0 s ago\n"
    )
    mug = ("mug", np.array([1.1, 2.0, 0.8]))
    teddy_moved = ("teddy bear", np.array([2.0, 1.0, 0.3]))
    smug = ("smug", np.array([1.0, 2.0, 0.8]))
    assert recall(text, [mug]) == 1.0
    assert recall(text, [teddy_moved]) == 0.0  # named, but at its old place
    assert recall(text, [smug]) == 0.0  # whole words only
    assert recall(text, [mug, teddy_moved]) == 0.5
    assert np.isnan(recall(text, []))


def _truth(iid, name, label, lo, hi):
    lo, hi = np.array(lo, float), np.array(hi, float)
    return ObjectTruth(iid, name, label, "kitchen", label == "table", "", True, lo, lo, hi)


def _mem(oid, label, lo, hi):
    lo, hi = np.array(lo, float), np.array(hi, float)
    return SceneObject(oid, label, center=0.5 * (lo + hi), size=hi - lo)


def test_support_metrics_against_the_simulator_truth():
    truth = [
        _truth(1, "kitchen/table_0", "table", [0, 0, 0], [1, 1, 0.75]),
        _truth(2, "kitchen/mug_0", "mug", [0.2, 0.2, 0.75], [0.3, 0.3, 0.85]),
        _truth(3, "kitchen/bowl_0", "bowl", [0.6, 0.6, 0.75], [0.8, 0.8, 0.82]),
        _truth(4, "kitchen/ball_0", "ball", [3.0, 3.0, 0.0], [3.2, 3.2, 0.2]),
    ]
    memory = [
        _mem("obj_1", "table", [0, 0, 0], [1, 1, 0.75]),
        _mem("obj_2", "mug", [0.2, 0.2, 0.75], [0.3, 0.3, 0.85]),
        _mem("obj_3", "bowl", [0.6, 0.6, 0.75], [0.8, 0.8, 0.82]),
        _mem("obj_4", "ball", [3.0, 3.0, 0.0], [3.2, 3.2, 0.2]),
    ]
    relations = [
        Relation("obj_2", "on", "obj_1"),  # right
        Relation("obj_4", "on", "obj_1"),  # wrong: the ball is on the floor
        Relation("obj_2", "near", "obj_3"),  # not a support relation: ignored
    ]
    m = support_metrics(truth, memory, relations)
    assert (m["claimed"], m["true"], m["correct"]) == (2, 2, 1)
    assert m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["wrong"] == ["kitchen/ball_0 on kitchen/table_0"]
    assert m["missed"] == ["kitchen/bowl_0 on kitchen/table_0"]
