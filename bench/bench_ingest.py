"""Ingest throughput of the scene memory, side by side with a naive baseline, in one run.

Frames (640x480, given instance masks) come from the built-in pybullet simulator (``memory_sim``:
a procedural house, a tour of every room with 8 headings per room, sensor noise on). They are
rendered first; only ``SceneMemory.ingest`` is timed. Configurations:

* ``index / off``: spatial hash, features off (the default mapping path);
* ``naive / off``: the naive baseline, the same code with the spatial hash disabled: every
  detection is scored against every object and every object gets a visibility check;
* ``index / minilm``: MiniLM label-text features (the default feature mode);
* ``index / clip-b32``: open_clip ViT-B-32 crops (random weights: same cost as real ones).

Each runs on the house alone and again with 10,000 extra objects loaded into memory (far from
the house), where the naive baseline's per-frame cost grows with the map and the index's does
not. Frames are ingested by every configuration in turn (interleaved), so load changes on the
shared machine hit all rows alike. Repeating the tour (a static scene) shows that memory stays
bounded and counts false MOVED/DISAPPEARED events. A summary of map quality against the
simulator's ground truth is printed too.

    .venv/bin/python bench/bench_ingest.py [--passes 2] [--quick]

Writes ``output/bench/ingest.json`` and prints a table. Timings on a shared 2-core machine are
noisy: look at the ratios of rows measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "sim")]

from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig  # noqa: E402
from memory_node.core.types import Frame, MemorySnapshot, SceneObject  # noqa: E402


def render_tour(seed: int, quick: bool) -> tuple[list[Frame], list[Any], list[Any], list[str]]:
    """Render a tour of the house; returns frames, per-frame truth, object truth, vocabulary."""
    from memory_sim.camera import look_pose
    from memory_sim.procedural import ProceduralConfig, generate_house
    from memory_sim.simulator import SimConfig, Simulator

    scene = generate_house(ProceduralConfig(seed=seed))
    frames, truths = [], []
    with Simulator(scene, SimConfig(seed=seed), keep_frame_truth=False) as sim:
        rooms = scene.rooms[:2] if quick else scene.rooms
        for room in rooms:
            cx = 0.5 * (room.min_xy[0] + room.max_xy[0])
            cy = 0.5 * (room.min_xy[1] + room.max_xy[1])
            for k in range(8):
                yaw = 2 * math.pi * k / 8
                step = sim.step(look_pose(np.array([cx, cy, 1.3]), yaw=yaw, pitch=-0.45))
                frames.append(step.frame)
                truths.append(step.truth)
        objects = sim.objects()
        vocabulary = list(sim.vocabulary())
    return frames, truths, objects, vocabulary


def far_objects(n: int, seed: int = 0) -> MemorySnapshot:
    """``n`` small labelled objects on a grid 100 m away from the house (a big remembered map)."""
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(n))
    objs = []
    g = np.arange(-0.0875, 0.09, 0.025)  # voxel centres of a 0.2 m cube, one point per voxel
    cube = np.stack(np.meshgrid(g, g, g), axis=-1).reshape(-1, 3).astype(np.float32)
    for i in range(n):
        c = np.array([100.0 + 1.0 * (i % side), 100.0 + 1.0 * (i // side), 0.5])
        obj = SceneObject(
            id=f"obj_{i:06d}",
            label=f"thing{rng.integers(0, 50)}",
            label_confidence=1.0,
            label_votes={},
            center=c,
            size=np.full(3, 0.2),
            points=cube + c.astype(np.float32),
            first_seen=0.0,
            last_seen=0.0,
            observations=5,
        )
        obj.label_votes = {obj.label: 5.0}
        objs.append(obj)
    return MemorySnapshot(objects=objs, next_object_index=n)


def restamp(frames: list[Frame], start: float) -> list[Frame]:
    """Shallow copies of ``frames`` with stamps ``start``, ``start + 0.1``, ..."""
    return [replace(f, stamp=start + 0.1 * i) for i, f in enumerate(frames)]


def run(
    plan: list[tuple[str, SceneMemoryConfig, MemorySnapshot | None]],
    frames: list[Frame],
    passes: int,
    vocabulary: list[str],
) -> list[dict[str, Any]]:
    """Ingest the tour ``passes`` times into one memory per configuration, interleaved.

    Every frame is ingested by each configuration in turn, so a change of machine load affects
    all rows alike; returns throughput and memory figures per configuration.
    """
    mems = []
    for _, cfg, preload in plan:
        mem = SceneMemory(cfg)
        if preload is not None:
            mem.restore(copy.deepcopy(preload))
        # Load the model and the vocabulary's label embeddings before timing, as a node does at
        # start-up.
        mem.warm_up(vocabulary)
        mems.append(mem)
    n = len(plan)
    per_frame: list[list[float]] = [[] for _ in range(n)]
    t_pass = [[0.0] * passes for _ in range(n)]
    voxels_after_pass: list[list[int]] = [[] for _ in range(n)]
    events_per_pass: list[list[dict[str, int]]] = [[] for _ in range(n)]
    stamp = 1000.0
    for p in range(passes):
        for k, f in enumerate(restamp(frames, stamp)):
            for i in range(n):
                t0 = time.perf_counter()
                mems[i].ingest(f)
                dt = time.perf_counter() - t0
                per_frame[i].append(dt)
                t_pass[i][p] += dt
            if k % 10 == 9:
                print(f"  pass {p + 1}: {k + 1}/{len(frames)} frames", flush=True)
        stamp += 0.1 * len(frames) + 1.0
        for i in range(n):
            voxels_after_pass[i].append(int(mems[i].stats()["voxels"]))
            kinds: dict[str, int] = {}
            for e in mems[i].drain_events():
                kinds[e.kind.name] = kinds.get(e.kind.name, 0) + 1
            events_per_pass[i].append(kinds)
    rows = []
    for i, (name, _, _) in enumerate(plan):
        ms = np.array(per_frame[i]) * 1000.0
        stats = mems[i].stats()
        rows.append(
            {
                "name": name,
                "frames": len(ms),
                "fps": round(len(ms) / (ms.sum() / 1000.0), 2),
                "fps_per_pass": [round(len(frames) / t, 2) for t in t_pass[i]],
                # The scene is static: after the first pass any MOVED/DISAPPEARED is false.
                "events_per_pass": events_per_pass[i],
                "ms_p50": round(float(np.percentile(ms, 50)), 2),
                "ms_p95": round(float(np.percentile(ms, 95)), 2),
                "objects": int(stats["objects"]),
                "crops_encoded_per_frame": round(int(stats["crops_encoded"]) / len(ms), 2),
                "voxels_after_each_pass": voxels_after_pass[i],
                "patches": int(stats["patches"]),
                "memory": mems[i],
            }
        )
    return rows


def quality(mem: SceneMemory, truths: list[Any], objects: list[Any], min_frames: int) -> dict:
    """Compare the map with the simulator's truth (``memory_node.evaluation.match_objects``)."""
    from memory_node.evaluation import MemObject, match_objects

    seen: dict[int, int] = {}
    for t in truths:
        for iid in t.visible:
            seen[iid] = seen.get(iid, 0) + 1
    gt = [replace(o, frames_seen=seen.get(o.instance_id, 0)) for o in objects]
    memory = [
        MemObject(id=o.id, label=o.label, center=o.center, size=o.size, present=o.present)
        for o in mem.objects.values()
    ]
    m = match_objects(gt, memory, min_frames_seen=min_frames)
    return {
        f"gt_objects_seen_in_{min_frames}_frames": m.gt_considered,
        "found": m.found,
        "recall": round(m.recall, 3),
        "remembered": m.remembered,
        "duplicates": m.duplicates,
        "duplicate_rate": round(m.duplicate_rate, 3),
        "unmatched_memory": m.unmatched_memory,
        "median_centroid_error_m": round(m.median_centroid_error_m, 3),
        "missed": m.missed,
    }


def main() -> int:
    """Run the benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", type=int, default=2, help="tours ingested per configuration")
    ap.add_argument("--extra-objects", type=int, default=10000, help="objects preloaded far away")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="two rooms only (smoke test)")
    ap.add_argument("--no-clip", action="store_true", help="skip the CLIP configurations")
    ap.add_argument(
        "--only", default="", help="run only configurations whose name contains this text"
    )
    ap.add_argument(
        "--out", default="ingest.json", help="file name under output/bench/ for the results"
    )
    ap.add_argument(
        "--no-naive-10k", action="store_true", help="skip the (slow) naive baseline on 10k objects"
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    frames, truths, objects, vocabulary = render_tour(args.seed, args.quick)
    render_s = time.perf_counter() - t0
    h, w = frames[0].depth.shape
    print(f"rendered {len(frames)} frames {w}x{h} in {render_s:.1f} s (not timed below)")
    preload = far_objects(args.extra_objects)

    def config(mode: str, index: bool) -> SceneMemoryConfig:
        cfg = SceneMemoryConfig()
        cfg.features.mode = mode
        cfg.mapping.spatial_index = index
        return cfg

    plan = [
        ("index / off", config("off", True), None),
        ("naive / off", config("off", False), None),
        ("index / off + 10k objects", config("off", True), preload),
        ("index / minilm", config("label_text", True), None),
    ]
    if not args.no_naive_10k:
        plan.insert(3, ("naive / off + 10k objects", config("off", False), preload))
    if not args.no_clip:
        plan.append(("index / clip-b32 (random)", config("clip", True), None))
        plan.append(("naive / clip-b32 (random)", config("clip", False), None))
    if args.only:
        plan = [p for p in plan if args.only in p[0]]
    rows = run(plan, frames, args.passes, vocabulary)
    for (name, _, pre), r in zip(plan, rows, strict=True):
        mem = r.pop("memory")
        if pre is None:
            r["quality"] = quality(mem, truths, objects, min_frames=3)
        print(
            f"{name:30s} {r['fps']:8.1f} frames/s (per pass {r['fps_per_pass']})  "
            f"p50 {r['ms_p50']:7.1f} ms  p95 {r['ms_p95']:7.1f} ms  objects {r['objects']:6d}  "
            f"crops/frame {r['crops_encoded_per_frame']}  "
            f"voxels/pass {r['voxels_after_each_pass']}  events/pass {r['events_per_pass']}"
        )

    print()
    print(
        "| configuration | frames/s | frames/s per pass | p50 ms | p95 ms | objects "
        "| voxels after each pass |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['fps']:.1f} | {r['fps_per_pass']} | {r['ms_p50']:.1f} | "
            f"{r['ms_p95']:.1f} | {r['objects']} | {r['voxels_after_each_pass']} |"
        )
    q = rows[0].get("quality")
    if q:
        print(f"\nmap quality ({rows[0]['name']}) vs simulator truth:", q)
    out = {
        "frames": len(frames),
        "resolution": [w, h],
        "passes": args.passes,
        "extra_objects": args.extra_objects,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "rows": rows,
    }
    os.makedirs(os.path.join(REPO, "output", "bench"), exist_ok=True)
    path = os.path.join(REPO, "output", "bench", args.out)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
