"""Occupancy grid of a house's free floor space and A* paths on it.

Pure numpy + heapq (no simulator import): the grid is built from axis-aligned obstacle boxes
(walls, furniture) that the caller takes from the simulator's ground truth. Cells are
``resolution_m`` squares; a cell is free when its centre is farther than ``robot_radius_m`` from
every obstacle footprint (the obstacles are inflated by the robot's radius).

Paths are 8-connected; their length is in metres (diagonal steps count sqrt(2) cells).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

_STEPS = [
    (-1, 0, 1.0),
    (1, 0, 1.0),
    (0, -1, 1.0),
    (0, 1, 1.0),
    (-1, -1, math.sqrt(2.0)),
    (-1, 1, math.sqrt(2.0)),
    (1, -1, math.sqrt(2.0)),
    (1, 1, math.sqrt(2.0)),
]


@dataclass
class Path:
    """A path on the grid.

    Attributes:
        points: (N, 2) float64 cell centres, metres, map frame, start first.
        length_m: length of the polyline, metres.
        expanded: cells expanded by the search (its cost).
    """

    points: np.ndarray
    length_m: float
    expanded: int = 0


class OccupancyGrid:
    """Free space of a floor: ``free[row, col]`` for the cell centred at (x, y).

    Args:
        min_xy: (2,) map coordinates of the grid's lower-left corner, metres.
        max_xy: (2,) upper-right corner, metres.
        obstacles: iterable of (min_xy, max_xy) obstacle footprints, metres, map frame.
        resolution_m: cell side.
        robot_radius_m: obstacles are grown by this much.
    """

    def __init__(
        self,
        min_xy: np.ndarray,
        max_xy: np.ndarray,
        obstacles: list[tuple[np.ndarray, np.ndarray]],
        resolution_m: float = 0.1,
        robot_radius_m: float = 0.25,
    ) -> None:
        if not resolution_m > 0:
            raise ValueError(f"resolution_m must be > 0, got {resolution_m}")
        self.resolution_m = float(resolution_m)
        self.origin = np.asarray(min_xy, dtype=np.float64).reshape(2)
        extent = np.asarray(max_xy, dtype=np.float64).reshape(2) - self.origin
        self.cols = max(1, math.ceil(extent[0] / resolution_m))
        self.rows = max(1, math.ceil(extent[1] / resolution_m))
        xs = self.origin[0] + (np.arange(self.cols) + 0.5) * resolution_m
        ys = self.origin[1] + (np.arange(self.rows) + 0.5) * resolution_m
        free = np.ones((self.rows, self.cols), dtype=bool)
        r = float(robot_radius_m)
        for lo, hi in obstacles:
            lo, hi = np.asarray(lo, float), np.asarray(hi, float)
            c0, c1 = np.searchsorted(xs, lo[0] - r), np.searchsorted(xs, hi[0] + r)
            r0, r1 = np.searchsorted(ys, lo[1] - r), np.searchsorted(ys, hi[1] + r)
            if c0 >= c1 or r0 >= r1:
                continue
            # exact inflation: distance from each cell centre to the box footprint
            dx = np.clip(np.maximum(lo[0] - xs[c0:c1], xs[c0:c1] - hi[0]), 0.0, None)
            dy = np.clip(np.maximum(lo[1] - ys[r0:r1], ys[r0:r1] - hi[1]), 0.0, None)
            blocked = np.hypot(dy[:, None], dx[None, :]) <= r
            free[r0:r1, c0:c1] &= ~blocked
        self.free = free

    # ------------------------------------------------------------------ coordinates
    def cell(self, xy: np.ndarray) -> tuple[int, int]:
        """(row, col) of the cell holding map point ``xy``, clipped to the grid."""
        c = int(np.clip((xy[0] - self.origin[0]) // self.resolution_m, 0, self.cols - 1))
        r = int(np.clip((xy[1] - self.origin[1]) // self.resolution_m, 0, self.rows - 1))
        return r, c

    def centre(self, row: int, col: int) -> np.ndarray:
        """(2,) map coordinates of a cell's centre, metres."""
        return self.origin + (np.array([col, row], dtype=np.float64) + 0.5) * self.resolution_m

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) arrays of the x and y coordinates of every cell centre."""
        xs = self.origin[0] + (np.arange(self.cols) + 0.5) * self.resolution_m
        ys = self.origin[1] + (np.arange(self.rows) + 0.5) * self.resolution_m
        return np.meshgrid(xs, ys)

    def nearest_free(self, xy: np.ndarray, max_m: float = 1.5) -> np.ndarray | None:
        """Centre of the free cell nearest to ``xy`` within ``max_m``; None when there is none."""
        gx, gy = self.centres()
        d = np.hypot(gx - xy[0], gy - xy[1])
        d[~self.free] = np.inf
        k = int(np.argmin(d))
        if not np.isfinite(d.flat[k]) or d.flat[k] > max_m:
            return None
        return np.array([gx.flat[k], gy.flat[k]])

    def near_box(self, box_min: np.ndarray, box_max: np.ndarray, reach_m: float) -> np.ndarray:
        """(rows, cols) bool: free cells within ``reach_m`` of a box footprint (xy, metres)."""
        gx, gy = self.centres()
        dx = np.clip(np.maximum(box_min[0] - gx, gx - box_max[0]), 0.0, None)
        dy = np.clip(np.maximum(box_min[1] - gy, gy - box_max[1]), 0.0, None)
        return self.free & (np.hypot(dx, dy) <= reach_m)

    # ------------------------------------------------------------------ search
    def astar(self, start_xy: np.ndarray, goal: np.ndarray) -> Path | None:
        """Shortest 8-connected path from ``start_xy`` to any cell of the ``goal`` mask.

        Args:
            start_xy: (2,) start, metres; snapped to the nearest free cell within 1.5 m.
            goal: (rows, cols) bool mask of goal cells (need not be free: non-free goal cells
                are never entered).

        Returns:
            The path, or None when no goal cell can be reached.
        """
        snapped = self.nearest_free(np.asarray(start_xy, float))
        goal = goal & self.free
        if snapped is None or not goal.any():
            return None
        rows, cols = np.nonzero(goal)
        g_r0, g_r1, g_c0, g_c1 = rows.min(), rows.max(), cols.min(), cols.max()

        # heuristic: octile distance to the goal cells' bounding box (admissible)
        def h(r: int, c: int) -> float:
            dr = max(g_r0 - r, 0, r - g_r1)
            dc = max(g_c0 - c, 0, c - g_c1)
            return max(dr, dc) + (math.sqrt(2.0) - 1.0) * min(dr, dc)

        start = self.cell(snapped)
        free = self.free
        best = {start: 0.0}
        parent: dict[tuple[int, int], tuple[int, int]] = {}
        heap = [(h(*start), 0.0, start)]
        expanded = 0
        closed: set[tuple[int, int]] = set()
        end = None
        while heap:
            _, g, cur = heapq.heappop(heap)
            if cur in closed:
                continue
            closed.add(cur)
            expanded += 1
            if goal[cur]:
                end = cur
                break
            r, c = cur
            for dr, dc, w in _STEPS:
                nr, nc = r + dr, c + dc
                if not (0 <= nr < self.rows and 0 <= nc < self.cols) or not free[nr, nc]:
                    continue
                if dr and dc and not (free[r, nc] and free[nr, c]):
                    continue  # no corner cutting
                ng = g + w
                if ng < best.get((nr, nc), math.inf):
                    best[(nr, nc)] = ng
                    parent[(nr, nc)] = cur
                    heapq.heappush(heap, (ng + h(nr, nc), ng, (nr, nc)))
        if end is None:
            return None
        cells = [end]
        while cells[-1] != start:
            cells.append(parent[cells[-1]])
        cells.reverse()
        pts = np.array([self.centre(r, c) for r, c in cells])
        length = best[end] * self.resolution_m
        return Path(points=pts, length_m=float(length), expanded=expanded)
