"""scene_memory under bad input streams: losses counted, causes named on /diagnostics."""

from __future__ import annotations

import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_scene_memory_node import EYES, FramePublisher, query, world

from memory_interfaces.srv import GetObjectChanges, GetSceneGraph, SaveMemory
from memory_node.ros import conversions as conv
from memory_node.ros.scene_memory_node import SceneMemoryNode

WRITERS = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def make_node(ros, **params):
    overrides = {
        "publish.graph_period_s": 0.1,
        "diagnostics.period_s": 0.2,
        "diagnostics.window_s": 1.0,
        **params,
    }
    return ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
    )


def statuses(ros):
    got: list = []
    ros.client_node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: got.extend(m.status), 50
    )
    return got


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_a_stopped_depth_stream_and_missing_camera_info_are_named(ros):
    node = make_node(ros)
    pub = FramePublisher(ros.client_node)
    got = statuses(ros)
    w = world()
    frame = pub.frame(w, EYES[0], 0.0)

    def partial(t: float) -> None:  # rgb, pose and masks; no depth, no camera_info
        header = Header(frame_id="cam", stamp=conv.sec_to_time(t))
        pub.pubs["rgb"].publish(conv.rgb_to_image(frame.rgb, header))
        pub.pubs["instance"].publish(conv.instances_to_image(frame.instance, header))
        pub.pubs["labels"].publish(conv.labels_msg(frame.instance_labels, None, header))

    def warned() -> bool:
        text = " ".join(s.message for s in got)
        return "depth/image never arrived" in text and "rgb/camera_info never arrived" in text

    t = 1.0
    end = time.monotonic() + 30.0
    while not warned() and time.monotonic() < end:
        partial(t)
        t += 0.05
        time.sleep(0.05)
    assert warned(), [s.message for s in got[-3:]]
    last = values(got[-1])
    assert int(last["delivered rgb/image"]) > 0 and last["delivered depth/image"] == "0"
    assert node.counters["frames_paired"] == 0
    assert query(ros, text="mug").success  # still answers


def test_oversized_images_are_refused_on_arrival_and_memory_kept(ros):
    node = make_node(ros)
    pub = FramePublisher(ros.client_node)
    w = world()
    for i, t in enumerate([0.1, 0.2, 0.3]):
        pub.publish(pub.frame(w, EYES[i], t), t)
        assert ros.wait_for(lambda n=i + 1: node.counters["frames_ingested"] >= n)
    before = sorted(o.id for o in query(ros, k=10).objects)
    assert before
    huge = Image(height=3000, width=4000, encoding="rgb8", step=12000)
    huge.data = bytes(3000 * 12000)
    huge.header = Header(frame_id="cam", stamp=conv.sec_to_time(0.4))
    pub.pubs["rgb"].publish(huge)
    assert ros.wait_for(lambda: node.rejected.get("image_too_large", 0) == 1), node.rejected
    assert sorted(o.id for o in query(ros, k=10).objects) == before
    pub.publish(pub.frame(w, EYES[3], 0.5), 0.5)  # the next good frame still goes in
    assert ros.wait_for(lambda: node.counters["frames_ingested"] >= 4), node.counters


def test_a_100_hz_burst_is_skipped_down_and_queries_still_answer(ros):
    node = make_node(ros)
    pub = FramePublisher(ros.client_node)
    w = world()
    for i, t in enumerate([0.1, 0.2, 0.3, 0.4]):
        pub.publish(pub.frame(w, EYES[i], t), t)
        assert ros.wait_for(lambda n=i + 1: node.counters["frames_ingested"] >= n)
    before = {o.id for o in query(ros, k=10).objects}
    frames = [pub.frame(w, EYES[i % len(EYES)], 0) for i in range(4)]
    answers: list[bool] = []

    def ask() -> None:
        for _ in range(5):
            answers.append(query(ros, text="mug").success)

    asker = threading.Thread(target=ask)
    asker.start()
    for i in range(60):
        pub.publish(frames[i % 4], 1.0 + 0.01 * i)
        time.sleep(0.01)
    asker.join(60.0)
    assert answers == [True] * 5
    c = node.counters
    assert ros.wait_for(
        lambda: (
            c["frames_ingested"] + c["frames_skipped"] + c["frames_rejected"] == c["frames_paired"]
        )
    ), c
    assert c["frames_paired"] > 4 and c["frames_rejected"] == 0
    assert before <= {o.id for o in query(ros, k=10).objects}


@pytest.mark.parametrize("reliability", list(WRITERS))
def test_best_available_receives_publishers_that_start_after_the_node(ros, reliability):
    node = make_node(ros)  # subscribes while no publisher exists
    pub = FramePublisher(ros.client_node)
    qos = QoSProfile(depth=10, reliability=WRITERS[reliability])
    for name, p in list(pub.pubs.items()):
        msg_type, topic = p.msg_type, p.topic_name
        ros.client_node.destroy_publisher(p)
        pub.pubs[name] = ros.client_node.create_publisher(msg_type, topic, qos)
    w = world()
    frame = pub.frame(w, EYES[0], 0.0)
    t = 0.1
    while not ros.wait_for(lambda: node.counters["frames_ingested"] >= 2, timeout=0.3):
        pub.publish(frame, t)
        t += 0.1
        assert t < 30.0, (node.counters, node.delivered)


def test_queries_are_answered_while_an_ingest_is_held(ros, tmp_path):
    node = make_node(ros)
    pub = FramePublisher(ros.client_node)
    w = world()
    for i, t in enumerate([0.1, 0.2, 0.3]):
        pub.publish(pub.frame(w, EYES[i], t), t)
        assert ros.wait_for(lambda n=i + 1: node.counters["frames_ingested"] >= n)
    before = sorted(o.id for o in query(ros, k=10).objects)
    entered, release = threading.Event(), threading.Event()
    ingest = node.memory.ingest

    def held_ingest(frame):
        entered.set()
        assert release.wait(60.0)
        return ingest(frame)

    node.memory.ingest = held_ingest
    try:
        pub.publish(pub.frame(w, EYES[3], 0.4), 0.4)
        assert entered.wait(30.0)
        assert node._lock.locked()  # the ingest holds the memory
        res = query(ros, text="mug", k=10)
        assert res.success and sorted(o.id for o in res.objects) != []
        assert sorted(o.id for o in query(ros, k=10).objects) == before
        graph = ros.call(GetSceneGraph, "/scene_memory/get_scene_graph", GetSceneGraph.Request())
        assert graph.success and len(graph.graph.objects) == len(before)
        changes = ros.call(
            GetObjectChanges, "/scene_memory/get_changes", GetObjectChanges.Request()
        )
        assert changes.success
        assert node._lock.locked() and node.counters["frames_ingested"] == 3
    finally:
        release.set()
    assert ros.wait_for(lambda: node.counters["frames_ingested"] == 4), node.counters
    path = str(tmp_path / "m.db")  # save waits for the ingest and writes a whole memory
    assert ros.call(SaveMemory, "/scene_memory/save", SaveMemory.Request(path=path)).success
