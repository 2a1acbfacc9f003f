"""End to end: built-in simulator -> ROS topics -> scene_memory -> services, against ground truth.

A two-room procedural house is toured, a duck is moved to the kitchen table and a bottle removed
while the camera looks away, then the house is toured again. Frames go over real topics in
lockstep (each frame is ingested before the next is published) so the run is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from memory_interfaces.msg import InstanceLabels, ObjectChange
from memory_interfaces.srv import GetObjectChanges, GetSceneGraph, QueryObjects
from memory_node.evaluation import MemObject, gt_objects_at, match_objects
from memory_node.ros import conversions as conv
from memory_node.ros.scene_memory_node import SceneMemoryNode
from memory_sim.episode import EpisodeRunner, parse_episode
from memory_sim.simulator import SimConfig

EPISODE = """
name: e2e_two_rooms
scene:
  procedural: {seed: 1, rooms_x: 2, rooms_y: 1, objects_per_room: 3}
camera: {height_m: 1.3, pitch_deg: -25, speed_mps: 0.8, yaw_rate_dps: 75}
segments:
  - {name: tour1, coverage: {turns: 1}}
  - {name: away, turn: {yaw_deg: 180}}
  - {name: tour2, coverage: {turns: 1}}
events:
  - {after: away, at_s: 0.5, move: {object: living_room/duck_0, onto: kitchen/table_0}}
  - {after: away, at_s: 0.6, remove: {object: kitchen/bottle_0}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Play the episode through a scene_memory node; return the harness pieces and truth."""
    import rclpy
    from ros_harness import RosHarness

    config = SimConfig()
    config.rate_hz = 4.0
    config.camera.width_px, config.camera.height_px = 320, 240
    runner = EpisodeRunner(parse_episode(EPISODE, "e2e.yaml"), config)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    ros = RosHarness(context)
    node = ros.add(SceneMemoryNode(context=context))
    cn = ros.client_node
    pubs = {
        "rgb": cn.create_publisher(Image, "rgb/image", 10),
        "depth": cn.create_publisher(Image, "depth/image", 10),
        "info": cn.create_publisher(CameraInfo, "rgb/camera_info", 10),
        "pose": cn.create_publisher(PoseStamped, "camera/pose", 10),
        "instance": cn.create_publisher(Image, "instance/image", 10),
        "labels": cn.create_publisher(InstanceLabels, "instance/labels", 10),
    }
    events: list[ObjectChange] = []
    cn.create_subscription(ObjectChange, "/scene_memory/changes", events.append, 100)
    for handled, step in enumerate(runner, start=1):
        f = step.frame
        header = Header(stamp=conv.sec_to_time(f.stamp), frame_id="camera")
        pose = PoseStamped(header=Header(stamp=header.stamp, frame_id="map"))
        pose.pose = conv.matrix_to_pose(f.map_T_camera)
        pubs["info"].publish(conv.camera_info_of(f.K, f.depth.shape[1], f.depth.shape[0], header))
        pubs["labels"].publish(conv.labels_msg(f.instance_labels or {}, f.instance_states, header))
        pubs["instance"].publish(conv.instances_to_image(f.instance, header))
        pubs["depth"].publish(conv.depth_to_image(f.depth, header))
        pubs["pose"].publish(pose)
        pubs["rgb"].publish(conv.rgb_to_image(f.rgb, header))
        assert ros.wait_for(lambda n=handled: frames_done(node) >= n, 30.0), node.counters
    gt = runner.ground_truth()
    away = runner.trajectory.segments["away"]
    runner.close()
    yield ros, node, gt, away, events
    ros.close()
    rclpy.shutdown(context=context)


def frames_done(node) -> int:
    return node.counters["frames_ingested"] + node.counters["frames_rejected"]


def memory_objects(ros) -> list[MemObject]:
    res = ros.call(QueryObjects, "/scene_memory/query_objects", QueryObjects.Request(k=1000))
    assert res.success, res.message
    return [
        MemObject(
            o.id,
            o.label,
            np.array([o.pose.position.x, o.pose.position.y, o.pose.position.z]),
            np.array([o.size.x, o.size.y, o.size.z]),
            o.present,
            conv.time_to_sec(o.last_seen),
        )
        for o in res.objects
    ]


def test_remembered_objects_match_ground_truth(run):
    ros, node, gt, _, _ = run
    assert node.counters["frames_rejected"] == 0, node.counters
    metrics = match_objects(gt_objects_at(gt), memory_objects(ros), min_frames_seen=5)
    assert metrics.gt_considered >= 12
    assert metrics.recall >= 0.8, (metrics.recall, metrics.missed)
    assert metrics.duplicate_rate <= 0.1, metrics.duplicates
    assert metrics.median_centroid_error_m <= 0.08


def test_moved_duck_keeps_its_id_and_is_reported(run):
    ros, _, gt, away, _ = run
    truth = {g.name: g for g in gt_objects_at(gt)}
    before = {g.name: g for g in gt_objects_at(gt, away[0])}
    ducks = [m for m in memory_objects(ros) if m.label == "duck"]
    present = [m for m in ducks if m.present]
    assert len(present) == 1, ducks
    assert np.linalg.norm(present[0].center - truth["living_room/duck_0"].center) < 0.15
    req = GetObjectChanges.Request(since=conv.sec_to_time(away[0]), object_id=present[0].id)
    res = ros.call(GetObjectChanges, "/scene_memory/get_changes", req)
    kinds = [c.kind for c in res.changes]
    assert ObjectChange.MOVED in kinds, kinds
    moved = res.changes[kinds.index(ObjectChange.MOVED)]
    old = np.array([moved.old_position.x, moved.old_position.y, moved.old_position.z])
    assert np.linalg.norm(old - before["living_room/duck_0"].center) < 0.15


def test_removed_bottle_is_absent_but_remembered(run):
    ros, _, gt, away, events = run
    spot = next(g for g in gt_objects_at(gt, away[0]) if g.name == "kitchen/bottle_0").center
    bottles = [m for m in memory_objects(ros) if m.label == "bottle"]
    assert bottles, "the bottle was never remembered"
    bottle = min(bottles, key=lambda m: float(np.linalg.norm(m.center - spot)))
    assert np.linalg.norm(bottle.center - spot) < 0.15
    assert not bottle.present and bottle.last_seen < away[1]
    assert any(e.kind == ObjectChange.DISAPPEARED and e.object_id == bottle.id for e in events)
    g = ros.call(
        GetSceneGraph,
        "/scene_memory/get_scene_graph",
        GetSceneGraph.Request(focus="where is the bottle", max_tokens=300),
    )
    assert g.success and "bottle" in g.text and g.token_count <= 300
