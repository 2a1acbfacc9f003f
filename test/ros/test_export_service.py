"""scene_memory's ~/export writes the live memory as the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger
from test_scene_memory_node import EYES, FramePublisher, world

from memory_node.ros.scene_memory_node import SceneMemoryNode

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "export-schema.json").read_text()
)


def test_export_service_writes_the_live_memory(ros, tmp_path):
    out = tmp_path / "memory.json"
    out.write_text("stale")  # the configured file is replaced
    node = ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("features.mode", value="off"),
                Parameter("persistence.export_path", value=str(out)),
            ],
        )
    )
    pub = FramePublisher(ros.client_node)
    w = world()
    for i, eye in enumerate(EYES):
        pub.publish(pub.frame(w, eye, 7.0 + i), 7.0 + i)
        assert ros.wait_for(lambda i=i: node.counters["frames_ingested"] > i, 30.0)
    res = ros.call(Trigger, "/scene_memory/export", Trigger.Request())
    assert res.success, res.message
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    exported = [o for z in doc["zones"] for o in z["objects"]] + doc["unzoned_objects"]
    with node._lock:
        live = {o.id: o.label for o in node.memory.objects.values()}
    assert {o["id"]: o["label"] for o in exported} == live
    assert {"table", "mug", "cabinet"} <= set(live.values())
    assert list(tmp_path.iterdir()) == [out]


def test_export_without_a_path_is_refused(ros):
    ros.add(
        SceneMemoryNode(
            context=ros.context, parameter_overrides=[Parameter("features.mode", value="off")]
        )
    )
    res = ros.call(Trigger, "/scene_memory/export", Trigger.Request())
    assert not res.success and "export_path" in res.message
