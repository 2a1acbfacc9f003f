"""Zones (rooms) from clusters of objects, labelled from their contents, with stable ids.

Clustering: present objects are linked, closest pairs first, when the xy gap between their
boxes is at most ``link_distance_m`` and the merged group stays within ``max_zone_extent_m``
(constrained single linkage; candidate pairs from the relations' spatial hash); each group of at
least ``min_objects`` objects is a zone whose box spans its members' boxes. Doors, windows and
the like (``bridge_labels``), which would chain neighbouring rooms together, and absent objects
(kept as "last seen") join the zone whose grown footprint holds their centre, without moving
it. Walls keep rooms apart: given the memory's depth keyframes (``surface``), a link is refused
when the straight xy segment between the two boxes, probed at ``wall_probe_heights_m`` (above
tables, below door heads), passes a point where keyframes saw a surface more often than they
saw through it, outside every object's box (a wall, which the segmenter leaves out of the
objects). Without keyframes (or with no probe height) objects link across walls.

Labelling: each zone's furniture (objects at least ``describe_min_extent_m`` wide; small
objects move between rooms) becomes a sentence, "a room with a refrigerator, a cabinet and
a sink" (the most frequent labels first), embedded with ``encode_text`` and compared by cosine
with room prototypes "a kitchen with a stove, a refrigerator and a sink" built from
``room_vocabulary``; the best room names the zone when its cosine is at least
``min_label_similarity``, else the label stays "" (unknown).
With ``encode_text`` None (text encoder off) the zone is labelled by a keyword vote instead: an
object label sharing a word with a room's name or description votes for that room.

Stable ids: new clusters are matched one-to-one (Hungarian) to ``previous`` zones by shared
objects (overlap coefficient) or, failing that, xy box IoU; a match of at least
``match_min_overlap`` keeps the previous id, otherwise a new id ``zone_NNN`` above every previous
one is made.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from memory_node.core.config import param
from memory_node.core.relations import RelationConfig, _candidate_pairs
from memory_node.core.types import SceneObject, Zone

_LOG = logging.getLogger(__name__)

EncodeText = Callable[[list[str]], np.ndarray]
SurfaceEvidence = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]
"""(N, 3) points, tolerance -> per point, keyframes that saw a surface there / saw through it
(:meth:`memory_node.core.free_space.FreeSpaceMap.surface_evidence`)."""

DEFAULT_ROOMS = (
    "kitchen: a stove, a refrigerator, a sink and a microwave; "
    "living room: a sofa, a television, an armchair and a coffee table; "
    "bedroom: a bed, a wardrobe and a nightstand; "
    "bathroom: a toilet, a shower, a bathtub and a towel; "
    "office: a desk, a computer, a monitor and a bookshelf; "
    "dining room: a dining table and chairs; "
    "hallway: a coat rack, shoes and a door; "
    "laundry room: a washing machine and a dryer; "
    "garage: a car, a bicycle and tools"
)


@dataclass
class ZoneConfig:
    """Clustering, labelling and id matching of zones."""

    link_distance_m: float = param(
        1.5,
        "objects whose boxes are at most this far apart in xy belong to one zone",
        min_value=0.0,
        max_value=20.0,
    )
    max_zone_extent_m: float = param(
        6.0,
        "largest xy extent a zone may grow to by linking objects (0 = unlimited)",
        min_value=0.0,
        max_value=1000.0,
    )
    bridge_labels: str = param(
        "door, doorway, window, wall, floor, ceiling, stairs",
        "comma-separated label words of objects that join a zone but never link two groups",
    )
    wall_probe_heights_m: str = param(
        "1.0, 1.3, 1.6",
        "comma-separated heights above the map's z = 0 (the floor) at which links are probed "
        "for walls: above tables and counters, below door heads, within a camera's view; "
        "'' = no probing",
    )
    wall_tolerance_m: float = param(
        0.12,
        "a probe point is on a surface when a keyframe's reading is within this of its depth; "
        "probes are spaced by 2/3 of it",
        min_value=0.01,
        max_value=1.0,
    )
    min_objects: int = param(
        1, "least present objects in a zone; smaller groups get no zone", min_value=1
    )
    room_vocabulary: str = param(
        DEFAULT_ROOMS,
        "room names with typical contents: 'name: contents; name: contents; ...'",
    )
    min_label_similarity: float = param(
        0.3,
        "least cosine between a zone's contents and its best room; below it the label is ''",
        min_value=-1.0,
        max_value=1.0,
    )
    describe_min_extent_m: float = param(
        0.4,
        "only objects at least this large in xy (furniture) describe a zone for its label; "
        "all of them when it has none",
        min_value=0.0,
    )
    max_labels_in_description: int = param(
        12, "most frequent object labels used to describe a zone", min_value=1
    )
    match_min_overlap: float = param(
        0.5,
        "least shared-object overlap (or xy IoU) for a new zone to keep a previous zone's id",
        min_value=0.0,
        max_value=1.0,
    )


def parse_rooms(vocabulary: str) -> list[tuple[str, str]]:
    """'kitchen: a stove, a sink; bedroom' -> [("kitchen", "a stove, a sink"), ("bedroom", "")]."""
    rooms = []
    for item in vocabulary.split(";"):
        name, _, contents = item.partition(":")
        if name.strip():
            rooms.append((name.strip(), contents.strip()))
    if not rooms:
        raise ValueError("zones.room_vocabulary names no room")
    return rooms


def _article(label: str) -> str:
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def describe(labels: Sequence[str], max_labels: int) -> str:
    """Sentence describing a zone's contents, most frequent labels first; "" when unlabelled."""
    counts = Counter(label for label in labels if label)
    ranked = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    ranked = ranked[:max_labels]
    if not ranked:
        return ""
    items = [_article(label) for label in ranked]
    listing = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"a room with {listing}"


def _prototype(name: str, contents: str) -> str:
    return f"{_article(name)} with {contents}" if contents else _article(name)


_WORD = re.compile(r"[a-z]+")
_STOP = {"a", "an", "and", "the", "with", "of", "room"}


def _words(text: str) -> set[str]:
    return {w.rstrip("s") if len(w) > 3 else w for w in _WORD.findall(text.lower())} - _STOP


def _label_keywords(descriptions: list[str], rooms: list[tuple[str, str]]) -> list[str]:
    """Keyword-vote labels for the "off" mode (no text encoder)."""
    room_words = [_words(name + " " + contents) for name, contents in rooms]
    labels = []
    for text in descriptions:
        words = _words(text)
        votes = [len(words & rw) for rw in room_words]
        best = int(np.argmax(votes)) if votes else 0
        labels.append(rooms[best][0] if votes and votes[best] > 0 else "")
    return labels


_EMBED_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_EMBED_CACHE_SIZE = 1024


def _encode_cached(encode_text: EncodeText, texts: list[str]) -> np.ndarray:
    """(len(texts), D) unit embeddings; cached per encoder (its bound object or function).

    Zone recomputations mostly see the same prototypes and descriptions, so the text model
    runs only for new texts.
    """
    owner = getattr(encode_text, "__self__", encode_text)
    try:
        cache = _EMBED_CACHE.setdefault(owner, OrderedDict())
    except TypeError:  # not weak-referenceable: no caching
        cache = OrderedDict()
    # a bound method's owner may carry several encoders: key by the function too
    func = getattr(encode_text, "__func__", None)
    prefix = f"{id(func)}:" if func is not None else ""
    missing = [t for t in dict.fromkeys(texts) if prefix + t not in cache]
    if missing:
        vecs = np.asarray(encode_text(missing), dtype=np.float64)
        if vecs.ndim != 2 or vecs.shape[0] != len(missing):
            raise ValueError(f"encode_text returned shape {vecs.shape} for {len(missing)} texts")
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        for t, v in zip(missing, vecs, strict=True):
            cache[prefix + t] = v
    out = np.stack([cache[prefix + t] for t in texts]) if texts else np.zeros((0, 0))
    for t in texts:
        cache.move_to_end(prefix + t)
    while len(cache) > _EMBED_CACHE_SIZE:
        cache.popitem(last=False)
    return out


def _label_embedding(
    descriptions: list[str],
    rooms: list[tuple[str, str]],
    encode_text: EncodeText,
    min_similarity: float,
) -> list[str]:
    texts = [_prototype(n, c) for n, c in rooms] + [d for d in descriptions if d]
    vecs = _encode_cached(encode_text, texts)
    protos, zone_vecs = vecs[: len(rooms)], vecs[len(rooms) :]
    labels, k = [], 0
    for d in descriptions:
        if not d:
            labels.append("")
            continue
        sims = protos @ zone_vecs[k]
        k += 1
        best = int(np.argmax(sims))
        labels.append(rooms[best][0] if sims[best] >= min_similarity else "")
    return labels


def _xy_iou_matrix(
    a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray
) -> np.ndarray:
    """Return the (A, B) IoU of xy rectangles given (A, 2)/(B, 2) corners, metres."""
    ext = np.clip(
        np.minimum(a_hi[:, None], b_hi[None]) - np.maximum(a_lo[:, None], b_lo[None]), 0, None
    )
    inter = ext[..., 0] * ext[..., 1]
    area_a = np.prod(a_hi - a_lo, axis=1)[:, None]
    area_b = np.prod(b_hi - b_lo, axis=1)[None]
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _zone_index(zone_id: str) -> int:
    m = re.fullmatch(r"zone_(\d+)", zone_id)
    return int(m.group(1)) if m else 0


def _assign_ids(
    groups: list[list[str]],
    boxes: list[tuple[np.ndarray, np.ndarray]],
    previous: Sequence[Zone],
    min_overlap: float,
) -> list[str]:
    ids = [""] * len(groups)
    if previous and groups:
        # shared objects: count, per group, its members held by each previous zone
        zone_of_prev = {oid: j for j, z in enumerate(previous) for oid in z.object_ids}
        shared = np.zeros((len(groups), len(previous)))
        for i, members in enumerate(groups):
            for oid in members:
                j = zone_of_prev.get(oid)
                if j is not None:
                    shared[i, j] += 1
        sizes_new = np.array([max(len(g), 1) for g in groups], dtype=np.float64)[:, None]
        sizes_old = np.array([max(len(z.object_ids), 1) for z in previous], np.float64)[None]
        overlap = shared / np.minimum(sizes_new, sizes_old)
        p_center = np.array([np.asarray(z.center, np.float64)[:2] for z in previous])
        p_half = 0.5 * np.array([np.asarray(z.size, np.float64)[:2] for z in previous])
        g_lo = np.array([lo[:2] for lo, _ in boxes])
        g_hi = np.array([hi[:2] for _, hi in boxes])
        iou = _xy_iou_matrix(g_lo, g_hi, p_center - p_half, p_center + p_half)
        score = np.maximum(overlap, iou)
        rows, cols = linear_sum_assignment(-score)
        for i, j in zip(rows, cols, strict=True):
            if score[i, j] >= min_overlap:
                ids[i] = previous[j].id
    next_index = max((_zone_index(z.id) for z in previous), default=0) + 1
    for i in range(len(ids)):
        if not ids[i]:
            ids[i] = f"zone_{next_index:03d}"
            next_index += 1
    return ids


def _bridge_words(config: ZoneConfig) -> set[str]:
    return {w.strip().lower() for w in config.bridge_labels.split(",") if w.strip()}


def _is_bridge(label: str, bridges: set[str]) -> bool:
    return any(w in bridges for w in _WORD.findall(label.lower()))


def _nearest_zones(
    centers: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]], grow: float
) -> np.ndarray:
    """Return, per centre, the zone whose footprint grown by ``grow`` holds it (nearest).

    Args:
        centers: (M, 3) metres, map frame.
        boxes: zone (lower, upper) corners, metres.
        grow: footprint growth, metres.

    Returns:
        (M,) int64 zone index, -1 where no zone holds the centre.
    """
    if not boxes or not len(centers):
        return np.full(len(centers), -1, dtype=np.int64)
    lo = np.array([b[0][:2] for b in boxes]) - grow
    hi = np.array([b[1][:2] for b in boxes]) + grow
    mid = 0.5 * (lo + hi)
    xy = centers[:, None, :2]
    inside = np.all((xy >= lo[None]) & (xy <= hi[None]), axis=2)
    dist = np.where(inside, np.linalg.norm(xy - mid[None], axis=2), np.inf)
    best = np.argmin(dist, axis=1)
    return np.where(inside.any(axis=1), best, -1)


def _probe_heights(config: ZoneConfig) -> list[float]:
    """Parse ``wall_probe_heights_m``; a bad entry raises ValueError naming it."""
    out = []
    for item in config.wall_probe_heights_m.split(","):
        if item.strip():
            try:
                out.append(float(item))
            except ValueError:
                raise ValueError(
                    f"zones.wall_probe_heights_m: {item.strip()!r} is not a number"
                ) from None
    return out


def _facing_points(
    a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the closest xy points of two boxes (mid-overlap on an axis where they overlap)."""
    pa, pb = np.empty(2), np.empty(2)
    for k in range(2):
        lo, hi = max(a_lo[k], b_lo[k]), min(a_hi[k], b_hi[k])
        if lo <= hi:
            pa[k] = pb[k] = 0.5 * (lo + hi)
        elif a_hi[k] < b_lo[k]:
            pa[k], pb[k] = a_hi[k], b_lo[k]
        else:
            pa[k], pb[k] = a_lo[k], b_hi[k]
    return pa, pb


def _wall_between(
    a: int,
    b: int,
    mins: np.ndarray,
    maxs: np.ndarray,
    surface: SurfaceEvidence,
    heights: list[float],
    config: ZoneConfig,
) -> bool:
    """Whether a wall stands between boxes ``a`` and ``b`` (see the module docstring)."""
    tol = config.wall_tolerance_m
    pa, pb = _facing_points(mins[a, :2], maxs[a, :2], mins[b, :2], maxs[b, :2])
    length = float(np.linalg.norm(pb - pa))
    step = 2.0 * tol / 3.0
    if length < step:
        return False
    t = np.linspace(0.0, 1.0, int(np.ceil(length / step)) + 1)
    xy = pa + t[:, None] * (pb - pa)
    pts = np.concatenate([np.column_stack([xy, np.full(len(t), h)]) for h in heights])
    within = (pts[:, None] >= mins[None] - tol) & (pts[:, None] <= maxs[None] + tol)
    in_object = np.any(np.all(within, axis=2), axis=1)
    pts = pts[~in_object]
    if not len(pts):
        return False
    hits, through = surface(pts, tol)
    return bool(np.any((hits > 0) & (hits > through)))


def _cluster(
    mins: np.ndarray,
    maxs: np.ndarray,
    linkable: np.ndarray,
    config: ZoneConfig,
    walled: Callable[[int, int], bool] | None = None,
) -> list[list[int]]:
    """Constrained single linkage of the linkable boxes, closest pairs first.

    Two groups merge when a pair of their boxes is at most ``link_distance_m`` apart in xy,
    the merged group's xy extent stays within ``max_zone_extent_m`` (0 = unlimited), so a chain
    of objects cannot grow one zone across a whole house, and ``walled(a, b)`` (when given)
    finds no wall between the pair.

    Returns:
        Groups of row indices (linkable boxes only), in order of their first member.
    """
    n = len(mins)
    link = config.link_distance_m
    idx = np.flatnonzero(linkable)
    i_sub, j_sub = _candidate_pairs(
        mins[idx], maxs[idx], RelationConfig(near_distance_m=link, cell_size_m=max(1.0, link))
    )
    i_idx, j_idx = idx[i_sub], idx[j_sub]
    sep = np.clip(
        np.maximum(mins[i_idx, :2] - maxs[j_idx, :2], mins[j_idx, :2] - maxs[i_idx, :2]), 0, None
    )
    gap = np.linalg.norm(sep, axis=1)
    keep = gap <= link
    order = np.argsort(gap[keep], kind="stable")
    edges_i, edges_j = i_idx[keep][order], j_idx[keep][order]

    # union-find on Python lists (per-edge numpy calls would dominate)
    parent = list(range(n))
    rect = [list(r) for r in np.concatenate([mins[:, :2], maxs[:, :2]], axis=1).tolist()]
    limit = config.max_zone_extent_m if config.max_zone_extent_m > 0 else float("inf")

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(edges_i.tolist(), edges_j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        x0, y0, x1, y1 = rect[ra]
        u0, v0, u1, v1 = rect[rb]
        nx0, ny0, nx1, ny1 = min(x0, u0), min(y0, v0), max(x1, u1), max(y1, v1)
        if nx1 - nx0 > limit or ny1 - ny0 > limit:
            continue
        if walled is not None and walled(a, b):
            continue
        parent[rb] = ra
        rect[ra] = [nx0, ny0, nx1, ny1]
    groups: dict[int, list[int]] = {}
    for k in idx.tolist():
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


def compute_zones(
    objects: Sequence[SceneObject],
    config: ZoneConfig,
    encode_text: EncodeText | None,
    previous: Sequence[Zone] | None = None,
    surface: SurfaceEvidence | None = None,
) -> list[Zone]:
    """Cluster objects into labelled zones and set every object's ``zone_id`` ("" for none).

    Args:
        objects: all objects (present and absent); their ``zone_id`` is overwritten.
        config: clustering, labelling and matching parameters.
        encode_text: list of B strings -> (B, D) embeddings; None = keyword labelling ("off").
        previous: the zones of the last computation, to keep their ids.
        surface: the memory's depth-keyframe evidence, to keep rooms apart at their walls;
            None = no wall probing.

    Returns:
        Zones sorted by id; centre and size in metres, map frame.
    """
    rooms = parse_rooms(config.room_vocabulary)
    present = [o for o in objects if o.present and np.isfinite(o.center).all()]
    centers = np.array([np.asarray(o.center, np.float64).reshape(3) for o in present]).reshape(
        -1, 3
    )
    half = 0.5 * np.abs(
        np.array([np.asarray(o.size, np.float64).reshape(3) for o in present]).reshape(-1, 3)
    )
    mins, maxs = centers - half, centers + half
    n = len(present)
    link = config.link_distance_m
    bridges = _bridge_words(config)
    linkable = np.array([not _is_bridge(o.label, bridges) for o in present], dtype=bool)
    walled: Callable[[int, int], bool] | None = None
    heights = _probe_heights(config)
    if surface is not None and heights:
        probe = surface
        walled = lambda a, b: _wall_between(a, b, mins, maxs, probe, heights, config)  # noqa: E731

    groups = [
        g for g in _cluster(mins, maxs, linkable, config, walled) if len(g) >= config.min_objects
    ]
    boxes = [(mins[g].min(axis=0), maxs[g].max(axis=0)) for g in groups]
    member_ids = [[present[k].id for k in g] for g in groups]

    # absent objects and doors/windows join the zone whose grown footprint holds their centre
    # (nearest centre), without changing its box
    extra: list[list[str]] = [[] for _ in groups]
    joining = [o for k, o in enumerate(present) if not linkable[k]] + [
        o for o in objects if not o.present and np.isfinite(o.center).all()
    ]
    joining_centers = np.array(
        [np.asarray(o.center, np.float64).reshape(3) for o in joining]
    ).reshape(-1, 3)
    for obj, z in zip(joining, _nearest_zones(joining_centers, boxes, link), strict=True):
        if z >= 0:
            extra[int(z)].append(obj.id)

    # furniture describes a room; small objects move between rooms and blur it
    large = np.max(maxs[:, :2] - mins[:, :2], axis=1) >= config.describe_min_extent_m
    descriptions = [
        describe(
            [present[k].label for k in ([k for k in g if large[k]] or g)],
            config.max_labels_in_description,
        )
        for g in groups
    ]
    if encode_text is None:
        labels = _label_keywords(descriptions, rooms)
    else:
        labels = _label_embedding(descriptions, rooms, encode_text, config.min_label_similarity)

    zone_ids = _assign_ids(member_ids, boxes, previous or [], config.match_min_overlap)
    zone_of: dict[str, str] = {}
    zones = []
    for zid, label, (lo, hi), members, absent in zip(
        zone_ids, labels, boxes, member_ids, extra, strict=True
    ):
        ids = members + absent
        for oid in ids:
            zone_of[oid] = zid
        zones.append(
            Zone(id=zid, label=label, center=0.5 * (lo + hi), size=hi - lo, object_ids=ids)
        )
    for obj in objects:
        obj.zone_id = zone_of.get(obj.id, "")
    zones.sort(key=lambda z: z.id)
    _LOG.debug("zones: %d from %d present objects", len(zones), n)
    return zones
