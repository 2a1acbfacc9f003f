"""The long-term scene-graph memory facade: ingest frames, answer queries, render, save, load.

:class:`SceneMemory` ties the components together. Per accepted frame:

1. validate (:func:`geometry.validate_frame`, stamp after the last accepted one, see
   :mod:`stamp_guard`: a clock jump back resets the guard);
2. back-project the strided depth into the map frame (:mod:`geometry`);
3. segment into detections (:mod:`segmentation`: given masks or the geometric segmenter);
4. associate detections to objects near them (spatial hash -> scores -> Hungarian,
   :mod:`association`), fuse (:mod:`fusion`);
5. gather visibility evidence for unmatched objects in the view frustum (:mod:`visibility`);
6. re-identify unmatched labelled detections as moved objects (same id, voxels replaced, so no
   ghost stays behind), create tentative objects for the rest;
7. miss evidence -> absent + DISAPPEARED; confirmation -> APPEARED; state changes;
8. features when they pay (:mod:`features`), patch layer, periodic duplicate merge, relations
   and zones (``relations``/``zones`` modules), events to the short-term store.

A bad frame raises :class:`InvalidInput` before anything is changed. Not thread-safe: the node
holds one lock around every call.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from memory_node.core import appearance
from memory_node.core.association import (
    INFEASIBLE,
    AssociationConfig,
    DetectionGeometry,
    assign,
    detection_geometry,
    feature_similarity,
    inside_box,
    labels_agree,
    pair_score,
)
from memory_node.core.config import param
from memory_node.core.features import (
    ClipEncoder,
    FeatureConfig,
    LabelTextEncoder,
    label_feature,
    make_encoder,
)
from memory_node.core.free_space import FreeSpaceConfig, FreeSpaceMap
from memory_node.core.fusion import (
    MappingConfig,
    ObjectModel,
    fuse,
    make_id,
    merge_models,
    models_from_objects,
    new_model,
    refresh_geometry,
    replace_geometry,
    update_feature,
)
from memory_node.core.geometry import (
    DepthConfig,
    FramePoints,
    FrameRejected,
    backproject,
    invert_transform,
    validate_frame,
)
from memory_node.core.persistence import load_memory, save_memory
from memory_node.core.relations import RelationConfig, update_relations
from memory_node.core.retrieval import RetrievalConfig, Retriever
from memory_node.core.segmentation import Detection, SegmentationConfig, segment_frame
from memory_node.core.short_term import ShortTermConfig, ShortTermMemory
from memory_node.core.spatial_index import GridIndex, PatchLayer
from memory_node.core.stamp_guard import StampConfig, StampGuard
from memory_node.core.types import (
    ChangeEvent,
    ChangeKind,
    Frame,
    InvalidInput,
    MemorySnapshot,
    QueryRequest,
    Relation,
    SceneObject,
    ScoredObject,
    Zone,
)
from memory_node.core.validation import validate_snapshot
from memory_node.core.visibility import Evidence, VisibilityConfig, check_points, frustum_box
from memory_node.core.zones import ZoneConfig, compute_zones

log = logging.getLogger(__name__)

VACATED_PLACES = 256  # places that objects moved out of, kept to tell new arrivals there
PART_INSIDE = 0.8  # a new object this much inside a present one of its label ...
PART_MAX_VOLUME = 0.3  # ... whose box is at most this share of that one's is a piece of it


def _event(
    kind: ChangeKind,
    obj: SceneObject,
    stamp: float,
    old_position: np.ndarray | None = None,
    old_state: str | None = None,
    new_state: str | None = None,
) -> ChangeEvent:
    """Return a change event of ``obj`` as it is now (old position and states default to now)."""
    return ChangeEvent(
        kind=kind,
        object_id=obj.id,
        label=obj.label,
        stamp=stamp,
        old_position=obj.center.copy() if old_position is None else old_position,
        new_position=obj.center.copy(),
        old_state=obj.state if old_state is None else old_state,
        new_state=obj.state if new_state is None else new_state,
    )


def label_owners(
    fp: FramePoints, detections: list[Detection]
) -> tuple[np.ndarray, dict[str, int]]:
    """Return the strided grid of the label code covering each pixel (-1: none) and the codes.

    Unlabelled detections (geometric segments) own no pixels: they cannot tell one object's
    surface from another's.
    """
    grid = np.full(fp.grid_shape, -1, np.int32)
    codes: dict[str, int] = {}
    for d in detections:
        if not d.label or d.point_index is None:
            continue
        code = codes.setdefault(d.label, len(codes))
        grid.flat[fp.flat_index[d.point_index]] = code
    return grid, codes


def similar_size(a: SceneObject, b: SceneObject, factor: float = 3.0) -> bool:
    """Tell whether two objects' largest box extents are within ``factor`` of each other.

    A moved object keeps its size; a view of part of it may be smaller, but a lego brick under
    a flipped label is no kitchen cabinet.
    """
    ea = float(np.max(a.box_max - a.box_min, initial=0.0))
    eb = float(np.max(b.box_max - b.box_min, initial=0.0))
    return max(ea, eb) <= factor * max(min(ea, eb), 0.01)


def sample_points(points: np.ndarray, n: int = 64) -> np.ndarray:
    """Return about ``n`` evenly spaced rows of ``points`` (all of them when fewer)."""
    return points[:: max(1, points.shape[0] // n)]


def box_gap(a: SceneObject, b: SceneObject) -> float:
    """Return the distance between two objects' boxes, metres (0 when they touch/overlap)."""
    gap = np.maximum(0.0, np.maximum(a.box_min - b.box_max, b.box_min - a.box_max))
    return float(np.linalg.norm(gap))


SNAPSHOT_FORMAT = "memory_node.scene_memory/1"


@dataclass
class SceneMemoryConfig:
    """Every parameter of the scene memory, one small config per component (dotted names)."""

    depth: DepthConfig = field(default_factory=DepthConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    visibility: VisibilityConfig = field(default_factory=VisibilityConfig)
    free_space: FreeSpaceConfig = field(default_factory=FreeSpaceConfig)
    relations: RelationConfig = field(default_factory=RelationConfig)
    zones: ZoneConfig = field(default_factory=ZoneConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    short_term: ShortTermConfig = field(default_factory=ShortTermConfig)
    stamps: StampConfig = field(default_factory=StampConfig)
    max_render_objects: int = param(
        100000, "largest max_objects a render request may ask for", min_value=1
    )
    max_pending_events: int = param(
        10000,
        "events kept for drain_events() when nobody drains them (oldest dropped first)",
        min_value=1,
    )


@dataclass
class IngestReport:
    """What one ingested frame did.

    Attributes:
        accepted: the frame was used (bad frames raise InvalidInput instead).
        reason: "" when accepted, else why not.
        stamp: the frame's stamp, seconds.
        num_detections: detections produced by the segmenter.
        num_matched: detections associated to existing objects by geometry.
        num_new: new (tentative) objects created.
        num_updated: objects fused with a detection (matched + moved).
        num_moved: objects re-identified elsewhere.
        num_confirmed: tentative objects that entered the graph this frame.
        num_disappeared: objects marked absent this frame.
        ignored_instance_ids: instance ids of the mask missing from the labels.
        events: change events of this frame.
        duration_s: wall time of the ingest.
    """

    accepted: bool
    reason: str = ""
    stamp: float = 0.0
    num_detections: int = 0
    num_matched: int = 0
    num_new: int = 0
    num_updated: int = 0
    num_moved: int = 0
    num_confirmed: int = 0
    num_disappeared: int = 0
    ignored_instance_ids: int = 0
    events: list[ChangeEvent] = field(default_factory=list)
    duration_s: float = 0.0


@dataclass
class RenderedGraph:
    """A (sub)graph and its compact text rendering for an LLM prompt."""

    objects: list[SceneObject]
    relations: list[Relation]
    zones: list[Zone]
    text: str
    token_count: int


class SceneMemory:
    """Long-term scene-graph memory with change detection (see the module docstring).

    Args:
        config: the configuration tree; encoders are created lazily from ``config.features``.
    """

    def __init__(self, config: SceneMemoryConfig | None = None) -> None:
        self.config = config or SceneMemoryConfig()
        self._encoder: LabelTextEncoder | ClipEncoder | None = None
        self._encoder_ready = False
        self._encode_budget = 0  # crops that may still be encoded in the current frame
        self._crops_encoded = 0
        self._pending_dropped = 0
        self._retriever: Retriever | None = None
        self._reset_state()
        self._stamps = StampGuard(self.config.stamps)
        self._frames_accepted = 0
        self._dropped: dict[str, int] = {}
        self._ignored_ids = 0
        self._events_total = 0
        self._last_ingest_s = 0.0

    # ------------------------------------------------------------------ state

    def _reset_state(self) -> None:
        cfg = self.config
        self._models: dict[str, ObjectModel] = {}
        self._objects: dict[str, SceneObject] = {}  # confirmed objects, the public graph
        self._tentative: set[str] = set()  # ids of objects not yet confirmed
        self._by_label: dict[str, set[str]] = {}
        self._index = GridIndex(cfg.mapping.index_cell_m)
        self._patches = PatchLayer(cfg.mapping.patch_size_m or 1.0)
        self._free = FreeSpaceMap(cfg.free_space)
        # new objects awaiting APPEARED/MOVED -> deadline (None: awaiting a second detection)
        self._undecided: dict[str, float | None] = {}
        self._ambiguous: dict[str, float] = {}  # new at a new place, which look-alike? -> deadline
        # boxes (min, max) that objects moved out of: known empty since, like an absent object's
        self._vacated: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=VACATED_PLACES)
        self._next_index = 0
        self._relations: list[Relation] = []
        self._zones: list[Zone] = []
        self._graph_dirty = False  # relations are stale
        self._zones_dirty = False  # zones are stale
        self._graph_changed: set[str] = set()  # ids changed since the last relations update
        self._frames_since_graph = 0
        self._touched: set[str] = set()
        self._short_term = ShortTermMemory(cfg.short_term)
        self._pending: list[ChangeEvent] = []
        if self._retriever is not None:
            self._retriever.invalidate()

    # ------------------------------------------------------------------ encoders

    @property
    def encoder(self) -> LabelTextEncoder | ClipEncoder | None:
        """The feature encoder (built on first use; None when ``features.mode`` is off)."""
        if not self._encoder_ready:
            self._encoder = make_encoder(self.config.features)
            self._encoder_ready = True
        return self._encoder

    @property
    def encode_text(self) -> Callable[[list[str]], np.ndarray] | None:
        """Text encoder in the objects' feature space, or None when features are off."""
        if self.config.features.mode == "off":
            return None
        return self._encode_text

    def _encode_text(self, texts: list[str]) -> np.ndarray:
        enc = self.encoder
        assert enc is not None
        return enc.encode_text(texts)

    def warm_up(self, labels: list[str] | None = None) -> None:
        """Load the encoder now and cache the embeddings of known labels (e.g. a vocabulary).

        Optional: without it the first frames pay the model load and each new label's encoding.
        """
        enc = self.encoder
        if isinstance(enc, LabelTextEncoder) and labels:
            enc.encode_labels([lab for lab in labels if lab])

    @property
    def retriever(self) -> Retriever:
        """The other half's ranking engine, bound to this memory's text encoder."""
        if self._retriever is None:
            self._retriever = Retriever(self.config.retrieval, self.encode_text)
        return self._retriever

    # ------------------------------------------------------------------ read access

    @property
    def objects(self) -> dict[str, SceneObject]:
        """Confirmed objects (present and absent), id -> object (a new dict; objects shared)."""
        return dict(self._objects)

    @property
    def relations(self) -> list[Relation]:
        """Current relations between confirmed objects."""
        self._ensure_graph(force=True)
        return list(self._relations)

    @property
    def zones(self) -> list[Zone]:
        """Current zones."""
        self._ensure_graph(force=True)
        return list(self._zones)

    @property
    def patches(self) -> PatchLayer:
        """The patch layer (coarse cells -> objects seen there, features, last seen)."""
        return self._patches

    @property
    def short_term(self) -> ShortTermMemory:
        """The short-term store of change events."""
        return self._short_term

    # ------------------------------------------------------------------ ingest

    def _reject(self, exc: InvalidInput, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        raise exc

    def ingest(self, frame: Frame) -> IngestReport:
        """Fuse one posed RGB-D frame into memory.

        Raises:
            InvalidInput: the frame is malformed or not newer than the last accepted one; memory
                is unchanged and the drop is counted by reason in :meth:`stats`.
        """
        t0 = time.perf_counter()
        cfg = self.config
        try:
            validate_frame(frame, cfg.depth)
        except FrameRejected as exc:
            self._reject(exc, exc.reason)
        stamp = float(frame.stamp)
        try:
            self._stamps.check(stamp)
        except InvalidInput as exc:
            self._reject(exc, "out_of_order")
        depth = np.asarray(frame.depth, dtype=np.float32)
        K = np.asarray(frame.K, dtype=np.float64)
        map_T_camera = np.asarray(frame.map_T_camera, dtype=np.float64)
        fp, _ = backproject(depth, K, map_T_camera, cfg.depth)
        vs = cfg.mapping.voxel_size_m
        detections, ignored = segment_frame(frame, fp, vs, cfg.segmentation)
        report = IngestReport(
            accepted=True,
            stamp=stamp,
            num_detections=len(detections),
            ignored_instance_ids=ignored,
        )
        if ignored:
            log.debug("frame %.3f: %d instance ids missing from the labels", stamp, ignored)
        self._stamps.accept(stamp)
        self._frames_accepted += 1
        self._ignored_ids += ignored
        events: list[ChangeEvent] = []
        changed: set[str] = set()

        encoder = self.encoder if cfg.features.mode != "off" else None
        if isinstance(encoder, LabelTextEncoder):
            labelled = [d for d in detections if d.label]
            if labelled:
                emb = encoder.encode_labels([d.label for d in labelled])
                for d, e in zip(labelled, emb, strict=True):
                    d.feature = e
        geoms = [detection_geometry(d, cfg.association) for d in detections]
        looks = self._appearances(frame, fp, detections)

        # --- association by geometry + label + feature -------------------------------------
        matches = self._associate(detections, geoms, looks)
        report.num_matched = len(matches)
        matched_ids = set(matches.values())

        # --- visibility evidence for unmatched objects in the frustum -----------------------
        camera_T_map = invert_transform(map_T_camera)
        owners = None
        if cfg.visibility.use_masks:  # the grid serves only claimed voxels
            grid, codes = label_owners(fp, detections)
            owners = (grid, fp.stride, codes)
        evidence = self._visibility(depth, K, map_T_camera, camera_T_map, matched_ids, owners)

        # --- re-identification of moved objects, new objects --------------------------------
        unmatched = [i for i in range(len(detections)) if i not in matches]
        self._encode_budget = cfg.features.max_batch
        if isinstance(encoder, ClipEncoder) and unmatched:
            # Only detections that might re-identify a known object of their label need a
            # feature before the decision; the others are encoded after, within the budget.
            reid = [detections[i] for i in unmatched if self._by_label.get(detections[i].label)]
            reid.sort(key=lambda d: -d.num_pixels)
            self._encode_detections(frame.rgb, reid, encoder)
        used = set(matched_ids)
        moved: dict[int, str] = {}
        for i in unmatched:
            oid = self._reidentify(detections[i], geoms[i], looks[i], stamp, evidence, used)
            if oid is not None:
                log.debug(
                    "%.2f detection %s re-identifies %s (look %s)",
                    stamp,
                    detections[i].label,
                    oid,
                    appearance.similarity(looks[i], self._models[oid].obj.appearance),
                )
                moved[i] = oid
                used.add(oid)

        for i, oid in matches.items():
            self._update(self._models[oid], detections[i], looks[i], stamp, events, False)
            changed.add(oid)
        for i, oid in moved.items():
            model = self._models[oid]
            disp = float(np.linalg.norm(geoms[i].center - model.obj.center))
            if disp >= cfg.association.moved_min_displacement_m:
                self._update(model, detections[i], looks[i], stamp, events, True)
                report.num_moved += 1
            else:
                self._update(model, detections[i], looks[i], stamp, events, False)
            changed.add(oid)
        report.num_updated = len(matches) + len(moved)
        det_of: dict[str, Detection] = {oid: detections[i] for i, oid in matches.items()}
        det_of.update({oid: detections[i] for i, oid in moved.items()})
        for i in unmatched:
            if i in moved:
                continue
            model = new_model(self._next_index, detections[i], stamp, cfg.mapping)
            model.obj.appearance = looks[i]
            self._next_index += 1
            self._add_model(model)
            det_of[model.obj.id] = detections[i]
            changed.add(model.obj.id)
            report.num_new += 1

        # --- miss evidence -> absent ---------------------------------------------------------
        for oid, ev in evidence.items():
            if oid in used or oid not in self._models:
                continue
            model = self._models[oid]
            if (
                not model.confirmed
                and cfg.mapping.depth_confirms
                and ev.is_there(cfg.visibility)
                and not model.depth_support
            ):
                # The segmenter missed it but the depth shows it again: one view of support.
                model.depth_support = 1
                changed.add(oid)
            if not ev.is_miss(cfg.visibility):
                continue
            if not model.confirmed:
                self._remove_model(oid)
                continue
            model.obj.miss_count += 1.0
            if not model.obj.present:
                continue
            # Found elsewhere (a look-alike newly standing where it was not): fewer misses do.
            if model.obj.miss_count >= min(
                cfg.visibility.misses_to_relocate, cfg.visibility.misses_to_absent
            ):
                relocated = self._relocate(model, stamp, events)
                if relocated is not None:
                    changed.add(oid)
                    changed.discard(relocated)
                    report.num_moved += 1
                    continue
            if model.obj.miss_count >= cfg.visibility.misses_to_absent:
                model.obj.present = False
                changed.add(oid)
                if model.obj.observations < cfg.mapping.min_observations_to_confirm:
                    # confirmed by depth on one detection, e.g. a mislabelled view of a shelf:
                    # too little to say that something went away
                    log.debug("%s (%s) absent, detected once: no event", oid, model.obj.label)
                    continue
                report.num_disappeared += 1
                events.append(_event(ChangeKind.DISAPPEARED, model.obj, stamp))

        # --- confirmation and pruning of tentative objects ----------------------------------
        for oid in list(changed):
            tentative = self._models.get(oid)
            if tentative is None or tentative.confirmed:
                continue
            model = tentative
            if (
                model.obj.observations + model.depth_support
                >= cfg.mapping.min_observations_to_confirm
            ):
                model.confirmed = True
                self._objects[oid] = model.obj
                self._tentative.discard(oid)
                report.num_confirmed += 1
                self._undecided[oid] = None
        # A new object standing where free space was seen (or where an object since found gone
        # stood): APPEARED, or a known one moved here, or a part of a known one. Decided once
        # its label is certain enough and its place known to be new, within the window; else
        # it was merely seen for the first time and makes no event. The window opens with the
        # second detection: a glimpse from afar may come well before a proper view.
        for oid, deadline in list(self._undecided.items()):
            model_or_none = self._models.get(oid)
            if model_or_none is None:
                del self._undecided[oid]
                continue
            model = model_or_none
            if model.obj.observations < cfg.mapping.min_observations_to_confirm:
                # confirmed with depth support: one detection (one label) is too little
                if stamp > model.obj.first_seen + cfg.association.second_detection_wait_s:
                    del self._undecided[oid]
                continue
            if deadline is None:
                deadline = self._undecided[oid] = stamp + cfg.association.change_window_s
            if stamp > deadline:
                del self._undecided[oid]
                continue
            if oid not in changed or not model.obj.present:
                continue
            if model.obj.label_confidence < cfg.association.change_min_label_confidence:
                log.debug("%s: label %s still uncertain", oid, model.obj.label)
                continue
            parent = self._parent_of_part(model)
            if parent is not None:
                log.debug("%s is a part of %s (state %s)", oid, parent.obj.id, model.obj.state)
                del self._undecided[oid]
                self._merge_pair(parent, model)
                changed.discard(oid)
                changed.add(parent.obj.id)
                continue
            if cfg.free_space.enabled and not self._new_here(
                model.obj.points, model.obj.first_seen, exclude=oid
            ):
                continue
            del self._undecided[oid]
            self._ambiguous[oid] = stamp + cfg.association.ambiguous_wait_s
        # New objects at new places: a known look-alike moved here (MOVED), or APPEARED. While
        # several look-alikes could have moved here, wait: seeing their places decides (one
        # found gone is relocated here, which removes this id); past the wait, APPEARED.
        for oid, deadline in list(self._ambiguous.items()):
            model_or_none = self._models.get(oid)
            if model_or_none is None or not model_or_none.obj.present:
                del self._ambiguous[oid]
                continue
            twin, undecided = self._moved_here(model_or_none)
            if twin is not None:
                del self._ambiguous[oid]
                self._absorb(self._models[twin], oid, stamp, events)
                changed.discard(oid)
                changed.add(twin)
                report.num_moved += 1
            elif not undecided or stamp > deadline:
                del self._ambiguous[oid]
                events.append(_event(ChangeKind.APPEARED, model_or_none.obj, stamp, old_state=""))
            else:
                log.debug(
                    "%s (%s): several look-alikes could have moved here",
                    oid,
                    model_or_none.obj.label,
                )
        self._prune_tentative(stamp)

        # --- features, index, patches --------------------------------------------------------
        self._update_features(frame.rgb, changed, det_of)
        for oid in changed:
            if oid in self._models:
                obj = self._models[oid].obj
                self._index.update(oid, obj.box_min, obj.box_max)
        if cfg.mapping.patch_size_m > 0:
            for oid, det in det_of.items():
                if oid in self._models:
                    self._patches.observe(oid, det.means, stamp, det.feature)
        # Observed space (a sparse sample of this frame's readings within the visibility range):
        # tells later whether a newly seen object stands where the robot had looked before.
        sample = fp.points_map[:: max(1, cfg.mapping.space_sample_every)]
        near = np.sum((sample - map_T_camera[:3, 3].astype(np.float32)) ** 2, axis=1)
        self._patches.observe_space(sample[near <= cfg.visibility.max_range_m**2], stamp)
        if cfg.free_space.enabled:
            self._free.observe(depth, K, map_T_camera, stamp)
        self._touched |= changed

        # --- maintenance ---------------------------------------------------------------------
        if (
            cfg.mapping.merge_every_n_frames
            and self._frames_accepted % cfg.mapping.merge_every_n_frames == 0
        ):
            self._merge_duplicates()
        changed_confirmed = [oid for oid in changed if oid in self._objects]
        if changed_confirmed:
            self._graph_dirty = True
            self._graph_changed.update(changed_confirmed)
            if self._retriever is not None:
                self._retriever.invalidate(changed_confirmed)
        self._frames_since_graph += 1
        self._ensure_graph(force=False)

        for event in events:
            self._short_term.record(event)
        self._pending.extend(events)
        excess = len(self._pending) - cfg.max_pending_events
        if excess > 0:
            del self._pending[:excess]
            self._pending_dropped += excess
        self._events_total += len(events)
        report.events = events
        report.duration_s = time.perf_counter() - t0
        self._last_ingest_s = report.duration_s
        return report

    def _associate(
        self,
        detections: list[Detection],
        geoms: list[DetectionGeometry],
        looks: list[np.ndarray | None],
    ) -> dict[int, str]:
        """Assign detections to objects; returns detection index -> object id.

        Besides :func:`association.pair_score`, colours must not clearly disagree with an
        established object (``association.min_appearance_similarity``).
        """
        cfg = self.config
        if not detections or not self._models:
            return {}
        margin = cfg.association.search_margin_m
        cand_lists: list[list[str]] = []
        for g in geoms:
            if cfg.mapping.spatial_index:
                near = self._index.query(g.box_min - margin, g.box_max + margin)
                cand_lists.append(sorted(near))
            else:
                cand_lists.append(list(self._models))
        columns = sorted(set().union(*cand_lists))
        if not columns:
            return {}
        col = {oid: j for j, oid in enumerate(columns)}
        scores = np.full((len(detections), len(columns)), INFEASIBLE)
        gate = cfg.association.use_appearance
        for i, ids in enumerate(cand_lists):
            for oid in ids:
                model = self._models[oid]
                if gate and looks[i] is not None and model.obj.observations >= 3:
                    a_sim = appearance.similarity(looks[i], model.obj.appearance)
                    if a_sim is not None and a_sim < cfg.association.min_appearance_similarity:
                        continue
                scores[i, col[oid]] = pair_score(detections[i], geoms[i], model, cfg.association)
        return {i: columns[j] for i, j in assign(scores)}

    def _visibility(
        self,
        depth: np.ndarray,
        K: np.ndarray,
        map_T_camera: np.ndarray,
        camera_T_map: np.ndarray,
        matched: set[str],
        owners: tuple[np.ndarray, int, dict[str, int]] | None,
    ) -> dict[str, Evidence]:
        """Evidence for the present, unmatched objects whose box meets the view frustum.

        ``owners``: the frame's label owner grid, its stride and label codes
        (:func:`label_owners`), for voxels claimed by other labels' detections; None when
        masks are not used.
        """
        cfg = self.config
        if not self._models:
            return {}
        if cfg.mapping.spatial_index:
            lo, hi = frustum_box(K, depth.shape, map_T_camera, cfg.visibility.max_range_m)
            ids = self._index.query(lo, hi)
        else:
            ids = set(self._models)
        grid, stride, codes = owners if owners is not None else (None, 1, {})
        out: dict[str, Evidence] = {}
        for oid in ids:
            if oid in matched:
                continue
            model = self._models.get(oid)
            if model is None or model.obj.points.shape[0] == 0:
                continue
            out[oid] = check_points(
                model.obj.points,
                depth,
                K,
                camera_T_map,
                cfg.visibility,
                grid,
                stride,
                codes.get(model.obj.label, -1),
            )
        return out

    def _appearances(
        self, frame: Frame, fp: FramePoints, detections: list[Detection]
    ) -> list[np.ndarray | None]:
        """Colour descriptor of each detection's pixels (None when off).

        The frame is validated: rgb is (H, W, 3) and the size of the depth image.
        """
        rgb = np.asarray(frame.rgb)
        if not self.config.association.use_appearance:
            return [None] * len(detections)
        out: list[np.ndarray | None] = []
        for d in detections:
            idx = d.point_index
            if idx is None or idx.size == 0:
                out.append(None)
                continue
            idx = idx[:: max(1, idx.size // appearance.MAX_PIXELS)]  # an even sample is enough
            out.append(appearance.colour_descriptor(rgb[fp.rows[idx], fp.cols[idx]]))
        return out

    def _reidentify(
        self,
        det: Detection,
        geom: DetectionGeometry,
        look: np.ndarray | None,
        stamp: float,
        evidence: dict[str, Evidence],
        used: set[str],
    ) -> str | None:
        """Find the confirmed object an unmatched detection re-identifies (its id, or None).

        A candidate has the detection's label, was not matched this frame, and its old place is
        verified empty: it is absent, or this frame sees through it; and the detection stands
        where the robot had looked before. (An object merely not seen
        for a while is not a candidate: in a house with several mugs, the second mug seen is
        another mug, not the first one moved. When the new place is seen before the old one,
        :meth:`_relocate` links the two once the old place is found empty.) With image features
        on both sides, they must also agree, and so must the colour descriptors.

        (A new object whose colours match one unverified object of its label uniquely is linked
        at confirmation instead: :meth:`_link_unique_look`.)
        """
        if not det.label or not self._by_label.get(det.label):
            return None
        vis = self.config.visibility
        if not self._new_here(det.means, stamp):
            return None  # not where free space was seen before: seen for the first time
        cfg = self.config.association
        looks = {
            oid: appearance.similarity(look, self._models[oid].obj.appearance)
            for oid in self._by_label.get(det.label, ())
            if self._models[oid].confirmed
        }
        best: tuple[tuple[float, float, float, float], str] | None = None
        for oid, a_sim in looks.items():
            if oid in used:
                continue
            if a_sim is not None and a_sim < cfg.moved_min_appearance_similarity:
                continue  # looks different: another instance of the label
            obj = self._models[oid].obj
            ev = evidence.get(oid)
            if ev is not None and ev.is_there(vis):
                continue
            seen_through = ev is not None and ev.is_miss(vis)
            if obj.present and not seen_through:
                continue
            sim = self._reid_similarity(det.feature, obj.feature)
            if sim is None:
                continue
            dist = float(np.linalg.norm(geom.center - obj.center))
            key = (0.0 if seen_through else 1.0, -(a_sim or 0.0), -sim, dist)
            if best is None or key < best[0]:
                best = (key, oid)
        if best is None:
            return None
        chosen = looks.get(best[1])
        if chosen is not None:
            # An object of the label not known to be gone that looks even more alike: this may
            # well be that one, moved; wait until one of the two places is seen (relocation).
            for oid, a_sim in looks.items():
                if oid == best[1] or oid in used or a_sim is None or a_sim <= chosen:
                    continue
                other = self._models[oid].obj
                ev = evidence.get(oid)
                if other.present and not (ev is not None and ev.is_there(vis)):
                    return None
        return best[1]

    def _moved_here(self, new: ObjectModel) -> tuple[str | None, bool]:
        """Tell which known object a new one is, by its look: (that id or None, undecided).

        The new object stands where free space was seen before (it is new *there*). A known
        object of its label *could have moved here* when it is confirmed, its colours match at
        least ``association.moved_unique_appearance_similarity``, it has not been seen for
        ``association.moved_unseen_for_s`` before the new one was first seen (nor since), and it
        stands at least ``association.moved_min_displacement_m`` away, its box no nearer than
        ``association.moved_min_box_gap_m``. When one such object matches and no further object
        of the label comes within ``association.moved_unique_margin`` of its similarity, that
        object moved here, even though its old place has not been seen empty yet (it is then
        left with nothing to miss). When several could have, the answer is undecided (True):
        the caller waits until their places are seen. When none could have: (None, False).
        """
        cfg = self.config.association
        if not cfg.use_appearance or new.obj.appearance is None:
            return None, False
        sims: dict[str, float] = {}
        movable: list[str] = []
        for oid in self._by_label.get(new.obj.label, ()):
            other = self._models[oid]
            if oid == new.obj.id or not other.confirmed:
                continue
            a_sim = appearance.similarity(new.obj.appearance, other.obj.appearance)
            if a_sim is None:
                continue
            sims[oid] = a_sim
            cand = other.obj
            if (
                a_sim >= cfg.moved_unique_appearance_similarity
                and cand.last_seen <= new.obj.first_seen - cfg.moved_unseen_for_s
                and float(np.linalg.norm(cand.center - new.obj.center))
                >= cfg.moved_min_displacement_m
                # touching its box: a part seen alone (an opened door), not a move
                and box_gap(cand, new.obj) >= cfg.moved_min_box_gap_m
                and similar_size(cand, new.obj)
                and self._reid_similarity(new.obj.feature, cand.feature) is not None
            ):
                movable.append(oid)
        if not movable:
            return None, False
        best = max(sims, key=lambda o: sims[o])
        unique = not any(
            s > sims[best] - cfg.moved_unique_margin for o, s in sims.items() if o != best
        )
        if unique and best in movable:
            return best, False
        return None, True

    def _new_here(self, points: np.ndarray, first_seen: float, exclude: str = "") -> bool:
        """Tell whether an object first seen at ``first_seen`` stands where it was not before.

        With free-space tracing (``free_space.enabled``): at least
        ``free_space.appeared_min_free_fraction`` of its points lie in voxels seen free at least
        ``free_space.appeared_min_age_s`` before (the camera had looked through that place).
        Without it: at least half of them lie in patches observed
        ``association.moved_place_seen_before_s`` before.
        """
        pts = sample_points(points)
        if pts.shape[0] == 0:
            return False
        fs = self.config.free_space
        margin = self.config.association.box_margin_m
        if fs.enabled:
            free = self._free.seen_free(pts, first_seen - fs.appeared_min_age_s)
            # the place of an object since found gone, or moved away, counts as free space too
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            boxes = list(self._vacated)
            for oid in self._index.query(lo, hi):
                gone = self._models.get(oid)
                if oid == exclude or gone is None or gone.obj.present or not gone.confirmed:
                    continue
                boxes.append((gone.obj.box_min, gone.obj.box_max))
            for box_lo, box_hi in boxes:
                if np.any(box_lo > hi + margin) or np.any(box_hi < lo - margin):
                    continue
                free |= inside_box(pts, box_lo, box_hi, margin)
            return float(np.count_nonzero(free)) / pts.shape[0] >= fs.appeared_min_free_fraction
        before = first_seen - self.config.association.moved_place_seen_before_s
        return self._patches.observed_before(pts, before) >= 0.5

    def _reid_similarity(self, a: np.ndarray | None, b: np.ndarray | None) -> float | None:
        """Image-feature similarity for re-identifying a moved object; None = they disagree.

        Image features on both sides must agree (``association.moved_min_feature_similarity``);
        without them (features off or label text, crop budget spent, crop too small) the label
        alone decides and the similarity is 0.
        """
        if not isinstance(self._encoder, ClipEncoder) or a is None or b is None:
            return 0.0
        sim = feature_similarity(a, b)
        return sim if sim >= self.config.association.moved_min_feature_similarity else None

    def _relocate(self, model: ObjectModel, stamp: float, events: list[ChangeEvent]) -> str | None:
        """Link an object found missing to a same-label object first seen after it (MOVED).

        Called when ``model``'s place is verified empty. A confirmed, present object with the
        same label whose ``first_seen`` is later than ``model``'s ``last_seen`` (it appeared
        while this one was out of sight), standing where the robot had looked before it was
        first seen (so it is new there, not merely seen for the first time), at least
        ``moved_min_displacement_m`` away, and (with image features on both) similar enough, is
        taken to be this object moved: ``model`` keeps its id and takes the other's geometry,
        the other id is removed, and a MOVED event replaces the DISAPPEARED one. Returns the
        removed id, or None when nothing matches.
        """
        cfg = self.config.association
        obj = model.obj
        best: tuple[tuple[float, float, float], str] | None = None
        for oid in self._by_label.get(obj.label, ()):
            other = self._models[oid]
            o = other.obj
            if oid == obj.id or not other.confirmed or not o.present:
                continue
            if o.first_seen <= obj.last_seen:
                continue
            if not self._new_here(o.points, o.first_seen):
                continue  # not where free space was seen before: seen for the first time
            dist = float(np.linalg.norm(o.center - obj.center))
            if dist < cfg.moved_min_displacement_m or box_gap(o, obj) < cfg.moved_min_box_gap_m:
                continue
            sim = self._reid_similarity(obj.feature, o.feature)
            if sim is None:
                continue
            a_sim = appearance.similarity(obj.appearance, o.appearance)
            if a_sim is not None and a_sim < cfg.moved_min_appearance_similarity:
                continue  # looks different: another instance that appeared
            key = (-(a_sim or 0.0), -sim, -o.first_seen)
            if best is None or key < best[0]:
                best = (key, oid)
        if best is None:
            return None
        self._absorb(model, best[1], stamp, events)
        log.debug("%s found at the place of %s: MOVED", obj.id, best[1])
        return best[1]

    def _absorb(
        self, model: ObjectModel, other_id: str, stamp: float, events: list[ChangeEvent]
    ) -> None:
        """Make ``model`` the object seen as ``other_id`` (it moved there): one MOVED event.

        ``model`` keeps its id and takes the other's geometry, votes, observations and look;
        the other id is removed.
        """
        obj = model.obj
        other = self._models[other_id]
        old_center = obj.center.copy()
        self._vacated.append((obj.box_min.copy(), obj.box_max.copy()))
        log.debug(
            "%.2f %s (%s) is %s moved %.2f m (look %s)",
            stamp,
            other_id,
            obj.label,
            obj.id,
            float(np.linalg.norm(other.obj.center - obj.center)),
            appearance.similarity(obj.appearance, other.obj.appearance),
        )
        model.keys, model.means, model.hits = other.keys, other.means, other.hits
        for lab, v in other.obj.label_votes.items():
            obj.label_votes[lab] = obj.label_votes.get(lab, 0.0) + v
        obj.observations += other.obj.observations
        obj.last_seen = max(obj.last_seen, other.obj.last_seen)
        if other.obj.state:
            obj.state = other.obj.state
        if other.obj.feature is not None and obj.feature is None:
            obj.feature = other.obj.feature
        obj.appearance = appearance.blend(
            other.obj.appearance, obj.appearance, other.obj.observations
        )
        obj.present = True
        obj.miss_count = 0.0
        refresh_geometry(model, self.config.mapping, stamp, record_history=True)
        self._remove_model(other_id)
        if self.config.short_term.consolidate:
            self._short_term.forget(other_id)  # its APPEARED was this move's second half
        if self.config.mapping.patch_size_m > 0:
            self._patches.rename_object(other_id, obj.id)
        self._index.update(obj.id, obj.box_min, obj.box_max)
        events.append(_event(ChangeKind.MOVED, obj, stamp, old_position=old_center))

    def _update(
        self,
        model: ObjectModel,
        det: Detection,
        look: np.ndarray | None,
        stamp: float,
        events: list[ChangeEvent],
        moved_to: bool,
    ) -> None:
        """Fuse (or, when moved, replace) ``det`` into ``model`` and emit the right events."""
        cfg = self.config
        obj = model.obj
        old_center = obj.center.copy()
        old_label = obj.label
        was_absent = not obj.present
        obj.appearance = appearance.blend(obj.appearance, look, obj.observations)
        if moved_to:
            self._vacated.append((obj.box_min.copy(), obj.box_max.copy()))
            replace_geometry(model, det, stamp, cfg.mapping)
        else:
            fuse(model, det, stamp, cfg.mapping)
        obj.present = True
        if obj.label != old_label:
            self._relabel(obj.id, old_label, obj.label)
        if model.confirmed and (moved_to or was_absent):
            kind = ChangeKind.MOVED if moved_to else ChangeKind.APPEARED
            events.append(
                _event(kind, obj, stamp, old_position=old_center, new_state=det.state or obj.state)
            )
        if det.state and det.state != obj.state:
            if model.confirmed and obj.state:
                events.append(_event(ChangeKind.STATE_CHANGED, obj, stamp, new_state=det.state))
            obj.state = det.state

    def _encode_detections(
        self, rgb: np.ndarray, dets: list[Detection], encoder: ClipEncoder
    ) -> None:
        """Encode the first crops of ``dets`` within the frame's remaining budget (in place)."""
        m = self.config.features.min_crop_px
        todo = [
            d
            for d in dets
            if d.feature is None
            and d.bbox_px[2] - d.bbox_px[0] >= m
            and d.bbox_px[3] - d.bbox_px[1] >= m
        ]
        if not todo or self._encode_budget <= 0:
            return
        todo = todo[: self._encode_budget]
        self._encode_budget -= len(todo)
        self._crops_encoded += len(todo)
        feats = encoder.encode_crops(np.asarray(rgb), [d.bbox_px for d in todo])
        for d, f in zip(todo, feats, strict=True):
            d.feature = f

    def _update_features(
        self,
        rgb: np.ndarray,
        changed: set[str],
        det_of: dict[str, Detection],
    ) -> None:
        """Object features after this frame's updates; encodes crops only when it pays."""
        cfg = self.config.features
        encoder = self.encoder if cfg.mode != "off" else None
        if encoder is None:
            return
        if isinstance(encoder, LabelTextEncoder):
            for oid in changed:
                model = self._models.get(oid)
                if model is not None and model.obj.label_votes:
                    model.obj.feature = label_feature(encoder, model.obj.label_votes)
            return
        assert isinstance(encoder, ClipEncoder)
        # Priority: 0 = no feature yet, 1 = clearly better view, 2 = periodic refresh; detections
        # already encoded this frame (re-identification) are reused without using the budget.
        want: list[tuple[int, ObjectModel, Detection]] = []
        for oid, det in det_of.items():
            model = self._models.get(oid)
            if model is None:
                continue
            obs = model.obj.observations
            if model.obj.feature is None or det.feature is not None:
                priority = 0
            elif det.num_pixels >= cfg.better_view_ratio * max(model.best_view_pixels, 1):
                priority = 1
            elif (
                cfg.reencode_every_n_observations
                and obs - model.encoded_at >= cfg.reencode_every_n_observations
            ):
                priority = 2
            else:
                continue
            want.append((priority, model, det))
        if not want:
            return
        want.sort(key=lambda pmd: (pmd[0], -pmd[2].num_pixels))
        need = [d for _, _, d in want if d.feature is None]
        self._encode_detections(rgb, need, encoder)
        for _, model, det in want:
            if det.feature is None:
                continue  # over budget this frame: still eligible next time
            update_feature(model, det.feature)
            model.encoded_at = model.obj.observations
            model.best_view_pixels = max(model.best_view_pixels, det.num_pixels)

    # ------------------------------------------------------------------ bookkeeping

    def _add_model(self, model: ObjectModel) -> None:
        oid = model.obj.id
        self._models[oid] = model
        if model.confirmed:
            self._objects[oid] = model.obj
        else:
            self._tentative.add(oid)
        if model.obj.label:
            self._by_label.setdefault(model.obj.label, set()).add(oid)
        self._index.update(oid, model.obj.box_min, model.obj.box_max)

    def _remove_model(self, oid: str) -> None:
        model = self._models.pop(oid, None)
        if model is None:
            return
        self._tentative.discard(oid)
        if self._objects.pop(oid, None) is not None:
            self._graph_dirty = True
            self._graph_changed.add(oid)
            if self._retriever is not None:
                self._retriever.invalidate([oid])
        ids = self._by_label.get(model.obj.label)
        if ids is not None:
            ids.discard(oid)
            if not ids:
                del self._by_label[model.obj.label]
        self._index.remove(oid)
        self._touched.discard(oid)
        if self.config.mapping.patch_size_m > 0:
            self._patches.forget_object(oid)

    def _relabel(self, oid: str, old: str, new: str) -> None:
        ids = self._by_label.get(old)
        if ids is not None:
            ids.discard(oid)
            if not ids:
                del self._by_label[old]
        if new:
            self._by_label.setdefault(new, set()).add(oid)

    def _prune_tentative(self, stamp: float) -> None:
        timeout = self.config.mapping.tentative_timeout_s
        if timeout <= 0:
            return
        stale = [
            oid for oid in self._tentative if stamp - self._models[oid].obj.last_seen > timeout
        ]
        for oid in stale:
            self._remove_model(oid)

    def _merge_duplicates(self) -> None:
        """Merge objects that overlap strongly and whose labels agree (older id kept)."""
        cfg = self.config
        ov = cfg.association.overlap_voxel_m
        touched, self._touched = self._touched, set()
        for oid in sorted(touched):
            a = self._models.get(oid)
            if a is None:
                continue
            cands = self._index.query(a.obj.box_min, a.obj.box_max)
            for cid in sorted(cands):
                if cid == oid or cid not in self._models or oid not in self._models:
                    continue
                b = self._models[cid]
                if labels_agree(a.obj.label, b.obj.label) is None:
                    continue
                ka, kb = a.coarse_keys(ov), b.coarse_keys(ov)
                if ka.size == 0 or kb.size == 0:
                    continue
                inter = np.intersect1d(ka, kb, assume_unique=True).size
                if inter < cfg.mapping.merge_overlap * min(ka.size, kb.size):
                    continue
                keep, drop = (a, b) if a.index < b.index else (b, a)
                self._merge_pair(keep, drop)
                log.debug("merged duplicate %s into %s", drop.obj.id, keep.obj.id)
                if drop is a:
                    break
                a = keep

    def _merge_pair(self, keep: ObjectModel, drop: ObjectModel) -> None:
        """Fuse ``drop`` into ``keep`` (which keeps its id) and remove ``drop``."""
        cfg = self.config
        old_label = keep.obj.label
        look = appearance.blend(drop.obj.appearance, keep.obj.appearance, drop.obj.observations)
        merge_models(keep, drop, cfg.mapping)
        keep.obj.appearance = look
        drop_id, keep_id = drop.obj.id, keep.obj.id
        self._remove_model(drop_id)
        if cfg.mapping.patch_size_m > 0:
            self._patches.rename_object(drop_id, keep_id)
        if keep.obj.label != old_label:
            self._relabel(keep_id, old_label, keep.obj.label)
        if keep.confirmed:
            self._objects[keep_id] = keep.obj
            self._tentative.discard(keep_id)
        self._index.update(keep_id, keep.obj.box_min, keep.obj.box_max)
        self._graph_dirty = True
        self._graph_changed |= {keep_id, drop_id}
        if self._retriever is not None:
            self._retriever.invalidate([keep_id])

    def _parent_of_part(self, new: ObjectModel) -> ObjectModel | None:
        """Return the known object a new one is a part of, or None.

        Either an opened door seen alone: the part has its parent's label and a state (e.g.
        "open"), or the parent has one, and its box comes within
        ``association.moved_min_box_gap_m`` of the parent's. Or a piece of a present object of
        its label that association missed (a side of a sideboard first seen): its points lie
        within that object's box (``PART_INSIDE`` of them) and its box is much smaller
        (``PART_MAX_VOLUME``); an object of the same kind put next to another is neither.
        """
        gap = self.config.association.moved_min_box_gap_m
        pts = sample_points(new.obj.points)
        margin = self.config.association.box_margin_m
        volume = float(np.prod(np.maximum(new.obj.box_max - new.obj.box_min, 0.01)))
        for oid in self._by_label.get(new.obj.label, ()):
            other = self._models[oid]
            if oid == new.obj.id or not other.confirmed:
                continue
            if other.obj.first_seen >= new.obj.first_seen:
                continue
            if (new.obj.state or other.obj.state) and box_gap(new.obj, other.obj) < gap:
                return other
            o = other.obj
            if not o.present or pts.shape[0] == 0:
                continue
            if volume > PART_MAX_VOLUME * float(np.prod(np.maximum(o.box_max - o.box_min, 0.01))):
                continue
            inside = inside_box(pts, o.box_min, o.box_max, margin)
            if np.count_nonzero(inside) >= PART_INSIDE * pts.shape[0]:
                return other
        return None

    def _ensure_graph(self, force: bool) -> None:
        """Bring relations (and, when forced, zones) up to date with the objects.

        During ingest (``force`` False) relations are updated incrementally at most every
        ``mapping.graph_update_every_n_frames`` frames; zones, whose clustering is global, are
        recomputed only when read (queries by zone, render, save, the ``zones`` property).
        """
        if self._graph_dirty and (
            force or self._frames_since_graph >= self.config.mapping.graph_update_every_n_frames
        ):
            objs = list(self._objects.values())
            changed, self._graph_changed = self._graph_changed, set()
            self._relations = update_relations(
                self._relations, objs, changed, self.config.relations
            )
            self._graph_dirty = False
            self._zones_dirty = True
            self._frames_since_graph = 0
        if force and self._zones_dirty:
            objs = list(self._objects.values())
            before = {o.id: o.zone_id for o in objs}
            self._zones = compute_zones(objs, self.config.zones, self.encode_text, self._zones)
            zone_changed = [o.id for o in objs if o.zone_id != before[o.id]]
            if zone_changed and self._retriever is not None:
                self._retriever.invalidate(zone_changed)
            self._zones_dirty = False

    # ------------------------------------------------------------------ queries

    def query(self, req: QueryRequest) -> list[ScoredObject]:
        """Rank the confirmed objects for ``req`` (best first).

        Raises:
            InvalidInput: NaN/malformed ``near``, negative or NaN radius, negative k, or k above
                ``retrieval.max_k``.
        """
        if req.near is not None:
            near = np.asarray(req.near, dtype=np.float64).reshape(-1)
            if near.shape != (3,) or not np.all(np.isfinite(near)):
                raise InvalidInput(f"near must be a finite 3-D point, got {req.near!r}")
        if not isinstance(req.radius, (int, float)) or not math.isfinite(req.radius):
            raise InvalidInput(f"radius must be a finite number, got {req.radius!r}")
        if req.radius < 0:
            raise InvalidInput(f"radius must be >= 0, got {req.radius}")
        if not isinstance(req.k, (int, np.integer)) or req.k < 0:
            raise InvalidInput(f"k must be a non-negative integer, got {req.k!r}")
        if req.k > self.config.retrieval.max_k:
            raise InvalidInput(
                f"k={req.k} is above the limit retrieval.max_k={self.config.retrieval.max_k}"
            )
        if req.zone_id:
            self._ensure_graph(force=True)
        return self.retriever.query(self._objects, req)

    def render(self, focus: str = "", max_objects: int = 0, max_tokens: int = 0) -> RenderedGraph:
        """Render the graph, or the subgraph relevant to ``focus``, within a token budget.

        Raises:
            InvalidInput: negative ``max_objects``/``max_tokens``, ``max_objects`` too large, or
                a focus text longer than ``retrieval.max_text_chars``.
        """
        limit = self.config.retrieval.max_text_chars
        if len(focus) > limit:
            raise InvalidInput(
                f"focus text has {len(focus)} characters, above the limit {limit} "
                "(retrieval.max_text_chars)"
            )
        if max_objects < 0 or max_tokens < 0:
            raise InvalidInput("max_objects and max_tokens must be >= 0")
        if max_objects > self.config.max_render_objects:
            raise InvalidInput(
                f"max_objects={max_objects} is above the limit {self.config.max_render_objects}"
            )
        self._ensure_graph(force=True)
        # Imported here: the renderer pulls in the tokenizer, which ingest-only users never need.
        from memory_node.core.render import render_graph

        objs, rels, zones, text, tokens = render_graph(
            list(self._objects.values()),
            list(self._relations),
            list(self._zones),
            focus,
            max_objects,
            max_tokens,
            self.encode_text,
            retriever=self.retriever,
        )
        return RenderedGraph(objs, rels, zones, text, tokens)

    def changes(
        self, since: float = -math.inf, object_id: str = "", max_results: int = 0
    ) -> list[ChangeEvent]:
        """Change events with ``stamp >= since``, newest first (short-term store).

        Raises:
            InvalidInput: NaN ``since`` or negative ``max_results``.
        """
        return self._short_term.query(since, object_id, max_results)

    def drain_events(self) -> list[ChangeEvent]:
        """Events produced since the last call, oldest first."""
        out, self._pending = self._pending, []
        return out

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> MemorySnapshot:
        """Everything :meth:`save` writes (objects are shared, not copied; keyframes copied).

        The free-space keyframes are included when ``free_space.enabled``.
        """
        self._ensure_graph(force=True)
        return MemorySnapshot(
            objects=list(self._objects.values()),
            relations=list(self._relations),
            zones=list(self._zones),
            changes=self._short_term.events(),
            next_object_index=self._next_index,
            meta={
                "format": SNAPSHOT_FORMAT,
                "voxel_size_m": self.config.mapping.voxel_size_m,
                "features_mode": self.config.features.mode,
                "last_stamp": self._stamps.last,
                "frames_accepted": self._frames_accepted,
            },
            free_space=self._free.keyframes() if self.config.free_space.enabled else None,
        )

    def save(self, path: str) -> None:
        """Write the memory to ``path`` (SQLite, atomic).

        Raises:
            InvalidInput: the path cannot be written; the previous file is untouched.
        """
        save_memory(path, self.snapshot())

    def load(self, path: str) -> None:
        """Replace the memory by the one saved at ``path``.

        Ids continue after the loaded ones (never reused); re-observing the same scene
        associates to the loaded objects. The stamp guard is reset (a loaded memory starts a new
        session, whose stamps may be earlier than the last frame's). The saved free-space
        keyframes come back with their stamps (so an object put where the saved memory had seen
        free space is APPEARED); files without them leave none.

        Raises:
            InvalidInput: the file is missing or corrupt; memory is unchanged.
        """
        snap = load_memory(path)
        self.restore(snap)

    def restore(self, snap: MemorySnapshot) -> None:
        """Replace the memory by ``snap`` (see :meth:`load`).

        Free-space keyframes are restored when ``free_space.enabled`` (else dropped); a
        snapshot without them leaves none. The snapshot is checked whole first
        (:func:`validation.validate_snapshot`); the new state is then built in fresh containers
        and, should anything still fail, the previous ones are put back.

        Raises:
            InvalidInput: the snapshot is invalid or inconsistent; memory is unchanged.
        """
        # objects reach at most the sensor's range beyond the farthest allowed camera
        validate_snapshot(snap, self.config.depth.world_extent_m + self.config.depth.max_depth_m)
        previous = dict(vars(self))
        try:
            self._restore(snap)
        except BaseException:
            vars(self).clear()
            vars(self).update(previous)
            raise
        self._stamps.reset()

    def reset_stamps(self) -> None:
        """Forget the last accepted stamp (the input streams restarted)."""
        self._stamps.reset()

    def _restore(self, snap: MemorySnapshot) -> None:
        cfg = self.config
        free = FreeSpaceMap(cfg.free_space)
        if cfg.free_space.enabled and snap.free_space is not None:
            free.restore(snap.free_space)  # checks the keyframes before anything changes
        models: dict[str, ObjectModel] = {}
        next_index = int(snap.next_object_index)
        for model in models_from_objects(list(snap.objects), cfg.mapping):
            oid = model.obj.id
            if oid in models:
                raise InvalidInput(f"snapshot holds object id {oid!r} twice")
            try:
                model.index = int(oid.rsplit("_", 1)[-1])
            except ValueError:
                model.index = -1
            next_index = max(next_index, model.index + 1)
            models[oid] = model
        encoder = self.encoder if cfg.features.mode != "off" else None
        for model in models.values():
            f = model.obj.feature
            if isinstance(encoder, LabelTextEncoder) and model.obj.label_votes:
                model.obj.feature = label_feature(encoder, model.obj.label_votes)
            elif encoder is not None and f is not None and np.size(f) != encoder.dim:
                model.obj.feature = None
                model.feature_weight = 0.0
        self._reset_state()
        self._free = free
        for model in models.values():
            self._add_model(model)
        self._next_index = next_index
        self._relations = list(snap.relations)
        self._zones = list(snap.zones)
        self._graph_dirty = False
        self._short_term.restore(snap.changes)
        if self._retriever is not None:
            self._retriever.invalidate()
        log.info(
            "restored %d objects (next id %s), %d free-space keyframes",
            len(models),
            make_id(next_index),
            len(free),
        )

    # ------------------------------------------------------------------ statistics

    def stats(self) -> dict[str, int | float]:
        """Counters: frames accepted/dropped (total and by reason), objects, voxels, events."""
        present = sum(1 for o in self._objects.values() if o.present)
        out: dict[str, int | float] = {
            "frames_accepted": self._frames_accepted,
            "frames_dropped": sum(self._dropped.values()),
            "objects": len(self._objects),
            "objects_present": present,
            "objects_absent": len(self._objects) - present,
            "objects_tentative": len(self._models) - len(self._objects),
            "voxels": int(sum(m.keys.size for m in self._models.values())),
            "patches": len(self._patches),
            "free_space_keyframes": len(self._free),
            "relations": len(self._relations),
            "zones": len(self._zones),
            "events": self._events_total,
            "short_term_entries": len(self._short_term),
            "ignored_instance_ids": self._ignored_ids,
            "crops_encoded": self._crops_encoded,
            "pending_events_dropped": self._pending_dropped,
            "last_ingest_ms": 1000.0 * self._last_ingest_s,
            "next_object_index": self._next_index,
        }
        for reason, n in sorted(self._dropped.items()):
            out[f"dropped_{reason}"] = n
        return out
