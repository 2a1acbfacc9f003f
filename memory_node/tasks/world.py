"""The robot's body in the built-in simulator: a camera on a base that drives on the free space.

:class:`TaskWorld` owns one :class:`memory_sim.simulator.Simulator`. The robot moves along A*
paths of the house's occupancy grid (:mod:`memory_node.tasks.grid`, built from the simulator's
walls and furniture), renders a frame every ``frame_every_m`` metres while it drives, spins to
look around a room, and turns its camera to an object to confirm it. Every rendered frame goes
to the ``sink`` callbacks (the memory's ingest and the agent's perception).

What the robot perceives of a frame (:func:`sightings`) uses the frame only, as a real robot
would: the simulated segmenter's masks and labels (with their noise) and the depth image.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from memory_node.core.config import param
from memory_node.tasks.grid import OccupancyGrid, Path
from memory_sim.camera import look_pose
from memory_sim.scene import ObjectSpec, SceneSpec, resolve_asset_path
from memory_sim.simulator import SimConfig, SimStep, Simulator

DOOR_LABELS = ("door",)
"""Labels the robot can pass through (a door leaf swings open): not obstacles on the grid."""


def blocks_robot(bottom_z: float, top_z: float) -> bool:
    """Whether something spanning ``bottom_z``..``top_z`` (map z, metres) is in the robot's way.

    Above 5 cm (a rug is not) and reaching below 1.5 m (a shelf above the robot is not).
    """
    return top_z > 0.05 and bottom_z < 1.5


WALL_SECTION_HEIGHTS_M = (0.2, 0.7, 1.2)
"""Heights at which mesh walls are cut to find where they stand (see :func:`wall_footprints`)."""


def wall_footprints(
    spec: ObjectSpec, lo: np.ndarray, hi: np.ndarray, piece_m: float = 0.1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the xy boxes a structure object (walls) blocks at the robot's height.

    ``lo``, ``hi``: its (3,) bounding box. Walls made of primitives (a procedural house: one box
    each) block their bounding box when :func:`blocks_robot`. Mesh walls (an imported house:
    one mesh for every wall, whose box is the whole house) block where horizontal cuts at
    :data:`WALL_SECTION_HEIGHTS_M` meet them: each cut segment becomes one box when it runs
    along an axis, else boxes of at most ``piece_m``.
    """
    if not blocks_robot(lo[2], hi[2]):
        return []
    if all(p.shape != "mesh" for p in spec.parts):
        return [(lo[:2].copy(), hi[:2].copy())]
    import trimesh  # only imported houses need it
    from trimesh.intersections import mesh_plane

    out = []
    for part in spec.parts:
        T = spec.pose.matrix() @ part.pose.matrix()
        if part.shape != "mesh":
            centre = T[:3, 3]
            half = 0.5 * np.abs(T[:3, :3]) @ np.asarray(part.size, float)
            out.append((centre[:2] - half[:2], centre[:2] + half[:2]))
            continue
        mesh = trimesh.load(resolve_asset_path(part.mesh_path, spec.name), force="mesh")
        mesh.apply_transform(T @ np.diag([*part.mesh_scale, 1.0]))
        for h in WALL_SECTION_HEIGHTS_M:
            for a, b in mesh_plane(mesh, (0.0, 0.0, 1.0), (0.0, 0.0, h))[:, :, :2]:
                d = b - a
                n = 1 if min(abs(d[0]), abs(d[1])) < 0.02 else math.ceil(np.hypot(*d) / piece_m)
                ts = np.linspace(0.0, 1.0, n + 1)
                for t0, t1 in itertools.pairwise(ts):
                    p, q = a + t0 * d, a + t1 * d
                    out.append((np.minimum(p, q), np.maximum(p, q)))
    return out


@dataclass
class WorldConfig:
    """The robot's camera, motion and perception in the task suite."""

    width_px: int = param(320, "camera image width (modest: rendering costs ~0.05 s a frame)")
    height_px: int = param(240, "camera image height")
    fov_deg: float = param(90.0, "horizontal field of view", min_value=30.0, max_value=150.0)
    camera_height_m: float = param(1.3, "camera height above the floor", min_value=0.3)
    pitch_rad: float = param(-0.35, "camera pitch while driving and spinning (down < 0)")
    frame_every_m: float = param(2.0, "a frame every this many metres driven", min_value=0.1)
    spin_frames: int = param(5, "frames of a look-around spin", min_value=1)
    robot_radius_m: float = param(0.25, "obstacles are inflated by this radius", min_value=0.0)
    grid_resolution_m: float = param(0.1, "occupancy grid cell side", min_value=0.02)
    reach_m: float = param(1.0, "an object is reached within this xy distance of its box")
    min_pixels: int = param(12, "pixels with depth an object needs to count as seen")
    seed: int = param(0, "seed of the sensor noise")


@dataclass
class Sighting:
    """One object the robot sees in a frame (from the frame's own masks, labels and depth).

    Attributes:
        label: label given by the (simulated) segmenter.
        position: (3,) median of the mask's back-projected depth, metres, map frame.
        pixels: mask pixels with a depth reading.
        state: state reported with the mask ("" when none).
        stamp: the frame's stamp, seconds.
    """

    label: str
    position: np.ndarray
    pixels: int
    state: str = ""
    stamp: float = 0.0


def sightings(step: SimStep, min_pixels: int = 25) -> list[Sighting]:
    """Objects seen in a frame with at least ``min_pixels`` depth pixels, largest first."""
    frame = step.frame
    if frame.instance is None or not frame.instance_labels:
        return []
    depth = frame.depth
    valid = np.isfinite(depth) & (depth > 0)
    ids = frame.instance[valid]
    rows, cols = np.nonzero(valid)
    z = depth[valid].astype(np.float64)
    K = frame.K
    x = (cols - K[0, 2]) / K[0, 0] * z
    y = (rows - K[1, 2]) / K[1, 1] * z
    pts_cam = np.stack([x, y, z], axis=1)
    pts = pts_cam @ frame.map_T_camera[:3, :3].T + frame.map_T_camera[:3, 3]
    out = []
    states = frame.instance_states or {}
    for iid, (label, _score) in frame.instance_labels.items():
        mask = ids == iid
        n = int(np.count_nonzero(mask))
        if n < min_pixels:
            continue
        out.append(
            Sighting(label, np.median(pts[mask], axis=0), n, states.get(iid, ""), frame.stamp)
        )
    out.sort(key=lambda s: -s.pixels)
    return out


@dataclass
class Odometry:
    """What the robot did: metres driven, frames rendered."""

    path_m: float = 0.0
    frames: int = 0
    legs: list[float] = field(default_factory=list)


class TaskWorld:
    """The robot in a simulated house (see the module docstring).

    Args:
        scene: the house.
        config: camera, motion and perception settings.
        start_xy: (2,) dock position, metres, map frame.
    """

    def __init__(
        self, scene: SceneSpec, config: WorldConfig | None = None, start_xy: tuple = (0, 0)
    ) -> None:
        self.config = config or WorldConfig()
        c = self.config
        sim_config = SimConfig()
        sim_config.camera.width_px, sim_config.camera.height_px = c.width_px, c.height_px
        sim_config.camera.fov_deg = c.fov_deg
        sim_config.seed = c.seed
        # the simulated segmenter's smallest mask was set for 640 x 480: scale it with the area
        area = c.width_px * c.height_px / (640.0 * 480.0)
        sim_config.noise.mask_min_pixels = max(
            1, round(sim_config.noise.mask_min_pixels * min(1.0, area))
        )
        self.sim = Simulator(scene, sim_config, keep_frame_truth=True)
        self.scene = self.sim.scene
        self._walls: list[tuple[np.ndarray, np.ndarray]] = []
        for spec in self.scene.objects:
            if spec.structure:
                lo, hi = self.sim.measure(spec)
                base = np.asarray(spec.pose.position, float)
                self._walls += wall_footprints(spec, base + lo, base + hi)
        self.room_centres: dict[str, np.ndarray] = {
            r.name: np.array(r.center_xy, dtype=np.float64) for r in self.scene.rooms
        }
        if self.scene.rooms:
            self.min_xy = np.min([r.min_xy for r in self.scene.rooms], axis=0) - 0.5
            self.max_xy = np.max([r.max_xy for r in self.scene.rooms], axis=0) + 0.5
        else:
            lo = np.min([o.box_min[:2] for o in self.sim.objects()], axis=0)
            hi = np.max([o.box_max[:2] for o in self.sim.objects()], axis=0)
            self.min_xy, self.max_xy = lo - 0.5, hi + 0.5
        self._grid: OccupancyGrid | None = None
        self._grid_changes = -1
        self.xy = np.asarray(start_xy, dtype=np.float64)
        self.yaw = 0.0
        self.odometry = Odometry()
        self.sinks: list[Callable[[SimStep], None]] = []

    def close(self) -> None:
        """Release the simulator."""
        self.sim.close()

    # ------------------------------------------------------------------ map
    @property
    def grid(self) -> OccupancyGrid:
        """The occupancy grid of the house as it is now (rebuilt after the scene changed)."""
        if self._grid is None or self._grid_changes != len(self.sim.log.changes):
            obstacles = list(self._walls)
            for o in self.sim.objects():
                if o.label in DOOR_LABELS or not blocks_robot(o.box_min[2], o.box_max[2]):
                    continue
                if not o.static and o.box_min[2] > 0.1:
                    continue  # a small object on furniture: the furniture is the obstacle
                obstacles.append((o.box_min[:2], o.box_max[:2]))
            c = self.config
            self._grid = OccupancyGrid(
                self.min_xy, self.max_xy, obstacles, c.grid_resolution_m, c.robot_radius_m
            )
            self._grid_changes = len(self.sim.log.changes)
        return self._grid

    def room_of(self, xy: np.ndarray) -> str:
        """Room holding map point ``xy`` ("" outside every room)."""
        return self.scene.room_at(float(xy[0]), float(xy[1]))

    def room_centre(self, room: str) -> np.ndarray:
        """(2,) where the robot looks around ``room``: :attr:`room_centres` (default: centre)."""
        return self.room_centres[room]

    def room_goal(self, room: str) -> np.ndarray:
        """Grid mask of free cells near :meth:`room_centre` (within 0.8 m, else in the room)."""
        r = self.scene.room(room)
        cx, cy = self.room_centre(room)
        gx, gy = self.grid.centres()
        inside = (
            (gx > r.min_xy[0] + 0.3)
            & (gx < r.max_xy[0] - 0.3)
            & (gy > r.min_xy[1] + 0.3)
            & (gy < r.max_xy[1] - 0.3)
        )
        near = inside & self.grid.free & (np.hypot(gx - cx, gy - cy) <= 0.8)
        return near if near.any() else inside & self.grid.free

    # ------------------------------------------------------------------ motion
    def plan_to(self, goal: np.ndarray) -> Path | None:
        """Return the A* path from the robot to a goal mask of the grid (None when unreachable)."""
        return self.grid.astar(self.xy, goal)

    def plan_to_box(self, box_min: np.ndarray, box_max: np.ndarray) -> Path | None:
        """Return an A* path to a free cell within reach of a box (1.5x reach if none)."""
        goal = self.grid.near_box(box_min, box_max, self.config.reach_m)
        if not goal.any():
            goal = self.grid.near_box(box_min, box_max, 1.5 * self.config.reach_m)
        return self.plan_to(goal)

    def follow(self, path: Path) -> None:
        """Drive along ``path``, rendering a frame every ``frame_every_m`` (facing forward)."""
        pts = path.points
        step_m = self.config.frame_every_m
        since = 0.0
        for a, b in itertools.pairwise(pts):
            d = float(np.hypot(*(b - a)))
            self.yaw = math.atan2(b[1] - a[1], b[0] - a[0])
            self.xy = b.copy()
            since += d
            if since >= step_m:
                since = 0.0
                self.observe(self.yaw)
        self.odometry.path_m += path.length_m
        self.odometry.legs.append(path.length_m)
        if len(pts):
            self.xy = pts[-1].copy()

    def observe(self, yaw: float, pitch: float | None = None) -> SimStep:
        """Render one frame from the robot's place, hand it to the sinks and return it."""
        c = self.config
        position = [float(self.xy[0]), float(self.xy[1]), c.camera_height_m]
        step = self.sim.step(look_pose(position, yaw, c.pitch_rad if pitch is None else pitch))
        self.odometry.frames += 1
        for sink in self.sinks:
            sink(step)
        return step

    def spin(self, frames: int | None = None) -> list[SimStep]:
        """Turn in place, one frame every 360 / n degrees."""
        n = frames or self.config.spin_frames
        out = []
        for k in range(n):
            self.yaw = self.yaw + 2.0 * math.pi / n if k else self.yaw
            out.append(self.observe(self.yaw))
        return out

    def look_at(self, point: np.ndarray) -> SimStep:
        """Turn the camera towards ``point`` (3,) and render a frame."""
        c = self.config
        dx, dy = float(point[0] - self.xy[0]), float(point[1] - self.xy[1])
        self.yaw = math.atan2(dy, dx) if abs(dx) + abs(dy) > 1e-6 else self.yaw
        dist = max(math.hypot(dx, dy), 0.3)
        pitch = -math.atan2(c.camera_height_m - float(point[2]), dist)
        return self.observe(self.yaw, max(min(pitch, 0.3), -1.2))

    def sightings(self, step: SimStep) -> list[Sighting]:
        """Objects the robot sees in ``step`` (see :func:`sightings`)."""
        return sightings(step, self.config.min_pixels)

    def distance_to_box(self, box_min: np.ndarray, box_max: np.ndarray) -> float:
        """Xy distance from the robot to a box footprint, metres."""
        d = np.clip(np.maximum(box_min[:2] - self.xy, self.xy - box_max[:2]), 0.0, None)
        return float(np.hypot(*d))
