"""Import a Gazebo SDF ``.world`` file into a :class:`memory_sim.scene.SceneSpec`.

Every top-level ``<model>`` and ``<include>`` of the ``<world>`` becomes one
:class:`~memory_sim.scene.ObjectSpec` named after the instance (``<model name>`` or the include's
``<name>``, else the included model's name). Its geometry is the union of the ``<visual>``s of
all its links, nested models and nested includes, each as mesh or primitive
:class:`~memory_sim.scene.PartSpec`s posed in the instance's frame. Collisions, physics, lights,
plugins and actors are ignored.

``model://NAME[/sub/path]`` URIs are resolved against a list of model directories (like
``GAZEBO_MODEL_PATH``); ``file://`` URIs and plain paths are taken relative to the file that
names them. Meshes (DAE, OBJ, STL) are converted once into cached textured OBJ parts by
:class:`memory_sim.mesh_cache.MeshCache`, which applies the COLLADA unit scale and up axis.

Frames and units: SDF poses are ``x y z roll pitch yaw`` (metres, radians; rotation
Rz(yaw) Ry(pitch) Rx(roll)), each relative to its parent element; the world frame is the map frame
(z up). ``ObjectSpec.pose`` is the instance's model frame in the world, so it equals the pose
written in the world file.

Labels come from instance names: ``Bed_01_001`` -> "bed", ``ChairA_01_005`` -> "chair",
``KitchenCabinet_01`` -> "kitchen cabinet" (see :func:`label_from_name`). Walls, floors and
ceilings are flagged ``structure=True`` (rendered, never an instance).

Usage::

    from memory_sim.gazebo import import_world
    from memory_sim.scene import load_scene

    spec = import_world("worlds/small_house.world", model_paths=["models"])
    bodies = load_scene(client, spec)  # client: a pybullet BulletClient
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np

from memory_sim.bridges.conversions import label_from_identifier
from memory_sim.mesh_cache import MeshCache, MeshConversionError
from memory_sim.scene import ObjectSpec, PartSpec, Pose, RoomSpec, SceneSpec

LOG = logging.getLogger(__name__)

#: Words of a label that make an instance building structure rather than an object.
STRUCTURE_WORDS = frozenset({"wall", "walls", "floor", "ceiling", "ground"})

#: Environment variables holding ``:``-separated model directories, read when no list is given.
MODEL_PATH_ENV_VARS = ("GAZEBO_MODEL_PATH", "GZ_SIM_RESOURCE_PATH", "IGN_GAZEBO_RESOURCE_PATH")

_MAX_NESTING = 16


class WorldImportError(RuntimeError):
    """A world that cannot be imported.

    Attributes:
        path: the file at fault (world, model.sdf or mesh).
        line: 1-based line in ``path`` when known, else None.
        element: the instance/model/element concerned, "" when not applicable.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None, element: str = ""):
        self.path = Path(path)
        self.line = line
        self.element = element
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        what = f" ({element})" if element else ""
        super().__init__(f"{where}{what}: {message}")


def label_from_name(name: str) -> str:
    """Class label of an instance name: camel case split, variants and numbers removed.

    ``Bed_01_001`` -> "bed", ``ChairA_01_005`` -> "chair", ``KitchenCabinet_01`` ->
    "kitchen cabinet", ``TVCabinet_01_001`` -> "tv cabinet", ``cafe_table`` -> "cafe table".
    Single capital letters (variant letters such as the A of ``ChairA``) and all-digit tokens are
    dropped; "" when nothing is left.
    """
    return label_from_identifier(name)


def is_structure_label(label: str) -> bool:
    """Tell whether a label names building structure (wall, floor, ceiling, ground)."""
    return any(w in STRUCTURE_WORDS for w in label.split())


@dataclass
class _Xml:
    """A parsed XML file that remembers each element's line number."""

    path: Path
    root: ET.Element
    lines: dict[int, int]

    def line(self, element: ET.Element) -> int | None:
        return self.lines.get(id(element))

    def error(self, element: ET.Element | None, message: str, name: str = "") -> WorldImportError:
        line = self.line(element) if element is not None else None
        return WorldImportError(self.path, message, line=line, element=name)


def _parse_xml(path: Path) -> _Xml:
    """Parse an XML file keeping element line numbers; WorldImportError when malformed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorldImportError(path, f"cannot read file: {exc.strerror or exc}") from exc
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise WorldImportError(
            path, f"malformed XML: {expat.ErrorString(exc.code)}", line=exc.lineno
        ) from exc
    return _Xml(path=path, root=builder.close(), lines=lines)


def _floats(
    xml: _Xml, element: ET.Element, count: int | tuple[int, ...], what: str
) -> list[float]:
    counts = (count,) if isinstance(count, int) else count
    text = (element.text or "").split()
    try:
        values = [float(t) for t in text]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise xml.error(
            element,
            f"<{element.tag}> of {what} must hold {' or '.join(map(str, counts))} "
            f"finite numbers, got {element.text!r}",
        )
    return values


def _rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(3, 3) rotation Rz(yaw) @ Ry(pitch) @ Rx(roll), the SDF/URDF convention."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def sdf_pose_matrix(values: Sequence[float], degrees: bool = False) -> np.ndarray:
    """(4, 4) transform of an SDF pose ``x y z roll pitch yaw`` or ``x y z qx qy qz qw``.

    Args:
        values: 6 numbers (metres, then radians, or degrees when ``degrees``) or 7 numbers
            (metres, then a quaternion x, y, z, w, normalised here).
        degrees: the angles of a 6-number pose are in degrees (SDF ``degrees="true"``).
    """
    T = np.eye(4)
    T[:3, 3] = values[:3]
    if len(values) == 7:
        x, y, z, w = np.asarray(values[3:], dtype=np.float64) / np.linalg.norm(values[3:])
        T[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    else:
        rpy = [math.radians(v) for v in values[3:6]] if degrees else list(values[3:6])
        T[:3, :3] = _rotation_rpy(*rpy)
    return T


def _pose_of(xml: _Xml, element: ET.Element, what: str) -> np.ndarray | None:
    """Transform of ``element``'s direct ``<pose>`` child, None when it has none."""
    pose = element.find("pose")
    if pose is None:
        return None
    frame = pose.get("relative_to") or pose.get("frame")
    if frame:
        raise xml.error(
            pose,
            f"<pose> relative to frame {frame!r} is not supported (only parent-relative)",
            what,
        )
    quat = pose.get("rotation_format", "euler_rpy") == "quat_xyzw"
    values = _floats(xml, pose, 7 if quat else 6, what)
    return sdf_pose_matrix(values, degrees=pose.get("degrees", "false").lower() == "true")


def _is_true(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true")


class ModelResolver:
    """Finds Gazebo models and the files their URIs name.

    Args:
        model_paths: directories holding model folders (each with ``model.config``/``model.sdf``),
            searched in order, like ``GAZEBO_MODEL_PATH``.
    """

    def __init__(self, model_paths: Iterable[str | Path]) -> None:
        self.model_paths = [Path(p).expanduser() for p in model_paths]

    def model_dir(self, name: str) -> Path | None:
        """Folder of model ``name`` in the first model path holding it, None when none does."""
        for root in self.model_paths:
            candidate = root / name
            if candidate.is_dir():
                return candidate
        return None

    def resolve(self, uri: str, referrer: Path) -> Path:
        """Path named by ``uri`` (``model://``, ``file://`` or a path relative to ``referrer``).

        Raises:
            LookupError: the model is not in any model path, or the URI scheme is unsupported.
        """
        uri = uri.strip()
        if uri.startswith("model://"):
            rest = urllib.parse.unquote(uri[len("model://") :])
            name, _, sub = rest.partition("/")
            folder = self.model_dir(name)
            if folder is None:
                searched = ", ".join(str(p) for p in self.model_paths) or "(no model paths)"
                raise LookupError(f"unknown model {name!r} ({uri}); searched: {searched}")
            return folder / sub if sub else folder
        if uri.startswith("file://"):
            rest = urllib.parse.unquote(uri[len("file://") :])
            p = Path(rest)
            return p if p.is_absolute() else referrer.parent / p
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", uri):
            raise LookupError(f"unsupported URI scheme in {uri!r} (no network access for models)")
        p = Path(uri)
        return p if p.is_absolute() else referrer.parent / p


def _model_sdf_file(folder: Path) -> Path:
    """SDF file of a model folder: highest-version ``<sdf>`` of model.config, else model.sdf."""
    config = folder / "model.config"
    if config.is_file():
        cfg = _parse_xml(config)
        best: tuple[tuple[int, ...], str] | None = None
        for sdf in cfg.root.iter("sdf"):
            version = tuple(int(v) for v in re.findall(r"\d+", sdf.get("version", "0")))
            if sdf.text and (best is None or version > best[0]):
                best = (version, sdf.text.strip())
        if best is not None:
            return folder / best[1]
    return folder / "model.sdf"


@dataclass
class WorldImportStats:
    """Figures of one import.

    Attributes:
        seconds: wall time of the whole import (parsing and mesh conversion).
        meshes_converted: mesh files converted during this import (cache misses).
        meshes_cached: mesh files found already converted.
        missing_textures: "mesh: texture" entries for texture files that do not exist.
    """

    seconds: float = 0.0
    meshes_converted: int = 0
    meshes_cached: int = 0
    missing_textures: list[str] = field(default_factory=list)


class _Importer:
    """State of one world import (resolver, mesh cache, parsed model files)."""

    def __init__(self, resolver: ModelResolver, cache: MeshCache) -> None:
        self.resolver = resolver
        self.cache = cache
        self.stats = WorldImportStats()
        self._sdf_files: dict[Path, _Xml] = {}
        self._meshes_seen: set[Path] = set()

    def model_element(self, xml: _Xml, include: ET.Element, owner: str) -> tuple[_Xml, ET.Element]:
        """Load the ``<model>`` an ``<include>`` names."""
        uri_el = include.find("uri")
        if uri_el is None or not (uri_el.text or "").strip():
            raise xml.error(include, "<include> without <uri>", owner)
        uri = (uri_el.text or "").strip()
        try:
            target = self.resolver.resolve(uri, xml.path)
        except LookupError as exc:
            raise xml.error(uri_el, str(exc), owner) from exc
        sdf_path = _model_sdf_file(target) if target.is_dir() else target
        if not sdf_path.is_file():
            raise xml.error(uri_el, f"model file not found: {sdf_path} (from {uri})", owner)
        sdf_path = sdf_path.resolve()
        if sdf_path not in self._sdf_files:
            self._sdf_files[sdf_path] = _parse_xml(sdf_path)
        model_xml = self._sdf_files[sdf_path]
        model = model_xml.root.find("model") if model_xml.root.tag == "sdf" else None
        if model is None and model_xml.root.tag == "model":
            model = model_xml.root
        if model is None:
            raise model_xml.error(model_xml.root, f"no <model> in {sdf_path} (included as {uri})")
        return model_xml, model

    def collect(
        self,
        xml: _Xml,
        model: ET.Element,
        parent_T: np.ndarray,
        pose_override: np.ndarray | None,
        owner: str,
        parts: list[PartSpec],
        depth: int = 0,
    ) -> None:
        """Append the visuals of ``model`` (links, nested models, includes) to ``parts``.

        Args:
            xml: the parsed file holding ``model``.
            model: a ``<model>`` element.
            parent_T: (4, 4) pose of the model's parent frame in the instance frame.
            pose_override: pose replacing the model's own ``<pose>`` (an include's pose).
            owner: instance name, for error messages.
            parts: output list.
            depth: nesting depth, to stop include loops.
        """
        if depth > _MAX_NESTING:
            raise xml.error(
                model, f"models nested deeper than {_MAX_NESTING} (include loop?)", owner
            )
        own = _pose_of(xml, model, owner)
        T = parent_T @ (
            pose_override if pose_override is not None else (own if own is not None else np.eye(4))
        )
        for link in model.findall("link"):
            link_T = T @ _or_identity(_pose_of(xml, link, owner))
            for visual in link.findall("visual"):
                visual_T = link_T @ _or_identity(_pose_of(xml, visual, owner))
                parts.extend(self.visual_parts(xml, visual, visual_T, owner))
        for nested in model.findall("model"):
            self.collect(xml, nested, T, None, owner, parts, depth + 1)
        for include in model.findall("include"):
            inc_xml, inc_model = self.model_element(xml, include, owner)
            self.collect(
                inc_xml, inc_model, T, _pose_of(xml, include, owner), owner, parts, depth + 1
            )

    def visual_parts(
        self, xml: _Xml, visual: ET.Element, T: np.ndarray, owner: str
    ) -> list[PartSpec]:
        """Parts of one ``<visual>`` posed by ``T`` (4, 4) in the instance frame."""
        geometry = visual.find("geometry")
        if geometry is None or len(geometry) == 0:
            raise xml.error(visual, "<visual> without <geometry>", owner)
        shape = geometry[0]
        pose = Pose.from_matrix(T)
        rgba = _material_rgba(xml, visual, owner)
        if shape.tag == "mesh":
            return self.mesh_parts(xml, shape, pose, owner)
        if shape.tag == "box":
            size = tuple(_floats(xml, _child(xml, shape, "size", owner), 3, owner))
        elif shape.tag == "sphere":
            d = 2.0 * _floats(xml, _child(xml, shape, "radius", owner), 1, owner)[0]
            size = (d, d, d)
        elif shape.tag == "cylinder":
            d = 2.0 * _floats(xml, _child(xml, shape, "radius", owner), 1, owner)[0]
            size = (d, d, _floats(xml, _child(xml, shape, "length", owner), 1, owner)[0])
        elif shape.tag == "plane":
            normal = shape.find("normal")
            if normal is not None and not np.allclose(_floats(xml, normal, 3, owner), (0, 0, 1)):
                raise xml.error(normal, "only planes with normal 0 0 1 are supported", owner)
            size_el = shape.find("size")
            sx, sy = _floats(xml, size_el, 2, owner) if size_el is not None else (100.0, 100.0)
            # A plane is rendered as a 1 cm slab whose top face is the plane.
            slab = T @ sdf_pose_matrix([0, 0, -0.005, 0, 0, 0])
            return [
                PartSpec(
                    shape="box",
                    size=(sx, sy, 0.01),
                    pose=Pose.from_matrix(slab),
                    rgba=rgba or (0.8, 0.8, 0.8, 1.0),
                )
            ]
        elif shape.tag == "empty":
            return []
        else:
            raise xml.error(shape, f"unsupported geometry <{shape.tag}>", owner)
        if shape.tag == "box" and not all(s > 0 for s in size):
            raise xml.error(shape, f"box size must be positive, got {size}", owner)
        if not all(s > 0 for s in size):
            raise xml.error(shape, f"<{shape.tag}> dimensions must be positive", owner)
        return [
            PartSpec(shape=shape.tag, size=size, pose=pose, rgba=rgba or (0.7, 0.7, 0.7, 1.0))  # type: ignore[arg-type]
        ]

    def mesh_parts(self, xml: _Xml, mesh: ET.Element, pose: Pose, owner: str) -> list[PartSpec]:
        """Convert a ``<mesh>`` geometry into OBJ parts posed by ``pose``."""
        uri_el = _child(xml, mesh, "uri", owner)
        uri = (uri_el.text or "").strip()
        if mesh.find("submesh") is not None:
            raise xml.error(mesh.find("submesh"), "<submesh> is not supported", owner)
        scale_el = mesh.find("scale")
        scale = (
            tuple(_floats(xml, scale_el, 3, owner)) if scale_el is not None else (1.0, 1.0, 1.0)
        )
        try:
            path = self.resolver.resolve(uri, xml.path)
        except LookupError as exc:
            raise xml.error(uri_el, str(exc), owner) from exc
        if not path.is_file():
            raise xml.error(uri_el, f"mesh file not found: {path} (from {uri})", owner)
        try:
            converted = self.cache.convert(path)
        except MeshConversionError as exc:
            raise WorldImportError(
                path,
                f"{exc} (mesh of {owner}, named at {xml.path}:{xml.line(uri_el)})",
                element=owner,
            ) from exc
        if converted.source not in self._meshes_seen:
            self._meshes_seen.add(converted.source)
            if converted.from_cache:
                self.stats.meshes_cached += 1
            else:
                self.stats.meshes_converted += 1
            self.stats.missing_textures += [f"{path}: {t}" for t in converted.missing_textures]
        return [
            PartSpec(
                shape="mesh",
                mesh_path=str(part.obj_path),
                mesh_scale=scale,  # type: ignore[arg-type]
                pose=pose,
                rgba=None if part.texture_path is not None else part.rgba,
            )
            for part in converted.parts
        ]


def _or_identity(T: np.ndarray | None) -> np.ndarray:
    return np.eye(4) if T is None else T


def _child(xml: _Xml, element: ET.Element, tag: str, owner: str) -> ET.Element:
    child = element.find(tag)
    if child is None:
        raise xml.error(element, f"<{element.tag}> without <{tag}>", owner)
    return child


def _material_rgba(
    xml: _Xml, visual: ET.Element, owner: str
) -> tuple[float, float, float, float] | None:
    """Diffuse colour of a visual's ``<material>``, None when it names none."""
    diffuse = visual.find("material/diffuse")
    if diffuse is None:
        return None
    values = _floats(xml, diffuse, (3, 4), owner)
    if len(values) == 3:
        values.append(1.0)
    return tuple(min(max(v, 0.0), 1.0) for v in values)  # type: ignore[return-value]


def default_model_paths(world_path: str | Path) -> list[Path]:
    """Model directories used when none are given.

    The ``:``-separated entries of ``GAZEBO_MODEL_PATH``, ``GZ_SIM_RESOURCE_PATH`` and
    ``IGN_GAZEBO_RESOURCE_PATH``, then ``<world dir>/models`` and ``<world dir>/../models`` (the
    layout of Gazebo world packages such as the AWS RoboMaker worlds).
    """
    paths: list[Path] = []
    for var in MODEL_PATH_ENV_VARS:
        paths += [Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p]
    world_dir = Path(world_path).resolve().parent
    paths += [world_dir / "models", world_dir.parent / "models"]
    return paths


def import_world(
    world_path: str | Path,
    model_paths: Iterable[str | Path] | None = None,
    cache: MeshCache | str | Path | None = None,
    name: str | None = None,
    stats: WorldImportStats | None = None,
    rooms: Sequence[RoomSpec] = (),
) -> SceneSpec:
    """Import a Gazebo SDF world into a SceneSpec (one ObjectSpec per top-level instance).

    Args:
        world_path: the ``.world``/``.sdf`` file.
        model_paths: folders searched for ``model://`` URIs, in order; None =
            :func:`default_model_paths`.
        cache: a MeshCache, or its directory; None = the default cache directory.
        name: scene name; default: the world file's stem.
        stats: filled with the import's figures when given.
        rooms: room rectangles to attach (SDF has no room annotations); each non-structure
            object gets the room containing its base position, "" when none does.

    Returns:
        The scene; object poses in the world (map) frame, parts in the object's frame.

    Raises:
        WorldImportError: malformed XML, unknown model URI, missing model or mesh file,
            unsupported geometry or pose, duplicate instance names, a world without ``<world>``;
            the message names the file, the line and the instance.
    """
    t0 = time.perf_counter()
    path = Path(world_path)
    if not path.is_file():
        raise WorldImportError(path, "world file not found")
    xml = _parse_xml(path)
    world = xml.root.find("world") if xml.root.tag == "sdf" else None
    if world is None:
        raise xml.error(xml.root, "no <sdf><world> element: not an SDF world file")
    resolver = ModelResolver(default_model_paths(path) if model_paths is None else model_paths)
    mesh_cache = cache if isinstance(cache, MeshCache) else MeshCache(cache)
    importer = _Importer(resolver, mesh_cache)
    state_poses = _state_poses(xml, world)

    objects: list[ObjectSpec] = []
    seen: dict[str, int | None] = {}
    for element in world:
        if element.tag in ("population", "actor"):
            LOG.warning(
                "%s:%s: <%s> is not imported (only <model> and <include> are)",
                path,
                xml.line(element),
                element.tag,
            )
        if element.tag not in ("model", "include"):
            continue
        parts: list[PartSpec] = []
        if element.tag == "model":
            instance = element.get("name", "")
            if not instance:
                raise xml.error(element, "<model> without a name")
            model_xml, model = xml, element
            static = _is_true(element.findtext("static"))
            world_T = _or_identity(_pose_of(xml, element, instance))
        else:
            model_xml, model = importer.model_element(xml, element, element.findtext("name", ""))
            instance = (element.findtext("name") or model.get("name") or "").strip()
            if not instance:
                raise xml.error(element, "<include> without <name> of a model without a name")
            static = _is_true(element.findtext("static")) or _is_true(model.findtext("static"))
            include_T = _pose_of(xml, element, instance)
            world_T = (
                include_T
                if include_T is not None
                else _or_identity(_pose_of(model_xml, model, instance))
            )
        if instance in seen:
            raise xml.error(
                element,
                f"duplicate instance name {instance!r} (first at line {seen[instance]})",
                instance,
            )
        seen[instance] = xml.line(element)
        # The instance's model frame is the object frame: its world pose goes to the object and
        # the visuals are collected relative to it (pose override = identity).
        importer.collect(model_xml, model, np.eye(4), np.eye(4), instance, parts)
        if instance in state_poses:
            world_T = state_poses[instance]
        if not parts:
            LOG.warning("%s: instance %s has no visual geometry; skipped", path, instance)
            continue
        label = label_from_name(instance)
        objects.append(
            ObjectSpec(
                name=instance,
                label=label,
                pose=Pose.from_matrix(world_T),
                parts=tuple(parts),
                static=static,
                structure=is_structure_label(label),
            )
        )
    spec = SceneSpec(
        name=name or path.stem,
        rooms=list(rooms),
        objects=objects,
        source=f"gazebo world {path.resolve()}",
    )
    for obj in spec.objects:
        if not obj.structure:
            obj.room = spec.room_at(obj.pose.position[0], obj.pose.position[1])
    importer.stats.seconds = time.perf_counter() - t0
    if stats is not None:
        stats.__dict__.update(importer.stats.__dict__)
    LOG.info(
        "imported %s: %d instances, %d meshes converted, %d cached, %.1f s",
        path,
        len(objects),
        importer.stats.meshes_converted,
        importer.stats.meshes_cached,
        importer.stats.seconds,
    )
    return spec


def _state_poses(xml: _Xml, world: ET.Element) -> dict[str, np.ndarray]:
    """Model poses saved in the world's ``<state>`` (they override the models' poses in Gazebo)."""
    poses: dict[str, np.ndarray] = {}
    for state in world.findall("state"):
        for model in state.findall("model"):
            T = _pose_of(xml, model, model.get("name", ""))
            if T is not None and model.get("name"):
                poses[model.get("name", "")] = T
    return poses


def main(argv: Sequence[str] | None = None) -> int:
    """Import a world and print its instances: ``python -m memory_sim.gazebo WORLD [...]``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("world", help="the .world file")
    parser.add_argument(
        "--model-path",
        action="append",
        default=None,
        help="folder of Gazebo models (repeatable); default: GAZEBO_MODEL_PATH, <world>/../models",
    )
    parser.add_argument("--cache", default=None, help="mesh cache folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stats = WorldImportStats()
    try:
        spec = import_world(args.world, args.model_path, cache=args.cache, stats=stats)
    except WorldImportError as exc:
        print(f"error: {exc}")
        return 1
    for obj in spec.objects:
        x, y, z = obj.pose.position
        kind = "structure" if obj.structure else "object"
        print(f"{obj.name:28s} {obj.label:20s} {kind:9s} {x:8.3f} {y:8.3f} {z:7.3f}")
    print(
        f"{len(spec.objects)} instances ({sum(o.structure for o in spec.objects)} structure), "
        f"{stats.meshes_converted} meshes converted, {stats.meshes_cached} cached, "
        f"{len(stats.missing_textures)} missing textures, {stats.seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
