"""Real-rclpy test harness: nodes spun by a background executor, plus a client node."""

from __future__ import annotations

import threading
import time
from typing import Any


class RosHarness:
    """Nodes under test plus a client node, spun by one executor in a background thread."""

    def __init__(self, context: Any) -> None:
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node

        self.context = context
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.client_node = Node("test_client", context=context)
        self.executor.add_node(self.client_node)
        self.nodes: list[Any] = []
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Any) -> Any:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
        client = self.client_node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            assert done.wait(timeout), f"service {name} did not answer in {timeout} s"
            return future.result()
        finally:
            self.client_node.destroy_client(client)

    def wait_for(self, predicate, timeout: float = 20.0, period: float = 0.05) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(period)
        return predicate()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        for node in [*self.nodes, self.client_node]:
            node.destroy_node()
