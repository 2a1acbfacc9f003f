"""Gazebo SDF world import: known-answer tests on tiny synthetic worlds, then the AWS small house.

The small-house tests use ``<repo>/../shared/data/aws_small_house`` and skip when it is absent.
Mesh conversion goes to a per-session temporary cache, so the first small-house test pays the
one-off DAE conversion (a few seconds here) and the others reuse it.
"""

from __future__ import annotations

import logging
import math
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from memory_sim.gazebo import (
    WorldImportError,
    WorldImportStats,
    import_world,
    is_structure_label,
    label_from_name,
    sdf_pose_matrix,
)
from memory_sim.mesh_cache import MeshCache, read_collada_asset

REPO = Path(__file__).resolve().parents[2]
SMALL_HOUSE = REPO.parent / "shared" / "data" / "aws_small_house"
SMALL_HOUSE_WORLD = SMALL_HOUSE / "worlds" / "small_house.world"


# ----------------------------------------------------------------------------- labels, poses


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Bed_01_001", "bed"),
        ("ChairA_01_005", "chair"),
        ("KitchenCabinet_01", "kitchen cabinet"),
        ("TVCabinet_01_001", "tv cabinet"),
        ("TV_02_001", "tv"),
        ("HouseWallB_01_001", "house wall"),
        ("PortraitA_01", "portrait"),
        ("cafe_table", "cafe table"),
        ("unit_box_2", "unit box"),
        ("001", ""),
    ],
)
def test_label_from_name(name: str, label: str) -> None:
    assert label_from_name(name) == label


def test_structure_labels() -> None:
    assert is_structure_label("house wall")
    assert is_structure_label("floor")
    assert not is_structure_label("wardrobe")
    assert not is_structure_label("folding door")


def test_sdf_pose_yaw_maps_x_to_y() -> None:
    T = sdf_pose_matrix([1.0, 2.0, 3.0, 0.0, 0.0, math.pi / 2])
    np.testing.assert_allclose(T @ [1, 0, 0, 1], [1, 3, 3, 1], atol=1e-12)


def test_sdf_pose_rpy_order_is_fixed_axes_xyz() -> None:
    # roll then pitch about fixed axes: R = Ry(pitch) @ Rx(roll). z -> (Rx) -y -> (Ry) -y.
    T = sdf_pose_matrix([0, 0, 0, math.pi / 2, math.pi / 2, 0])
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [0, -1, 0], atol=1e-12)
    # y -> (Rx) z -> (Ry) x.
    np.testing.assert_allclose(T[:3, :3] @ [0, 1, 0], [1, 0, 0], atol=1e-12)


def test_sdf_pose_degrees_and_quaternion_agree() -> None:
    a = sdf_pose_matrix([0, 0, 0, 0, 0, 90], degrees=True)
    s = math.sqrt(0.5)
    b = sdf_pose_matrix([0, 0, 0, 0, 0, s, s])
    np.testing.assert_allclose(a, b, atol=1e-12)


# ----------------------------------------------------------------------------- synthetic worlds

# A one-triangle COLLADA file in centimetres: vertices (0,0,0), (100,0,0), (0,200,0) cm.
_DAE_CM = """<?xml version="1.0" encoding="utf-8"?>
<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1">
  <asset><unit meter="0.01" name="centimeter"/><up_axis>Z_UP</up_axis></asset>
  <library_images>
    <image id="img"><init_from>../materials/textures/{texture}</init_from></image>
  </library_images>
  <library_geometries>
    <geometry id="tri" name="tri">
      <mesh>
        <source id="tri-pos">
          <float_array id="tri-pos-array" count="9">0 0 0 100 0 0 0 200 0</float_array>
          <technique_common>
            <accessor source="#tri-pos-array" count="3" stride="3">
              <param name="X" type="float"/><param name="Y" type="float"/>
              <param name="Z" type="float"/>
            </accessor>
          </technique_common>
        </source>
        <vertices id="tri-vtx"><input semantic="POSITION" source="#tri-pos"/></vertices>
        <triangles count="1"><input semantic="VERTEX" source="#tri-vtx" offset="0"/>
          <p>0 1 2</p></triangles>
      </mesh>
    </geometry>
  </library_geometries>
  <library_visual_scenes>
    <visual_scene id="scene">
      <node id="n"><instance_geometry url="#tri"/></node>
    </visual_scene>
  </library_visual_scenes>
  <scene><instance_visual_scene url="#scene"/></scene>
</COLLADA>
"""

_MODEL_SDF = """<?xml version="1.0"?>
<sdf version="1.6">
  <model name="{name}">
    <pose>0 0 0.5 0 0 0</pose>
    <link name="link">
      <pose>1 0 0 0 0 0</pose>
      <visual name="v">
        <pose>0 0 0.25 0 0 0</pose>
        <geometry>{geometry}</geometry>
        <material><diffuse>1 0 0 1</diffuse></material>
      </visual>
    </link>
  </model>
</sdf>
"""


def _write_model(
    models: Path, name: str, geometry: str, mesh: str | None = None, texture: str = "t.png"
) -> None:
    folder = models / name
    (folder / "meshes").mkdir(parents=True)
    (folder / "model.config").write_text(
        f'<?xml version="1.0"?><model><name>{name}</name>'
        '<sdf version="1.5">old.sdf</sdf><sdf version="1.6">model.sdf</sdf></model>'
    )
    (folder / "model.sdf").write_text(_MODEL_SDF.format(name=name, geometry=geometry))
    if mesh is not None:
        (folder / "meshes" / mesh).write_text(_DAE_CM.format(texture=texture))


def _world(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "worlds" / "test.world"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0"?>\n<sdf version="1.6">\n<world name="w">\n'
        + textwrap.dedent(body)
        + "\n</world>\n</sdf>\n"
    )
    return path


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    _write_model(models, "red_box", "<box><size>1 2 3</size></box>")
    _write_model(models, "ball", "<sphere><radius>0.25</radius></sphere>")
    _write_model(
        models,
        "tri",
        "<mesh><uri>model://tri/meshes/tri.DAE</uri><scale>2 2 2</scale></mesh>",
        mesh="tri.DAE",
    )
    return models


def _obj_vertices(path: Path) -> np.ndarray:
    """(N, 3) vertices of an OBJ file."""
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64)


def _position(part_pose: object) -> np.ndarray:
    return np.asarray(part_pose.position)  # type: ignore[attr-defined]


def test_include_poses_compose_and_override(tmp_path: Path, models: Path) -> None:
    world = _world(
        tmp_path,
        """
        <include>
          <uri>model://red_box</uri>
          <name>box_a</name>
          <pose>10 0 0 0 0 1.5707963267948966</pose>
        </include>
        <include><uri>model://ball</uri></include>
        <model name="Wrapper_01_001">
          <static>true</static>
          <pose>0 5 0 0 0 0</pose>
          <include><uri>model://red_box</uri></include>
        </model>
        <model name="Inline_02">
          <pose>0 0 1 0 0 0</pose>
          <link name="l"><visual name="v">
            <geometry><cylinder><radius>0.5</radius><length>2</length></cylinder></geometry>
          </visual></link>
        </model>
        <light name="sun" type="directional"><pose>0 0 10 0 0 0</pose></light>
        """,
    )
    spec = import_world(world, model_paths=[models], cache=tmp_path / "cache")
    assert [o.name for o in spec.objects] == ["box_a", "ball", "Wrapper_01_001", "Inline_02"]
    box_a, ball, wrapper, inline = spec.objects

    # The include's pose overrides the model's own <pose>: the object sits at the include pose.
    np.testing.assert_allclose(box_a.pose.position, [10, 0, 0], atol=1e-9)
    assert box_a.pose.yaw == pytest.approx(math.pi / 2)
    # The part is link pose (1, 0, 0) + visual pose (0, 0, 0.25) in the model frame.
    (part,) = box_a.parts
    assert part.shape == "box"
    assert part.size == (1.0, 2.0, 3.0)
    assert part.rgba == (1.0, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(_position(part.pose), [1, 0, 0.25], atol=1e-9)
    # World position of the part: yaw 90 deg maps the (1, 0) offset to (0, 1).
    world_part = box_a.pose.matrix() @ part.pose.matrix()
    np.testing.assert_allclose(world_part[:3, 3], [10, 1, 0.25], atol=1e-9)

    # Without an include pose the model's own pose (z = 0.5) places the instance.
    assert ball.label == "ball"
    np.testing.assert_allclose(ball.pose.position, [0, 0, 0.5], atol=1e-9)
    assert ball.parts[0].shape == "sphere"
    assert ball.parts[0].size == (0.5, 0.5, 0.5)

    # A model wrapping an include (the AWS world style): the nested model pose (z 0.5) composes.
    assert wrapper.label == "wrapper"
    assert wrapper.static
    np.testing.assert_allclose(wrapper.pose.position, [0, 5, 0], atol=1e-9)
    np.testing.assert_allclose(_position(wrapper.parts[0].pose), [1, 0, 0.75], atol=1e-9)

    assert inline.label == "inline"
    assert inline.parts[0].shape == "cylinder"
    assert inline.parts[0].size == (1.0, 1.0, 2.0)
    assert not inline.static


def test_saved_state_pose_overrides_the_model_pose(tmp_path: Path, models: Path) -> None:
    world = _world(
        tmp_path,
        """
        <include><uri>model://ball</uri><pose>1 2 3 0 0 0</pose></include>
        <state world_name="w"><model name="ball"><pose>4 5 0.25 0 0 0</pose></model></state>
        """,
    )
    (ball,) = import_world(world, model_paths=[models], cache=tmp_path / "cache").objects
    np.testing.assert_allclose(ball.pose.position, [4, 5, 0.25], atol=1e-9)


def test_rooms_are_attached_and_assigned(tmp_path: Path, models: Path) -> None:
    from memory_sim.scene import RoomSpec

    world = _world(
        tmp_path,
        """
        <include><uri>model://ball</uri><name>in_kitchen</name><pose>1 1 0 0 0 0</pose></include>
        <include><uri>model://ball</uri><name>outside</name><pose>9 9 0 0 0 0</pose></include>
        """,
    )
    kitchen = RoomSpec("kitchen", "kitchen", (0.0, 0.0), (2.0, 2.0))
    spec = import_world(world, model_paths=[models], cache=tmp_path / "cache", rooms=[kitchen])
    assert spec.rooms == [kitchen]
    assert [o.room for o in spec.objects] == ["kitchen", ""]
    spec.validate()


def test_dae_unit_scale_is_applied_and_cached(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(tmp_path, "<include><uri>model://tri</uri><name>t1</name></include>")
    cache = MeshCache(tmp_path / "cache")
    stats = WorldImportStats()
    with caplog.at_level(logging.WARNING):
        spec = import_world(world, model_paths=[models], cache=cache, stats=stats)
    # The referenced texture does not exist: a warning naming it, not an error.
    assert "t.png" in caplog.text
    assert stats.missing_textures and "t.png" in stats.missing_textures[0]
    assert stats.meshes_converted == 1
    (obj,) = spec.objects
    (part,) = obj.parts
    assert part.shape == "mesh"
    assert part.mesh_scale == (2.0, 2.0, 2.0)  # SDF <scale> is kept for the loader
    assert part.rgba is not None  # untextured: carries its material colour
    vertices = _obj_vertices(Path(part.mesh_path))
    # 100 cm and 200 cm become 1 m and 2 m (trimesh alone would give 100 and 200).
    np.testing.assert_allclose(vertices.max(axis=0), [1.0, 2.0, 0.0], atol=1e-6)
    assert read_collada_asset(models / "tri" / "meshes" / "tri.DAE").unit_meter == 0.01

    again = WorldImportStats()
    import_world(world, model_paths=[models], cache=MeshCache(tmp_path / "cache"), stats=again)
    assert again.meshes_converted == 0
    assert again.meshes_cached == 1


def test_stl_and_obj_meshes_are_converted(tmp_path: Path) -> None:
    trimesh = pytest.importorskip("trimesh")
    models = tmp_path / "models"
    for name, suffix in (("stl_box", "stl"), ("obj_box", "obj")):
        _write_model(models, name, f"<mesh><uri>model://{name}/meshes/box.{suffix}</uri></mesh>")
        trimesh.creation.box(extents=(1.0, 2.0, 0.5)).export(
            models / name / "meshes" / f"box.{suffix}"
        )
    world = _world(
        tmp_path,
        "<include><uri>model://stl_box</uri></include><include><uri>model://obj_box</uri></include>",
    )
    cache = MeshCache(tmp_path / "cache")
    spec = import_world(world, model_paths=[models], cache=cache)
    assert [o.name for o in spec.objects] == ["stl_box", "obj_box"]
    for obj in spec.objects:
        (part,) = obj.parts
        vertices = _obj_vertices(Path(part.mesh_path))
        np.testing.assert_allclose(np.ptp(vertices, axis=0), [1.0, 2.0, 0.5], atol=1e-6)


def test_unsupported_or_broken_mesh_files_are_errors(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _write_model(models, "fbx", "<mesh><uri>model://fbx/meshes/a.fbx</uri></mesh>")
    (models / "fbx" / "meshes" / "a.fbx").write_text("not a mesh")
    _write_model(models, "bad_dae", "<mesh><uri>model://bad_dae/meshes/a.dae</uri></mesh>")
    (models / "bad_dae" / "meshes" / "a.dae").write_text("<COLLADA><asset>")
    for name, pattern in (("fbx", "unsupported mesh format '.fbx'"), ("bad_dae", "malformed")):
        world = _world(
            tmp_path, f"<include><uri>model://{name}</uri><name>{name}_1</name></include>"
        )
        with pytest.raises(WorldImportError, match=pattern) as info:
            import_world(world, model_paths=[models], cache=tmp_path / "cache")
        assert f"({name}_1)" in str(info.value)
        assert "model.sdf" in str(info.value)  # says which model file named the mesh


def test_unknown_model_uri_names_file_line_and_instance(tmp_path: Path, models: Path) -> None:
    world = _world(
        tmp_path, "<include>\n<uri>model://no_such_model</uri>\n<name>x1</name>\n</include>"
    )
    with pytest.raises(WorldImportError) as info:
        import_world(world, model_paths=[models], cache=tmp_path / "cache")
    message = str(info.value)
    assert str(world) in message
    assert "no_such_model" in message
    assert str(models) in message  # says where it looked
    assert info.value.line == 5  # the <uri> line: 3 header lines, then <include>, then <uri>
    assert info.value.path == world


def test_missing_mesh_names_the_model_file(tmp_path: Path, models: Path) -> None:
    _write_model(models, "ghost", "<mesh><uri>model://ghost/meshes/missing.dae</uri></mesh>")
    world = _world(tmp_path, "<include><uri>model://ghost</uri><name>g</name></include>")
    with pytest.raises(WorldImportError) as info:
        import_world(world, model_paths=[models], cache=tmp_path / "cache")
    assert info.value.path == models / "ghost" / "model.sdf"
    assert "missing.dae" in str(info.value)
    assert "(g)" in str(info.value)
    assert info.value.line is not None


def test_malformed_xml_reports_line(tmp_path: Path) -> None:
    world = tmp_path / "bad.world"
    world.write_text(
        '<?xml version="1.0"?>\n<sdf>\n<world name="w">\n<model name="a">\n</world>\n'
    )
    with pytest.raises(WorldImportError) as info:
        import_world(world, model_paths=[], cache=tmp_path / "cache")
    assert info.value.line == 5
    assert "malformed XML" in str(info.value)


def test_unsupported_geometry_is_an_error(tmp_path: Path) -> None:
    world = _world(
        tmp_path,
        """<model name="hill"><link name="l"><visual name="v">
        <geometry><heightmap><uri>h.png</uri></heightmap></geometry>
        </visual></link></model>""",
    )
    with pytest.raises(WorldImportError, match=r"unsupported geometry <heightmap>"):
        import_world(world, model_paths=[], cache=tmp_path / "cache")


def test_duplicate_instance_names_are_an_error(tmp_path: Path, models: Path) -> None:
    world = _world(
        tmp_path,
        "<include><uri>model://ball</uri></include><include><uri>model://ball</uri></include>",
    )
    with pytest.raises(WorldImportError, match="duplicate instance name 'ball'"):
        import_world(world, model_paths=[models], cache=tmp_path / "cache")


def test_not_a_world_file(tmp_path: Path) -> None:
    path = tmp_path / "model.sdf"
    path.write_text('<?xml version="1.0"?><sdf version="1.6"><model name="m"/></sdf>')
    with pytest.raises(WorldImportError, match="not an SDF world"):
        import_world(path, model_paths=[], cache=tmp_path / "cache")


# ----------------------------------------------------------------------------- the small house


def _reference_instances() -> dict[str, np.ndarray]:
    """Instance name -> (4, 4) pose, read straight from the world file (comments excluded)."""
    world = ET.parse(SMALL_HOUSE_WORLD).getroot().find("world")
    assert world is not None
    out = {}
    for model in world.findall("model"):
        values = [float(v) for v in (model.findtext("pose") or "").split()]
        out[model.get("name", "")] = sdf_pose_matrix(values)
    return out


@pytest.fixture(scope="session")
def small_house(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, WorldImportStats]:
    if not SMALL_HOUSE_WORLD.is_file():
        pytest.skip(f"test data absent: {SMALL_HOUSE_WORLD}")
    stats = WorldImportStats()
    spec = import_world(
        SMALL_HOUSE_WORLD,
        model_paths=[SMALL_HOUSE / "models"],
        cache=tmp_path_factory.mktemp("mesh_cache"),
        stats=stats,
    )
    return spec, stats


def test_small_house_instances_poses_and_labels(
    small_house: tuple[object, WorldImportStats],
) -> None:
    spec, stats = small_house
    reference = _reference_instances()
    objects = {o.name: o for o in spec.objects}  # type: ignore[attr-defined]
    # 89 <model> blocks are written in the file; 2 of them (a test ball and the ceiling) are
    # commented out, so Gazebo itself loads 87.
    assert len(reference) == 87
    assert set(objects) == set(reference)
    assert "RoomCeiling_01_001" not in objects and "Ball_01_002" not in objects
    for name, T in reference.items():
        np.testing.assert_allclose(objects[name].pose.matrix(), T, atol=1e-6, err_msg=name)
    # A rotated instance, spelled out: TVCabinet_01_001 has yaw 1.5792 in the file.
    assert objects["TVCabinet_01_001"].pose.yaw == pytest.approx(1.5792, abs=1e-6)
    expected = {
        "Bed_01_001": "bed",
        "ChairA_01_005": "chair",
        "KitchenCabinet_01_001": "kitchen cabinet",
        "Refrigerator_01_001": "refrigerator",
        "TV_01_001": "tv",
        "SofaC_01_001": "sofa",
        "Trash_01_002": "trash",
        "ShoeRack_01_001": "shoe rack",
        "PortraitA_01": "portrait",
    }
    for name, label in expected.items():
        assert objects[name].label == label
    structure = {n for n, o in objects.items() if o.structure}
    assert structure == {"HouseWallB_01_001", "FloorB_01_001", "RoomWall_01_001"}
    assert all(o.static for o in objects.values())
    # The bed's multi-material DAE becomes 3 textured parts; the ball is an SDF sphere.
    assert len(objects["Bed_01_001"].parts) == 3
    assert all(p.rgba is None for p in objects["Bed_01_001"].parts)
    assert objects["Ball_01_001"].parts[0].shape == "sphere"
    assert objects["Ball_01_001"].parts[0].size == pytest.approx((0.62, 0.62, 0.62))
    # Some photo textures referenced by the DAEs are missing from the data set: warnings only.
    assert stats.missing_textures


def test_small_house_loads_and_renders_in_pybullet(
    small_house: tuple[object, WorldImportStats],
) -> None:
    pybullet = pytest.importorskip("pybullet")
    from pybullet_utils.bullet_client import BulletClient

    from memory_sim.scene import body_aabb, load_scene

    spec, _ = small_house
    client = BulletClient(pybullet.DIRECT)
    try:
        bodies = load_scene(client, spec)  # type: ignore[arg-type]
        assert len(bodies) == 87
        # Unit scale applied: the bed is about 2.0 x 2.0 x 1.26 m, not 200 x 200 x 126.
        lo, hi = body_aabb(client, bodies["Bed_01_001"])
        np.testing.assert_allclose(np.sort(hi - lo), [1.26, 2.0, 2.04], atol=0.05)

        # Living room, looking towards +x from the Gazebo GUI camera pose of the world file.
        view = client.computeViewMatrix([-4.5, -0.49, 1.5], [0.0, -0.49, 1.0], [0, 0, 1])
        proj = client.computeProjectionMatrixFOV(70, 4 / 3, 0.05, 30)
        w, h, rgb, _, seg = client.getCameraImage(
            160, 120, view, proj, renderer=pybullet.ER_TINY_RENDERER
        )
        seg = np.reshape(np.asarray(seg), (h, w))
        body_ids = set(np.unique(seg[seg >= 0] & ((1 << 24) - 1)).tolist())
        names = {name for name, body in bodies.items() if body in body_ids}
        seen_objects = {n for n in names if not spec.object(n).structure}  # type: ignore[attr-defined]
        assert len(seen_objects) >= 10, sorted(names)
        assert {"SofaC_01_001", "FloorB_01_001"} <= names
        assert np.asarray(rgb).reshape(h, w, 4)[..., :3].std() > 10  # not a blank image
    finally:
        client.disconnect()


def test_small_house_through_the_simulator(
    small_house: tuple[object, WorldImportStats],
) -> None:
    pytest.importorskip("pybullet")
    from memory_sim.camera import CameraConfig, look_pose
    from memory_sim.simulator import SimConfig, Simulator

    spec, _ = small_house
    config = SimConfig(camera=CameraConfig(width_px=160, height_px=120))
    with Simulator(spec, config) as sim:  # type: ignore[arg-type]
        # Living room towards the kitchen, slightly down.
        step = sim.step(look_pose(np.array([-4.5, -0.49, 1.5]), 0.0, -0.2))
    labels = {label for label, _ in (step.frame.instance_labels or {}).values()}
    assert {"sofa", "refrigerator", "kitchen cabinet"} <= labels, sorted(labels)
    assert len(step.frame.instance_labels or {}) >= 8  # 31 at 640 x 480, 9 at 160 x 120
    # Walls and floors are rendered but never instances.
    assert not labels & {"floor", "house wall", "room wall"}
