"""Accuracy of the long-term and short-term memory on a simulator episode, in-core and repeatable.

Plays an episode of the built-in simulator straight into :class:`SceneMemory` (no ROS, every
frame ingested in order, so a run is deterministic for a seed) and compares with the episode's
ground truth:

* objects (issue 4): share of the true objects seen in at least ``--min-frames`` frames that are
  in memory (label and position), duplicates, median centroid error, and how often a query with
  an object's label returns an object of that label first;
* changes (issue 5): precision and recall of APPEARED, MOVED, DISAPPEARED and STATE_CHANGED
  events after the first change, with the median delay from the change to the event;
* false events: MOVED or DISAPPEARED events per 1000 frames before the first change (the static
  part of the episode).

Usage::

    python -m bench.bench_accuracy [--episode tour_changes_tour] [--width 640 --height 480]
                                   [--rate-hz 5] [--max-frames N]

Writes ``output/bench/accuracy_<episode>.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.short_term import TraceOp, save_trace
from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput, QueryRequest
from memory_node.demo import find_episode
from memory_node.evaluation import (
    KINDS,
    MemObject,
    change_metrics,
    gt_objects_at,
    match_objects,
)
from memory_sim.episode import EpisodeRunner, load_episode
from memory_sim.simulator import SimConfig


def label_first_rate(memory: SceneMemory) -> tuple[float, list[str]]:
    """Share of remembered labels for which a query with the label returns that label first."""
    labels = sorted({o.label for o in memory.objects.values() if o.label and o.present})
    wrong = []
    for label in labels:
        best = memory.query(QueryRequest(text=label, k=1))
        if not best or best[0].obj.label != label:
            wrong.append(label)
    return (1.0 - len(wrong) / len(labels) if labels else float("nan")), wrong


def main() -> None:
    """Run the episode, compute the figures, print and write them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episode", default="tour_changes_tour")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--rate-hz", type=float, default=5.0)
    p.add_argument("--min-frames", type=int, default=10)
    p.add_argument("--max-frames", type=int, default=0, help="stop early (0 = whole episode)")
    p.add_argument(
        "--miss-prob",
        type=float,
        default=None,
        help="probability that the simulated segmenter misses an instance in a frame "
        "(default: the simulator's, 0.05)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sensor imperfections")
    p.add_argument("--debug-log", default="", help="write the memory's debug log to this file")
    p.add_argument(
        "--trace-out",
        default="",
        help="record a short-term memory trace (JSON lines) for bench/bench_short_term.py: each "
        "change event, and per frame a query for every object in view that has changed before",
    )
    p.add_argument("--output", default="")
    args = p.parse_args()

    if args.debug_log:
        handler = logging.FileHandler(args.debug_log, mode="w")
        handler.setLevel(logging.DEBUG)
        core_log = logging.getLogger("memory_node.core.scene_memory")
        core_log.setLevel(logging.DEBUG)
        core_log.addHandler(handler)
    path = find_episode(args.episode)
    config = SimConfig()
    config.rate_hz = args.rate_hz
    config.camera.width_px, config.camera.height_px = args.width, args.height
    config.seed = args.seed
    if args.miss_prob is not None:
        config.noise.mask_miss_prob = args.miss_prob
    runner = EpisodeRunner(load_episode(str(path)), config)
    memory = SceneMemory(SceneMemoryConfig())
    events: list[ChangeEvent] = []
    trace: list[TraceOp] = []
    changed_ids: set[str] = set()
    t0 = time.monotonic()
    frames = 0
    dropped: dict[str, int] = {}
    total = runner.frame_count if not args.max_frames else min(args.max_frames, runner.frame_count)
    for step in tqdm(runner, total=total, unit="frame", desc=f"{args.episode}"):
        if frames >= total:
            break
        frames += 1
        try:
            report = memory.ingest(step.frame)
        except InvalidInput as err:  # e.g. the camera inside a wall: dropped, as the node does
            dropped[str(err).split(" (")[0]] = dropped.get(str(err).split(" (")[0], 0) + 1
            continue
        if args.trace_out:
            for e in report.events:
                trace.append(TraceOp("event", e.object_id, e.stamp, e.kind))
                changed_ids.add(e.object_id)
            stamp = float(step.frame.stamp)
            for oid in sorted(changed_ids):
                obj = memory.objects.get(oid)
                if obj is not None and obj.last_seen == stamp:
                    trace.append(TraceOp("query", oid, stamp))
        events.extend(report.events)
    elapsed = time.monotonic() - t0
    gt = runner.ground_truth()
    runner.close()

    remembered = [
        MemObject(o.id, o.label, o.center, o.size, o.present, o.last_seen, o.state)
        for o in memory.objects.values()
    ]
    end = float("inf")
    objects = match_objects(gt_objects_at(gt, end), remembered, min_frames_seen=args.min_frames)
    first_change = min((c["stamp"] for c in gt["changes"]), default=float("inf"))
    changes = change_metrics(gt["changes"], events, since_s=first_change, frames=gt["frames"])
    # The change log the planner reads (get_changes after the episode): consolidated, e.g. a
    # DISAPPEARED followed by the object's MOVED is one MOVED there.
    limit = memory.config.short_term.max_results_limit
    logged = list(reversed(memory.changes(since=-math.inf, max_results=limit)))
    changes_log = change_metrics(gt["changes"], logged, since_s=first_change, frames=gt["frames"])
    static_frames = sum(1 for f in gt["frames"] if f["stamp"] < first_change)
    false_static = sum(
        1
        for e in events
        if e.stamp < first_change and e.kind in (ChangeKind.MOVED, ChangeKind.DISAPPEARED)
    )
    rate, wrong_labels = label_first_rate(memory)
    report = {
        "episode": args.episode,
        "frames": frames,
        "frames_dropped": dropped,
        "resolution": [args.width, args.height],
        "rate_hz": args.rate_hz,
        "mask_miss_prob": config.noise.mask_miss_prob,
        "seed": args.seed,
        "ingest_wall_s": round(elapsed, 1),
        "objects": {k: v for k, v in asdict(objects).items() if k != "matches"},
        "label_first_rate": rate,
        "labels_not_first": wrong_labels,
        "changes": {k: asdict(v) for k, v in changes.items()},
        "changes_log": {k: asdict(v) for k, v in changes_log.items()},
        "static_frames": static_frames,
        "false_moved_or_disappeared_per_1000_static_frames": (
            1000.0 * false_static / static_frames if static_frames else float("nan")
        ),
        "memory_objects": [
            {"id": o.id, "label": o.label, "center": np.round(o.center, 3),
             "size": np.round(o.size, 3), "present": o.present, "state": o.state,
             "first_seen": o.first_seen, "last_seen": o.last_seen}
            for o in memory.objects.values()
        ],
        "gt_changes": gt["changes"],
        "events": [
            {"kind": e.kind.name, "id": e.object_id, "label": e.label, "stamp": e.stamp,
             "old": np.round(e.old_position, 3), "new": np.round(e.new_position, 3)}
            for e in events
        ],
    }  # fmt: skip
    if dropped:
        print(f"\nframes dropped by the memory: {dropped}")
    print(
        f"\nobjects seen in {args.min_frames}+ frames remembered: {objects.found}/"
        f"{objects.gt_considered} ({100 * objects.recall:.1f} %), duplicates {objects.duplicates} "
        f"({100 * objects.duplicate_rate:.1f} %), median centroid error "
        f"{100 * objects.median_centroid_error_m:.1f} cm"
    )
    print(f"label query returns that label first: {100 * rate:.1f} % (misses: {wrong_labels})")
    for title, table in (
        ("events as published (~/changes), delays from each change's first view", changes),
        ("change log after the episode (~/get_changes, consolidated)", changes_log),
    ):
        print(f"\n{title}:")
        print(
            f"{'kind':14s} {'truth':>5s} {'reported':>8s} {'precision':>9s} {'recall':>6s} "
            f"{'(of seen)':>9s} {'delay s median / max':>21s} {'over 1 s':>8s}"
        )
        for kind in KINDS:
            m = table[kind]
            print(
                f"{kind:14s} {m.gt:5d} {m.reported:8d} {m.precision:9.2f} {m.recall:6.2f} "
                f"{m.recall_viewed:9.2f} {m.median_delay_s:11.1f} / {m.max_delay_s:6.1f} "
                f"{m.late:8d}"
            )
    print("\nchange log, what it got wrong:")
    for kind in KINDS:
        m = changes_log[kind]
        lists = (
            ("missed", m.missed),
            ("false", m.false),
            ("never in view", m.unviewed),
            ("late", m.late_names),
        )
        for what, names in lists:
            if names:
                print(f"  {kind} {what}: {'; '.join(names)}")
    print(
        f"false MOVED/DISAPPEARED before the first change: {false_static} in {static_frames} "
        f"frames ({report['false_moved_or_disappeared_per_1000_static_frames']:.2f} per 1000)"
    )
    if args.trace_out:
        save_trace(args.trace_out, trace)
        queries = sum(1 for t in trace if t.op == "query")
        print(f"trace: {len(trace) - queries} events, {queries} queries -> {args.trace_out}")
    out = Path(args.output or f"output/bench/accuracy_{Path(args.episode).stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=lambda x: np.asarray(x).tolist()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
