"""The ``fleet_memory`` node: the shared long-term memory of several robots.

Robots push their long-term objects to the shared store themselves (``scene_memory`` with
``fleet.url`` set, through :class:`~memory_node.core.fleet.FleetSync`); this node reads the
store, refreshes its copy every ``refresh_period_s`` and answers the same services as
``scene_memory`` over the whole fleet: ``~/query_objects``, ``~/get_scene_graph``,
``~/get_changes``, ``~/save``, ``~/load``. It publishes the fleet graph on ``~/scene_graph``
(reliable, transient local) after a change.

Concurrency: services and the refresh timer run in one mutually-exclusive callback group; one
lock guards the core. A store that is down is logged (throttled) and the last copy keeps
answering; it is picked up again when the server returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from memory_interfaces.msg import SceneGraph
from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    QueryObjects,
    SaveMemory,
)
from memory_node.core.config import flatten, param
from memory_node.core.fleet_memory import FleetMemory, FleetMemoryConfig
from memory_node.core.storage import StorageError, open_store, redact
from memory_node.core.types import InvalidInput, QueryRequest
from memory_node.ros import conversions as conv
from memory_node.ros.guarded import guarded_call
from memory_node.ros.params import declare_config, reject_runtime_changes


@dataclass
class StorageConfig:
    """Where the fleet memory lives."""

    url: str = param(
        "sqlite:///tmp/memory_node_fleet.db",
        "Fleet store: sqlite:///path/fleet.db (one machine) or "
        "postgresql://user:password@host:port/db (see tools/postgres.sh).",
    )
    migrate: bool = param(
        True, "Create the schema, or bring an older one up to date, at start-up."
    )
    refresh_period_s: float = param(
        1.0,
        "Period of reading the robots' pushes from the store, seconds.",
        min_value=0.05,
        max_value=3600.0,
    )
    save_path: str = param("", "Default file of ~/save and ~/load ('' = a path is required).")


@dataclass
class FleetNodeConfig:
    """Node-level parameters of fleet_memory (the core's are declared beside)."""

    storage: StorageConfig = field(default_factory=StorageConfig)


class FleetMemoryNode(Node):
    """Thin adapter between ROS services and :class:`FleetMemory`."""

    def __init__(self, node_name: str = "fleet_memory", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.node_config = declare_config(self, FleetNodeConfig)
        self.memory_config = declare_config(self, FleetMemoryConfig)
        reject_runtime_changes(self, flatten(FleetNodeConfig()) + flatten(FleetMemoryConfig()))
        self._lock = threading.Lock()
        self.memory: FleetMemory | None = None
        self._last_error = ""
        self._last_error_log = 0.0
        self._version = 0
        self._published = -1
        group = MutuallyExclusiveCallbackGroup()
        latched = QoSProfile(
            depth=1,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._graph_pub = self.create_publisher(SceneGraph, "~/scene_graph", latched)
        self.create_service(QueryObjects, "~/query_objects", self._on_query, callback_group=group)
        self.create_service(
            GetSceneGraph, "~/get_scene_graph", self._on_graph, callback_group=group
        )
        self.create_service(
            GetObjectChanges, "~/get_changes", self._on_changes, callback_group=group
        )
        self.create_service(SaveMemory, "~/save", self._on_save, callback_group=group)
        self.create_service(LoadMemory, "~/load", self._on_load, callback_group=group)
        self._refresh()
        self.create_timer(
            self.node_config.storage.refresh_period_s, self._refresh, callback_group=group
        )

    # --- store ----------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        now = time.monotonic()
        if text != self._last_error or now - self._last_error_log > 30.0:
            self.get_logger().error(text)
            self._last_error, self._last_error_log = text, now

    def _refresh(self) -> None:
        """Open the store when needed, then fetch what the robots pushed."""
        cfg = self.node_config.storage
        with self._lock:
            try:
                if self.memory is None:
                    store = open_store(cfg.url, self.memory_config.fleet, migrate=cfg.migrate)
                    self.memory = FleetMemory(store, self.memory_config)
                    self.get_logger().info(
                        f"fleet memory ready: {store.describe()}, map frame {store.map_frame!r}"
                    )
                changed = self.memory.refresh()
            except StorageError as err:
                self._error(f"fleet store {redact(cfg.url)}: {err}")
                return
            if self._last_error:
                self.get_logger().info("fleet store reachable again")
                self._last_error = ""
            if changed:
                self._version += 1
            if self._version == self._published:
                return
            memory = self.memory
            header = Header(frame_id=memory.store.map_frame, stamp=self.get_clock().now().to_msg())
            graph = conv.graph_to_msg(
                list(memory.objects.values()), memory.relations, memory.zones, header
            )
            self._published = self._version
        self._graph_pub.publish(graph)

    # --- services -------------------------------------------------------------------------
    def _call_core(self, res: Any, fn: Callable[[FleetMemory], Any]) -> Any:
        """Run ``fn`` on the fleet memory under the lock; errors become success=false."""
        with self._lock:
            memory = self.memory
            if memory is None:
                res.success = False
                res.message = f"fleet store not reachable: {self._last_error or 'not opened'}"
                return None
            return guarded_call(
                res, lambda: fn(memory), self.get_logger(), (InvalidInput, OSError)
            )

    def _on_query(self, req: QueryObjects.Request, res: QueryObjects.Response) -> Any:
        near = np.array([req.near.x, req.near.y, req.near.z]) if req.use_near else None
        query = QueryRequest(
            text=req.text,
            near=near,
            radius=float(req.radius),
            zone_id=req.zone_id,
            k=int(req.k),
            include_embeddings=bool(req.include_embeddings),
        )
        found = self._call_core(res, lambda m: m.query(query))
        if found is not None:
            res.objects = [
                conv.object_to_msg(s.obj, s.score, query.include_embeddings) for s in found
            ]
            res.message = f"{len(found)} fleet objects"
        return res

    def _on_graph(self, req: GetSceneGraph.Request, res: GetSceneGraph.Response) -> Any:
        out = self._call_core(
            res, lambda m: m.render(req.focus, int(req.max_objects), int(req.max_tokens))
        )
        if out is not None:
            header = Header(frame_id=self.memory_config.fleet.map_frame)
            header.stamp = self.get_clock().now().to_msg()
            res.graph = conv.graph_to_msg(out.objects, out.relations, out.zones, header)
            res.text = out.text
            res.token_count = int(out.token_count)
            res.message = f"{len(out.objects)} fleet objects, {out.token_count} tokens"
        return res

    def _on_changes(self, req: GetObjectChanges.Request, res: GetObjectChanges.Response) -> Any:
        since = conv.time_to_sec(req.since)
        out = self._call_core(res, lambda m: m.changes(since, req.object_id, int(req.max_results)))
        if out is not None:
            res.changes = [conv.change_to_msg(e) for e in out]
            res.message = f"{len(out)} fleet changes"
        return res

    def _on_save(self, req: SaveMemory.Request, res: SaveMemory.Response) -> Any:
        path = req.path or self.node_config.storage.save_path
        if not path:
            res.success, res.message = False, "no path given and storage.save_path is ''"
            return res
        self._call_core(res, lambda m: m.save(path))
        if res.success:
            res.message = f"saved the fleet memory to {path}"
        return res

    def _on_load(self, req: LoadMemory.Request, res: LoadMemory.Response) -> Any:
        path = req.path or self.node_config.storage.save_path
        if not path:
            res.success, res.message = False, "no path given and storage.save_path is ''"
            return res
        self._call_core(res, lambda m: m.load(path))
        if res.success:
            with self._lock:
                self._version += 1
                n = len(self.memory.objects) if self.memory else 0
            res.message = f"loaded {n} fleet objects from {path}"
        return res

    def close(self) -> None:
        """Close the store connection."""
        with self._lock:
            if self.memory is not None:
                self.memory.store.close()
                self.memory = None


def main(args: list[str] | None = None) -> None:
    """Run the fleet_memory node until Ctrl-C."""
    from memory_node.ros.spin import spin_nodes

    rclpy.init(args=args)
    spin_nodes([FleetMemoryNode()])
