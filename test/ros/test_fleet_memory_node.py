"""fleet_memory node over real rclpy, and scene_memory pushing to the fleet store.

Two robots' memories reach the store (one through a scene_memory node with ``fleet.url``, one
pushed directly); the fleet node answers every service over both, saves and loads the fleet
memory, and refuses bad requests and an unreachable store with a message.
"""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Point
from rclpy.parameter import Parameter

from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    LoadMemory,
    QueryObjects,
    SaveMemory,
)
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.storage import open_store
from memory_node.core.types import MemorySnapshot, SceneObject
from memory_node.ros.fleet_memory_node import FleetMemoryNode
from memory_node.ros.scene_memory_node import SceneMemoryNode


def thing(oid, label, center, t, size=0.15):
    return SceneObject(
        id=oid,
        label=label,
        label_votes={label: 1.0},
        label_confidence=1.0,
        center=np.asarray(center, float),
        size=np.full(3, size),
        points=np.asarray(center, np.float32)[None, :],
        first_seen=t,
        last_seen=t,
        observations=3,
    )


def robot_memory_file(path):
    config = SceneMemoryConfig()
    config.features.mode = "off"
    memory = SceneMemory(config)
    memory.restore(
        MemorySnapshot(
            objects=[
                thing("obj_000000", "mug", [1.0, 1.0, 0.8], 5.0),
                thing("obj_000001", "table", [1.0, 1.1, 0.4], 5.0, size=0.9),
            ],
            next_object_index=2,
        )
    )
    memory.save(str(path))


def test_fleet_node_answers_over_every_robot(ros, tmp_path):
    url = f"sqlite:///{tmp_path}/fleet.db"
    open_store(url, migrate=True).close()
    robot_memory_file(tmp_path / "robot1.db")
    ctx = ros.context
    ros.add(
        SceneMemoryNode(
            namespace="robot1",
            context=ctx,
            parameter_overrides=[
                Parameter("persistence.load_path", value=str(tmp_path / "robot1.db")),
                Parameter("features.mode", value="off"),
                Parameter("fleet.url", value=url),
                Parameter("fleet.sync_period_s", value=0.2),
                Parameter("publish.graph_period_s", value=0.1),
            ],
        )
    )
    store = open_store(url)
    assert ros.wait_for(lambda: len(store.robot_objects("robot1")) == 2, timeout=20.0)
    # robot2 saw the same mug later, elsewhere on the table, and a book
    store.push(
        "robot2",
        "map",
        [
            thing("obj_000007", "mug", [1.45, 1.0, 0.8], 9.0),
            thing("obj_000008", "book", [4, 4, 1], 9),
        ],
    )
    node = ros.add(
        FleetMemoryNode(
            context=ctx,
            parameter_overrides=[
                Parameter("storage.url", value=url),
                Parameter("storage.refresh_period_s", value=0.1),
                Parameter("features.mode", value="off"),
            ],
        )
    )
    assert ros.wait_for(lambda: node.memory is not None and len(node.memory.objects) == 3)

    res = ros.call(QueryObjects, "/fleet_memory/query_objects", QueryObjects.Request(text="mug"))
    assert res.success and res.objects[0].label == "mug"
    mug = res.objects[0]
    assert math.isclose(mug.pose.position.x, 1.45, abs_tol=1e-6)  # robot2's later view won
    near = QueryObjects.Request(near=Point(x=4.0, y=4.0, z=1.0), use_near=True, radius=0.5)
    res = ros.call(QueryObjects, "/fleet_memory/query_objects", near)
    assert res.success and [o.label for o in res.objects] == ["book"]
    bad = QueryObjects.Request(near=Point(x=float("nan")), use_near=True)
    res = ros.call(QueryObjects, "/fleet_memory/query_objects", bad)
    assert not res.success and "near" in res.message

    res = ros.call(GetSceneGraph, "/fleet_memory/get_scene_graph", GetSceneGraph.Request())
    assert res.success and len(res.graph.objects) == 3 and "mug" in res.text
    assert res.graph.header.frame_id == "map"
    res = ros.call(GetObjectChanges, "/fleet_memory/get_changes", GetObjectChanges.Request())
    assert res.success
    assert {c.object_id for c in res.changes} <= {o.id for o in node.memory.objects.values()}
    kinds = sorted(c.kind for c in res.changes)
    assert kinds.count(0) == 3 and kinds.count(1) == 1  # 3 APPEARED, the mug MOVED

    saved = tmp_path / "fleet_copy.db"
    res = ros.call(SaveMemory, "/fleet_memory/save", SaveMemory.Request(path=str(saved)))
    assert res.success, res.message
    store.push("robot2", "map", [thing("obj_000009", "bowl", [7, 7, 1], 12)])
    assert ros.wait_for(lambda: len(node.memory.objects) == 4)
    res = ros.call(LoadMemory, "/fleet_memory/load", LoadMemory.Request(path=str(saved)))
    assert res.success, res.message
    assert sorted(o.label for o in node.memory.objects.values()) == ["book", "mug", "table"]
    (fleet_mug,) = [f for f in node.memory.fleet_objects.values() if f.obj.label == "mug"]
    assert set(fleet_mug.sources) == {"robot1", "robot2"}  # provenance came back
    res = ros.call(LoadMemory, "/fleet_memory/load", LoadMemory.Request(path=str(tmp_path)))
    assert not res.success and "directory" in res.message
    store.close()


def test_unreachable_store_is_answered_not_fatal(ros, tmp_path):
    node = ros.add(
        FleetMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("storage.url", value=f"sqlite:///{tmp_path}/missing/fleet.db"),
                Parameter("features.mode", value="off"),
            ],
        )
    )
    res = ros.call(QueryObjects, "/fleet_memory/query_objects", QueryObjects.Request(text="mug"))
    assert not res.success and "no directory" in res.message
    assert node.memory is None
