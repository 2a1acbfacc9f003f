"""The ``change.*`` parameter section: the existence model and the linking of moves."""

from __future__ import annotations

from dataclasses import dataclass

from memory_node.core.config import param


@dataclass
class ChangeConfig:
    """Parameters of change detection (see ``docs/change-detection.md``)."""

    # --- existence model (log-odds that an object is still where the memory holds it) -------
    seen_log_odds: float = param(
        3.0,
        "belief (log-odds) that an object is there right after a detection of it; also the "
        "highest belief",
        min_value=0.0,
    )
    through_log_odds: float = param(
        -1.5,
        "belief change when the camera sees through the object's place (depth behind it, or "
        "claimed by another label's mask): log P(seen through | there) / P(seen through | gone), "
        "per frame at evidence_frame_s",
        max_value=0.0,
    )
    consistent_log_odds: float = param(
        2.0,
        "belief change when the depth agrees with the object's voxels although no detection "
        "matched it (a missed detection), per frame at evidence_frame_s",
        min_value=0.0,
    )
    # 0.1 / 3: on the training seeds (0-19, every style) at 2 Hz, with each frame counted as
    # one independent observation, DISAPPEARED recall was 0.52: a removed object's place was
    # often in view in a single frame (seed 0: 38 of a bottle's 41 voxels seen through), one
    # frame of through_log_odds, never three. Consecutive frames of one camera are not
    # independent looks; weighted by the time they cover, the evidence per second of viewing
    # is the same at 2, 10 and 15 Hz. The time runs from the object's previous look, not the
    # previous frame: with the previous frame, a 10 Hz tour sweeping past a removed bowl's
    # place in two single frames 0.6 s apart (training seed 10, 44 frames of it before) never
    # made it gone, where one 2 Hz frame would have (DISAPPEARED recall 0.84 -> 0.87).
    evidence_frame_s: float = param(
        0.1,
        "through_log_odds and consistent_log_odds are per frame at this interval: a frame "
        "counts in proportion to the time since the object was last looked at (detected, or "
        "its place seen), as consecutive frames of a camera are not independent looks, seconds",
        min_value=1e-3,
    )
    evidence_max_frames: float = param(
        3.0,
        "... and counts for at most this many frames (one look, however long since the "
        "previous one)",
        min_value=0.0,
    )
    # 0.5: with frames weighted by time alone, at 2 Hz one frame seeing through 17 of a
    # kitchen cabinet's 90 voxels (28 in view) marked it gone before any change (training seed
    # 6, small house); a removed bottle's frame showed 38 of 41 seen through.
    full_view_fraction: float = param(
        0.5,
        "a frame seeing through less than this share of an object's voxels is that much less "
        "evidence of its absence (a glimpse of part of it is not a full look)",
        min_value=1e-3,
        max_value=1.0,
    )
    lifetime_s: float = param(
        86400.0,
        "prior on how long things stay put: the belief that an object unseen for dt seconds is "
        "still there is scaled by exp(-dt / lifetime_s) before new evidence is added",
        min_value=1.0,
    )
    absent_below_log_odds: float = param(
        -1.0,
        "DISAPPEARED when the belief falls below this at a frame with evidence of absence; an "
        "object marked gone is there again only with a detection (hysteresis: from below this "
        "straight back to seen_log_odds)",
        max_value=0.0,
    )
    relocate_below_log_odds: float = param(
        0.5,
        "an object whose belief falls below this may be linked to a look-alike newly standing "
        "elsewhere (MOVED): that explanation needs less evidence than absence",
    )
    fragment_gap_m: float = param(
        0.05,
        "pieces of one object: present objects of its label whose boxes come this close to it "
        "and that are not themselves seen there go with it when it moves or goes, metres",
        min_value=0.0,
    )
    # --- linking moves and deciding APPEARED --------------------------------------------------
    moved_min_displacement_m: float = param(
        0.3, "re-identified elsewhere farther than this = MOVED, metres", min_value=0.0
    )
    moved_place_seen_before_s: float = param(
        0.5,
        "without free-space keyframes: an object seen for the first time is a moved object "
        "found at its new place only when that place had been observed at least this long "
        "before, seconds",
        min_value=0.0,
    )
    min_label_confidence: float = param(
        0.6,
        "a newly confirmed object makes an APPEARED or MOVED event only when its label holds "
        "at least this share of its votes (one flipped label must not make an event) ...",
        min_value=0.0,
        max_value=1.0,
    )
    window_s: float = param(
        1.0,
        "... a new object whose label is still uncertain may wait this long for its event, "
        "from its second detection, seconds (then it is kept without one)",
        min_value=0.0,
    )
    second_detection_wait_s: float = param(
        30.0,
        "a new object confirmed on one detection (and the depth) may wait this long from its "
        "first sighting for the second detection that its event needs, seconds",
        min_value=0.0,
    )
    moved_min_box_gap_m: float = param(
        0.2,
        "an object is not taken to have moved to a place whose box comes closer than this to "
        "its own (an opened door or a part seen alone), metres",
        min_value=0.0,
    )
    moved_min_appearance_similarity: float = param(
        0.7,
        "least colour-descriptor similarity (Bhattacharyya, 0-1) between a detection and the "
        "object it re-identifies",
        min_value=0.0,
        max_value=1.0,
    )
    lookalike_appearance_similarity: float = param(
        0.9,
        "a new object at a place seen empty before may be a known object of its label, moved, "
        "when their colours agree at least this much ...",
        min_value=0.0,
        max_value=1.01,
    )
    moved_unique_margin: float = param(
        0.1,
        "... it is that one, moved, at once (before its old place is seen empty) when no other "
        "object of the label comes within this much of that similarity; else it waits for "
        "their places to be seen ...",
        min_value=0.0,
        max_value=1.0,
    )
    moved_unseen_for_s: float = param(
        2.0,
        "... when the known object has not been seen for this long before the new one was "
        "first seen, seconds",
        min_value=0.0,
    )
    ambiguous_wait_s: float = param(
        60.0,
        "a new object at a new place that looks like several known objects of its label, any "
        "of which could have moved there, waits this long for their places to be seen (one "
        "found gone makes it a MOVED) before it is APPEARED, seconds",
        min_value=0.0,
    )
    moved_min_feature_similarity: float = param(
        0.75,
        "clip features: least cosine between a detection and a re-identified object",
        min_value=-1.0,
        max_value=1.0,
    )


# Old parameter names (before the ``change.*`` section) -> new names ("": no longer used,
# ignored); accepted with a warning for one release. The misses_* counts map to log-odds
# thresholds (see ``misses_to_log_odds``).
RENAMED = {
    "association.moved_min_displacement_m": "change.moved_min_displacement_m",
    "association.moved_place_seen_before_s": "change.moved_place_seen_before_s",
    "association.change_min_label_confidence": "change.min_label_confidence",
    "association.change_window_s": "change.window_s",
    "association.second_detection_wait_s": "change.second_detection_wait_s",
    "association.moved_min_box_gap_m": "change.moved_min_box_gap_m",
    "association.moved_min_appearance_similarity": "change.moved_min_appearance_similarity",
    "association.moved_unique_appearance_similarity": "change.lookalike_appearance_similarity",
    "association.moved_unique_margin": "change.moved_unique_margin",
    "association.moved_unseen_for_s": "change.moved_unseen_for_s",
    "association.ambiguous_wait_s": "change.ambiguous_wait_s",
    "association.moved_min_feature_similarity": "change.moved_min_feature_similarity",
    "visibility.misses_to_absent": "change.absent_below_log_odds",
    "visibility.misses_to_relocate": "change.relocate_below_log_odds",
}


def misses_to_log_odds(misses: float, config: ChangeConfig) -> float:
    """Return the belief threshold crossed after ``misses`` see-through frames from certainty.

    Translates the old ``visibility.misses_to_*`` counts: from ``seen_log_odds``, ``misses``
    frames of ``through_log_odds`` cross the returned value, ``misses - 1`` do not.
    """
    return config.seen_log_odds + (float(misses) - 0.5) * config.through_log_odds
