"""A small synchronous client of the memory services, for scripts, demos and planners.

It owns a node spun by a background executor, so calls block the caller, never a callback.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import Trigger

from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    PolicyMemoryStep,
    QueryObjects,
    SaveMemory,
)
from memory_node.ros.conversions import sec_to_time, tokens_to_field


class MemoryClient:
    """Blocking calls to scene_memory and policy_memory (names relative to ``namespace``)."""

    def __init__(
        self, namespace: str = "", context: Any = None, node_name: str = "memory_client"
    ) -> None:
        self.node = Node(node_name, namespace=namespace, context=context)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        self._clients: dict[str, Any] = {}

    def call(self, srv_type: Any, name: str, request: Any, timeout_s: float = 30.0) -> Any:
        """Call service ``name``; raise TimeoutError when it is absent or does not answer."""
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {name} is not available")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError(f"service {name} did not answer within {timeout_s} s")
        return future.result()

    def query(
        self,
        text: str = "",
        near: tuple[float, float, float] | None = None,
        radius: float = 0.0,
        zone_id: str = "",
        k: int = 0,
    ) -> QueryObjects.Response:
        """Call ``scene_memory/query_objects``."""
        req = QueryObjects.Request(text=text, radius=float(radius), zone_id=zone_id, k=k)
        if near is not None:
            req.use_near = True
            req.near.x, req.near.y, req.near.z = (float(v) for v in near)
        return self.call(QueryObjects, "scene_memory/query_objects", req)

    def scene_graph(
        self, focus: str = "", max_objects: int = 0, max_tokens: int = 0
    ) -> GetSceneGraph.Response:
        """Call ``scene_memory/get_scene_graph``."""
        req = GetSceneGraph.Request(focus=focus, max_objects=max_objects, max_tokens=max_tokens)
        return self.call(GetSceneGraph, "scene_memory/get_scene_graph", req)

    def changes(
        self, since_s: float = 0.0, object_id: str = "", max_results: int = 0
    ) -> GetObjectChanges.Response:
        """Call ``scene_memory/get_changes``."""
        req = GetObjectChanges.Request(
            since=sec_to_time(since_s) if since_s > 0 else Time(),
            object_id=object_id,
            max_results=max_results,
        )
        return self.call(GetObjectChanges, "scene_memory/get_changes", req)

    def save(self, path: str) -> SaveMemory.Response:
        """Call ``scene_memory/save``."""
        return self.call(SaveMemory, "scene_memory/save", SaveMemory.Request(path=path))

    def load(self, path: str) -> LoadMemory.Response:
        """Call ``scene_memory/load``."""
        return self.call(LoadMemory, "scene_memory/load", LoadMemory.Request(path=path))

    def policy_step(
        self, timestep: int, perceptual: np.ndarray, cognitive: np.ndarray, write: bool = True
    ) -> PolicyMemoryStep.Response:
        """Call ``policy_memory/step`` with (num_tokens, dim) and (dim,) float32 arrays."""
        p = np.asarray(perceptual)
        req = PolicyMemoryStep.Request(
            timestep=int(timestep), num_tokens=p.shape[0], dim=p.shape[1], write=write
        )
        req.perceptual = tokens_to_field(p)
        req.cognitive = tokens_to_field(cognitive)
        return self.call(PolicyMemoryStep, "policy_memory/step", req)

    def policy_reset(self) -> Trigger.Response:
        """Call ``policy_memory/reset``."""
        return self.call(Trigger, "policy_memory/reset", Trigger.Request())

    def close(self) -> None:
        """Stop the background executor and destroy the node."""
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def init_client(namespace: str = "") -> MemoryClient:
    """``rclpy.init`` (when needed) and a client in the default context."""
    if not rclpy.ok():
        rclpy.init()
    return MemoryClient(namespace)
