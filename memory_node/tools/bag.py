"""rosbag2 files (sqlite3 and MCAP) through ``rosbags``, messages (de)serialised by rclpy.

A replayed message is then byte for byte what the robot published.

* :func:`open_bag` opens a bag and turns every way of being unreadable into :class:`BagError`;
* :func:`message_class` imports the rclpy class of a type name such as
  ``sensor_msgs/msg/Image``;
* :func:`write_bag` records (topic, stamp, message) triples, e.g. frames of the simulator
  (:func:`frames_to_messages`).
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memory_node.core.types import InvalidInput

STORAGES = ("mcap", "sqlite3")


class BagError(InvalidInput):
    """A bag that cannot be replayed; the message names the bag and the problem."""


def _interfaces_msg_dir() -> Path:
    """Directory of memory_interfaces' .msg files (install share, else the source tree)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("memory_interfaces")) / "msg"
        if share.is_dir():
            return share
    except Exception:  # not installed or no ament index: the source tree has them
        pass
    return Path(__file__).resolve().parents[2] / "memory_interfaces" / "msg"


def typestore() -> Any:
    """Return a rosbags typestore of ROS 2 Jazzy plus memory_interfaces' messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for path in sorted(_interfaces_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"memory_interfaces/msg/{path.stem}"))
    store.register(types)
    return store


def message_class(msgtype: str) -> Any:
    """Return the rclpy message class of ``pkg/msg/Name``; raise BagError when unknown here."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise BagError(f"unknown message type {msgtype!r} (expected package/msg/Name)")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError) as err:
        raise BagError(
            f"unknown message type {msgtype!r}: no Python message package provides it here"
        ) from err


def open_bag(path: str | Path) -> Any:
    """Open a rosbag2 directory (or the .db3/.mcap file inside one) for reading.

    Raises:
        BagError: missing, not a bag, or a corrupt or truncated metadata or storage file.
    """
    from rosbags.rosbag2 import Reader

    bag = Path(path)
    if bag.is_file() and (bag.parent / "metadata.yaml").is_file():
        bag = bag.parent
    if not bag.exists():
        raise BagError(f"bag {path} does not exist")
    if not (bag / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 directory (no metadata.yaml)")
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as err:  # rosbags raises several types for broken bags
        raise BagError(f"cannot read bag {path}: it is corrupt or truncated ({err})") from err
    return reader


def read_errors() -> tuple[type[BaseException], ...]:
    """Exception types meaning a bag's messages are corrupt or truncated while reading."""
    from rosbags.rosbag2 import ReaderError

    try:
        from rosbags.rosbag2.storage_mcap import McapError  # type: ignore[attr-defined]

        extra: tuple[type[BaseException], ...] = (McapError,)
    except ImportError:
        extra = ()
    return (ReaderError, sqlite3.Error, EOFError, ValueError, KeyError, OSError, *extra)


def write_bag(
    path: str | Path, messages: Iterable[tuple[str, float, Any]], storage: str = "mcap"
) -> int:
    """Write (topic, stamp seconds, rclpy message) triples as a rosbag2 directory ``path``.

    Messages are serialised with rclpy (CDR, as ``ros2 bag record`` stores them) and logged at
    their stamps. Returns the number of messages written.

    Raises:
        BagError: ``path`` exists, or an unknown storage.
    """
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}; one of {', '.join(STORAGES)}")
    if Path(path).exists():
        raise BagError(f"{path} exists; choose a new bag directory")
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    store = typestore()
    connections: dict[str, Any] = {}
    count = 0
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        for topic, stamp, msg in messages:
            conn = connections.get(topic)
            if conn is None:
                module = type(msg).__module__.split(".")[0]
                msgtype = f"{module}/msg/{type(msg).__name__}"
                conn = connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conn, round(stamp * 1e9), serialize_message(msg))
            count += 1
    return count


def frames_to_messages(
    frames: Iterable[Any], namespace: str = "", instances: bool = True
) -> Iterable[tuple[str, float, Any]]:
    """(topic, stamp, message) of core frames as ``sim_publisher`` publishes them (+ /clock)."""
    from rosgraph_msgs.msg import Clock

    from memory_node.ros import conversions as conv

    prefix = "/" + namespace.strip("/") + "/" if namespace.strip("/") else "/"
    for frame in frames:
        stamp = float(frame.stamp)
        yield "/clock", stamp, Clock(clock=conv.sec_to_time(stamp))
        for topic, msg in conv.frame_to_messages(frame, stamp, instances=instances):
            yield prefix + topic, stamp, msg
