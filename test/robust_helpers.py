"""Shared pieces of the robustness tests: a small filled memory and a snapshot fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import Frame, MemorySnapshot

W, H = 96, 72
K = intrinsics(W, H, fov_deg=70.0)
EYES = [np.array([0.0, y, 1.4]) for y in (-0.3, 0.0, 0.3, 0.1)]
TARGET = np.array([2.5, 0.0, 0.2])


def config() -> SceneMemoryConfig:
    cfg = SceneMemoryConfig()
    cfg.features.mode = "off"
    return cfg


def world(mug_y: float = 0.8) -> BoxWorld:
    return BoxWorld(
        [
            Box(np.array([2.5, 0.0, 0.25]), np.array([0.5, 0.5, 0.5]), "crate", 1, (180, 40, 40)),
            Box(np.array([2.2, mug_y, 0.1]), np.array([0.2, 0.2, 0.2]), "mug", 2, (40, 180, 40)),
        ]
    )


def view(stamp: float, i: int = 0, w: BoxWorld | None = None) -> Frame:
    return render(w or world(), K, look_at(EYES[i % len(EYES)], TARGET), W, H, stamp)


def filled_memory(frames: int = 6, t0: float = 100.0) -> SceneMemory:
    """Return a memory holding a crate and a mug, from ``frames`` frames stamped from ``t0``."""
    mem = SceneMemory(config())
    for i in range(frames):
        mem.ingest(view(t0 + 0.1 * i, i))
    return mem


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, np.ndarray):
        h.update(str((value.dtype.str, value.shape)).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            h.update(repr(k).encode())
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"[{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif hasattr(value, "__dataclass_fields__"):
        h.update(type(value).__name__.encode())
        for name in value.__dataclass_fields__:
            h.update(name.encode())
            _feed(h, getattr(value, name))
    else:
        h.update(repr(value).encode())


def fingerprint(snapshot: MemorySnapshot) -> str:
    """Return a digest of every field of ``snapshot`` (objects, arrays, keyframes, meta)."""
    h = hashlib.sha256()
    _feed(h, snapshot)
    return h.hexdigest()


def memory_fingerprint(mem: SceneMemory) -> str:
    """Fingerprint of the memory's full snapshot plus its internal (tentative) models."""
    h = hashlib.sha256(fingerprint(mem.snapshot()).encode())
    stats = mem.stats()
    for key in ("objects_tentative", "voxels", "next_object_index", "short_term_entries"):
        h.update(f"{key}={stats[key]}".encode())
    return h.hexdigest()
