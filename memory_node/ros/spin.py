"""Spin nodes until Ctrl-C or SIGTERM and shut down cleanly (shared by every entry point).

Imports no node module: the node files and :mod:`memory_node.ros.bringup` both use it, and
bringup imports the nodes, so no two modules import each other.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def spin_nodes(nodes: Sequence[Node], num_threads: int = 4) -> None:
    """Spin ``nodes`` in a MultiThreadedExecutor until Ctrl-C or SIGTERM; shut down cleanly.

    An exception escaping one callback is logged and spinning goes on: one bad request never
    ends the process (the nodes answer bad input themselves; this is the last line).
    """
    executor = MultiThreadedExecutor(num_threads=num_threads)
    for node in nodes:
        executor.add_node(node)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    logger = rclpy.logging.get_logger("memory_bringup")
    try:
        while rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.5)
            except (KeyboardInterrupt, ExternalShutdownException):
                break
            except Exception:  # a callback raised: log it, keep serving
                if not rclpy.ok():
                    break
                logger.error(f"a callback raised; still spinning:\n{traceback.format_exc()}")
    finally:
        for node in nodes:
            close = getattr(node, "close", None)
            if close is not None:
                close()  # final work (autosave) that needs no live ROS context
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
