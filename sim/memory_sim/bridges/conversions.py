"""Pure conversions from Habitat-sim and AI2-THOR outputs to the memory core's conventions.

numpy only: importable and testable without either simulator.

Target conventions (those of :class:`memory_node.core.types.Frame`):

* ``map`` frame: right-handed, z up, metres;
* camera optical frame: z forward, x right, y down;
* ``K``: pinhole intrinsics with pixel centres at integer coordinates, so a symmetric frustum of
  W x H pixels has ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``;
* instance image: int32, 0 = no instance.

**Habitat-sim** world frame: right-handed, y up; a camera (and the agent) looks along its -z with
x right and y up (the OpenGL camera frame). We map habitat coordinates to the map frame with
``x_map = -z_hab, y_map = -x_hab, z_map = y_hab`` (:data:`MAP_R_HABITAT`, a proper rotation), so
the default agent heading (-z) becomes the map's +x, as in ROS.

**AI2-THOR / Unity** world frame: *left-handed*, y up, x right, z forward. We map Unity
coordinates to the map frame with ``x_map = z_u, y_map = -x_u, z_map = y_u``
(:data:`MAP_M_UNITY`). Its determinant is -1: it is a reflection, which is exactly what turns a
left-handed frame into a right-handed one, so it must be applied to points and to each *axis* of
a Unity rotation (never composed as a rotation itself). Unity Euler angles act as the usual
rotation matrices on Unity coordinates: yaw about +y turns forward (+z) towards right (+x), i.e.
clockwise seen from above; a positive pitch about +x (AI2-THOR's ``cameraHorizon``) looks down.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: (3, 3) rotation taking habitat world coordinates (y up, -z forward) to map coordinates (z up).
MAP_R_HABITAT = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

#: (3, 3) reflection taking Unity coordinates (left-handed, y up, z forward) to map coordinates.
MAP_M_UNITY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

#: (3, 3) OpenGL camera axes (x right, y up, z backward) expressed in the optical frame.
_OPTICAL_R_GL = np.diag([1.0, -1.0, -1.0])


# ----------------------------------------------------------------------------- intrinsics


def intrinsics_from_hfov(width_px: int, height_px: int, hfov_deg: float) -> np.ndarray:
    """Pinhole K of a W x H camera with square pixels and a horizontal field of view.

    Habitat's ``CameraSensorSpec.hfov`` is horizontal. Returns (3, 3) float64.

    Raises:
        ValueError: non-positive size or a field of view outside (0, 180) degrees.
    """
    _check_camera(width_px, height_px, hfov_deg)
    f = 0.5 * width_px / math.tan(math.radians(hfov_deg) / 2.0)
    return _K(f, width_px, height_px)


def intrinsics_from_vfov(width_px: int, height_px: int, vfov_deg: float) -> np.ndarray:
    """Pinhole K of a W x H camera with square pixels and a vertical field of view.

    Unity's ``Camera.fieldOfView`` (AI2-THOR's ``fieldOfView`` / ``metadata['fov']``) is
    vertical. Returns (3, 3) float64.

    Raises:
        ValueError: non-positive size or a field of view outside (0, 180) degrees.
    """
    _check_camera(width_px, height_px, vfov_deg)
    f = 0.5 * height_px / math.tan(math.radians(vfov_deg) / 2.0)
    return _K(f, width_px, height_px)


def _check_camera(width_px: int, height_px: int, fov_deg: float) -> None:
    if width_px <= 0 or height_px <= 0:
        raise ValueError(f"image size must be positive, got {width_px} x {height_px}")
    if not (0.0 < fov_deg < 180.0):
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")


def _K(f: float, w: int, h: int) -> np.ndarray:
    return np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------- poses


def quaternion_wxyz_to_matrix(q: Sequence[float]) -> np.ndarray:
    """(3, 3) rotation of a quaternion given as (w, x, y, z) (numpy-quaternion's order).

    Raises:
        ValueError: a quaternion that is not finite or has zero norm.
    """
    w, x, y, z = (float(v) for v in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"invalid quaternion {tuple(q)}")
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def habitat_points_to_map(points: np.ndarray) -> np.ndarray:
    """Map (N, 3) or (3,) habitat world points (metres) into the map frame; float64."""
    return np.asarray(points, dtype=np.float64) @ MAP_R_HABITAT.T


def habitat_camera_to_map_T_camera(
    position: Sequence[float], rotation_wxyz: Sequence[float]
) -> np.ndarray:
    """Pose of the optical frame in the map frame from a habitat sensor pose.

    Args:
        position: (3,) sensor position in the habitat world frame, metres (e.g.
            ``agent_state.sensor_states["rgb"].position``).
        rotation_wxyz: sensor orientation in the habitat world frame as (w, x, y, z) (the
            components of the numpy-quaternion ``sensor_states[...].rotation``).

    Returns:
        (4, 4) float64 ``map_T_camera`` of the optical frame (z forward, x right, y down).
    """
    p = np.asarray(position, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"non-finite habitat position {p}")
    T = np.eye(4)
    T[:3, :3] = MAP_R_HABITAT @ quaternion_wxyz_to_matrix(rotation_wxyz) @ _OPTICAL_R_GL
    T[:3, 3] = MAP_R_HABITAT @ p
    return T


def unity_points_to_map(points: np.ndarray) -> np.ndarray:
    """Map (N, 3) or (3,) Unity/AI2-THOR world points (metres) into the map frame; float64."""
    return np.asarray(points, dtype=np.float64) @ MAP_M_UNITY.T


def xyz_of(d: Mapping[str, Any]) -> np.ndarray:
    """(3,) float64 array of an AI2-THOR ``{"x": .., "y": .., "z": ..}`` dictionary."""
    return np.array([float(d["x"]), float(d["y"]), float(d["z"])])


def _unity_rotation(pitch_deg: float, yaw_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) Unity rotation from Euler angles: R = Ry(yaw) Rx(pitch) Rz(roll), on Unity coords."""
    a, b, c = (math.radians(v) for v in (pitch_deg, yaw_deg, roll_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def ai2thor_camera_to_map_T_camera(
    camera_position: Sequence[float] | Mapping[str, Any],
    yaw_deg: float,
    horizon_deg: float,
    roll_deg: float = 0.0,
) -> np.ndarray:
    """Pose of the optical frame in the map frame from AI2-THOR's camera metadata.

    Args:
        camera_position: ``metadata["cameraPosition"]`` (dict or (3,) x, y, z), Unity metres.
        yaw_deg: ``metadata["agent"]["rotation"]["y"]``, degrees, clockwise seen from above.
        horizon_deg: ``metadata["agent"]["cameraHorizon"]``, degrees, positive looks down.
        roll_deg: camera roll about its forward axis (0 for AI2-THOR's agents).

    Returns:
        (4, 4) float64 ``map_T_camera`` of the optical frame (z forward, x right, y down).

    The camera's Unity axes are the columns of R = Ry(yaw) Rx(horizon) Rz(roll): right, up,
    forward. Each axis is reflected into the map frame, and the optical frame takes
    (right, -up, forward); the two sign flips (reflection, y down) make it a proper rotation.
    """
    p = xyz_of(camera_position) if isinstance(camera_position, Mapping) else camera_position
    p = np.asarray(p, dtype=np.float64).reshape(3)
    values = np.array([*p, yaw_deg, horizon_deg, roll_deg], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"non-finite AI2-THOR camera pose {values}")
    R_u = _unity_rotation(horizon_deg, yaw_deg, roll_deg)
    T = np.eye(4)
    T[:3, :3] = MAP_M_UNITY @ R_u @ np.diag([1.0, -1.0, 1.0])
    T[:3, 3] = MAP_M_UNITY @ p
    return T


def unity_aabb_to_map(
    center: Sequence[float], size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box (Unity centre, extents) -> (box_min, box_max) (3,) in the map frame."""
    c = MAP_M_UNITY @ np.asarray(center, dtype=np.float64)
    s = np.abs(MAP_M_UNITY) @ np.asarray(size, dtype=np.float64)
    return c - 0.5 * s, c + 0.5 * s


def habitat_aabb_to_map(
    center: Sequence[float], size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box (habitat centre, extents) -> (box_min, box_max) (3,) in the map frame."""
    c = MAP_R_HABITAT @ np.asarray(center, dtype=np.float64)
    s = np.abs(MAP_R_HABITAT) @ np.asarray(size, dtype=np.float64)
    return c - 0.5 * s, c + 0.5 * s


# ----------------------------------------------------------------------------- images


def rgb_of(color: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an (H, W, 3|4) uint8 RGB(A) image (habitat gives RGBA).

    Raises:
        ValueError: wrong shape or dtype.
    """
    a = np.asarray(color)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3|4) uint8 colour, got {a.shape} {a.dtype}")
    return np.ascontiguousarray(a[:, :, :3])


def depth_metres(depth: np.ndarray, scale_to_m: float = 1.0) -> np.ndarray:
    """(H, W) float32 depth in metres; non-finite and negative readings become 0 (no reading).

    Args:
        depth: (H, W) or (H, W, 1) depth along the optical axis.
        scale_to_m: metres per unit (1.0 for habitat and AI2-THOR's default ``Meters`` format,
            0.001 for millimetres).
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.ndim != 2:
        raise ValueError(f"expected (H, W) depth, got {d.shape}")
    d = d * np.float32(scale_to_m)
    return np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0)).astype(np.float32)


# ----------------------------------------------------------------------------- labels, instances


def label_from_identifier(name: str) -> str:
    """Lower-case words of a CamelCase/snake_case identifier, variant letters and numbers dropped.

    ``CoffeeMachine`` -> "coffee machine", ``TVStand`` -> "tv stand", ``ChairA_01_005`` ->
    "chair", ``kitchen_cabinet`` -> "kitchen cabinet". Single capital letters and all-digit
    tokens are dropped; "" when nothing is left.
    """
    words: list[str] = []
    for token in re.split(r"[_\-\s.|]+", name):
        for word in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", token):
            if word.isdigit() or (len(word) == 1 and word.isupper()):
                continue
            words.append(word.lower())
    return " ".join(words)


def habitat_instance_id(semantic_id: int) -> int:
    """Instance id of a habitat semantic id: ``semantic_id + 1`` (0 is a valid habitat id)."""
    return int(semantic_id) + 1


def habitat_semantic_to_instances(
    semantic: np.ndarray,
    categories: Mapping[int, str],
    ignore_labels: Iterable[str] = (),
) -> tuple[np.ndarray, dict[int, tuple[str, float]]]:
    """Instance image and labels from a habitat SEMANTIC observation.

    Args:
        semantic: (H, W) or (H, W, 1) integer semantic ids (habitat gives uint32).
        categories: semantic id -> category name, from ``sim.semantic_scene.objects``
            (``obj.semantic_id`` -> ``obj.category.name()``).
        ignore_labels: category names (case-insensitive) left out of the instance image, e.g.
            "wall", "floor", "ceiling".

    Returns:
        (H, W) int32 instance ids (:func:`habitat_instance_id`, 0 for ids without a category
        or with an ignored one) and id -> (label, 1.0) for the ids present in the image.
    """
    sem = np.asarray(semantic)
    if sem.ndim == 3 and sem.shape[2] == 1:
        sem = sem[:, :, 0]
    if sem.ndim != 2 or not np.issubdtype(sem.dtype, np.integer):
        raise ValueError(f"expected (H, W) integer semantic ids, got {sem.shape} {sem.dtype}")
    ignored = {s.lower() for s in ignore_labels}
    values, inverse = np.unique(sem, return_inverse=True)
    mapped = np.zeros(len(values), dtype=np.int32)
    labels: dict[int, tuple[str, float]] = {}
    for i, v in enumerate(values.tolist()):
        name = categories.get(int(v))
        if name is None or name.lower() in ignored or name == "":
            continue
        iid = habitat_instance_id(int(v))
        mapped[i] = iid
        labels[iid] = (label_from_identifier(name) or name.lower(), 1.0)
    return mapped[inverse.reshape(sem.shape)], labels


def assign_instance_ids(keys: Iterable[str], registry: dict[str, int]) -> dict[str, int]:
    """Give each new key the next integer id (from 1) in ``registry``; ids are never reused.

    Args:
        keys: e.g. AI2-THOR objectIds, in a deterministic order (sort them for reproducibility).
        registry: key -> id, updated in place and returned.
    """
    next_id = max(registry.values(), default=0) + 1
    for key in keys:
        if key not in registry:
            registry[key] = next_id
            next_id += 1
    return registry


def _color_keys(rgb: np.ndarray) -> np.ndarray:
    a = rgb.astype(np.uint32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def ai2thor_segmentation_to_instances(
    segmentation: np.ndarray,
    color_to_object_id: Mapping[tuple[int, ...], str],
    object_instance_ids: Mapping[str, int],
) -> np.ndarray:
    """Instance image from AI2-THOR's colour instance segmentation.

    Args:
        segmentation: (H, W, 3) uint8 ``event.instance_segmentation_frame``.
        color_to_object_id: ``event.color_to_object_id`` ((r, g, b) -> objectId or a structure
            name such as "Floor"/"Wall" without ``|``).
        object_instance_ids: objectId -> instance id (>= 1) of the objects to keep (those of
            ``metadata["objects"]``); colours naming anything else become 0.

    Returns:
        (H, W) int32 instance ids, 0 = none.
    """
    seg = np.asarray(segmentation)
    if seg.ndim != 3 or seg.shape[2] < 3 or seg.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 segmentation, got {seg.shape} {seg.dtype}")
    keys = _color_keys(seg[:, :, :3])
    values, inverse = np.unique(keys, return_inverse=True)
    lut: dict[int, int] = {}
    for color, object_id in color_to_object_id.items():
        iid = object_instance_ids.get(object_id)
        if iid is not None and len(color) >= 3:
            r, g, b = (int(c) for c in color[:3])
            lut[(r << 16) | (g << 8) | b] = int(iid)
    mapped = np.array([lut.get(int(v), 0) for v in values.tolist()], dtype=np.int32)
    return mapped[inverse.reshape(keys.shape)]


def ai2thor_object_state(obj: Mapping[str, Any]) -> str:
    """State string of an AI2-THOR object's metadata; "" when it has none.

    "open"/"closed" for openable objects (``isOpen``), "on"/"off" for toggleable ones
    (``isToggled``), then the true flags among sliced, broken, cooked, dirty, filled (with
    liquid), used up. Several states are joined with "," in that order, e.g. "closed,off".
    """
    states: list[str] = []
    if obj.get("openable"):
        states.append("open" if obj.get("isOpen") else "closed")
    if obj.get("toggleable"):
        states.append("on" if obj.get("isToggled") else "off")
    for key, word in (
        ("isSliced", "sliced"),
        ("isBroken", "broken"),
        ("isCooked", "cooked"),
        ("isDirty", "dirty"),
        ("isFilledWithLiquid", "filled"),
        ("isUsedUp", "used up"),
    ):
        if obj.get(key):
            states.append(word)
    return ",".join(states)


def ai2thor_object_label(obj: Mapping[str, Any]) -> str:
    """Label of an AI2-THOR object: ``objectType`` in words ("CoffeeMachine": "coffee machine")."""
    return label_from_identifier(str(obj.get("objectType", "")))


def matrix_to_quaternion_wxyz(R: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (w, x, y, z), w >= 0, of a (3, 3) rotation; (4,) float64."""
    R = np.asarray(R, dtype=np.float64)
    # Symmetric 4x4 whose top eigenvector is the quaternion (robust for every rotation).
    K = np.array(
        [
            [R[0, 0] + R[1, 1] + R[2, 2], R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]],
            [R[2, 1] - R[1, 2], R[0, 0] - R[1, 1] - R[2, 2], R[0, 1] + R[1, 0], R[0, 2] + R[2, 0]],
            [R[0, 2] - R[2, 0], R[0, 1] + R[1, 0], R[1, 1] - R[0, 0] - R[2, 2], R[1, 2] + R[2, 1]],
            [R[1, 0] - R[0, 1], R[0, 2] + R[2, 0], R[1, 2] + R[2, 1], R[2, 2] - R[0, 0] - R[1, 1]],
        ]
    )
    _, vectors = np.linalg.eigh(K)
    q = vectors[:, -1]
    return q if q[0] >= 0 else -q


def map_T_camera_to_habitat_agent(
    map_T_camera: np.ndarray, sensor_height_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Habitat agent state placing a sensor (mounted at (0, h, 0), unrotated) at ``map_T_camera``.

    Inverse of :func:`habitat_camera_to_map_T_camera` for a sensor whose offset from the agent is
    ``sensor_height_m`` along the agent's +y and whose orientation equals the agent's.

    Returns:
        (3,) agent position in the habitat world frame (metres) and its (4,) rotation (w, x, y, z).
    """
    T = np.asarray(map_T_camera, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError("map_T_camera must be a finite (4, 4) matrix")
    hab_R_gl = MAP_R_HABITAT.T @ T[:3, :3] @ _OPTICAL_R_GL
    sensor_position = MAP_R_HABITAT.T @ T[:3, 3]
    agent_position = sensor_position - hab_R_gl @ np.array([0.0, sensor_height_m, 0.0])
    return agent_position, matrix_to_quaternion_wxyz(hab_R_gl)
