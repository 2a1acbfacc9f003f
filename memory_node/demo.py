"""The main job (``make demo``): simulator -> memory nodes -> a scripted client, with ground truth.

Three processes talk over real DDS: ``memory_bringup`` (scene_memory + policy_memory, on sim
time), ``sim_publisher`` playing an episode of the built-in simulator, and this client. The client
follows the episode by ``/clock``, asks the memory questions while it runs and at the end
("where is the mug?", "what changed since t?", "what is on the kitchen table?", "where did you
last see X?"), prints each answer beside the ground truth, drives the policy memory with tokens
made from the camera frames, and writes into the output folder:

* ``topdown.png``: remembered objects (present and absent) over a top-down render, against
  the ground-truth boxes, with the camera path;
* ``frames/*.png``: a few RGB / instance frames;
* ``summary.json``: answers, ground truth, object and change metrics, timings;
* ``memory.db``: the saved memory; ``ground_truth.json``; logs of the two node processes.

``--services-only`` skips the simulator: the nodes come up and every service is called once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.types import ChangeEvent
from memory_node.evaluation import (
    KINDS,
    MemObject,
    change_metrics,
    gt_objects_at,
    match_objects,
)

REPO = Path(__file__).resolve().parents[1]


def find_episode(name: str) -> Path:
    """Path of an episode: a file path, or a name in the package's episodes folder."""
    candidates = [Path(name)]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("memory_node")) / "episodes" / name)
    except Exception:
        pass
    candidates.append(REPO / "sim" / "episodes" / name)
    for c in candidates:
        for path in (c, c.with_suffix(".yaml")):
            if path.is_file():
                return path
    raise SystemExit(
        f"demo: episode {name!r} not found (looked in {[str(c) for c in candidates]})"
    )


@dataclass
class EpisodePlan:
    """Times of the episode the client needs (sim seconds)."""

    name: str
    duration_s: float
    frame_count: int
    segments: dict[str, tuple[float, float]]


def plan_episode(path: Path, rate_hz: float) -> EpisodePlan:
    """Duration, frame count and named segments of an episode, without rendering."""
    from memory_sim.episode import load_episode, plan_trajectory

    episode = load_episode(str(path))
    trajectory = plan_trajectory(episode, episode.build_scene())
    return EpisodePlan(
        name=episode.name,
        duration_s=float(trajectory.duration),
        frame_count=int(np.floor(trajectory.duration * rate_hz + 1e-9)),
        segments={k: (float(v[0]), float(v[1])) for k, v in trajectory.segments.items()},
    )


class Processes:
    """The node processes of the demo, with their logs; stopped with SIGINT at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str]) -> None:
        """Start ``cmd`` with stdout/stderr into ``<out>/<name>.log``."""
        log = open(self.out / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )

    def check(self) -> None:
        """Exit with the log's tail when a process died."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.out / f"{name}.log").read_text()[-3000:]
                raise SystemExit(f"demo: {name} exited with code {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGINT every process, then kill what is still alive after 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class Monitor:
    """What the client hears on topics: sim time, change events, a few camera frames."""

    sim_time: float = 0.0
    events: list[ChangeEvent] = field(default_factory=list)
    frames: list[tuple[float, np.ndarray, np.ndarray]] = field(default_factory=list)
    wanted_frame_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def attach_monitor(node: Any, monitor: Monitor) -> None:
    """Subscribe ``node`` to /clock, scene_memory/changes and the camera (for snapshots)."""
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from memory_interfaces.msg import ObjectChange
    from memory_node.ros import conversions as conv

    def on_clock(msg: Clock) -> None:
        monitor.sim_time = max(monitor.sim_time, conv.time_to_sec(msg.clock))

    def on_change(msg: ObjectChange) -> None:
        with monitor.lock:
            monitor.events.append(conv.msg_to_change(msg))

    # The last few messages of each stream, keyed by stamp; a snapshot is taken from the first
    # stamp at or after the next wanted time for which both the rgb and the instance image came.
    recent: dict[str, dict[float, Image]] = {"rgb": {}, "instance": {}}

    def on_image(stream: str, msg: Image) -> None:
        t = conv.time_to_sec(msg.header.stamp)
        recent[stream][t] = msg
        for old in sorted(recent[stream])[:-8]:
            del recent[stream][old]
        if not monitor.wanted_frame_times or t < monitor.wanted_frame_times[0]:
            return
        other = recent["instance" if stream == "rgb" else "rgb"]
        if t in other:
            monitor.wanted_frame_times.pop(0)
            rgb_msg, inst_msg = (msg, other[t]) if stream == "rgb" else (other[t], msg)
            with monitor.lock:
                monitor.frames.append(
                    (t, conv.image_to_rgb(rgb_msg), conv.image_to_instances(inst_msg))
                )

    node.create_subscription(Clock, "/clock", on_clock, 10)
    node.create_subscription(ObjectChange, "scene_memory/changes", on_change, 200)
    for stream, topic in (("rgb", "rgb/image"), ("instance", "instance/image")):
        node.create_subscription(
            Image, topic, lambda m, s=stream: on_image(s, m), qos_profile_sensor_data
        )


def objects_of(response: Any) -> list[MemObject]:
    """MemObject records of a QueryObjects or SceneGraph answer's objects."""
    from memory_node.ros.conversions import time_to_sec

    return [
        MemObject(
            id=o.id,
            label=o.label,
            center=np.array([o.pose.position.x, o.pose.position.y, o.pose.position.z]),
            size=np.array([o.size.x, o.size.y, o.size.z]),
            present=bool(o.present),
            last_seen=time_to_sec(o.last_seen),
            state=o.state,
        )
        for o in response
    ]


def fmt_xyz(p: Any) -> str:
    """'(x, y, z)' with centimetre precision."""
    return "(" + ", ".join(f"{float(v):.2f}" for v in p) + ")"


def answer_where(client: Any, label: str, k: int = 3) -> dict[str, Any]:
    """Ask 'where is the <label>?' and return the answer as a record."""
    res = client.query(text=label, k=k)
    objs = objects_of(res.objects) if res.success else []
    same = [o for o in objs if o.label == label]
    objs = same or objs
    return {
        "question": f"where is the {label}?",
        "success": res.success,
        "message": res.message,
        "answers": [
            {
                "id": o.id,
                "label": o.label,
                "position": o.center.round(3).tolist(),
                "present": o.present,
                "last_seen_s": round(o.last_seen, 2),
            }
            for o in objs
        ],
    }


def gt_where(gt: dict[str, Any], label: str, t: float) -> list[dict[str, Any]]:
    """Ground truth of every object labelled ``label`` at sim time ``t``."""
    return [
        {"name": g.name, "position": g.center.round(3).tolist(), "present": g.present}
        for g in gt_objects_at(gt, t)
        if g.label == label
    ]


def print_where(record: dict[str, Any], truth: list[dict[str, Any]]) -> None:
    """Print a 'where is' answer beside the ground truth."""
    print(f"\nQ: {record['question']}")
    for a in record["answers"]:
        state = "" if a["present"] else f"  (not there any more; last seen t={a['last_seen_s']} s)"
        print(f"   memory: {a['label']} [{a['id']}] at {fmt_xyz(a['position'])}{state}")
    if not record["answers"]:
        print(f"   memory: nothing ({record['message']})")
    for g in truth:
        where = fmt_xyz(g["position"]) if g["present"] else "removed"
        print(f"   truth:  {g['name']} at {where}")


def run_services_only(client: Any) -> dict[str, Any]:
    """Call every service once on whatever the memory holds and print the answers."""
    out: dict[str, Any] = {}
    q = client.query(text="mug")
    print(f"query_objects('mug'): success={q.success} objects={len(q.objects)} {q.message!r}")
    g = client.scene_graph(focus="kitchen", max_tokens=200)
    print(
        f"get_scene_graph: success={g.success} objects={len(g.graph.objects)} "
        f"tokens={g.token_count}\n{g.text}"
    )
    c = client.changes()
    print(f"get_changes: success={c.success} changes={len(c.changes)}")
    path = "/tmp/memory_node_demo_services.db"
    s = client.save(path)
    print(f"save({path}): success={s.success} {s.message!r}")
    ld = client.load(path)
    print(f"load({path}): success={ld.success} {ld.message!r}")
    p = client.policy_step(0, np.ones((4, 512), np.float32), np.ones(512, np.float32))
    print(f"policy_memory/step: success={p.success} bank_size={p.bank_size} {p.message!r}")
    r = client.policy_reset()
    print(f"policy_memory/reset: success={r.success} {r.message!r}")
    out["services"] = "all answered"
    return out


def frame_tokens(rgb: np.ndarray, num_tokens: int = 16, dim: int = 512) -> np.ndarray:
    """(num_tokens, dim) float32 tokens of an image: patch mean colours, fixed projection."""
    h, w = rgb.shape[:2]
    side = int(np.sqrt(num_tokens))
    patches = rgb[: h - h % side, : w - w % side].reshape(side, h // side, side, w // side, 3)
    feats = patches.astype(np.float32).mean(axis=(1, 3)).reshape(num_tokens, 3) / 255.0
    proj = np.random.default_rng(0).standard_normal((3, dim)).astype(np.float32)
    return feats @ proj


def save_frames(out: Path, frames: list[tuple[float, np.ndarray, np.ndarray]]) -> list[str]:
    """Write RGB and colourised instance images side by side; return the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "frames").mkdir(exist_ok=True)
    names = []
    palette = np.random.default_rng(3).integers(40, 255, (4096, 3)).astype(np.uint8)
    for t, rgb, inst in frames:
        colour = palette[inst % 4096]
        colour[inst == 0] = 0
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
        axes[0].imshow(rgb)
        axes[0].set_title(f"rgb, t = {t:.1f} s")
        axes[1].imshow(colour)
        axes[1].set_title(f"instances ({len(np.unique(inst)) - 1} visible)")
        for ax in axes:
            ax.axis("off")
        name = f"frames/frame_{t:07.1f}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        names.append(name)
    return names


def plot_top_down(
    out: Path,
    episode_path: Path,
    gt: dict[str, Any],
    memory: list[MemObject],
    matches: list[tuple[int, str, float]],
    title: str,
) -> str:
    """Top-down picture: render of the house, true boxes, remembered objects, camera path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from memory_sim.episode import load_episode
    from memory_sim.simulator import SimConfig, Simulator

    episode = load_episode(str(episode_path))
    with Simulator(episode.build_scene(), SimConfig()) as sim:
        view = sim.render_top_down(1400)
    fig, ax = plt.subplots(
        figsize=(16, 16 * (view.max_xy[1] - view.min_xy[1]) / (view.max_xy[0] - view.min_xy[0]))
    )
    ax.imshow(
        view.rgb,
        extent=(view.min_xy[0], view.max_xy[0], view.min_xy[1], view.max_xy[1]),
        alpha=0.45,
        origin="upper",
    )
    for room in gt.get("rooms", []):
        (x0, y0), (x1, y1) = room["min_xy"], room["max_xy"]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec="0.3"))
        ax.text(x0 + 0.1, y1 - 0.3, room.get("label") or room["name"], fontsize=11, color="0.2")
    truth = {g.instance_id: g for g in gt_objects_at(gt)}
    for g in truth.values():
        if not g.present or g.frames_seen == 0:
            continue
        ax.add_patch(
            Rectangle(
                tuple(g.box_min[:2]),
                *(g.box_max[:2] - g.box_min[:2]),
                fill=False,
                lw=1.0,
                ec="tab:green",
                ls="--",
            )
        )
    poses = np.array([np.array(f["map_T_camera"])[:2, 3] for f in gt.get("frames", [])])
    if len(poses):
        ax.plot(
            poses[:, 0],
            poses[:, 1],
            "-",
            color="tab:purple",
            lw=0.8,
            alpha=0.6,
            label="camera path",
        )
    present = [m for m in memory if m.present]
    absent = [m for m in memory if not m.present]
    for m in present:
        half = 0.5 * m.size[:2]
        ax.add_patch(
            Rectangle(tuple(m.center[:2] - half), *m.size[:2], fill=False, lw=1.2, ec="tab:red")
        )
        ax.text(m.center[0], m.center[1], m.label, fontsize=6.5, ha="center", va="center")
    if present:
        pc = np.array([m.center for m in present])
        ax.scatter(pc[:, 0], pc[:, 1], s=10, c="tab:red", label="remembered (present)")
    if absent:
        ac = np.array([m.center for m in absent])
        ax.scatter(
            ac[:, 0],
            ac[:, 1],
            s=40,
            marker="x",
            c="tab:orange",
            label="remembered, last seen (absent now)",
        )
    by_id = {m.id: m for m in memory}
    for iid, mid, _ in matches:
        g, m = truth.get(iid), by_id.get(mid)
        if g is not None and m is not None:
            ax.plot([g.center[0], m.center[0]], [g.center[1], m.center[1]], "-", c="k", lw=0.6)
    ax.plot([], [], "--", c="tab:green", label="ground-truth boxes (end of episode)")
    ax.set_aspect("equal")
    ax.set_xlim(view.min_xy[0], view.max_xy[0])
    ax.set_ylim(view.min_xy[1], view.max_xy[1])
    ax.set_xlabel("x (m, map)")
    ax.set_ylabel("y (m, map)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "topdown.png", dpi=90)
    plt.close(fig)
    return "topdown.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the demo."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episode", default="tour_changes_tour", help="episode name or YAML path")
    p.add_argument("--output", default=str(REPO / "output" / "demo"), help="output folder")
    p.add_argument("--rate-hz", type=float, default=5.0, help="simulated camera rate")
    p.add_argument(
        "--fps",
        type=float,
        default=6.0,
        help="frames per wall-clock second the simulator publishes (0 = as fast as it renders; "
        "faster than the memory ingests means frames are dropped, newest first)",
    )
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--services-only", action="store_true", help="no simulator: call services")
    p.add_argument("--timeout-s", type=float, default=1500.0, help="give up after this long")
    p.add_argument(
        "--viewer",
        default="rerun",
        choices=["rerun", "none"],
        help="rerun: record the memory to OUTPUT/memory.rrd (open it with `rerun FILE`)",
    )
    p.add_argument("--image-every", type=int, default=5, help="Rerun: log every n-th image")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the demo; see the module docstring."""
    import rclpy
    from std_srvs.srv import Trigger
    from tqdm import tqdm

    from memory_node.planner.client import fetch_prompt
    from memory_node.ros.client import MemoryClient
    from memory_node.ros.environment import use_large_data_profile

    args = parse_args(argv)
    use_large_data_profile()  # inherited by the node and simulator processes
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    procs = Processes(out)
    use_sim = not args.services_only
    bringup = [
        sys.executable, "-m", "memory_node.ros.bringup", "--log-level", "info",
        "-p", "inputs.qos_reliability:=reliable",
    ]  # fmt: skip
    rrd = out / "memory.rrd"
    if args.viewer == "rerun":  # written by the viewer node when the nodes stop
        rrd.unlink(missing_ok=True)
        bringup += ["--viewer", "rerun", "--rrd", str(rrd), "--image-every", str(args.image_every)]
    if use_sim:
        episode_path = find_episode(args.episode)
        plan = plan_episode(episode_path, args.rate_hz)
        gt_path = out / "ground_truth.json"
        gt_path.unlink(missing_ok=True)
        bringup.append("--use-sim-time")
        print(
            f"[demo] episode {plan.name}: {plan.duration_s:.0f} s of sim time, "
            f"{plan.frame_count} frames at {args.rate_hz:g} Hz, {args.width}x{args.height}"
        )
    procs.start("nodes", bringup)
    rclpy.init()
    client = MemoryClient(node_name="demo_client")
    summary: dict[str, Any] = {"args": vars(args)}
    try:
        if not use_sim:
            summary.update(run_services_only(client))
            return
        snapshot_times = np.linspace(5.0, 0.95 * plan.duration_s, 6).tolist()
        monitor = Monitor(wanted_frame_times=snapshot_times)
        attach_monitor(client.node, monitor)
        # Ready means policy_memory answers and scene_memory is active (it subscribes to the
        # camera on activation, after loading its text model): frames sent earlier are lost.
        probe = client.node.create_client(Trigger, "policy_memory/reset")
        while not (
            probe.wait_for_service(timeout_sec=0.5)
            and client.node.count_subscribers("depth/image") > 0
        ):
            procs.check()
        procs.start(
            "sim",
            [
                sys.executable,
                "-m",
                "memory_sim.ros_publisher",
                "--ros-args",
                "-p",
                f"episode_path:={episode_path}",
                "-p",
                "loop:=false",
                "-p",
                f"realtime_factor:={args.fps / args.rate_hz}",
                "-p",
                f"rate_hz:={args.rate_hz}",
                "-p",
                f"camera.width_px:={args.width}",
                "-p",
                f"camera.height_px:={args.height}",
                "-p",
                f"ground_truth_path:={gt_path}",
                "--log-level",
                "warn",
            ],
        )
        mid_t = plan.segments.get("tour1", (0.0, plan.duration_s * 0.4))[1] + 1.0
        away_t = plan.segments.get("away", (mid_t, mid_t))[0]
        mid_answer: dict[str, Any] | None = None
        bar = tqdm(
            total=plan.frame_count,
            unit="frame",
            desc="simulating + remembering",
            mininterval=1.0 if sys.stderr.isatty() else 15.0,
        )
        end_t = (plan.frame_count - 0.5) / args.rate_hz
        while monitor.sim_time < end_t or not gt_path.exists():
            procs.check()
            if time.monotonic() - t_start > args.timeout_s:
                raise SystemExit(f"demo: timed out at sim time {monitor.sim_time:.1f} s")
            done = min(plan.frame_count, round(monitor.sim_time * args.rate_hz))
            if done > bar.n:
                bar.set_postfix(events=len(monitor.events), refresh=False)
                bar.update(done - bar.n)
            if mid_answer is None and monitor.sim_time >= mid_t:
                mid_answer = answer_where(client, "mug")
                mid_answer["asked_at_s"] = round(monitor.sim_time, 2)
            time.sleep(0.2)
        bar.update(plan.frame_count - bar.n)
        bar.close()
        time.sleep(2.0)  # let the memory ingest the last frames
        sim_elapsed = time.monotonic() - t_start
        gt = json.loads(gt_path.read_text())
        end = plan.duration_s + 1.0

        print("\n================ questions to the memory, with the ground truth ================")
        answers = []
        if mid_answer is not None:
            print(f"\n(asked during the run, at t = {mid_answer['asked_at_s']} s, after tour 1)")
            print_where(mid_answer, gt_where(gt, "mug", mid_answer["asked_at_s"]))
            answers.append(mid_answer)
        final = answer_where(client, "mug", k=5)
        print_where(final, gt_where(gt, "mug", end))
        answers.append(final)

        changes = client.changes(since_s=away_t, max_results=200)
        reported = {k: 0 for k in KINDS}
        for c in changes.changes:
            reported[KINDS[c.kind]] += 1
        truth_kinds = {
            k: sum(1 for c in gt["changes"] if c["kind"] == k and c["stamp"] >= away_t)
            for k in KINDS
        }
        print(f"\nQ: what changed since t = {away_t:.1f} s?")
        print(
            f"   memory: {len(changes.changes)} changes: "
            + ", ".join(f"{v} {k.lower()}" for k, v in reported.items())
        )
        for c in list(changes.changes)[:8]:
            print(f"     - {KINDS[c.kind].lower():13s} {c.label or '?'} [{c.object_id}]")
        print("   truth:  " + ", ".join(f"{v} {k.lower()}" for k, v in truth_kinds.items()))
        answers.append(
            {
                "question": f"what changed since {away_t:.1f} s?",
                "memory": reported,
                "truth": truth_kinds,
            }
        )

        graph = client.scene_graph(focus="what is on the kitchen table", max_tokens=400)
        tables = [o for o in objects_of(graph.graph.objects) if o.label == "table"]
        kitchen = [z for z in graph.graph.zones if z.label == "kitchen"]
        kitchen_ids = {i for z in kitchen for i in z.object_ids}
        table = next((o for o in tables if o.id in kitchen_ids), tables[0] if tables else None)
        on_table = []
        if table is not None:
            labels = {o.id: o.label for o in graph.graph.objects}
            on_table = sorted(
                labels.get(r.subject_id, r.subject_id)
                for r in graph.graph.relations
                if r.predicate == "on" and r.object_id == table.id
            )
        gt_on = sorted(
            next((g.label for g in gt_objects_at(gt, end) if g.name == r["subject"]), r["subject"])
            for r in gt.get("relations", {}).get("final", [])
            if r["object"] == "kitchen/table_0"
        )
        print("\nQ: what is on the kitchen table?")
        print(
            f"   memory: {', '.join(on_table) or 'nothing'}"
            + (f"  (table {table.id})" if table else "  (no table found)")
        )
        print(f"   truth:  {', '.join(gt_on) or 'nothing'}")
        answers.append(
            {"question": "what is on the kitchen table?", "memory": on_table, "truth": gt_on}
        )

        removed = [c for c in gt["changes"] if c["kind"] == "DISAPPEARED"]
        if removed:
            label = removed[0]["label"]
            rec = answer_where(client, label)
            rec["question"] = f"where did you last see the {label}?"
            print_where(rec, gt_where(gt, label, end))
            answers.append(rec)

        prompt = fetch_prompt(client, "bring the mug to the kitchen table", max_tokens=600)
        print(
            f"\nplanner prompt for 'bring the mug to the kitchen table': "
            f"{prompt.scene_tokens} scene tokens, {prompt.num_changes} changes"
        )
        (out / "planner_prompt.txt").write_text(
            "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt.messages)
        )

        # The policy memory: one step per saved camera frame (perceptual tokens from the image).
        policy = []
        with monitor.lock:
            frames = list(monitor.frames)
        client.policy_reset()
        for step, (_, rgb, _) in enumerate(frames):
            tokens = frame_tokens(rgb)
            t0 = time.perf_counter()
            res = client.policy_step(step, tokens, tokens.mean(axis=0))
            policy.append(
                {
                    "step": step,
                    "success": res.success,
                    "bank_size": res.bank_size,
                    "round_trip_ms": round(1e3 * (time.perf_counter() - t0), 2),
                }
            )
        print(
            f"\npolicy memory: {len(policy)} steps, bank size "
            f"{policy[-1]['bank_size'] if policy else 0}"
        )

        everything = client.query(k=1000)
        memory = objects_of(everything.objects)
        metrics = match_objects(gt_objects_at(gt, end), memory, min_frames_seen=10)
        with monitor.lock:
            events = list(monitor.events)
        # delays from each change's first view (frame truth); the consolidated log as a planner
        # reads it after the episode (get_changes) beside the events as published
        frames_truth = gt.get("frames")
        cm = change_metrics(gt["changes"], events, since_s=away_t, frames=frames_truth)
        from memory_node.ros.conversions import msg_to_change

        answered = client.changes(max_results=100000).changes
        logged = [msg_to_change(c) for c in reversed(answered)]
        cm_log = change_metrics(gt["changes"], logged, since_s=away_t, frames=frames_truth)
        saved = client.save(str((out / "memory.db").resolve()))
        title = (
            f"{plan.name}: {metrics.found}/{metrics.gt_considered} objects seen in 10+ frames "
            f"remembered ({100 * metrics.recall:.0f}%), {metrics.duplicates} duplicates, "
            f"median centroid error {100 * metrics.median_centroid_error_m:.1f} cm"
        )
        picture = plot_top_down(out, episode_path, gt, memory, metrics.matches, title)
        frame_files = save_frames(out, frames)
        print("\n================ summary ================")
        print(title)
        for title_cm, table in (("published", cm), ("change log", cm_log)):
            print(f" changes, {title_cm}:")
            for k, m in table.items():
                print(
                    f"  {k.lower():13s} truth {m.gt:3d}  reported {m.reported:3d}  "
                    f"precision {m.precision:.2f}  recall {m.recall:.2f}  delay median / max "
                    f"{m.median_delay_s:.1f} / {m.max_delay_s:.1f} s"
                )
        summary.update(
            {
                "episode": plan.name,
                "frames": plan.frame_count,
                "answers": answers,
                "objects": {k: v for k, v in asdict(metrics).items() if k != "matches"},
                "changes": {k: asdict(v) for k, v in cm.items()},
                "changes_log": {k: asdict(v) for k, v in cm_log.items()},
                "policy_steps": policy,
                "saved_memory": saved.message,
                "picture": str(out / picture),
                "frame_images": [str(out / f) for f in frame_files],
                "wall_time_s": {
                    "simulation_and_mapping": round(sim_elapsed, 1),
                    "total": round(time.monotonic() - t_start, 1),
                },
            }
        )
        print(f"picture: {out / picture}\nsummary: {out / 'summary.json'}")
        if args.viewer == "rerun":
            print(f"viewer:  rerun {rrd}   (written when the nodes stop)")
    finally:
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        client.close()
        rclpy.try_shutdown()
        procs.stop()


if __name__ == "__main__":
    main()
