"""The failures an outside probe found, one test each, in the core (no ROS).

Each test fails on the code before issue 15: clock jumps wedging ingest, corrupt memory files
that load and then break the answers, half-restored memory after a failed load, saves replacing
devices and following symlinks, loads blocking on FIFOs, absurd poses and intrinsics, and a
policy bank poisoned by huge tokens.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import filled_memory, fingerprint, memory_fingerprint, view, world

from memory_node.core.persistence import load_memory, save_memory
from memory_node.core.policy_bank import PolicyBankConfig, PolicyMemory
from memory_node.core.scene_memory import SceneMemory
from memory_node.core.types import InvalidInput, QueryRequest


def answers_every_query(mem: SceneMemory) -> None:
    """Every read the services make, including the conversions' inputs, works and is finite."""
    for obj in mem.objects.values():
        assert isinstance(obj.label, str) and isinstance(obj.id, str)
        assert np.isfinite(obj.first_seen) and np.isfinite(obj.last_seen)
        assert obj.observations >= 0
        assert np.isfinite(np.asarray(obj.center)).all()
    mem.query(QueryRequest(text="mug", k=10))
    mem.render("", 100, 2000)
    mem.changes(0.0, "", 100)


# --- 1. time --------------------------------------------------------------------------------


@pytest.mark.parametrize("wedge", ["far_future", "jump_back"])
def test_a_clock_jump_never_stops_ingest(wedge: str) -> None:
    mem = filled_memory(frames=3, t0=200.0)
    if wedge == "far_future":
        mem.ingest(view(2.0**31 - 1, 1))  # a bad clock: accepted (no clock known to the core)
    # then the stream continues at a much earlier time: a bag loop, a simulator restart
    accepted = mem.stats()["frames_accepted"]
    for i in range(3):
        mem.ingest(view(50.0 + 0.1 * i, i))
    assert mem.stats()["frames_accepted"] == accepted + 3


def test_a_small_step_back_is_still_dropped_as_out_of_order() -> None:
    mem = filled_memory(frames=3, t0=200.0)
    with pytest.raises(InvalidInput, match="not after"):
        mem.ingest(view(200.1, 0))


def test_a_rejected_frame_does_not_advance_the_guard() -> None:
    mem = filled_memory(frames=2, t0=100.0)
    bad = view(100.5, 0)
    bad.depth[:] = np.nan
    with pytest.raises(InvalidInput):
        mem.ingest(bad)
    mem.ingest(view(100.2, 1))  # after the last accepted frame, before the rejected one


def test_load_resets_the_stamp_guard(tmp_path: Path) -> None:
    mem = filled_memory(frames=3, t0=500.0)
    path = str(tmp_path / "m.db")
    mem.save(path)
    mem.load(path)
    mem.ingest(view(499.0, 0))  # a new session with earlier stamps


# --- 3. corrupt files that load -------------------------------------------------------------


def spoil(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


CORRUPTIONS = {
    "label_blob": ("UPDATE objects SET label = ? WHERE idx = 0", b"\x00\xff"),
    "first_seen_text": ("UPDATE objects SET first_seen = 'yesterday' WHERE idx = 0",),
    "negative_observations": ("UPDATE objects SET observations = -5 WHERE idx = 0",),
    "infinite_observations": ("UPDATE objects SET observations = '1e999' WHERE idx = 0",),
    "negative_size": ("UPDATE objects SET size = ? WHERE idx = 0", np.full(3, -1.0).tobytes()),
    "nan_center": ("UPDATE objects SET center = ? WHERE idx = 0", np.full(3, np.nan).tobytes()),
    "id_blob": ("UPDATE objects SET id = ? WHERE idx = 0", b"\x00\xff"),
    "confidence_huge": ("UPDATE objects SET label_confidence = 1e300 WHERE idx = 0",),
    "change_stamp_text": (
        "INSERT INTO changes VALUES (99, 0, 'obj_000000', 'mug', 'noon', ?, ?, '', '')",
        np.zeros(3).tobytes(),
        np.zeros(3).tobytes(),
    ),
    "change_kind_unknown": (
        "INSERT INTO changes VALUES (99, 7, 'obj_000000', 'mug', 1.0, ?, ?, '', '')",
        np.zeros(3).tobytes(),
        np.zeros(3).tobytes(),
    ),
    "relation_subject_blob": (
        "INSERT INTO relations VALUES (99, ?, 'on', 'obj_000000', 1.0)",
        b"\x01",
    ),
    "zone_size_negative": (
        "INSERT INTO zones VALUES (99, 'zone_9', 'kitchen', ?, ?, '[]')",
        np.zeros(3).tobytes(),
        np.full(3, -2.0).tobytes(),
    ),
    "truncated_points": ("UPDATE objects SET points = substr(points, 1, 7) WHERE idx = 0",),
    "votes_not_json": ("UPDATE objects SET label_votes = '{{' WHERE idx = 0",),
    "schema_version_9": ("UPDATE schema SET version = 9",),
    "next_index_negative": ("UPDATE meta SET value = '-3' WHERE key = 'next_object_index'",),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupt_file_is_refused_whole_and_memory_kept(tmp_path: Path, name: str) -> None:
    mem = filled_memory()
    path = tmp_path / "m.db"
    mem.save(str(path))
    mem.ingest(view(200.0, 2))  # memory moves on after the save
    spoil(path, *CORRUPTIONS[name])
    before = memory_fingerprint(mem)
    with pytest.raises(InvalidInput):
        mem.load(str(path))
    assert memory_fingerprint(mem) == before
    answers_every_query(mem)


# --- 4. a failed load leaves memory untouched -----------------------------------------------


def test_a_load_failing_halfway_leaves_memory_untouched(tmp_path: Path, monkeypatch) -> None:
    mem = filled_memory()
    path = tmp_path / "m.db"
    mem.save(str(path))
    snap = load_memory(str(path))
    mem.ingest(view(200.0, 2, world(mug_y=0.5)))  # memory moves on after the save
    before = memory_fingerprint(mem)
    from memory_node.core import scene_memory

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(scene_memory.ShortTermMemory, "restore", broken)
    with pytest.raises(RuntimeError):
        mem.restore(snap)
    assert memory_fingerprint(mem) == before


# --- 5./6. paths ----------------------------------------------------------------------------


@pytest.fixture
def char_device(tmp_path: Path) -> Path:
    """Return a character device (the null device) made in ``tmp_path``; non-root: /dev/full."""
    node = tmp_path / "null_device"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return Path("/dev/full")  # not root: a save could not replace it anyway
    return node


def test_save_never_follows_a_symlink_to_a_device(tmp_path: Path, char_device: Path) -> None:
    link = tmp_path / "null.db"
    link.symlink_to(char_device)
    with pytest.raises(InvalidInput, match="not a regular file"):
        save_memory(str(link), filled_memory(frames=2).snapshot())
    assert link.is_symlink() and os.readlink(link) == str(char_device)
    assert stat.S_ISCHR(os.stat(char_device).st_mode)


def test_save_refuses_a_character_device(char_device: Path) -> None:
    with pytest.raises(InvalidInput, match="not a regular file"):
        save_memory(str(char_device), filled_memory(frames=2).snapshot())
    assert stat.S_ISCHR(os.stat(char_device).st_mode)


def test_save_through_a_symlink_to_a_file_replaces_the_file_not_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.db"
    save_memory(str(target), filled_memory(frames=2).snapshot())
    link = tmp_path / "link.db"
    link.symlink_to(target)
    mem = filled_memory(frames=3)
    save_memory(str(link), mem.snapshot())
    assert link.is_symlink() and target.is_file() and not target.is_symlink()
    assert fingerprint(load_memory(str(target))) == fingerprint(mem.snapshot())


@pytest.mark.parametrize("op", ["save", "load"])
def test_paths_with_nul_are_refused(tmp_path: Path, op: str) -> None:
    path = str(tmp_path / "a.db") + "\x00/etc/passwd"
    with pytest.raises(InvalidInput, match="NUL"):
        if op == "save":
            save_memory(path, filled_memory(frames=2).snapshot())
        else:
            load_memory(path)
    assert not (tmp_path / "a.db").exists()


def test_load_of_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def attempt() -> None:
        try:
            load_memory(str(fifo))
        except InvalidInput as exc:
            outcome.append(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10.0)
    if t.is_alive():  # unblock the reader so the thread ends, then fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(5.0)
        pytest.fail("load_memory blocked on a FIFO")
    assert outcome and "not a regular file" in str(outcome[0])


def test_load_of_a_character_device_is_refused(char_device: Path) -> None:
    with pytest.raises(InvalidInput, match="not a regular file"):
        load_memory(str(char_device))


# --- 7. absurd poses and intrinsics ---------------------------------------------------------


@pytest.mark.parametrize("what", ["far_position", "tiny_focal"])
def test_absurd_poses_and_intrinsics_are_refused(what: str) -> None:
    mem = filled_memory()
    before = memory_fingerprint(mem)
    frame = view(300.0, 1)
    if what == "far_position":
        frame.map_T_camera = frame.map_T_camera.copy()
        frame.map_T_camera[0, 3] = 1e308
    else:
        frame.K = frame.K.copy()
        frame.K[0, 0] = frame.K[1, 1] = 1e-300
    with pytest.raises(InvalidInput):
        mem.ingest(frame)
    assert memory_fingerprint(mem) == before
    snap = mem.snapshot()
    for obj in snap.objects:
        assert np.isfinite(obj.center).all() and np.isfinite(obj.size).all()


# --- 8. policy bank poisoning ---------------------------------------------------------------


def test_huge_finite_tokens_cannot_poison_the_policy_bank() -> None:
    cfg = PolicyBankConfig(dim=16, capacity=4, num_heads=2, num_layers=1, ffn_dim=32)
    bank = PolicyMemory(cfg)
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(3, 16)).astype(np.float32)
    bank.step(0, tokens, tokens[0], write=True)
    before = {k: v.copy() for k, v in bank.snapshot().items()}
    try:
        bank.step(1, np.full((3, 16), 3e38, np.float32), np.full(16, 3e38, np.float32), True)
    except InvalidInput:
        after = bank.snapshot()
        assert before.keys() == after.keys()
        assert all(np.array_equal(before[k], after[k]) for k in before)
    for t in range(2, 8):
        out = bank.step(t, rng.normal(size=(3, 16)).astype(np.float32), tokens[1], write=True)
        assert np.isfinite(out.perceptual_fused).all() and np.isfinite(out.cognitive_fused).all()


def test_fingerprint_sees_a_change() -> None:
    """The fingerprint used above can fail: one moved centre changes it."""
    snap = filled_memory(frames=3).snapshot()
    before = fingerprint(snap)
    snap.objects[0].center = snap.objects[0].center + 1e-9
    assert fingerprint(snap) != before
