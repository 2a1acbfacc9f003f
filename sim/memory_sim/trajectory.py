"""Camera trajectories: piecewise-linear motion of a camera carried at a fixed height.

The camera moves like a wheeled robot with a head camera: it turns in place at ``yaw_rate`` to
face where it goes, drives straight at ``speed``, and can spin or hold. Positions are metres in
the map frame; yaw is radians about map z (0 = +x), pitch is radians (negative looks down).
:class:`TrajectoryBuilder` records knots; :meth:`Trajectory.pose_at` interpolates them.

Coverage paths go from room to room through the doorways (portals) of the SceneSpec, turning a
full circle at each room centre.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from memory_sim.camera import look_pose
from memory_sim.scene import SceneSpec

JUMP_S = 1e-3  # time a viewpoint jump takes (the camera is between places only that long)


class TrajectoryError(ValueError):
    """A trajectory that cannot be built (unknown room, unreachable room, no rooms)."""


@dataclass
class Knot:
    """Camera state at one time: t seconds; x, y, z metres (map); yaw, pitch radians."""

    t: float
    x: float
    y: float
    z: float
    yaw: float
    pitch: float


@dataclass
class Trajectory:
    """A time-parameterised camera path.

    Attributes:
        knots: knots in increasing time; yaw is unwrapped (continuous).
        segments: segment name -> (start, end) time in seconds.
    """

    knots: list[Knot]
    segments: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Return the end time of the trajectory, seconds."""
        return self.knots[-1].t if self.knots else 0.0

    def state_at(self, t: float) -> Knot:
        """Return the interpolated camera state at time ``t`` (clamped to the path)."""
        times = [k.t for k in self.knots]
        if t <= times[0]:
            return self.knots[0]
        if t >= times[-1]:
            return self.knots[-1]
        i = bisect.bisect_right(times, t)
        a, b = self.knots[i - 1], self.knots[i]
        s = 0.0 if b.t <= a.t else (t - a.t) / (b.t - a.t)

        def lerp(u: float, v: float) -> float:
            return u + s * (v - u)

        return Knot(
            t, lerp(a.x, b.x), lerp(a.y, b.y), lerp(a.z, b.z), lerp(a.yaw, b.yaw),
            lerp(a.pitch, b.pitch),
        )  # fmt: skip

    def pose_at(self, t: float) -> np.ndarray:
        """Return map_T_camera (4, 4) of the optical frame at time ``t``."""
        k = self.state_at(t)
        return look_pose(np.array([k.x, k.y, k.z]), k.yaw, k.pitch)


class TrajectoryBuilder:
    """Appends motions to a trajectory starting at a given pose.

    Args:
        scene: rooms and portals used by room-level motions.
        start_xy: (2,) start position, metres, map frame.
        start_yaw: start heading, radians.
        height: camera height above the floor, metres.
        pitch: camera pitch, radians (negative looks down).
        speed: driving speed, m/s.
        yaw_rate: turning rate, rad/s.
    """

    def __init__(
        self,
        scene: SceneSpec,
        start_xy: tuple[float, float],
        start_yaw: float,
        height: float,
        pitch: float,
        speed: float,
        yaw_rate: float,
    ) -> None:
        for name, value in (("speed", speed), ("yaw_rate", yaw_rate), ("height", height)):
            if not (math.isfinite(value) and value > 0):
                raise TrajectoryError(f"{name} must be positive and finite, got {value}")
        if not all(math.isfinite(v) for v in (*start_xy, start_yaw, pitch)):
            raise TrajectoryError("start pose and pitch must be finite")
        self.scene = scene
        self.speed = speed
        self.yaw_rate = yaw_rate
        self.height = height
        self.pitch = pitch
        self.knots = [Knot(0.0, start_xy[0], start_xy[1], height, start_yaw, pitch)]
        self.segments: dict[str, tuple[float, float]] = {}

    @property
    def now(self) -> Knot:
        """Return the last knot (current camera state)."""
        return self.knots[-1]

    def _push(self, dt: float, **changes: float) -> None:
        """Append a knot ``dt`` seconds after the last with some fields changed."""
        k = self.now
        values = {"x": k.x, "y": k.y, "z": k.z, "yaw": k.yaw, "pitch": k.pitch}
        values.update(changes)
        self.knots.append(Knot(k.t + max(dt, 0.0), **values))

    def turn_to(self, yaw: float) -> None:
        """Turn in place by the shortest way to heading ``yaw`` (radians)."""
        cur = self.now.yaw
        delta = math.atan2(math.sin(yaw - cur), math.cos(yaw - cur))
        if abs(delta) > 1e-6:
            self._push(abs(delta) / self.yaw_rate, yaw=cur + delta)

    def spin(self, turns: float = 1.0) -> None:
        """Turn in place by ``turns`` full circles (counter-clockwise)."""
        angle = 2.0 * math.pi * turns
        self._push(abs(angle) / self.yaw_rate, yaw=self.now.yaw + angle)

    def move_to(self, x: float, y: float) -> None:
        """Face (x, y) and drive straight to it."""
        k = self.now
        dist = math.hypot(x - k.x, y - k.y)
        if dist < 1e-6:
            return
        self.turn_to(math.atan2(y - k.y, x - k.x))
        self._push(dist / self.speed, x=x, y=y)

    def hold(self, duration: float) -> None:
        """Stay still for ``duration`` seconds."""
        self._push(duration)

    def viewpoint(self, x: float, y: float, yaw: float, duration: float) -> None:
        """Jump to (x, y) facing ``yaw`` (radians) and stay there; ``duration`` s in all.

        The jump takes :data:`JUMP_S` of the duration (an inspection camera carried or teleported
        between places, not driven): with durations that are whole frame periods, every frame
        lands on a viewpoint, never between two.
        """
        if not all(math.isfinite(v) for v in (x, y, yaw, duration)) or duration <= JUMP_S:
            raise TrajectoryError(
                f"viewpoint needs a finite pose and a duration over {JUMP_S} s, got "
                f"({x}, {y}, {yaw}) for {duration} s"
            )
        cur = self.now.yaw
        self._push(
            JUMP_S, x=x, y=y, yaw=cur + math.atan2(math.sin(yaw - cur), math.cos(yaw - cur))
        )
        self._push(duration - JUMP_S)

    def room_path(self, start: str, goal: str) -> list[str]:
        """Return the room sequence from ``start`` to ``goal`` through portals (BFS)."""
        names = {r.name for r in self.scene.rooms}
        for name in (start, goal):
            if name not in names:
                raise TrajectoryError(f"unknown room {name!r}; rooms: {sorted(names)}")
        prev: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            cur = queue.popleft()
            if cur == goal:
                break
            for p in self.scene.portals:
                for a, b in ((p.room_a, p.room_b), (p.room_b, p.room_a)):
                    if a == cur and b not in prev:
                        prev[b] = cur
                        queue.append(b)
        if goal not in prev:
            raise TrajectoryError(f"room {goal!r} cannot be reached from {start!r}")
        path = [goal]
        while path[-1] != start:
            before = prev[path[-1]]
            assert before is not None
            path.append(before)
        return path[::-1]

    def current_room(self) -> str:
        """Return the room holding the camera, or the nearest room centre's when outside."""
        k = self.now
        room = self.scene.room_at(k.x, k.y)
        if room:
            return room
        if not self.scene.rooms:
            raise TrajectoryError("the scene has no rooms; use waypoints instead")
        return min(
            self.scene.rooms,
            key=lambda r: math.hypot(r.center_xy[0] - k.x, r.center_xy[1] - k.y),
        ).name

    def goto_room(self, goal: str, clearance: float = 1.1) -> None:
        """Drive through doorways to the centre of room ``goal``.

        Each doorway is crossed straight along its normal, from ``clearance`` metres before it
        to ``clearance`` metres after it: more than a door leaf's width, so an open door
        (swung 90 degrees into a room) is never clipped.
        """
        path = self.room_path(self.current_room(), goal)
        for a, b in itertools.pairwise(path):
            portal = next(p for p in self.scene.portals if {p.room_a, p.room_b} == {a, b})
            sign = 1.0 if portal.room_a == a else -1.0
            nx, ny = portal.normal_xy[0] * sign, portal.normal_xy[1] * sign
            px, py = portal.position_xy
            self.move_to(px - nx * clearance, py - ny * clearance)
            self.move_to(px + nx * clearance, py + ny * clearance)
        cx, cy = self.scene.room(goal).center_xy
        self.move_to(cx, cy)

    def coverage(self, rooms: list[str] | None = None, turns: float = 1.0) -> None:
        """Visit rooms (given order, or greedily nearest-first over all) and spin in each."""
        if not self.scene.rooms:
            raise TrajectoryError("coverage needs rooms; the scene has none (use waypoints)")
        if rooms is None:
            order: list[str] = []
            todo = {r.name for r in self.scene.rooms}
            cur = self.current_room()
            while todo:
                nxt = min(sorted(todo), key=lambda r: len(self.room_path(cur, r)))
                order.append(nxt)
                todo.discard(nxt)
                cur = nxt
            rooms = order
        for room in rooms:
            self.goto_room(room)
            self.spin(turns)

    def mark(self, name: str, start: float) -> None:
        """Record that segment ``name`` spans from ``start`` to now."""
        self.segments[name] = (start, self.now.t)

    def build(self) -> Trajectory:
        """Return the trajectory built so far."""
        return Trajectory(list(self.knots), dict(self.segments))
