"""The memory as the agent sees it: the three public services, counted.

:class:`CoreServices` answers through the in-core :class:`SceneMemory` API (fast; what the
benchmark uses); :class:`RosServices` (in :mod:`memory_node.tasks.ros_services`) calls the real
``scene_memory`` node's ``~/query_objects``, ``~/get_changes`` and ``~/get_scene_graph``. Both
return core types (:class:`SceneObject`, :class:`ChangeEvent`) and count every call.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from typing import Protocol

import numpy as np

from memory_node.core.scene_memory import SceneMemory
from memory_node.core.types import ChangeEvent, Frame, InvalidInput, QueryRequest, SceneObject


class MemoryServices(Protocol):
    """The services an agent may use, and the frame input of the memory."""

    calls: Counter[str]

    def query_objects(
        self, text: str = "", near: np.ndarray | None = None, radius: float = 0.0, k: int = 0
    ) -> list[SceneObject]:
        """``~/query_objects``: objects best first."""
        ...

    def get_changes(self, since: float = -math.inf) -> list[ChangeEvent]:
        """``~/get_changes``: changes since ``since`` (seconds), newest first."""
        ...

    def get_scene_graph(self, focus: str = "", max_tokens: int = 0) -> tuple[str, int]:
        """``~/get_scene_graph``: (text, token count) of the (focused) graph."""
        ...

    def ingest(self, frame: Frame) -> None:
        """Give the memory a frame (the node's camera topics; not a query service)."""
        ...


class CoreServices:
    """The services answered by an in-process :class:`SceneMemory` (see the module docstring).

    Args:
        memory: the memory; ``None`` is not allowed (the no-memory agent has no services).
        ingest_frames: feed the frames the agent sees into the memory (False: a frozen map).
    """

    def __init__(self, memory: SceneMemory, ingest_frames: bool = True) -> None:
        self.memory = memory
        self.ingest_frames = ingest_frames
        self.calls: Counter[str] = Counter()

    def query_objects(
        self, text: str = "", near: np.ndarray | None = None, radius: float = 0.0, k: int = 0
    ) -> list[SceneObject]:
        """Objects ranked for ``text`` (and/or near a point), best first."""
        self.calls["query_objects"] += 1
        req = QueryRequest(text=text, near=near, radius=radius, k=k)
        return [s.obj for s in self.memory.query(req)]

    def get_changes(self, since: float = -math.inf) -> list[ChangeEvent]:
        """Change events with stamp >= ``since``, newest first."""
        self.calls["get_changes"] += 1
        return self.memory.changes(since=since)

    def get_scene_graph(self, focus: str = "", max_tokens: int = 0) -> tuple[str, int]:
        """Return the graph's rendering (focused on ``focus``) within ``max_tokens``."""
        self.calls["get_scene_graph"] += 1
        rendered = self.memory.render(focus=focus, max_tokens=max_tokens)
        return rendered.text, rendered.token_count

    def ingest(self, frame: Frame) -> None:
        """Ingest ``frame`` unless the map is frozen; a refused frame changes nothing."""
        if not self.ingest_frames:
            return
        with contextlib.suppress(InvalidInput):
            self.memory.ingest(frame)
