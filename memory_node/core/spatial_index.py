"""Spatial indices of the long-term memory.

* :class:`GridIndex`: a hash grid from cells to the ids of objects whose (margin-expanded)
  axis-aligned box touches the cell. Looking up the candidates of a detection costs the number of
  cells its box covers, independent of how many objects the memory holds.
* :class:`PatchLayer`: the lowest layer of the patch -> object -> zone hierarchy (Dynam3D style):
  a coarse voxel grid whose cells ("patches") record which objects were observed in them, when,
  and a running-mean open-vocabulary feature of what was seen there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memory_node.core.geometry import key_centers, pack_indices, voxel_keys


class GridIndex:
    """Cells of ``cell_size`` metres -> ids of objects whose box touches them.

    Objects whose box covers more than ``max_cells`` cells are kept in a small "large objects"
    set returned with every query, so a huge object never costs a huge update.
    """

    def __init__(self, cell_size: float, max_cells: int = 2048) -> None:
        self.cell_size = float(cell_size)
        self.max_cells = int(max_cells)
        self._cells: dict[int, set[str]] = {}
        self._of: dict[str, np.ndarray] = {}
        self._large: set[str] = set()

    def __len__(self) -> int:
        return len(self._of) + len(self._large)

    def _cell_keys(self, box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray | None:
        lo = np.floor(np.asarray(box_min, np.float64) / self.cell_size).astype(np.int64)
        hi = np.floor(np.asarray(box_max, np.float64) / self.cell_size).astype(np.int64)
        extent = hi - lo + 1
        n = int(np.prod(extent))
        if n > self.max_cells:
            return None
        if n == 1:
            grid = lo[None, :]
        else:
            grid = lo + np.stack(np.unravel_index(np.arange(n), tuple(extent)), axis=1)
        keys: np.ndarray = pack_indices(grid)
        return keys

    def update(self, object_id: str, box_min: np.ndarray, box_max: np.ndarray) -> None:
        """Insert or move ``object_id`` to the box ``[box_min, box_max]`` (metres, map frame)."""
        self.remove(object_id)
        keys = self._cell_keys(box_min, box_max)
        if keys is None:
            self._large.add(object_id)
            return
        self._of[object_id] = keys
        for k in keys.tolist():
            self._cells.setdefault(k, set()).add(object_id)

    def remove(self, object_id: str) -> None:
        """Forget ``object_id`` (no error when absent)."""
        self._large.discard(object_id)
        keys = self._of.pop(object_id, None)
        if keys is None:
            return
        for k in keys.tolist():
            s = self._cells.get(k)
            if s is not None:
                s.discard(object_id)
                if not s:
                    del self._cells[k]

    def query(self, box_min: np.ndarray, box_max: np.ndarray) -> set[str]:
        """Ids of objects whose indexed box may touch ``[box_min, box_max]``."""
        out = set(self._large)
        keys = self._cell_keys(box_min, box_max)
        if keys is None:
            # Huge query box: scan the occupied cells instead of enumerating the box.
            lo = np.floor(np.asarray(box_min) / self.cell_size)
            hi = np.floor(np.asarray(box_max) / self.cell_size)
            for oid, ks in self._of.items():
                c = np.floor(key_centers(ks, self.cell_size) / self.cell_size)
                if np.any(np.all((c >= lo) & (c <= hi), axis=1)):
                    out.add(oid)
            return out
        cells = self._cells
        for k in keys.tolist():
            s = cells.get(k)
            if s:
                out |= s
        return out


@dataclass
class Patch:
    """One patch: a coarse cell of observed space.

    Attributes:
        object_counts: object id -> number of observations that put voxels of it in the patch.
        feature: optional (D,) float32 running mean of the features seen in the patch.
        feature_weight: number of features averaged.
        last_seen: seconds.
    """

    object_counts: dict[str, int] = field(default_factory=dict)
    feature: np.ndarray | None = None
    feature_weight: float = 0.0
    last_seen: float = 0.0

    @property
    def object_id(self) -> str:
        """The object observed most often in the patch ("" when none)."""
        if not self.object_counts:
            return ""
        return max(self.object_counts.items(), key=lambda kv: kv[1])[0]


class PatchLayer:
    """Coarse voxel grid of patches (``patch_size`` metres), bounded by the observed space."""

    def __init__(self, patch_size: float) -> None:
        self.patch_size = float(patch_size)
        self.patches: dict[int, Patch] = {}
        # Cell key -> stamp (s) of the first depth reading that landed in the cell: which space
        # has been observed since when, objects or not (floors, table tops, walls).
        self.first_observed: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.patches)

    def observe_space(self, points_map: np.ndarray, stamp: float) -> None:
        """Record that the cells of ``points_map`` ((N, 3) metres, map frame) were observed."""
        if points_map.shape[0] == 0:
            return
        seen = self.first_observed
        for k in np.unique(voxel_keys(points_map, self.patch_size)).tolist():
            if k not in seen:
                seen[k] = stamp

    def observed_before(self, points_map: np.ndarray, stamp: float) -> float:
        """Share of ``points_map`` ((N, 3) metres, map frame) in cells seen before ``stamp``."""
        if points_map.shape[0] == 0:
            return 0.0
        keys = voxel_keys(points_map, self.patch_size).tolist()
        seen = self.first_observed
        inf = float("inf")
        return sum(1 for k in keys if seen.get(k, inf) < stamp) / len(keys)

    def observe(
        self,
        object_id: str,
        points_map: np.ndarray,
        stamp: float,
        feature: np.ndarray | None,
    ) -> None:
        """Record that ``object_id`` was seen with ``points_map`` ((N, 3) metres, map frame)."""
        if points_map.shape[0] == 0:
            return
        for k in np.unique(voxel_keys(points_map, self.patch_size)).tolist():
            p = self.patches.get(k)
            if p is None:
                p = self.patches[k] = Patch()
            p.object_counts[object_id] = p.object_counts.get(object_id, 0) + 1
            p.last_seen = stamp
            if feature is not None:
                if p.feature is None:
                    p.feature = feature.astype(np.float32).copy()
                    p.feature_weight = 1.0
                else:
                    w = min(p.feature_weight, 50.0)
                    f = (p.feature * w + feature) / (w + 1.0)
                    p.feature = (f / max(float(np.linalg.norm(f)), 1e-12)).astype(np.float32)
                    p.feature_weight = w + 1.0

    def forget_object(self, object_id: str, keys: np.ndarray | None = None) -> None:
        """Remove ``object_id`` from the patches (all, or those of int64 patch ``keys``)."""
        items = (
            self.patches.items()
            if keys is None
            else ((k, self.patches[k]) for k in keys.tolist() if k in self.patches)
        )
        empty = []
        for k, p in list(items):
            p.object_counts.pop(object_id, None)
            if not p.object_counts:
                empty.append(k)
        for k in empty:
            del self.patches[k]

    def rename_object(self, old: str, new: str) -> None:
        """Move the counts of ``old`` onto ``new`` (after merging duplicates)."""
        for p in self.patches.values():
            c = p.object_counts.pop(old, 0)
            if c:
                p.object_counts[new] = p.object_counts.get(new, 0) + c

    def centers(self) -> np.ndarray:
        """(P, 3) float32 patch centres, metres, map frame."""
        keys = np.fromiter(self.patches.keys(), dtype=np.int64, count=len(self.patches))
        return key_centers(keys, self.patch_size)
