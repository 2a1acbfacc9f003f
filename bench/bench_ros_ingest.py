"""Ingestion through ROS: a publisher process feeds ``scene_memory`` (another process).

For each input kind (``masks``: simulator frames with instance masks and labels, pre-rendered
once; ``geometric``: the real ICL-NUIM living-room frames without masks, looped, segmented by
the built-in geometric segmenter), each Fast DDS set-up (``default`` transports, or the
package's ``profile`` config/fastdds_large_data.xml in BOTH processes) and each publisher
reliability (reliable first, then best-effort: the node's best_available subscriptions follow
the publisher), a publisher process sends 640x480 RGB-D at 5/10/15/30 Hz. The node's counters are
read from /diagnostics; queries (~/query_objects) are timed while it ingests and when idle; the
node's CPU time comes from /proc.

Prints a table and writes ``output/bench/ros_ingest.json``::

    python -m bench.bench_ros_ingest [--quick] [--kinds masks geometric] [--setups default profile]

The default-transport runs are the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.ros.environment import PROFILE_ENV, large_data_profile

REPO = Path(__file__).resolve().parents[1]
# the shared data directory beside the checkout (or beside the worktrees' parent)
ICL = next(
    (
        p / "shared" / "data" / "icl_nuim_livingroom"
        for p in REPO.parents
        if (p / "shared" / "data" / "icl_nuim_livingroom").is_dir()
    ),
    REPO.parent / "shared" / "data" / "icl_nuim_livingroom",
)
OUT = REPO / "output" / "bench" / "ros_ingest.json"
N_FRAMES = 30  # distinct simulator frames, published in a loop
TOPICS = ["rgb/image", "depth/image", "rgb/camera_info", "camera/pose"]


# --- publisher process ---------------------------------------------------------------------
def render_frames(kind: str, n: int, width: int, height: int) -> list[Any]:
    """Return ``n`` frames: consecutive simulator frames with masks, or the ICL-NUIM frames.

    Simulator frames are rendered once and kept in ``output/bench/cache`` for later runs.
    """
    if kind == "geometric":
        from bench import icl_segmentation

        icl_segmentation.DATA = str(ICL)
        return icl_segmentation.load_frames()
    cache = OUT.parent / "cache" / f"ros_ingest_sim_{n}_{width}x{height}.pkl"
    if cache.is_file():
        with cache.open("rb") as fh:
            return list(pickle.load(fh))
    from memory_sim.episode import EpisodeRunner, parse_episode
    from memory_sim.procedural import ProceduralConfig
    from memory_sim.ros_publisher import default_episode_text
    from memory_sim.simulator import SimConfig

    cfg = SimConfig()
    cfg.camera.width_px, cfg.camera.height_px = width, height
    episode = parse_episode(default_episode_text(ProceduralConfig()), "<procedural>")
    runner = EpisodeRunner(episode, cfg)
    frames = [runner.step().frame for _ in range(min(n, runner.frame_count))]
    runner.close()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as fh:
        pickle.dump(frames, fh)
    return frames


def publish(args: argparse.Namespace) -> None:
    """Run the publisher process: wait for the node, send ``--frames`` frames at ``--rate`` Hz."""
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from memory_interfaces.msg import InstanceLabels
    from memory_node.ros import conversions as conv

    frames = render_frames(args.kind, N_FRAMES, args.width, args.height)
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    rel = (
        ReliabilityPolicy.RELIABLE
        if args.reliability == "reliable"
        else (ReliabilityPolicy.BEST_EFFORT)
    )
    qos = QoSProfile(depth=5, reliability=rel)
    pubs = {
        "rgb": node.create_publisher(Image, "rgb/image", qos),
        "depth": node.create_publisher(Image, "depth/image", qos),
        "info": node.create_publisher(CameraInfo, "rgb/camera_info", qos),
        "pose": node.create_publisher(PoseStamped, "camera/pose", qos),
        "instance": node.create_publisher(Image, "instance/image", qos),
        "labels": node.create_publisher(InstanceLabels, "instance/labels", qos),
    }
    msgs = []  # converted once: a camera driver does not pay Python conversions
    for f in frames:
        h = Header(frame_id="camera_optical_frame")
        m = {
            "info": conv.camera_info_of(f.K, f.depth.shape[1], f.depth.shape[0], h),
            "rgb": conv.rgb_to_image(f.rgb, h),
            "depth": conv.depth_to_image(f.depth.astype(np.float32), h),
            "pose": PoseStamped(header=Header(frame_id="map")),
        }
        m["pose"].pose = conv.matrix_to_pose(f.map_T_camera)
        if args.kind == "masks" and f.instance is not None:
            m["instance"] = conv.instances_to_image(f.instance, h)
            m["labels"] = conv.labels_msg(f.instance_labels or {}, f.instance_states, h)
        msgs.append(m)
    end = time.monotonic() + 30.0
    while time.monotonic() < end and any(
        pubs[s].get_subscription_count() == 0 for s in ("rgb", "depth", "info", "pose")
    ):
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.monotonic()
    for i in range(args.frames):
        stamp = conv.sec_to_time(time.time())
        for name, msg in msgs[i % len(msgs)].items():
            msg.header.stamp = stamp
            pubs[name].publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / args.rate - time.monotonic()))
    time.sleep(0.5)
    print(json.dumps({"published": args.frames, "seconds": time.monotonic() - t0}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


# --- node process and client ---------------------------------------------------------------
def env_for(setup: str) -> dict[str, str]:
    """Process environment with the project's profile, or Fast DDS defaults."""
    env = dict(os.environ)
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    env[PROFILE_ENV] = str(large_data_profile()) if setup == "profile" else ""  # '' = defaults
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingestion_values(msg: Any) -> dict[str, str] | None:
    """Return the key-values of scene_memory's ingestion status in a DiagnosticArray, or None."""
    for s in msg.status:
        if s.name.endswith("scene_memory: ingestion"):
            return {kv.key: kv.value for kv in s.values}
    return None


class Client:
    """Reads the node's /diagnostics counters and times ~/query_objects."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from memory_interfaces.srv import QueryObjects

        rclpy.init()
        self.node = rclpy.create_node("bench_ros_ingest")
        self.values: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.query_client = self.node.create_client(QueryObjects, "/scene_memory/query_objects")
        self.QueryObjects = QueryObjects
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_diag(self, msg: Any) -> None:
        values = ingestion_values(msg)
        if values is not None:
            self.values = values

    def counter(self, key: str) -> int:
        """Return a counter of the last diagnostics message (0 before any)."""
        return int(self.values.get(key, "0"))

    def query_ms(self, text: str = "chair", timeout: float = 5.0) -> float | None:
        """One query's round trip in ms (None when it failed or timed out)."""
        req = self.QueryObjects.Request(text=text, k=5)
        done = threading.Event()
        t0 = time.perf_counter()
        future = self.query_client.call_async(req)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout) or not future.result().success:
            return None
        return (time.perf_counter() - t0) * 1e3

    def close(self) -> None:
        """Stop spinning and shut rclpy down."""
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def start_node(kind: str, setup: str) -> subprocess.Popen:
    """memory_bringup with scene_memory only, configured for the input kind."""
    cmd = [sys.executable, "-m", "memory_node.ros.bringup", "--nodes", "scene_memory"]
    cmd += ["--log-level", "warn", "-p", "inputs.qos_depth:=5", "-p", "diagnostics.period_s:=0.5"]
    if kind == "geometric":
        cmd += ["-p", "inputs.use_masks:=false", "-p", "segmentation.mode:=geometric"]
        cmd += ["-p", "features.mode:='off'"]
    return subprocess.Popen(cmd, env=env_for(setup), stdout=subprocess.DEVNULL)


def percentile(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def run_one(
    client: Client, node: subprocess.Popen, kind: str, setup: str, reliability: str,
    rate: float, frames: int,
) -> dict[str, Any]:  # fmt: skip
    """One publisher run against a running node; returns its figures."""
    time.sleep(1.2)  # a fresh diagnostics message
    before = {k: client.counter(k) for k in ["frames paired", "frames ingested", *[
        f"delivered {t}" for t in TOPICS]]}  # fmt: skip
    cpu0 = cpu_seconds(node.pid)
    cmd = [sys.executable, "-m", "bench.bench_ros_ingest", "publish", "--kind", kind,
           "--rate", str(rate), "--frames", str(frames), "--reliability", reliability]  # fmt: skip
    pub = subprocess.Popen(cmd, env=env_for(setup), stdout=subprocess.PIPE, text=True)
    busy: list[float] = []
    failed = 0
    started = None
    while pub.poll() is None:
        if started is None and client.counter("frames ingested") > before["frames ingested"]:
            started = time.monotonic()
        if started is not None:
            ms = client.query_ms()
            if ms is None:
                failed += 1
            else:
                busy.append(ms)
        time.sleep(0.1)
    lines = [ln for ln in pub.stdout.read().splitlines() if ln.startswith('{"published"')]
    if not lines:
        raise RuntimeError(f"the publisher failed (exit code {pub.returncode})")
    out = json.loads(lines[-1])
    time.sleep(2.0)  # the last frames are ingested and reported
    ingest_s = max(1e-6, (time.monotonic() - 2.0 - (started or time.monotonic())))
    cpu = cpu_seconds(node.pid) - cpu0
    idle = [ms for ms in (client.query_ms() for _ in range(20)) if ms is not None]
    d = {k: client.counter(k) - v for k, v in before.items()}
    n = out["published"]
    ingested = d["frames ingested"]
    return {
        "kind": kind,
        "setup": setup,
        "publisher": reliability,
        "rate_hz": rate,
        "published": n,
        "delivered_pct": {t: 100.0 * d[f"delivered {t}"] / n for t in TOPICS},
        "delivered_min_pct": min(100.0 * d[f"delivered {t}"] / n for t in TOPICS),
        "paired_pct": 100.0 * d["frames paired"] / n,
        "ingested": ingested,
        "ingested_per_s": ingested / ingest_s,
        "query_ms_ingesting": {
            "p50": percentile(busy, 50),
            "p95": percentile(busy, 95),
            "n": len(busy),
            "failed": failed,
        },
        "query_ms_idle": {"p50": percentile(idle, 50), "p95": percentile(idle, 95)},
        "node_cpu_ms_per_frame": 1e3 * cpu / max(1, ingested),
    }


def main() -> None:
    """Run the matrix (or the publisher process with ``publish``); print and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "publish"])
    parser.add_argument("--kind", default="masks", choices=["masks", "geometric"])
    parser.add_argument("--kinds", nargs="+", default=["masks", "geometric"])
    parser.add_argument("--setups", nargs="+", default=["default", "profile"])
    parser.add_argument("--rates", nargs="+", type=float, default=[5.0, 10.0, 15.0, 30.0])
    parser.add_argument("--reliabilities", nargs="+", default=["reliable", "best_effort"])
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--frames", type=int, default=0, help="frames per run (0 = 8 s worth)")
    parser.add_argument("--reliability", default="best_effort")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--quick", action="store_true", help="15 Hz only, 60 frames per run")
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args()
    if args.mode == "publish":
        publish(args)
        return
    if args.quick:
        args.rates = [15.0]
        args.frames = args.frames or 60
    kinds = [k for k in args.kinds if k != "geometric" or ICL.is_dir()]
    if "masks" in kinds:
        print("rendering the simulator frames (once)", flush=True)
        render_frames("masks", N_FRAMES, args.width, args.height)
    if len(kinds) < len(args.kinds):
        print(f"ICL-NUIM frames not found at {ICL}: geometric runs skipped")
    load = os.getloadavg()
    results = []
    client = Client()
    try:
        for kind in kinds:
            for setup in args.setups:
                node = start_node(kind, setup)
                try:
                    end = time.monotonic() + 120.0
                    while "models" not in client.values and time.monotonic() < end:
                        time.sleep(0.2)
                    if not client.query_client.wait_for_service(timeout_sec=60.0):
                        raise SystemExit("scene_memory did not come up")
                    for reliability in args.reliabilities:
                        for rate in args.rates:
                            frames = args.frames or int(8 * rate)
                            r = run_one(client, node, kind, setup, reliability, rate, frames)
                            results.append(r)
                            print(
                                f"{kind:9s} {setup:7s} {reliability:11s} {rate:4.0f} Hz: "
                                f"delivered {r['delivered_min_pct']:5.1f} %  paired "
                                f"{r['paired_pct']:5.1f} %  ingested {r['ingested_per_s']:5.1f}/s"
                                f"  query p50/p95 {r['query_ms_ingesting']['p50'] or 0:.1f}/"
                                f"{r['query_ms_ingesting']['p95'] or 0:.1f} ms (idle "
                                f"{r['query_ms_idle']['p50'] or 0:.1f}/"
                                f"{r['query_ms_idle']['p95'] or 0:.1f})  CPU "
                                f"{r['node_cpu_ms_per_frame']:.0f} ms/frame",
                                flush=True,
                            )
                finally:
                    node.terminate()
                    node.wait(30)
                    client.values = {}
    finally:
        client.close()
    report = {
        "benchmark": "ros_ingest",
        "command": " ".join(["python -m bench.bench_ros_ingest", *sys.argv[1:]]),
        "load_average_at_start": load,
        "cpus": os.cpu_count(),
        "baseline": "setup=default (Fast DDS default transports) in the same run",
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
