"""Throughput of the built-in simulator (pybullet TinyRenderer on the CPU), frames per second.

Renders ``--frames`` frames at ``--width`` x ``--height`` along a representative camera path:
the coverage tour of the procedural house (seed ``--seed``), and, when the world file exists,
a turn in the middle of the imported Gazebo small house. Each scene runs with the sensor
imperfections off (pure render + instance ids) and on (the defaults), after ``--warmup``
untimed frames. Timing is wall clock per ``Simulator.step``; the machine's other load counts.

Usage::

    python -m bench.bench_sim --width 640 --height 480 --frames 60

Writes ``output/bench/sim.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memory_sim.camera import look_pose
from memory_sim.episode import plan_trajectory
from memory_sim.procedural import ProceduralConfig, generate_house
from memory_sim.scene import SceneSpec
from memory_sim.simulator import SimConfig, Simulator

DEFAULT_WORLD = (
    Path(__file__).resolve().parents[2] / "shared/data/aws_small_house/worlds/small_house.world"
)

Poses = Callable[[int], np.ndarray]


def procedural_poses(scene: SceneSpec, n: int) -> Poses:
    """Return frame -> pose along the coverage tour of ``scene``, spread over ``n`` frames."""
    from memory_sim.episode import parse_episode

    episode = parse_episode(
        "name: bench\nscene: {procedural: {}}\nsegments: [{coverage: {turns: 1}}]\n", "<bench>"
    )
    trajectory = plan_trajectory(episode, scene)
    return lambda i: trajectory.pose_at(trajectory.duration * (i + 0.5) / n)


def centre_turn_poses(scene: SceneSpec, n: int) -> Poses:
    """Return frame -> pose turning once at the centre of the scene's objects, 1.3 m high."""
    xy = np.array([o.pose.position[:2] for o in scene.objects if not o.structure])
    centre = np.median(xy, axis=0) if len(xy) else np.zeros(2)
    return lambda i: look_pose(
        np.array([centre[0], centre[1], 1.3]), 2 * math.pi * i / n, math.radians(-25)
    )


def run(scene: SceneSpec, poses: Poses, config: SimConfig, frames: int, warmup: int) -> dict:
    """Time ``frames`` steps (after ``warmup``) and return the figures."""
    with Simulator(scene, config, keep_frame_truth=False) as sim:
        for i in range(warmup):
            sim.step(poses(i))
        times = []
        for i in range(frames):
            t0 = time.perf_counter()
            sim.step(poses(i))
            times.append(time.perf_counter() - t0)
        bodies = sim.client.getNumBodies()
    ms = sorted(1000 * t for t in times)
    return {
        "bodies": bodies,
        "objects": sum(not o.structure for o in scene.objects),
        "frames": frames,
        "fps": frames / sum(times),
        "ms_mean": statistics.fmean(ms),
        "ms_p50": ms[len(ms) // 2],
        "ms_p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print a table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=640, help="image width, pixels")
    parser.add_argument("--height", type=int, default=480, help="image height, pixels")
    parser.add_argument("--frames", type=int, default=60, help="timed frames per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    parser.add_argument("--seed", type=int, default=0, help="procedural house seed")
    parser.add_argument("--world", default=str(DEFAULT_WORLD), help="Gazebo world ('' = skip)")
    parser.add_argument("--output", default="output/bench/sim.json", help="JSON report path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    scenes: list[tuple[str, SceneSpec, Poses]] = []
    house = generate_house(ProceduralConfig(seed=args.seed))
    scenes.append((f"procedural seed {args.seed}", house, procedural_poses(house, args.frames)))
    skipped = ""
    if args.world and os.path.isfile(args.world):
        from memory_sim.gazebo import import_world

        world = import_world(args.world)
        scenes.append(
            (f"gazebo {Path(args.world).stem}", world, centre_turn_poses(world, args.frames))
        )
    elif args.world:
        skipped = f"world file not found: {args.world}"

    rows = []
    for name, scene, poses in scenes:
        for noise in (False, True):
            config = SimConfig()
            config.camera.width_px, config.camera.height_px = args.width, args.height
            config.noise.enabled = noise
            figures = run(scene, poses, config, args.frames, args.warmup)
            rows.append({"scene": name, "noise": noise, **figures})
            print(f"  {name} noise={'on' if noise else 'off'}: {figures['fps']:.2f} frames/s")

    header = f"{'scene':<26} {'bodies':>6} {'objects':>7} {'noise':>5} {'frames/s':>9} "
    header += f"{'ms mean':>8} {'ms p50':>7} {'ms p95':>7}"
    print(f"\nsimulator throughput at {args.width}x{args.height} ({args.frames} frames each)")
    print(header)
    for r in rows:
        print(
            f"{r['scene']:<26} {r['bodies']:>6} {r['objects']:>7} "
            f"{'on' if r['noise'] else 'off':>5} "
            f"{r['fps']:>9.2f} {r['ms_mean']:>8.1f} {r['ms_p50']:>7.1f} {r['ms_p95']:>7.1f}"
        )
    if skipped:
        print(f"(small house skipped: {skipped})")
    report: dict[str, Any] = {
        "benchmark": "simulator throughput",
        "resolution": [args.width, args.height],
        "frames": args.frames,
        "warmup": args.warmup,
        "renderer": "pybullet TinyRenderer (CPU)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "skipped": skipped,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
