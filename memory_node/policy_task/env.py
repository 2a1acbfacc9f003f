"""Cue-delay-reach: a pybullet task that cannot be solved from the current frame alone.

A row of grey pads lies on a table; a blue puck (the "gripper") sits in front of them. Each episode
has three phases:

1. cue (``cue_steps``): a red cube stands on the target pad and a green distractor cube on
   another pad; the puck cannot move;
2. delay (``delay_steps``): both cubes are gone, the puck still cannot move;
3. act (``act_steps``): a yellow lamp is lit; each action moves the puck one ``move_m`` step
   left, right, or not at all.

The episode succeeds when the puck ends in front of the pad that held the red cube. During the
act phase no frame shows which pad that was, so a policy without memory is at chance
(1 / num_pads). Frames are (image_px, image_px, 3) uint8 RGB rendered with TinyRenderer in a
``p.DIRECT`` client (no GUI, no GPU).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

LEFT, STAY, RIGHT = 0, 1, 2
NUM_ACTIONS = 3
_HIDDEN = (0.0, 0.0, -5.0)  # below the table and out of view


class Phase(enum.Enum):
    """Phase of the episode at the current step."""

    CUE = "cue"
    DELAY = "delay"
    ACT = "act"


@dataclass
class TaskConfig:
    """Layout and timing of the cue-delay-reach task.

    Attributes:
        image_px: side of the square RGB observation, pixels.
        cue_steps: steps during which the cue is visible.
        delay_steps: steps with neither cue nor lamp (the puck is frozen).
        act_steps: steps during which the puck moves; must allow crossing the whole row.
        num_pads: candidate targets.
        pad_spacing_m: distance between pad centres, metres.
        move_m: puck displacement per LEFT/RIGHT action, metres; divides pad_spacing_m.
        distractor: also show a green cube on a non-target pad during the cue.
        jitter_m: uniform jitter of the cue cubes' positions, metres.
    """

    image_px: int = 32
    cue_steps: int = 2
    delay_steps: int = 4
    act_steps: int = 6
    num_pads: int = 3
    pad_spacing_m: float = 0.2
    move_m: float = 0.1
    distractor: bool = True
    jitter_m: float = 0.01

    @property
    def episode_steps(self) -> int:
        """Observations (and actions) per episode."""
        return self.cue_steps + self.delay_steps + self.act_steps

    @property
    def moves_per_pad(self) -> int:
        """Actions needed to go from one pad to the next."""
        return round(self.pad_spacing_m / self.move_m)

    def validate(self) -> None:
        """Raise ValueError when the task cannot be solved as configured."""
        if self.num_pads < 2 or self.cue_steps < 1 or self.act_steps < 1 or self.image_px < 8:
            raise ValueError("need num_pads >= 2, cue_steps >= 1, act_steps >= 1, image_px >= 8")
        if abs(self.moves_per_pad * self.move_m - self.pad_spacing_m) > 1e-9:
            raise ValueError("move_m must divide pad_spacing_m")
        if self.act_steps < (self.num_pads - 1) * self.moves_per_pad:
            raise ValueError("act_steps too short to cross the row of pads")


class CueReachTask:
    """One pybullet client rendering the task; ``reset`` then ``step`` until ``done``."""

    def __init__(self, config: TaskConfig | None = None) -> None:
        self.config = config or TaskConfig()
        self.config.validate()
        cfg = self.config
        self._client = BulletClient(connection_mode=pybullet.DIRECT)
        half_row = 0.5 * (cfg.num_pads - 1) * cfg.pad_spacing_m
        self.pad_x = np.linspace(-half_row, half_row, cfg.num_pads)
        self._pad_y = 0.05
        self._box((half_row + 0.3, 0.35, 0.005), (0.55, 0.45, 0.35, 1.0), (0.0, 0.0, -0.005))
        for x in self.pad_x:
            self._box((0.05, 0.05, 0.004), (0.6, 0.6, 0.6, 1.0), (x, self._pad_y, 0.004))
        self._cue = self._box((0.03, 0.03, 0.03), (0.9, 0.1, 0.1, 1.0), _HIDDEN)
        self._distractor = self._box((0.03, 0.03, 0.03), (0.1, 0.8, 0.1, 1.0), _HIDDEN)
        self._lamp = self._box((0.03, 0.03, 0.01), (1.0, 0.9, 0.1, 1.0), _HIDDEN)
        self._lamp_xyz = (half_row + 0.1, 0.22, 0.01)
        sphere = self._client.createVisualShape(
            pybullet.GEOM_SPHERE, radius=0.035, rgbaColor=(0.1, 0.2, 0.9, 1.0)
        )
        self._puck = self._client.createMultiBody(baseMass=0, baseVisualShapeIndex=sphere)
        self._view = self._client.computeViewMatrix(
            cameraEyePosition=(0.0, -0.32, 0.42),
            cameraTargetPosition=(0.0, 0.04, 0.0),
            cameraUpVector=(0.0, 0.0, 1.0),
        )
        self._projection = self._client.computeProjectionMatrixFOV(
            fov=60.0, aspect=1.0, nearVal=0.05, farVal=3.0
        )
        self.t = 0
        self.target = 0
        self.agent_x = 0.0

    def _box(
        self,
        half_extents: tuple[float, float, float],
        rgba: tuple[float, float, float, float],
        position: tuple[float, float, float],
    ) -> int:
        shape = self._client.createVisualShape(
            pybullet.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba
        )
        return int(
            self._client.createMultiBody(
                baseMass=0, baseVisualShapeIndex=shape, basePosition=position
            )
        )

    def _place(self, body: int, position: tuple[float, float, float]) -> None:
        self._client.resetBasePositionAndOrientation(body, position, (0.0, 0.0, 0.0, 1.0))

    @property
    def phase(self) -> Phase:
        """Phase of the current step."""
        if self.t < self.config.cue_steps:
            return Phase.CUE
        if self.t < self.config.cue_steps + self.config.delay_steps:
            return Phase.DELAY
        return Phase.ACT

    @property
    def done(self) -> bool:
        """True once every step of the episode has been acted."""
        return self.t >= self.config.episode_steps

    @property
    def success(self) -> bool:
        """True when the puck is in front of the target pad."""
        return abs(self.agent_x - self.pad_x[self.target]) < 0.5 * self.config.move_m

    def reset(self, seed: int) -> np.ndarray:
        """Start the episode ``seed`` (target, distractor, start and jitter); return frame 0."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        self.t = 0
        self.target = int(rng.integers(cfg.num_pads))
        starts = np.arange(self.pad_x[0], self.pad_x[-1] + 1e-9, cfg.move_m)
        self.agent_x = float(rng.choice(starts))
        jitter = rng.uniform(-cfg.jitter_m, cfg.jitter_m, size=4)
        self._cue_xyz = (
            float(self.pad_x[self.target] + jitter[0]),
            self._pad_y + float(jitter[1]),
            0.038,
        )
        others = [i for i in range(cfg.num_pads) if i != self.target]
        other = int(rng.choice(others))
        self._distractor_xyz = (
            float(self.pad_x[other] + jitter[2]),
            self._pad_y + float(jitter[3]),
            0.038,
        )
        return self._observe()

    def step(self, action: int) -> np.ndarray:
        """Apply one action (LEFT, STAY, RIGHT; ignored before the act phase).

        Returns:
            The next frame (the last frame again once ``done``).
        """
        if self.done:
            raise RuntimeError("episode is over; call reset()")
        if action not in (LEFT, STAY, RIGHT):
            raise ValueError(f"action must be 0, 1 or 2, got {action!r}")
        if self.phase is Phase.ACT and action != STAY:
            delta = self.config.move_m if action == RIGHT else -self.config.move_m
            self.agent_x = float(np.clip(self.agent_x + delta, self.pad_x[0], self.pad_x[-1]))
        self.t += 1
        return self._observe() if not self.done else self._render()

    def oracle_action(self) -> int:
        """Scripted demonstrator: knows the target; stays until the act phase."""
        if self.phase is not Phase.ACT:
            return STAY
        error = self.pad_x[self.target] - self.agent_x
        if abs(error) < 0.5 * self.config.move_m:
            return STAY
        return RIGHT if error > 0 else LEFT

    def _observe(self) -> np.ndarray:
        phase = self.phase
        self._place(self._cue, self._cue_xyz if phase is Phase.CUE else _HIDDEN)
        show_distractor = phase is Phase.CUE and self.config.distractor
        self._place(self._distractor, self._distractor_xyz if show_distractor else _HIDDEN)
        self._place(self._lamp, self._lamp_xyz if phase is Phase.ACT else _HIDDEN)
        self._place(self._puck, (self.agent_x, -0.1, 0.035))
        return self._render()

    def _render(self) -> np.ndarray:
        size = self.config.image_px
        _, _, rgba, _, _ = self._client.getCameraImage(
            size,
            size,
            viewMatrix=self._view,
            projectionMatrix=self._projection,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect the pybullet client."""
        self._client.disconnect()

    def __enter__(self) -> CueReachTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
