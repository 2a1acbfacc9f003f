"""A small memory-conditioned policy: CNN tokens -> policy memory bank -> action logits.

Per frame, a three-layer CNN turns the (H, W, 3) image into an (H/8 * W/8, dim) grid of
perceptual tokens (plus a learned position embedding) and a pooled cognitive token. The tokens go
through :class:`~memory_node.core.policy_bank.PerceptualCognitiveMemory` (or straight through when
the bank is disabled) and a two-layer head maps ``[cognitive_fused, mean(perceptual_fused)]`` to
logits over LEFT/STAY/RIGHT.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from memory_node.core.policy_bank import BankState, PerceptualCognitiveMemory, PolicyBankConfig
from memory_node.policy_task.env import NUM_ACTIONS, TaskConfig

POLICY_FORMAT = "memory_node.policy_task.policy"


@dataclass
class PolicyConfig:
    """Shape of the task policy.

    Attributes:
        dim: token width.
        use_memory: False = the bank is bypassed (fused tokens equal the current ones).
        capacity: bank capacity L (small on purpose so that consolidation happens).
        num_heads, num_layers, ffn_dim: retrieval layers of the bank.
        consolidation: "merge" or "fifo".
        image_px: side of the input frames, pixels (a multiple of 8).
    """

    dim: int = 64
    use_memory: bool = True
    capacity: int = 4
    num_heads: int = 4
    num_layers: int = 2
    ffn_dim: int = 128
    consolidation: str = "merge"
    image_px: int = 32

    def bank_config(self) -> PolicyBankConfig:
        """Return the bank configuration this policy uses."""
        return dataclasses.replace(
            PolicyBankConfig(),
            dim=self.dim,
            capacity=self.capacity,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            ffn_dim=self.ffn_dim,
            consolidation=self.consolidation,
            max_tokens=(self.image_px // 8) ** 2,
        )


class TaskPolicy(nn.Module):
    """Frame encoder, memory bank and action head; episodes run step by step."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        if config.image_px % 8:
            raise ValueError("image_px must be a multiple of 8")
        self.config = config
        dim = config.dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, dim, 3, stride=2, padding=1),
        )
        num_tokens = (config.image_px // 8) ** 2
        self.position = nn.Parameter(0.02 * torch.randn(num_tokens, dim))
        self.to_cognitive = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.memory = PerceptualCognitiveMemory(config.bank_config())
        self.head = nn.Sequential(nn.Linear(2 * dim, 128), nn.ReLU(), nn.Linear(128, NUM_ACTIONS))

    @property
    def device(self) -> torch.device:
        """Where the policy's weights are."""
        return self.position.device

    def encode(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Encode frames (..., H, W, 3) uint8 into (..., N, dim) and (..., dim) tokens."""
        lead = frames.shape[:-3]
        x = frames.reshape(-1, *frames.shape[-3:]).permute(0, 3, 1, 2).float() / 255.0
        grid = self.encoder(x)  # (M, dim, H/8, W/8)
        tokens = grid.flatten(2).transpose(1, 2) + self.position  # (M, N, dim)
        cognitive = self.to_cognitive(tokens.mean(dim=1))
        return tokens.reshape(*lead, *tokens.shape[1:]), cognitive.reshape(*lead, -1)

    def step(
        self, frames: Tensor, timestep: int, state: BankState | None
    ) -> tuple[Tensor, BankState | None]:
        """One control step of B episodes.

        Args:
            frames: (B, H, W, 3) uint8 current frames.
            timestep: step index within the episodes.
            state: bank state so far (None at the start of an episode).

        Returns:
            (B, NUM_ACTIONS) logits and the new bank state.
        """
        perceptual, cognitive = self.encode(frames)
        return self._act(perceptual, cognitive, timestep, state)

    def _act(
        self, perceptual: Tensor, cognitive: Tensor, timestep: int, state: BankState | None
    ) -> tuple[Tensor, BankState | None]:
        if self.config.use_memory:
            t = torch.full((perceptual.shape[0],), float(timestep), device=perceptual.device)
            perceptual, cognitive, state = self.memory(perceptual, cognitive, t, state, True)
        features = torch.cat([cognitive, perceptual.mean(dim=1)], dim=-1)
        return self.head(features), state

    def forward(self, episodes: Tensor) -> Tensor:
        """Logits of whole episodes (teacher forcing).

        Args:
            episodes: (B, T, H, W, 3) uint8 frames.

        Returns:
            (B, T, NUM_ACTIONS) logits; step t only sees frames 0..t.
        """
        perceptual, cognitive = self.encode(episodes)  # one batched CNN pass
        state: BankState | None = None
        logits = []
        for t in range(episodes.shape[1]):
            step_logits, state = self._act(perceptual[:, t], cognitive[:, t], t, state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


def save_policy(policy: TaskPolicy, task: TaskConfig, path: Path, extra: dict[str, Any]) -> None:
    """Save weights, policy and task configs, and ``extra`` (JSON-like) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": POLICY_FORMAT,
            "policy_config": dataclasses.asdict(policy.config),
            "task_config": dataclasses.asdict(task),
            "state_dict": policy.state_dict(),
            "extra": extra,
        },
        path,
    )


def load_policy(
    path: Path, device: torch.device | str = "cpu"
) -> tuple[TaskPolicy, TaskConfig, dict[str, Any]]:
    """Load a policy saved by :func:`save_policy` onto ``device`` (in eval mode).

    Raises:
        FileNotFoundError: no file at ``path`` (train first).
        ValueError: the file is not a task-policy checkpoint.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"no policy at {path}; run `python -m memory_node.policy_task.train` first"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise ValueError(f"{path} is not a task-policy checkpoint")
    policy = TaskPolicy(PolicyConfig(**payload["policy_config"]))
    policy.load_state_dict(payload["state_dict"])
    return policy.to(device).eval(), TaskConfig(**payload["task_config"]), dict(payload["extra"])
