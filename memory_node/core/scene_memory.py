"""The long-term scene-graph memory facade: ingest frames, answer queries, render, save, load.

:meth:`SceneMemory.ingest` runs each frame through named stages, in one direction:

1. ``_validate``: :func:`geometry.validate_frame`, stamp after the last accepted one (see
   :mod:`stamp_guard`: a clock jump back resets the guard); a bad frame raises
   :class:`InvalidInput` before anything changes;
2. ``_observe``: back-project the strided depth (:mod:`geometry`), segment into detections
   (:mod:`segmentation`), label features and colour descriptors;
3. ``_associate``: detections to objects near them (spatial hash -> scores -> Hungarian,
   :mod:`association`), then visibility evidence for the unmatched objects in view
   (:mod:`visibility`), then re-identification of moved objects (asked of the change detector);
4. ``_fuse``: detections into their objects, new tentative objects for the rest
   (:mod:`fusion`); what fusing did goes to the change detector;
5. ``_confirm``: tentative objects pruned by the depth, confirmed by repeated detections;
6. change detection: the change detector (:mod:`memory_node.core.change`) turns the frame's
   evidence into events (existence beliefs, moves, disappearances, new objects);
7. ``_maintain``: features when they pay (:mod:`features`), spatial index, patches, observed
   and free space, periodic duplicate merge;
8. ``_update_graph`` and ``_publish``: the events, consolidated by the change detector (a
   fragment merged this frame speaks for the object that took it over), to the short-term
   store; relations and zones (``relations``/``zones`` modules).

Objects live in one :class:`~memory_node.core.change.ObjectStore`. Not thread-safe: the node
holds one lock around every call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory_node.core import appearance
from memory_node.core.association import (
    INFEASIBLE,
    AssociationConfig,
    DetectionGeometry,
    assign,
    detection_geometry,
    labels_agree,
    pair_score,
)
from memory_node.core.change import (
    ChangeConfig,
    ChangeDetector,
    DetectorContext,
    FrameEvidence,
    ObjectStore,
)
from memory_node.core.change.config import RENAMED, misses_to_log_odds
from memory_node.core.change.detector import pieces_of_one
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
    models_from_objects,
    new_model,
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
from memory_node.core.spatial_index import PatchLayer
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
    change: ChangeConfig = field(default_factory=ChangeConfig)
    max_render_objects: int = param(
        100000, "largest max_objects a render request may ask for", min_value=1
    )
    max_pending_events: int = param(
        10000,
        "events kept for drain_events() when nobody drains them (oldest dropped first)",
        min_value=1,
    )

    @staticmethod
    def renamed_param(name: str, value: Any, config: SceneMemoryConfig) -> tuple[str, Any] | None:
        """Return the (new name, value) of a parameter renamed into ``change.*``, or None.

        The old miss counts become belief thresholds (see
        :func:`~memory_node.core.change.config.misses_to_log_odds`).
        """
        new = RENAMED.get(name)
        if new is None:
            return None
        if name.startswith("visibility.misses_to_"):
            value = misses_to_log_odds(float(value), config.change)
        return new, value

    @staticmethod
    def renamed_params() -> dict[str, str]:
        """Return old name -> new name of the parameters renamed into ``change.*``."""
        return dict(RENAMED)


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
        num_moved: MOVED events of this frame.
        num_confirmed: tentative objects that entered the graph this frame.
        num_disappeared: DISAPPEARED events of this frame.
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
class _FrameObservation:
    """What the observe stage made of one accepted frame, filled in by the later stages.

    Attributes:
        stamp: seconds.
        rgb: (H, W, 3) uint8 image.
        depth: (H, W) float32 metres; K: (3, 3); map_T_camera: (4, 4) camera pose.
        points: the strided back-projected points.
        detections, geoms, looks: the detections with their geometry and colour descriptor.
        ignored: instance ids of the mask missing from the labels.
        matches, moved: detection index -> object id, associated by geometry / re-identified.
        det_of: object id -> the detection fused into it this frame.
    """

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    map_T_camera: np.ndarray
    points: FramePoints
    detections: list[Detection]
    ignored: int
    geoms: list[DetectionGeometry]
    looks: list[np.ndarray | None]
    matches: dict[int, str] = field(default_factory=dict)
    moved: dict[int, str] = field(default_factory=dict)
    det_of: dict[str, Detection] = field(default_factory=dict)


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
        self._store = ObjectStore(cfg.mapping.index_cell_m, cfg.mapping.patch_size_m)
        self._free = FreeSpaceMap(cfg.free_space)
        self._detector = self._make_detector()
        self._relations: list[Relation] = []
        self._zones: list[Zone] = []
        self._graph_dirty = False  # relations are stale
        self._zones_dirty = False  # zones are stale
        self._graph_changed: set[str] = set()  # ids changed since the last relations update
        self._frames_since_graph = 0
        self._touched: set[str] = set()  # ids to check for duplicates at the next merge
        self._short_term = ShortTermMemory(cfg.short_term)
        self._pending: list[ChangeEvent] = []
        if self._retriever is not None:
            self._retriever.invalidate()

    def _make_detector(self) -> ChangeDetector:
        cfg = self.config

        def forget(oid: str) -> None:
            if cfg.short_term.consolidate:
                self._short_term.forget(oid)

        ctx = DetectorContext(
            mapping=cfg.mapping,
            association=cfg.association,
            visibility=cfg.visibility,
            free_space=cfg.free_space,
            free=self._free,
            clip_features=lambda: isinstance(self._encoder, ClipEncoder),
            forget_events=forget,
        )
        return ChangeDetector(cfg.change, self._store, ctx)

    @property
    def _models(self) -> dict[str, ObjectModel]:
        return self._store.models

    @property
    def _objects(self) -> dict[str, SceneObject]:
        return self._store.objects

    @property
    def _next_index(self) -> int:
        return self._store.next_index

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
        return self._store.patches

    @property
    def short_term(self) -> ShortTermMemory:
        """The short-term store of change events."""
        return self._short_term

    # ------------------------------------------------------------------ ingest

    def _reject(self, exc: InvalidInput, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        raise exc

    def ingest(self, frame: Frame) -> IngestReport:
        """Fuse one posed RGB-D frame into memory (the stages of the module docstring).

        Raises:
            InvalidInput: the frame is malformed or not newer than the last accepted one; memory
                is unchanged and the drop is counted by reason in :meth:`stats`.
        """
        t0 = time.perf_counter()
        stamp = self._validate(frame)
        obs = self._observe(frame, stamp)
        report = IngestReport(
            accepted=True,
            stamp=stamp,
            num_detections=len(obs.detections),
            ignored_instance_ids=obs.ignored,
        )
        evidence = FrameEvidence(stamp=stamp)
        events: list[ChangeEvent] = []
        self._associate(obs, evidence)
        report.num_matched = len(obs.matches)
        report.num_updated = len(obs.matches) + len(obs.moved)
        report.num_new = self._fuse(obs, evidence, events)
        report.num_confirmed = self._confirm(evidence)
        events += self._detector.update(evidence)
        self._maintain(frame, obs, evidence)
        events = self._detector.consolidate(events)
        self._update_graph(evidence.changed)
        self._publish(events)
        report.num_moved = sum(1 for e in events if e.kind == ChangeKind.MOVED)
        report.num_disappeared = sum(1 for e in events if e.kind == ChangeKind.DISAPPEARED)
        report.events = events
        report.duration_s = time.perf_counter() - t0
        self._last_ingest_s = report.duration_s
        return report

    def _validate(self, frame: Frame) -> float:
        """Stage 1: check the frame and its stamp (:mod:`stamp_guard`); return the stamp."""
        try:
            validate_frame(frame, self.config.depth)
        except FrameRejected as exc:
            self._reject(exc, exc.reason)
        stamp = float(frame.stamp)
        try:
            self._stamps.check(stamp)
        except InvalidInput as exc:
            self._reject(exc, "out_of_order")
        return stamp

    def _observe(self, frame: Frame, stamp: float) -> _FrameObservation:
        """Stage 2: points, detections, label features and colours of an accepted frame."""
        cfg = self.config
        depth = np.asarray(frame.depth, dtype=np.float32)
        K = np.asarray(frame.K, dtype=np.float64)
        map_T_camera = np.asarray(frame.map_T_camera, dtype=np.float64)
        fp, _ = backproject(depth, K, map_T_camera, cfg.depth)
        detections, ignored = segment_frame(frame, fp, cfg.mapping.voxel_size_m, cfg.segmentation)
        if ignored:
            log.debug("frame %.3f: %d instance ids missing from the labels", stamp, ignored)
        self._stamps.accept(stamp)
        self._frames_accepted += 1
        self._ignored_ids += ignored
        encoder = self.encoder if cfg.features.mode != "off" else None
        if isinstance(encoder, LabelTextEncoder):
            labelled = [d for d in detections if d.label]
            if labelled:
                emb = encoder.encode_labels([d.label for d in labelled])
                for d, e in zip(labelled, emb, strict=True):
                    d.feature = e
        return _FrameObservation(
            stamp=stamp,
            rgb=np.asarray(frame.rgb),
            depth=depth,
            K=K,
            map_T_camera=map_T_camera,
            points=fp,
            detections=detections,
            ignored=ignored,
            geoms=[detection_geometry(d, cfg.association) for d in detections],
            looks=self._appearances(frame, fp, detections),
        )

    def _associate(self, obs: _FrameObservation, evidence: FrameEvidence) -> None:
        """Stage 3: detections to objects, visibility of the others, re-identified moves.

        Fills ``obs.matches``/``obs.moved`` (detection index -> id) and ``evidence.visibility``.
        """
        cfg = self.config
        obs.matches = self._match(obs.detections, obs.geoms, obs.looks)
        owners = None
        if cfg.visibility.use_masks:  # the grid serves only claimed voxels
            grid, codes = label_owners(obs.points, obs.detections)
            owners = (grid, obs.points.stride, codes)
        evidence.visibility = self._visibility(obs, set(obs.matches.values()), owners)
        unmatched = [i for i in range(len(obs.detections)) if i not in obs.matches]
        self._encode_budget = cfg.features.max_batch
        encoder = self.encoder if cfg.features.mode != "off" else None
        if isinstance(encoder, ClipEncoder) and unmatched:
            # Only detections that might re-identify a known object of their label need a
            # feature before the decision; the others are encoded after, within the budget.
            by_label = self._store.by_label
            reid = [obs.detections[i] for i in unmatched if by_label.get(obs.detections[i].label)]
            reid.sort(key=lambda d: -d.num_pixels)
            self._encode_detections(obs.rgb, reid, encoder)
        used = set(obs.matches.values())
        for i in unmatched:
            det = obs.detections[i]
            oid = self._detector.reidentify(
                det, obs.geoms[i], obs.looks[i], obs.stamp, evidence.visibility, used
            )
            if oid is not None:
                log.debug("%.2f detection %s re-identifies %s", obs.stamp, det.label, oid)
                obs.moved[i] = oid
                used.add(oid)
        evidence.observed = used

    def _fuse(
        self, obs: _FrameObservation, evidence: FrameEvidence, events: list[ChangeEvent]
    ) -> int:
        """Stage 4: fuse detections into their objects, create the new ones; return how many."""
        cfg = self.config
        changed = evidence.changed
        for i, oid in obs.matches.items():
            self._update(self._models[oid], obs, i, events, moved_to=False)
            changed.add(oid)
        for i, oid in obs.moved.items():
            model = self._models[oid]
            disp = float(np.linalg.norm(obs.geoms[i].center - model.obj.center))
            moved_to = disp >= cfg.change.moved_min_displacement_m
            self._update(model, obs, i, events, moved_to=moved_to)
            changed.add(oid)
        obs.det_of = {oid: obs.detections[i] for i, oid in obs.matches.items()}
        obs.det_of.update({oid: obs.detections[i] for i, oid in obs.moved.items()})
        new = 0
        for i in range(len(obs.detections)):
            if i in obs.matches or i in obs.moved:
                continue
            model = new_model(self._store.next_index, obs.detections[i], obs.stamp, cfg.mapping)
            model.obj.appearance = obs.looks[i]
            self._store.next_index += 1
            self._store.add(model)
            obs.det_of[model.obj.id] = obs.detections[i]
            changed.add(model.obj.id)
            new += 1
        return new

    def _confirm(self, evidence: FrameEvidence) -> int:
        """Stage 5: depth support and pruning of tentative objects, then confirmation.

        A tentative object whose place the frame sees through is dropped; one the segmenter
        missed but the depth shows again gains one view of support. Returns the number
        confirmed this frame.
        """
        cfg = self.config
        changed = evidence.changed
        for oid, ev in evidence.visibility.items():
            model = self._store.get(oid)
            if model is None or model.confirmed or oid in evidence.observed:
                continue
            if (
                cfg.mapping.depth_confirms
                and ev.is_there(cfg.visibility)
                and not model.depth_support
            ):
                model.depth_support = 1
                changed.add(oid)
            if ev.is_miss(cfg.visibility):
                self._store.remove(oid)
                changed.discard(oid)
        confirmed = 0
        for oid in sorted(changed):
            model = self._store.get(oid)
            if model is None or model.confirmed:
                continue
            if (
                model.obj.observations + model.depth_support
                >= cfg.mapping.min_observations_to_confirm
            ):
                self._store.confirm(oid)
                self._detector.confirmed(oid)
                confirmed += 1
        self._prune_tentative(evidence.stamp)
        return confirmed

    def _maintain(self, frame: Frame, obs: _FrameObservation, evidence: FrameEvidence) -> None:
        """Stage 7: features, spatial index, patches, observed and free space, merges."""
        cfg = self.config
        changed = evidence.changed
        self._update_features(frame.rgb, changed, obs.det_of)
        for oid in changed:
            self._store.update_bounds(oid)
        if cfg.mapping.patch_size_m > 0:
            for oid, det in obs.det_of.items():
                if oid in self._store:
                    self._store.patches.observe(oid, det.means, obs.stamp, det.feature)
        # Observed space (a sparse sample of this frame's readings within the visibility range):
        # tells later whether a newly seen object stands where the robot had looked before.
        sample = obs.points.points_map[:: max(1, cfg.mapping.space_sample_every)]
        near = np.sum((sample - obs.map_T_camera[:3, 3].astype(np.float32)) ** 2, axis=1)
        self._store.patches.observe_space(sample[near <= cfg.visibility.max_range_m**2], obs.stamp)
        if cfg.free_space.enabled:
            self._free.observe(obs.depth, obs.K, obs.map_T_camera, obs.stamp)
        self._touched |= changed
        if (
            cfg.mapping.merge_every_n_frames
            and self._frames_accepted % cfg.mapping.merge_every_n_frames == 0
        ):
            self._merge_duplicates()

    def _update_graph(self, changed: set[str]) -> None:
        """Stage 8: mark what changed for relations, zones and retrieval; update relations."""
        self._store.mark_changed(changed)
        self._take_store_changes()
        self._frames_since_graph += 1
        self._ensure_graph(force=False)

    def _take_store_changes(self) -> None:
        ids = self._store.take_graph_changes()
        if ids:
            self._graph_dirty = True
            self._graph_changed |= ids
            if self._retriever is not None:
                self._retriever.invalidate(sorted(ids))

    def _publish(self, events: list[ChangeEvent]) -> None:
        """Hand the frame's events to the short-term store and the pending queue."""
        for event in events:
            self._short_term.record(event)
        self._pending.extend(events)
        excess = len(self._pending) - self.config.max_pending_events
        if excess > 0:
            del self._pending[:excess]
            self._pending_dropped += excess
        self._events_total += len(events)

    def _match(
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
                near = self._store.near(g.box_min - margin, g.box_max + margin)
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
        obs: _FrameObservation,
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
            lo, hi = frustum_box(
                obs.K, obs.depth.shape, obs.map_T_camera, cfg.visibility.max_range_m
            )
            ids = self._store.near(lo, hi)
        else:
            ids = set(self._models)
        camera_T_map = invert_transform(obs.map_T_camera)
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
                obs.depth,
                obs.K,
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

    def _update(
        self,
        model: ObjectModel,
        obs: _FrameObservation,
        i: int,
        events: list[ChangeEvent],
        moved_to: bool,
    ) -> None:
        """Fuse (or, when moved, replace) detection ``i`` into ``model``; tell the detector."""
        cfg = self.config
        det = obs.detections[i]
        obj = model.obj
        old_box = (obj.box_min.copy(), obj.box_max.copy())
        old_label, old_state = obj.label, obj.state
        was_absent = not obj.present
        obj.appearance = appearance.blend(obj.appearance, obs.looks[i], obj.observations)
        if moved_to:
            replace_geometry(model, det, obs.stamp, cfg.mapping)
        else:
            fuse(model, det, obs.stamp, cfg.mapping)
        obj.present = True
        self._store.relabel(obj.id, old_label)
        self._detector.observed(
            model, obs.stamp, old_box, old_state, det.state, was_absent, moved_to, events
        )
        if det.state:
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

    def _prune_tentative(self, stamp: float) -> None:
        timeout = self.config.mapping.tentative_timeout_s
        if timeout <= 0:
            return
        store = self._store
        stale = [o for o in store.tentative if stamp - store.models[o].obj.last_seen > timeout]
        for oid in stale:
            store.remove(oid)

    def _merge_duplicates(self) -> None:
        """Merge objects that overlap strongly and whose labels agree (older id kept).

        Also merged: a present piece of a present object of its label and state
        (:func:`~memory_node.core.change.detector.pieces_of_one`), whichever was seen first.
        On the training seeds (11, inspection) a chair's sliver seen from afar before the chair
        itself stayed a separate object inside the chair's box, and went DISAPPEARED when seen
        through.
        """
        cfg = self.config
        ov = cfg.association.overlap_voxel_m
        margin = cfg.association.box_margin_m
        touched, self._touched = self._touched, set()
        for oid in sorted(touched):
            a = self._models.get(oid)
            if a is None:
                continue
            cands = self._store.near(a.obj.box_min, a.obj.box_max)
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
                if inter < cfg.mapping.merge_overlap * min(ka.size, kb.size) and not pieces_of_one(
                    a.obj, b.obj, margin, cfg.mapping.merge_box_overlap
                ):
                    continue
                keep, drop = (a, b) if a.index < b.index else (b, a)
                self._detector.merge(keep, drop)
                log.debug("merged duplicate %s into %s", drop.obj.id, keep.obj.id)
                if drop is a:
                    break
                a = keep

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
            surface = self._free.surface_evidence if len(self._free) else None
            self._zones = compute_zones(
                objs, self.config.zones, self.encode_text, self._zones, surface
            )
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
            changes=self.changes() if focus.strip() else (),
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
        self._free = self._detector.ctx.free = free
        for model in models.values():
            self._store.add(model)
        self._store.next_index = next_index
        self._store.take_graph_changes()  # the graph comes with the snapshot
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
            "patches": len(self._store.patches),
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
