"""Three robots in one simulated house share one memory on PostgreSQL (in-core, no ROS).

robot1 tours the kitchen and the dining room and sees objects moved, removed and added there;
robot2 tours the living room and the dining room; robot3 the bedroom and the bathroom, never the
kitchen. Each pushes its long-term objects to the fleet store every few seconds of sim time.
"""

from __future__ import annotations

import pytest

from memory_node.core.storage import open_store
from memory_node.fleet_demo import FleetRunConfig, run_fleet


@pytest.fixture(scope="module")
def report(postgres_server):
    url = postgres_server.new_database()
    store = open_store(url, migrate=True)
    try:
        yield run_fleet(store, FleetRunConfig(rate_hz=2.0, width=240, height=180))
    finally:
        store.close()


def test_the_fleet_keeps_what_the_robots_remember_once(report):
    assert report.merge_recall >= 0.9, report
    assert report.duplicate_rate <= 0.05, report
    assert report.fused_objects >= 10  # the robots' tours overlap: shared objects fused
    assert report.fleet_objects < sum(report.robot_objects.values())
    assert report.recall > max(report.robot_recall.values()) + 0.1  # more than any one robot
    assert report.push_failures == 0


def test_robot3_finds_the_mug_it_never_saw(report):
    assert "kitchen" not in report.rooms_visited["robot3"]
    answer = report.mug_answer
    assert answer["label"] == "mug" and answer["present"]
    assert "robot3" not in answer["seen_by"]
    assert answer["error_m"] <= 0.3, answer


def test_changes_come_from_the_robot_that_saw_them(report):
    assert report.changes_by_robot.get("robot1", 0) > 0
    assert set(report.changes_by_robot) <= {"robot1", "robot2", "robot3"}
