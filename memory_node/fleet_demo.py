"""Fleet demo: three robots in one procedural house share one long-term memory.

One simulated world (the built-in simulator, seed-0 house) and three cameras: ``robot1`` tours
the kitchen and the dining room, waits facing a wall while objects are moved, removed, added and
switched there, then tours both rooms again (it sees the changes); ``robot2`` tours the living
room and the dining room; ``robot3`` tours the bedroom and the bathroom and never enters the
kitchen. Each robot runs its own :class:`~memory_node.core.scene_memory.SceneMemory` (its
short-term memory stays its own) and pushes its long-term objects to the fleet store every
``--push-period-s`` seconds of sim time through :class:`~memory_node.core.fleet.FleetSync`.

At the end the fleet memory is compared with the ground truth (recall and duplicates of the
objects seen by any robot, :func:`memory_node.evaluation.match_objects`), and robot3 asks the
fleet "where is the mug" (through the ``fleet_memory`` node's ``~/query_objects`` service over
DDS with ``--ros``, else in-process).

Usage::

    python -m memory_node.fleet_demo [--store sqlite:///output/fleet_demo/fleet.db |
                                      --store "$(tools/postgres.sh url)"] [--ros]
                                     [--rate-hz 3] [--width 320 --height 240] [--out DIR]

Writes ``<out>/summary.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.fleet import FleetConfig, FleetSync, absence_stamps
from memory_node.core.fleet_memory import FleetMemory, FleetMemoryConfig
from memory_node.core.scene_memory import SceneMemory, SceneMemoryConfig
from memory_node.core.storage import FleetStore, open_store
from memory_node.core.types import InvalidInput, QueryRequest
from memory_node.evaluation import MemObject, gt_objects_at, match_objects

log = logging.getLogger(__name__)

SCENE = "scene:\n  procedural: {seed: @HOUSE_SEED@}\n"  # seed 0: tuning; 1 and 4: held out
CAMERA = "camera: {height_m: 1.3, pitch_deg: -25, speed_mps: 0.6, yaw_rate_dps: 60}\n"

# robot1 sees the changes: they happen in its rooms while it looks at a wall.
ROBOT1 = f"""
name: fleet_robot1
{SCENE}{CAMERA}
segments:
  - {{name: tour1, coverage: {{rooms: [kitchen, dining_room]}}}}
  - {{goto: {{room: kitchen}}}}
  - {{name: away, turn: {{yaw_deg: 90}}}}
  - {{hold: {{duration_s: 12}}}}
  - {{name: tour2, coverage: {{rooms: [kitchen, dining_room]}}}}
events:
  - {{after: away, at_s: 1.0, move: {{object: kitchen/mug_0, onto: dining_room/table_0,
      offset_xy_m: [-0.4, 0.2]}}}}
  - {{after: away, at_s: 2.0, move: {{object: dining_room/tray_0, onto: kitchen/table_0,
      offset_xy_m: [-0.2, 0.1]}}}}
  - {{after: away, at_s: 3.0, remove: {{object: dining_room/bowl_0}}}}
  - {{after: away, at_s: 4.0, add: {{name: kitchen/new_duck, asset: duck, onto: kitchen/table_0,
      offset_xy_m: [0.35, 0.2]}}}}
  - {{after: away, at_s: 5.0, set_state: {{object: kitchen/refrigerator_0, state: open}}}}
"""
ROBOT2 = f"""
name: fleet_robot2
{SCENE}{CAMERA}
segments:
  - {{coverage: {{rooms: [living_room, dining_room]}}}}
"""
ROBOT3 = f"""
name: fleet_robot3
{SCENE}{CAMERA}
segments:
  - {{coverage: {{rooms: [bedroom, bathroom]}}}}
"""
ROBOTS = {"robot1": ROBOT1, "robot2": ROBOT2, "robot3": ROBOT3}


@dataclass
class FleetRunConfig:
    """How the demo runs (rendering, push cadence, evaluation)."""

    rate_hz: float = 3.0
    width: int = 320
    height: int = 240
    push_period_s: float = 5.0
    min_frames_seen: int = 10
    max_distance_m: float = 0.3
    seed: int = 0
    house_seed: int = 0
    features_mode: str = "off"


@dataclass
class FleetReport:
    """Figures of one run (see :func:`run_fleet`)."""

    frames: dict[str, int] = field(default_factory=dict)
    rooms_visited: dict[str, list[str]] = field(default_factory=dict)
    robot_objects: dict[str, int] = field(default_factory=dict)
    fleet_objects: int = 0
    fused_objects: int = 0
    gt_considered: int = 0
    recall: float = 0.0
    duplicates: int = 0
    duplicate_rate: float = 0.0
    missed: list[str] = field(default_factory=list)
    robot_recall: dict[str, float] = field(default_factory=dict)
    union_found: int = 0
    merge_recall: float = 0.0
    changes_by_robot: dict[str, int] = field(default_factory=dict)
    push_failures: int = 0
    mug_answer: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def _mem_objects(objects: Any) -> list[MemObject]:
    return [
        MemObject(o.id, o.label, np.asarray(o.center), np.asarray(o.size), o.present, o.last_seen)
        for o in objects
    ]


class FleetWorld:
    """One simulated house, three camera paths, the episode events; frames in time order."""

    def __init__(self, config: FleetRunConfig) -> None:
        from memory_sim.episode import EpisodeRunner, parse_episode, plan_trajectory
        from memory_sim.simulator import SimConfig

        sim_config = SimConfig()
        sim_config.rate_hz = config.rate_hz
        sim_config.seed = config.seed
        sim_config.camera.width_px, sim_config.camera.height_px = config.width, config.height
        episodes = {
            r: parse_episode(text.replace("@HOUSE_SEED@", str(config.house_seed)), f"{r}.yaml")
            for r, text in ROBOTS.items()
        }
        # robot1's episode owns the events; its runner owns the one simulator everybody sees.
        self.runner = EpisodeRunner(episodes["robot1"], sim_config)
        scene = self.runner.scene
        self.trajectories = {r: plan_trajectory(e, scene) for r, e in episodes.items()}
        self.dt = 1.0 / config.rate_hz
        self.duration = max(t.duration for t in self.trajectories.values())

    def frames(self) -> Any:
        """Yield (robot id, SimStep) for every robot in view at each tick, in time order."""
        n = math.floor(self.duration / self.dt + 1e-9)
        for i in range(1, n + 1):
            t = i * self.dt
            self.runner.apply_events_until(t)
            for robot, traj in self.trajectories.items():
                if t <= traj.duration:
                    yield robot, self.runner.sim.observe(traj.pose_at(t), t)

    def ground_truth(self) -> dict[str, Any]:
        """Return the world's ground truth (visibility over all robots' frames)."""
        return self.runner.ground_truth()

    def close(self) -> None:
        """Release the simulator."""
        self.runner.close()


def where_is(fleet: FleetMemory, label: str) -> dict[str, Any]:
    """Answer "where is the <label>" from the fleet memory (best present object)."""
    found = fleet.query(QueryRequest(text=label, k=3))
    if not found:
        return {"answer": None}
    best = found[0].obj
    return {
        "answer": best.id,
        "label": best.label,
        "center": [round(float(v), 3) for v in best.center],
        "present": bool(best.present),
        "seen_by": sorted(fleet.fleet_objects[best.id].sources),
    }


def run_fleet(
    store: FleetStore, config: FleetRunConfig | None = None, ask: Any = None
) -> FleetReport:
    """Run the three robots in one world, pushing to ``store``; evaluate the fleet memory.

    Args:
        store: an open, migrated fleet store (emptied by the caller).
        config: rendering, cadence and evaluation settings.
        ask: optional ``(label) -> dict`` answering "where is the <label>" for robot3 (e.g.
            through the fleet_memory node); default: the in-process fleet memory.
    """
    config = config or FleetRunConfig()
    t0 = time.monotonic()
    world = FleetWorld(config)
    memory_config = SceneMemoryConfig()
    memory_config.features.mode = config.features_mode
    robots = {r: SceneMemory(memory_config) for r in ROBOTS}
    syncs = {r: FleetSync(store, r, store.map_frame) for r in ROBOTS}
    fleet_config = FleetMemoryConfig()
    fleet_config.features.mode = config.features_mode
    fleet = FleetMemory(store, fleet_config)
    report = FleetReport()
    last_push = {r: 0.0 for r in ROBOTS}
    rooms: dict[str, set[str]] = {r: set() for r in ROBOTS}
    try:
        for robot, step in world.frames():
            report.frames[robot] = report.frames.get(robot, 0) + 1
            rooms[robot].add(step.truth.room)
            try:
                robots[robot].ingest(step.frame)
            except InvalidInput as err:
                log.info("%s dropped a frame: %s", robot, err)
            if step.frame.stamp - last_push[robot] >= config.push_period_s:
                last_push[robot] = step.frame.stamp
                memory = robots[robot]
                gone = absence_stamps(memory.short_term.events())
                if not syncs[robot].push(memory.objects.values(), gone).ok:
                    report.push_failures += 1
        for robot, memory in robots.items():
            gone = absence_stamps(memory.short_term.events())
            result = syncs[robot].push(memory.objects.values(), gone)
            report.push_failures += not result.ok
        fleet.refresh()
        gt = world.ground_truth()
    finally:
        world.close()
    truth = gt_objects_at(gt)
    fleet_objs = list(fleet.objects.values())
    metrics = match_objects(
        truth, _mem_objects(fleet_objs), config.min_frames_seen, config.max_distance_m
    )
    report.rooms_visited = {r: sorted(v) for r, v in rooms.items()}
    report.robot_objects = {r: len(m.objects) for r, m in robots.items()}
    report.fleet_objects = len(fleet_objs)
    report.fused_objects = sum(len(f.sources) > 1 for f in fleet.fleet_objects.values())
    report.gt_considered = metrics.gt_considered
    report.recall = metrics.recall
    report.duplicates = metrics.duplicates
    report.duplicate_rate = metrics.duplicate_rate
    report.missed = metrics.missed
    union: set[int] = set()  # true objects some robot remembers: what the merge can keep
    for r, m in robots.items():
        robot_metrics = match_objects(
            truth, _mem_objects(m.objects.values()), config.min_frames_seen, config.max_distance_m
        )
        report.robot_recall[r] = robot_metrics.recall
        union.update(i for i, _, _ in robot_metrics.matches)
    kept = {i for i, _, _ in metrics.matches} & union
    report.union_found = len(union)
    report.merge_recall = len(kept) / len(union) if union else float("nan")
    for change in store.changes(max_results=100000):
        report.changes_by_robot[change.robot_id] = (
            report.changes_by_robot.get(change.robot_id, 0) + 1
        )
    answer = ask("mug") if ask is not None else where_is(fleet, "mug")
    mugs = [g for g in truth if g.label == "mug" and g.present]
    if answer.get("center") is not None and mugs:
        c = np.asarray(answer["center"], float)
        nearest = min(mugs, key=lambda g: float(np.linalg.norm(g.center - c)))
        answer["nearest_true_mug"] = nearest.name
        answer["error_m"] = round(float(np.linalg.norm(nearest.center - c)), 3)
    report.mug_answer = answer
    report.duration_s = time.monotonic() - t0
    return report


def _ros_ask(store_url: str, config: FleetRunConfig) -> tuple[Any, Any]:
    """Start a fleet_memory node in-process and return (ask function, shutdown function)."""
    import threading

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from memory_interfaces.srv import QueryObjects
    from memory_node.ros.fleet_memory_node import FleetMemoryNode

    rclpy.init(
        args=[
            "--ros-args",
            "-p",
            f"storage.url:={store_url}",
            "-p",
            f"features.mode:='{config.features_mode}'",  # quoted: YAML reads off as false
        ]
    )
    node = FleetMemoryNode()
    client_node = Node("robot3_client", namespace="robot3")
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    executor.add_node(client_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()

    def ask(label: str) -> dict[str, Any]:
        client = client_node.create_client(QueryObjects, "/fleet_memory/query_objects")
        if not client.wait_for_service(timeout_sec=20.0):
            return {"answer": None, "error": "fleet_memory service not available"}
        req = QueryObjects.Request(text=label, k=3)
        done = threading.Event()
        future = client.call_async(req)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(30.0) or not future.result().success:
            return {"answer": None, "error": "no answer"}
        objs = future.result().objects
        if not objs:
            return {"answer": None}
        p = objs[0].pose.position
        return {
            "answer": objs[0].id,
            "label": objs[0].label,
            "center": [round(p.x, 3), round(p.y, 3), round(p.z, 3)],
            "via": "ROS service /fleet_memory/query_objects",
        }

    def shutdown() -> None:
        executor.shutdown()
        node.destroy_node()
        client_node.destroy_node()
        rclpy.try_shutdown()

    return ask, shutdown


def main(argv: list[str] | None = None) -> None:
    """Run the demo and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default="", help="storage URL (default: SQLite in --out)")
    p.add_argument("--out", default="output/fleet_demo")
    p.add_argument("--rate-hz", type=float, default=3.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--push-period-s", type=float, default=5.0)
    p.add_argument(
        "--house-seed", type=int, default=0, help="procedural house (0 tuned on; 1, 4 held out)"
    )
    p.add_argument("--features", default="off", choices=("off", "label"))
    p.add_argument("--ros", action="store_true", help="ask robot3's question over ROS")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    url = args.store or f"sqlite:///{(out / 'fleet.db').resolve()}"
    store = open_store(url, FleetConfig(), migrate=True)
    store.replace_all([], [])
    config = FleetRunConfig(
        rate_hz=args.rate_hz,
        width=args.width,
        height=args.height,
        push_period_s=args.push_period_s,
        house_seed=args.house_seed,
        features_mode=args.features,
    )
    ask, shutdown = _ros_ask(url, config) if args.ros else (None, None)
    try:
        report = run_fleet(store, config, ask)
    finally:
        if shutdown is not None:
            shutdown()
        store.close()
    (out / "summary.json").write_text(json.dumps(asdict(report), indent=2))
    print(f"frames per robot: {report.frames}")
    print(f"rooms visited: {report.rooms_visited}")
    print(f"objects per robot: {report.robot_objects}; fleet: {report.fleet_objects} "
          f"({report.fused_objects} seen by several robots)")  # fmt: skip
    print(
        f"fleet recall {report.recall:.3f} of {report.gt_considered} objects seen by any robot; "
        f"duplicates {report.duplicates} ({100 * report.duplicate_rate:.1f} %)"
    )
    print(f"per-robot recall: { {r: round(v, 3) for r, v in report.robot_recall.items()} }")
    print(
        f"merge recall {report.merge_recall:.3f}: of the {report.union_found} true objects some "
        "robot remembers, the share the fleet memory has"
    )
    print(f"fleet changes by robot: {report.changes_by_robot}")
    print(f"robot3 (never in the kitchen) asks 'where is the mug': {report.mug_answer}")
    print(f"wrote {out / 'summary.json'} ({report.duration_s:.0f} s)")


if __name__ == "__main__":
    main()
