"""Known-answer tests of the simulator's camera: depth, intrinsics, frames, instance ids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memory_node.core.config import flatten
from memory_node.core.types import Frame
from memory_sim.assets import object_from_asset
from memory_sim.camera import CameraConfig, intrinsics, look_pose, vertical_fov_deg
from memory_sim.scene import ObjectSpec, PartSpec, Pose, RoomSpec, SceneSpec
from memory_sim.simulator import SimConfig, SimulationError, Simulator


def _config(width: int = 160, height: int = 120, noise: bool = False) -> SimConfig:
    config = SimConfig()
    config.camera.width_px, config.camera.height_px = width, height
    config.noise.enabled = noise
    return config


def _wall_scene(x: float = 3.0) -> SceneSpec:
    """Return a scene with a wall 0.1 m thick, 10 m wide, 4 m tall; near face at x - 0.05."""
    wall = ObjectSpec(
        "wall", "wall", Pose((x, 0.0, 1.0)), parts=(PartSpec("box", (0.1, 10.0, 4.0)),),
        structure=True,
    )  # fmt: skip
    return SceneSpec("wall", objects=[wall])


def _box(name: str, position: tuple[float, float, float], size: float = 0.2) -> ObjectSpec:
    return ObjectSpec(
        name, "box", Pose(position), parts=(PartSpec("box", (size, size, size)),), static=False
    )


def test_wall_two_metres_ahead_reads_two_metres() -> None:
    with Simulator(_wall_scene(3.0), _config()) as sim:
        # near face at x = 2.95; camera at x = 0.95 looking along +x
        step = sim.step(look_pose(np.array([0.95, 0.0, 1.0]), yaw=0.0, pitch=0.0))
    depth = step.frame.depth
    assert depth.dtype == np.float32 and depth.shape == (120, 160)
    # depth is along the optical axis, so the whole plane reads 2 m, not only the centre
    np.testing.assert_allclose(depth, 2.0, atol=2e-3)


def test_tilted_camera_sees_plane_depth_along_axis() -> None:
    yaw = math.radians(20.0)
    with Simulator(_wall_scene(3.0), _config()) as sim:
        step = sim.step(look_pose(np.array([0.95, 0.0, 1.0]), yaw=yaw, pitch=0.0))
    f = step.frame
    # back-project every pixel and check it lies on the wall face x = 2.95
    v, u = np.mgrid[0:120, 0:160]
    z = f.depth
    x = (u - f.K[0, 2]) * z / f.K[0, 0]
    y = (v - f.K[1, 2]) * z / f.K[1, 1]
    pts = np.stack([x, y, z, np.ones_like(z)], -1).reshape(-1, 4) @ f.map_T_camera.T
    np.testing.assert_allclose(pts[:, 0], 2.95, atol=5e-3)


def test_intrinsics_from_horizontal_fov() -> None:
    cam = CameraConfig(width_px=640, height_px=480, fov_deg=90.0)
    K = intrinsics(cam)
    assert K[0, 0] == pytest.approx(320.0)
    assert K[1, 1] == pytest.approx(320.0)
    assert (K[0, 2], K[1, 2]) == (320.0, 239.0)  # TinyRenderer's half-pixel shift
    assert vertical_fov_deg(cam) == pytest.approx(math.degrees(2 * math.atan(0.75)))


def test_image_orientation_up_and_right() -> None:
    # camera at origin looking +x: map -y is image right, map +z is image up
    scene = _wall_scene(5.0)
    scene.objects += [_box("up_left", (2.0, 0.5, 1.5)), _box("down_right", (2.0, -0.5, 0.5))]
    with Simulator(scene, _config()) as sim:
        step = sim.step(look_pose(np.array([0.0, 0.0, 1.0]), 0.0, 0.0))
        up_left, down_right = sim.instance_id("up_left"), sim.instance_id("down_right")
    inst = step.frame.instance
    assert inst is not None
    ys, xs = np.nonzero(inst == up_left)
    assert ys.max() < 60 and xs.max() < 80
    ys, xs = np.nonzero(inst == down_right)
    assert ys.min() >= 60 and xs.min() >= 80


@pytest.mark.parametrize("yaw_deg,pitch_deg", [(0.0, 0.0), (35.0, -30.0), (-120.0, -15.0)])
def test_backprojected_pixels_fall_inside_ground_truth_boxes(
    yaw_deg: float, pitch_deg: float
) -> None:
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    ahead = np.array([math.cos(yaw), math.sin(yaw)])
    cam = np.array([0.0, 0.0, 1.2])
    centre = cam[:2] + 1.6 * ahead
    side = np.array([-ahead[1], ahead[0]])
    scene = SceneSpec(
        "objects",
        objects=[
            _box("cube", (*(centre + 0.35 * side), 0.6 + 1.6 * math.tan(pitch) * 0.5)),
            object_from_asset("mug", "mug", Pose((*(centre - 0.3 * side), 0.5))),
            object_from_asset("duck", "duck", Pose((*centre, 0.7))),
        ],
    )
    with Simulator(scene, _config()) as sim:
        step = sim.step(look_pose(cam, yaw, pitch))
        truths = {t.instance_id: t for t in sim.objects()}
    f = step.frame
    assert f.instance is not None and f.instance_labels is not None
    assert set(f.instance_labels) == set(step.truth.visible)
    assert len(step.truth.visible) >= 2
    for iid in step.truth.visible:
        v, u = np.nonzero(f.instance == iid)
        z = f.depth[v, u]
        ok = z > 0
        x = (u[ok] - f.K[0, 2]) * z[ok] / f.K[0, 0]
        y = (v[ok] - f.K[1, 2]) * z[ok] / f.K[1, 1]
        pts_cam = np.stack([x, y, z[ok]], axis=1)
        pts = pts_cam @ f.map_T_camera[:3, :3].T + f.map_T_camera[:3, 3]
        t = truths[iid]
        tol = 0.01 + 0.01 * z[ok].max()  # a pixel's footprint and depth-buffer precision
        assert np.all(pts >= t.box_min - tol), (t.name, (t.box_min - pts).max())
        assert np.all(pts <= t.box_max + tol), (t.name, (pts - t.box_max).max())
        assert f.instance_labels[iid] == (t.label, 1.0)


def test_frame_truth_counts_pixels_with_depth_apart() -> None:
    scene = SceneSpec(
        "two", objects=[_box("near", (1.5, 0.3, 1.2)), _box("far", (4.0, -0.4, 1.2))]
    )
    config = _config()
    config.camera.depth_max_m = 3.0  # the far box is shown but beyond the sensor's range
    with Simulator(scene, config) as sim:
        truth = sim.step(look_pose(np.array([0.0, 0.0, 1.2]), 0.0, 0.0)).truth
        near, far = sim.instance_id("near"), sim.instance_id("far")
    assert truth.visible[near] > 0 and truth.visible[far] > 0
    assert truth.visible_in_range[near] == truth.visible[near]
    assert far not in truth.visible_in_range
    assert truth.to_json()["visible_in_range"] == {str(near): truth.visible[near]}


def test_frame_is_a_core_frame_with_sim_time_stamps() -> None:
    config = _config(32, 24)
    config.rate_hz = 4.0
    with Simulator(_wall_scene(), config) as sim:
        pose = look_pose(np.array([0.0, 0.0, 1.0]), 0.0, 0.0)
        stamps = [sim.step(pose).frame.stamp for _ in range(3)]
        frame = sim.step(pose).frame
    assert stamps == [0.25, 0.5, 0.75]
    assert isinstance(frame, Frame)
    assert frame.rgb.shape == (24, 32, 3) and frame.rgb.dtype == np.uint8
    assert frame.instance is not None and frame.instance.dtype == np.int32
    assert frame.K.shape == (3, 3) and frame.map_T_camera.shape == (4, 4)


def test_non_finite_or_improper_pose_is_refused_and_clock_does_not_move() -> None:
    with Simulator(_wall_scene(), _config(32, 24)) as sim:
        bad = look_pose(np.array([0.0, 0.0, 1.0]), 0.0, 0.0)
        bad[0, 3] = np.nan
        with pytest.raises(SimulationError, match="non-finite"):
            sim.step(bad)
        skew = np.eye(4)
        skew[0, 0] = 2.0
        with pytest.raises(SimulationError, match="orthonormal"):
            sim.step(skew)
        assert sim.frame_index == 0 and sim.time == 0.0


def test_instance_ids_stable_across_state_change_and_never_reused() -> None:
    cabinet = ObjectSpec(
        "cabinet", "cabinet", Pose((2.0, 0.0, 0.0)),
        parts=(
            PartSpec("box", (0.5, 0.5, 1.0), pose=Pose((0, 0, 0.5))),
            PartSpec("box", (0.4, 0.5, 0.1), pose=Pose((0, -0.45, 0.8)), states=("open",)),
        ),
        state="closed", states=("open", "closed"),
    )  # fmt: skip
    scene = SceneSpec("s", objects=[cabinet, _box("a", (2.0, 1.0, 0.5))])
    with Simulator(scene, _config(64, 48)) as sim:
        pose = look_pose(np.array([0.0, 0.0, 1.2]), 0.0, -0.3)
        cid, aid = sim.instance_id("cabinet"), sim.instance_id("a")
        closed = sim.step(pose).truth.visible[cid]
        change = sim.set_state("cabinet", "open", stamp=0.15)
        opened = sim.step(pose)
        assert sim.instance_id("cabinet") == cid and cid in opened.truth.visible
        assert opened.truth.visible[cid] > closed  # the open drawer adds pixels
        assert change.event.old_state == "closed" and change.event.new_state == "open"
        assert sim.object_truth(cid).box_min[1] < -0.25 - 0.1  # the drawer sticks out
        sim.remove_object("a")
        new = sim.add_object(_box("b", (2.0, -1.0, 0.5)))
        assert new.instance_id not in (cid, aid)
        assert aid not in sim.step(pose).truth.visible
        with pytest.raises(SimulationError, match="removed"):
            sim.move_object("a", Pose((0, 0, 0)))
        with pytest.raises(SimulationError, match="cannot be"):
            sim.set_state("cabinet", "ajar")


def test_move_refuses_non_finite_pose() -> None:
    scene = SceneSpec("s", objects=[_box("a", (2, 0, 0.5))])
    with Simulator(scene, _config(32, 24)) as sim, pytest.raises(SimulationError, match="non"):
        sim.move_object("a", Pose((float("inf"), 0.0, 0.0)))


def test_config_leaves_are_described_scalars_with_units() -> None:
    specs = flatten(SimConfig())
    names = {s.name for s in specs}
    assert {"rate_hz", "camera.fov_deg", "camera.width_px", "noise.depth_sigma_m"} <= names
    for spec in specs:
        assert spec.description
        assert isinstance(spec.default, (bool, int, float, str)), spec.name


def test_two_simulators_in_one_process_are_independent() -> None:
    pose = look_pose(np.array([0.95, 0.0, 1.0]), 0.0, 0.0)
    with (
        Simulator(_wall_scene(3.0), _config(32, 24)) as a,
        Simulator(_wall_scene(4.0), _config(32, 24)) as b,
    ):
        da, db = a.step(pose).frame.depth, b.step(pose).frame.depth
    np.testing.assert_allclose(da, 2.0, atol=2e-3)
    np.testing.assert_allclose(db, 3.0, atol=3e-3)


def test_top_down_view_maps_map_points_to_pixels() -> None:
    scene = SceneSpec(
        "s",
        rooms=[RoomSpec("r", "kitchen", (0.0, 0.0), (4.0, 3.0))],
        objects=[
            ObjectSpec("floor", "floor", Pose((2.0, 1.5, -0.01)),
                       parts=(PartSpec("box", (4.0, 3.0, 0.02)),), structure=True),
            _box("a", (1.0, 2.0, 0.1)),
            _box("b", (3.0, 0.5, 0.1)),
        ],
    )  # fmt: skip
    with Simulator(scene, _config(32, 24)) as sim:
        view = sim.render_top_down(width_px=230, margin_m=0.3)
        ids = {name: sim.instance_id(name) for name in ("a", "b")}
        assert sim.frame_index == 0
    assert view.rgb.shape == (round(230 * 3.6 / 4.6), 230, 3)
    for name, xy in (("a", (1.0, 2.0)), ("b", (3.0, 0.5))):
        rows, cols = np.nonzero(view.instance == ids[name])
        expected = view.to_pixel(np.array(xy))[0]
        assert abs(cols.mean() - expected[0]) < 0.6 and abs(rows.mean() - expected[1]) < 0.6
        # a 0.2 m box spans 0.2 / metres_per_px pixels
        assert cols.max() - cols.min() + 1 == pytest.approx(0.2 / view.metres_per_px, abs=1.5)


@pytest.mark.parametrize("width,height", [(33, 25), (160, 120)])
def test_projection_of_plate_centres_is_unbiased(width: int, height: int) -> None:
    # a thin square plate facing the camera: its mask centroid is the projection of its centre
    rng = np.random.default_rng(0)
    plate = ObjectSpec(
        "p", "plate", Pose((2.0, 0, 1)), parts=(PartSpec("box", (0.002, 0.12, 0.12)),)
    )
    du, dv = [], []
    with Simulator(SceneSpec("s", objects=[plate]), _config(width, height)) as sim:
        K = sim.K
        for _ in range(12):
            u, v = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
            z = 2.0
            sim.move_object(
                "p",
                Pose((z + 0.001, -(u - K[0, 2]) * z / K[0, 0], 1.0 - (v - K[1, 2]) * z / K[1, 1])),
            )
            inst = sim.step(look_pose(np.array([0.0, 0.0, 1.0]), 0.0, 0.0)).frame.instance
            rows, cols = np.nonzero(inst == sim.instance_id("p"))
            du.append(cols.mean() - u)
            dv.append(rows.mean() - v)
    assert abs(np.mean(du)) < 0.2 and abs(np.mean(dv)) < 0.2, (np.mean(du), np.mean(dv))
