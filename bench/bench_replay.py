"""Bag replay speed: a recorded simulator run replayed into the core at maximum speed.

Frames of the ``tour_changes_tour`` episode (640x480, 5 Hz, sensor noise, given masks) are
rendered first and written to a rosbag2 (MCAP) with ``rosbags``, as ``sim_publisher`` publishes
them. Timed in the same run, on the same frames and configuration (the package's
``config/scene_memory.yaml``: MiniLM label features):

* ``direct ingest``: the frames handed to ``SceneMemory.ingest`` (the baseline: no bag);
* ``memory_replay --core --max-speed``: read the bag, decode with rclpy, pair by stamp, build
  frames, ingest;
* ``replay without ingest``: the same with ``SceneMemory.ingest`` replaced by a no-op: what the
  replay itself costs on top of the memory.

The speed is the recording's duration over the wall time (target: at least 3x real time).

    python -m bench.bench_replay [--frames 200] [--width 640 --height 480]

Writes ``output/bench/replay.json``. Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Render, record, replay and print the figures."""
    from memory_node.core.scene_memory import SceneMemory
    from memory_node.tools.bag import frames_to_messages, write_bag
    from memory_node.tools.replay import load_params, replay_core
    from memory_sim.episode import EpisodeRunner, load_episode
    from memory_sim.simulator import SimConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate-hz", type=float, default=5.0)
    parser.add_argument("--out", default=str(REPO / "output" / "bench" / "replay.json"))
    args = parser.parse_args()

    config = SimConfig()
    config.rate_hz = args.rate_hz
    config.camera.width_px, config.camera.height_px = args.width, args.height
    episode = load_episode(str(REPO / "sim" / "episodes" / "tour_changes_tour.yaml"))
    runner = EpisodeRunner(episode, config)
    frames = []
    for step in runner:
        frames.append(step.frame)
        if len(frames) == args.frames:
            break
    runner.close()
    node_cfg, core_cfg = load_params([str(REPO / "config" / "scene_memory.yaml")], [])
    tmp = Path(tempfile.mkdtemp(prefix="bench_replay_"))
    try:
        bag = tmp / "bag"
        t0 = time.monotonic()
        write_bag(bag, frames_to_messages(frames), "mcap")
        write_s = time.monotonic() - t0
        bag_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
        SceneMemory(core_cfg).ingest(frames[0])  # load the text model before timing
        t0 = time.monotonic()
        direct = SceneMemory(core_cfg)
        for f in frames:
            direct.ingest(f)
        direct_s = time.monotonic() - t0
        replayed, stats = replay_core(str(bag), node_cfg, core_cfg, rate=0.0)
        real_ingest = SceneMemory.ingest
        SceneMemory.ingest = lambda self, frame: None  # type: ignore[method-assign,assignment]
        try:
            _, bare = replay_core(str(bag), node_cfg, core_cfg, rate=0.0)
        finally:
            SceneMemory.ingest = real_ingest  # type: ignore[method-assign]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    duration = frames[-1].stamp - frames[0].stamp
    same = sorted(direct.objects) == sorted(replayed.objects)
    report = {
        "frames": len(frames),
        "size": [args.width, args.height],
        "recording_s": duration,
        "bag_mb": bag_mb,
        "bag_write_s": write_s,
        "direct_ingest_s": direct_s,
        "direct_x_realtime": duration / direct_s,
        "replay_s": stats.wall_s,
        "replay_x_realtime": duration / stats.wall_s,
        "replay_ingested": stats.ingested,
        "replay_without_ingest_s": bare.wall_s,
        "replay_without_ingest_x_realtime": duration / bare.wall_s,
        "same_object_ids": same,
    }
    print(
        f"{len(frames)} frames {args.width}x{args.height} at {args.rate_hz} Hz: "
        f"{duration:.1f} s of recording, bag {bag_mb:.0f} MB (written in {write_s:.1f} s)"
    )
    print(f"{'':34}{'wall s':>8}{'x real time':>13}")
    print(f"{'direct ingest (baseline)':34}{direct_s:8.1f}{duration / direct_s:13.2f}")
    speed = duration / stats.wall_s
    print(f"{'memory_replay --core --max-speed':34}{stats.wall_s:8.1f}{speed:13.2f}")
    bare_speed = duration / bare.wall_s
    print(f"{'replay without ingest':34}{bare.wall_s:8.1f}{bare_speed:13.2f}")
    print(f"replayed memory has the direct run's object ids: {same}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
