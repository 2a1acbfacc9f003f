"""Bridges from external simulators (Habitat-sim, AI2-THOR) to the memory core's inputs.

Each bridge turns one simulator observation into the same data the built-in simulator produces:
a :class:`memory_node.core.types.Frame` (RGB, metric depth, K, optical-frame pose in the z-up
``map`` frame, instance ids with labels and states) plus the ground truth of the scene's objects
(:class:`memory_sim.ground_truth.ObjectTruth`).

Importing this package, :mod:`.conversions`, :mod:`.habitat_bridge` or :mod:`.ai2thor_bridge`
never needs the simulators; constructing a live bridge without them raises
:class:`BridgeUnavailable` saying what to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memory_node.core.types import Frame
from memory_sim.ground_truth import ObjectTruth


class BridgeUnavailable(RuntimeError):
    """The external simulator is missing or cannot start; the message says what to install."""


@dataclass
class BridgeObservation:
    """One observation of an external simulator, in the memory core's conventions.

    Attributes:
        frame: the posed RGB-D frame with ground-truth instance ids, labels and states.
        objects: ground truth of the scene's annotated objects at this time (map frame); the
            ``instance_id`` of each matches the ids of ``frame.instance``.
    """

    frame: Frame
    objects: list[ObjectTruth] = field(default_factory=list)


__all__ = ["BridgeObservation", "BridgeUnavailable"]
