"""A tiny ray-cast box world giving posed RGB-D frames with exact instance masks.

For known-answer tests and benchmarks that must not depend on the simulator: axis-aligned boxes
standing in the map frame (z up) over an optional floor at z = 0, seen by a pinhole camera whose
optical frame is z forward, x right, y down. Depth is exact (metres along the optical axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memory_node.core.types import Frame


@dataclass
class Box:
    """An axis-aligned box of the synthetic world.

    Attributes:
        center: (3,) metres, map frame.
        size: (3,) extents, metres.
        label: class label reported with the mask.
        instance_id: id written in the instance image (> 0).
        color: RGB uint8 colour.
        state: optional state reported in ``instance_states``.
    """

    center: np.ndarray
    size: np.ndarray
    label: str
    instance_id: int
    color: tuple[int, int, int] = (200, 60, 60)
    state: str = ""


@dataclass
class BoxWorld:
    """Boxes plus an optional floor (instance 0, grey)."""

    boxes: list[Box] = field(default_factory=list)
    floor: bool = True


def intrinsics(width: int, height: int, fov_deg: float = 60.0) -> np.ndarray:
    """(3, 3) pinhole intrinsics with the given horizontal field of view."""
    fx = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[fx, 0, (width - 1) / 2], [0, fx, (height - 1) / 2], [0, 0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """(4, 4) map_T_camera of an optical frame at ``eye`` looking at ``target`` (map z up)."""
    eye = np.asarray(eye, np.float64)
    z = np.asarray(target, np.float64) - eye
    z /= np.linalg.norm(z)
    up_v = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, np.float64)
    x = np.cross(z, up_v)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def render(
    world: BoxWorld,
    K: np.ndarray,
    map_T_camera: np.ndarray,
    width: int,
    height: int,
    stamp: float,
    max_depth: float = 20.0,
) -> Frame:
    """Ray-cast the world into a :class:`Frame` with rgb, depth, instance ids, labels, states.

    Pixels that hit nothing get depth 0 (no reading).
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    dirs_c = np.stack(
        [(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1
    ).reshape(-1, 3)
    R = map_T_camera[:3, :3]
    o = map_T_camera[:3, 3]
    d = dirs_c @ R.T  # ray directions, map frame; parameter t = optical depth
    best = np.full(d.shape[0], np.inf)
    inst = np.zeros(d.shape[0], np.int32)
    color = np.full((d.shape[0], 3), 128, np.uint8)
    if world.floor:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -o[2] / d[:, 2]
        hit = (t > 1e-6) & (t < best)
        best[hit] = t[hit]
    inv = np.where(np.abs(d) > 1e-12, 1.0 / np.where(np.abs(d) > 1e-12, d, 1.0), 1e12)
    for box in world.boxes:
        lo = np.asarray(box.center) - 0.5 * np.asarray(box.size)
        hi = np.asarray(box.center) + 0.5 * np.asarray(box.size)
        t1 = (lo - o) * inv
        t2 = (hi - o) * inv
        tn = np.minimum(t1, t2).max(axis=1)
        tf = np.maximum(t1, t2).min(axis=1)
        hit = (tf >= np.maximum(tn, 1e-6)) & (tn > 1e-6) & (tn < best)
        best[hit] = tn[hit]
        inst[hit] = box.instance_id
        color[hit] = box.color
    depth = np.where(np.isfinite(best) & (best <= max_depth), best, 0.0).astype(np.float32)
    inst[depth.ravel() == 0] = 0
    return Frame(
        stamp=float(stamp),
        rgb=color.reshape(height, width, 3),
        depth=depth.reshape(height, width),
        K=np.asarray(K, np.float64),
        map_T_camera=np.asarray(map_T_camera, np.float64),
        instance=inst.reshape(height, width),
        instance_labels={b.instance_id: (b.label, 1.0) for b in world.boxes},
        instance_states={b.instance_id: b.state for b in world.boxes if b.state},
    )
