"""Message decoding: encodings, row padding, endianness, and clear refusals of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo, Image

from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput, SceneObject
from memory_node.ros import conversions as conv


def image(arr: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> Image:
    h, w = arr.shape[:2]
    dt = arr.dtype.newbyteorder(">" if big_endian else "<")
    rows = arr.astype(dt).reshape(h, -1).view(np.uint8)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return Image(
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=rows.shape[1],
        data=rows.tobytes(),
    )


def test_rgb_and_bgr_with_row_padding():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(conv.image_to_rgb(image(rgb, "rgb8", pad=3)), rgb)
    assert np.array_equal(conv.image_to_rgb(image(rgb[..., ::-1].copy(), "bgr8")), rgb)


def test_depth_encodings_and_invalid_readings():
    mm = np.array([[1000, 0], [65535, 2500]], np.uint16)
    d = conv.image_to_depth(image(mm, "16UC1"))
    assert d.dtype == np.float32 and np.allclose(d, [[1.0, 0.0], [0.0, 2.5]])
    m = np.array([[2.0, np.nan], [np.inf, -1.0]], np.float32)
    assert np.allclose(conv.image_to_depth(image(m, "32FC1", big_endian=True)), [[2, 0], [0, 0]])


@pytest.mark.parametrize(
    "msg, match",
    [
        (Image(height=2, width=2, encoding="rgb8", step=6, data=b"\x00" * 5), "bytes"),
        (Image(height=0, width=2, encoding="rgb8"), "empty"),
        (Image(height=1, width=1, encoding="yuv422", step=2, data=b"\x00\x00"), "encoding"),
        (Image(height=1, width=4, encoding="rgb8", step=4, data=b"\x00" * 4), "step"),
    ],
)
def test_bad_images_are_refused_with_a_reason(msg, match):
    with pytest.raises(InvalidInput, match=match):
        conv.image_to_rgb(msg)


def test_instances_and_unknown_depth_encoding():
    ids = np.array([[0, 7], [7, 65535]], np.uint16)
    assert conv.image_to_instances(image(ids, "16UC1")).tolist() == [[0, 7], [7, 65535]]
    with pytest.raises(InvalidInput, match="depth encoding"):
        conv.image_to_depth(image(ids, "rgb8"))


def test_pose_matrix_and_refusals():
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = 1.0, 2.0, 3.0
    s = math.sqrt(0.5)
    pose.orientation.z, pose.orientation.w = s, s  # 90 degrees about z
    T = conv.pose_to_matrix(pose)
    assert np.allclose(T @ [1, 0, 0, 1], [1, 3, 3, 1])
    pose.orientation.w = 0.9
    with pytest.raises(InvalidInput, match="not unit"):
        conv.pose_to_matrix(pose)
    pose.orientation.w = float("nan")
    with pytest.raises(InvalidInput, match="non-finite"):
        conv.pose_to_matrix(pose)


def test_camera_info_refuses_zero_focal_length():
    info = CameraInfo()
    with pytest.raises(InvalidInput, match="intrinsics"):
        conv.camera_info_to_K(info)
    info.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    assert conv.camera_info_to_K(info)[0, 2] == 320.0


def test_time_conversions():
    t = conv.sec_to_time(12.25)
    assert (t.sec, t.nanosec) == (12, 250_000_000)
    assert conv.time_to_sec(t) == 12.25
    assert conv.sec_to_time(float("nan")).sec == 0 and conv.sec_to_time(-3).sec == 0


def test_object_and_change_messages():
    obj = SceneObject(
        id="obj_000001",
        label="mug",
        center=np.array([1.0, 2.0, 0.5]),
        size=np.array([0.1, 0.1, 0.12]),
        feature=np.ones(4, np.float32) / 2,
        last_seen=3.5,
        observations=7,
        present=False,
    )
    msg = conv.object_to_msg(obj, score=0.8, include_embedding=True)
    assert msg.id == "obj_000001" and msg.pose.position.y == 2.0 and msg.pose.orientation.w == 1.0
    assert list(msg.embedding) == [0.5] * 4 and msg.last_seen.sec == 3 and not msg.present
    assert len(conv.object_to_msg(obj).embedding) == 0
    ev = ChangeEvent(
        kind=ChangeKind.MOVED,
        object_id="obj_000001",
        label="mug",
        stamp=4.0,
        old_position=np.zeros(3),
        new_position=np.ones(3),
    )
    m = conv.change_to_msg(ev)
    assert m.kind == m.MOVED and m.new_position.z == 1.0


def test_change_event_round_trips_through_the_message():
    ev = ChangeEvent(
        kind=ChangeKind.STATE_CHANGED,
        object_id="obj_000002",
        label="fridge",
        stamp=12.25,
        old_position=np.array([1.0, -2.0, 0.5]),
        new_position=np.array([1.5, -2.0, 0.5]),
        old_state="closed",
        new_state="open",
    )
    back = conv.msg_to_change(conv.change_to_msg(ev))
    assert (back.kind, back.object_id, back.label) == (ev.kind, ev.object_id, ev.label)
    assert back.stamp == pytest.approx(ev.stamp) and (back.old_state, back.new_state) == (
        "closed",
        "open",
    )
    np.testing.assert_allclose(back.old_position, ev.old_position)
    np.testing.assert_allclose(back.new_position, ev.new_position)
    bad = conv.change_to_msg(ev)
    bad.kind = 9
    with pytest.raises(InvalidInput, match="kind"):
        conv.msg_to_change(bad)
    bad = conv.change_to_msg(ev)
    bad.new_position.x = float("nan")
    with pytest.raises(InvalidInput, match="non-finite"):
        conv.msg_to_change(bad)


def test_markers_show_objects_relations_and_zones():
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from memory_node.core.types import Relation, Zone

    a = SceneObject(id="a", label="mug", center=np.array([0, 0, 1.0]), size=np.ones(3) * 0.1)
    b = SceneObject(id="b", label="table", center=np.array([0, 0, 0.5]), size=np.ones(3))
    z = Zone(
        id="zone_0",
        label="kitchen",
        center=np.zeros(3),
        size=np.ones(3) * 4,
        object_ids=["a", "b"],
    )
    arr = conv.graph_to_markers([a, b], [Relation("a", "on", "b")], [z], Header(frame_id="map"))
    kinds = [m.ns for m in arr.markers]
    assert arr.markers[0].action == Marker.DELETEALL
    assert kinds.count("objects") == 2 and "relations" in kinds and "zones" in kinds


def test_matrix_to_pose_round_trips_through_pose_to_matrix():
    from scipy.spatial.transform import Rotation

    rotations = Rotation.random(50, random_state=3).as_matrix()
    rotations[0] = np.diag([1.0, -1.0, -1.0])  # 180 degrees: the trace <= 0 branches
    rotations[1] = np.diag([-1.0, 1.0, -1.0])
    rotations[2] = np.diag([-1.0, -1.0, 1.0])
    for R in rotations:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, [0.5, -1.0, 2.0]
        assert np.allclose(conv.pose_to_matrix(conv.matrix_to_pose(T)), T, atol=1e-9)


def test_encoders_decode_back():
    from std_msgs.msg import Header

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    depth = rng.random((6, 8)).astype(np.float32) + 0.5
    inst = rng.integers(0, 5, (6, 8)).astype(np.int32)
    h = Header(frame_id="cam")
    assert np.array_equal(conv.image_to_rgb(conv.rgb_to_image(rgb, h)), rgb)
    assert np.array_equal(conv.image_to_depth(conv.depth_to_image(depth, h)), depth)
    assert np.array_equal(conv.image_to_instances(conv.instances_to_image(inst, h)), inst)
    K = np.array([[500.0, 0, 3.5], [0, 510.0, 2.5], [0, 0, 1]])
    assert np.allclose(conv.camera_info_to_K(conv.camera_info_of(K, 8, 6, h)), K)
    msg = conv.labels_msg({3: ("mug", 0.9), 1: ("door", 1.0)}, {1: "open"}, h)
    assert list(msg.instance_ids) == [1, 3] and list(msg.states) == ["open", ""]
