"""Geometric segmenter speed on the real ICL-NUIM frames, against the previous implementation.

Loops the five ICL-NUIM living-room frames (640x480, no masks) through (a) the geometric
segmenter alone and (b) a whole ``SceneMemory.ingest`` with ``segmentation.mode=geometric``
(features off), once with the current ``memory_node.core.segmentation`` and once with the
implementation of commit ``BASELINE`` (read with ``git show``, the one before the segmenter was
made fast), interleaved in the same run. Times are CPU seconds of this process
(``time.process_time``), so other load on the machine changes them less than wall time. Also
checks that both give the same segments (count, and IoU of each old segment's best match).

Writes ``output/bench/segmenter.json``. Exits 0 with a message when the data is absent; runs
without the baseline when git or the commit is missing.

    .venv/bin/python -m bench.bench_segmenter [--frames 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from types import ModuleType

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench import icl_segmentation  # noqa: E402
from memory_node.core import scene_memory, segmentation  # noqa: E402
from memory_node.core.geometry import backproject  # noqa: E402
from memory_node.core.types import Frame  # noqa: E402

BASELINE = "e7c1b69c50100a58da226f86e70a7735fc5ce230"


def load_baseline() -> ModuleType | None:
    """Load the segmentation module of commit ``BASELINE``; None when git cannot give it."""
    try:
        src = subprocess.run(
            ["git", "show", f"{BASELINE}:memory_node/core/segmentation.py"],
            cwd=REPO,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = os.path.join(tempfile.mkdtemp(), "segmentation_baseline.py")
    with open(path, "w") as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location("segmentation_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["segmentation_baseline"] = module
    spec.loader.exec_module(module)
    return module


def config() -> scene_memory.SceneMemoryConfig:
    """Geometric segmenter, no features."""
    cfg = scene_memory.SceneMemoryConfig()
    cfg.segmentation.mode = "geometric"
    cfg.features.mode = "off"
    return cfg


def summary(ms: list[float]) -> dict[str, float]:
    """Mean, p95 and rate of per-frame CPU milliseconds."""
    a = np.asarray(ms)
    return {
        "cpu_ms_mean": round(float(a.mean()), 1),
        "cpu_ms_p95": round(float(np.percentile(a, 95)), 1),
        "frames_per_cpu_s": round(1000.0 / float(a.mean()), 1),
    }


def run(module: ModuleType, frames: list, n: int) -> dict[str, object]:
    """Time the segmenter alone and the whole ingest with ``module``'s segmenter."""
    cfg = config()
    fps = [backproject(f.depth, f.K, f.map_T_camera, cfg.depth)[0] for f in frames]
    seg_ms, dets = [], []
    for i in range(n):
        k = i % len(frames)
        t = time.process_time()
        d = module.segment_geometric(frames[k], fps[k], cfg.mapping.voxel_size_m, cfg.segmentation)
        seg_ms.append((time.process_time() - t) * 1000)
        if i < len(frames):
            dets.append(d)
    saved = scene_memory.segment_frame
    scene_memory.segment_frame = module.segment_frame
    try:
        mem = scene_memory.SceneMemory(cfg)
        ingest_ms = []
        for i in range(n):
            f = frames[i % len(frames)]
            f = Frame(i / 30.0, f.rgb, f.depth, f.K, f.map_T_camera)
            t = time.process_time()
            mem.ingest(f)
            ingest_ms.append((time.process_time() - t) * 1000)
    finally:
        scene_memory.segment_frame = saved
    return {
        "segmenter": summary(seg_ms),
        "ingest": summary(ingest_ms),
        "objects": len(mem.objects),
        "detections": dets,
    }


def compare(old: list, new: list) -> dict[str, object]:
    """Segment counts per frame and the IoU (over strided pixels) of each old segment's match."""
    ious = []
    for a, b in zip(old, new, strict=True):
        for da in a:
            sa = set(da.point_index.tolist())
            ious.append(
                max(
                    (
                        len(sa & set(db.point_index.tolist()))
                        / len(sa | set(db.point_index.tolist()))
                        for db in b
                    ),
                    default=0.0,
                )
            )
    return {
        "segments_old": [len(a) for a in old],
        "segments_new": [len(b) for b in new],
        "matched_iou_mean": round(float(np.mean(ious)), 4) if ious else None,
        "matched_iou_min": round(float(np.min(ious)), 4) if ious else None,
    }


def main() -> int:
    """Measure, print, write JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per run (looped)")
    args = parser.parse_args()
    if not os.path.isdir(icl_segmentation.DATA):
        print(f"ICL-NUIM data not found at {icl_segmentation.DATA}; nothing to do")
        return 0
    frames = icl_segmentation.load_frames()
    baseline = load_baseline()
    impls = {"current": segmentation}
    if baseline is None:
        print(f"baseline commit {BASELINE[:7]} not readable with git: current only")
    else:
        impls["baseline"] = baseline
    results: dict[str, dict] = {}
    for name, module in impls.items():
        results[name] = run(module, frames, args.frames)
    report: dict[str, object] = {
        "frames": args.frames,
        "resolution": list(frames[0].depth.shape[::-1]),
        "baseline_commit": BASELINE,
        "timing": "CPU time of this process (time.process_time)",
    }
    print(
        f"{'implementation':<16}{'segmenter ms':>14}{'p95':>8}{'ingest ms':>12}{'p95':>8}"
        f"{'ingest/s':>10}"
    )
    for name, r in results.items():
        seg, ing = r["segmenter"], r["ingest"]
        print(
            f"{name:<16}{seg['cpu_ms_mean']:>14}{seg['cpu_ms_p95']:>8}"
            f"{ing['cpu_ms_mean']:>12}{ing['cpu_ms_p95']:>8}{ing['frames_per_cpu_s']:>10}"
        )
        report[name] = {k: v for k, v in r.items() if k != "detections"}
    if "baseline" in results:
        same = compare(results["baseline"]["detections"], results["current"]["detections"])
        report["segments"] = same
        print(
            f"segments per frame: baseline {same['segments_old']}, current "
            f"{same['segments_new']}; matched IoU mean {same['matched_iou_mean']}, "
            f"min {same['matched_iou_min']}"
        )
    os.makedirs(os.path.join(REPO, "output", "bench"), exist_ok=True)
    with open(os.path.join(REPO, "output", "bench", "segmenter.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
