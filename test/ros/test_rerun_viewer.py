"""The Rerun viewer: recordings read back with Rerun's own reader hold what the memory held.

Three ways in: the core (a replay observer), the viewer node beside a live scene_memory node
(``memory_bringup --viewer rerun``), and ``memory_replay --viewer rerun``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import rerun.chunk as rerun_chunk

from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.tools.replay import rerun_observer
from memory_node.viz.rerun_log import ABSENT_COLOUR, RerunLogger

W, H = 160, 120
K = intrinsics(W, H, fov_deg=70.0)
CRATE = Box(np.array([2.5, 0.0, 0.25]), np.array([0.5, 0.5, 0.5]), "crate", 1, (180, 40, 40))
BOWL = Box(np.array([2.4, 0.6, 0.1]), np.array([0.2, 0.2, 0.2]), "bowl", 3, (40, 40, 180))
MUG = Box(np.array([2.5, 0.0, 0.6]), np.array([0.2, 0.2, 0.2]), "mug", 2, (40, 180, 40))


def read_rrd(path: Path) -> dict[str, dict[str, list]]:
    """Entity path -> column name -> every row's value, in log order (Rerun's reader)."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for chunk in rerun_chunk.RrdReader(str(path)).store().stream():
        batch = chunk.to_record_batch()
        for name in batch.schema.names:
            column = batch.column(name)
            if name in ("time", "log_time"):  # nanoseconds
                column = column.cast("int64")
            out[chunk.entity_path][name] += column.to_pylist()
    return out


def labels_of(rows: list) -> set[str]:
    return {label for row in rows if row for label in row}


def test_core_recording_holds_images_boxes_absence_and_changes(tmp_path):
    cfg = SceneMemoryConfig()
    cfg.features.mode = "off"
    cfg.depth.pixel_stride = 1
    memory = SceneMemory(cfg)
    path = tmp_path / "memory.rrd"
    logger = RerunLogger(save_path=str(path))
    observe = rerun_observer(logger)
    pose = look_at(np.array([0.0, 0.0, 1.4]), np.array([2.5, 0.0, 0.2]))
    worlds = [BoxWorld([CRATE, MUG, BOWL])] * 4 + [BoxWorld([CRATE, BOWL])] * 4
    for i, world in enumerate(worlds):
        frame = render(world, K, pose, W, H, 100.0 + 0.1 * i)
        memory.ingest(frame)
        observe(frame, memory, memory.drain_events())
    assert not path.exists(), "the file appears only when the recording is closed"
    logger.close()
    rrd = read_rrd(path)
    images = rrd["/world/camera/image"]
    assert len([b for b in images["EncodedImage:blob"] if b]) == len(worlds)
    assert images["EncodedImage:media_type"][0] == ["image/jpeg"]
    np.testing.assert_allclose(
        rrd["/world/camera"]["Transform3D:translation"][-1][0], [0.0, 0.0, 1.4], atol=1e-6
    )
    mug = next(o for o in memory.objects.values() if o.label == "mug")
    present = labels_of(rrd["/world/objects/present"]["Boxes3D:labels"][-1:])
    absent = labels_of(rrd["/world/objects/absent"]["Boxes3D:labels"][-1:])
    assert {lab.split(" ")[0] for lab in present} == {"crate", "bowl"}
    assert absent == {f"mug [{mug.id}]"}
    (colour,) = rrd["/world/objects/absent"]["Boxes3D:colors"][-1]
    assert colour == int.from_bytes(bytes(ABSENT_COLOUR), "big")  # 0xRRGGBBAA
    centre = rrd["/world/objects/absent"]["Boxes3D:centers"][-1][0]
    np.testing.assert_allclose(centre, mug.center, atol=1e-6)
    texts = [row[0] if row else "" for row in rrd["/changes"]["TextLog:text"]]
    (gone,) = [i for i, t in enumerate(texts) if t.startswith(f"DISAPPEARED mug [{mug.id}]")]
    (event,) = [e for e in memory.changes(0.0, mug.id, 10) if e.kind.name == "DISAPPEARED"]
    assert rrd["/changes"]["time"][gone] == round(event.stamp * 1e9)  # on the timeline
    assert rrd["/world/relations"]["LineStrips3D:labels"], "the bowl near the crate is drawn"


def test_an_aborted_recording_leaves_no_file(tmp_path):
    path = tmp_path / "memory.rrd"
    logger = RerunLogger(save_path=str(path))
    logger.log_camera(1.0, np.zeros((8, 8, 3), np.uint8), K, np.eye(4))
    logger.close(keep=False)
    assert list(tmp_path.iterdir()) == []


def test_viewer_node_records_the_live_memory(ros, tmp_path):
    from rclpy.parameter import Parameter
    from test_scene_memory_node import EYES, FramePublisher, world

    from memory_node.ros.scene_memory_node import SceneMemoryNode
    from memory_node.viz.viewer_node import RerunViewerNode

    node = ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("publish.graph_period_s", value=0.1),
                Parameter("features.mode", value="off"),
            ],
        )
    )
    path = tmp_path / "live.rrd"
    viewer = ros.add(RerunViewerNode(RerunLogger(save_path=str(path)), context=ros.context))
    pub = FramePublisher(ros.client_node)
    assert ros.wait_for(lambda: pub.pubs["rgb"].get_subscription_count() >= 2, 60.0)
    w = world()
    for i, eye in enumerate(EYES):
        pub.publish(pub.frame(w, eye, 5.0 + i), 5.0 + i)
        assert ros.wait_for(lambda i=i: node.counters["frames_ingested"] > i, 30.0)
    with node._lock:
        ids = {o.id for o in node.memory.objects.values()}
    assert ros.wait_for(lambda: viewer.logger.frames == len(EYES), 10.0), (
        viewer.logger.frames,
        viewer._info is not None,
        len(viewer._poses),
    )
    assert ros.wait_for(lambda: node._published_version == node._version, 10.0), (
        "the latest graph was published"
    )
    ros.wait_for(lambda: False, 0.5)  # the last graph reaches the viewer
    viewer.close()
    rrd = read_rrd(path)
    assert len(rrd["/world/camera/image"]["EncodedImage:blob"]) == len(EYES)
    logged = labels_of(rrd["/world/objects/present"]["Boxes3D:labels"][-1:])
    assert {lab.split("[")[1].split("]")[0] for lab in logged} == ids
