"""Habitat-sim bridge: RGB, depth and semantic sensors plus agent state -> Frame and ground truth.

Written against habitat-sim's Python API (``habitat_sim.Simulator``, ``Configuration``,
``SimulatorConfiguration``, ``agent.AgentConfiguration``, ``CameraSensorSpec`` with
``SensorType.COLOR``/``DEPTH``/``SEMANTIC``; ``Agent.get_state()`` whose ``sensor_states`` hold
each sensor's world position and numpy-quaternion rotation; ``sim.semantic_scene.objects`` with
``semantic_id``, ``id``, ``category.name()``, ``aabb`` and ``region``).

Mapping to :class:`memory_node.core.types.Frame`:

* ``rgb``: the COLOR observation (H, W, 4) RGBA uint8 -> (H, W, 3);
* ``depth``: the DEPTH observation, (H, W) float32 metres along the optical axis (0 = none);
* ``K``: from the sensor's horizontal ``hfov`` and resolution (square pixels);
* ``map_T_camera``: the COLOR sensor's world pose, habitat y-up -> map z-up and OpenGL camera
  -> optical frame (see :mod:`.conversions`);
* ``instance``: SEMANTIC ids ``s`` -> ``s + 1`` when ``s`` names an annotated object whose
  category is not ignored (walls, floors, ceilings by default), else 0; ``instance_labels`` from
  ``category.name()``; no states (habitat scans are static).

habitat-sim is not on PyPI for Linux: install it with conda
(``conda install habitat-sim -c conda-forge -c aihabitat``). Importing this module works
without it; constructing :class:`HabitatBridge` then raises :class:`BridgeUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memory_node.core.types import Frame
from memory_sim.bridges import BridgeObservation, BridgeUnavailable
from memory_sim.bridges.conversions import (
    depth_metres,
    habitat_aabb_to_map,
    habitat_camera_to_map_T_camera,
    habitat_instance_id,
    habitat_semantic_to_instances,
    intrinsics_from_hfov,
    label_from_identifier,
    map_T_camera_to_habitat_agent,
    rgb_of,
)
from memory_sim.ground_truth import ObjectTruth

LOG = logging.getLogger(__name__)

_IMPORT_ERROR: ImportError | None = None
try:  # habitat-sim is optional: only a live bridge needs it.
    import habitat_sim
    import magnum
    from habitat_sim.utils.common import quat_from_coeffs
except ImportError as _exc:  # pragma: no cover - depends on the machine
    habitat_sim = None
    magnum = None
    _IMPORT_ERROR = _exc

INSTALL_HINT = (
    "habitat-sim is not installed (PyPI has no Linux wheel): install it with "
    "`conda install habitat-sim -c conda-forge -c aihabitat` (add `headless` on machines "
    "without a display), then download a scene dataset with semantic annotations (e.g. HM3D "
    "or Replica)"
)

RGB_UUID = "rgb"
DEPTH_UUID = "depth"
SEMANTIC_UUID = "semantic"


def is_available() -> bool:
    """Tell whether habitat-sim can be imported here."""
    return habitat_sim is not None


@dataclass
class HabitatBridgeConfig:
    """Scene and camera of a Habitat-sim bridge.

    Attributes:
        scene_id: scene file or id (e.g. an HM3D ``.basis.glb``).
        scene_dataset_config_file: dataset config (``*.scene_dataset_config.json``) carrying the
            semantic annotations; "" = habitat's default.
        width_px, height_px: image size of all three sensors.
        hfov_deg: horizontal field of view, degrees.
        sensor_height_m: sensor offset above the agent's base along its up axis.
        rate_hz: frames per second of the stamps given to frames (stamp = index / rate_hz).
        gpu_device_id: CUDA/EGL device used by habitat's renderer.
        ignore_labels: semantic categories left out of the instance image.
    """

    scene_id: str
    scene_dataset_config_file: str = ""
    width_px: int = 640
    height_px: int = 480
    hfov_deg: float = 90.0
    sensor_height_m: float = 1.5
    rate_hz: float = 10.0
    gpu_device_id: int = 0
    ignore_labels: tuple[str, ...] = ("wall", "floor", "ceiling", "void", "unknown", "")

    def validate(self) -> None:
        """Raise ValueError when a value is out of range."""
        intrinsics_from_hfov(self.width_px, self.height_px, self.hfov_deg)
        if not self.scene_id:
            raise ValueError("habitat bridge: scene_id is empty")
        if self.rate_hz <= 0:
            raise ValueError(f"habitat bridge: rate_hz must be > 0, got {self.rate_hz}")


def quaternion_components(q: Any) -> np.ndarray:
    """(4,) (w, x, y, z) of a numpy-quaternion, a magnum Quaternion or a (w, x, y, z) sequence."""
    if hasattr(q, "w") and hasattr(q, "x"):
        return np.array([float(q.w), float(q.x), float(q.y), float(q.z)])
    if hasattr(q, "scalar") and hasattr(q, "vector"):  # magnum.Quaternion
        v = q.vector
        return np.array([float(q.scalar), float(v[0]), float(v[1]), float(v[2])])
    return np.asarray(q, dtype=np.float64).reshape(4)


def habitat_frame(
    observations: Mapping[str, np.ndarray],
    sensor_position: Sequence[float],
    sensor_rotation_wxyz: Sequence[float],
    K: np.ndarray,
    categories: Mapping[int, str],
    stamp: float,
    ignore_labels: Sequence[str] = (),
) -> Frame:
    """Assemble a Frame from habitat observations and the COLOR sensor's pose.

    Args:
        observations: uuid -> array as returned by ``sim.get_sensor_observations()``:
            "rgb" (H, W, 4) uint8, "depth" (H, W) float32 metres, optional "semantic"
            (H, W) uint32.
        sensor_position: (3,) habitat world position of the sensor, metres.
        sensor_rotation_wxyz: (4,) its rotation (w, x, y, z) in the habitat world frame.
        K: (3, 3) intrinsics.
        categories: semantic id -> category name.
        stamp: seconds.
        ignore_labels: categories left out of the instance image.

    Raises:
        ValueError: missing observation, mismatched shapes, invalid pose.
    """
    for key in (RGB_UUID, DEPTH_UUID):
        if key not in observations:
            raise ValueError(f"habitat observations lack {key!r} (have {sorted(observations)})")
    rgb = rgb_of(observations[RGB_UUID])
    depth = depth_metres(observations[DEPTH_UUID])
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f"depth {depth.shape} and rgb {rgb.shape[:2]} sizes differ")
    instance = None
    labels = None
    if SEMANTIC_UUID in observations:
        instance, labels = habitat_semantic_to_instances(
            observations[SEMANTIC_UUID], categories, ignore_labels
        )
        if instance.shape != rgb.shape[:2]:
            raise ValueError(f"semantic {instance.shape} and rgb {rgb.shape[:2]} sizes differ")
    return Frame(
        stamp=float(stamp),
        rgb=rgb,
        depth=depth,
        K=np.asarray(K, dtype=np.float64),
        map_T_camera=habitat_camera_to_map_T_camera(sensor_position, sensor_rotation_wxyz),
        instance=instance,
        instance_labels=labels,
        instance_states={} if instance is not None else None,
    )


def _call_or_value(x: Any) -> Any:
    """Magnum ranges expose ``center()``/``size()`` as methods, older AABBs as properties."""
    return x() if callable(x) else x


def semantic_objects_truth(
    semantic_objects: Sequence[Any], ignore_labels: Sequence[str] = ()
) -> list[ObjectTruth]:
    """Ground truth of habitat ``SemanticObject`` s (id, category, aabb, region), map frame."""
    ignored = {s.lower() for s in ignore_labels}
    out: list[ObjectTruth] = []
    for obj in semantic_objects:
        if obj is None or obj.category is None:
            continue
        name = obj.category.name()
        if name.lower() in ignored:
            continue
        aabb = obj.aabb
        center = np.asarray(_call_or_value(aabb.center), dtype=np.float64)
        size_attr = aabb.size if hasattr(aabb, "size") else aabb.sizes
        size = np.asarray(_call_or_value(size_attr), dtype=np.float64)
        lo, hi = habitat_aabb_to_map(center, size)
        region = getattr(obj, "region", None)
        room = ""
        if region is not None and getattr(region, "category", None) is not None:
            room = str(region.category.name())
        out.append(
            ObjectTruth(
                instance_id=habitat_instance_id(obj.semantic_id),
                name=str(obj.id),
                label=label_from_identifier(name) or name.lower(),
                room=room,
                static=True,
                state="",
                present=True,
                position=0.5 * (lo + hi),
                box_min=lo,
                box_max=hi,
            )
        )
    return out


class HabitatBridge:
    """A live habitat-sim simulator with COLOR, DEPTH and SEMANTIC sensors on agent 0.

    Args:
        config: scene and camera.

    Raises:
        BridgeUnavailable: habitat-sim is not installed.
        ValueError: invalid configuration.
    """

    def __init__(self, config: HabitatBridgeConfig) -> None:
        if habitat_sim is None:
            raise BridgeUnavailable(f"{INSTALL_HINT} (import error: {_IMPORT_ERROR})")
        config.validate()
        self.config = config
        self.K = intrinsics_from_hfov(config.width_px, config.height_px, config.hfov_deg)
        self._index = 0
        self.sim = habitat_sim.Simulator(self._configuration())
        scene = self.sim.semantic_scene
        objects = list(scene.objects) if scene is not None else []
        self.categories: dict[int, str] = {
            int(o.semantic_id): o.category.name()
            for o in objects
            if o is not None and o.category is not None
        }
        if not self.categories:
            LOG.warning(
                "habitat scene %s has no semantic annotations: frames carry no instances",
                config.scene_id,
            )

    def _configuration(self) -> Any:
        c = self.config
        sim_cfg = habitat_sim.SimulatorConfiguration()
        sim_cfg.scene_id = c.scene_id
        if c.scene_dataset_config_file:
            sim_cfg.scene_dataset_config_file = c.scene_dataset_config_file
        sim_cfg.gpu_device_id = c.gpu_device_id
        specs = []
        for uuid, kind in (
            (RGB_UUID, habitat_sim.SensorType.COLOR),
            (DEPTH_UUID, habitat_sim.SensorType.DEPTH),
            (SEMANTIC_UUID, habitat_sim.SensorType.SEMANTIC),
        ):
            spec = habitat_sim.CameraSensorSpec()
            spec.uuid = uuid
            spec.sensor_type = kind
            spec.sensor_subtype = habitat_sim.SensorSubType.PINHOLE
            spec.resolution = magnum.Vector2i(c.height_px, c.width_px)  # (rows, columns)
            spec.position = magnum.Vector3(0.0, c.sensor_height_m, 0.0)
            spec.hfov = c.hfov_deg
            specs.append(spec)
        agent_cfg = habitat_sim.agent.AgentConfiguration()
        agent_cfg.sensor_specifications = specs
        return habitat_sim.Configuration(sim_cfg, [agent_cfg])

    def set_camera_pose(self, map_T_camera: np.ndarray) -> None:
        """Place agent 0 so that its sensors' optical frame is at ``map_T_camera`` (4, 4)."""
        position, q = map_T_camera_to_habitat_agent(map_T_camera, self.config.sensor_height_m)
        state = habitat_sim.agent.AgentState()
        state.position = position.astype(np.float32)
        state.rotation = quat_from_coeffs([q[1], q[2], q[3], q[0]])  # takes (x, y, z, w)
        self.sim.get_agent(0).set_state(state)

    def observe(self) -> BridgeObservation:
        """Render the sensors at the agent's current pose and convert them."""
        observations = self.sim.get_sensor_observations()
        state = self.sim.get_agent(0).get_state()
        sensor = state.sensor_states[RGB_UUID]
        frame = habitat_frame(
            observations,
            np.asarray(sensor.position, dtype=np.float64),
            quaternion_components(sensor.rotation),
            self.K,
            self.categories,
            stamp=self._index / self.config.rate_hz,
            ignore_labels=self.config.ignore_labels,
        )
        self._index += 1
        scene = self.sim.semantic_scene
        objects = semantic_objects_truth(
            list(scene.objects) if scene is not None else [], self.config.ignore_labels
        )
        return BridgeObservation(frame=frame, objects=objects)

    def step(self, action: str) -> BridgeObservation:
        """Apply a discrete agent action (e.g. "move_forward", "turn_left") and observe."""
        self.sim.step(action)
        return self.observe()

    def close(self) -> None:
        """Release the simulator."""
        self.sim.close()

    def __enter__(self) -> HabitatBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
