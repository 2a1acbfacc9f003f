"""Fixtures for real-rclpy tests: nodes spinning in a background executor, and a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ros_harness import RosHarness

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")


@pytest.fixture
def ros() -> Iterator[RosHarness]:
    context = rclpy.context.Context()
    rclpy.init(context=context)
    harness = RosHarness(context)
    try:
        yield harness
    finally:
        harness.close()
        rclpy.shutdown(context=context)
