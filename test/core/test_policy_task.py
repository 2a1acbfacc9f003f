"""The memory-dependent cue task, its policy and scripts, end to end at toy scale (no ROS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from memory_node.policy_task import evaluate, train
from memory_node.policy_task.env import LEFT, RIGHT, STAY, CueReachTask, Phase, TaskConfig
from memory_node.policy_task.policy import PolicyConfig, TaskPolicy, load_policy
from memory_node.policy_task.rollout import (
    OracleController,
    RandomController,
    collect_demonstrations,
    run_episodes,
    wilson_interval,
)


@pytest.fixture(scope="module")
def env() -> Iterator[CueReachTask]:
    task = CueReachTask(TaskConfig())
    yield task
    task.close()


def act_phase_frame(env: CueReachTask, seed: int) -> tuple[float, int, np.ndarray]:
    frame = env.reset(seed)
    start = env.agent_x
    while env.phase is not Phase.ACT:
        frame = env.step(STAY)
    return start, env.target, frame


def test_cue_is_visible_then_hidden(env: CueReachTask) -> None:
    cue = env.reset(0)
    assert env.phase is Phase.CUE
    while env.phase is not Phase.DELAY:
        env.step(STAY)
    delay = env.step(STAY)
    red = (cue[..., 0] > 150) & (cue[..., 1] < 80)
    assert red.any(), "the red cue cube is rendered during the cue"
    assert not ((delay[..., 0] > 150) & (delay[..., 1] < 80)).any(), "and gone afterwards"


def test_act_phase_frames_do_not_show_the_target(env: CueReachTask) -> None:
    """Two episodes with the same start but different targets look identical when acting."""
    seen: dict[float, tuple[int, np.ndarray]] = {}
    for seed in range(60):
        start, target, frame = act_phase_frame(env, seed)
        key = round(start, 3)
        if key in seen and seen[key][0] != target:
            np.testing.assert_array_equal(seen[key][1], frame)
            return
        seen.setdefault(key, (target, frame))
    pytest.fail("no pair of episodes with equal start and different targets in 60 seeds")


def test_puck_is_frozen_before_the_act_phase_and_clamped(env: CueReachTask) -> None:
    env.reset(1)
    x0 = env.agent_x
    while env.phase is not Phase.ACT:
        env.step(RIGHT)
    assert env.agent_x == x0
    for _ in range(env.config.act_steps):
        env.step(LEFT)
    assert env.agent_x == pytest.approx(env.pad_x[0])
    assert env.done
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STAY)


def test_oracle_succeeds_and_random_mostly_fails() -> None:
    config = TaskConfig()
    seeds = range(30)
    assert all(run_episodes(config, OracleController(), seeds))
    random_success = np.mean(run_episodes(config, RandomController(seed=0), seeds))
    assert random_success < 0.5


def test_a_fixed_guess_is_at_chance() -> None:
    """Always going to the leftmost pad is right only when the target is there (~1/3)."""

    class GoLeft(RandomController):
        def act(self, frame: np.ndarray, timestep: int, env: CueReachTask) -> int:
            return LEFT

    outcomes = run_episodes(TaskConfig(), GoLeft(seed=0), range(60))
    assert 0.15 < np.mean(outcomes) < 0.55


def test_demonstrations_shapes_and_labels() -> None:
    config = TaskConfig()
    demos = collect_demonstrations(config, episodes=5, seed=3, action_noise=0.5)
    steps = config.episode_steps
    assert demos.frames.shape == (5, steps, config.image_px, config.image_px, 3)
    assert demos.frames.dtype == np.uint8
    assert demos.actions.shape == (5, steps)
    waiting = config.cue_steps + config.delay_steps
    assert (demos.actions[:, :waiting] == STAY).all()
    assert set(np.unique(demos.actions)) <= {LEFT, STAY, RIGHT}


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.parametrize("use_memory", [True, False])
def test_policy_is_causal(use_memory: bool) -> None:
    torch.manual_seed(0)
    policy = TaskPolicy(PolicyConfig(use_memory=use_memory, capacity=3)).eval()
    frames = torch.randint(0, 255, (2, 8, 32, 32, 3), dtype=torch.uint8)
    changed = frames.clone()
    changed[:, 5:] = 0
    with torch.no_grad():
        a, b = policy(frames), policy(changed)
    assert a.shape == (2, 8, 3)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    if use_memory:
        early = frames.clone()
        early[:, 0] = 0
        with torch.no_grad():
            assert not torch.allclose(policy(early)[:, 7], a[:, 7]), "step 0 is remembered"


def test_train_and_evaluate_scripts_end_to_end(tmp_path: Path) -> None:
    report = train.main(
        ["--episodes", "12", "--iterations", "3", "--batch-size", "4", "--threads", "1",
         "--output-dir", str(tmp_path), "--quiet"]
    )  # fmt: skip
    assert set(report["variants"]) == {"memory", "no_memory"}
    for name in ("policy_memory.pt", "policy_no_memory.pt", "bank_memory.pt", "train.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "train_loss.png").stat().st_size > 0
    policy, task, extra = load_policy(tmp_path / "policy_memory.pt")
    assert policy.config.use_memory and task == TaskConfig() and "train_seconds" in extra

    result = evaluate.main(["--episodes", "4", "--input-dir", str(tmp_path), "--quiet"])
    saved = json.loads((tmp_path / "evaluate.json").read_text())
    assert saved["results"].keys() == result["results"].keys()
    assert {"memory", "no_memory", "memory_bank_off", "oracle", "random"} <= set(saved["results"])
    for entry in saved["results"].values():
        assert entry["episodes"] == 4
        assert 0.0 <= entry["ci95_low"] <= entry["success_rate"] <= entry["ci95_high"] <= 1.0
    assert saved["results"]["oracle"]["success_rate"] == 1.0
    assert (tmp_path / "success.png").stat().st_size > 0


def test_missing_policy_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"policy_task\.train"):
        load_policy(tmp_path / "policy_memory.pt")
