"""Geometric segmenter on the real ICL-NUIM living-room frames: a picture of the object set.

Reads ``<repo>/../shared/data/icl_nuim_livingroom`` (5 RGB-D frames, uint16 mm depth, Redwood
trajectory.log, fx = fy = 525, cx = 319.5, cy = 239.5), segments frame 0 with the built-in
geometric segmenter, fuses all five frames into a SceneMemory (segmentation.mode=geometric,
features off) and writes ``output/icl/segments.png`` (frame 0 with its segments, and a top view
of the fused objects) and ``output/icl/segments.json``. Exits 0 with a message when the data is
absent.

    .venv/bin/python bench/icl_segmentation.py
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from memory_node.core.geometry import backproject  # noqa: E402
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig  # noqa: E402
from memory_node.core.segmentation import segment_geometric  # noqa: E402
from memory_node.core.types import Frame  # noqa: E402

DATA = os.path.join(REPO, "..", "shared", "data", "icl_nuim_livingroom")
K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])


def read_trajectory(path: str) -> list[np.ndarray]:
    """Redwood .log: per frame a header line then 4 rows of camera-to-world (map_T_camera)."""
    with open(path) as fh:
        rows = [line.split() for line in fh.read().splitlines() if line.strip()]
    poses = []
    for i in range(0, len(rows) - 4, 5):
        poses.append(np.array([[float(x) for x in r] for r in rows[i + 1 : i + 5]]))
    return poses


def load_frames() -> list[Frame]:
    """Read the five frames as :class:`Frame` (depth in metres)."""
    from PIL import Image

    poses = read_trajectory(os.path.join(DATA, "trajectory.log"))
    frames = []
    for i, pose in enumerate(poses):
        depth = np.asarray(Image.open(os.path.join(DATA, "depth", f"{i:05d}.png")), np.float32)
        rgb = np.asarray(Image.open(os.path.join(DATA, "color", f"{i:05d}.jpg")).convert("RGB"))
        frames.append(Frame(float(i) / 30.0, rgb, depth / 1000.0, K.copy(), pose))
    return frames


def main() -> int:
    """Segment, fuse, draw; returns the exit code."""
    if not os.path.isdir(DATA):
        print(f"ICL-NUIM data not found at {DATA}; nothing to do")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = load_frames()
    cfg = SceneMemoryConfig()
    cfg.segmentation.mode = "geometric"
    cfg.features.mode = "off"
    cfg.mapping.min_observations_to_confirm = 2

    # Frame 0 segments, drawn on the image.
    f0 = frames[0]
    fp, _ = backproject(f0.depth, f0.K, f0.map_T_camera, cfg.depth)
    t0 = time.perf_counter()
    dets = segment_geometric(f0, fp, cfg.mapping.voxel_size_m, cfg.segmentation)
    seg_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    overlay = f0.rgb.astype(np.float32) / 255.0 * 0.35
    s = cfg.depth.pixel_stride
    colors = rng.uniform(0.2, 1.0, (len(dets), 3))
    for det, color in zip(dets, colors, strict=True):
        # Paint each detection's strided pixels as s x s blocks.
        sel = det.point_index
        assert sel is not None
        for r, c in zip(fp.rows[sel], fp.cols[sel], strict=True):
            overlay[r : r + s, c : c + s] = color

    # Five frames fused.
    mem = SceneMemory(cfg)
    t0 = time.perf_counter()
    for f in frames:
        mem.ingest(f)
    fuse_s = time.perf_counter() - t0
    objs = list(mem.objects.values())

    os.makedirs(os.path.join(REPO, "output", "icl"), exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    axes[0].imshow(f0.rgb)
    axes[0].set_title("ICL-NUIM living room, frame 0")
    axes[1].imshow(np.clip(overlay, 0, 1))
    axes[1].set_title(f"geometric segments, frame 0: {len(dets)} ({seg_s * 1000:.0f} ms)")
    ax = axes[2]
    for obj, color in zip(objs, rng.uniform(0.1, 0.9, (len(objs), 3)), strict=False):
        p = obj.points
        # ICL-NUIM's map frame is y up: the top view is x-z.
        ax.scatter(p[:, 0], p[:, 2], s=1, color=color)
        lo, hi = obj.box_min, obj.box_max
        ax.plot(
            [lo[0], hi[0], hi[0], lo[0], lo[0]], [lo[2], lo[2], hi[2], hi[2], lo[2]], color=color
        )
        ax.text(hi[0], hi[2], obj.id[-3:], fontsize=7)
    cams = np.array([f.map_T_camera[:3, 3] for f in frames])
    ax.plot(cams[:, 0], cams[:, 2], "k^-", label="camera")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.legend(loc="best")
    ax.set_title(f"fused objects after 5 frames: {len(objs)} (top view, map frame)")
    for a in axes[:2]:
        a.axis("off")
    fig.tight_layout()
    png = os.path.join(REPO, "output", "icl", "segments.png")
    fig.savefig(png, dpi=90)
    summary = {
        "frame0_segments": len(dets),
        "frame0_segment_ms": round(seg_s * 1000, 1),
        "fused_objects": len(objs),
        "fuse_5_frames_ms": round(fuse_s * 1000, 1),
        "objects": [
            {
                "id": o.id,
                "center_m": [round(float(x), 3) for x in o.center],
                "size_m": [round(float(x), 3) for x in o.size],
                "observations": o.observations,
                "voxels": int(o.points.shape[0]),
            }
            for o in objs
        ],
        "stats": mem.stats(),
    }
    with open(os.path.join(REPO, "output", "icl", "segments.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(
        f"frame 0: {len(dets)} segments in {seg_s * 1000:.0f} ms; "
        f"5 frames fused into {len(objs)} objects in {fuse_s * 1000:.0f} ms -> {png}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
