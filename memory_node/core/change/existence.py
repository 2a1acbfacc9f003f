"""Existence model: the belief, per object, that it is still where the memory holds it.

A log-odds survival filter in the spirit of the persistence filter (Rosen, Mason and Leonard,
ICRA 2016). Between observations the probability that the object is still there is multiplied
by the survival prior ``exp(-dt / lifetime_s)`` (things stay put for a while, then may go);
each frame's visibility evidence then adds its log-likelihood ratio:

* a detection associated to the object: the belief is set to ``seen_log_odds`` (the object is
  there);
* its place seen through (the depth lies behind its voxels, or another label's mask covers
  them): ``through_log_odds`` (< 0);
* its voxels consistent with the depth although no detection matched: ``consistent_log_odds``
  (> 0);
* occluded, out of range, grazing (too little of it in view): no update.

The two ratios are per frame at ``evidence_frame_s`` (10 Hz): consecutive frames of one camera
are not independent looks, so a frame counts in proportion to the time since the object was
last looked at (:func:`frame_weight`), at most ``evidence_max_frames`` (one look). Looking at a
place for a given time then says the same at 2, 10 or 15 Hz, and so does one look at it. A
frame seeing through only part of an object is evidence in proportion to that part, up to
``full_view_fraction`` of its voxels (:func:`view_weight`).

The detector compares the belief with ``absent_below_log_odds`` (DISAPPEARED) and
``relocate_below_log_odds`` (may be linked to a look-alike elsewhere). The hysteresis: an object
marked gone is there again only when a detection is associated to it (belief back to
``seen_log_odds``); depth alone never brings it back.
"""

from __future__ import annotations

import enum
import math

from memory_node.core.change.config import ChangeConfig
from memory_node.core.visibility import Evidence, VisibilityConfig

LOG_ODDS_FLOOR = -20.0  # below this nothing changes any more; keeps exp() finite


class Sighting(enum.Enum):
    """What one frame says about one object's place."""

    NONE = 0  # not in view enough: occluded, out of range, grazing, outside the frustum
    THROUGH = 1  # seen through: evidence of absence
    CONSISTENT = 2  # depth agrees with its voxels: evidence of presence


def classify(evidence: Evidence | None, config: VisibilityConfig) -> Sighting:
    """Return what ``evidence`` (None: not in view at all) says about the object's place."""
    if evidence is None:
        return Sighting.NONE
    if evidence.is_miss(config):
        return Sighting.THROUGH
    if evidence.is_there(config):
        return Sighting.CONSISTENT
    return Sighting.NONE


def predict(log_odds: float, dt: float, config: ChangeConfig) -> float:
    """Return the belief after ``dt`` seconds without evidence (the survival prior)."""
    if dt <= 0.0:
        return log_odds
    p = 1.0 / (1.0 + math.exp(-log_odds)) * math.exp(-dt / config.lifetime_s)
    if p <= 0.0:
        return LOG_ODDS_FLOOR
    return max(LOG_ODDS_FLOOR, math.log(p / (1.0 - p)))


def frame_weight(dt: float, config: ChangeConfig) -> float:
    """Return what a frame ``dt`` after the previous look at an object is worth.

    In frames at ``evidence_frame_s``, at most ``evidence_max_frames`` (one look).
    """
    return min(config.evidence_max_frames, max(0.0, dt) / config.evidence_frame_s)


def view_weight(evidence: Evidence | None, sighting: Sighting, config: ChangeConfig) -> float:
    """Return how full a look at the object's absence ``evidence`` is (1 = a full look).

    Seeing through ``full_view_fraction`` of its checked voxels or more is a full look; less
    counts in proportion. Evidence of presence is always a full look (part of an object seen
    in place is evidence that it is there).
    """
    if evidence is None or sighting is not Sighting.THROUGH:
        return 1.0
    missing = (evidence.seen_through + evidence.claimed) / max(evidence.checked, 1)
    return min(1.0, missing / config.full_view_fraction)


def update(
    log_odds: float, sighting: Sighting, config: ChangeConfig, weight: float = 1.0
) -> float:
    """Return the belief after one frame's ``sighting`` (already predicted to the frame).

    ``weight``: what the frame is worth (:func:`frame_weight`).
    """
    if sighting is Sighting.THROUGH:
        log_odds += weight * config.through_log_odds
    elif sighting is Sighting.CONSISTENT:
        log_odds += weight * config.consistent_log_odds
    return min(config.seen_log_odds, max(LOG_ODDS_FLOOR, log_odds))
