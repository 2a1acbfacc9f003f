"""The node-level failures an outside probe found: time wedges, lifecycle, reply conversion.

In-process where possible (messages handed to the node's callbacks), and one real
``memory_bringup`` process for the lifecycle requests that used to kill it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
from robust_helpers import view

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from memory_interfaces.srv import (  # noqa: E402
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    QueryObjects,
)
from memory_node.core.types import SceneObject  # noqa: E402
from memory_node.ros import conversions as conv  # noqa: E402
from memory_node.ros.scene_memory_node import SceneMemoryNode  # noqa: E402


def messages(stamp: float, i: int = 0, nanosec: int | None = None) -> dict[str, Any]:
    """Return the messages of one observation stamped ``stamp`` (or sec + a raw ``nanosec``)."""
    frame = view(stamp, i)
    t = conv.sec_to_time(stamp)
    if nanosec is not None:
        t.nanosec = nanosec
    header = Header(frame_id="camera_optical", stamp=t)
    h, w = frame.depth.shape
    pose = PoseStamped(header=Header(frame_id="map", stamp=t))
    pose.pose = conv.matrix_to_pose(frame.map_T_camera)
    return {
        "info": conv.camera_info_of(frame.K, w, h, header),
        "pose": pose,
        "labels": conv.labels_msg(frame.instance_labels, None, header),
        "instance": conv.instances_to_image(frame.instance, header),
        "depth": conv.depth_to_image(frame.depth, header),
        "rgb": conv.rgb_to_image(frame.rgb, header),
    }


@pytest.fixture
def node():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    n = SceneMemoryNode(
        context=context, parameter_overrides=[Parameter("features.mode", value="off")]
    )
    try:
        yield n
    finally:
        n.close()
        n.destroy_node()
        rclpy.shutdown(context=context)


def offer(node: SceneMemoryNode, msgs: dict[str, Any], timeout: float = 20.0) -> bool:
    """Hand one observation to the node; True when it was ingested, False when dropped."""

    def counts() -> tuple[int, int]:
        stale = node._sync.dropped["stale"] if node._sync is not None else 0
        return node.counters["frames_ingested"], node.counters["frames_rejected"] + stale

    ingested, dropped = counts()
    for stream, msg in msgs.items():
        node._on_stream(stream, msg)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now_ingested, now_dropped = counts()
        if now_ingested > ingested:
            return True
        if now_dropped > dropped:
            return False
        time.sleep(0.02)
    return False


def test_clock_jumps_and_future_frames_never_stop_ingest(node: SceneMemoryNode) -> None:
    now = time.time()
    assert offer(node, messages(now - 300.0, 0))
    # one frame from far in the future, and one with nanosec = 4e9 (4 s ahead)
    assert not offer(node, messages(2.0**31 - 1, 1))
    assert not offer(node, messages(now - 299.0, 1, nanosec=4_000_000_000))
    assert offer(node, messages(now - 298.0, 2)), node.counters
    # a rejected frame (all-NaN depth) stamped later than everything
    bad = messages(now - 1.0, 3)
    bad["depth"] = conv.depth_to_image(np.full((72, 96), np.nan, np.float32), bad["rgb"].header)
    assert not offer(node, bad)
    assert offer(node, messages(now - 297.0, 0)), node.counters
    # the clock jumps back (a bag loops: 205 s -> 50 s before now)
    assert offer(node, messages(now - 50.0, 1))
    assert offer(node, messages(now - 205.0, 2)), node.counters
    assert offer(node, messages(now - 204.9, 3)), node.counters


def test_deactivate_activate_resets_the_stamp_guard(node: SceneMemoryNode) -> None:
    now = time.time()
    assert offer(node, messages(now - 2.0, 0))
    node.trigger_deactivate()
    node.trigger_activate()
    assert offer(node, messages(now - 3.0, 1)), node.counters  # a restarted driver, 1 s back


def test_a_reply_that_cannot_be_converted_answers_success_false(node: SceneMemoryNode) -> None:
    memory = node.memory
    assert memory is not None
    broken = SceneObject(id="obj_000000", label="mug", center=np.zeros(3), size=np.ones(3))
    broken.first_seen = "yesterday"  # type: ignore[assignment]  # what a corrupt file loaded
    memory._objects[broken.id] = broken
    with node._lock:
        node._new_view()  # services answer from the view swapped in after each change
    res = node._on_query(QueryObjects.Request(k=10), QueryObjects.Response())
    assert not res.success and "reply" in res.message
    res = node._on_graph(GetSceneGraph.Request(), GetSceneGraph.Response())
    assert not res.success and res.message
    res = node._on_changes(GetObjectChanges.Request(), GetObjectChanges.Response())
    assert res.success  # no change mentions the broken object


def test_load_of_a_fifo_does_not_block_services(node: SceneMemoryNode, tmp_path) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    answers: list[Any] = []
    t = threading.Thread(
        target=lambda: answers.append(
            node._on_load(LoadMemory.Request(path=str(fifo)), LoadMemory.Response())
        ),
        daemon=True,
    )
    t.start()
    t.join(10.0)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5.0)
        pytest.fail("~/load blocked on a FIFO")
    assert not answers[0].success and "regular file" in answers[0].message
    res = node._on_query(QueryObjects.Request(), QueryObjects.Response())
    assert res.success


# --- lifecycle requests against the real process ---------------------------------------------


def _call(client_node: Any, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
    from rclpy.executors import SingleThreadedExecutor

    client = client_node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=timeout), f"{name} not available"
        future = client.call_async(request)
        executor = SingleThreadedExecutor(context=client_node.context)
        executor.add_node(client_node)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        executor.remove_node(client_node)
        assert future.done(), f"{name} did not answer in {timeout} s"
        return future.result()
    finally:
        client_node.destroy_client(client)


INVALID_IN_ACTIVE = [
    Transition.TRANSITION_ACTIVATE,
    Transition.TRANSITION_CONFIGURE,
    Transition.TRANSITION_CLEANUP,
    99,
]


def test_invalid_lifecycle_transitions_are_refused_and_bringup_lives() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "memory_node.ros.bringup", "--nodes", "scene_memory"),
            *("--namespace", "lifecycle_probe"),
            *("--log-level", "warn", "-p", "features.mode:='off'"),
        ],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    context = rclpy.context.Context()
    rclpy.init(context=context)
    client = rclpy.node.Node("lifecycle_prober", context=context)
    try:

        def change(tid: int = 0, label: str = "") -> bool:
            req = ChangeState.Request(transition=Transition(id=tid, label=label))
            return _call(
                client, ChangeState, "/lifecycle_probe/scene_memory/change_state", req
            ).success

        def state() -> str:
            return _call(
                client, GetState, "/lifecycle_probe/scene_memory/get_state", GetState.Request()
            ).current_state.label

        assert state() == "active"
        for tid in INVALID_IN_ACTIVE:
            assert not change(tid), tid
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert not change(label="explode")
        assert state() == "active"
        assert change(Transition.TRANSITION_DEACTIVATE)
        assert not change(Transition.TRANSITION_DEACTIVATE)  # deactivate while inactive
        assert state() == "inactive"
        assert change(Transition.TRANSITION_ACTIVATE)
        name = "/lifecycle_probe/scene_memory/query_objects"
        res = _call(client, QueryObjects, name, QueryObjects.Request())
        assert res.success and proc.poll() is None
    finally:
        client.destroy_node()
        rclpy.shutdown(context=context)
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
