"""Tests of the randomized change episodes (memory_sim.change_episodes) and what they rely on."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from memory_sim.assets import object_from_asset
from memory_sim.change_episodes import (
    HELD_OUT_SEEDS,
    MIN_MOVE_M,
    SMALL_HOUSE_STOPS,
    STYLE_NAMES,
    TRAINING_SEEDS,
    house_of_seed,
    is_static_seed,
    make_change_episode,
    small_house_world,
    style_of_seed,
)
from memory_sim.episode import EpisodeError, EpisodeRunner, load_episode, parse_episode
from memory_sim.scene import Pose, SceneSpec
from memory_sim.simulator import SimConfig, Simulator


def _runner(seed: int, style: str | None = None) -> tuple[EpisodeRunner, object]:
    ce = make_change_episode(seed, style, house="procedural")
    config = ce.sim_config(32, 24)
    config.noise.enabled = False
    return EpisodeRunner(ce.episode, config, scene=ce.scene), ce


def test_seed_sets_cover_every_style_with_static_episodes() -> None:
    assert len(HELD_OUT_SEEDS) >= 40 and not set(HELD_OUT_SEEDS) & set(TRAINING_SEEDS)
    for seeds in (TRAINING_SEEDS, HELD_OUT_SEEDS):
        styles = Counter(style_of_seed(s) for s in seeds)
        static = Counter(style_of_seed(s) for s in seeds if is_static_seed(s))
        assert set(styles) == set(STYLE_NAMES)
        assert set(static) == set(STYLE_NAMES)  # false events measured in every style
        assert len(set(styles.values())) == 1


def test_same_seed_gives_the_same_house_and_changes_in_every_style() -> None:
    a = make_change_episode(4, "smooth")
    b = make_change_episode(4, "inspection")
    assert [o.name for o in a.scene.objects] == [o.name for o in b.scene.objects]
    assert [(e.kind, e.args) for e in a.episode.events] == [
        (e.kind, e.args) for e in b.episode.events
    ]
    assert a.episode.segments[0].kind == "coverage"
    assert b.episode.segments[0].kind == "viewpoints"
    c = make_change_episode(5, "smooth")
    assert [(e.kind, e.args) for e in a.episode.events] != [
        (e.kind, e.args) for e in c.episode.events
    ]


def test_lookalikes_are_identical_and_the_change_set_has_every_kind() -> None:
    kinds: Counter[str] = Counter()
    for seed in (0, 1, 2):
        ce = make_change_episode(seed)
        specs = [ce.scene.object(n) for n in ce.lookalikes]
        assert 2 <= len(specs) <= 7
        assert len({repr((s.label, s.urdf, s.rgba, s.parts)) for s in specs}) == 1
        kinds.update(e.kind for e in ce.episode.events)
        touched = {e.args.get("object") for e in ce.episode.events}
        assert touched & set(ce.lookalikes)  # some look-alike moves or goes
    assert {"move", "remove", "add", "set_state"} <= set(kinds)
    assert not make_change_episode(3, static=True).episode.events


def test_changes_happen_in_the_change_window_on_free_places() -> None:
    runner, _ = _runner(6)
    with runner:
        start, end = runner.trajectory.segments["away"]
        assert all(start <= e.time_s <= end for e in runner.events)
        runner.apply_events_until(end)
        changes = runner.sim.changes
        assert len(changes) == len(runner.events)
        rooms = set()
        for c in changes:
            if c.kind.name == "MOVED":
                assert np.linalg.norm(c.event.new_position - c.event.old_position) >= MIN_MOVE_M
                rooms.add(c.old_room == c.new_room)
        assert rooms == {True, False}  # moves within and across rooms
        boxes = [o for o in runner.sim.objects() if not o.static]
        for i, a in enumerate(boxes):  # no moved or added object inside another
            for b in boxes[i + 1 :]:
                overlap = np.minimum(a.box_max, b.box_max) - np.maximum(a.box_min, b.box_min)
                assert not np.all(overlap > 0.01), (a.name, b.name)


def test_inspection_frames_land_on_viewpoints_one_to_three_each() -> None:
    runner, ce = _runner(1, "inspection")
    with runner:
        points = ce.episode.segments[0].args["points"]
        tour1 = runner.trajectory.segments["tour1"]
        dt = 1.0 / ce.style.rate_hz
        per_view: Counter[int] = Counter()
        rooms = set()
        for k in range(1, round(tour1[1] / dt) + 1):
            pose = runner.trajectory.pose_at(k * dt)
            xy = pose[:2, 3]
            hits = [i for i, p in enumerate(points) if math.dist(p[:2], xy) < 1e-3]
            assert hits, f"frame {k} between viewpoints at {xy}"
            per_view[hits[0]] += 1
            rooms.add(runner.scene.room_at(*xy))
            for o in runner.sim.objects():  # never inside furniture
                assert not (np.all(o.box_min[:2] <= xy) and np.all(xy <= o.box_max[:2]))
        assert set(per_view.values()) <= {1, 2, 3} and len(per_view) == len(points)
        assert rooms == {r.name for r in runner.scene.rooms}


def test_dropped_frames_are_about_thirty_percent_and_skip_keeps_the_clock() -> None:
    runner, ce = _runner(4)  # style drop30
    with runner:
        assert ce.style.drop_prob == pytest.approx(0.3)
        drop = ce.dropped_frames(runner.frame_count)
        assert np.array_equal(drop, ce.dropped_frames(runner.frame_count))
        assert 0.22 < drop.mean() < 0.38
        _, end = runner.trajectory.segments["away"]
        while runner.sim.frame_index < runner.frame_count:
            if runner.sim.time >= end:
                break
            runner.skip()
        assert len(runner.sim.changes) == len(runner.events)  # events applied while skipping
        assert not runner.sim.log.frames
        step = runner.step()
        assert step.frame.stamp == pytest.approx(runner.sim.frame_index / ce.style.rate_hz)
    none_dropped = make_change_episode(0).dropped_frames(1000)
    assert not none_dropped.any()


def test_written_episode_loads_back_and_plans_the_same_path(tmp_path: Path) -> None:
    ce = make_change_episode(1, "inspection")
    path = ce.write(tmp_path)
    episode = load_episode(str(path))
    assert [(s.kind, s.name) for s in episode.segments] == [
        (s.kind, s.name) for s in ce.episode.segments
    ]
    assert [(e.kind, e.args) for e in episode.events] == [
        (e.kind, e.args) for e in ce.episode.events
    ]
    config = SimConfig(rate_hz=10.0)
    config.camera.width_px, config.camera.height_px = 32, 24
    with EpisodeRunner(episode, config) as runner:
        assert {o.name for o in runner.scene.objects} >= set(ce.lookalikes)
        assert runner.frame_count == math.floor(runner.trajectory.duration * 10.0 + 1e-9)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("[[1.0, 1.0, 0.0]]", "viewpoints.points"),
        ("[[1.0, 1.0, 0.0, 0.0]]", "hold_s must be positive"),
        ("[[1.0, 1.0, 0.0, .nan]]", "non-finite"),
    ],
)
def test_bad_viewpoints_name_the_line(points: str, message: str) -> None:
    text = (
        "name: v\nscene:\n  procedural: {seed: 2, rooms_x: 1, rooms_y: 1}\n"
        f"segments:\n  - viewpoints:\n      points: {points}\n"
    )
    with pytest.raises(EpisodeError, match=message) as err:
        parse_episode(text, "v.yaml")
    assert "v.yaml:" in str(err.value)


@pytest.mark.parametrize("key", ["teddy", "duck", "mug"])
def test_moved_object_lands_where_it_would_be_spawned(key: str) -> None:
    # pybullet places a body by its centre of mass; the teddy's is 0.27 m off its origin
    pose = Pose.from_xyz_rpy((1.0, 2.0, 0.5), yaw=1.2)
    scene = SceneSpec(
        "s", objects=[object_from_asset(key, "a", Pose()), object_from_asset(key, "b", pose)]
    )
    with Simulator(scene, SimConfig()) as sim:
        sim.move_object("a", pose)
        a, b = sim.object_truth("a"), sim.object_truth("b")
        np.testing.assert_allclose(a.box_min, b.box_min, atol=1e-6)
        np.testing.assert_allclose(a.box_max, b.box_max, atol=1e-6)


@pytest.mark.skipif(small_house_world() is None, reason="shared/data/aws_small_house is absent")
def test_small_house_episode_drives_between_two_stops_and_changes_things_near_them() -> None:
    ce = make_change_episode(6, "smooth")
    assert ce.house == "small_house" and house_of_seed(6) == "small_house"
    config = ce.sim_config(32, 24)
    with EpisodeRunner(ce.episode, config, scene=ce.scene) as runner:
        kinds = Counter(e.kind for e in runner.events)
        assert kinds["move"] >= 1 and kinds["remove"] >= 1
        runner.apply_events_until(runner.trajectory.duration)
        for c in runner.sim.changes:  # every change within reach of a stop of the tour
            where = (
                c.event.new_position
                if c.kind.name in ("MOVED", "APPEARED")
                else c.event.old_position
            )
            assert min(math.dist(where[:2], p) for p in SMALL_HOUSE_STOPS) < 5.0, c.name
        stops = {tuple(p) for s in ce.episode.segments if s.kind == "waypoints"
                 for p in s.args["points"]}  # fmt: skip
        assert stops & set(SMALL_HOUSE_STOPS)
