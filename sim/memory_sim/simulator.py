"""The built-in household simulator: a kinematic pybullet scene and a posed RGB-D camera.

Usage::

    from memory_sim.procedural import ProceduralConfig, generate_house
    from memory_sim.simulator import Simulator, SimConfig
    from memory_sim.camera import look_pose

    with Simulator(generate_house(ProceduralConfig(seed=3)), SimConfig()) as sim:
        step = sim.step(look_pose([2.0, 2.0, 1.3], yaw=0.0, pitch=-0.4))
        step.frame          # memory_node.core.types.Frame, ready for the memory core
        step.truth          # FrameTruth: true pose, visible instance ids
        sim.objects()       # ObjectTruth of every present object
        sim.move_object("kitchen/mug_0", Pose((1.0, 2.0, 0.9)))

Each Simulator owns one pybullet DIRECT client (never the global default client), so several can
run in one process. The clock advances by ``1 / rate_hz`` per :meth:`Simulator.step`; the first
frame is stamped ``dt``. Bodies never move by themselves (no physics is stepped); they move,
appear, disappear or change state only through the mutation methods, each recorded as a
:class:`ChangeTruth` at the sim time given.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from memory_node.core.config import param
from memory_node.core.geometry import invert_transform
from memory_node.core.types import ChangeEvent, ChangeKind, Frame
from memory_node.evaluation import box_samples, share_in_view
from memory_sim import sensor_noise
from memory_sim.camera import CameraConfig, check_pose, intrinsics, render
from memory_sim.ground_truth import ChangeTruth, FrameTruth, GroundTruthLog, ObjectTruth
from memory_sim.scene import (
    ObjectSpec,
    Pose,
    SceneError,
    SceneSpec,
    body_aabb,
    spawn_object,
    validate_object,
)
from memory_sim.sensor_noise import NoiseConfig

LOG = logging.getLogger(__name__)


class SimulationError(ValueError):
    """A request the simulator refuses (unknown object, non-finite pose, bad state)."""


@dataclass
class SimConfig:
    """Configuration of the simulator: clock, noise seed, camera and sensor imperfections."""

    rate_hz: float = param(
        10.0, "frames per second of sim time (dt = 1 / rate_hz)", min_value=0.1, max_value=1000.0
    )
    seed: int = param(0, "seed of every random draw of the sensor imperfections", min_value=0)
    vacated_range_m: float = param(
        4.0,
        "ground truth: a place an object left counts as in view up to this distance, metres "
        "(when the change can first be seen; not used by the rendering)",
        min_value=0.1,
    )
    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass
class SimStep:
    """Result of one simulator step.

    Attributes:
        frame: the observation as the memory core consumes it (noisy when noise is enabled).
        truth: what the frame really shows (true pose, visible ids).
        instance_truth: (H, W) int32 noise-free instance image.
        depth_truth: (H, W) float32 noise-free depth, metres (0 = no reading).
    """

    frame: Frame
    truth: FrameTruth
    instance_truth: np.ndarray
    depth_truth: np.ndarray


@dataclass
class TopDownView:
    """A near-orthographic picture of the scene seen from far above (north up).

    Attributes:
        rgb: (H, W, 3) uint8; column 0 is ``min_xy[0]``, row 0 is ``max_xy[1]``.
        instance: (H, W) int32 instance ids seen from above, 0 = none.
        min_xy: (2,) map coordinates (metres) of the left/bottom image edges at floor level.
        max_xy: (2,) map coordinates (metres) of the right/top image edges at floor level.
        metres_per_px: pixel size at floor level; a point h metres above the floor is scaled
            about the image centre by at most 1 / (1 - h / altitude) (altitude 200 m).
    """

    rgb: np.ndarray
    instance: np.ndarray
    min_xy: np.ndarray
    max_xy: np.ndarray
    metres_per_px: float

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """Return (N, 2) float (column, row) pixel coordinates of (N, 2) floor-level map points.

        Uses the renderer's principal point (see :func:`memory_sim.camera.intrinsics`).
        """
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        col = (xy[:, 0] - self.min_xy[0]) / self.metres_per_px
        row = (self.max_xy[1] - xy[:, 1]) / self.metres_per_px - 1.0
        return np.stack([col, row], axis=1)


@dataclass
class _Live:
    """Book-keeping of one object of the running scene."""

    spec: ObjectSpec
    instance_id: int
    body: int | None
    truth: ObjectTruth | None = None


class Simulator:
    """Kinematic household scene rendered by a pinhole RGB-D camera; see the module docstring.

    Args:
        scene: the scene to load (copied; the argument is not modified).
        config: simulator configuration; defaults when None.
        keep_frame_truth: keep every FrameTruth in :attr:`log` (turn off for endless runs).
    """

    def __init__(
        self,
        scene: SceneSpec,
        config: SimConfig | None = None,
        keep_frame_truth: bool = True,
    ) -> None:
        self.config = copy.deepcopy(config) if config is not None else SimConfig()
        self.config.camera.validate()
        self.scene = copy.deepcopy(scene)
        self.scene.validate()
        self.dt = 1.0 / self.config.rate_hz
        self.time = 0.0
        self.frame_index = 0
        self.keep_frame_truth = keep_frame_truth
        self.K = intrinsics(self.config.camera)
        self._rng = np.random.default_rng(self.config.seed)
        self._client: BulletClient | None = BulletClient(connection_mode=pybullet.DIRECT)
        self._objects: dict[str, _Live] = {}
        self._by_id: dict[int, str] = {}
        self._next_id = 1
        self._lut = np.zeros(1, dtype=np.int32)
        self._lut_dirty = True
        # Boxes an object left (moved away or removed): instance id -> (8+1, 3) sample points.
        self._vacated: dict[int, np.ndarray] = {}
        self.log = GroundTruthLog(meta={"scene": self.scene.name, "source": self.scene.source})
        self.log.rooms = [
            {"name": r.name, "label": r.label, "min_xy": list(r.min_xy), "max_xy": list(r.max_xy)}
            for r in self.scene.rooms
        ]
        try:
            for obj in self.scene.objects:
                self._insert(obj, stamp=0.0)
        except Exception:
            self.close()
            raise
        LOG.info(
            "simulator ready: scene %s, %d objects with instance ids, %dx%d at %.1f Hz",
            self.scene.name,
            len(self._by_id),
            self.config.camera.width_px,
            self.config.camera.height_px,
            self.config.rate_hz,
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def client(self) -> BulletClient:
        """Return the pybullet client of this simulator; raises when closed."""
        if self._client is None:
            raise SimulationError("simulator is closed")
        return self._client

    def close(self) -> None:
        """Disconnect the pybullet client; the simulator is unusable afterwards."""
        if self._client is not None:
            try:
                self._client.disconnect()
            finally:
                self._client = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ stepping
    def step(self, map_T_camera: np.ndarray) -> SimStep:
        """Advance the clock by dt and render a frame from ``map_T_camera``.

        Args:
            map_T_camera: (4, 4) pose of the optical frame in the map frame.

        Raises:
            SimulationError: the pose is not a finite rigid transform (the clock does not move).
        """
        try:
            pose = check_pose(map_T_camera)
        except ValueError as exc:
            raise SimulationError(f"refusing camera pose: {exc}") from exc
        self.time = (self.frame_index + 1) * self.dt
        result = self.observe(pose, self.time)
        self.frame_index += 1
        return result

    def skip_frame(self) -> None:
        """Advance the clock by dt without rendering (nothing enters the frame truth)."""
        self.time = (self.frame_index + 1) * self.dt
        self.frame_index += 1

    def observe(self, map_T_camera: np.ndarray, stamp: float) -> SimStep:
        """Render a frame from ``map_T_camera`` stamped ``stamp`` without moving the clock."""
        try:
            pose = check_pose(map_T_camera)
        except ValueError as exc:
            raise SimulationError(f"refusing camera pose: {exc}") from exc
        cam, noise = self.config.camera, self.config.noise
        rgb, depth, seg = render(self.client, cam, pose)
        instance = self._instance_image(seg)
        ids, counts = np.unique(instance, return_counts=True)
        visible = {int(i): int(c) for i, c in zip(ids, counts, strict=True) if i != 0}
        ids_r, counts_r = np.unique(instance[depth > 0], return_counts=True)
        in_range = {int(i): int(c) for i, c in zip(ids_r, counts_r, strict=True) if i != 0}
        labels = {iid: self._live(iid).spec.label for iid in visible}
        if noise.enabled:
            rng = self._rng
            rgb_out = sensor_noise.noisy_rgb(noise, rgb, rng)
            depth_out = sensor_noise.noisy_depth(noise, depth, rng)
            instance_out, instance_labels = sensor_noise.noisy_instances(
                noise, instance, labels, self.vocabulary(), rng
            )
            reported_pose = sensor_noise.noisy_pose(noise, pose, rng)
        else:
            rgb_out, depth_out, instance_out = rgb, depth, instance
            instance_labels = {iid: (label, 1.0) for iid, label in labels.items()}
            reported_pose = pose
        if not np.all(np.isfinite(reported_pose)):
            raise SimulationError("internal error: non-finite pose produced")
        states = {
            iid: self._live(iid).spec.state
            for iid in instance_labels
            if self._live(iid).spec.state
        }
        frame = Frame(
            stamp=float(stamp),
            rgb=rgb_out,
            depth=depth_out,
            K=self.K.copy(),
            map_T_camera=np.array(reported_pose, dtype=np.float64),
            instance=instance_out,
            instance_labels=instance_labels,
            instance_states=states,
        )
        truth = FrameTruth(
            index=self.frame_index,
            stamp=float(stamp),
            map_T_camera=pose.copy(),
            room=self.scene.room_at(float(pose[0, 3]), float(pose[1, 3])),
            visible=visible,
            visible_in_range=in_range,
            vacated_in_view=self._vacated_in_view(pose, depth),
        )
        if self.keep_frame_truth:
            self.log.record_frame(truth)
        return SimStep(frame=frame, truth=truth, instance_truth=instance, depth_truth=depth)

    def render_top_down(self, width_px: int = 800, margin_m: float = 0.3) -> TopDownView:
        """Render the whole scene from 200 m above with a narrow field of view (no noise).

        The covered area is the rooms' extent (or every body's box when there are no rooms)
        plus ``margin_m``; the height follows from the area's aspect ratio. The clock and the
        ground-truth log are untouched.
        """
        if self.scene.rooms:
            lo = np.min([r.min_xy for r in self.scene.rooms], axis=0)
            hi = np.max([r.max_xy for r in self.scene.rooms], axis=0)
        else:
            boxes = [body_aabb(self.client, live.body) for live in self._objects.values()
                     if live.body is not None]  # fmt: skip
            if not boxes:
                raise SimulationError("empty scene: nothing to render from above")
            lo = np.min([b[0][:2] for b in boxes], axis=0)
            hi = np.max([b[1][:2] for b in boxes], axis=0)
        lo, hi = lo - margin_m, hi + margin_m
        extent = hi - lo
        height_px = max(8, round(width_px * extent[1] / extent[0]))
        mpp = float(extent[0] / width_px)
        hi = np.array([hi[0], lo[1] + mpp * height_px])
        altitude = 200.0
        fov = math.degrees(2.0 * math.atan(0.5 * extent[0] / altitude))
        cam = CameraConfig(
            width_px=width_px, height_px=height_px, fov_deg=fov, near_m=altitude - 10.0,
            far_m=altitude + 1.0, depth_min_m=0.0, depth_max_m=altitude + 1.0,
        )  # fmt: skip
        centre = 0.5 * (lo + hi)
        pose = np.eye(4)
        pose[:3, 0] = (1.0, 0.0, 0.0)  # image right = map +x
        pose[:3, 1] = (0.0, -1.0, 0.0)  # image down = map -y
        pose[:3, 2] = (0.0, 0.0, -1.0)  # looking down
        pose[:3, 3] = (centre[0], centre[1], altitude)
        rgb, _, seg = render(self.client, cam, pose)
        return TopDownView(rgb, self._instance_image(seg), lo, hi, mpp)

    # ------------------------------------------------------------------ queries
    def vocabulary(self) -> list[str]:
        """Return the sorted class labels of every object ever in the scene."""
        return sorted({live.spec.label for live in self._objects.values() if live.instance_id})

    def instance_id(self, name: str) -> int:
        """Return the instance id of the object called ``name``; SimulationError if unknown."""
        live = self._objects.get(name)
        if live is None or live.instance_id == 0:
            raise SimulationError(f"no object named {name!r} with an instance id")
        return live.instance_id

    def has_object(self, name: str) -> bool:
        """Tell whether an object called ``name`` is currently present."""
        live = self._objects.get(name)
        return live is not None and live.body is not None

    def object_truth(self, key: str | int) -> ObjectTruth:
        """Return the current truth of an object given by name or instance id."""
        live = self._objects.get(key) if isinstance(key, str) else None
        if isinstance(key, int):
            live = self._live(key)
        if live is None or live.truth is None:
            raise SimulationError(f"no object {key!r} with ground truth")
        return live.truth

    def objects(self, include_absent: bool = False) -> list[ObjectTruth]:
        """Return the truth of every object with an instance id, in instance id order."""
        out = [
            self._objects[name].truth
            for _, name in sorted(self._by_id.items())
            if self._objects[name].truth is not None
        ]
        return [t for t in out if t is not None and (include_absent or t.present)]

    def local_extent(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the (3,) min and max of a present object's box relative to its base position."""
        truth = self._truth(self._present(name))
        return truth.box_min - truth.position, truth.box_max - truth.position

    def measure(self, spec: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
        """Return the (3,) min and max of ``spec``'s box relative to its base; nothing is added."""
        try:
            body = spawn_object(self.client, spec)
        except SceneError as exc:
            raise SimulationError(str(exc)) from exc
        try:
            lo, hi = body_aabb(self.client, body)
        finally:
            self.client.removeBody(body)
        base = np.asarray(spec.pose.position, dtype=np.float64)
        return lo - base, hi - base

    @property
    def changes(self) -> list[ChangeTruth]:
        """Return every change so far, in the order they were made."""
        return list(self.log.changes)

    # ------------------------------------------------------------------ mutations
    def move_object(self, name: str, pose: Pose, stamp: float | None = None) -> ChangeTruth:
        """Teleport a present object to ``pose`` (map frame) and record a MOVED change."""
        live = self._present(name)
        if not pose.is_finite():
            raise SimulationError(f"refusing non-finite pose for {name!r}: {pose}")
        old = self._truth(live)
        self._vacate(old)
        live.spec.pose = copy.deepcopy(pose)
        assert live.body is not None
        # pybullet places a body by its base's centre of mass: offset it by the inertial frame
        # (a mesh asset such as the teddy has its centre of mass away from its link origin)
        inertial = self.client.getDynamicsInfo(live.body, -1)
        position, orientation = self.client.multiplyTransforms(
            list(pose.position), list(pose.orientation_xyzw), inertial[3], inertial[4]
        )
        self.client.resetBasePositionAndOrientation(live.body, position, orientation)
        new = self._refresh(live, self._stamp(stamp))
        return self._change(ChangeKind.MOVED, live, old, new, stamp)

    def remove_object(self, name: str, stamp: float | None = None) -> ChangeTruth:
        """Remove a present object and record a DISAPPEARED change (its id is never reused)."""
        live = self._present(name)
        old = self._truth(live)
        self._vacate(old)
        assert live.body is not None
        self.client.removeBody(live.body)
        live.body = None
        self._lut_dirty = True
        new = dataclasses.replace(old, present=False)
        live.truth = new
        self.log.record_object(self._stamp(stamp), new)
        return self._change(ChangeKind.DISAPPEARED, live, old, new, stamp)

    def add_object(self, spec: ObjectSpec, stamp: float | None = None) -> ChangeTruth:
        """Add a new object (unique name) and record an APPEARED change."""
        if spec.name in self._objects:
            raise SimulationError(f"an object named {spec.name!r} already exists")
        if spec.structure:
            raise SimulationError(f"cannot add structure {spec.name!r} during a run")
        try:
            validate_object(spec)
        except SceneError as exc:
            raise SimulationError(str(exc)) from exc
        live = self._insert(copy.deepcopy(spec), self._stamp(stamp))
        self.scene.objects.append(live.spec)
        assert live.truth is not None
        return self._change(ChangeKind.APPEARED, live, None, live.truth, stamp)

    def set_state(self, name: str, state: str, stamp: float | None = None) -> ChangeTruth:
        """Change the state of a present object (e.g. "open") and record STATE_CHANGED."""
        live = self._present(name)
        if state not in live.spec.states:
            raise SimulationError(
                f"object {name!r} cannot be {state!r}; its states are {list(live.spec.states)}"
            )
        old = self._truth(live)
        live.spec.state = state
        assert live.body is not None
        self.client.removeBody(live.body)
        live.body = spawn_object(self.client, live.spec)
        self._lut_dirty = True
        new = self._refresh(live, self._stamp(stamp))
        return self._change(ChangeKind.STATE_CHANGED, live, old, new, stamp)

    # ------------------------------------------------------------------ internals
    def _vacate(self, old: ObjectTruth) -> None:
        """Remember the box an object leaves, to tell later when its old place is in view."""
        self._vacated[old.instance_id] = box_samples(old.box_min, old.box_max)

    def _vacated_in_view(self, map_T_camera: np.ndarray, depth: np.ndarray) -> dict[int, float]:
        """Share of each vacated box's sample points in view and not hidden, for the frame.

        :func:`memory_node.evaluation.share_in_view` within ``vacated_range_m``, with the
        noise-free depth (the place itself, or what is behind it, is what the camera sees).
        """
        out: dict[int, float] = {}
        if not self._vacated:
            return out
        camera_T_map = invert_transform(map_T_camera)
        for iid, pts in self._vacated.items():
            share = share_in_view(pts, depth, self.K, camera_T_map, self.config.vacated_range_m)
            if share > 0:
                out[iid] = round(share, 3)
        return out

    def _stamp(self, stamp: float | None) -> float:
        """Return ``stamp`` or the current sim time."""
        if stamp is None:
            return self.time
        if not math.isfinite(stamp):
            raise SimulationError(f"non-finite stamp {stamp}")
        return float(stamp)

    def _insert(self, spec: ObjectSpec, stamp: float) -> _Live:
        """Spawn ``spec`` and register it, giving it the next instance id unless structure."""
        body = spawn_object(self.client, spec)
        iid = 0
        if not spec.structure:
            iid = self._next_id
            self._next_id += 1
            self._by_id[iid] = spec.name
        live = _Live(spec=spec, instance_id=iid, body=body)
        self._objects[spec.name] = live
        self._lut_dirty = True
        if iid:
            self._refresh(live, stamp)
        return live

    def _refresh(self, live: _Live, stamp: float) -> ObjectTruth:
        """Recompute and log the truth of a present object."""
        assert live.body is not None
        box_min, box_max = body_aabb(self.client, live.body)
        center = 0.5 * (box_min + box_max)
        truth = ObjectTruth(
            instance_id=live.instance_id,
            name=live.spec.name,
            label=live.spec.label,
            room=self.scene.room_at(float(center[0]), float(center[1])),
            static=live.spec.static,
            state=live.spec.state,
            present=True,
            position=np.asarray(live.spec.pose.position, dtype=np.float64),
            box_min=box_min,
            box_max=box_max,
        )
        live.truth = truth
        self.log.record_object(stamp, truth)
        return truth

    def _change(
        self,
        kind: ChangeKind,
        live: _Live,
        old: ObjectTruth | None,
        new: ObjectTruth,
        stamp: float | None,
    ) -> ChangeTruth:
        """Record and return one change."""
        change = ChangeTruth(
            event=ChangeEvent(
                kind=kind,
                object_id=live.spec.name,
                label=live.spec.label,
                stamp=self._stamp(stamp),
                old_position=old.center if old is not None else np.zeros(3),
                new_position=new.center if kind != ChangeKind.DISAPPEARED else np.zeros(3),
                old_state=old.state if old is not None else "",
                new_state=new.state if kind != ChangeKind.DISAPPEARED else "",
            ),
            instance_id=live.instance_id,
            old_room=old.room if old is not None else "",
            new_room=new.room if kind != ChangeKind.DISAPPEARED else "",
        )
        self.log.record_change(change)
        LOG.debug("change %s %s at %.2f s", kind.name, live.spec.name, change.stamp)
        return change

    def _present(self, name: str) -> _Live:
        """Return the live record of a present, non-structure object or raise."""
        live = self._objects.get(name)
        if live is None:
            raise SimulationError(f"unknown object {name!r}")
        if live.body is None:
            raise SimulationError(f"object {name!r} was removed")
        if live.instance_id == 0:
            raise SimulationError(f"object {name!r} is structure and cannot change")
        return live

    def _truth(self, live: _Live) -> ObjectTruth:
        """Return the current truth of a live object (always set for instance objects)."""
        if live.truth is None:
            raise SimulationError(f"object {live.spec.name!r} has no ground truth")
        return live.truth

    def _live(self, instance_id: int) -> _Live:
        """Return the live record of an instance id."""
        name = self._by_id.get(instance_id)
        if name is None:
            raise SimulationError(f"unknown instance id {instance_id}")
        return self._objects[name]

    def _instance_image(self, seg: np.ndarray) -> np.ndarray:
        """Map a pybullet segmentation image (body ids, -1 = none) to instance ids (0 = none)."""
        if self._lut_dirty:
            bodies = [live.body for live in self._objects.values() if live.body is not None]
            lut = np.zeros(max(bodies, default=0) + 2, dtype=np.int32)
            for live in self._objects.values():
                if live.body is not None:
                    lut[live.body + 1] = live.instance_id
            self._lut = lut
            self._lut_dirty = False
        seg = np.asarray(seg)
        body = seg & ((1 << 24) - 1)
        body = np.where(seg < 0, -1, body)
        body = np.clip(body, -1, len(self._lut) - 2)
        return self._lut[body + 1]

    def summary(self) -> dict[str, Any]:
        """Return counts useful in logs: objects present, removed, changes, frames."""
        objs = self.objects(include_absent=True)
        return {
            "objects_present": sum(o.present for o in objs),
            "objects_removed": sum(not o.present for o in objs),
            "changes": len(self.log.changes),
            "frames": self.frame_index,
            "time_s": self.time,
        }
