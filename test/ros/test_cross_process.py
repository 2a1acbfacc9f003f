"""The one-process bringup in a subprocess, called by a plain rclpy client from this process."""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from memory_interfaces.srv import PolicyMemoryStep, QueryObjects


def call(node: Node, srv_type, name: str, request, timeout: float = 60.0):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f"{name} not available"
    future = client.call_async(request)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin_until_future_complete(future, timeout_sec=timeout)
    executor.remove_node(node)
    assert future.done(), f"{name} did not answer"
    return future.result()


@pytest.fixture
def bringup():
    proc = subprocess.Popen(
        [sys.executable, "-m", "memory_node.ros.bringup", "--log-level", "warn"],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode not in (0, -signal.SIGINT):
            print(out)


def test_plain_client_in_another_process_gets_well_formed_replies(bringup):
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = Node("plain_client", context=context)
    try:
        res = call(
            node, QueryObjects, "/scene_memory/query_objects", QueryObjects.Request(text="mug")
        )
        assert bringup.poll() is None, bringup.stdout.read()
        assert res.success, res.message
        assert list(res.objects) == []  # empty memory: zero objects is the correct answer

        bad = QueryObjects.Request(use_near=True, radius=-1.0)
        bad.near.x = float("nan")
        res = call(node, QueryObjects, "/scene_memory/query_objects", bad)
        assert not res.success and res.message

        dim = 512  # the default of config/policy_memory.yaml
        req = PolicyMemoryStep.Request(timestep=0, num_tokens=4, dim=dim, write=True)
        req.perceptual = array.array("f", np.ones(4 * dim, np.float32).tobytes())
        req.cognitive = array.array("f", np.ones(dim, np.float32).tobytes())
        res = call(node, PolicyMemoryStep, "/policy_memory/step", req)
        assert res.success, res.message
        assert len(res.perceptual_fused) == 4 * dim and len(res.cognitive_fused) == dim
        assert res.bank_size == 1
        assert bringup.poll() is None, "the bringup process died"
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_ctrl_c_autosaves_a_loadable_memory(tmp_path):
    from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig

    path = tmp_path / "auto.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "memory_node.ros.bringup", "--nodes", "scene_memory",
         "-p", f"persistence.autosave_path:={path}", "-p", "persistence.autosave_period_s:=0.0"],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = Node("autosave_probe", context=context)
    try:
        assert call(
            node, QueryObjects, "/scene_memory/query_objects", QueryObjects.Request()
        ).success
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert path.exists(), out
    memory = SceneMemory(SceneMemoryConfig())
    memory.load(str(path))
    assert memory.objects == {}
    assert "frames:" in out
