"""Pinhole RGB-D camera rendered with pybullet's CPU renderer (TinyRenderer).

Frames: the optical frame is z forward, x right, y down; the map frame is z up. pybullet's view
matrix uses the OpenGL camera frame (x right, y up, z backward), which is the optical frame
rotated by 180 degrees about x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from memory_node.core.config import param

# OpenGL camera frame expressed in the optical frame (and its own inverse).
_OPTICAL_T_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class CameraConfig:
    """Intrinsics, clipping and valid range of the simulated RGB-D camera.

    Defaults resemble an Intel RealSense D435 colour stream aligned with depth.
    """

    width_px: int = param(640, "image width", min_value=8, max_value=4096)
    height_px: int = param(480, "image height", min_value=8, max_value=4096)
    fov_deg: float = param(
        69.0, "horizontal field of view (square pixels)", min_value=10.0, max_value=150.0
    )
    near_m: float = param(0.05, "near clipping plane of the renderer", min_value=0.001)
    far_m: float = param(15.0, "far clipping plane of the renderer", min_value=0.1)
    depth_min_m: float = param(
        0.2, "closest valid depth reading; nearer pixels read 0", min_value=0.0
    )
    depth_max_m: float = param(
        6.0, "farthest valid depth reading; farther pixels and no-hit pixels read 0", min_value=0.1
    )
    shadows: bool = param(False, "render shadows (slower)")

    def validate(self) -> None:
        """Raise ValueError when the values are inconsistent with each other."""
        if not 0 < self.near_m < self.far_m:
            raise ValueError(f"camera: need 0 < near_m < far_m, got {self.near_m}, {self.far_m}")
        if not self.depth_min_m < self.depth_max_m:
            raise ValueError("camera: need depth_min_m < depth_max_m")


def intrinsics(config: CameraConfig) -> np.ndarray:
    """Return the (3, 3) float64 pinhole matrix K of the rendered images.

    Pixel centres are at integer coordinates (OpenCV convention). TinyRenderer samples each
    pixel at its corner rather than its centre, with rows counted from the bottom, so the
    rendered image is shifted by half a pixel right and up from a centred projection (measured:
    +0.50 / -0.50 px at 33x25, 160x120 and 640x480; see test_sim_camera). The principal point
    accounts for it: cx = W / 2, cy = H / 2 - 1 instead of ((W - 1) / 2, (H - 1) / 2).
    """
    w, h = config.width_px, config.height_px
    f = 0.5 * w / math.tan(math.radians(config.fov_deg) / 2.0)
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0 - 1.0], [0.0, 0.0, 1.0]])


def vertical_fov_deg(config: CameraConfig) -> float:
    """Return the vertical field of view in degrees implied by the horizontal one and aspect."""
    half = math.atan(
        math.tan(math.radians(config.fov_deg) / 2.0) * config.height_px / config.width_px
    )
    return math.degrees(2.0 * half)


def projection_matrix(config: CameraConfig) -> list[float]:
    """Return pybullet's 16-float column-major OpenGL projection matrix for this camera."""
    return list(
        pybullet.computeProjectionMatrixFOV(
            fov=vertical_fov_deg(config),
            aspect=config.width_px / config.height_px,
            nearVal=config.near_m,
            farVal=config.far_m,
        )
    )


def view_matrix(map_T_camera: np.ndarray) -> list[float]:
    """Return pybullet's 16-float column-major view matrix for an optical-frame pose.

    Args:
        map_T_camera: (4, 4) pose of the optical frame in the map frame.
    """
    gl_T_map = np.linalg.inv(np.asarray(map_T_camera, dtype=np.float64) @ _OPTICAL_T_GL)
    return [float(v) for v in gl_T_map.flatten(order="F")]


def linearize_depth(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convert an OpenGL depth buffer in [0, 1] to metres along the optical axis.

    Args:
        buffer: (H, W) depth buffer values.
        near: near clipping plane, metres.
        far: far clipping plane, metres.

    Returns:
        (H, W) float32 metres; pixels at the far plane (no hit) are ``far``.
    """
    d = np.asarray(buffer, dtype=np.float64)
    return (far * near / (far - (far - near) * d)).astype(np.float32)


def look_pose(position: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """Return map_T_camera (4, 4) of an optical frame at ``position`` looking along yaw/pitch.

    Args:
        position: (3,) metres, map frame.
        yaw: heading about map z, radians (0 = +x).
        pitch: elevation, radians (negative looks down).
    """
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    z_axis = np.array([cp * cy, cp * sy, sp])
    x_axis = np.array([sy, -cy, 0.0])
    y_axis = np.cross(z_axis, x_axis)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2] = x_axis, y_axis, z_axis
    T[:3, 3] = np.asarray(position, dtype=np.float64)
    return T


def check_pose(map_T_camera: np.ndarray) -> np.ndarray:
    """Return ``map_T_camera`` as (4, 4) float64 after checking it is a finite rigid transform.

    Raises:
        ValueError: wrong shape, non-finite entries, or a rotation that is not orthonormal.
    """
    T = np.asarray(map_T_camera, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"camera pose must be (4, 4), got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError("camera pose has non-finite entries")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise ValueError("camera pose rotation is not a proper orthonormal matrix")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError("camera pose last row must be [0, 0, 0, 1]")
    return T


def render(
    client: BulletClient, config: CameraConfig, map_T_camera: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one noise-free view.

    Returns:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 metres along the optical axis, 0 outside [depth_min_m, depth_max_m]
            or where nothing was hit.
        segmentation: (H, W) int32 pybullet body unique ids, -1 where nothing was hit.
    """
    w, h = config.width_px, config.height_px
    _, _, rgba, depth_buffer, seg = client.getCameraImage(
        w,
        h,
        viewMatrix=view_matrix(map_T_camera),
        projectionMatrix=projection_matrix(config),
        shadow=int(config.shadows),
        renderer=pybullet.ER_TINY_RENDERER,
    )
    rgb = np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3])
    depth = linearize_depth(np.asarray(depth_buffer).reshape(h, w), config.near_m, config.far_m)
    seg = np.asarray(seg, dtype=np.int32).reshape(h, w)
    invalid = (depth < config.depth_min_m) | (depth > config.depth_max_m) | (seg < 0)
    depth[invalid] = 0.0
    return rgb, depth, seg
