"""Base poses looked up at image stamps: interpolation, staleness, extrinsic, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memory_node.core.pose_buffer import (
    PoseBuffer,
    PoseConfig,
    extrinsic,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rigid,
)
from memory_node.core.types import InvalidInput


def yaw_pose(x: float, y: float, yaw_deg: float) -> np.ndarray:
    half = math.radians(yaw_deg) / 2
    return rigid([x, y, 0.0], [0.0, 0.0, math.sin(half), math.cos(half)])


def yaw_of(T: np.ndarray) -> float:
    return math.degrees(math.atan2(T[1, 0], T[0, 0]))


def test_halfway_between_two_poses_is_halfway_in_position_and_angle() -> None:
    buf = PoseBuffer(max_age_s=0.5)
    buf.add(10.0, yaw_pose(0.0, 0.0, 0.0))
    buf.add(10.2, yaw_pose(2.0, 0.0, 90.0))
    mid = buf.lookup(10.1)
    np.testing.assert_allclose(mid[:3, 3], [1.0, 0.0, 0.0], atol=1e-12)
    assert yaw_of(mid) == pytest.approx(45.0)
    quarter = buf.lookup(10.05)
    assert quarter[0, 3] == pytest.approx(0.5) and yaw_of(quarter) == pytest.approx(22.5)
    np.testing.assert_allclose(quarter[:3, :3] @ quarter[:3, :3].T, np.eye(3), atol=1e-12)


def test_exact_stamps_return_the_sample() -> None:
    buf = PoseBuffer()
    buf.add(1.0, yaw_pose(1.0, 2.0, 30.0))
    buf.add(2.0, yaw_pose(3.0, 2.0, 60.0))
    np.testing.assert_allclose(buf.lookup(2.0), yaw_pose(3.0, 2.0, 60.0), atol=1e-15)


def test_the_newest_pose_is_held_only_up_to_max_age() -> None:
    buf = PoseBuffer(max_age_s=0.1, name="odometry")
    buf.add(5.0, yaw_pose(1.0, 0.0, 0.0))
    assert buf.lookup(5.08)[0, 3] == 1.0
    with pytest.raises(InvalidInput, match=r"odometry too old.*0\.300 s.*max_age_s = 0\.1"):
        buf.lookup(5.3)
    with pytest.raises(InvalidInput, match="oldest"):
        buf.lookup(4.5)


def test_a_gap_in_the_poses_refuses_frames_in_its_middle() -> None:
    buf = PoseBuffer(max_age_s=0.1)
    buf.add(1.0, yaw_pose(0.0, 0.0, 0.0))
    buf.add(3.0, yaw_pose(2.0, 0.0, 0.0))
    assert buf.lookup(1.05)[0, 3] == pytest.approx(0.05)
    with pytest.raises(InvalidInput, match=r"nearest pose is 1\.000 s"):
        buf.lookup(2.0)


def test_no_pose_yet_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no odometry received yet"):
        PoseBuffer(name="odometry").lookup(1.0)


def test_stamps_going_backwards_are_refused_and_the_buffer_is_unchanged() -> None:
    buf = PoseBuffer(name="odometry")
    buf.add(2.0, yaw_pose(0.0, 0.0, 0.0))
    with pytest.raises(InvalidInput, match=r"odometry stamps went backwards: 1\.5.* after 2\.0"):
        buf.add(1.5, yaw_pose(5.0, 0.0, 0.0))
    assert len(buf) == 1 and buf.lookup(2.0)[0, 3] == 0.0
    with pytest.raises(InvalidInput, match="not finite"):
        buf.add(float("nan"), yaw_pose(0.0, 0.0, 0.0))


def test_old_samples_are_dropped_after_history_s() -> None:
    buf = PoseBuffer(max_age_s=0.1, history_s=1.0)
    for k in range(30):
        buf.add(0.1 * k, yaw_pose(0.1 * k, 0.0, 0.0))
    assert len(buf) <= 11
    with pytest.raises(InvalidInput, match="oldest"):
        buf.lookup(0.5)


def test_default_extrinsic_looks_along_the_base_x_axis() -> None:
    base_T_camera = extrinsic(PoseConfig())
    np.testing.assert_allclose(base_T_camera[:3, 2], [1, 0, 0], atol=1e-12)  # optical z ahead
    np.testing.assert_allclose(base_T_camera[:3, 0], [0, -1, 0], atol=1e-12)  # x right
    np.testing.assert_allclose(base_T_camera[:3, 1], [0, 0, -1], atol=1e-12)  # y down


def test_camera_pose_composes_the_base_pose_with_the_extrinsic() -> None:
    cfg = PoseConfig(base_to_camera_xyz_m=[0.2, 0.0, 1.0])
    map_T_camera = yaw_pose(1.0, 2.0, 90.0) @ extrinsic(cfg)
    np.testing.assert_allclose(map_T_camera[:3, 3], [1.0, 2.2, 1.0], atol=1e-12)
    np.testing.assert_allclose(map_T_camera[:3, 2], [0, 1, 0], atol=1e-12)  # looks along map y


@pytest.mark.parametrize(
    ("xyzw", "match"),
    [
        ([0.0, 0.0, 0.0, 2.0], r"not a unit quaternion \(norm 2\.000000\)"),
        ([0.0, 0.0, 0.0, 0.0], r"not a unit quaternion \(norm 0\.000000\)"),
        ([0.0, 0.0, float("nan"), 1.0], "4 finite numbers"),
        ([0.0, 0.0, 1.0], "4 finite numbers"),
    ],
)
def test_a_bad_extrinsic_quaternion_is_refused(xyzw: list[float], match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as err:
        extrinsic(PoseConfig(base_to_camera_xyzw=xyzw))
    assert "pose.base_to_camera" in str(err.value)


def test_quaternion_round_trip() -> None:
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        np.testing.assert_allclose(matrix_to_quaternion(quaternion_to_matrix(q)), q, atol=1e-12)
