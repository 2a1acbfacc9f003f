"""Camera poses from a robot's base pose stream: a time-ordered buffer, interpolation, extrinsic.

Robots publish the pose of their base (``nav_msgs/Odometry`` or a ``PoseStamped``), at a rate
and with stamps of their own, and mount the camera at a fixed place on the base. The camera pose
of an image is then ``map_T_camera = map_T_base(t_image) @ base_T_camera``, where
``map_T_base(t)`` is interpolated between the two base poses around ``t`` (linear in position,
spherical in rotation) and ``base_T_camera`` is the static extrinsic of the optical frame.

An image whose nearest base pose is further than ``max_age_s`` from its stamp gets no pose
(:class:`~memory_node.core.types.InvalidInput` says how far): a stalled odometry must not smear
the memory. Past the newest sample the newest pose is held for at most ``max_age_s`` (no
extrapolation). Stamps must not go backwards.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.config import param
from memory_node.core.types import InvalidInput

QUATERNION_NORM_TOLERANCE = 1e-3
"""Largest accepted deviation of a quaternion's norm from 1."""

OPTICAL_IN_BASE_XYZW = (-0.5, 0.5, -0.5, 0.5)
"""Rotation of a camera optical frame (z forward, x right, y down) in a REP-103 base frame (x
forward, y left, z up), as a quaternion [x, y, z, w]: a camera looking straight ahead."""


@dataclass
class PoseConfig:
    """How a base pose stream becomes camera poses (``inputs.pose_source`` odometry/base_pose)."""

    max_age_s: float = param(
        0.1,
        "largest gap between an image stamp and the nearest base pose; frames further from "
        "every pose are refused, seconds",
        min_value=0.0,
        max_value=10.0,
    )
    history_s: float = param(
        10.0, "base poses kept for interpolation, seconds", min_value=0.1, max_value=3600.0
    )
    # param() gives list defaults a default_factory, so they are not shared between instances
    base_to_camera_xyz_m: list[float] = param(  # noqa: RUF009
        [0.0, 0.0, 0.0],
        "position [x, y, z] of the camera optical frame in the base frame, metres",
    )
    base_to_camera_xyzw: list[float] = param(  # noqa: RUF009
        list(OPTICAL_IN_BASE_XYZW),
        "rotation [x, y, z, w] of the camera optical frame in the base frame (unit quaternion; "
        "the default looks along the base's x axis)",
    )


def quaternion_to_matrix(
    xyzw: Sequence[float] | np.ndarray, what: str = "quaternion"
) -> np.ndarray:
    """(3, 3) float64 rotation of a unit quaternion [x, y, z, w].

    Raises:
        InvalidInput: not 4 finite numbers, or a norm further than
            :data:`QUATERNION_NORM_TOLERANCE` from 1 (the message gives the norm).
    """
    q = np.asarray(xyzw, np.float64).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise InvalidInput(f"{what} must be 4 finite numbers [x, y, z, w], got {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise InvalidInput(f"{what} is not a unit quaternion (norm {norm:.6f}): {q.tolist()}")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion [x, y, z, w] of a (3, 3) rotation, with w >= 0."""
    R = np.asarray(R, np.float64)
    tr = float(np.trace(R))
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4, (R[1, 0] - R[0, 1]) / s]
    out = np.asarray(q) / np.linalg.norm(q)
    return -out if out[3] < 0 else out


def rigid(
    xyz: Sequence[float] | np.ndarray, xyzw: Sequence[float] | np.ndarray, what: str = "pose"
) -> np.ndarray:
    """(4, 4) float64 transform from a position [x, y, z] and a unit quaternion [x, y, z, w].

    Raises:
        InvalidInput: the position is not 3 finite numbers or the quaternion is not unit.
    """
    t = np.asarray(xyz, np.float64).reshape(-1)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise InvalidInput(f"{what} position must be 3 finite numbers, got {t.tolist()}")
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(xyzw, f"{what} rotation")
    T[:3, 3] = t
    return T


def extrinsic(config: PoseConfig) -> np.ndarray:
    """(4, 4) ``base_T_camera`` of ``config``; raises InvalidInput naming the bad parameter."""
    return rigid(config.base_to_camera_xyz_m, config.base_to_camera_xyzw, "pose.base_to_camera")


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """(4,) unit quaternion a fraction ``alpha`` in [0, 1] of the way from q0 to q1."""
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    dot = float(q0 @ q1)
    if dot < 0.0:  # the shorter way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear is exact enough and avoids dividing by sin(0)
        q = q0 + alpha * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    s = math.sin(theta)
    return (math.sin((1 - alpha) * theta) * q0 + math.sin(alpha * theta) * q1) / s


def interpolate(T0: np.ndarray, T1: np.ndarray, alpha: float) -> np.ndarray:
    """(4, 4) pose a fraction ``alpha`` of the way from T0 to T1 (lerp + slerp)."""
    T = np.eye(4)
    T[:3, 3] = (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3]
    q = slerp(matrix_to_quaternion(T0[:3, :3]), matrix_to_quaternion(T1[:3, :3]), alpha)
    T[:3, :3] = quaternion_to_matrix(q)
    return T


@dataclass
class PoseBuffer:
    """Time-ordered base poses, looked up at image stamps (see the module docstring).

    Attributes:
        max_age_s: largest gap between a looked-up stamp and the nearest sample, seconds.
        history_s: samples older than the newest minus this are dropped, seconds.
        name: what the samples are called in messages (e.g. "odometry").
    """

    max_age_s: float = 0.1
    history_s: float = 10.0
    name: str = "base pose"
    _stamps: list[float] = field(default_factory=list)
    _poses: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        """Return the number of samples held."""
        return len(self._stamps)

    @property
    def newest_stamp(self) -> float | None:
        """Stamp of the newest sample, seconds (None when empty)."""
        return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        """Forget every sample (e.g. after a clock reset)."""
        self._stamps.clear()
        self._poses.clear()

    def add(self, stamp: float, pose: np.ndarray) -> None:
        """Append ``pose`` ((4, 4) map_T_base) taken at ``stamp`` seconds.

        A sample with the newest stamp replaces it.

        Raises:
            InvalidInput: the stamp is not finite or older than the newest sample (stamps went
                backwards); the buffer is unchanged.
        """
        if not math.isfinite(stamp):
            raise InvalidInput(f"{self.name} stamp is not finite ({stamp})")
        pose = np.asarray(pose, np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise InvalidInput(f"{self.name} pose at {stamp:.3f} s is not a finite (4, 4) matrix")
        if self._stamps and stamp < self._stamps[-1]:
            raise InvalidInput(
                f"{self.name} stamps went backwards: {stamp:.6f} s after {self._stamps[-1]:.6f} s"
            )
        if self._stamps and stamp == self._stamps[-1]:
            self._poses[-1] = pose
            return
        self._stamps.append(stamp)
        self._poses.append(pose)
        cut = bisect.bisect_left(self._stamps, stamp - self.history_s)
        if cut > 0:
            del self._stamps[:cut]
            del self._poses[:cut]

    def lookup(self, stamp: float) -> np.ndarray:
        """(4, 4) pose at ``stamp``, interpolated between the samples around it.

        Raises:
            InvalidInput: no sample yet, or the nearest sample is more than ``max_age_s`` away
                (the message gives the gap and the parameter).
        """
        if not self._stamps:
            raise InvalidInput(f"no {self.name} received yet")
        i = bisect.bisect_left(self._stamps, stamp)
        if i < len(self._stamps) and self._stamps[i] == stamp:
            return self._poses[i].copy()
        before = i - 1 if i > 0 else None
        after = i if i < len(self._stamps) else None
        gaps = [abs(stamp - self._stamps[j]) for j in (before, after) if j is not None]
        if min(gaps) > self.max_age_s:
            where = "newest" if after is None else "oldest" if before is None else "nearest"
            raise InvalidInput(
                f"{self.name} too old: the {where} pose is {min(gaps):.3f} s from the image "
                f"stamp {stamp:.3f} s (pose.max_age_s = {self.max_age_s})"
            )
        if before is None:
            return self._poses[0].copy()
        if after is None:
            return self._poses[-1].copy()
        t0, t1 = self._stamps[before], self._stamps[after]
        return interpolate(self._poses[before], self._poses[after], (stamp - t0) / (t1 - t0))
