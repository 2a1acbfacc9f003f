"""scene_memory node over real rclpy: frames in by topics, every service out, bad requests."""

from __future__ import annotations

import os

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from memory_interfaces.msg import InstanceLabels, ObjectChange, SceneGraph
from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    QueryObjects,
    SaveMemory,
)
from memory_node.core import synthetic
from memory_node.ros import conversions as conv
from memory_node.ros.scene_memory_node import SceneMemoryNode

W, H = 320, 240


def world(mug_x: float = 0.0) -> synthetic.BoxWorld:
    return synthetic.BoxWorld(
        boxes=[
            synthetic.Box(
                np.array([0.0, 0.0, 0.4]), np.array([1.0, 0.8, 0.8]), "table", 1, (120, 80, 40)
            ),
            synthetic.Box(
                np.array([mug_x, 0.1, 0.86]), np.array([0.16, 0.16, 0.16]), "mug", 2, (200, 30, 30)
            ),
            synthetic.Box(
                np.array([1.6, -0.6, 0.5]),
                np.array([0.5, 0.5, 1.0]),
                "cabinet",
                3,
                (60, 60, 200),
                state="closed",
            ),
        ]
    )


class FramePublisher:
    def __init__(self, node):
        self.pubs = {
            "rgb": node.create_publisher(Image, "rgb/image", 10),
            "depth": node.create_publisher(Image, "depth/image", 10),
            "info": node.create_publisher(CameraInfo, "rgb/camera_info", 10),
            "pose": node.create_publisher(PoseStamped, "camera/pose", 10),
            "instance": node.create_publisher(Image, "instance/image", 10),
            "labels": node.create_publisher(InstanceLabels, "instance/labels", 10),
        }
        self.K = synthetic.intrinsics(W, H, 70.0)

    def publish(self, frame, stamp: float) -> None:
        header = Header(frame_id="camera_optical", stamp=conv.sec_to_time(stamp))
        self.pubs["info"].publish(conv.camera_info_of(frame.K, W, H, header))
        pose = PoseStamped(header=Header(frame_id="map", stamp=header.stamp))
        pose.pose = conv.matrix_to_pose(frame.map_T_camera)
        # deliberately out of order: pairing is by stamp
        self.pubs["labels"].publish(
            conv.labels_msg(frame.instance_labels, frame.instance_states, header)
        )
        self.pubs["pose"].publish(pose)
        self.pubs["depth"].publish(conv.depth_to_image(frame.depth, header))
        self.pubs["instance"].publish(conv.instances_to_image(frame.instance, header))
        self.pubs["rgb"].publish(conv.rgb_to_image(frame.rgb, header))

    def frame(self, w, eye, stamp):
        T = synthetic.look_at(np.array(eye, float), np.array([0.3, 0.0, 0.5]))
        return synthetic.render(w, self.K, T, W, H, stamp)


EYES = [[-2.0, -1.5, 1.6], [-2.2, 0.0, 1.7], [-2.0, 1.5, 1.6], [-1.5, -2.0, 1.5]]


@pytest.fixture
def scene(ros):
    node = ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[Parameter("publish.graph_period_s", value=0.1)],
        )
    )
    return node, FramePublisher(ros.client_node)


def feed(ros, node, pub, w, stamps):
    before = node.counters["frames_ingested"]
    for i, t in enumerate(stamps):
        pub.publish(pub.frame(w, EYES[i % len(EYES)], t), t)
        assert ros.wait_for(lambda i=i: node.counters["frames_ingested"] > before + i, 30.0), (
            f"frame {t} not ingested; counters {node.counters}"
        )


def query(ros, **kw) -> QueryObjects.Response:
    near = kw.pop("near", None)
    req = QueryObjects.Request(**kw)
    if near is not None:
        req.use_near = True
        req.near.x, req.near.y, req.near.z = near
    return ros.call(QueryObjects, "/scene_memory/query_objects", req)


def test_empty_memory_answers_every_service(ros, scene, tmp_path):
    res = query(ros, text="mug")
    assert res.success and len(res.objects) == 0
    g = ros.call(GetSceneGraph, "/scene_memory/get_scene_graph", GetSceneGraph.Request())
    assert g.success and len(g.graph.objects) == 0 and g.token_count >= 0
    c = ros.call(GetObjectChanges, "/scene_memory/get_changes", GetObjectChanges.Request())
    assert c.success and len(c.changes) == 0
    path = str(tmp_path / "empty.db")
    assert ros.call(SaveMemory, "/scene_memory/save", SaveMemory.Request(path=path)).success
    assert ros.call(LoadMemory, "/scene_memory/load", LoadMemory.Request(path=path)).success


def test_frames_over_topics_become_objects_and_services_answer(ros, scene, tmp_path):
    node, pub = scene
    graphs: list[SceneGraph] = []
    changes: list[ObjectChange] = []
    ros.client_node.create_subscription(SceneGraph, "/scene_memory/scene_graph", graphs.append, 1)
    ros.client_node.create_subscription(ObjectChange, "/scene_memory/changes", changes.append, 50)
    # the empty room first, then the furniture is brought in: three objects appear
    feed(ros, node, pub, synthetic.BoxWorld([]), [0.1 * (i + 1) for i in range(4)])
    feed(ros, node, pub, world(), [0.5 + 0.1 * (i + 1) for i in range(8)])

    res = query(ros, text="mug")
    assert res.success and res.objects, res.message
    mug = res.objects[0]
    assert mug.label == "mug"
    assert abs(mug.pose.position.x - 0.0) < 0.05 and abs(mug.pose.position.z - 0.88) < 0.05
    assert mug.observations >= 3 and mug.last_seen.sec == 1 and mug.last_seen.nanosec > 0
    labels = {o.label for o in query(ros, k=10).objects}
    assert {"mug", "table", "cabinet"} <= labels
    near = query(ros, near=(1.6, -0.6, 0.5), radius=0.5)
    assert near.success and [o.label for o in near.objects] == ["cabinet"]
    assert near.objects[0].state == "closed"

    g = ros.call(
        GetSceneGraph,
        "/scene_memory/get_scene_graph",
        GetSceneGraph.Request(focus="mug", max_tokens=200),
    )
    assert g.success and 0 < g.token_count <= 200 and "mug" in g.text
    rel = {(r.subject_id, r.predicate, r.object_id) for r in g.graph.relations}
    table_id = next(o.id for o in query(ros, text="table").objects if o.label == "table")
    assert (mug.id, "on", table_id) in rel

    c = ros.call(GetObjectChanges, "/scene_memory/get_changes", GetObjectChanges.Request())
    assert c.success and {e.kind for e in c.changes} == {ObjectChange.APPEARED}
    assert ros.wait_for(lambda: len(changes) >= 3) and ros.wait_for(lambda: bool(graphs))
    assert len(graphs[-1].objects) >= 3

    # save, forget by loading an empty file, load again: the same ids come back
    path = str(tmp_path / "mem.db")
    assert ros.call(SaveMemory, "/scene_memory/save", SaveMemory.Request(path=path)).success
    ids = sorted(o.id for o in query(ros, k=10).objects)
    node2_path = str(tmp_path / "other.db")
    load = ros.call(LoadMemory, "/scene_memory/load", LoadMemory.Request(path=path))
    assert load.success, load.message
    assert sorted(o.id for o in query(ros, k=10).objects) == ids
    assert not os.path.exists(node2_path)


def test_moved_object_keeps_its_id_and_is_reported(ros, scene):
    node, pub = scene
    feed(ros, node, pub, world(mug_x=-0.3), [0.1 * (i + 1) for i in range(6)])
    mug_id = query(ros, text="mug").objects[0].id
    t_move = 2.0
    feed(ros, node, pub, world(mug_x=0.35), [t_move + 0.1 * i for i in range(8)])
    mugs = [o for o in query(ros, text="mug", k=10).objects if o.label == "mug"]
    assert [o.id for o in mugs if o.present] == [mug_id]
    assert abs(mugs[0].pose.position.x - 0.35) < 0.06
    since = conv.sec_to_time(t_move - 0.05)
    c = ros.call(
        GetObjectChanges,
        "/scene_memory/get_changes",
        GetObjectChanges.Request(since=since, object_id=mug_id),
    )
    assert c.success and [e.kind for e in c.changes] == [ObjectChange.MOVED]
    assert abs(c.changes[0].old_position.x + 0.3) < 0.06


BIG = "x" * (1 << 20)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"near": (float("nan"), 0.0, 0.0)},
        {"near": (0.0, 0.0, 0.0), "radius": -1.0},
        {"k": 10**9},
        {"text": BIG},
    ],
    ids=["nan-near", "negative-radius", "huge-k", "1MB-text"],
)
def test_bad_queries_are_refused_and_node_stays_up(ros, scene, kwargs):
    node, pub = scene
    feed(ros, node, pub, world(), [0.1 * (i + 1) for i in range(4)])
    n = len(query(ros, k=10).objects)
    res = query(ros, **kwargs)
    assert not res.success and res.message and not res.objects
    assert len(query(ros, k=10).objects) == n


def test_bad_load_paths_are_refused_and_memory_kept(ros, scene, tmp_path):
    node, pub = scene
    feed(ros, node, pub, world(), [0.1 * (i + 1) for i in range(4)])
    n = len(query(ros, k=10).objects)
    junk = tmp_path / "junk.db"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    for path in [str(tmp_path / "missing.db"), str(junk), str(tmp_path), ""]:
        res = ros.call(LoadMemory, "/scene_memory/load", LoadMemory.Request(path=path))
        assert not res.success and res.message, path
    assert len(query(ros, k=10).objects) == n
    bad_save = ros.call(
        SaveMemory,
        "/scene_memory/save",
        SaveMemory.Request(path=str(tmp_path / "no" / "such" / "dir" / "m.db")),
    )
    assert not bad_save.success and bad_save.message


def test_bad_frames_are_dropped_and_memory_unchanged(ros, scene):
    node, pub = scene
    feed(ros, node, pub, world(), [0.1 * (i + 1) for i in range(4)])
    n = len(query(ros, k=10).objects)
    good = pub.frame(world(), EYES[0], 5.0)
    cases = []
    f = pub.frame(world(), EYES[1], 5.1)
    f.depth[:] = 0.0
    cases.append(f)
    f = pub.frame(world(), EYES[1], 5.2)
    f.depth[:] = np.nan
    cases.append(f)
    f = pub.frame(world(), EYES[1], 5.3)
    f.map_T_camera = f.map_T_camera.copy()
    f.map_T_camera[0, 3] = np.nan
    cases.append(f)
    dropped = node.counters["frames_rejected"]
    for i, f in enumerate(cases):  # one at a time: a burst would be skipped as "behind"
        pub.publish(f, 5.1 + 0.1 * i)
        assert ros.wait_for(lambda n=dropped + i + 1: node.counters["frames_rejected"] >= n), (
            node.counters
        )
    # a frame of mismatched sizes: depth at half resolution
    header = Header(frame_id="cam", stamp=conv.sec_to_time(6.0))
    pub.pubs["info"].publish(conv.camera_info_of(good.K, W, H, header))
    pose = PoseStamped(header=Header(frame_id="map", stamp=header.stamp))
    pose.pose = conv.matrix_to_pose(good.map_T_camera)
    pub.pubs["pose"].publish(pose)
    pub.pubs["labels"].publish(conv.labels_msg(good.instance_labels, None, header))
    pub.pubs["instance"].publish(conv.instances_to_image(good.instance, header))
    pub.pubs["depth"].publish(conv.depth_to_image(good.depth[::2, ::2], header))
    pub.pubs["rgb"].publish(conv.rgb_to_image(good.rgb, header))
    assert ros.wait_for(lambda: node.counters["frames_rejected"] >= dropped + 4), node.counters
    assert len(query(ros, k=10).objects) == n


def test_planner_prompt_is_built_from_the_live_memory(ros, scene):
    from memory_node.planner.client import fetch_prompt
    from memory_node.ros.client import MemoryClient

    node, pub = scene
    feed(ros, node, pub, synthetic.BoxWorld([]), [0.1 * (i + 1) for i in range(4)])
    feed(ros, node, pub, world(), [0.5 + 0.1 * (i + 1) for i in range(6)])
    client = MemoryClient(context=ros.context, node_name="planner_test")
    try:
        prompt = fetch_prompt(client, "bring me the mug", max_tokens=300)
    finally:
        client.close()
    user = prompt.messages[1]["content"]
    assert "mug" in user.split("## Short-term")[0] and "appeared" in user
    assert 0 < prompt.scene_tokens <= 300 and prompt.num_changes >= 3


def test_overlong_focus_and_negative_budgets_are_refused(ros, scene):
    node, pub = scene
    feed(ros, node, pub, world(), [0.1 * (i + 1) for i in range(3)])
    big = ros.call(
        GetSceneGraph, "/scene_memory/get_scene_graph", GetSceneGraph.Request(focus=BIG)
    )
    assert not big.success and "characters" in big.message
    ok = ros.call(
        GetSceneGraph,
        "/scene_memory/get_scene_graph",
        GetSceneGraph.Request(focus="mug", max_objects=1, max_tokens=60),
    )
    assert ok.success and len(ok.graph.objects) >= 1 and ok.token_count <= 60
    huge = ros.call(
        GetObjectChanges,
        "/scene_memory/get_changes",
        GetObjectChanges.Request(since=conv.sec_to_time(1e9), max_results=10**9),
    )
    assert huge.success and len(huge.changes) == 0  # `since` in the future: nothing, no error
    unknown = ros.call(
        GetObjectChanges,
        "/scene_memory/get_changes",
        GetObjectChanges.Request(object_id="obj_999999", max_results=0),
    )
    assert unknown.success and len(unknown.changes) == 0
