"""Demonstrations, closed-loop rollouts, controllers and success statistics for the cue task."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from memory_node.core.policy_bank import BankState
from memory_node.policy_task.env import NUM_ACTIONS, CueReachTask, Phase, TaskConfig
from memory_node.policy_task.policy import TaskPolicy


@dataclass
class Demonstrations:
    """Scripted episodes for behaviour cloning.

    Attributes:
        frames: (E, T, H, W, 3) uint8 observations.
        actions: (E, T) int64 oracle action at each observation (the label).
        targets: (E,) int64 target pad index.
    """

    frames: np.ndarray
    actions: np.ndarray
    targets: np.ndarray


def collect_demonstrations(
    config: TaskConfig,
    episodes: int,
    seed: int,
    action_noise: float,
    progress: bool = False,
) -> Demonstrations:
    """Roll out the scripted oracle, labelling every frame with the oracle's action.

    With probability ``action_noise`` per act-phase step a random action is executed instead of
    the oracle's (the label stays the oracle's), so the data covers recovery from mistakes.
    Episode ``i`` uses task seed ``seed + i``.
    """
    rng = np.random.default_rng(seed)
    steps = config.episode_steps
    frames = np.zeros((episodes, steps, config.image_px, config.image_px, 3), np.uint8)
    actions = np.zeros((episodes, steps), np.int64)
    targets = np.zeros(episodes, np.int64)
    with CueReachTask(config) as env:
        for e in tqdm(range(episodes), desc="demonstrations", disable=not progress):
            frame = env.reset(seed + e)
            targets[e] = env.target
            for t in range(steps):
                frames[e, t] = frame
                actions[e, t] = env.oracle_action()
                executed = int(actions[e, t])
                if env.phase is Phase.ACT and rng.random() < action_noise:
                    executed = int(rng.integers(NUM_ACTIONS))
                frame = env.step(executed)
    return Demonstrations(frames, actions, targets)


class Controller(Protocol):
    """Chooses actions in closed loop; ``reset`` at each episode start."""

    def reset(self) -> None:
        """Forget the previous episode."""

    def act(self, frame: np.ndarray, timestep: int, env: CueReachTask) -> int:
        """Choose the action for this frame (``env`` only serves privileged references)."""
        ...


class OracleController:
    """The scripted demonstrator (privileged: reads the target from the simulator)."""

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, frame: np.ndarray, timestep: int, env: CueReachTask) -> int:
        """Move towards the target pad during the act phase."""
        return env.oracle_action()


class RandomController:
    """Uniformly random actions (seeded)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, frame: np.ndarray, timestep: int, env: CueReachTask) -> int:
        """Draw a random action."""
        return int(self._rng.integers(NUM_ACTIONS))


class NetworkController:
    """A trained :class:`TaskPolicy`, greedy, one bank per episode."""

    def __init__(self, policy: TaskPolicy) -> None:
        self.policy = policy.eval()
        self._state: BankState | None = None

    def reset(self) -> None:
        """Empty the bank."""
        self._state = None

    def act(self, frame: np.ndarray, timestep: int, env: CueReachTask) -> int:
        """Argmax action of the policy given this frame and its memory."""
        with torch.inference_mode():
            frames = torch.from_numpy(frame).unsqueeze(0).to(self.policy.device)
            logits, self._state = self.policy.step(frames, timestep, self._state)
        return int(logits[0].argmax())


def with_bank(policy: TaskPolicy, use_memory: bool, consolidation: str) -> TaskPolicy:
    """Copy the policy with the bank switched on/off or another consolidation policy."""
    config = dataclasses.replace(policy.config, use_memory=use_memory, consolidation=consolidation)
    variant = TaskPolicy(config)
    variant.load_state_dict(policy.state_dict())
    return variant.to(policy.device).eval()


def run_episodes(
    config: TaskConfig,
    controller: Controller,
    seeds: Iterable[int],
    progress: str | None = None,
) -> list[bool]:
    """Closed-loop episodes; returns success per seed."""
    seeds = list(seeds)
    outcomes = []
    with CueReachTask(config) as env:
        for seed in tqdm(seeds, desc=progress or "", disable=progress is None):
            frame = env.reset(seed)
            controller.reset()
            while not env.done:
                frame = env.step(controller.act(frame, env.t, env))
            outcomes.append(env.success)
    return outcomes


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (default 95 %)."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def summarize(outcomes: Sequence[bool]) -> dict[str, float | int]:
    """Success rate with its 95 % Wilson interval."""
    successes, trials = int(sum(outcomes)), len(outcomes)
    low, high = wilson_interval(successes, trials)
    return {
        "episodes": trials,
        "successes": successes,
        "success_rate": successes / trials,
        "ci95_low": low,
        "ci95_high": high,
    }
