"""Occupancy grid and A*: known answers on tiny floors."""

from __future__ import annotations

import math

import numpy as np

from memory_node.tasks.grid import OccupancyGrid
from memory_node.tasks.score import wilson


def _goal_at(grid: OccupancyGrid, xy) -> np.ndarray:
    goal = np.zeros_like(grid.free)
    goal[grid.cell(np.asarray(xy, float))] = True
    return goal


def test_straight_path_on_an_empty_floor_is_the_distance():
    grid = OccupancyGrid([0, 0], [5, 1], [], resolution_m=0.1, robot_radius_m=0.0)
    path = grid.astar(np.array([0.25, 0.55]), _goal_at(grid, [4.25, 0.55]))
    assert path is not None
    assert math.isclose(path.length_m, 4.0, abs_tol=1e-9)
    assert np.allclose(path.points[0], [0.25, 0.55]) and np.allclose(path.points[-1], [4.25, 0.55])


def test_a_wall_with_a_doorway_forces_the_detour_through_it():
    # wall along x = 2.0 .. 2.2 from y = 0 to 4, a doorway at y in [3, 4)
    wall = (np.array([2.0, 0.0]), np.array([2.2, 3.0]))
    grid = OccupancyGrid([0, 0], [4, 4], [wall], resolution_m=0.1, robot_radius_m=0.2)
    start, end = np.array([1.05, 0.55]), np.array([3.05, 0.55])
    path = grid.astar(start, _goal_at(grid, end))
    assert path is not None
    # every point keeps the robot radius from the wall, and the path goes above y = 3.2
    assert path.points[:, 1].max() >= 3.2 - 1e-9
    inside = (path.points[:, 0] > 2.0 - 0.2) & (path.points[:, 0] < 2.2 + 0.2)
    assert np.all(path.points[inside, 1] > 3.0 + 0.2 - 1e-9)
    assert path.length_m > 2 * (3.2 - 0.55)


def test_a_closed_room_is_unreachable():
    walls = [
        (np.array([2.0, 0.0]), np.array([2.1, 4.0])),
    ]
    grid = OccupancyGrid([0, 0], [4, 4], walls, resolution_m=0.1, robot_radius_m=0.1)
    assert grid.astar(np.array([1.0, 1.0]), _goal_at(grid, [3.0, 1.0])) is None


def test_near_box_holds_free_cells_within_reach_only():
    table = (np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    grid = OccupancyGrid([0, 0], [3, 3], [table], resolution_m=0.1, robot_radius_m=0.25)
    goal = grid.near_box(np.array([1.0, 1.0]), np.array([2.0, 2.0]), reach_m=0.5)
    gx, gy = grid.centres()
    d = np.hypot(
        np.clip(np.maximum(1.0 - gx, gx - 2.0), 0, None),
        np.clip(np.maximum(1.0 - gy, gy - 2.0), 0, None),
    )
    assert goal.any()
    assert np.all((d[goal] > 0.25 - 1e-9) & (d[goal] <= 0.5 + 1e-9))
    assert not goal[(d <= 0.25 - 1e-9) | (d > 0.5 + 1e-9)].any()


def test_wilson_interval_known_values():
    lo, hi = wilson(5, 10)
    assert math.isclose(lo, 0.2366, abs_tol=1e-3) and math.isclose(hi, 0.7634, abs_tol=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(20, 20)
    assert hi == 1.0 and math.isclose(lo, 0.8389, abs_tol=1e-3)
