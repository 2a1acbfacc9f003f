"""ROS pieces of the robustness tests: messages of one observation, special paths, replies."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import serialize_message
from robust_helpers import view
from std_msgs.msg import Header

from memory_node.ros import conversions as conv

STREAMS = ("rgb", "depth", "pose", "instance", "labels", "info")


def messages(stamp: float, i: int = 0, nanosec: int | None = None) -> dict[str, Any]:
    """Return the messages of one observation stamped ``stamp`` (or sec + a raw ``nanosec``)."""
    frame = view(stamp, i)
    t = conv.sec_to_time(stamp)
    if nanosec is not None:
        t.nanosec = nanosec
    header = Header(frame_id="camera_optical", stamp=t)
    h, w = frame.depth.shape
    pose = PoseStamped(header=Header(frame_id="map", stamp=t))
    pose.pose = conv.matrix_to_pose(frame.map_T_camera)
    return {
        "info": conv.camera_info_of(frame.K, w, h, header),
        "pose": pose,
        "labels": conv.labels_msg(frame.instance_labels, None, header),
        "instance": conv.instances_to_image(frame.instance, header),
        "depth": conv.depth_to_image(frame.depth, header),
        "rgb": conv.rgb_to_image(frame.rgb, header),
    }


def special_paths(root: Path, good_file: Path) -> dict[str, str]:
    """Paths of every kind under ``root`` (made here): files, dirs, devices, FIFOs, links."""
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {"good": str(good_file)}
    (root / "dir").mkdir(exist_ok=True)
    paths["directory"] = str(root / "dir")
    paths["missing"] = str(root / "missing.db")
    paths["missing_dir"] = str(root / "no" / "such" / "m.db")
    fifo = root / "fifo.db"
    if not fifo.exists():
        os.mkfifo(fifo)
    paths["fifo"] = str(fifo)
    device = root / "device.db"
    if not device.exists():
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            device = Path("/dev/full")
    paths["device"] = str(device)
    for name, target in (
        ("link_device", device),
        ("link_fifo", fifo),
        ("link_good", good_file),
        ("link_dangling", root / "nowhere.db"),
        ("link_dir", root / "dir"),
    ):
        link = root / f"{name}.db"
        if not link.is_symlink():
            link.symlink_to(target)
        paths[name] = str(link)
    loop_a, loop_b = root / "loop_a.db", root / "loop_b.db"
    if not loop_a.is_symlink():
        loop_a.symlink_to(loop_b)
        loop_b.symlink_to(loop_a)
    paths["link_loop"] = str(loop_a)
    readonly = root / "readonly"
    readonly.mkdir(exist_ok=True)
    readonly.chmod(0o555)
    paths["readonly_dir"] = str(readonly / "m.db")
    paths["nul"] = str(root / "a.db") + "\x00tail"
    paths["long"] = str(root / ("x" * 5000))
    paths["long_component"] = str(root / ("y" * 300 + ".db"))
    paths["unicode"] = str(root / "mémoire-記憶-🧠.db")
    empty = root / "empty.db"
    empty.write_bytes(b"")
    paths["empty_file"] = str(empty)
    junk = root / "junk.db"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    paths["junk"] = str(junk)
    truncated = root / "truncated.db"
    truncated.write_bytes(good_file.read_bytes()[:2048])
    paths["truncated"] = str(truncated)
    paths["empty"] = ""
    return paths


LOAD_ONLY_PATHS = {"dev_zero": "/dev/zero", "proc": "/proc/self/status", "root": "/"}


def check_serializable(res: Any) -> None:
    """Serialise a reply as rclpy would (a value the message cannot hold raises or aborts)."""
    serialize_message(res)
