"""Tests of episode files: parsing errors with lines, event timing, ground truth, shipped files."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from memory_node.core.types import ChangeKind
from memory_sim.episode import EpisodeError, EpisodeRunner, load_episode, parse_episode
from memory_sim.simulator import SimConfig

EPISODES = Path(__file__).resolve().parents[2] / "sim" / "episodes"

SMALL = """\
name: small
scene:
  procedural: {seed: 2, rooms_x: 2, rooms_y: 1, objects_per_room: 3}
camera: {speed_mps: 1.0, yaw_rate_dps: 90}
segments:
  - name: look
    coverage: {turns: 1}
  - name: later
    hold: {duration_s: 2.0}
events:
%s
"""


def _config(rate_hz: float = 5.0) -> SimConfig:
    config = SimConfig(rate_hz=rate_hz)
    config.camera.width_px, config.camera.height_px = 32, 24
    config.noise.enabled = False
    return config


def _small_runner(events: str) -> EpisodeRunner:
    return EpisodeRunner(parse_episode(SMALL % events, "small.yaml"), _config())


def _movable(runner: EpisodeRunner) -> list[str]:
    return [o.name for o in runner.scene.objects if not o.structure and not o.static]


def test_event_moves_object_in_ground_truth_at_its_time() -> None:
    probe = _small_runner("  []")
    name = _movable(probe)[0]
    start_later = probe.trajectory.segments["later"][0]
    probe.close()
    events = f"  - {{after: later, at_s: 0.5, move: {{object: {name}, position: [1.0, 1.0]}}}}"
    with _small_runner(events) as runner:
        iid = runner.sim.instance_id(name)
        before = runner.sim.object_truth(name).center.copy()
        t_event = start_later + 0.5
        for step in runner:
            truth = runner.sim.object_truth(name)
            if step.frame.stamp < t_event:
                np.testing.assert_allclose(truth.center, before)
            else:
                np.testing.assert_allclose(truth.center[:2], [1.0, 1.0], atol=0.1)
        [change] = runner.sim.changes
        assert change.kind == ChangeKind.MOVED and change.instance_id == iid
        assert change.stamp == pytest.approx(t_event)
        np.testing.assert_allclose(change.event.old_position, before)
        gt = runner.ground_truth()
    entry = next(o for o in gt["objects"] if o["instance_id"] == iid)
    assert [h["stamp"] for h in entry["history"]] == [0.0, pytest.approx(t_event)]
    assert entry["history"][1]["center"][:2] == pytest.approx([1.0, 1.0], abs=0.1)
    assert gt["changes"][0]["kind"] == "MOVED"
    vis = entry["visibility"]
    seen_frames = [f for f in gt["frames"] if str(iid) in f["visible"]]
    assert vis["frames"] == len(seen_frames)
    if seen_frames:
        assert vis["first_seen"] == seen_frames[0]["stamp"]
    assert len(gt["frames"]) == gt["meta"]["frame_count"] > 0


def test_remove_add_and_state_events_in_ground_truth(tmp_path: Path) -> None:
    probe = _small_runner("  []")
    movable = _movable(probe)
    stateful = next(o for o in probe.scene.objects if o.states)
    support = next(o for o in probe.scene.objects if o.label in ("table", "counter", "desk"))
    other_state = next(s for s in stateful.states if s != stateful.state)
    probe.close()
    events = "\n".join(
        [
            f"  - {{at_s: 0.3, remove: {{object: {movable[0]}}}}}",
            f"  - {{at_s: 0.5, add: {{name: extra/mug, asset: mug, onto: {support.name}}}}}",
            f"  - {{at_s: 0.7, set_state: {{object: {stateful.name}, state: {other_state}}}}}",
        ]
    )
    with _small_runner(events) as runner:
        removed_id = runner.sim.instance_id(movable[0])
        steps = list(runner)
        added = runner.sim.object_truth("extra/mug")
        table = runner.sim.object_truth(support.name)
        out = tmp_path / "gt.json"
        runner.save_ground_truth(str(out))
    kinds = [c.kind for c in runner.sim.changes]
    assert kinds == [ChangeKind.DISAPPEARED, ChangeKind.APPEARED, ChangeKind.STATE_CHANGED]
    assert added.instance_id > max(o.instance_id for o in runner.sim.objects() if o is not added)
    assert added.box_min[2] == pytest.approx(table.box_max[2], abs=0.01)  # rests on the top
    assert all(removed_id not in s.truth.visible for s in steps if s.frame.stamp >= 0.3)
    gt = json.loads(out.read_text())
    final = {(r["subject"], r["object"]) for r in gt["relations"]["final"]}
    assert ("extra/mug", support.name) in final
    assert all(r["subject"] != "extra/mug" for r in gt["relations"]["initial"])
    assert [c["kind"] for c in gt["changes"]] == ["DISAPPEARED", "APPEARED", "STATE_CHANGED"]
    assert gt["changes"][2]["new_state"] == other_state
    assert gt["meta"]["episode"] == "small" and len(gt["rooms"]) == 2


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("name: x\nscene: {procedural: {seed: 0}\n", 3, "malformed YAML"),
        ("name: x\nscene: {procedural: {seed: 0}}\nsegments: [{hold: {duration_s: 1}}]\n"
         "colour: red\n", 4, "unknown key 'colour'"),
        ("name: x\nscene: {procedural: {seed: 0, floors: 2}}\nsegments: [{hold: {}}]\n",
         2, "unknown key 'floors'"),
        ("name: x\nscene: {procedural: {}}\nsegments:\n  - hold: {duration_s: 1}\n"
         "  - spin: {turns: two}\n", 5, "must be a finite number"),
        ("name: x\nscene: {procedural: {}}\nsegments: [{hold: {duration_s: 1}}]\nevents:\n"
         "  - {at_s: 1, move: {object: a, on: b}}\n", 5, "booleans"),
        ("name: x\nscene: {procedural: {}}\nsegments: [{hold: {duration_s: 1}}]\nevents:\n"
         "  - {at_s: 1, add: {name: a, asset: piano, position: [0, 0]}}\n", 5, "unknown asset"),
        ("name: x\nscene: {procedural: {}}\nsegments: [{hold: {duration_s: 1}}]\nevents:\n"
         "  - {at_s: 1, after: nowhere, remove: {object: a}}\n", 5, "unknown segment"),
        ("scene: {procedural: {}}\nsegments: [{hold: {duration_s: 1}}]\n", 1, "needs 'name'"),
    ],
)  # fmt: skip
def test_malformed_files_raise_episode_error_naming_file_and_line(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(EpisodeError) as info:
        parse_episode(text, "bad.yaml")
    assert f"bad.yaml:{line}:" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "event,line,message",
    [
        ("{at_s: 0.5, move: {object: kitchen/unicorn_0, position: [1, 1]}}", 11,
         "'kitchen/unicorn_0' is unknown"),
        ("{at_s: 0.5, remove: {object: %(m)s}}\n  - {at_s: 0.6, remove: {object: %(m)s}}", 12,
         "was removed before"),
        ("{at_s: 0.5, set_state: {object: %(m)s, state: open}}", 11, "cannot be 'open'"),
        ("{at_s: 9999, remove: {object: %(m)s}}", 11, "after the end of the episode"),
        ("{at_s: 0.5, add: {name: %(m)s, asset: mug, position: [1, 1]}}", 11, "already used"),
        ("{at_s: 0.5, move: {object: %(m)s, onto: %(m)s, offset_xy_m: [5, 0]}}", 11,
         "off its support"),
    ],
)  # fmt: skip
def test_bad_events_name_the_line_and_object(event: str, line: int, message: str) -> None:
    probe = _small_runner("  []")
    movable = next(
        o.name for o in probe.scene.objects if not o.structure and not o.static and not o.states
    )
    probe.close()
    text = SMALL % ("  - " + event % {"m": movable})
    with pytest.raises(EpisodeError) as info:
        EpisodeRunner(parse_episode(text, "ev.yaml"), _config())
    assert f"ev.yaml:{line}:" in str(info.value)
    assert message in str(info.value)


def test_unreadable_file_is_an_episode_error(tmp_path: Path) -> None:
    with pytest.raises(EpisodeError, match="cannot read"):
        load_episode(str(tmp_path / "missing.yaml"))


def test_shipped_episodes_plan_and_validate() -> None:
    # small_house_tour needs ../shared/data: test_shipped_small_house_tour_plans_through_the_house
    found = sorted(p.name for p in EPISODES.glob("*.yaml") if p.name != "small_house_tour.yaml")
    assert {"full_tour.yaml", "tour_changes_tour.yaml", "soak_long.yaml"} <= set(found)
    counts = {}
    for name in found:
        episode = load_episode(str(EPISODES / name))
        with EpisodeRunner(episode, _config(rate_hz=10.0)) as runner:
            counts[name] = runner.frame_count
            # every room is visited, and every planned pose is finite
            rooms = {r.name for r in runner.scene.rooms}
            visited = set()
            for t in np.arange(0.0, runner.trajectory.duration, 0.5):
                pose = runner.trajectory.pose_at(float(t))
                assert np.all(np.isfinite(pose))
                visited.add(runner.scene.room_at(pose[0, 3], pose[1, 3]))
            assert rooms <= visited, name
    assert counts["soak_long.yaml"] >= 2000


@pytest.mark.parametrize("name", ["full_tour.yaml", "tour_changes_tour.yaml", "soak_long.yaml"])
def test_shipped_camera_paths_never_go_through_objects(name: str) -> None:
    episode = load_episode(str(EPISODES / name))
    with EpisodeRunner(episode, _config(rate_hz=10.0)) as runner:
        for t in np.arange(0.1, runner.trajectory.duration, 0.2):
            runner.apply_events_until(float(t))
            p = runner.trajectory.pose_at(float(t))[:3, 3]
            for o in runner.sim.objects():
                inside = np.all(o.box_min - 0.05 <= p) and np.all(p <= o.box_max + 0.05)
                assert not inside, (name, round(float(t), 1), o.name, o.state)
        assert len(runner.sim.changes) == len(runner.events)


def test_tour_changes_tour_changes_happen_elsewhere() -> None:
    episode = load_episode(str(EPISODES / "tour_changes_tour.yaml"))
    with EpisodeRunner(episode, _config(rate_hz=10.0)) as runner:
        kinds = Counter(e.kind for e in runner.events)
        assert kinds["move"] >= 10 and kinds["remove"] >= 10 and kinds["add"] >= 10
        away = runner.trajectory.segments["away"]
        tour1, tour2 = runner.trajectory.segments["tour1"], runner.trajectory.segments["tour2"]
        assert tour1[1] <= away[0] and away[1] <= tour2[0]
        camera_rooms = set()
        for e in runner.events:
            assert away[0] <= e.time_s <= away[1]
            pose = runner.trajectory.pose_at(e.time_s)
            camera_rooms.add(runner.scene.room_at(pose[0, 3], pose[1, 3]))
        assert len(camera_rooms) == 1
        [parked] = camera_rooms
        touched_rooms = set()
        for e in runner.events:
            name = e.args.get("object") or e.args.get("name")
            room = name.split("/")[0]
            touched_rooms.add(room)
            assert room != parked
        assert len(touched_rooms) >= 4


def test_soak_run_stays_finite_for_a_while() -> None:
    episode = load_episode(str(EPISODES / "soak_long.yaml"))
    config = _config(rate_hz=10.0)
    config.camera.width_px, config.camera.height_px = 16, 12
    config.noise.enabled = True
    config.noise.pose_sigma_m, config.noise.pose_sigma_deg = 0.02, 1.0
    with EpisodeRunner(episode, config, keep_frame_truth=False) as runner:
        for step in runner:
            assert np.all(np.isfinite(step.frame.map_T_camera))
            assert np.all(np.isfinite(step.frame.depth))
            if runner.sim.frame_index >= 300:
                break
        assert runner.sim.log.frames == []
        assert math.isclose(step.frame.stamp, 300 * runner.sim.dt)


def test_cli_check_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from memory_sim.episode import main

    assert main([str(EPISODES / "full_tour.yaml"), "--check"]) == 0
    assert "full_tour" in capsys.readouterr().out
    bad = os.devnull
    assert main([bad, "--check"]) == 2


SMALL_HOUSE = (
    Path(__file__).resolve().parents[3] / "shared/data/aws_small_house/worlds/small_house.world"
)


@pytest.mark.skipif(not SMALL_HOUSE.is_file(), reason=f"{SMALL_HOUSE} is not present")
def test_episode_on_imported_gazebo_world() -> None:
    text = (
        f"name: gz\nscene:\n  gazebo: {{world: {SMALL_HOUSE}}}\n"
        "camera: {start: {position: [0.0, 0.0], yaw_deg: 0}}\n"
        "segments: [{spin: {turns: 0.25}}]\n"
        "events: [{at_s: 0.2, remove: {object: Ball_01_001}}]\n"
    )
    with EpisodeRunner(parse_episode(text, "gz.yaml"), _config(rate_hz=10.0)) as runner:
        steps = list(runner)
        assert len(steps) == runner.frame_count > 0
        assert sum(len(s.truth.visible) for s in steps) > 0
        [change] = runner.sim.changes
        assert change.kind == ChangeKind.DISAPPEARED and change.name == "Ball_01_001"


def test_shipped_small_house_tour_plans_through_the_house() -> None:
    if not SMALL_HOUSE.is_file():
        pytest.skip(f"{SMALL_HOUSE} is not present")
    from memory_sim.episode import load_episode, plan_trajectory

    path = Path(__file__).resolve().parents[2] / "sim/episodes/small_house_tour.yaml"
    episode = load_episode(str(path))
    scene = episode.build_scene()
    trajectory = plan_trajectory(episode, scene)
    assert len([o for o in scene.objects if not o.structure]) >= 80
    assert trajectory.duration > 60.0
