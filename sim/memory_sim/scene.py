"""Scene description shared by every scene source, and its loader into a pybullet client.

A :class:`SceneSpec` is plain data: rooms, door openings between rooms (portals) and objects.
The procedural generator (:mod:`memory_sim.procedural`) and the Gazebo importer
(:mod:`memory_sim.gazebo`) both emit one; :func:`load_scene` puts it into a pybullet client.

Geometry of an object is either

* a URDF file (``ObjectSpec.urdf``, absolute or relative to ``pybullet_data``) loaded with a
  uniform ``scale``; or
* a list of parts (:class:`PartSpec`): primitives (box, cylinder, sphere) or meshes (OBJ/STL with
  a per-axis ``mesh_scale``), each with a pose in the object's frame. A part may exist only in some
  states of the object (a drawer pulled out when ``open``, a bright shade when a lamp is ``on``),
  which is how articulated states are rendered: changing the state rebuilds the body.

Frames and units: poses are metres and unit quaternions (x, y, z, w) in the ``map`` frame (z up)
for objects, in the object's frame for parts. All bodies are kinematic (mass 0, fixed base):
nothing falls, so objects must be posed resting on their support.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

LOG = logging.getLogger(__name__)

PRIMITIVE_SHAPES = ("box", "cylinder", "sphere", "mesh")


class SceneError(ValueError):
    """A scene description that cannot be loaded; the message names the object and the cause."""


@dataclass
class Pose:
    """A rigid pose.

    Attributes:
        position: (x, y, z) metres.
        orientation_xyzw: unit quaternion (x, y, z, w).
    """

    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    @classmethod
    def from_xyz_rpy(
        cls, position: Any, roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0
    ) -> Pose:
        """Make a pose from a position (metres) and roll/pitch/yaw (radians, fixed axes X-Y-Z)."""
        q = pybullet.getQuaternionFromEuler((roll, pitch, yaw))
        return cls(tuple(float(v) for v in position), tuple(float(v) for v in q))  # type: ignore[arg-type]

    @classmethod
    def from_matrix(cls, T: np.ndarray) -> Pose:
        """Make a pose from a (4, 4) homogeneous transform."""
        R = np.asarray(T, dtype=np.float64)[:3, :3]
        q = _quaternion_from_rotation(R)
        return cls(tuple(float(v) for v in np.asarray(T)[:3, 3]), q)  # type: ignore[arg-type]

    def matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous transform of this pose."""
        T = np.eye(4)
        T[:3, :3] = np.asarray(pybullet.getMatrixFromQuaternion(self.orientation_xyzw)).reshape(
            3, 3
        )
        T[:3, 3] = self.position
        return T

    @property
    def yaw(self) -> float:
        """Rotation about z, radians (from the quaternion's Euler decomposition)."""
        return float(pybullet.getEulerFromQuaternion(self.orientation_xyzw)[2])

    def is_finite(self) -> bool:
        """Tell whether every coordinate is finite and the quaternion has a non-zero norm."""
        values = np.asarray([*self.position, *self.orientation_xyzw], dtype=np.float64)
        return (
            bool(np.all(np.isfinite(values)))
            and float(np.linalg.norm(self.orientation_xyzw)) > 1e-6
        )


@dataclass
class PartSpec:
    """One rigid piece of an object built from primitives or meshes.

    Attributes:
        shape: "box", "cylinder", "sphere" or "mesh".
        size: metres; box: full extents (x, y, z); cylinder: (diameter, diameter, height) along
            the part's z; sphere: (diameter, diameter, diameter). Ignored for meshes.
        mesh_path: OBJ or STL file for ``shape == "mesh"`` (absolute, or relative to
            pybullet_data).
        mesh_scale: per-axis scale applied to the mesh vertices (e.g. 0.01 for centimetres).
        pose: pose of the part in the object's frame.
        rgba: colour in [0, 1]; None keeps the mesh's own material/texture.
        states: the object states in which this part exists; empty = always.
    """

    shape: str
    size: tuple[float, float, float] = (0.1, 0.1, 0.1)
    mesh_path: str = ""
    mesh_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pose: Pose = field(default_factory=Pose)
    rgba: tuple[float, float, float, float] | None = (0.7, 0.7, 0.7, 1.0)
    states: tuple[str, ...] = ()


@dataclass
class ObjectSpec:
    """One body of a scene.

    Attributes:
        name: unique in the scene and stable, e.g. "kitchen/mug_1"; episodes refer to it.
        label: class label, e.g. "mug", "table", "door" (ground truth for the instance image).
        pose: pose of the object's base in the map frame.
        urdf: URDF file (absolute, or relative to pybullet_data); exclusive with ``parts``.
        scale: uniform scale of the URDF (pybullet's globalScaling).
        parts: primitives/meshes making the object when ``urdf`` is empty.
        rgba: optional colour applied to every link of a URDF (None keeps its materials).
        room: name of the room holding the object ("" when outside every room).
        static: True for furniture and fixtures, False for movable objects.
        structure: walls, floors, ceilings: rendered but never given an instance id, and not
            part of the object ground truth.
        state: current state, e.g. "open", "closed", "on", "off"; "" for stateless objects.
        states: the states the object can take ("" not included); empty for stateless objects.
    """

    name: str
    label: str
    pose: Pose = field(default_factory=Pose)
    urdf: str = ""
    scale: float = 1.0
    parts: tuple[PartSpec, ...] = ()
    rgba: tuple[float, float, float, float] | None = None
    room: str = ""
    static: bool = True
    structure: bool = False
    state: str = ""
    states: tuple[str, ...] = ()


@dataclass
class RoomSpec:
    """A named room: an axis-aligned floor rectangle.

    Attributes:
        name: unique, e.g. "kitchen" or "bedroom_2".
        label: room type, e.g. "kitchen", "living room", "bedroom".
        min_xy: (2,) lower corner, metres, map frame.
        max_xy: (2,) upper corner, metres, map frame.
    """

    name: str
    label: str
    min_xy: tuple[float, float]
    max_xy: tuple[float, float]

    @property
    def center_xy(self) -> tuple[float, float]:
        """Centre of the floor rectangle, metres, map frame."""
        return (
            0.5 * (self.min_xy[0] + self.max_xy[0]),
            0.5 * (self.min_xy[1] + self.max_xy[1]),
        )

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Tell whether (x, y) lies inside the rectangle shrunk by ``margin`` metres."""
        return (
            self.min_xy[0] + margin <= x <= self.max_xy[0] - margin
            and self.min_xy[1] + margin <= y <= self.max_xy[1] - margin
        )


@dataclass
class PortalSpec:
    """A walkable opening (doorway) between two rooms.

    Attributes:
        room_a, room_b: names of the connected rooms.
        position_xy: (2,) centre of the opening on the wall, metres, map frame.
        width_m: clear width of the opening.
        normal_xy: (2,) unit direction from room_a into room_b.
    """

    room_a: str
    room_b: str
    position_xy: tuple[float, float]
    width_m: float
    normal_xy: tuple[float, float]


@dataclass
class SceneSpec:
    """A whole scene: rooms, doorways and bodies.

    Attributes:
        name: e.g. "procedural_seed7" or "small_house".
        rooms: rooms (may be empty for a scene without room annotations).
        portals: doorways between rooms, used by coverage paths.
        objects: every body, structure included.
        source: free text saying where the scene came from (generator and seed, world file).
    """

    name: str
    rooms: list[RoomSpec] = field(default_factory=list)
    portals: list[PortalSpec] = field(default_factory=list)
    objects: list[ObjectSpec] = field(default_factory=list)
    source: str = ""

    def object(self, name: str) -> ObjectSpec:
        """Return the object called ``name``; raise SceneError when absent."""
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise SceneError(f"scene {self.name!r} has no object named {name!r}")

    def room(self, name: str) -> RoomSpec:
        """Return the room called ``name``; raise SceneError when absent."""
        for room in self.rooms:
            if room.name == name:
                return room
        raise SceneError(f"scene {self.name!r} has no room named {name!r}")

    def room_at(self, x: float, y: float) -> str:
        """Name of the room containing (x, y), metres, map frame; "" when none."""
        for room in self.rooms:
            if room.contains(x, y):
                return room.name
        return ""

    def validate(self) -> None:
        """Check names, geometry, states and poses; raise SceneError naming the first fault."""
        names: set[str] = set()
        rooms = {r.name for r in self.rooms}
        if len(rooms) != len(self.rooms):
            raise SceneError(f"scene {self.name!r}: duplicate room names")
        for portal in self.portals:
            for room_name in (portal.room_a, portal.room_b):
                if room_name not in rooms:
                    raise SceneError(
                        f"scene {self.name!r}: portal names unknown room {room_name!r}"
                    )
        for obj in self.objects:
            if obj.name in names:
                raise SceneError(f"scene {self.name!r}: duplicate object name {obj.name!r}")
            names.add(obj.name)
            validate_object(obj)
            if obj.room and obj.room not in rooms:
                raise SceneError(f"object {obj.name!r}: unknown room {obj.room!r}")


def validate_object(obj: ObjectSpec) -> None:
    """Check one object's geometry, state and pose; raise SceneError naming it."""
    if not obj.name:
        raise SceneError(f"an object with label {obj.label!r} has an empty name")
    if not obj.pose.is_finite():
        raise SceneError(f"object {obj.name!r}: non-finite pose {obj.pose}")
    if bool(obj.urdf) == bool(obj.parts):
        raise SceneError(f"object {obj.name!r}: give exactly one of urdf or parts")
    if not (math.isfinite(obj.scale) and obj.scale > 0):
        raise SceneError(f"object {obj.name!r}: scale must be positive, got {obj.scale}")
    if obj.state and obj.state not in obj.states:
        raise SceneError(f"object {obj.name!r}: state {obj.state!r} not in {list(obj.states)}")
    if obj.states and not obj.state:
        raise SceneError(f"object {obj.name!r}: has states {list(obj.states)} but no state")
    for i, part in enumerate(obj.parts):
        if part.shape not in PRIMITIVE_SHAPES:
            raise SceneError(
                f"object {obj.name!r} part {i}: shape {part.shape!r} not in {PRIMITIVE_SHAPES}"
            )
        if part.shape == "mesh" and not part.mesh_path:
            raise SceneError(f"object {obj.name!r} part {i}: mesh part without mesh_path")
        if part.shape != "mesh" and not all(math.isfinite(s) and s > 0 for s in part.size):
            raise SceneError(f"object {obj.name!r} part {i}: size must be positive {part.size}")
        if not part.pose.is_finite():
            raise SceneError(f"object {obj.name!r} part {i}: non-finite pose")
        unknown = set(part.states) - set(obj.states)
        if unknown:
            raise SceneError(f"object {obj.name!r} part {i}: unknown states {sorted(unknown)}")


def resolve_asset_path(path: str, owner: str) -> str:
    """Absolute path of an asset given absolute or relative to pybullet_data.

    Raises:
        SceneError: the file does not exist (the message names ``owner``, the object).
    """
    candidates = (
        [path] if os.path.isabs(path) else [path, os.path.join(pybullet_data.getDataPath(), path)]
    )
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise SceneError(f"object {owner!r}: asset file not found: {path!r}")


def spawn_object(client: BulletClient, obj: ObjectSpec) -> int:
    """Create the body of ``obj`` in its current state; returns the pybullet body unique id.

    Raises:
        SceneError: invalid spec, missing asset, or pybullet refusing the file.
    """
    validate_object(obj)
    position = list(obj.pose.position)
    orientation = list(obj.pose.orientation_xyzw)
    if obj.urdf:
        path = resolve_asset_path(obj.urdf, obj.name)
        try:
            body = client.loadURDF(
                path,
                basePosition=position,
                baseOrientation=orientation,
                useFixedBase=True,
                globalScaling=float(obj.scale),
            )
        except pybullet.error as exc:
            raise SceneError(f"object {obj.name!r}: pybullet cannot load {path!r}: {exc}") from exc
        if obj.rgba is not None:
            for link in range(-1, client.getNumJoints(body)):
                client.changeVisualShape(body, link, rgbaColor=list(obj.rgba))
        return int(body)

    parts = [p for p in obj.parts if not p.states or obj.state in p.states]
    if not parts:
        raise SceneError(f"object {obj.name!r}: no part exists in state {obj.state!r}")
    visual_ids: list[int] = []
    collision_ids: list[int] = []
    for i, part in enumerate(parts):
        visual_ids.append(_make_shape(client, obj, i, part, visual=True))
        collision_ids.append(_make_shape(client, obj, i, part, visual=False))
    n = len(parts)
    body = client.createMultiBody(
        baseMass=0.0,
        baseCollisionShapeIndex=-1,
        baseVisualShapeIndex=-1,
        basePosition=position,
        baseOrientation=orientation,
        linkMasses=[0.0] * n,
        linkCollisionShapeIndices=collision_ids,
        linkVisualShapeIndices=visual_ids,
        linkPositions=[list(p.pose.position) for p in parts],
        linkOrientations=[list(p.pose.orientation_xyzw) for p in parts],
        linkInertialFramePositions=[[0.0, 0.0, 0.0]] * n,
        linkInertialFrameOrientations=[[0.0, 0.0, 0.0, 1.0]] * n,
        linkParentIndices=[0] * n,
        linkJointTypes=[pybullet.JOINT_FIXED] * n,
        linkJointAxis=[[0.0, 0.0, 1.0]] * n,
    )
    if body < 0:
        raise SceneError(f"object {obj.name!r}: pybullet refused the multibody")
    return int(body)


def _make_shape(
    client: BulletClient, obj: ObjectSpec, index: int, part: PartSpec, visual: bool
) -> int:
    """Create one visual or collision shape of a part; returns its shape id."""
    kwargs: dict[str, Any] = {}
    if part.shape == "box":
        kwargs = {"shapeType": pybullet.GEOM_BOX, "halfExtents": [0.5 * s for s in part.size]}
    elif part.shape == "sphere":
        kwargs = {"shapeType": pybullet.GEOM_SPHERE, "radius": 0.5 * part.size[0]}
    elif part.shape == "cylinder":
        kwargs = {"shapeType": pybullet.GEOM_CYLINDER, "radius": 0.5 * part.size[0]}
        kwargs["length" if visual else "height"] = part.size[2]
    else:
        path = resolve_asset_path(part.mesh_path, obj.name)
        kwargs = {
            "shapeType": pybullet.GEOM_MESH,
            "fileName": path,
            "meshScale": list(part.mesh_scale),
        }
    try:
        if visual:
            if part.rgba is not None:
                kwargs["rgbaColor"] = list(part.rgba)
            shape = client.createVisualShape(**kwargs)
        else:
            shape = client.createCollisionShape(**kwargs)
    except pybullet.error as exc:
        raise SceneError(
            f"object {obj.name!r} part {index}: pybullet refused the shape: {exc}"
        ) from exc
    if shape < 0:
        raise SceneError(f"object {obj.name!r} part {index}: pybullet refused the shape")
    return int(shape)


def body_aabb(client: BulletClient, body: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds of a body's collision geometry over all links.

    Returns:
        (box_min, box_max): (3,) float64 each, metres, map frame.
    """
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    for link in range(-1, client.getNumJoints(body)):
        if not client.getCollisionShapeData(body, link):
            continue
        lo, hi = client.getAABB(body, link)
        lows.append(np.asarray(lo, dtype=np.float64))
        highs.append(np.asarray(hi, dtype=np.float64))
    if not lows:
        lo, hi = client.getAABB(body, -1)
        return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return np.min(lows, axis=0), np.max(highs, axis=0)


def load_scene(client: BulletClient, spec: SceneSpec) -> dict[str, int]:
    """Validate ``spec`` and create all its bodies in ``client``.

    Returns:
        object name -> pybullet body unique id.

    Raises:
        SceneError: the first invalid object, naming it.
    """
    spec.validate()
    bodies: dict[str, int] = {}
    for obj in spec.objects:
        bodies[obj.name] = spawn_object(client, obj)
    LOG.info("loaded scene %s: %d bodies, %d rooms", spec.name, len(bodies), len(spec.rooms))
    return bodies


def scene_to_dict(spec: SceneSpec) -> dict[str, Any]:
    """JSON-serialisable dictionary of a scene (inverse of :func:`scene_from_dict`)."""
    return dataclasses.asdict(spec)


def scene_from_dict(data: dict[str, Any]) -> SceneSpec:
    """Rebuild a SceneSpec from :func:`scene_to_dict` output; raises SceneError on bad data."""
    try:

        def pose(d: dict[str, Any]) -> Pose:
            return Pose(tuple(d["position"]), tuple(d["orientation_xyzw"]))

        def part(d: dict[str, Any]) -> PartSpec:
            d = dict(d)
            d["pose"] = pose(d["pose"])
            for key in ("size", "mesh_scale", "states"):
                d[key] = tuple(d[key])
            d["rgba"] = None if d.get("rgba") is None else tuple(d["rgba"])
            return PartSpec(**d)

        objects = []
        for d in data["objects"]:
            d = dict(d)
            d["pose"] = pose(d["pose"])
            d["parts"] = tuple(part(p) for p in d.get("parts", ()))
            d["states"] = tuple(d.get("states", ()))
            d["rgba"] = None if d.get("rgba") is None else tuple(d["rgba"])
            objects.append(ObjectSpec(**d))
        rooms = [
            RoomSpec(r["name"], r["label"], tuple(r["min_xy"]), tuple(r["max_xy"]))
            for r in data.get("rooms", [])
        ]
        portals = [
            PortalSpec(
                p["room_a"],
                p["room_b"],
                tuple(p["position_xy"]),
                float(p["width_m"]),
                tuple(p["normal_xy"]),
            )
            for p in data.get("portals", [])
        ]
    except (KeyError, TypeError) as exc:
        raise SceneError(f"malformed scene dictionary: {exc!r}") from exc
    return SceneSpec(
        name=str(data.get("name", "")),
        rooms=rooms,
        portals=portals,
        objects=objects,
        source=str(data.get("source", "")),
    )


def _quaternion_from_rotation(R: np.ndarray) -> tuple[float, float, float, float]:
    """Return the unit quaternion (x, y, z, w) of a (3, 3) rotation matrix."""
    trace = float(np.trace(R))
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w = 0.25 * s
        x = (R[2, 1] - R[1, 2]) / s
        y = (R[0, 2] - R[2, 0]) / s
        z = (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        w = (R[2, 1] - R[1, 2]) / s
        x = 0.25 * s
        y = (R[0, 1] + R[1, 0]) / s
        z = (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        w = (R[0, 2] - R[2, 0]) / s
        x = (R[0, 1] + R[1, 0]) / s
        y = 0.25 * s
        z = (R[1, 2] + R[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        w = (R[1, 0] - R[0, 1]) / s
        x = (R[0, 2] + R[2, 0]) / s
        y = (R[1, 2] + R[2, 1]) / s
        z = 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    return (float(q[0]), float(q[1]), float(q[2]), float(q[3]))
