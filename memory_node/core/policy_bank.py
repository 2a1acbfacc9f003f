"""Policy memory bank in the style of MemoryVLA's perceptual-cognitive memory bank.

Two streams are kept per episode:

* perceptual: each entry is ``(num_tokens, dim)`` float32 tokens of one control step;
* cognitive: each entry is one ``(dim,)`` float32 token of one control step.

At every step the current tokens (the queries) retrieve from their stream's bank with
``num_layers`` cross-attention layers (``num_heads`` heads each). Keys are the stored entries plus
a sinusoidal encoding of the entry's timestep, values are the stored entries. The retrieved memory
``m`` is fused with the current tokens ``x`` by a learned gate::

    g = sigmoid(Linear([x, m]));  out = g * x + (1 - g) * m

When ``write`` is set, the fused tokens are appended to the bank (``store_fused``; raw tokens
otherwise). A bank holds at most ``capacity`` (L) entries: once it would exceed L, either the most
similar adjacent pair (cosine similarity of the flattened entries) is replaced by its average,
features and timesteps alike (``consolidation="merge"``), or the oldest entry is dropped
(``consolidation="fifo"``). The two streams consolidate independently.

Per layer, the key/value projections of stored entries (keys including the timestep term
``W_k TE(t)``) are cached with the entries, so each step only projects the new entry. Projection
is linear, so averaging cached projections on a merge is exact, up to the timestep term, which
is corrected for the merged entry. Attention runs in torch's fused kernel
(``scaled_dot_product_attention``), which reads each head's cached keys and values as one
contiguous matrix in the node's banks. A step thus costs its matrix products and little else;
``bench/bench_policy_floor.py`` measures it against the time of those products alone.

The bank runs on ``device`` ('auto': CUDA when available; an unavailable device falls back to
the CPU with a warning), in ``dtype`` (bfloat16/float16 on CUDA only), with ``num_threads``
intra-op threads (0 = the cores available to the process).

With an empty bank (the first step of an episode) the fused tokens are the inputs unchanged.

:class:`PerceptualCognitiveMemory` is the batched ``torch.nn.Module`` (B episodes in lock-step,
differentiable, for training). :class:`PolicyMemory` runs one episode at a time with numpy in/out,
input validation and automatic episode resets, keeping its banks in place
(:class:`EpisodeStream`: preallocated slots, no per-step copies); the ``policy_memory`` node
calls it. Pure torch + numpy: no ROS imports here.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from memory_node.core.config import param
from memory_node.core.types import InvalidInput

_LOG = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "memory_node.policy_bank"
CHECKPOINT_VERSION = 1
#: Largest timestep accepted: every integer up to 2**24 is exact in float32.
MAX_TIMESTEP = 2**24
#: Config fields that change the shape or meaning of the weights; stored in checkpoints.
ARCHITECTURE_FIELDS = ("dim", "num_heads", "num_layers", "ffn_dim", "timestep_base")
#: Compute precisions selectable with ``PolicyBankConfig.dtype``.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, or made for another architecture."""


@dataclass
class PolicyBankConfig:
    """Configuration of the policy memory bank (one ROS parameter per field)."""

    dim: int = param(512, "Token width (channels) of both streams.", min_value=1, max_value=8192)
    capacity: int = param(
        16, "Bank capacity L: entries kept per stream.", min_value=1, max_value=4096
    )
    num_heads: int = param(
        4, "Attention heads of each retrieval layer; must divide dim.", min_value=1, max_value=64
    )
    num_layers: int = param(
        2, "Cross-attention retrieval layers per stream.", min_value=1, max_value=16
    )
    ffn_dim: int = param(
        1024,
        "Hidden width of each retrieval layer's feed-forward block.",
        min_value=1,
        max_value=65536,
    )
    max_tokens: int = param(
        1024,
        "Largest number of perceptual tokens accepted per step.",
        min_value=1,
        max_value=65536,
    )
    consolidation: str = param(
        "merge",
        "At capacity: 'merge' averages the most similar adjacent pair, 'fifo' drops the oldest.",
        choices=("merge", "fifo"),
    )
    max_abs_token: float = param(
        1e4,
        "Largest magnitude of a token value accepted by a step; larger (even finite) values are "
        "refused, since they would overflow the attention and poison the bank.",
        min_value=1.0,
        max_value=1e30,
    )
    store_fused: bool = param(
        True, "Write the gated (memory-fused) tokens to the bank; false writes the raw tokens."
    )
    timestep_base: float = param(
        10000.0, "Base period of the sinusoidal timestep encoding, in steps.", min_value=1.0
    )
    checkpoint_path: str = param("", "Weights file (save_checkpoint); empty = seeded random init.")
    device: str = param(
        "auto",
        "Torch device: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'. An "
        "unavailable device falls back to CPU with a warning.",
    )
    dtype: str = param(
        "float32",
        "Compute precision of the step on CUDA; the CPU always computes in float32 (a half "
        "precision asked for on the CPU falls back to float32 with a warning).",
        choices=("float32", "bfloat16", "float16"),
    )
    seed: int = param(0, "Seed of the random initialisation.", min_value=0, max_value=2**31 - 1)
    num_threads: int = param(
        0,
        "torch intra-op threads of the process running the bank; 0 = the CPU cores available to "
        "the process (its affinity mask).",
        min_value=0,
        max_value=256,
    )

    def validate(self) -> None:
        """Raise ValueError when fields are inconsistent (ranges are checked by the node)."""
        if self.dim < 1 or self.num_heads < 1 or self.dim % self.num_heads != 0:
            raise ValueError(
                f"dim={self.dim} must be a positive multiple of num_heads={self.num_heads}"
            )
        if self.capacity < 1 or self.num_layers < 1 or self.ffn_dim < 1 or self.max_tokens < 1:
            raise ValueError("capacity, num_layers, ffn_dim and max_tokens must be >= 1")
        if self.consolidation not in ("merge", "fifo"):
            raise ValueError(f"consolidation={self.consolidation!r} is not 'merge' or 'fifo'")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not one of {sorted(DTYPES)}")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(num_threads: int) -> int:
    """Intra-op threads to use: ``num_threads``, or the cores available when it is 0."""
    return num_threads if num_threads > 0 else available_cores()


def resolve_device(requested: str) -> torch.device:
    """Return the torch device for ``requested`` ('auto', 'cpu', 'cuda', 'cuda:N').

    'auto' picks CUDA when it is available. A device that is not available (or not a device)
    falls back to the CPU with a warning, never an error.
    """
    name = requested.strip().lower() or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        _LOG.warning("device %r is not a torch device name: using the CPU", requested)
        return torch.device("cpu")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            _LOG.warning("device %r is not available here: using the CPU", requested)
            return torch.device("cpu")
    elif device.type != "cpu":
        _LOG.warning("device %r is not supported by the policy bank: using the CPU", requested)
        return torch.device("cpu")
    return device


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    """Return the compute dtype: float32 on the CPU (half precision falls back, warned)."""
    dtype = DTYPES[requested]
    if dtype != torch.float32 and device.type != "cuda":
        _LOG.warning(
            "dtype %s is only used on CUDA: computing in float32 on %s", requested, device
        )
        return torch.float32
    return dtype


# --------------------------------------------------------------------------------------------
# Batched torch module
# --------------------------------------------------------------------------------------------


def timestep_encoding(timesteps: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """Sinusoidal encoding of (possibly fractional) timesteps.

    Args:
        timesteps: (...) float tensor, control steps.
        dim: encoding width.
        base: longest period is ``2 * pi * base`` steps.

    Returns:
        (..., dim) tensor, same dtype and device: ``[sin(t w), cos(t w)]`` truncated to dim.
    """
    half = (dim + 1) // 2
    exponent = torch.arange(half, device=timesteps.device, dtype=torch.float32) / max(half, 1)
    freqs = torch.exp(-math.log(base) * exponent)
    angles = timesteps.to(torch.float32).unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :dim].to(timesteps.dtype)


@dataclass
class StreamBank:
    """The bank of one stream for B episodes in lock-step (same number of entries each).

    Attributes:
        entries: (B, n, N, D) stored tokens; N = 1 for the cognitive stream.
        timesteps: (B, n) float32 timestep of each entry (averaged by merges).
        keys: per retrieval layer, (B, n, N, D) cached keys ``W_k (m + TE(t)) + b``; empty when
            projections are not cached.
        values: per retrieval layer, (B, n, N, D) cached value projections; empty likewise.
    """

    entries: Tensor
    timesteps: Tensor
    keys: list[Tensor]
    values: list[Tensor]

    @property
    def size(self) -> int:
        """Number of entries n."""
        return int(self.entries.shape[1])

    def tensors(self) -> list[Tensor]:
        """All per-entry tensors with layout (B, n, ...), in a fixed order."""
        return [self.entries, self.timesteps, *self.keys, *self.values]

    def replaced(self, tensors: Sequence[Tensor]) -> StreamBank:
        """Return a bank made of ``tensors``, given in the order of :meth:`tensors`."""
        layers = len(self.keys)
        return StreamBank(
            entries=tensors[0],
            timesteps=tensors[1],
            keys=list(tensors[2 : 2 + layers]),
            values=list(tensors[2 + layers : 2 + 2 * layers]),
        )


@dataclass
class BankState:
    """Memory of B episodes: one bank per stream."""

    perceptual: StreamBank
    cognitive: StreamBank

    @property
    def size(self) -> int:
        """Entries per stream (both streams always hold the same number)."""
        return self.perceptual.size


def adjacent_similarity(entries: Tensor) -> Tensor:
    """Cosine similarity of each adjacent pair of entries.

    Args:
        entries: (B, n, ...) tensor; each entry is flattened.

    Returns:
        (B, n - 1): similarity of entries i and i + 1.
    """
    flat = entries.flatten(2).float()
    return functional.cosine_similarity(flat[:, :-1], flat[:, 1:], dim=-1, eps=1e-8)


def merge_most_similar_adjacent(
    entries: Tensor, tensors: Sequence[Tensor]
) -> tuple[list[Tensor], Tensor]:
    """Replace the most similar adjacent pair of entries by its average, per episode.

    Similarity is computed on ``entries``; every tensor of ``tensors`` (each (B, n, ...), e.g. the
    entries themselves, their timesteps and cached projections) gets the same pair averaged.
    Ties go to the oldest pair. Vectorised over the batch: no Python loop.

    Args:
        entries: (B, n, ...) with n >= 2.
        tensors: tensors of layout (B, n, ...).

    Returns:
        The tensors with n - 1 entries, and (B,) int64 index i of the merged pair (i, i + 1).
    """
    batch, n = entries.shape[0], entries.shape[1]
    if n < 2:
        raise ValueError("merging needs at least two entries")
    pair = adjacent_similarity(entries).argmax(dim=1)  # (B,)
    slots = torch.arange(n - 1, device=entries.device).unsqueeze(0)  # (1, n - 1)
    # Output slot j takes entry j before the pair, j + 1 after it; slot `pair` is overwritten.
    source = slots + (slots >= pair.unsqueeze(1)).long()  # (B, n - 1)
    rows = torch.arange(batch, device=entries.device)
    merged = []
    for t in tensors:
        out = t[rows.unsqueeze(1), source]
        out[rows, pair] = 0.5 * (t[rows, pair] + t[rows, pair + 1])
        merged.append(out)
    return merged, pair


def split_heads(tokens: Tensor, num_heads: int) -> Tensor:
    """View (B, K, D) tokens as (B, heads, K, D / heads), without copying."""
    batch, length, dim = tokens.shape
    return tokens.reshape(batch, length, num_heads, dim // num_heads).transpose(1, 2)


class CrossAttentionLayer(nn.Module):
    """One retrieval layer: multi-head cross-attention then a feed-forward block (post-norm)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm_attention = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))
        self.norm_ffn = nn.LayerNorm(dim)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """Attend from ``x`` to projected memory (fused attention kernel).

        Args:
            x: (B, Q, D) queries (current tokens or the previous layer's output).
            keys: (B, heads, K, D / heads) already-projected keys, split into heads.
            values: (B, heads, K, D / heads) already-projected values, likewise.

        Returns:
            (B, Q, D).
        """
        batch, queries, dim = x.shape
        attended = functional.scaled_dot_product_attention(
            split_heads(self.query(x), self.num_heads), keys, values
        )
        attended = attended.transpose(1, 2).reshape(batch, queries, dim)
        x = self.norm_attention(x + self.out(attended))
        return self.norm_ffn(x + self.ffn(x))


class MemoryStream(nn.Module):
    """Retrieval layers and gate of one stream (perceptual or cognitive)."""

    def __init__(
        self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, timestep_base: float
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.timestep_base = timestep_base
        self.layers = nn.ModuleList(
            CrossAttentionLayer(dim, num_heads, ffn_dim) for _ in range(num_layers)
        )
        self.gate = nn.Linear(2 * dim, dim)

    @property
    def retrieval_layers(self) -> list[CrossAttentionLayer]:
        """The retrieval layers, typed."""
        return [cast(CrossAttentionLayer, layer) for layer in self.layers]

    def time_term(self, layer: CrossAttentionLayer, timesteps: Tensor) -> Tensor:
        """Key contribution ``W_k TE(t)`` of timesteps (...) for one layer; returns (..., D).

        The encoding is computed in float32 (timesteps up to 2**24), then cast to the weights'
        dtype.
        """
        encoding = timestep_encoding(timesteps.float(), self.dim, self.timestep_base)
        return functional.linear(encoding.to(layer.key.weight.dtype), layer.key.weight)

    def project(self, entries: Tensor, timesteps: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Per-layer keys ``W_k (m + TE(t)) + b`` and values ``W_v m + b``.

        Args:
            entries: (B, n, N, D) stored tokens m.
            timesteps: (B, n) their timesteps t.

        Returns:
            Per layer, (B, n, N, D) keys and (B, n, N, D) values.
        """
        keys = [
            layer.key(entries) + self.time_term(layer, timesteps).unsqueeze(2)
            for layer in self.retrieval_layers
        ]
        values = [layer.value(entries) for layer in self.retrieval_layers]
        return keys, values

    def retrieve(self, x: Tensor, bank: StreamBank) -> Tensor:
        """Memory read-out for queries x (B, Q, D) from a non-empty bank; returns (B, Q, D)."""
        if bank.keys:
            keys, values = bank.keys, bank.values
        else:
            keys, values = self.project(bank.entries, bank.timesteps)
        memory = [
            (
                split_heads(k.flatten(1, 2), self.num_heads),
                split_heads(v.flatten(1, 2), self.num_heads),
            )
            for k, v in zip(keys, values, strict=True)
        ]
        return self.attend(x, memory)

    def attend(self, x: Tensor, memory: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        """Run the retrieval layers from queries x (B, Q, D); returns (B, Q, D).

        Args:
            x: (B, Q, D) queries.
            memory: per layer, (B, heads, K, D / heads) keys and values.
        """
        h = x
        for layer, (keys, values) in zip(self.retrieval_layers, memory, strict=True):
            h = layer(h, keys, values)
        return h

    def fuse(self, x: Tensor, memory: Tensor) -> Tensor:
        """Gated fusion ``g * x + (1 - g) * memory`` with ``g = sigmoid(Linear([x, memory]))``."""
        g = torch.sigmoid(self.gate(torch.cat([x, memory], dim=-1)))
        return g * x + (1.0 - g) * memory


class PerceptualCognitiveMemory(nn.Module):
    """Batched perceptual-cognitive memory bank (torch module, B episodes in lock-step).

    Use :meth:`forward` once per control step; the bank state is passed in and returned (None is
    the empty bank), so the module is stateless and differentiable through time for training.
    """

    def __init__(self, config: PolicyBankConfig) -> None:
        super().__init__()
        config.validate()
        self.config = dataclasses.replace(config)
        args = (config.dim, config.num_heads, config.num_layers, config.ffn_dim)
        self.perceptual = MemoryStream(*args, timestep_base=config.timestep_base)
        self.cognitive = MemoryStream(*args, timestep_base=config.timestep_base)
        self.cache_projections = True

    def forward(
        self,
        perceptual: Tensor,
        cognitive: Tensor,
        timestep: Tensor,
        state: BankState | None,
        write: bool = True,
    ) -> tuple[Tensor, Tensor, BankState | None]:
        """Retrieve, fuse and (optionally) write one step of B episodes.

        Args:
            perceptual: (B, N, D) current perceptual tokens.
            cognitive: (B, D) current cognitive token.
            timestep: (B,) control step index of this step (any real dtype).
            state: the banks so far; None = empty (fused output then equals the input).
            write: append this step's tokens and consolidate at capacity.

        Returns:
            (B, N, D) fused perceptual tokens, (B, D) fused cognitive token, and the new state
            (the input state itself when ``write`` is False).
        """
        cognitive_tokens = cognitive.unsqueeze(1)
        fused_p, fused_c = self.read(perceptual, cognitive_tokens, state)
        if not write:
            return fused_p, fused_c.squeeze(1), state
        stored_p, stored_c = (
            (fused_p, fused_c) if self.config.store_fused else (perceptual, cognitive_tokens)
        )
        t = timestep.to(device=perceptual.device, dtype=torch.float32).reshape(-1, 1)
        new_state = BankState(
            perceptual=self._append(
                self.perceptual, None if state is None else state.perceptual, stored_p, t
            ),
            cognitive=self._append(
                self.cognitive, None if state is None else state.cognitive, stored_c, t
            ),
        )
        return fused_p, fused_c.squeeze(1), new_state

    def read(
        self, perceptual: Tensor, cognitive_tokens: Tensor, state: BankState | None
    ) -> tuple[Tensor, Tensor]:
        """Retrieve and fuse without writing.

        Args:
            perceptual: (B, N, D) current perceptual tokens.
            cognitive_tokens: (B, 1, D) current cognitive token.
            state: the banks; None = empty (the inputs are returned as they are).

        Returns:
            (B, N, D) and (B, 1, D) fused tokens.
        """
        if state is None:
            return perceptual, cognitive_tokens
        fused_p = self.perceptual.fuse(
            perceptual, self.perceptual.retrieve(perceptual, state.perceptual)
        )
        fused_c = self.cognitive.fuse(
            cognitive_tokens, self.cognitive.retrieve(cognitive_tokens, state.cognitive)
        )
        return fused_p, fused_c

    def _append(
        self, stream: MemoryStream, bank: StreamBank | None, tokens: Tensor, t: Tensor
    ) -> StreamBank:
        """Append tokens (B, N, D) at timesteps t (B, 1) to a bank, consolidating at capacity."""
        entry = tokens.unsqueeze(1)  # (B, 1, N, D)
        if self.cache_projections:
            keys, values = stream.project(entry, t)
        else:
            keys, values = [], []
        new = StreamBank(entry, t, keys, values)
        if bank is None:
            return new
        if bank.tensors()[0].shape[2:] != entry.shape[2:]:
            raise InvalidInput(
                f"tokens of shape {tuple(entry.shape[2:])} do not match the bank's "
                f"{tuple(bank.entries.shape[2:])}; reset the episode first"
            )
        pairs = zip(bank.tensors(), new.tensors(), strict=True)
        grown = bank.replaced([torch.cat([old, add], dim=1) for old, add in pairs])
        return self.consolidate(stream, grown)

    def consolidate(self, stream: MemoryStream, bank: StreamBank) -> StreamBank:
        """Shrink a stream's bank to at most ``capacity`` entries with the configured policy.

        Cached keys hold ``W_k TE(t)``, which is not linear in t: after averaging them, the
        merged entry's keys are corrected to the encoding of the averaged timestep.
        """
        while bank.size > self.config.capacity:
            if self.config.consolidation == "fifo":
                excess = bank.size - self.config.capacity
                bank = bank.replaced([t[:, excess:] for t in bank.tensors()])
                continue
            merged, pair = merge_most_similar_adjacent(bank.entries, bank.tensors())
            new = bank.replaced(merged)
            if new.keys:
                rows = torch.arange(pair.shape[0], device=pair.device)
                old_t = torch.stack([bank.timesteps[rows, pair], bank.timesteps[rows, pair + 1]])
                for layer, keys in zip(stream.retrieval_layers, new.keys, strict=True):
                    correction = stream.time_term(layer, new.timesteps[rows, pair]) - (
                        stream.time_term(layer, old_t).mean(dim=0)
                    )  # (B, D)
                    keys[rows, pair] += correction.unsqueeze(1)
            bank = new
        return bank


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def save_checkpoint(module: PerceptualCognitiveMemory, path: str | Path) -> None:
    """Write the module's weights and architecture atomically to ``path`` (torch format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": {name: getattr(module.config, name) for name in ARCHITECTURE_FIELDS},
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(module: PerceptualCognitiveMemory, path: str | Path) -> None:
    """Load weights saved by :func:`save_checkpoint` into ``module``.

    Raises:
        CheckpointError: the file is missing, unreadable, not a policy-bank checkpoint, or its
            architecture (dim, heads, layers, ffn_dim, timestep_base) differs from the module's.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"policy bank checkpoint {str(path)!r} does not exist")
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise CheckpointError(
            f"policy bank checkpoint {str(path)!r} is unreadable ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a policy bank checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {payload.get('version')!r}, "
            f"expected {CHECKPOINT_VERSION}"
        )
    architecture = payload.get("architecture", {})
    expected = {name: getattr(module.config, name) for name in ARCHITECTURE_FIELDS}
    if architecture != expected:
        raise CheckpointError(
            f"{str(path)!r} was saved for architecture {architecture}, the config asks for "
            f"{expected}"
        )
    try:
        module.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"{str(path)!r} has mismatching weights: {err}") from err


def build_module(
    config: PolicyBankConfig,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> PerceptualCognitiveMemory:
    """Make the module: checkpoint weights, or a seeded random init, in eval mode.

    Args:
        config: the bank's configuration.
        device: where to put it; None = ``resolve_device(config.device)``.
        dtype: parameter dtype (float32 unless a half precision runs on CUDA).

    Does not disturb the global torch random state.
    """
    config.validate()
    device = resolve_device(config.device) if device is None else device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        module = PerceptualCognitiveMemory(config)
    if config.checkpoint_path:
        load_checkpoint(module, config.checkpoint_path)
    return module.to(device=device, dtype=dtype).eval()


# --------------------------------------------------------------------------------------------
# Single-episode wrapper used by the node
# --------------------------------------------------------------------------------------------


class EpisodeStream:
    """One stream's bank of a single episode, updated in place (inference only).

    Same semantics as :meth:`PerceptualCognitiveMemory.forward` with B = 1 and cached
    projections, without its copies. Entries live in ``capacity + 1`` preallocated slots kept
    contiguous (``[0, size)``); ``order`` lists the slots oldest first (attention does not depend
    on slot order, consolidation does) and ``similarity[i]`` caches the cosine similarity of the
    entries at ``order[i]`` and ``order[i + 1]``.

    Each layer's keys and values are cached head-major, ``(heads, slots, N, D / heads)``: the
    first ``size`` slots of a head are one contiguous (size * N, D / heads) matrix, which is the
    layout the fused attention kernel reads fastest. Nothing stored is projected again: a step
    projects only its new entry, a merge averages the two cached projections (exact, projection
    being linear) and corrects the merged entry's timestep term once.
    """

    def __init__(
        self,
        stream: MemoryStream,
        config: PolicyBankConfig,
        num_tokens: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.stream = stream
        self.config = config
        slots, dim, heads = config.capacity + 1, config.dim, config.num_heads
        layers = len(stream.retrieval_layers)

        def cache() -> Tensor:
            return torch.zeros(heads, slots, num_tokens, dim // heads, device=device, dtype=dtype)

        self.entries = torch.zeros(slots, num_tokens, dim, device=device, dtype=dtype)
        self.keys = [cache() for _ in range(layers)]
        self.values = [cache() for _ in range(layers)]
        self.timesteps = torch.zeros(slots, device=device)
        self.order: list[int] = []
        self.similarity: list[float] = []

    @property
    def size(self) -> int:
        """Number of entries."""
        return len(self.order)

    @property
    def num_tokens(self) -> int:
        """Tokens per entry."""
        return int(self.entries.shape[1])

    def memory(self) -> list[tuple[Tensor, Tensor]]:
        """Per layer, (1, heads, size * N, D / heads) views of the cached keys and values."""
        n = self.size
        return [
            (k[:, :n].flatten(1, 2).unsqueeze(0), v[:, :n].flatten(1, 2).unsqueeze(0))
            for k, v in zip(self.keys, self.values, strict=True)
        ]

    def read(self, x: Tensor) -> Tensor:
        """Fused tokens for queries x (1, Q, D): x itself while the bank is empty."""
        if not self.order:
            return x
        return self.stream.fuse(x, self.stream.attend(x, self.memory()))

    def ordered(self) -> tuple[Tensor, Tensor]:
        """Return float32 copies of the entries (n, N, D) and timesteps (n,), oldest first."""
        index = torch.tensor(self.order, dtype=torch.long, device=self.entries.device)
        return self.entries[index].float(), self.timesteps[index].clone()

    def _cosine(self, a: int, b: int) -> float:
        return float(
            functional.cosine_similarity(
                self.entries[a].flatten().float(),
                self.entries[b].flatten().float(),
                dim=0,
                eps=1e-8,
            )
        )

    def _heads(self, projected: Tensor) -> Tensor:
        """(N, D) projection as (heads, N, D / heads), a view."""
        return projected.unflatten(-1, (self.config.num_heads, -1)).transpose(0, 1)

    def append(self, tokens: Tensor, timestep: float) -> None:
        """Store tokens (N, D) at ``timestep`` and consolidate down to capacity."""
        slot = self.size
        self.entries[slot] = tokens
        self.timesteps[slot] = timestep
        for layer, keys, values in zip(
            self.stream.retrieval_layers, self.keys, self.values, strict=True
        ):
            time_term = self.stream.time_term(layer, self.timesteps[slot])
            keys[:, slot] = self._heads(layer.key(tokens) + time_term)
            values[:, slot] = self._heads(layer.value(tokens))
        if self.order:
            self.similarity.append(self._cosine(self.order[-1], slot))
        self.order.append(slot)
        while self.size > self.config.capacity:
            if self.config.consolidation == "fifo":
                self.similarity.pop(0)
                self._free(self.order.pop(0))
            else:
                self._merge_most_similar()

    def _merge_most_similar(self) -> None:
        pair = max(range(len(self.similarity)), key=self.similarity.__getitem__)  # first max
        a, b = self.order[pair], self.order[pair + 1]
        old_t = self.timesteps[[a, b]]
        self.entries[a] = 0.5 * (self.entries[a] + self.entries[b])
        self.timesteps[a] = 0.5 * (self.timesteps[a] + self.timesteps[b])
        for layer, keys in zip(self.stream.retrieval_layers, self.keys, strict=True):
            correction = self.stream.time_term(layer, self.timesteps[a]) - (
                self.stream.time_term(layer, old_t).mean(dim=0)
            )
            keys[:, a] = 0.5 * (keys[:, a] + keys[:, b])
            keys[:, a] += correction.unflatten(-1, (self.config.num_heads, 1, -1))
        for values in self.values:
            values[:, a] = 0.5 * (values[:, a] + values[:, b])
        del self.order[pair + 1]
        del self.similarity[pair]
        if pair > 0:
            self.similarity[pair - 1] = self._cosine(self.order[pair - 1], a)
        if pair < len(self.similarity):
            self.similarity[pair] = self._cosine(a, self.order[pair + 1])
        self._free(b)

    def _free(self, slot: int) -> None:
        """Release a slot no longer in ``order`` by moving the last slot's entry into it."""
        last = self.size  # slots [0, size] are in use, slot ``slot`` is not
        if slot != last:
            self.entries[slot] = self.entries[last]
            self.timesteps[slot] = self.timesteps[last]
            for cache in self.keys + self.values:
                cache[:, slot] = cache[:, last]
            self.order[self.order.index(last)] = slot


@dataclass
class PolicyStepResult:
    """Answer to one :meth:`PolicyMemory.step`.

    Attributes:
        perceptual_fused: (num_tokens, dim) float32 memory-fused perceptual tokens.
        cognitive_fused: (dim,) float32 memory-fused cognitive token.
        bank_size: entries per stream after this step.
        episode_reset: True when this step's timestep went backwards and the bank was reset.
    """

    perceptual_fused: np.ndarray
    cognitive_fused: np.ndarray
    bank_size: int
    episode_reset: bool = False


def _numpy_copy(tensor: Tensor, source: np.ndarray) -> np.ndarray:
    """Return ``tensor`` as float32 numpy sharing memory with neither the bank nor ``source``.

    One copy at most: a fresh CPU float32 tensor is handed over as it is.
    """
    out = tensor.detach().to("cpu", torch.float32)
    array = out.numpy()
    if np.shares_memory(array, source) or out.untyped_storage().nbytes() != array.nbytes:
        return array.copy()  # the input passed through, or a view into a larger tensor
    return array


class PolicyMemory:
    """The memory bank of one running episode, numpy in and out.

    Not thread-safe: the caller serialises calls (the node holds one lock around it).
    """

    def __init__(self, config: PolicyBankConfig) -> None:
        self.config = dataclasses.replace(config)
        self.config.validate()
        #: torch intra-op threads set for this process (``num_threads``; 0 = cores available).
        self.num_threads = resolve_threads(self.config.num_threads)
        torch.set_num_threads(self.num_threads)
        #: Where the bank computes, and in which precision (float32 except half on CUDA).
        self.device = resolve_device(self.config.device)
        self.dtype = resolve_dtype(self.config.dtype, self.device)
        self.module = build_module(self.config, self.device, self.dtype)
        #: True: in-place single-episode banks (fast); False: the batched module's functional
        #: path with B = 1 (reference implementation, also used by the benchmark).
        self.in_place = True
        self._banks: tuple[EpisodeStream, EpisodeStream] | None = None
        self._state: BankState | None = None
        self._last_written_timestep: int | None = None

    @property
    def bank_size(self) -> int:
        """Entries per stream in the current episode."""
        if self._banks is not None:
            return self._banks[0].size
        return 0 if self._state is None else self._state.size

    @property
    def num_tokens(self) -> int | None:
        """Perceptual tokens per entry of the current episode; None while the bank is empty."""
        if self._banks is not None:
            return self._banks[0].num_tokens
        return None if self._state is None else int(self._state.perceptual.entries.shape[2])

    def reset(self) -> None:
        """Forget the current episode."""
        self._banks = None
        self._state = None
        self._last_written_timestep = None

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copy of the bank, oldest entry first.

        Returns:
            ``perceptual`` (n, N, D), ``perceptual_timesteps`` (n,), ``cognitive`` (n, D) and
            ``cognitive_timesteps`` (n,), float32; n = 0 arrays when the bank is empty.
        """
        dim = self.config.dim
        if self._banks is not None:
            (p, pt), (c, ct) = (bank.ordered() for bank in self._banks)
        elif self._state is not None:
            p, pt = self._state.perceptual.entries[0], self._state.perceptual.timesteps[0]
            c, ct = self._state.cognitive.entries[0], self._state.cognitive.timesteps[0]
        else:
            p, pt = torch.zeros(0, 0, dim), torch.zeros(0)
            c, ct = torch.zeros(0, 1, dim), torch.zeros(0)
        arrays = {
            "perceptual": p,
            "perceptual_timesteps": pt,
            "cognitive": c[:, 0],
            "cognitive_timesteps": ct,
        }
        return {k: v.detach().float().cpu().numpy().copy() for k, v in arrays.items()}

    def step(
        self, timestep: int, perceptual: np.ndarray, cognitive: np.ndarray, write: bool
    ) -> PolicyStepResult:
        """Fuse the current tokens with the episode's memory and optionally store them.

        Args:
            timestep: control step index, 0 <= timestep <= 2**24. Smaller than the last written
                timestep = a new episode: the bank is reset first (logged).
            perceptual: (num_tokens, dim) float array, finite.
            cognitive: (dim,) float array, finite.
            (Every value of both within ``max_abs_token`` in magnitude.)
            write: store this step (and consolidate at capacity).

        Returns:
            The fused tokens as new float32 arrays (never views of the inputs or of the bank).

        Raises:
            InvalidInput: bad shapes, dim != config.dim, num_tokens out of range or changed
                mid-episode, non-finite values, bad timestep. The bank is then unchanged.
        """
        new_episode = (
            self._last_written_timestep is not None and timestep < self._last_written_timestep
        )
        p, c = self._validate(timestep, perceptual, cognitive, new_episode)
        episode_reset = False
        if new_episode:
            _LOG.info(
                "timestep went back from %d to %d: resetting the policy memory bank",
                self._last_written_timestep,
                timestep,
            )
            self.reset()
            episode_reset = True
        with torch.inference_mode():
            x_p = torch.from_numpy(p).to(self.device, self.dtype).unsqueeze(0)  # (1, N, D)
            x_c = torch.from_numpy(c).to(self.device, self.dtype).reshape(1, 1, -1)  # (1, 1, D)
            if self.in_place:
                fused_p, fused_c = self._step_in_place(x_p, x_c, float(timestep), write)
            else:
                t = torch.tensor([float(timestep)], device=self.device)
                fused_p, fused_c, state = self.module(x_p, x_c[:, 0], t, self._state, write)
                if write:
                    self._state = state
            perceptual_fused = _numpy_copy(fused_p[0], source=p)
            cognitive_fused = _numpy_copy(fused_c.reshape(-1), source=c)
        if write:
            self._last_written_timestep = int(timestep)
        return PolicyStepResult(
            perceptual_fused=perceptual_fused,
            cognitive_fused=cognitive_fused,
            bank_size=self.bank_size,
            episode_reset=episode_reset,
        )

    def _step_in_place(
        self, x_p: Tensor, x_c: Tensor, timestep: float, write: bool
    ) -> tuple[Tensor, Tensor]:
        """Read (and write) the in-place banks; x_p (1, N, D), x_c (1, 1, D), same shapes out."""
        if self._banks is None:
            if not write:
                return x_p, x_c
            self._banks = (
                EpisodeStream(
                    self.module.perceptual, self.config, x_p.shape[1], self.device, self.dtype
                ),
                EpisodeStream(self.module.cognitive, self.config, 1, self.device, self.dtype),
            )
        perceptual, cognitive = self._banks
        fused_p, fused_c = perceptual.read(x_p), cognitive.read(x_c)
        if write:
            stored_p, stored_c = (fused_p, fused_c) if self.config.store_fused else (x_p, x_c)
            perceptual.append(stored_p[0], timestep)
            cognitive.append(stored_c[0], timestep)
        return fused_p, fused_c

    def _validate(
        self, timestep: int, perceptual: np.ndarray, cognitive: np.ndarray, new_episode: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Check one step's input; return C-contiguous float32 arrays (copies or views)."""
        dim = self.config.dim
        if isinstance(timestep, bool) or not isinstance(timestep, (int, np.integer)):
            raise InvalidInput(f"timestep must be an integer, got {type(timestep).__name__}")
        if not 0 <= int(timestep) <= MAX_TIMESTEP:
            raise InvalidInput(f"timestep {timestep} is outside [0, {MAX_TIMESTEP}]")
        for name, array, ndim in (("perceptual", perceptual, 2), ("cognitive", cognitive, 1)):
            if not isinstance(array, np.ndarray):
                raise InvalidInput(f"{name} must be a numpy array, got {type(array).__name__}")
            if array.ndim != ndim:
                raise InvalidInput(f"{name} must have {ndim} dimension(s), got {array.shape}")
            if not np.issubdtype(array.dtype, np.floating):
                raise InvalidInput(f"{name} must be floating point, got {array.dtype}")
        num_tokens = perceptual.shape[0]
        if perceptual.shape[1] != dim:
            raise InvalidInput(f"perceptual dim {perceptual.shape[1]} != configured dim {dim}")
        if cognitive.shape[0] != dim:
            raise InvalidInput(f"cognitive dim {cognitive.shape[0]} != configured dim {dim}")
        if not 1 <= num_tokens <= self.config.max_tokens:
            raise InvalidInput(
                f"num_tokens {num_tokens} is outside [1, {self.config.max_tokens}] (max_tokens)"
            )
        stored = self.num_tokens
        if stored is not None and not new_episode and num_tokens != stored:
            raise InvalidInput(
                f"num_tokens {num_tokens} differs from this episode's {stored}; "
                "reset the episode to change it"
            )
        with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes inf, refused below
            p = np.ascontiguousarray(perceptual, dtype=np.float32)
            c = np.ascontiguousarray(cognitive, dtype=np.float32)
        if not np.isfinite(p).all():
            raise InvalidInput("perceptual tokens contain NaN or inf (after casting to float32)")
        if not np.isfinite(c).all():
            raise InvalidInput("cognitive token contains NaN or inf (after casting to float32)")
        limit = self.config.max_abs_token
        for name, arr in (("perceptual", p), ("cognitive", c)):
            peak = float(np.abs(arr).max())
            if peak > limit:
                raise InvalidInput(
                    f"{name} tokens reach {peak:.3g} in magnitude, beyond max_abs_token = "
                    f"{limit:g}"
                )
        return p, c
