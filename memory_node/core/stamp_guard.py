"""The frame-stamp guard: frames must move forward in time, but a clock jump must not stop ingest.

Policy (like ROS's time-jump handling):

* a stamp not after the last accepted one is dropped as out of order or duplicate;
* a stamp more than ``max_jump_back_s`` before the last accepted one is a clock jump back (a bag
  looping, a simulator restarting ``/clock``, a driver resetting its clock): the guard resets
  with a warning and the frame is accepted;
* a stamp further than ``max_future_s`` ahead of the receiver's clock (wall or sim time) is
  refused (:func:`check_not_ahead`), so one frame from the future cannot block the next ones;
* only accepted frames advance the guard (:meth:`StampGuard.accept`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from memory_node.core.config import param
from memory_node.core.types import InvalidInput

log = logging.getLogger(__name__)


@dataclass
class StampConfig:
    """How frame stamps are checked against each other and against the clock."""

    max_jump_back_s: float = param(
        5.0,
        "A frame stamped this many seconds before the last accepted one is a clock jump back "
        "(bag loop, simulator restart): the stamp guard resets with a warning and the frame is "
        "used. Smaller steps back are dropped as out of order.",
        min_value=0.0,
        max_value=1e9,
    )
    max_future_s: float = param(
        2.0,
        "Frames stamped more than this many seconds ahead of the node's clock (wall time, or "
        "/clock with use_sim_time) are refused (0 = no check).",
        min_value=0.0,
        max_value=1e9,
    )


class StampGuard:
    """The last accepted stamp and the out-of-order / jump-back rule of the module docstring."""

    def __init__(self, config: StampConfig | None = None) -> None:
        self.config = config or StampConfig()
        self.last: float | None = None
        self.jumps_back = 0

    def check(self, stamp: float) -> None:
        """Raise :class:`InvalidInput` when ``stamp`` is not after the last accepted one.

        A jump back of more than ``max_jump_back_s`` resets the guard instead (logged).
        """
        if not math.isfinite(stamp):
            raise InvalidInput(f"stamp must be finite, got {stamp!r}")
        last = self.last
        if last is None or stamp > last:
            return
        if last - stamp > self.config.max_jump_back_s:
            log.warning(
                "clock jumped back from %.3f to %.3f s: resetting the stamp guard", last, stamp
            )
            self.jumps_back += 1
            self.last = None
            return
        raise InvalidInput(
            f"stamp {stamp:.6f} is not after the last accepted frame's {last:.6f} "
            "(out of order or duplicate)"
        )

    def accept(self, stamp: float) -> None:
        """Record ``stamp`` as the last accepted frame's."""
        self.last = float(stamp)

    def reset(self) -> None:
        """Forget the last stamp (after a load or a restart of the input streams)."""
        self.last = None


def check_not_ahead(stamp: float, now: float, max_future_s: float) -> None:
    """Raise :class:`InvalidInput` when ``stamp`` is more than ``max_future_s`` after ``now``.

    ``now`` <= 0 means the clock is not running yet (sim time before the first /clock): no check.
    ``max_future_s`` <= 0 disables the check.
    """
    if max_future_s <= 0.0 or now <= 0.0:
        return
    if not math.isfinite(stamp) or stamp - now > max_future_s:
        raise InvalidInput(
            f"stamp {stamp:.3f} s is {stamp - now:.3f} s ahead of the clock ({now:.3f} s); "
            f"more than stamps.max_future_s = {max_future_s} s"
        )
