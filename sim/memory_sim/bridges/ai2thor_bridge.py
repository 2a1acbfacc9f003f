"""AI2-THOR bridge: Controller events -> Frame with instances and object states, plus ground truth.

Written against ai2thor's Python API: ``ai2thor.controller.Controller(scene=..., width=...,
height=..., fieldOfView=..., renderDepthImage=True, renderInstanceSegmentation=True)``,
``controller.step(action=...)`` returning an ``ai2thor.server.Event`` with ``frame`` (H, W, 3)
uint8 RGB, ``depth_frame`` (H, W) float32 metres (the default ``DepthFormat.Meters``),
``instance_segmentation_frame`` (H, W, 3) uint8 colours, ``color_to_object_id`` ((r, g, b) ->
objectId) and ``metadata`` (``objects`` with objectId, objectType, position,
axisAlignedBoundingBox, openable/isOpen, toggleable/isToggled, pickupable, moveable, ...;
``agent.rotation``, ``agent.cameraHorizon``, ``cameraPosition``, ``fov``, ``screenWidth``,
``screenHeight``).

Mapping to :class:`memory_node.core.types.Frame`:

* ``rgb``: ``event.frame``; ``depth``: ``event.depth_frame`` (metres along the optical axis);
* ``K``: from the vertical field of view ``metadata["fov"]`` (Unity's ``Camera.fieldOfView``);
* ``map_T_camera``: from ``cameraPosition``, the agent's yaw ``agent.rotation.y`` and the
  camera pitch ``agent.cameraHorizon``, converted from Unity's left-handed y-up frame into the
  right-handed z-up map frame (``x_map = z_u, y_map = -x_u, z_map = y_u``; see
  :mod:`.conversions`). The agent's own pitch/roll (``rotation.x/z``, always 0 for AI2-THOR's
  default agent) are not used;
* ``instance``: the colours of ``instance_segmentation_frame`` that ``color_to_object_id`` maps
  to an object of ``metadata["objects"]`` -> a stable integer id per objectId (assigned in sorted
  objectId order, never reused); structure colours (walls, floor, ceiling) -> 0;
* ``instance_labels``: ``objectType`` in words ("CoffeeMachine" -> "coffee machine");
* ``instance_states``: "open"/"closed", "on"/"off" and other true flags
  (:func:`.conversions.ai2thor_object_state`).

Importing this module works without ai2thor; constructing :class:`Ai2ThorBridge` without it
raises :class:`BridgeUnavailable`. ai2thor downloads its Unity build on first use (network) and
needs a display or Vulkan (``CloudRendering``); give ``local_executable_path`` for offline use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memory_node.core.types import Frame
from memory_sim.bridges import BridgeObservation, BridgeUnavailable
from memory_sim.bridges.conversions import (
    ai2thor_camera_to_map_T_camera,
    ai2thor_object_label,
    ai2thor_object_state,
    ai2thor_segmentation_to_instances,
    assign_instance_ids,
    depth_metres,
    intrinsics_from_vfov,
    rgb_of,
    unity_aabb_to_map,
    unity_points_to_map,
    xyz_of,
)
from memory_sim.ground_truth import ObjectTruth

LOG = logging.getLogger(__name__)

_IMPORT_ERROR: ImportError | None = None
try:  # ai2thor is optional: only a live bridge needs it.
    from ai2thor.controller import Controller
    from ai2thor.platform import CloudRendering
except ImportError as _exc:  # pragma: no cover - depends on the machine
    Controller = None
    CloudRendering = None
    _IMPORT_ERROR = _exc

INSTALL_HINT = (
    "ai2thor is not installed: `pip install ai2thor` (its first Controller() downloads the "
    "Unity build, ~1 GB, and needs an X display or Vulkan for CloudRendering)"
)


def is_available() -> bool:
    """Tell whether the ai2thor package can be imported here (the Unity build may still fail)."""
    return Controller is not None


@dataclass
class Ai2ThorBridgeConfig:
    """Scene and camera of an AI2-THOR bridge.

    Attributes:
        scene: e.g. "FloorPlan1" (kitchens 1-30, living rooms 201-230, ...).
        width_px, height_px: image size.
        field_of_view_deg: Unity's vertical field of view, degrees.
        grid_size_m: step of MoveAhead/MoveBack.
        visibility_distance_m: AI2-THOR's interaction/visibility distance.
        headless: render with ``CloudRendering`` (Vulkan, no X display).
        local_executable_path: a Unity build already on disk ("" = let ai2thor download it).
        rate_hz: frames per second of the stamps given to frames (stamp = index / rate_hz).
    """

    scene: str = "FloorPlan1"
    width_px: int = 640
    height_px: int = 480
    field_of_view_deg: float = 90.0
    grid_size_m: float = 0.25
    visibility_distance_m: float = 1.5
    headless: bool = True
    local_executable_path: str = ""
    rate_hz: float = 10.0

    def validate(self) -> None:
        """Raise ValueError when a value is out of range."""
        intrinsics_from_vfov(self.width_px, self.height_px, self.field_of_view_deg)
        if self.rate_hz <= 0:
            raise ValueError(f"ai2thor bridge: rate_hz must be > 0, got {self.rate_hz}")

    def controller_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``ai2thor.controller.Controller`` for this configuration."""
        kwargs: dict[str, Any] = {
            "scene": self.scene,
            "width": self.width_px,
            "height": self.height_px,
            "fieldOfView": self.field_of_view_deg,
            "gridSize": self.grid_size_m,
            "visibilityDistance": self.visibility_distance_m,
            "renderDepthImage": True,
            "renderInstanceSegmentation": True,
        }
        if self.local_executable_path:
            kwargs["local_executable_path"] = self.local_executable_path
        return kwargs


def ai2thor_objects_truth(
    objects: list[Mapping[str, Any]], instance_ids: Mapping[str, int]
) -> list[ObjectTruth]:
    """Ground truth of ``metadata["objects"]`` in the map frame (ids from ``instance_ids``)."""
    out: list[ObjectTruth] = []
    for obj in objects:
        object_id = str(obj["objectId"])
        position = unity_points_to_map(xyz_of(obj["position"]))
        box = obj.get("axisAlignedBoundingBox") or {}
        if "center" in box and "size" in box:
            lo, hi = unity_aabb_to_map(xyz_of(box["center"]), xyz_of(box["size"]))
        else:
            lo, hi = position.copy(), position.copy()
        out.append(
            ObjectTruth(
                instance_id=int(instance_ids[object_id]),
                name=object_id,
                label=ai2thor_object_label(obj),
                room="",
                static=not (obj.get("pickupable") or obj.get("moveable")),
                state=ai2thor_object_state(obj),
                present=True,
                position=position,
                box_min=lo,
                box_max=hi,
            )
        )
    return out


def ai2thor_observation(
    event: Any, registry: dict[str, int], stamp: float, fov_deg: float | None = None
) -> BridgeObservation:
    """Convert one AI2-THOR event (or any object with the same attributes) into an observation.

    Args:
        event: ``ai2thor.server.Event`` rendered with depth and instance segmentation.
        registry: objectId -> instance id, extended in place with new objects (sorted order).
        stamp: seconds.
        fov_deg: vertical field of view when ``metadata`` has no "fov" (older ai2thor).

    Raises:
        ValueError: no depth frame (controller started without ``renderDepthImage``), no field
            of view, or image sizes that disagree.
    """
    md = event.metadata
    objects = list(md.get("objects", []))
    assign_instance_ids(sorted(str(o["objectId"]) for o in objects), registry)
    if event.frame is None:
        raise ValueError("AI2-THOR event has no frame")
    if event.depth_frame is None:
        raise ValueError(
            "AI2-THOR event has no depth_frame: start the Controller with renderDepthImage=True"
        )
    rgb = rgb_of(np.asarray(event.frame))
    depth = depth_metres(np.asarray(event.depth_frame))
    if depth.shape != rgb.shape[:2]:
        raise ValueError(f"depth {depth.shape} and rgb {rgb.shape[:2]} sizes differ")
    fov = md.get("fov", fov_deg)
    if fov is None:
        raise ValueError("AI2-THOR metadata has no 'fov' and no fov_deg was given")
    h, w = rgb.shape[:2]
    K = intrinsics_from_vfov(w, h, float(fov))
    agent = md["agent"]
    map_T_camera = ai2thor_camera_to_map_T_camera(
        md["cameraPosition"], float(agent["rotation"]["y"]), float(agent["cameraHorizon"])
    )
    instance = None
    labels = None
    states = None
    seg = getattr(event, "instance_segmentation_frame", None)
    if seg is not None:
        ids = {str(o["objectId"]): registry[str(o["objectId"])] for o in objects}
        instance = ai2thor_segmentation_to_instances(
            np.asarray(seg), event.color_to_object_id, ids
        )
        if instance.shape != rgb.shape[:2]:
            raise ValueError(f"segmentation {instance.shape} and rgb {rgb.shape[:2]} differ")
        present = set(np.unique(instance).tolist()) - {0}
        labels = {}
        states = {}
        for obj in objects:
            iid = ids[str(obj["objectId"])]
            if iid in present:
                labels[iid] = (ai2thor_object_label(obj), 1.0)
                state = ai2thor_object_state(obj)
                if state:
                    states[iid] = state
    frame = Frame(
        stamp=float(stamp),
        rgb=rgb,
        depth=depth,
        K=K,
        map_T_camera=map_T_camera,
        instance=instance,
        instance_labels=labels,
        instance_states=states,
    )
    return BridgeObservation(frame=frame, objects=ai2thor_objects_truth(objects, registry))


class Ai2ThorBridge:
    """A live AI2-THOR controller rendering RGB, depth and instance segmentation.

    Args:
        config: scene and camera.

    Raises:
        BridgeUnavailable: ai2thor is not installed, or its controller cannot start (no Unity
            build and no network, no display/Vulkan); the message says which.
    """

    def __init__(self, config: Ai2ThorBridgeConfig) -> None:
        if Controller is None:
            raise BridgeUnavailable(f"{INSTALL_HINT} (import error: {_IMPORT_ERROR})")
        config.validate()
        self.config = config
        self.registry: dict[str, int] = {}
        self._index = 0
        kwargs = config.controller_kwargs()
        if config.headless:
            kwargs["platform"] = CloudRendering
        try:
            self.controller = Controller(**kwargs)
        except Exception as exc:  # ai2thor raises many types while fetching/starting Unity
            raise BridgeUnavailable(
                f"AI2-THOR controller could not start: {exc!r}. It downloads its Unity build on "
                "first use (needs network) unless local_executable_path is given, and needs an "
                "X display or Vulkan (headless=True uses CloudRendering)"
            ) from exc

    def _convert(self, event: Any) -> BridgeObservation:
        if not event.metadata.get("lastActionSuccess", True):
            LOG.warning(
                "AI2-THOR action %s failed: %s",
                event.metadata.get("lastAction"),
                event.metadata.get("errorMessage"),
            )
        obs = ai2thor_observation(
            event, self.registry, self._index / self.config.rate_hz, self.config.field_of_view_deg
        )
        self._index += 1
        return obs

    def observe(self) -> BridgeObservation:
        """Convert the controller's last event."""
        return self._convert(self.controller.last_event)

    def step(self, action: str, **kwargs: Any) -> BridgeObservation:
        """Run an action (e.g. "MoveAhead", "RotateRight", "OpenObject") and convert its event."""
        return self._convert(self.controller.step(action=action, **kwargs))

    def close(self) -> None:
        """Stop the Unity process."""
        self.controller.stop()

    def __enter__(self) -> Ai2ThorBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
