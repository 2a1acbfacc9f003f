"""Fleet merge logic (pure, no database): association, conflicts, provenance, the robot sync."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memory_node.core.fleet import (
    FleetConfig,
    FleetError,
    FleetObject,
    FleetSync,
    absence_stamps,
    cell_of,
    cells_around,
    match_score,
    merge_push,
)
from memory_node.core.types import ChangeEvent, ChangeKind, SceneObject


def obj(oid, label, center, t, size=0.1, colour=None, present=True, state=""):
    app = None
    if colour is not None:
        app = np.asarray(colour, np.float32)
        app /= np.linalg.norm(app)
    return SceneObject(
        id=oid,
        label=label,
        center=np.asarray(center, float),
        size=np.full(3, size),
        first_seen=t,
        last_seen=t,
        observations=2,
        appearance=app,
        present=present,
        state=state,
    )


class Fleet:
    """The merge applied to an in-memory dict, as a store does it."""

    def __init__(self, config=None):
        self.config = config or FleetConfig()
        self.objects: dict[str, FleetObject] = {}
        self.links: dict[tuple[str, str], str] = {}
        self.counter = itertools.count()

    def push(self, robot, evidence, stamps=None):
        links = {o.id: self.links[robot, o.id] for o in evidence if (robot, o.id) in self.links}
        result = merge_push(
            robot, evidence, links, self.objects, self.config,
            lambda: f"fleet_{next(self.counter):06d}", stamps,
        )  # fmt: skip
        for fid in result.removed:
            self.objects.pop(fid, None)
        self.objects.update(result.objects)
        for local, fid in result.links.items():
            self.links[robot, local] = fid
        return result


def test_two_robots_seeing_one_mug_make_one_object_and_two_mugs_stay_two():
    fleet = Fleet()
    fleet.push("r1", [obj("a", "mug", [1, 1, 0.8], 10), obj("b", "mug", [1.3, 1, 0.8], 10)])
    r = fleet.push("r2", [obj("x", "mug", [1.05, 1.02, 0.8], 12)])
    assert r.fused == 1 and r.created == 0
    assert len(fleet.objects) == 2  # r1's two mugs stay two, r2's joins the nearer one
    assert fleet.links["r2", "x"] == fleet.links["r1", "a"]
    assert set(fleet.objects[fleet.links["r1", "a"]].sources) == {"r1", "r2"}


def test_other_label_other_colour_or_far_away_is_another_object():
    fleet = Fleet()
    fleet.push("r1", [obj("a", "mug", [1, 1, 0.8], 10, colour=[1, 0, 0])])
    r = fleet.push(
        "r2",
        [
            obj("b", "bowl", [1, 1, 0.8], 11),
            obj("c", "mug", [1, 1.02, 0.8], 11, colour=[0, 0, 1]),
            obj("d", "mug", [4, 4, 0.8], 11),
        ],
    )
    assert r.created == 3 and r.fused == 0


def test_latest_evidence_wins_and_older_evidence_is_provenance_only():
    fleet = Fleet()
    fleet.push("B", [obj("b1", "mug", [1, 1, 0.8], 10)])
    fleet.push("A", [obj("a1", "mug", [1, 1, 0.8], 12)])
    (fid,) = fleet.objects
    r = fleet.push("A", [obj("a1", "mug", [3, 2, 0.8], 20)])  # A saw it moved
    assert [c.event.kind for c in r.changes] == [ChangeKind.MOVED]
    assert r.changes[0].robot_id == "A"
    r = fleet.push("B", [obj("b1", "mug", [1, 1, 0.8], 15)])  # B's view is older
    assert r.stale == 1 and not r.changes
    f = fleet.objects[fid]
    np.testing.assert_allclose(f.obj.center, [3, 2, 0.8])
    assert f.winner == "A" and f.obj.last_seen == 20
    assert f.sources["B"].last_seen == 15 and f.sources["A"].last_seen == 20
    np.testing.assert_allclose(f.sources["B"].center, [1, 1, 0.8])


def test_a_robot_that_found_the_object_gone_wins_over_an_earlier_sighting():
    fleet = Fleet()
    fleet.push("A", [obj("a", "tray", [2, 2, 0.8], 10)])
    fleet.push("B", [obj("b", "tray", [2, 2, 0.8], 15)])  # B saw it later, still there
    gone = obj("a", "tray", [2, 2, 0.8], 10, present=False)  # A last saw it at 10 ...
    events = [
        ChangeEvent(ChangeKind.DISAPPEARED, "a", "tray", 20.0),  # ... and missed it at 20
        ChangeEvent(ChangeKind.MOVED, "other", "mug", 30.0),
    ]
    r = fleet.push("A", [gone], absence_stamps(events))
    assert [c.event.kind for c in r.changes] == [ChangeKind.DISAPPEARED]
    assert r.changes[0].event.stamp == 20.0
    (f,) = fleet.objects.values()
    assert not f.obj.present and f.obj.last_seen == 15  # last seen by anyone: B at 15
    r = fleet.push("B", [obj("b", "tray", [2, 2, 0.8], 18)])  # B at 18: older than 20
    assert r.stale == 1 and not fleet.objects[f.id].obj.present


def test_two_partial_views_merge_once_they_agree():
    fleet = Fleet()
    fleet.push("r1", [obj("a", "table", [0, 0, 0.4], 10, size=0.6)])
    fleet.push("r2", [obj("b", "table", [1.5, 0, 0.4], 11, size=0.6)])  # too far: another
    assert len(fleet.objects) == 2
    r = fleet.push("r2", [obj("b", "table", [0.2, 0, 0.4], 12, size=1.2)])  # grew, moved
    assert len(r.removed) == 1 and len(fleet.objects) == 1
    (f,) = fleet.objects.values()
    assert set(f.sources) == {"r1", "r2"} and f.id == "fleet_000000"
    assert fleet.links["r2", "b"] == f.id


def test_absence_and_state_follow_the_latest_robot():
    fleet = Fleet()
    fleet.push("A", [obj("a", "fridge", [0, 0, 1], 5, size=0.8, state="closed")])
    r = fleet.push("B", [obj("b", "fridge", [0.1, 0, 1], 9, size=0.8, state="open")])
    assert [c.event.kind for c in r.changes] == [ChangeKind.STATE_CHANGED]
    r = fleet.push("A", [obj("a", "fridge", [0, 0, 1], 12, size=0.8, present=False)])
    assert [c.event.kind for c in r.changes] == [ChangeKind.DISAPPEARED]
    (f,) = fleet.objects.values()
    assert not f.obj.present and f.obj.observations == 4


def test_match_score_gates():
    cfg = FleetConfig()
    a = obj("a", "table", [0, 0, 0.4], 1, size=1.5)
    assert match_score(a, obj("b", "table", [0.9, 0, 0.4], 1, size=1.5), cfg) is not None
    assert match_score(a, obj("b", "table", [2.0, 0, 0.4], 1, size=1.5), cfg) is None
    assert match_score(a, obj("b", "table", [0.1, 0, 0.4], 1, size=0.1), cfg) is None


def test_cells_cover_the_neighbourhood():
    keys = set(cells_around([0.1, -0.1, 0], 1.0, 2.0))
    for x, y in [(-0.9, -1.1), (1.1, 0.9), (0.1, -0.1)]:
        assert cell_of(x, y, 2.0) in keys
    assert cell_of(5.0, 5.0, 2.0) not in keys
    assert cell_of(-1e4, 3e4, 2.0) != cell_of(3e4, -1e4, 2.0)


class FlakyStore:
    """A store that refuses pushes while ``down`` (as a stopped server does)."""

    def __init__(self):
        self.down = False
        self.rows: dict[str, float] = {}

    def push(self, robot_id, frame_id, objects, stamps=None):
        from memory_node.core.storage import StoreUnavailable

        if self.down:
            raise StoreUnavailable("server down")
        if frame_id != "map":
            raise FleetError("wrong frame")
        for o in objects:
            self.rows[o.id] = o.last_seen


def test_sync_keeps_changes_pending_while_the_store_is_down():
    store = FlakyStore()
    sync = FleetSync(store, "r1", "map")
    local = {f"o{i}": obj(f"o{i}", "mug", [i, 0, 0], 1) for i in range(3)}
    assert sync.push(local.values()).pushed == 3
    assert sync.push(local.values()).pushed == 0  # nothing changed
    store.down = True
    local["o1"].last_seen = 5
    local["o3"] = obj("o3", "book", [9, 0, 0], 5)
    report = sync.push(local.values())
    assert not report.ok and report.pending == 2 and "down" in report.error
    assert len(local) == 4 and local["o1"].last_seen == 5  # local memory untouched
    store.down = False
    assert sync.push(local.values()).pushed == 2
    assert store.rows == {"o0": 1, "o1": 5, "o2": 1, "o3": 5}


def test_sync_in_another_frame_is_refused_clearly():
    sync = FleetSync(FlakyStore(), "r9", "odom")
    report = sync.push([obj("o", "mug", [0, 0, 0], 1)])
    assert not report.ok and "frame" in report.error


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_merge_refuses_non_finite_objects(bad):
    from memory_node.core.fleet import validate_object

    with pytest.raises(FleetError, match="center"):
        validate_object(obj("o", "mug", [bad, 0, 0], 1), "r1")
