"""Known-answer tests of ground-truth helpers."""

from __future__ import annotations

import numpy as np

from memory_sim.ground_truth import ObjectTruth, support_relations


def _obj(iid: int, name: str, lo: tuple[float, ...], hi: tuple[float, ...]) -> ObjectTruth:
    return ObjectTruth(
        iid, name, name.split("_")[0], "kitchen", False, "", True, np.array(lo), np.array(lo),
        np.array(hi),
    )  # fmt: skip


def test_support_relations_pick_the_highest_support() -> None:
    table = _obj(1, "table_0", (0, 0, 0), (1.2, 0.8, 0.75))
    tray = _obj(2, "tray_0", (0.1, 0.1, 0.75), (0.5, 0.5, 0.8))
    mug = _obj(3, "mug_0", (0.2, 0.2, 0.76), (0.3, 0.3, 0.86))
    book = _obj(4, "book_0", (0.8, 0.5, 0.751), (1.0, 0.7, 0.79))
    ball = _obj(5, "ball_0", (2.0, 2.0, 0.0), (2.2, 2.2, 0.2))
    chair = _obj(6, "chair_0", (0.7, 0.45, 0.0), (1.15, 0.9, 0.9))  # overlaps the table edge
    shelf = _obj(7, "shelf_0", (3, 0, 0), (3.9, 0.35, 1.8))
    duck = _obj(8, "duck_0", (3.1, 0.1, 0.65), (3.2, 0.2, 0.72))  # on a board inside the box
    gone = _obj(9, "cup_0", (0.6, 0.1, 0.75), (0.7, 0.2, 0.85))
    gone.present = False
    rel = support_relations([table, tray, mug, book, ball, chair, shelf, duck, gone])
    on = {r["subject"]: r["object"] for r in rel}
    assert on == {
        "tray_0": "table_0",
        "mug_0": "tray_0",
        "book_0": "table_0",
        "duck_0": "shelf_0",
    }
    assert all(r["predicate"] == "on" for r in rel)
