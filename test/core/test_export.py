"""memory_export: a saved memory as a versioned JSON document.

Zones -> objects -> relations -> recent changes, checked against the documented schema, read
back, and refused on bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from memory_node.core.export import SCHEMA_VERSION, from_document, to_document
from memory_node.core.persistence import load_memory
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import InvalidInput
from memory_node.tools.export import main

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "export-schema.json").read_text())
W, H = 160, 120
K = intrinsics(W, H, fov_deg=70.0)
CRATE = Box(np.array([2.5, 0.0, 0.25]), np.array([0.5, 0.5, 0.5]), "crate", 1, (180, 40, 40))
BOWL = Box(np.array([2.4, 0.6, 0.1]), np.array([0.2, 0.2, 0.2]), "bowl", 3, (40, 40, 180))
MUG = Box(np.array([2.5, 0.0, 0.6]), np.array([0.2, 0.2, 0.2]), "mug", 2, (40, 180, 40), "full")


@pytest.fixture(scope="module")
def memory_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Save a crate with a mug on it and a bowl beside it, seen 4 frames; then the mug goes."""
    cfg = SceneMemoryConfig()
    cfg.features.mode = "off"
    cfg.depth.pixel_stride = 1
    mem = SceneMemory(cfg)
    pose = look_at(np.array([0.0, 0.0, 1.4]), np.array([2.5, 0.0, 0.2]))
    for i in range(4):
        mem.ingest(render(BoxWorld([CRATE, MUG, BOWL]), K, pose, W, H, 100.0 + 0.1 * i))
    for i in range(4):
        mem.ingest(render(BoxWorld([CRATE, BOWL]), K, pose, W, H, 101.0 + 0.1 * i))
    path = tmp_path_factory.mktemp("export") / "memory.db"
    mem.save(str(path))
    return path


def all_objects(doc: dict) -> list[dict]:
    return [o for z in doc["zones"] for o in z["objects"]] + doc["unzoned_objects"]


def test_export_holds_the_scene_as_seen(memory_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    assert main([str(memory_file), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["version"] == SCHEMA_VERSION and doc["frame_id"] == "map"
    objects = {o["label"]: o for o in all_objects(doc)}
    assert sorted(objects) == ["bowl", "crate", "mug"]
    for box in (CRATE, MUG, BOWL):
        o = objects[box.label]  # the camera sees only the front: boxes are shallower
        np.testing.assert_allclose(o["pose"]["position"], box.center, atol=0.1)
        assert o["pose"]["orientation"] == [0.0, 0.0, 0.0, 1.0]
        assert all(0.0 < s <= b + 0.06 for s, b in zip(o["box"]["size"], box.size, strict=True))
        assert 100.0 <= o["first_seen"] <= o["last_seen"] <= 101.31
    assert objects["crate"]["present"] and not objects["mug"]["present"]
    assert objects["mug"]["state"] == "full"
    assert objects["mug"]["last_seen"] == pytest.approx(100.3)
    ids = [o["id"] for o in all_objects(doc)]
    assert len(set(ids)) == len(ids)
    for z in doc["zones"]:
        assert z["objects"], "a zone without objects"
    kinds = [(c["kind"], c["label"]) for c in doc["changes"]]
    assert ("DISAPPEARED", "mug") in kinds
    stamps = [c["stamp"] for c in doc["changes"]]
    assert stamps == sorted(stamps, reverse=True)
    assert doc["relations"], "the bowl stands near the crate"
    for r in doc["relations"]:
        assert r["subject_id"] in ids and r["object_id"] in ids


def test_round_trip_keeps_every_exported_field(memory_file: Path) -> None:
    snap = load_memory(str(memory_file))
    doc = json.loads(json.dumps(to_document(snap)))
    back = from_document(doc)
    assert to_document(back) == doc
    original = {o.id: o for o in snap.objects}
    assert sorted(original) == sorted(o.id for o in back.objects)
    for o in back.objects:
        ref = original[o.id]
        assert (o.label, o.state, o.present, o.observations) == (
            ref.label,
            ref.state,
            ref.present,
            ref.observations,
        )
        np.testing.assert_allclose(o.center, ref.center, rtol=0, atol=1e-12)
        np.testing.assert_allclose(o.size, ref.size, rtol=0, atol=1e-12)
        assert (o.first_seen, o.last_seen) == (ref.first_seen, ref.last_seen)
    assert [(r.subject_id, r.predicate, r.object_id) for r in back.relations] == [
        (r.subject_id, r.predicate, r.object_id) for r in snap.relations
    ]
    assert [(e.kind, e.object_id, e.stamp) for e in back.changes] == [
        (e.kind, e.object_id, e.stamp) for e in snap.changes
    ]


def test_schema_rejects_a_document_missing_a_field(memory_file: Path) -> None:
    doc = to_document(load_memory(str(memory_file)))
    jsonschema.validate(doc, SCHEMA)
    del all_objects(doc)[0]["present"]
    with pytest.raises(jsonschema.ValidationError, match="present"):
        jsonschema.validate(doc, SCHEMA)
    with pytest.raises(InvalidInput, match="present"):
        from_document(doc)


def test_max_changes_keeps_the_newest(memory_file: Path) -> None:
    snap = load_memory(str(memory_file))
    assert snap.changes, "the fixture has changes"
    (newest,) = to_document(snap, max_changes=1)["changes"]
    assert newest["stamp"] == max(e.stamp for e in snap.changes)
    assert to_document(snap, max_changes=0)["changes"] == []


def test_existing_output_is_refused_without_force(
    memory_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    out.write_text("keep me")
    assert main([str(memory_file), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err
    assert out.read_text() == "keep me"
    assert main([str(memory_file), "-o", str(out), "--force"]) == 0
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "does not exist"), (b"not a database at all", "not an SQLite file")],
)
def test_a_bad_memory_file_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, reason: str
) -> None:
    db = tmp_path / "memory.db"
    if content is not None:
        db.write_bytes(content)
    out = tmp_path / "out.json"
    assert main([str(db), "-o", str(out)]) == 2
    assert reason in capsys.readouterr().err
    assert not out.exists()


def test_a_truncated_memory_file_writes_nothing(memory_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "cut.db"
    db.write_bytes(memory_file.read_bytes()[:3000])
    out = tmp_path / "out.json"
    assert main([str(db), "-o", str(out)]) == 2
    assert not out.exists()
