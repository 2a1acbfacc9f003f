"""Change detection on randomized episodes, per trajectory style, with held-out seeds.

Each seed gives a two-room procedural house with a group of 2-7 identical look-alikes, a random
change set (moves within and across rooms, removals, additions, state changes; one look-alike
moved and sometimes one removed) and a camera path in one trajectory style
(:mod:`memory_sim.change_episodes`): smooth tour at 10 Hz (every frame: the baseline), inspection
jumps (1-3 frames per viewpoint), tour at 2 Hz, tour at 15 Hz, tour with 30 % of frames dropped.
One seed in four blocks of five is static (nothing changes). Frames go straight into
:class:`SceneMemory` in-core (no ROS), so a run is deterministic.

Seeds 0-19 are for tuning; 100-139 are held out: report them, never tune on them.
``make bench`` runs the held-out seeds.

Usage::

    python -m bench.bench_changes                      # held-out seeds 100-139
    python -m bench.bench_changes --seeds 0-19         # training seeds
    python -m bench.bench_changes --quick              # training seeds 0-4, one per style
    python -m bench.bench_changes --seeds 0-4 --styles all   # each seed in every style
    python -m bench.bench_changes --write-episodes output/episodes/changes --seeds 100
    python -m bench.bench_changes --seeds 0-19 --cache output/bench/frames   # render once, reuse
    python -m bench.bench_changes --seeds 0-19 --param segmentation.min_points=8   # try a value

Ctrl-C (SIGINT) stops the run and reports the episodes done so far (``"interrupted": true``).

Prints per style: precision and recall per kind with Wilson 95 % intervals, object recall and
duplicates, identity swaps, median delay from first view, false events per 1,000 frames on static
episodes, each against its target; writes the same (and every episode's figures) to
``output/bench/changes.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.eval_changes import EpisodeScore, score_episode, summarize
from memory_node.evaluation import KINDS, MemObject, mark_new_places

TARGETS = {
    "precision": 0.90,
    "recall": 0.85,
    "object_recall": 0.95,
    "duplicates_max": 0.03,
    "static_false_per_1000_max": 1.0,
    "lookalike_swaps_max": 0.02,
    "median_delay_s_max": 1.0,
}
TRAINING = "0-19"
HELD_OUT = "100-139"


def parse_seeds(text: str) -> list[int]:
    """Parse "100-139", "0-4,7,9" into a sorted list of seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if a < 0 or b < a:
            raise argparse.ArgumentTypeError(f"bad seed range {part!r}")
        seeds.update(range(a, b + 1))
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return sorted(seeds)


def format_seeds(seeds: list[int]) -> str:
    """Return "0-4,7" for [0, 1, 2, 3, 4, 7] (the inverse of :func:`parse_seeds`)."""
    parts, start = [], seeds[0]
    for a, b in zip(seeds, [*seeds[1:], None], strict=True):
        if b != a + 1:
            parts.append(f"{start}-{a}" if a != start else f"{a}")
            start = b if b is not None else a
    return ",".join(parts)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` strings to memory parameters (values read as YAML), checked.

    Raises:
        ValueError: an item is not NAME=VALUE, or the name or value is not a valid parameter.
    """
    import yaml

    from memory_node.core.config import unflatten
    from memory_node.core.scene_memory import SceneMemoryConfig

    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        values[name.strip()] = yaml.safe_load(text)
    unflatten(SceneMemoryConfig, values)  # raises on an unknown name or a bad value
    return values


def run_episode(
    seed: int,
    style: str | None,
    width: int,
    height: int,
    cache_dir: str = "",
    render_only: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any] | str:
    """Play one generated episode into a fresh SceneMemory and score it (runs in a worker).

    Returns the episode's figures, or why it was skipped (its house is not on this machine).
    ``render_only``: only fill the frame cache (returns a line saying so). ``params``: memory
    parameters other than the defaults (dotted names, :func:`parse_params`).
    """
    from bench.episode_frames import EpisodeFrames
    from memory_node.core.config import unflatten
    from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
    from memory_node.core.types import ChangeEvent, InvalidInput
    from memory_sim.change_episodes import HouseUnavailable, make_change_episode

    t0 = time.monotonic()
    try:
        ce = make_change_episode(seed, style)
    except HouseUnavailable as exc:
        return f"seed {seed}: skipped, {exc}"
    source = EpisodeFrames(ce, width, height, cache_dir)
    if render_only:
        cached = source.from_cache
        for _ in source:
            pass
        what = "in the cache" if cached else f"rendered in {time.monotonic() - t0:.0f} s"
        return f"{ce.name}: {source.frames_total} frames {what}"
    memory = SceneMemory(unflatten(SceneMemoryConfig, params or {}))
    events: list[ChangeEvent] = []
    rejected: dict[str, int] = {}
    ingest_s = 0.0
    views = []  # every 4th pixel's depth, with K to match: was a new place shown before?
    scale = np.diag([0.25, 0.25, 1.0])
    for frame in source:
        views.append((np.array(frame.depth[::4, ::4]), scale @ frame.K, frame.map_T_camera))
        t1 = time.monotonic()
        try:
            memory.ingest(frame)
        except InvalidInput as err:
            reason = str(err).split(" (")[0]
            rejected[reason] = rejected.get(reason, 0) + 1
        ingest_s += time.monotonic() - t1
        events.extend(memory.drain_events())
    gt = source.ground_truth
    mark_new_places(gt, views, ce.sim_config(width, height).vacated_range_m)
    objects = [
        MemObject(o.id, o.label, o.center, o.size, o.present, o.last_seen, o.state)
        for o in memory.snapshot().objects
    ]
    # 300 pixels with depth at 640x480 (as in the demo's figures), scaled to the image size
    min_pixels = max(30, round(300 * width * height / (640 * 480)))
    score = score_episode(
        ce.name, ce.style.name, ce.static, gt, events, objects, min_view_pixels=min_pixels
    )
    return {
        "seed": seed,
        "house": ce.house,
        "score": score,
        "frames_total": source.frames_total,
        "from_cache": source.from_cache,
        "frames_rejected": rejected,
        "changes": len(gt["changes"]),
        "wall_s": time.monotonic() - t0,
        "render_s": source.render_s,
        "ingest_s": ingest_s,
    }


def _run_packed(
    args: tuple[int, str | None, int, int, str, bool, dict[str, Any]],
) -> dict[str, Any] | str:
    """:func:`run_episode` for ``imap_unordered`` (one tuple argument)."""
    return run_episode(*args)


def _fmt_ratio(r: dict[str, Any]) -> str:
    """'0.92 [0.80-0.97] 34/37' or '  -' when there is nothing to count."""
    if not r["n"]:
        return f"{'-':>24s}"
    lo, hi = r["ci95"]
    return f"{r['value']:.2f} [{lo:.2f}-{hi:.2f}] {r['k']:3d}/{r['n']:<3d}"


def targets_of(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Return target name -> met (None when there was nothing to measure)."""
    out: dict[str, bool | None] = {}
    for kind in KINDS:
        for what in ("precision", "recall"):
            r = summary["kinds"][kind][what]
            out[f"{kind} {what}"] = r["value"] >= TARGETS[what] if r["n"] else None
    obj = summary["objects"]
    out["object recall"] = (
        obj["recall"]["value"] >= TARGETS["object_recall"] if obj["recall"]["n"] else None
    )
    out["duplicates"] = (
        obj["duplicates"]["value"] <= TARGETS["duplicates_max"] if obj["duplicates"]["n"] else None
    )
    st = summary["static"]
    out["static false/1000"] = (
        st["per_1000_frames"] <= TARGETS["static_false_per_1000_max"] if st["frames"] else None
    )
    sw = summary["identity_swaps"]["lookalike_moves"]
    out["look-alike swaps"] = sw["value"] <= TARGETS["lookalike_swaps_max"] if sw["n"] else None
    d = summary["median_delay_s"]
    out["median delay"] = d <= TARGETS["median_delay_s_max"] if not math.isnan(d) else None
    return out


def markdown_tables(report: dict[str, Any]) -> str:
    """Return the per-style figures as two Markdown tables (for docs/benchmarks.md)."""

    def cell(r: dict[str, Any]) -> str:
        if not r["n"]:
            return "-"
        lo, hi = r["ci95"]
        return f"{r['value']:.2f} ({lo:.2f}-{hi:.2f}) {r['k']}/{r['n']}"

    groups = [*report["styles"].items(), ("all", report["all"])]
    head = "| style | episodes | " + " | ".join(f"{k} P / R" for k in KINDS) + " |"
    lines = [head, "|" + "---|" * (2 + len(KINDS))]
    for name, s in groups:
        kinds = [
            f"{cell(s['kinds'][k]['precision'])} / {cell(s['kinds'][k]['recall'])}" for k in KINDS
        ]
        lines.append(f"| {name} | {s['episodes']} | " + " | ".join(kinds) + " |")
    lines += [
        "",
        "| style | object recall | duplicates | look-alike swaps | median delay s | "
        "false / 1000 static frames | before 1st change |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in groups:
        obj, st, pre = s["objects"], s["static"], s["pre_change"]
        lines.append(
            f"| {name} | {cell(obj['recall'])} | {cell(obj['duplicates'])} | "
            f"{cell(s['identity_swaps']['lookalike_moves'])} | {s['median_delay_s']:.2f} | "
            f"{st['per_1000_frames']:.1f} ({st['false_events']}/{st['frames']}) | "
            f"{pre['per_1000_frames']:.1f} ({pre['events']}/{pre['frames']}) |"
        )
    return "\n".join(lines)


def print_summary(title: str, s: dict[str, Any]) -> None:
    """Print one group's figures."""
    print(f"\n--- {title}: {s['episodes']} episodes ({s['static_episodes']} static), "
          f"{s['frames']} frames")  # fmt: skip
    print(f"{'kind':14s} {'precision [95 %]':>24s} {'recall [95 %]':>24s} {'delay s':>8s}")
    for kind in KINDS:
        k = s["kinds"][kind]
        delay = k["median_delay_s"]
        print(
            f"{kind:14s} {_fmt_ratio(k['precision'])} {_fmt_ratio(k['recall'])} "
            f"{delay if math.isnan(delay) else round(delay, 2):>8}"
        )
    obj, sw = s["objects"], s["identity_swaps"]
    print(
        f"objects: recall {_fmt_ratio(obj['recall'])}  duplicates {_fmt_ratio(obj['duplicates'])}"
    )
    print(
        f"identity swaps: look-alike moves {_fmt_ratio(sw['lookalike_moves'])}  "
        f"all moves {_fmt_ratio(sw['all_moves'])}"
    )
    st, pre = s["static"], s["pre_change"]
    print(
        f"median delay from first view {s['median_delay_s']:.2f} s; false events: static "
        f"{st['false_events']}/{st['frames']} frames ({st['per_1000_frames']:.2f} per 1000) "
        f"{st['by_kind']}; before the first change {pre['events']}/{pre['frames']} "
        f"({pre['per_1000_frames']:.2f} per 1000)"
    )
    met = targets_of(s)
    misses = [name for name, ok in met.items() if ok is False]
    print(f"targets missed: {', '.join(misses) if misses else 'none'}")


def main(argv: list[str] | None = None) -> int:
    """Run the episodes, pool the figures per style, print and write them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--seeds",
        type=parse_seeds,
        default=None,
        help=f"seeds, e.g. {TRAINING} (training) or {HELD_OUT} (held out, default)",
    )
    p.add_argument(
        "--quick", action="store_true", help="training seeds 0-4, one per style (unless --seeds)"
    )
    p.add_argument(
        "--styles",
        nargs="+",
        default=["seed"],
        help="'seed': each seed in its own style (default); 'all' or style names: "
        "each seed in each of them",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="episodes played in parallel (processes)",
    )
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument(
        "--write-episodes",
        default="",
        help="only write the episodes (YAML + scene JSON) to this folder and exit",
    )
    p.add_argument(
        "--cache",
        default="",
        help="folder of rendered frames (e.g. output/bench/frames): read when there, "
        "written when not; rendering is most of the cost",
    )
    p.add_argument(
        "--render-only",
        action="store_true",
        help="only render the episodes into --cache (no memory, no figures)",
    )
    p.add_argument(
        "--markdown",
        default="",
        help="print the tables of a written report (JSON) as Markdown and exit",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a memory parameter other than its default, e.g. change.window_s=2.0 (repeatable; "
        "recorded in the report)",
    )
    p.add_argument("--output", default="output/bench/changes.json")
    args = p.parse_args(argv)  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.markdown:
        print(markdown_tables(json.loads(Path(args.markdown).read_text())))
        return 0
    try:
        params = parse_params(args.param)
    except ValueError as exc:
        p.error(str(exc))

    from memory_sim.change_episodes import HELD_OUT_SEEDS, STYLE_NAMES, make_change_episode

    seeds = args.seeds or (parse_seeds("0-4") if args.quick else list(HELD_OUT_SEEDS))
    if args.styles == ["seed"]:
        styles: list[str | None] = [None]
    elif args.styles == ["all"]:
        styles = list(STYLE_NAMES)
    else:
        bad = [s for s in args.styles if s not in STYLE_NAMES]
        if bad:
            p.error(f"unknown styles {bad}; known: {list(STYLE_NAMES)}, 'seed' or 'all'")
        styles = list(args.styles)
    jobs = [(seed, style) for seed in seeds for style in styles]
    if args.write_episodes:
        for seed, style in jobs:
            print(make_change_episode(seed, style).write(args.write_episodes))
        return 0
    held_out = sorted(set(seeds) & set(HELD_OUT_SEEDS))
    print(
        f"bench_changes: {len(jobs)} episodes, seeds {format_seeds(seeds)} "
        f"({'HELD-OUT: report only, do not tune' if held_out else 'training'}), "
        f"{args.width}x{args.height}, {args.jobs} processes"
        + "".join(f", {k}={v}" for k, v in params.items()),
        flush=True,
    )
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    work = [
        (seed, style, args.width, args.height, args.cache, args.render_only, params)
        for seed, style in jobs
    ]

    def collect(r: dict[str, Any] | str) -> None:
        if isinstance(r, str):
            skipped.append(r)
            print(f"  {r}", flush=True)
            return
        results.append(r)
        s: EpisodeScore = r["score"]
        tp = sum(k.true_positives for k in s.kinds.values())
        rep = sum(k.reported for k in s.kinds.values())
        false = sum(s.false_events.values()) if s.static else sum(s.pre_change_events.values())
        print(
            f"  [{len(results) + len(skipped)}/{len(work)}] {s.name:40s} {s.frames:4d}/"
            f"{r['frames_total']:4d} frames, {r['changes']:2d} changes, {tp:2d}/{rep:2d} events "
            f"right, objects {s.objects_found}/{s.objects_considered} dup {s.duplicates}, "
            f"false {false}, swaps {len(s.swaps)}, {r['wall_s']:.0f} s",
            flush=True,
        )

    interrupted = False
    try:
        if args.jobs > 1:
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(key, "1")
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(args.jobs) as pool:
                for r in pool.imap_unordered(_run_packed, work, chunksize=1):
                    collect(r)
        else:
            for w in work:
                collect(run_episode(*w))
    except KeyboardInterrupt:  # Ctrl-C: report the episodes done so far, marked as partial
        interrupted = True
        print(f"\ninterrupted: {len(results)} of {len(work)} episodes done", flush=True)
    wall = time.monotonic() - t0
    if args.render_only:
        return 0
    if not results:
        print("no episode ran")
        return 1
    results.sort(key=lambda r: (r["seed"], r["score"].style))
    by_style: dict[str, list[EpisodeScore]] = {}
    for r in results:
        by_style.setdefault(r["score"].style, []).append(r["score"])
    report: dict[str, Any] = {
        "seeds": seeds,
        "held_out": bool(held_out),
        "resolution": [args.width, args.height],
        "params": params,
        "targets": TARGETS,
        "wall_s": round(wall, 1),
        "processes": args.jobs,
        "episodes_planned": len(work),
        "interrupted": interrupted,
        "skipped": skipped,
        "render_s_per_frame": sum(r["render_s"] for r in results)
        / max(1, sum(r["score"].frames for r in results)),
        "ingest_s_per_frame": sum(r["ingest_s"] for r in results)
        / max(1, sum(r["score"].frames for r in results)),
        "styles": {},
    }
    for style in [s for s in STYLE_NAMES if s in by_style]:
        summary = summarize(by_style[style])
        summary["targets_met"] = targets_of(summary)
        report["styles"][style] = summary
        baseline = " (baseline: every frame, smooth)" if style == "smooth" else ""
        print_summary(f"{style}{baseline}", summary)
    houses: dict[str, list[EpisodeScore]] = {}
    for r in results:
        houses.setdefault(r["house"], []).append(r["score"])
    report["houses"] = {house: summarize(scores) for house, scores in sorted(houses.items())}
    if len(houses) > 1:
        for house, summary in report["houses"].items():
            print_summary(f"house {house}, all styles", summary)
    overall = summarize([r["score"] for r in results])
    overall["targets_met"] = targets_of(overall)
    report["all"] = overall
    print_summary("all styles", overall)
    report["episodes"] = [
        {k: v for k, v in r.items() if k != "score"} | {"score": asdict(r["score"])}
        for r in results
    ]
    print(
        f"\n{len(results)} episodes in {wall:.0f} s ({args.jobs} processes); per frame: render "
        f"{report['render_s_per_frame']:.3f} s, ingest {report['ingest_s_per_frame']:.3f} s"
    )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
