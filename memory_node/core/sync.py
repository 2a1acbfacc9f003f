"""Pairing of the messages of one observation by stamp (exact or approximate), not by arrival.

The synchronizer keeps a bounded queue per stream. When every stream has an item within
``slop_s`` of a reference stamp (the first stream's), it emits the newest such bundle and drops
everything older: when the consumer is behind, the newest frame wins. Pure Python: the node feeds
it decoded messages; tests feed it anything.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memory_node.core.config import param


@dataclass
class SyncConfig:
    """Stamp pairing of the input streams."""

    slop_s: float = param(
        0.02,
        "Largest stamp difference, in seconds, between messages paired into one frame "
        "(0 = exact stamps only).",
        min_value=0.0,
        max_value=1.0,
    )
    queue_size: int = param(
        10,
        "Messages kept per input stream while waiting for their partners.",
        min_value=1,
        max_value=1000,
    )


@dataclass
class Bundle:
    """One paired observation: the reference stamp and one item per stream."""

    stamp: float
    items: dict[str, Any] = field(default_factory=dict)


class StampSynchronizer:
    """Pair items of several streams by stamp; the first stream is the reference."""

    def __init__(self, streams: list[str], config: SyncConfig | None = None) -> None:
        if not streams:
            raise ValueError("at least one stream is needed")
        self.streams = list(streams)
        self.config = config or SyncConfig()
        self._queues: dict[str, deque[tuple[float, Any]]] = {
            s: deque(maxlen=self.config.queue_size) for s in self.streams
        }
        self._last_emitted = -math.inf
        self.dropped: dict[str, int] = {"stale": 0, "behind": 0, "non_finite_stamp": 0}

    def add(self, stream: str, stamp: float, item: Any) -> Bundle | None:
        """Add one item; return the newest complete bundle it completes, if any.

        Items stamped at or before the last emitted bundle are dropped as stale (frames out of
        order or with duplicate stamps).
        """
        if stream not in self._queues:
            raise KeyError(f"unknown stream {stream!r}; known: {self.streams}")
        if not math.isfinite(stamp):
            self.dropped["non_finite_stamp"] += 1
            return None
        if stamp <= self._last_emitted:
            self.dropped["stale"] += 1
            return None
        self._queues[stream].append((stamp, item))
        return self._match()

    @property
    def last_emitted(self) -> float:
        """Stamp of the last bundle emitted (-inf before the first)."""
        return self._last_emitted

    def reset(self) -> None:
        """Forget every queued item and the last emitted stamp (after a clock jump back)."""
        self._last_emitted = -math.inf
        for queue in self._queues.values():
            queue.clear()

    def _closest(self, stream: str, stamp: float) -> tuple[float, Any] | None:
        best: tuple[float, Any] | None = None
        best_dt = math.inf
        for s, item in self._queues[stream]:
            dt = abs(s - stamp)
            if dt <= self.config.slop_s + 1e-9 and dt < best_dt:
                best, best_dt = (s, item), dt
        return best

    def _match(self) -> Bundle | None:
        reference = self.streams[0]
        for ref_stamp, ref_item in sorted(self._queues[reference], key=lambda x: -x[0]):
            bundle = Bundle(stamp=ref_stamp, items={reference: ref_item})
            for stream in self.streams[1:]:
                found = self._closest(stream, ref_stamp)
                if found is None:
                    break
                bundle.items[stream] = found[1]
            else:
                self._emit(ref_stamp)
                return bundle
        return None

    def _emit(self, stamp: float) -> None:
        """Forget everything at or before ``stamp`` (older reference frames count as behind)."""
        self._last_emitted = stamp
        for stream, queue in self._queues.items():
            kept = [(s, x) for s, x in queue if s > stamp]
            if stream == self.streams[0]:
                self.dropped["behind"] += sum(1 for s, _ in queue if s < stamp)
            queue.clear()
            queue.extend(kept)


def diagnose_pairing(
    delivered: dict[str, int],
    paired: int,
    topics: dict[str, str],
    ever: dict[str, int] | None = None,
    min_messages: int = 5,
    loss_ratio: float = 0.9,
) -> list[str]:
    """Name the likely cause when pairing loses frames, from counts over one time window.

    Args:
        delivered: messages received per stream in the window (first stream = reference).
        paired: complete frames paired in the window.
        topics: stream -> topic name, for the messages.
        ever: messages received per stream since start (to tell "never arrived" from "stopped").
        min_messages: windows where no stream got this many messages are not judged.
        loss_ratio: a stream below this fraction of the busiest one is reported as losing.

    Returns:
        One sentence per cause found (empty when pairing keeps up with the input).
    """
    busiest = max(delivered.values(), default=0)
    if busiest < min_messages:
        return []
    top = max(delivered, key=lambda s: delivered[s])
    causes = []
    for stream, n in delivered.items():
        topic = topics.get(stream, stream)
        if n == 0:
            if ever is not None and ever.get(stream, 0) == 0:
                causes.append(
                    f"{topic} never arrived while {topics.get(top, top)} delivered {busiest}: "
                    "check that it is published and remapped to this topic"
                )
            else:
                causes.append(
                    f"{topic} stopped (0 messages while {topics.get(top, top)} delivered "
                    f"{busiest}): its publisher died or stalled"
                )
        elif n < loss_ratio * busiest and busiest - n > 1:
            # the window's edge can fall between the messages of one frame: one message short
            # is no loss (at 2 Hz, 6 of 7 in a window warned while every frame was paired)
            causes.append(
                f"{topic} delivered {n} of {busiest} messages: the transport drops samples; run "
                "the publisher with the package's Fast DDS large-data profile "
                "(FASTRTPS_DEFAULT_PROFILES_FILE=<share>/memory_node/config/"
                "fastdds_large_data.xml) or publish it reliable"
            )
    least = min(delivered.values())
    if not causes and paired < loss_ratio * least and least - paired > 1:
        causes.append(
            f"only {paired} of {least} frames paired although every stream delivered: the "
            "streams' header stamps differ by more than sync.slop_s"
        )
    return causes
