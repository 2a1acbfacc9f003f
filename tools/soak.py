"""Soak and fault tests of memory_bringup over real DDS (``make soak``; CI-sized in ``make test``).

Each check starts its own ``memory_bringup`` (own namespace and ROS domain), prints one line of
figures and writes ``output/soak/<check>.json``::

    python tools/soak.py fuzz        --cases 10000   # generated requests/messages over DDS
    python tools/soak.py kill        --kills 100     # SIGKILL during ~/save
    python tools/soak.py autosave    --period 2      # kill, restart from the autosave file
    python tools/soak.py disk-full                   # tmpfs of 1 MB (root) or read-only dir
    python tools/soak.py signals                     # Ctrl-C during ingest, ~/load mid-ingest
    python tools/soak.py lifecycle                   # every transition in every state
    python tools/soak.py concurrency --minutes 30    # sim_publisher + 4 client processes
    python tools/soak.py all --quick                 # every check, CI-sized

A check exits 1 when it saw a crash, a hang (a call unanswered in ``--watchdog-s``), a memory
changed by a rejected request, a lost or corrupt file, or an inconsistent answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test"), str(REPO / "sim")]
OUT = REPO / "output" / "soak"
WATCHDOG_S = 10.0


# --- processes -------------------------------------------------------------------------------


def _env(domain: int) -> dict[str, str]:
    env = os.environ.copy()
    env["ROS_DOMAIN_ID"] = str(domain)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "sim"), env.get("PYTHONPATH", "")])
    return env


def start_bringup(
    domain: int, ns: str, params: list[str] = (), nodes: tuple[str, ...] = ("scene_memory",)
) -> subprocess.Popen:
    """Start memory_bringup (features off: no model load) in namespace ``ns``."""
    cmd = [sys.executable, "-m", "memory_node.ros.bringup", "--namespace", ns, "--nodes", *nodes]
    cmd += ["--log-level", "warn", "-p", "features.mode:='off'"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(
        cmd, env=_env(domain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def start_sim(domain: int, ns: str, rate_hz: float = 12.0) -> subprocess.Popen:
    """Start sim_publisher (320x240, ``rate_hz``) publishing into namespace ``ns``."""
    cmd = [sys.executable, "-c", "from memory_sim.ros_publisher import main; main()"]
    cmd += ["--ros-args", "-r", f"__ns:=/{ns}", "-p", f"rate_hz:={rate_hz}"]
    cmd += ["-p", "camera.width_px:=320", "-p", "camera.height_px:=240", "--log-level", "warn"]
    return subprocess.Popen(
        cmd, env=_env(domain), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
    """Signal ``proc`` and wait; SIGKILL it when it does not end. Return its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            proc.stdout.close()
    return proc.returncode


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class Client:
    """A plain rclpy client in this process: one context, one node, a spinning thread."""

    def __init__(self, domain: int, ns: str, name: str = "soak_client") -> None:
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.ns = ns
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._clients: dict[str, Any] = {}

    def _spin(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.spin()

    def call(self, srv: Any, name: str, req: Any, timeout: float | None = None) -> Any | None:
        """Call ``/<ns>/<name>``; None when unanswered within ``timeout`` (default: watchdog)."""
        timeout = WATCHDOG_S if timeout is None else timeout
        full = f"/{self.ns}/{name}"
        client = self._clients.get(full)
        if client is None:
            client = self._clients[full] = self.node.create_client(srv, full)
        if not client.wait_for_service(timeout_sec=60.0):
            return None
        done = threading.Event()
        future = client.call_async(req)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            return None
        return future.result()

    def close(self) -> None:
        """Shut the client's context down."""
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def observable(client: Client) -> tuple[Any, Any] | None:
    """Return the memory as services show it: the graph (stamp zeroed) and the change log.

    Messages are compared as messages: serialised bytes differ by CDR padding.
    """
    from memory_interfaces.srv import GetObjectChanges, GetSceneGraph

    g = client.call(GetSceneGraph, "scene_memory/get_scene_graph", GetSceneGraph.Request())
    c = client.call(
        GetObjectChanges,
        "scene_memory/get_changes",
        GetObjectChanges.Request(max_results=100000),
    )
    if g is None or c is None:
        return None
    g.graph.header.stamp.sec = g.graph.header.stamp.nanosec = 0
    return g.graph, c.changes


def settled(client: Client, timeout: float = 30.0) -> tuple[Any, Any] | None:
    """Return the observable memory once it no longer changes on its own.

    After a load, the publish timer's next tick recomputes relations and zones: wait until two
    looks 1.5 s apart agree.
    """
    end = time.monotonic() + timeout
    last = observable(client)
    while time.monotonic() < end:
        time.sleep(1.5)
        now = observable(client)
        if now == last:
            return now
        last = now
    return last


def report(name: str, figures: dict[str, Any], failed: bool) -> bool:
    """Print and store the figures of one check; return whether it passed."""
    figures = {"check": name, "passed": not failed, **figures}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"[soak] {name}: {'PASS' if not failed else 'FAIL'} {json.dumps(figures)}", flush=True)
    return not failed


def prepared_memory(path: Path, frames: int = 6, mug_y: float = 0.8) -> None:
    """Write a small memory file (a crate and a mug seen in ``frames`` frames)."""
    from robust_helpers import config, view, world

    from memory_node.core.scene_memory import SceneMemory

    mem = SceneMemory(config())
    for i in range(frames):
        mem.ingest(view(100.0 + 0.1 * i, i, world(mug_y)))
    mem.save(str(path))


def file_objects_fingerprint(path: str) -> str | None:
    """Fingerprint of the objects of a memory file; None when it does not load."""
    from robust_helpers import fingerprint

    from memory_node.core.persistence import load_memory
    from memory_node.core.types import InvalidInput

    try:
        return fingerprint(load_memory(path).objects)
    except InvalidInput:
        return None


@contextlib.contextmanager
def bringup_and_client(
    domain: int, ns: str, params: list[str] = (), nodes: tuple[str, ...] = ("scene_memory",)
) -> Iterator[tuple[subprocess.Popen, Client]]:
    """Run a memory_bringup and a client of it for the ``with`` block; stop both after."""
    proc = start_bringup(domain, ns, params, nodes)
    client = Client(domain, ns)
    try:
        yield proc, client
    finally:
        client.close()
        stop(proc)


def wait_for_objects(client: Client, timeout: float = 90.0) -> bool:
    """Wait until the memory holds objects (frames are being ingested)."""
    from memory_interfaces.srv import QueryObjects

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        res = client.call(QueryObjects, "scene_memory/query_objects", QueryObjects.Request())
        if res is not None and len(res.objects) > 0:
            return True
        time.sleep(0.5)
    return False


# --- fuzz over DDS ---------------------------------------------------------------------------


def check_fuzz(args: argparse.Namespace) -> bool:
    """Send generated service requests and topic messages against memory_bringup over DDS."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from robust_msgs import STREAMS, messages
    from robust_strategies import (
        TOPIC_MUTATIONS,
        changes_request,
        graph_request,
        mutate,
        query_request,
        step_request,
    )

    from memory_interfaces.msg import InstanceLabels
    from memory_interfaces.srv import (
        GetObjectChanges,
        GetSceneGraph,
        LoadMemory,
        PolicyMemoryStep,
        QueryObjects,
        SaveMemory,
    )

    tmp = Path(tempfile.mkdtemp(prefix="soak_fuzz_"))
    good = tmp / "good.db"
    prepared_memory(good)
    policy = ["dim:=16", "capacity:=4", "num_heads:=2", "num_layers:=1", "ffn_dim:=32"]
    params = [f"persistence.load_path:={good}", *policy, "max_tokens:=8"]
    figures: dict[str, Any] = {}
    failed = False
    cfg = settings(
        max_examples=args.cases,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    with bringup_and_client(args.domain, "fuzz", params, ("scene_memory", "policy_memory")) as (
        proc,
        client,
    ):
        end = time.monotonic() + 300.0  # start-up under load (torch for policy_memory)
        while observable(client) is None and time.monotonic() < end and proc.poll() is None:
            time.sleep(1.0)
        assert observable(client) is not None, "bringup did not answer"
        base = settled(client)

        def service_case(srv: Any, name: str, req: Any, read_only: bool, stats: dict) -> None:
            stats["cases"] += 1
            before = observable(client) if not read_only else base
            res = client.call(srv, name, req)
            if proc.poll() is not None:
                stats["crashes"] += 1
                raise RuntimeError(f"bringup exited with {proc.returncode}")
            if res is None:
                stats["hangs"] += 1
                return
            if "internal error" in res.message:
                stats["internal_errors"] += 1
            if read_only or not res.success:
                after = observable(client)
                if after != before:
                    stats["changed_by_rejected"] += 1

        paths = st.one_of(
            st.sampled_from(["", "/", "/dev/zero", "/proc/self/status", str(good), str(tmp)]),
            st.text(max_size=30).map(lambda s: str(tmp / "x") + s),
            st.sampled_from([str(tmp / "no/such/m.db"), str(tmp / "a.db") + "\x00b"]),
        )

        def make_run(srv: Any, name: str, strategy: Any, read_only: bool, stats: dict) -> Any:
            @cfg
            @given(req=strategy)
            def run(req: Any) -> None:
                service_case(srv, name, req, read_only, stats)

            return run

        interfaces: dict[str, tuple[Any, str, Any, bool]] = {
            "query_objects": (QueryObjects, "scene_memory/query_objects", query_request(), True),
            "get_scene_graph": (
                GetSceneGraph,
                "scene_memory/get_scene_graph",
                graph_request(),
                True,
            ),
            "get_changes": (GetObjectChanges, "scene_memory/get_changes", changes_request(), True),
            "save": (
                SaveMemory,
                "scene_memory/save",
                paths.map(lambda p: SaveMemory.Request(path=p)),
                True,
            ),
            "load": (
                LoadMemory,
                "scene_memory/load",
                paths.map(lambda p: LoadMemory.Request(path=p)),
                False,
            ),
            "step": (PolicyMemoryStep, "policy_memory/step", step_request(16, 8), True),
        }
        for iface, (srv, name, strategy, read_only) in interfaces.items():
            if args.only and iface not in args.only:
                continue
            stats = {"cases": 0, "crashes": 0, "hangs": 0, "internal_errors": 0}
            stats["changed_by_rejected"] = 0
            if iface == "step":
                read_only = True  # the bank is not observable: outputs are checked instead

            run = make_run(srv, name, strategy, read_only, stats)

            t0 = time.monotonic()
            try:
                run()
            except Exception as exc:  # a crash ends the interface's run
                print(f"[soak] {iface}: {exc}", flush=True)
            stats["seconds"] = round(time.monotonic() - t0, 1)
            figures[iface] = stats
            failed |= any(stats[k] for k in ("crashes", "hangs", "changed_by_rejected"))
            failed |= stats["cases"] == 0
            failed |= proc.poll() is not None
            if proc.poll() is not None:
                break
            client.call(LoadMemory, "scene_memory/load", LoadMemory.Request(path=str(good)))
            base = settled(client)

        # topics: mutated observations published at up to 100 Hz; the node must keep answering
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image

        types = {"rgb": Image, "depth": Image, "instance": Image, "info": CameraInfo}
        types |= {"pose": PoseStamped, "labels": InstanceLabels}
        topics = {"rgb": "rgb/image", "depth": "depth/image", "instance": "instance/image"}
        topics |= {"info": "rgb/camera_info", "pose": "camera/pose", "labels": "instance/labels"}
        pubs = {
            s: client.node.create_publisher(types[s], f"/fuzz/{topics[s]}", 10) for s in STREAMS
        }
        base_msgs = [messages(1.0, i) for i in range(4)]

        def publish_case(stream: str, mutation: Any, stats: dict, counter: Iterator[int]) -> None:
            import copy

            k = next(counter)
            stamp = time.time() - 1e4 + 0.01 * k
            msgs = {s: copy.deepcopy(m) for s, m in base_msgs[k % 4].items()}
            t = msgs["rgb"].header.stamp
            t.sec, t.nanosec = int(stamp), round((stamp % 1.0) * 1e9) % 1_000_000_000
            for m in msgs.values():
                m.header.stamp = t
            msgs[stream] = mutate(stream, msgs[stream], mutation)
            for s in STREAMS:
                pubs[s].publish(msgs[s])
            stats["cases"] += 1
            time.sleep(0.01)
            if stats["cases"] % 200 == 0:
                if (
                    client.call(QueryObjects, "scene_memory/query_objects", QueryObjects.Request())
                    is None
                ):
                    stats["hangs"] += 1
                if proc.poll() is not None:
                    stats["crashes"] += 1
                    raise RuntimeError("bringup exited")

        def make_publish(stream: str, stats: dict, counter: Iterator[int]) -> Any:
            @cfg
            @given(mutation=TOPIC_MUTATIONS[stream][0])
            def publish(mutation: Any) -> None:
                publish_case(stream, mutation, stats, counter)

            return publish

        for stream in STREAMS:
            if args.only and f"topic:{stream}" not in args.only:
                continue
            stats = {"cases": 0, "crashes": 0, "hangs": 0}
            counter = iter(range(10**9))

            publish = make_publish(stream, stats, counter)

            t0 = time.monotonic()
            try:
                publish()
            except Exception as exc:
                print(f"[soak] topic {stream}: {exc}", flush=True)
            res = client.call(QueryObjects, "scene_memory/query_objects", QueryObjects.Request())
            stats["hangs"] += res is None
            stats["crashes"] += proc.poll() is not None
            stats["seconds"] = round(time.monotonic() - t0, 1)
            figures[f"topic:{stream}"] = stats
            failed |= bool(stats["crashes"] or stats["hangs"])
            if proc.poll() is not None:
                break
        figures["exit_code"] = proc.poll()
    shutil.rmtree(tmp, ignore_errors=True)
    return report("fuzz", figures, failed)


# --- kill during save ------------------------------------------------------------------------


def check_kill(args: argparse.Namespace) -> bool:
    """SIGKILL memory_bringup at random moments of ~/save; the file is the old or new state."""
    from memory_interfaces.srv import LoadMemory, SaveMemory

    tmp = Path(tempfile.mkdtemp(prefix="soak_kill_"))
    states = [tmp / "a.db", tmp / "b.db"]
    prepared_memory(states[0], frames=4, mug_y=0.8)
    prepared_memory(states[1], frames=12, mug_y=0.5)
    prints = [file_objects_fingerprint(str(p)) for p in states]
    target = tmp / "memory.db"
    shutil.copyfile(states[0], target)
    rng = random.Random(0)
    figures = {"kills": 0, "lost_or_corrupt": 0, "old": 0, "new": 0, "hangs": 0}
    while figures["kills"] < args.kills:
        current = file_objects_fingerprint(str(target))
        new = rng.randrange(2)
        with bringup_and_client(args.domain, f"kill{figures['kills']}") as (proc, client):
            if (
                client.call(
                    LoadMemory, "scene_memory/load", LoadMemory.Request(path=str(states[new]))
                )
                is None
            ):
                figures["hangs"] += 1
                continue
            request = SaveMemory.Request(path=str(target))
            threading.Thread(
                target=client.call, args=(SaveMemory, "scene_memory/save", request), daemon=True
            ).start()
            time.sleep(rng.uniform(0.0, 0.08))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            figures["kills"] += 1
        after = file_objects_fingerprint(str(target))
        if after is None or after not in (current, prints[new]):
            figures["lost_or_corrupt"] += 1
        elif after == prints[new] and after != current:
            figures["new"] += 1
        else:
            figures["old"] += 1
        leftovers = list(tmp.glob(".memory.db.*"))
        figures["temp_files_left"] = len(leftovers)
    shutil.rmtree(tmp, ignore_errors=True)
    return report("kill", figures, bool(figures["lost_or_corrupt"]))


# --- autosave + restart ----------------------------------------------------------------------


def check_autosave(args: argparse.Namespace) -> bool:
    """Ingest from sim_publisher with autosave; SIGKILL; the file lags at most one period."""
    from memory_interfaces.srv import GetSceneGraph
    from memory_node.core.persistence import load_memory

    tmp = Path(tempfile.mkdtemp(prefix="soak_autosave_"))
    path = tmp / "auto.db"
    period = args.period
    params = [f"persistence.autosave_path:={path}", f"persistence.autosave_period_s:={period}"]
    figures: dict[str, Any] = {"period_s": period, "rounds": 0, "worst_lag_s": 0.0}
    failed = False
    for r in range(args.rounds):
        sim = start_sim(args.domain, f"auto{r}")
        with bringup_and_client(args.domain, f"auto{r}", params) as (proc, client):
            figures["ingesting"] = wait_for_objects(client)
            # wait for some frames and at least two autosaves
            t_end = time.monotonic() + max(4 * period, 10.0)
            last_seen = 0.0
            while time.monotonic() < t_end:
                g = client.call(
                    GetSceneGraph, "scene_memory/get_scene_graph", GetSceneGraph.Request()
                )
                if g is not None and g.graph.objects:
                    last_seen = max(
                        o.last_seen.sec + 1e-9 * o.last_seen.nanosec for o in g.graph.objects
                    )
                time.sleep(0.3)
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stop(sim)
        try:
            snap = load_memory(str(path))
        except Exception as exc:
            print(f"[soak] autosave file does not load: {exc}")
            failed = True
            continue
        saved_stamp = snap.meta.get("last_stamp") or 0.0
        # the node saw frames up to last_seen (sim time, ~ wall rate): the file may lag by one
        # period plus the query interval
        lag = max(0.0, last_seen - float(saved_stamp))
        figures["worst_lag_s"] = max(figures["worst_lag_s"], round(lag, 2))
        figures["rounds"] += 1
        failed |= lag > period + 0.5 + 1.0
        # restart from it
        with bringup_and_client(args.domain, f"auto{r}b", [f"persistence.load_path:={path}"]) as (
            proc,
            client,
        ):
            g = client.call(GetSceneGraph, "scene_memory/get_scene_graph", GetSceneGraph.Request())
            figures.setdefault("restored_objects", []).append(
                None if g is None else len(g.graph.objects)
            )
            failed |= g is None or len(g.graph.objects) != len(snap.objects)
        time.sleep(period * random.random())
        _ = killed_at
    shutil.rmtree(tmp, ignore_errors=True)
    return report("autosave", figures, failed)


# --- disk full -------------------------------------------------------------------------------


def check_disk_full(args: argparse.Namespace) -> bool:
    """Save to a small tmpfs (as root) or a read-only dir: a clear error, the old file intact."""
    from memory_interfaces.srv import LoadMemory, SaveMemory

    tmp = Path(tempfile.mkdtemp(prefix="soak_full_"))
    small, big = tmp / "small.db", tmp / "big.db"
    prepared_memory(small, frames=2)
    prepared_memory(big, frames=40, mug_y=0.3)
    mount = tmp / "disk"
    mount.mkdir()
    mode = "tmpfs"
    rc = subprocess.run(
        # room for one file and a half: the first save fits, a second one (new file written
        # beside the old one) runs out of space
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={small.stat().st_size * 3 // 2048 + 4}k",
            "tmpfs",
            mount,
        ],
        capture_output=True,
    ).returncode
    if rc != 0:
        mode = "read-only bind mount"
        rc = subprocess.run(["mount", "--bind", "-o", "ro", str(mount), str(mount)]).returncode
        if rc != 0:
            mode = "chmod 555 (not enforced for root)"
    target = mount / "memory.db"
    figures: dict[str, Any] = {"mode": mode}
    failed = False
    try:
        with bringup_and_client(args.domain, "full") as (proc, client):
            client.call(LoadMemory, "scene_memory/load", LoadMemory.Request(path=str(small)))
            first = client.call(
                SaveMemory, "scene_memory/save", SaveMemory.Request(path=str(target))
            )
            figures["first_save"] = None if first is None else first.success
            if mode.startswith("read-only") or mode.startswith("chmod"):
                shutil.copyfile(small, target) if not target.exists() else None
                if mode.startswith("chmod"):
                    mount.chmod(0o555)
            before = file_objects_fingerprint(str(target))
            client.call(LoadMemory, "scene_memory/load", LoadMemory.Request(path=str(big)))
            res = client.call(
                SaveMemory, "scene_memory/save", SaveMemory.Request(path=str(target))
            )
            figures["full_save_success"] = None if res is None else res.success
            figures["message"] = None if res is None else res.message
            after = file_objects_fingerprint(str(target))
            figures["previous_file_intact"] = before is not None and after == before
            figures["alive"] = proc.poll() is None
            figures["temp_files_left"] = len(list(mount.glob(".memory.db.*")))
            failed = bool(
                res is None
                or res.success
                or not figures["previous_file_intact"]
                or not figures["alive"]
                or figures["temp_files_left"]
            )
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
        mount.chmod(0o755)
        shutil.rmtree(tmp, ignore_errors=True)
    return report("disk_full", figures, failed)


# --- signals ---------------------------------------------------------------------------------


def check_signals(args: argparse.Namespace) -> bool:
    """~/load repeatedly while ingesting; then Ctrl-C mid-ingest: exit 0, autosave loads."""
    from memory_interfaces.srv import LoadMemory, QueryObjects

    tmp = Path(tempfile.mkdtemp(prefix="soak_sig_"))
    good = tmp / "good.db"
    prepared_memory(good)
    auto = tmp / "auto.db"
    figures: dict[str, Any] = {"rounds": 0, "loads": 0, "load_failures": 0, "hangs": 0}
    failed = False
    for r in range(args.rounds):
        sim = start_sim(args.domain, f"sig{r}")
        params = [f"persistence.autosave_path:={auto}", "persistence.autosave_period_s:=0.0"]
        proc = start_bringup(args.domain, f"sig{r}", params)
        client = Client(args.domain, f"sig{r}")
        try:
            figures["ingesting"] = wait_for_objects(client)
            t_end = time.monotonic() + args.seconds
            while time.monotonic() < t_end:
                res = client.call(
                    LoadMemory, "scene_memory/load", LoadMemory.Request(path=str(good))
                )
                figures["loads"] += 1
                if res is None:
                    figures["hangs"] += 1
                elif not res.success:
                    figures["load_failures"] += 1
                q = client.call(QueryObjects, "scene_memory/query_objects", QueryObjects.Request())
                figures["hangs"] += q is None
                time.sleep(0.2)
        finally:
            client.close()
        code = stop(proc, signal.SIGINT)
        stop(sim)
        figures.setdefault("exit_codes", []).append(code)
        figures["autosave_loads"] = file_objects_fingerprint(str(auto)) is not None
        failed |= code != 0 or not figures["autosave_loads"]
        figures["rounds"] += 1
    failed |= bool(figures["hangs"] or figures["load_failures"])
    shutil.rmtree(tmp, ignore_errors=True)
    return report("signals", figures, failed)


# --- lifecycle -------------------------------------------------------------------------------


def check_lifecycle(args: argparse.Namespace) -> bool:
    """Every transition request (ids 0-15, 99, 255, labels) in every state; no process exit."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    from memory_interfaces.srv import QueryObjects

    requests: list[int | str] = [*range(16), 99, 255]
    requests += ["configure", "activate", "deactivate", "cleanup", "shutdown", "explode", ""]
    if args.quick:
        requests = [Transition.TRANSITION_ACTIVATE, Transition.TRANSITION_DEACTIVATE, 99]
    steps = {  # (from, to) -> transition
        ("unconfigured", "inactive"): Transition.TRANSITION_CONFIGURE,
        ("inactive", "active"): Transition.TRANSITION_ACTIVATE,
        ("active", "inactive"): Transition.TRANSITION_DEACTIVATE,
        ("inactive", "unconfigured"): Transition.TRANSITION_CLEANUP,
    }
    order = ["unconfigured", "inactive", "active"]
    figures: dict[str, Any] = {"requests": 0, "refused": 0, "accepted": 0, "process_exits": 0}
    figures |= {"hangs": 0, "restarts": 0, "services_down": 0}
    n = 0
    proc: subprocess.Popen | None = None
    client: Client | None = None

    def restart() -> None:
        nonlocal proc, client, n
        if client is not None:
            client.close()
        if proc is not None:
            figures["process_exits"] += proc.poll() is not None
            stop(proc)
        n += 1
        proc = start_bringup(args.domain, f"lc{n}")
        client = Client(args.domain, f"lc{n}")

    def state() -> str | None:
        got = client.call(GetState, "scene_memory/get_state", GetState.Request())
        return None if got is None else got.current_state.label

    def change(request: int | str) -> Any:
        t = Transition(id=request) if isinstance(request, int) else Transition(label=request)
        return client.call(
            ChangeState, "scene_memory/change_state", ChangeState.Request(transition=t)
        )

    restart()
    for target in order:
        for request in requests:
            current = state()
            if current not in order:  # finalized (a shutdown was accepted): a new process
                figures["restarts"] += 1
                restart()
                current = state()
            while current != target and current in order:
                i, j = order.index(current), order.index(target)
                nxt = order[i + (1 if j > i else -1)]
                change(steps[(current, nxt)])
                current = state()
            res = change(request)
            figures["requests"] += 1
            if res is None:
                figures["hangs"] += 1
            else:
                figures["accepted" if res.success else "refused"] += 1
            if proc.poll() is not None:
                figures["process_exits"] += 1
                restart()
            elif state() in [*order, "finalized"]:
                q = client.call(QueryObjects, "scene_memory/query_objects", QueryObjects.Request())
                figures["services_down"] += q is None
            else:
                figures["hangs"] += 1
    client.close()
    stop(proc)
    failed = bool(figures["process_exits"] or figures["hangs"] or figures["services_down"])
    return report("lifecycle", figures, failed)


# --- concurrency -----------------------------------------------------------------------------


def _client_worker(
    domain: int, ns: str, k: int, seconds: float, tmp: str, queue: Any, watchdog_s: float
) -> None:
    """One client process: query / graph / changes / save / load in a loop, with checks."""
    global WATCHDOG_S
    WATCHDOG_S = watchdog_s
    from memory_interfaces.srv import (
        GetObjectChanges,
        GetSceneGraph,
        LoadMemory,
        QueryObjects,
        SaveMemory,
    )

    client = Client(domain, ns, f"soak_client_{k}")
    rng = random.Random(k)
    stats = {"calls": 0, "unanswered": 0, "failed": 0, "inconsistent": 0}
    path = os.path.join(tmp, f"client{k}.db")
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        op = rng.choice(["query", "graph", "changes", "graph_changes", "save", "load", "query"])
        stats["calls"] += 1
        if op == "query":
            res = client.call(
                QueryObjects,
                "scene_memory/query_objects",
                QueryObjects.Request(text=rng.choice(["mug", "chair", ""]), k=20),
            )
        elif op == "graph":
            res = client.call(
                GetSceneGraph,
                "scene_memory/get_scene_graph",
                GetSceneGraph.Request(max_tokens=500),
            )
        elif op == "changes":
            res = client.call(
                GetObjectChanges, "scene_memory/get_changes", GetObjectChanges.Request()
            )
        elif op == "save":
            res = client.call(SaveMemory, "scene_memory/save", SaveMemory.Request(path=path))
        elif op == "load":
            res = None
            if os.path.exists(path) and rng.random() < 0.3:
                res = client.call(LoadMemory, "scene_memory/load", LoadMemory.Request(path=path))
            else:
                stats["calls"] -= 1
                continue
        else:
            # consistency: every id in the change log exists in the graph; absent objects have
            # a last_seen. Both replies are taken back to back, so a load may come between:
            # an inconsistency counts only when a second pair shows it too.
            bad = 0
            for _ in range(2):
                g = client.call(
                    GetSceneGraph, "scene_memory/get_scene_graph", GetSceneGraph.Request()
                )
                c = client.call(
                    GetObjectChanges,
                    "scene_memory/get_changes",
                    GetObjectChanges.Request(max_results=100000),
                )
                if g is None or c is None:
                    break
                ids = {o.id for o in g.graph.objects}
                missing = [e.object_id for e in c.changes if e.object_id not in ids]
                unseen = [
                    o.id
                    for o in g.graph.objects
                    if not o.present and o.last_seen.sec == 0 and o.last_seen.nanosec == 0
                ]
                bad += bool(missing or unseen)
                if not bad:
                    break
            res = g
            stats["inconsistent"] += bad >= 2
        if res is None:
            stats["unanswered"] += 1
            queue.put(("watchdog", k, op, time.time()))
        elif not res.success:
            stats["failed"] += 1
    client.close()
    queue.put(("done", k, stats, time.time()))


def check_concurrency(args: argparse.Namespace) -> bool:
    """sim_publisher at ``--rate`` Hz + 4 client processes for ``--minutes``; RSS over time."""
    tmp = tempfile.mkdtemp(prefix="soak_conc_")
    seconds = args.minutes * 60.0
    sim = start_sim(args.domain, "conc", args.rate)
    proc = start_bringup(args.domain, "conc")
    # the clock starts once the node answers and ingests (start-up is not part of the soak)
    probe = Client(args.domain, "conc", "soak_probe")
    ingesting = wait_for_objects(probe, timeout=180.0)
    probe.close()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(
            target=_client_worker,
            args=(args.domain, "conc", k, seconds, tmp, queue, WATCHDOG_S),
        )
        for k in range(4)
    ]
    for w in workers:
        w.start()
    rss: list[tuple[float, float]] = []
    t0 = time.monotonic()
    results: dict[int, dict[str, int]] = {}
    watchdog: list[Any] = []
    while len(results) < len(workers):
        while not queue.empty():
            item = queue.get()
            if item[0] == "done":
                results[item[1]] = item[2]
            else:
                watchdog.append(item)
                print(f"[soak] watchdog: client {item[1]} {item[2]} unanswered in {WATCHDOG_S} s")
                sys.stdout.flush()
        rss.append((time.monotonic() - t0, rss_mb(proc.pid)))
        if proc.poll() is not None:
            break
        if time.monotonic() - t0 > seconds + 120:
            break
        time.sleep(1.0)
    for w in workers:
        w.join(30)
    alive = proc.poll() is None
    stop(proc)
    stop(sim)
    totals = {
        k: sum(r[k] for r in results.values())
        for k in ("calls", "unanswered", "failed", "inconsistent")
    }
    # RSS slope over the last two thirds (the first third is warm-up: imports, caches)
    tail = [(t, m) for t, m in rss if t >= seconds / 3.0 and m > 0]
    growth = 0.0
    if len(tail) >= 2:
        growth = 100.0 * (tail[-1][1] - tail[0][1]) / tail[0][1]
    figures = {
        "minutes": args.minutes,
        "rate_hz": args.rate,
        "ingesting": ingesting,
        "watchdog_s": WATCHDOG_S,
        **totals,
        "process_alive": alive,
        "rss_start_mb": round(rss[0][1], 1) if rss else None,
        "rss_end_mb": round(rss[-1][1], 1) if rss else None,
        "rss_growth_last_two_thirds_pct": round(growth, 2),
        "rss_samples": [(round(t), round(m, 1)) for t, m in rss[:: max(1, len(rss) // 30)]],
    }
    shutil.rmtree(tmp, ignore_errors=True)
    failed = bool(not alive or not ingesting or totals["unanswered"] or totals["inconsistent"])
    failed |= args.minutes >= 10 and growth >= 5.0
    return report("concurrency", figures, failed)


CHECKS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "fuzz": check_fuzz,
    "kill": check_kill,
    "autosave": check_autosave,
    "disk-full": check_disk_full,
    "signals": check_signals,
    "lifecycle": check_lifecycle,
    "concurrency": check_concurrency,
}


def main(argv: list[str] | None = None) -> int:
    """Run the named checks; exit code 1 when any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=[*CHECKS, "all"])
    parser.add_argument("--quick", action="store_true", help="CI-sized (about 2 minutes in all)")
    parser.add_argument("--cases", type=int, default=10000, help="fuzz: cases per interface")
    parser.add_argument("--only", nargs="*", default=[], help="fuzz: interfaces to run")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--period", type=float, default=2.0, help="autosave period, s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="signals: ingest time")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=12.0, help="sim_publisher rate, Hz")
    parser.add_argument(
        "--watchdog-s", type=float, default=10.0, help="a call unanswered this long is a hang, s"
    )
    parser.add_argument("--domain", type=int, default=random.Random(os.getpid()).randint(101, 200))
    args = parser.parse_args(argv)
    global WATCHDOG_S
    WATCHDOG_S = args.watchdog_s
    if args.quick:
        args.cases, args.kills, args.rounds = min(args.cases, 20), min(args.kills, 5), 1
        args.seconds, args.minutes = min(args.seconds, 8.0), min(args.minutes, 0.75)
    names = list(CHECKS) if args.check == "all" else [args.check]
    ok = True
    for name in names:
        ok &= CHECKS[name](args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
