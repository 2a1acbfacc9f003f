"""The task suite in the Gazebo small house: rooms, scattered objects, walls, tasks, the oracle.

Needs the world file (``shared/data/aws_small_house``, see
:func:`memory_sim.change_episodes.small_house_world`); the tests that build the house skip
without it. One scenario is built (about 15 s).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memory_node.tasks.agent import Agent
from memory_node.tasks.score import score
from memory_node.tasks.suite import SuiteConfig, build_scenario
from memory_node.tasks.world import WorldConfig
from memory_sim import change_episodes
from memory_sim.change_episodes import (
    SMALL_HOUSE_STOP_NAMES,
    SMALL_HOUSE_STOPS,
    SUPPORT_LABELS,
    HouseUnavailable,
    small_house_rooms,
    small_house_world,
)

needs_house = pytest.mark.skipif(
    small_house_world() is None, reason="the small house's world file (aws_small_house) is absent"
)


def test_small_house_rooms_hold_their_stops_and_do_not_overlap() -> None:
    rooms = small_house_rooms()
    assert [r.name for r in rooms] == list(SMALL_HOUSE_STOP_NAMES)
    for room, stop in zip(rooms, SMALL_HOUSE_STOPS, strict=True):
        assert room.contains(*stop, margin=0.5), room.name
    for a, b in itertools.combinations(rooms, 2):
        overlap = np.minimum(a.max_xy, b.max_xy) - np.maximum(a.min_xy, b.min_xy)
        assert np.any(overlap <= 1e-9), (a.name, b.name)


def test_an_absent_small_house_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(change_episodes, "small_house_world", lambda: None)
    with pytest.raises(HouseUnavailable, match=r"small_house\.world"):
        build_scenario(106, house_kind="small_house")
    with pytest.raises(ValueError, match="unknown house_kind"):
        build_scenario(106, house_kind="castle")


@pytest.fixture(scope="module")
def scenario():
    if small_house_world() is None:
        pytest.skip("the small house's world file (aws_small_house) is absent")
    world = WorldConfig(spin_frames=4)
    suite = SuiteConfig(moves=2, removals=1, additions=1, small_house_objects=8)
    s = build_scenario(106, world, suite, house_kind="small_house")
    yield s
    s.world.close()


@needs_house
def test_small_house_has_named_rooms_and_objects_on_its_supports(scenario) -> None:
    world = scenario.world
    assert scenario.house_kind == "small_house"
    assert [r.name for r in world.scene.rooms] == list(SMALL_HOUSE_STOP_NAMES)
    supports = [o for o in world.sim.objects() if o.static and o.label in SUPPORT_LABELS]
    small = [o for o in world.sim.objects(include_absent=True) if not o.static]
    assert len(small) >= 6
    assert len({o.label for o in small}) == len(small)  # one of each asset: tasks can name them
    for o in (o for o in world.sim.objects() if not o.static):
        assert o.room in SMALL_HOUSE_STOP_NAMES, o.name
        under = [
            s
            for s in supports
            if np.all(s.box_min[:2] <= o.center[:2])
            and np.all(o.center[:2] <= s.box_max[:2])
            and abs(o.box_min[2] - s.box_max[2]) < 0.05
        ]
        assert under, f"{o.name} at {o.center} stands on no support"


@needs_house
def test_small_house_walls_leave_every_room_reachable_from_the_dock(scenario) -> None:
    world = scenario.world
    world.xy = scenario.dock_xy.copy()
    for room in world.scene.rooms:
        path = world.plan_to(world.room_goal(room.name))
        assert path is not None, room.name
        # the dock's room is reached in a few metres, the others through doorways, not walls
        assert path.length_m < 25.0, room.name
    # the walls (one mesh) are obstacles where they stand, not over the house's whole box
    assert not world.grid.free[world.grid.cell(np.array([6.0, 3.2]))]  # the dining area's wall
    assert world.grid.free.mean() > 0.3


@needs_house
def test_small_house_tasks_carry_truth(scenario) -> None:
    sim = scenario.world.sim
    kinds = {t.kind for t in scenario.tasks}
    assert {"go_to", "bring", "what_changed", "where_last"} <= kinds
    assert "is_open" not in kinds  # nothing in the small house opens or closes
    assert {t.category for t in scenario.tasks} >= {"moved", "removed", "added", "unchanged"}
    for t in scenario.tasks:
        if "name" in t.truth and t.kind != "where_last":
            assert sim.object_truth(t.truth["name"]).label == t.label
        if t.kind == "what_changed":
            assert t.room in SMALL_HOUSE_STOP_NAMES and t.truth["labels"]
    moved = [c for c in sim.changes if c.old_room and c.new_room and c.old_room != c.new_room]
    assert moved  # moves across rooms


@needs_house
def test_oracle_goes_to_a_moved_object_in_the_small_house(scenario) -> None:
    task = next(t for t in scenario.tasks if t.kind == "go_to" and t.category == "moved")
    out = score(task, Agent(scenario, "oracle").run(task), scenario.world)
    assert out.success, out.notes
    assert out.path_m > 0 and out.frames >= 1
