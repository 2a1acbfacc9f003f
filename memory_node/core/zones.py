"""Zones (rooms) from clusters of objects, labelled from their contents, with stable ids.

Clustering: present objects are linked, closest pairs first, when the xy gap between their
boxes is at most ``link_distance_m`` and the merged group stays within ``max_zone_extent_m``
(constrained single linkage; candidate pairs from the relations' spatial hash); each group of at
least ``min_objects`` objects is a zone whose box spans its members' boxes. Doors, windows and
the like (``bridge_labels``), which would chain neighbouring rooms together, and absent objects
(kept as "last seen") join the zone whose grown footprint holds their centre, without moving
it. Zones come from objects only for now; free-space segmentation would separate rooms by
their walls.

Labelling: each zone's contents become a sentence, "a room with a refrigerator, a cabinet and
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


def _xy_iou(a_min: np.ndarray, a_max: np.ndarray, b_min: np.ndarray, b_max: np.ndarray) -> float:
    inter = np.prod(
        np.clip(np.minimum(a_max[:2], b_max[:2]) - np.maximum(a_min[:2], b_min[:2]), 0, None)
    )
    union = np.prod(a_max[:2] - a_min[:2]) + np.prod(b_max[:2] - b_min[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


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
        score = np.zeros((len(groups), len(previous)))
        for i, members in enumerate(groups):
            mset = set(members)
            for j, zone in enumerate(previous):
                pset = set(zone.object_ids)
                shared = len(mset & pset) / min(len(mset), len(pset)) if mset and pset else 0.0
                pmin = np.asarray(zone.center) - 0.5 * np.asarray(zone.size)
                pmax = np.asarray(zone.center) + 0.5 * np.asarray(zone.size)
                score[i, j] = max(shared, _xy_iou(boxes[i][0], boxes[i][1], pmin, pmax))
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


def _is_bridge(label: str, config: ZoneConfig) -> bool:
    words = _WORD.findall(label.lower())
    bridges = {w.strip() for w in config.bridge_labels.split(",") if w.strip()}
    return bool(words) and any(w in bridges for w in words)


def _nearest_zone(
    center: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]], grow: float
) -> int:
    """Index of the zone whose footprint grown by ``grow`` holds ``center`` (nearest); -1."""
    best, best_d = -1, np.inf
    for z, (lo, hi) in enumerate(boxes):
        if np.all(center[:2] >= lo[:2] - grow) and np.all(center[:2] <= hi[:2] + grow):
            d = float(np.linalg.norm(center[:2] - 0.5 * (lo[:2] + hi[:2])))
            if d < best_d:
                best, best_d = z, d
    return best


def _cluster(
    mins: np.ndarray, maxs: np.ndarray, linkable: np.ndarray, config: ZoneConfig
) -> list[list[int]]:
    """Constrained single linkage of the linkable boxes, closest pairs first.

    Two groups merge when a pair of their boxes is at most ``link_distance_m`` apart in xy and
    the merged group's xy extent stays within ``max_zone_extent_m`` (0 = unlimited), so a chain
    of objects cannot grow one zone across a whole house.

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

    parent = np.arange(n)
    lo = mins[:, :2].copy()
    hi = maxs[:, :2].copy()
    limit = config.max_zone_extent_m

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    for a, b in zip(edges_i.tolist(), edges_j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        new_lo, new_hi = np.minimum(lo[ra], lo[rb]), np.maximum(hi[ra], hi[rb])
        if limit > 0 and np.any(new_hi - new_lo > limit):
            continue
        parent[rb] = ra
        lo[ra], hi[ra] = new_lo, new_hi
    groups: dict[int, list[int]] = {}
    for k in idx.tolist():
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


def compute_zones(
    objects: Sequence[SceneObject],
    config: ZoneConfig,
    encode_text: EncodeText | None,
    previous: Sequence[Zone] | None = None,
) -> list[Zone]:
    """Cluster objects into labelled zones and set every object's ``zone_id`` ("" for none).

    Args:
        objects: all objects (present and absent); their ``zone_id`` is overwritten.
        config: clustering, labelling and matching parameters.
        encode_text: list of B strings -> (B, D) embeddings; None = keyword labelling ("off").
        previous: the zones of the last computation, to keep their ids.

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
    linkable = np.array([not _is_bridge(o.label, config) for o in present], dtype=bool)
    groups = [g for g in _cluster(mins, maxs, linkable, config) if len(g) >= config.min_objects]
    boxes = [(mins[g].min(axis=0), maxs[g].max(axis=0)) for g in groups]
    member_ids = [[present[k].id for k in g] for g in groups]

    # absent objects and doors/windows join the zone whose grown footprint holds their centre
    # (nearest centre), without changing its box
    extra: list[list[str]] = [[] for _ in groups]
    for k, obj in enumerate(present):
        if not linkable[k]:
            z = _nearest_zone(np.asarray(obj.center, np.float64).reshape(3), boxes, link)
            if z >= 0:
                extra[z].append(obj.id)
    for obj in objects:
        if obj.present or not groups or not np.isfinite(obj.center).all():
            continue
        z = _nearest_zone(np.asarray(obj.center, np.float64).reshape(3), boxes, link)
        if z >= 0:
            extra[z].append(obj.id)

    descriptions = [
        describe([present[k].label for k in g], config.max_labels_in_description) for g in groups
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
