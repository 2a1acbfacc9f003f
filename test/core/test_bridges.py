"""Habitat-sim and AI2-THOR bridges: known answers of the pure conversions, live tests skip.

The conversions run on arrays shaped like those simulators' outputs; the live tests run only
where the simulators are installed (and, for AI2-THOR, where its Unity build can start).
"""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

from memory_sim.bridges import BridgeUnavailable, ai2thor_bridge, habitat_bridge
from memory_sim.bridges.conversions import (
    MAP_M_UNITY,
    MAP_R_HABITAT,
    ai2thor_camera_to_map_T_camera,
    ai2thor_object_state,
    ai2thor_segmentation_to_instances,
    assign_instance_ids,
    depth_metres,
    habitat_camera_to_map_T_camera,
    habitat_semantic_to_instances,
    intrinsics_from_hfov,
    intrinsics_from_vfov,
    label_from_identifier,
    map_T_camera_to_habitat_agent,
    matrix_to_quaternion_wxyz,
    quaternion_wxyz_to_matrix,
    unity_aabb_to_map,
)


def _backproject(
    u: float, v: float, d: float, K: np.ndarray, map_T_camera: np.ndarray
) -> np.ndarray:
    """Map point of pixel (u, v) at depth d, with the memory core's pinhole convention."""
    p = np.array([(u - K[0, 2]) * d / K[0, 0], (v - K[1, 2]) * d / K[1, 1], d, 1.0])
    return (map_T_camera @ p)[:3]


def _is_rotation(R: np.ndarray) -> bool:
    return bool(np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0))


# ----------------------------------------------------------------------------- shared pieces


def test_frames_are_right_handed_or_reflections_as_documented() -> None:
    assert np.isclose(np.linalg.det(MAP_R_HABITAT), 1.0)  # habitat is right-handed: a rotation
    assert np.isclose(np.linalg.det(MAP_M_UNITY), -1.0)  # Unity is left-handed: a reflection
    # Both simulators' "up" (+y) becomes the map's +z, their default heading the map's +x.
    np.testing.assert_allclose(MAP_R_HABITAT @ [0, 1, 0], [0, 0, 1])
    np.testing.assert_allclose(MAP_R_HABITAT @ [0, 0, -1], [1, 0, 0])
    np.testing.assert_allclose(MAP_M_UNITY @ [0, 1, 0], [0, 0, 1])
    np.testing.assert_allclose(MAP_M_UNITY @ [0, 0, 1], [1, 0, 0])


def test_intrinsics_from_fov() -> None:
    K = intrinsics_from_hfov(640, 480, 90.0)
    np.testing.assert_allclose(K, [[320, 0, 319.5], [0, 320, 239.5], [0, 0, 1]])
    K = intrinsics_from_vfov(640, 480, 90.0)
    np.testing.assert_allclose(K, [[240, 0, 319.5], [0, 240, 239.5], [0, 0, 1]])
    # 60 deg horizontal: f = 320 / tan(30 deg).
    assert intrinsics_from_hfov(640, 480, 60.0)[0, 0] == pytest.approx(320 / math.tan(math.pi / 6))
    with pytest.raises(ValueError, match="field of view"):
        intrinsics_from_hfov(640, 480, 180.0)
    with pytest.raises(ValueError, match="image size"):
        intrinsics_from_vfov(0, 480, 60.0)


def test_quaternion_round_trip() -> None:
    rng = np.random.default_rng(3)
    for q in rng.normal(size=(20, 4)):
        q = q / np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        R = quaternion_wxyz_to_matrix(q)
        assert _is_rotation(R)
        np.testing.assert_allclose(matrix_to_quaternion_wxyz(R), q, atol=1e-9)
    with pytest.raises(ValueError, match="invalid quaternion"):
        quaternion_wxyz_to_matrix([0, 0, 0, 0])


@pytest.mark.parametrize(
    ("name", "label"),
    [("CoffeeMachine", "coffee machine"), ("TVStand", "tv stand"), ("Mug", "mug"), ("", "")],
)
def test_label_from_identifier(name: str, label: str) -> None:
    assert label_from_identifier(name) == label


def test_depth_metres_marks_invalid_readings_as_zero() -> None:
    d = np.array([[1.0, np.nan], [-2.0, np.inf]], dtype=np.float32)[:, :, None]
    out = depth_metres(d)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(depth_metres(np.array([[1500.0]]), 0.001), [[1.5]])


# ----------------------------------------------------------------------------- habitat


def test_habitat_identity_pose() -> None:
    # Sensor at habitat (1, 1.5, 2) looking along habitat -z (identity rotation).
    T = habitat_camera_to_map_T_camera([1.0, 1.5, 2.0], [1, 0, 0, 0])
    np.testing.assert_allclose(T[:3, 3], [-2.0, -1.0, 1.5])
    np.testing.assert_allclose(T[:3, 2], [1, 0, 0], atol=1e-12)  # optical z: forward = map +x
    np.testing.assert_allclose(T[:3, 0], [0, -1, 0], atol=1e-12)  # optical x: right = map -y
    np.testing.assert_allclose(T[:3, 1], [0, 0, -1], atol=1e-12)  # optical y: down = map -z
    assert _is_rotation(T[:3, :3])


def test_habitat_left_turn_faces_map_plus_y() -> None:
    # +90 deg about habitat +y (up) turns the agent left (counter-clockwise from above).
    s = math.sqrt(0.5)
    T = habitat_camera_to_map_T_camera([0, 0, 0], [s, 0, s, 0])
    np.testing.assert_allclose(T[:3, 2], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 0], [1, 0, 0], atol=1e-12)


def test_habitat_pixel_backprojects_to_the_habitat_world_point() -> None:
    # A sensor pitched down 20 deg and turned 30 deg left, at habitat (0.5, 1.2, -3).
    pitch, yaw = math.radians(-20), math.radians(30)
    q_yaw = [math.cos(yaw / 2), 0, math.sin(yaw / 2), 0]
    R = quaternion_wxyz_to_matrix(q_yaw) @ quaternion_wxyz_to_matrix(
        [math.cos(pitch / 2), math.sin(pitch / 2), 0, 0]
    )
    q = matrix_to_quaternion_wxyz(R)
    position = np.array([0.5, 1.2, -3.0])
    T = habitat_camera_to_map_T_camera(position, q)
    K = intrinsics_from_hfov(641, 481, 90.0)
    d = 2.5
    # Centre pixel: the point d metres along the camera's -z in habitat.
    expected = MAP_R_HABITAT @ (position + R @ [0, 0, -d])
    np.testing.assert_allclose(_backproject(320, 240, d, K, T), expected, atol=1e-9)
    # An off-centre pixel: habitat's OpenGL camera has x right, y up, z backwards.
    u, v = 500.0, 100.0
    x_gl = (u - K[0, 2]) * d / K[0, 0]
    y_gl = -(v - K[1, 2]) * d / K[1, 1]
    expected = MAP_R_HABITAT @ (position + R @ [x_gl, y_gl, -d])
    np.testing.assert_allclose(_backproject(u, v, d, K, T), expected, atol=1e-9)


def test_habitat_agent_pose_round_trip() -> None:
    h = 1.5
    s = math.sin(math.radians(35) / 2)
    q_agent = np.array([math.cos(math.radians(35) / 2), 0.0, s, 0.0])
    agent_pos = np.array([2.0, 0.1, -1.0])
    sensor_pos = agent_pos + quaternion_wxyz_to_matrix(q_agent) @ [0, h, 0]
    T = habitat_camera_to_map_T_camera(sensor_pos, q_agent)
    position, q = map_T_camera_to_habitat_agent(T, h)
    np.testing.assert_allclose(position, agent_pos, atol=1e-9)
    np.testing.assert_allclose(q, q_agent, atol=1e-9)


def test_habitat_semantic_ids_to_instances_and_labels() -> None:
    semantic = np.array([[0, 5, 5, 7], [9, 9, 42, 7], [0, 5, 7, 7]], dtype=np.uint32)
    categories = {0: "wall", 5: "chair", 7: "kitchen_counter", 9: "floor"}
    instance, labels = habitat_semantic_to_instances(semantic, categories, ("wall", "Floor"))
    assert instance.dtype == np.int32
    np.testing.assert_array_equal(instance, [[0, 6, 6, 8], [0, 0, 0, 8], [0, 6, 8, 8]])
    assert labels == {6: ("chair", 1.0), 8: ("kitchen counter", 1.0)}
    with pytest.raises(ValueError, match="integer semantic ids"):
        habitat_semantic_to_instances(semantic.astype(np.float32), categories)


def test_habitat_frame_assembly() -> None:
    h, w = 4, 6
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    observations = {
        "rgb": rgba,
        "depth": np.full((h, w), 2.0, np.float32),
        "semantic": np.full((h, w), 3, np.uint32),
    }
    K = intrinsics_from_hfov(w, h, 90.0)
    frame = habitat_bridge.habitat_frame(
        observations, [0, 1.5, 0], [1, 0, 0, 0], K, {3: "sofa"}, stamp=1.25
    )
    assert frame.rgb.shape == (h, w, 3) and frame.rgb.dtype == np.uint8
    assert int(frame.rgb[0, 0, 0]) == 200
    assert frame.depth.dtype == np.float32
    assert frame.instance is not None and frame.instance.dtype == np.int32
    assert set(np.unique(frame.instance)) == {4}
    assert frame.instance_labels == {4: ("sofa", 1.0)}
    np.testing.assert_allclose(frame.map_T_camera[:3, 3], [0, 0, 1.5])
    assert frame.stamp == 1.25
    with pytest.raises(ValueError, match="lack 'depth'"):
        habitat_bridge.habitat_frame({"rgb": rgba}, [0, 0, 0], [1, 0, 0, 0], K, {}, 0.0)


def test_habitat_semantic_objects_truth() -> None:
    def obj(sid: int, name: str, center: list[float], size: list[float]) -> SimpleNamespace:
        category = SimpleNamespace(name=lambda: name)
        # magnum's Range3D exposes center()/size() as methods.
        aabb = SimpleNamespace(center=lambda: center, size=lambda: size)
        region = SimpleNamespace(category=SimpleNamespace(name=lambda: "kitchen"))
        return SimpleNamespace(
            semantic_id=sid, id=f"0_1_{sid}", category=category, aabb=aabb, region=region
        )

    truth = habitat_bridge.semantic_objects_truth(
        [obj(4, "chair", [1.0, 0.5, -2.0], [0.4, 1.0, 0.6]), obj(1, "wall", [0, 0, 0], [1, 1, 1])],
        ignore_labels=("wall",),
    )
    (chair,) = truth
    assert chair.instance_id == 5 and chair.label == "chair" and chair.room == "kitchen"
    np.testing.assert_allclose(chair.position, [2.0, -1.0, 0.5])  # (-z, -x, y)
    np.testing.assert_allclose(chair.box_max - chair.box_min, [0.6, 0.4, 1.0])


def test_habitat_bridge_without_habitat_says_what_to_install() -> None:
    if habitat_bridge.is_available():
        pytest.skip("habitat-sim is installed here")
    with pytest.raises(BridgeUnavailable, match="conda install habitat-sim"):
        habitat_bridge.HabitatBridge(habitat_bridge.HabitatBridgeConfig(scene_id="any.glb"))


def test_habitat_live() -> None:
    pytest.importorskip(
        "habitat_sim", reason="habitat-sim not installed (no Linux wheel on PyPI; conda only)"
    )
    scene = os.environ.get("HABITAT_TEST_SCENE", "")
    if not scene:
        pytest.skip("set HABITAT_TEST_SCENE (and HABITAT_TEST_DATASET) to a scene to run this")
    config = habitat_bridge.HabitatBridgeConfig(
        scene_id=scene,
        scene_dataset_config_file=os.environ.get("HABITAT_TEST_DATASET", ""),
        width_px=160,
        height_px=120,
    )
    with habitat_bridge.HabitatBridge(config) as bridge:
        T = np.eye(4)
        T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # looking along map +x
        T[:3, 3] = bridge.observe().frame.map_T_camera[:3, 3]
        bridge.set_camera_pose(T)
        obs = bridge.observe()
        np.testing.assert_allclose(obs.frame.map_T_camera, T, atol=1e-4)
        assert obs.frame.rgb.shape == (120, 160, 3)
        assert obs.frame.depth.dtype == np.float32


# ----------------------------------------------------------------------------- AI2-THOR


def test_ai2thor_level_camera_pose() -> None:
    T = ai2thor_camera_to_map_T_camera({"x": 1.0, "y": 0.9, "z": 2.0}, 0.0, 0.0)
    np.testing.assert_allclose(T[:3, 3], [2.0, -1.0, 0.9])
    np.testing.assert_allclose(T[:3, 2], [1, 0, 0], atol=1e-12)  # forward: Unity +z = map +x
    np.testing.assert_allclose(T[:3, 0], [0, -1, 0], atol=1e-12)  # right: Unity +x = map -y
    np.testing.assert_allclose(T[:3, 1], [0, 0, -1], atol=1e-12)  # down
    assert _is_rotation(T[:3, :3])


def test_ai2thor_yaw_is_clockwise_and_horizon_looks_down() -> None:
    T = ai2thor_camera_to_map_T_camera([0, 0, 0], 90.0, 0.0)
    np.testing.assert_allclose(T[:3, 2], [0, -1, 0], atol=1e-12)  # turned right
    T = ai2thor_camera_to_map_T_camera([0, 0, 0], 0.0, 30.0)
    np.testing.assert_allclose(T[:3, 2], [math.cos(math.pi / 6), 0, -0.5], atol=1e-12)
    assert _is_rotation(T[:3, :3])
    with pytest.raises(ValueError, match="non-finite"):
        ai2thor_camera_to_map_T_camera([0, float("nan"), 0], 0.0, 0.0)


def test_ai2thor_pixels_backproject_to_the_unity_world_point() -> None:
    cam = np.array([1.0, 1.5, -0.5])
    yaw, horizon = math.radians(120), math.radians(30)
    forward_u = np.array(
        [math.sin(yaw) * math.cos(horizon), -math.sin(horizon), math.cos(yaw) * math.cos(horizon)]
    )
    right_u = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    T = ai2thor_camera_to_map_T_camera(cam, 120.0, 30.0)
    K = intrinsics_from_vfov(301, 301, 90.0)
    d = 2.0
    # The image centre at depth d is d metres along the camera's forward axis.
    np.testing.assert_allclose(
        _backproject(150, 150, d, K, T), MAP_M_UNITY @ (cam + d * forward_u), atol=1e-9
    )
    # A point 0.5 m to the camera's right (Unity +x of the camera) lands right of the centre.
    point_u = cam + d * forward_u + 0.5 * right_u
    u = K[0, 2] + K[0, 0] * 0.5 / d
    np.testing.assert_allclose(_backproject(u, 150, d, K, T), MAP_M_UNITY @ point_u, atol=1e-9)


def test_ai2thor_segmentation_to_instances() -> None:
    red, green, blue, grey = (255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)
    seg = np.array([[red, green, blue], [grey, red, red]], dtype=np.uint8)
    colors = {red: "Mug|+1.0|+0.9|-0.5", green: "Fridge|-2.1|+0.0|+1.3", blue: "Floor"}
    registry = assign_instance_ids(sorted(["Mug|+1.0|+0.9|-0.5", "Fridge|-2.1|+0.0|+1.3"]), {})
    assert registry == {"Fridge|-2.1|+0.0|+1.3": 1, "Mug|+1.0|+0.9|-0.5": 2}
    instance = ai2thor_segmentation_to_instances(seg, colors, registry)
    assert instance.dtype == np.int32
    np.testing.assert_array_equal(instance, [[2, 1, 0], [0, 2, 2]])


def test_assign_instance_ids_never_reuses() -> None:
    registry = assign_instance_ids(["a", "b"], {})
    registry = assign_instance_ids(["b", "c"], registry)
    assert registry == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(
    ("meta", "state"),
    [
        ({"openable": True, "isOpen": False}, "closed"),
        ({"openable": True, "isOpen": True}, "open"),
        ({"toggleable": True, "isToggled": True}, "on"),
        ({"openable": True, "isOpen": True, "toggleable": True, "isToggled": False}, "open,off"),
        ({"isSliced": True, "isDirty": True}, "sliced,dirty"),
        ({"openable": False, "isOpen": False, "toggleable": False}, ""),
    ],
)
def test_ai2thor_object_state(meta: dict[str, bool], state: str) -> None:
    assert ai2thor_object_state(meta) == state


def test_unity_aabb_to_map_permutes_extents() -> None:
    lo, hi = unity_aabb_to_map([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(0.5 * (lo + hi), [3.0, -1.0, 2.0])
    np.testing.assert_allclose(hi - lo, [3.0, 1.0, 2.0])


def _fake_event(objects: list[dict[str, object]], seg: np.ndarray) -> SimpleNamespace:
    h, w = seg.shape[:2]
    colors = {(255, 0, 0): "Fridge|1", (0, 255, 0): "Mug|2", (0, 0, 255): "Floor|0"}
    metadata = {
        "objects": objects,
        "agent": {"rotation": {"x": 0.0, "y": 90.0, "z": 0.0}, "cameraHorizon": 0.0},
        "cameraPosition": {"x": 0.0, "y": 1.5, "z": 0.0},
        "fov": 90.0,
        "screenWidth": w,
        "screenHeight": h,
        "lastActionSuccess": True,
    }
    return SimpleNamespace(
        frame=np.full((h, w, 3), 100, np.uint8),
        depth_frame=np.full((h, w), 1.25, np.float32),
        instance_segmentation_frame=seg,
        color_to_object_id=colors,
        metadata=metadata,
    )


def _thor_object(object_id: str, object_type: str, **flags: object) -> dict[str, object]:
    return {
        "objectId": object_id,
        "objectType": object_type,
        "position": {"x": 1.0, "y": 0.5, "z": 2.0},
        "axisAlignedBoundingBox": {
            "center": {"x": 1.0, "y": 0.5, "z": 2.0},
            "size": {"x": 0.2, "y": 1.0, "z": 0.4},
        },
        **flags,
    }


def test_ai2thor_observation_from_an_event() -> None:
    seg = np.zeros((3, 4, 3), np.uint8)
    seg[0, :2] = (255, 0, 0)
    seg[2, 3] = (0, 0, 255)
    objects = [
        _thor_object("Fridge|1", "Fridge", openable=True, isOpen=True, moveable=False),
        _thor_object("Mug|2", "Mug", pickupable=True),
    ]
    registry: dict[str, int] = {}
    obs = ai2thor_bridge.ai2thor_observation(_fake_event(objects, seg), registry, stamp=0.5)
    frame = obs.frame
    assert registry == {"Fridge|1": 1, "Mug|2": 2}
    assert frame.instance is not None
    np.testing.assert_array_equal(np.unique(frame.instance), [0, 1])  # the mug is not in view
    assert frame.instance_labels == {1: ("fridge", 1.0)}
    assert frame.instance_states == {1: "open"}
    np.testing.assert_allclose(frame.K, intrinsics_from_vfov(4, 3, 90.0))
    np.testing.assert_allclose(frame.map_T_camera[:3, 3], [0.0, 0.0, 1.5])
    np.testing.assert_allclose(frame.map_T_camera[:3, 2], [0, -1, 0], atol=1e-12)  # yaw 90
    assert frame.depth.dtype == np.float32 and float(frame.depth[0, 0]) == 1.25
    fridge, mug = obs.objects
    assert (fridge.label, fridge.state, fridge.static) == ("fridge", "open", True)
    assert (mug.label, mug.state, mug.static) == ("mug", "", False)
    np.testing.assert_allclose(mug.position, [2.0, -1.0, 0.5])
    np.testing.assert_allclose(mug.box_max - mug.box_min, [0.4, 0.2, 1.0])

    # A later event with a new object keeps the old ids and gives the new one the next id.
    objects.append(_thor_object("Apple|3", "Apple", pickupable=True))
    ai2thor_bridge.ai2thor_observation(_fake_event(objects, seg), registry, stamp=0.6)
    assert registry == {"Fridge|1": 1, "Mug|2": 2, "Apple|3": 3}


def test_ai2thor_event_without_depth_is_refused() -> None:
    event = _fake_event([], np.zeros((2, 2, 3), np.uint8))
    event.depth_frame = None
    with pytest.raises(ValueError, match="renderDepthImage"):
        ai2thor_bridge.ai2thor_observation(event, {}, stamp=0.0)


def test_ai2thor_controller_kwargs_request_depth_and_instances() -> None:
    kwargs = ai2thor_bridge.Ai2ThorBridgeConfig(scene="FloorPlan5").controller_kwargs()
    assert kwargs["renderDepthImage"] and kwargs["renderInstanceSegmentation"]
    assert kwargs["scene"] == "FloorPlan5" and kwargs["fieldOfView"] == 90.0


def test_ai2thor_bridge_without_ai2thor_says_what_to_install() -> None:
    if ai2thor_bridge.is_available():
        pytest.skip("ai2thor is installed here")
    with pytest.raises(BridgeUnavailable, match="pip install ai2thor"):
        ai2thor_bridge.Ai2ThorBridge(ai2thor_bridge.Ai2ThorBridgeConfig())


def test_ai2thor_live() -> None:
    pytest.importorskip("ai2thor", reason="ai2thor not installed")
    try:
        bridge = ai2thor_bridge.Ai2ThorBridge(
            ai2thor_bridge.Ai2ThorBridgeConfig(width_px=160, height_px=120)
        )
    except BridgeUnavailable as exc:
        pytest.skip(f"AI2-THOR controller cannot start here (Unity build download): {exc}")
    with bridge:
        obs = bridge.step("RotateRight")
        assert obs.frame.rgb.shape == (120, 160, 3)
        assert obs.frame.instance is not None
        assert obs.objects


def test_bridge_frames_are_accepted_and_backprojected_by_the_core() -> None:
    from memory_node.core.geometry import DepthConfig, backproject, validate_frame

    config = DepthConfig(pixel_stride=1)
    seg = np.zeros((30, 40, 3), np.uint8)
    event = _fake_event([_thor_object("Fridge|1", "Fridge", openable=True)], seg)
    event.metadata["agent"]["cameraHorizon"] = 30.0
    thor = ai2thor_bridge.ai2thor_observation(event, {}, stamp=0.0).frame
    observations = {
        "rgb": np.zeros((30, 40, 4), np.uint8),
        "depth": np.full((30, 40), 1.25, np.float32),
    }
    s = math.sqrt(0.5)
    habitat = habitat_bridge.habitat_frame(
        observations, [1.0, 1.5, 2.0], [s, 0, s, 0], intrinsics_from_hfov(40, 30, 70.0), {}, 0.0
    )
    for frame in (thor, habitat):
        validate_frame(frame, config)
        points, _ = backproject(frame.depth, frame.K, frame.map_T_camera, config)
        # A uniform depth image is a plane 1.25 m in front of the camera, along its optical axis.
        along_axis = (points.points_map - frame.map_T_camera[:3, 3]) @ frame.map_T_camera[:3, 2]
        assert len(along_axis) == 30 * 40
        np.testing.assert_allclose(along_axis, 1.25, atol=1e-5)
