"""scene_memory with the pose sources of real robots: odometry / base pose + extrinsic, TF."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import Header
from test_scene_memory_node import EYES, FramePublisher, query, world

from memory_node.core.pose_buffer import PoseConfig, extrinsic, matrix_to_quaternion, rigid
from memory_node.ros import conversions as conv
from memory_node.ros.scene_memory_node import SceneMemoryNode

# a camera 0.3 m ahead of and 1.2 m above the base, pitched 20 degrees down
PITCH = np.radians(20.0)
XYZ = [0.3, 0.0, 1.2]
NOSE_DOWN = rigid([0, 0, 0], [0.0, np.sin(PITCH / 2), 0.0, np.cos(PITCH / 2)])
XYZW = [float(v) for v in matrix_to_quaternion((NOSE_DOWN @ extrinsic(PoseConfig()))[:3, :3])]


def base_T_camera() -> np.ndarray:
    return rigid(XYZ, XYZW)


def make_node(ros, source: str, **extra):
    params = [
        Parameter("publish.graph_period_s", value=0.1),
        Parameter("inputs.pose_source", value=source),
        Parameter("pose.base_to_camera_xyz_m", value=XYZ),
        Parameter("pose.base_to_camera_xyzw", value=XYZW),
        Parameter("pose.max_age_s", value=0.05),
        Parameter("features.mode", value="off"),
    ] + [Parameter(k, value=v) for k, v in extra.items()]
    return ros.add(SceneMemoryNode(context=ros.context, parameter_overrides=params))


def base_msg(kind: str, T: np.ndarray, stamp: float):
    header = Header(frame_id="odom", stamp=conv.sec_to_time(stamp))
    if kind == "odometry":
        msg = Odometry(header=header, child_frame_id="base_link")
        msg.pose.pose = conv.matrix_to_pose(T)
        return msg
    return PoseStamped(header=header, pose=conv.matrix_to_pose(T))


def newest_pose(node) -> float:
    stamps = node._pose.buffer._stamps
    return stamps[-1] if stamps else -1.0


@pytest.mark.parametrize("source", ["odometry", "base_pose"])
def test_base_poses_are_interpolated_to_the_image_stamp_and_composed(ros, source):
    node = make_node(ros, source)
    pub = FramePublisher(ros.client_node)
    topic, msg_type = ("odom", Odometry) if source == "odometry" else ("base/pose", PoseStamped)
    base_pub = ros.client_node.create_publisher(msg_type, topic, 10)
    assert ros.wait_for(lambda: base_pub.get_subscription_count() > 0, 60.0)
    w = world()
    for i in range(4):
        t = 10.0 + i
        frame = pub.frame(w, EYES[i], t)
        map_T_base = frame.map_T_camera @ np.linalg.inv(base_T_camera())
        # the base is 0.1 m behind the true pose 20 ms before the image and 0.1 m ahead 20 ms
        # after it: only interpolation to the image stamp gives the true camera pose
        for dt, dx in ((-0.02, -0.1), (0.02, 0.1)):
            T = map_T_base.copy()
            T[0, 3] += dx
            base_pub.publish(base_msg(source, T, t + dt))
        assert ros.wait_for(lambda t=t: newest_pose(node) >= t + 0.019, 10.0)
        pub.publish(frame, t)
        assert ros.wait_for(lambda i=i: node.counters["frames_ingested"] > i, 30.0), node.counters
    mugs = [o for o in query(ros, text="mug", k=3).objects if o.label == "mug"]
    assert mugs, "the mug was mapped"
    p = mugs[0].pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], [0.0, 0.1, 0.86], atol=0.04)


def test_frames_without_a_recent_base_pose_are_refused(ros):
    node = make_node(ros, "odometry")
    pub = FramePublisher(ros.client_node)
    base_pub = ros.client_node.create_publisher(Odometry, "odom", 10)
    assert ros.wait_for(lambda: base_pub.get_subscription_count() > 0, 60.0)
    frame = pub.frame(world(), EYES[0], 20.0)
    base_pub.publish(base_msg("odometry", frame.map_T_camera, 19.5))  # 0.5 s before the image
    assert ros.wait_for(lambda: len(node._pose.buffer) == 1, 10.0)
    pub.publish(frame, 20.0)
    assert ros.wait_for(lambda: node.counters["frames_rejected"] == 1, 30.0), node.counters
    assert node.counters["frames_ingested"] == 0


def test_odometry_going_backwards_restarts_the_buffer(ros):
    node = make_node(ros, "odometry")
    base_pub = ros.client_node.create_publisher(Odometry, "odom", 10)
    assert ros.wait_for(lambda: base_pub.get_subscription_count() > 0, 60.0)
    for t in (50.0, 50.1, 3.0):  # a simulator or bag restarted
        base_pub.publish(base_msg("odometry", np.eye(4), t))
    assert ros.wait_for(lambda: node._pose.buffer._stamps == [3.0], 10.0)


def test_a_non_unit_extrinsic_quaternion_fails_activation(ros):
    node = ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("autostart", value=False),
                Parameter("inputs.pose_source", value="odometry"),
                Parameter("pose.base_to_camera_xyzw", value=[0.0, 0.0, 0.0, 2.0]),
                Parameter("features.mode", value="off"),
            ],
        )
    )
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
    assert node._pose is None and node._sync is None  # nothing subscribed, nothing ingested


def test_tf_pose_source(ros):
    tf2_ros = pytest.importorskip(
        "tf2_ros", reason="tf2_ros is not on PyPI (apt install ros-jazzy-tf2-ros on a robot)"
    )
    from geometry_msgs.msg import TransformStamped

    node = make_node(ros, "tf")
    pub = FramePublisher(ros.client_node)
    broadcaster = tf2_ros.TransformBroadcaster(ros.client_node)
    w = world()
    for i in range(4):
        frame = pub.frame(w, EYES[i], 30.0 + i)
        pose = conv.matrix_to_pose(frame.map_T_camera)
        tf = TransformStamped()
        tf.header = Header(frame_id="map", stamp=conv.sec_to_time(30.0 + i))
        tf.child_frame_id = "camera_optical"
        tf.transform.translation.x = pose.position.x
        tf.transform.translation.y = pose.position.y
        tf.transform.translation.z = pose.position.z
        tf.transform.rotation = pose.orientation
        broadcaster.sendTransform(tf)
        pub.publish(frame, 30.0 + i)
        assert ros.wait_for(lambda i=i: node.counters["frames_ingested"] > i, 30.0), node.counters
    assert any(o.label == "mug" for o in query(ros, text="mug", k=3).objects)
