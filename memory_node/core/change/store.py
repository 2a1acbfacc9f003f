"""The object store: every object model of the memory and the indexes kept in step with it.

:class:`ObjectStore` owns what the scene memory used to keep in sync by hand: the object models
(confirmed and tentative), the by-label index, the spatial index and the patch layer. Stages
change objects only through it, so the indexes cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from memory_node.core.fusion import ObjectModel
from memory_node.core.spatial_index import GridIndex, PatchLayer
from memory_node.core.types import SceneObject


class ObjectStore:
    """Object models, confirmed and tentative, with their indexes.

    Invariants (kept by every method; nothing else writes these containers):

    * ``models`` holds every object, confirmed or tentative; ``objects`` holds exactly the
      confirmed ones (same :class:`SceneObject` instances), ``tentative`` exactly the ids of the
      others;
    * ``by_label[label]`` is the set of ids whose ``obj.label`` is ``label`` (never an empty
      set; unlabelled objects are in no set);
    * the spatial index holds every id of ``models`` with its current box (after a geometry
      change, call :meth:`update_bounds`), and no other id;
    * the patch layer names only ids of ``models`` (a removed id is forgotten, a merged one
      renamed to the id that absorbed it);
    * ``next_index`` is above the index of every id ever added (ids are never reused);
    * ``graph_changed`` collects the confirmed ids added, changed in the graph or removed since
      the graph stage last took them (:meth:`take_graph_changes`).

    Args:
        index_cell_m: cell size of the spatial index, metres.
        patch_size_m: side of a patch, metres; 0 disables the patch layer (``patches_on``).
    """

    def __init__(self, index_cell_m: float, patch_size_m: float) -> None:
        self.models: dict[str, ObjectModel] = {}
        self.objects: dict[str, SceneObject] = {}
        self.tentative: set[str] = set()
        self.by_label: dict[str, set[str]] = {}
        self.index = GridIndex(index_cell_m)
        self.patches_on = patch_size_m > 0
        self.patches = PatchLayer(patch_size_m or 1.0)
        self.graph_changed: set[str] = set()
        self.next_index = 0  # the integer behind the next new id (ids are never reused)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Return the number of objects, confirmed and tentative."""
        return len(self.models)

    def __contains__(self, oid: object) -> bool:
        """Tell whether ``oid`` is an object of the store."""
        return oid in self.models

    def __iter__(self) -> Iterator[str]:
        """Iterate over the ids of every object."""
        return iter(self.models)

    def get(self, oid: str) -> ObjectModel | None:
        """Return the model of ``oid``, or None."""
        return self.models.get(oid)

    def of_label(self, label: str) -> list[ObjectModel]:
        """Return the models labelled ``label`` (confirmed or not), in id order."""
        return [self.models[oid] for oid in sorted(self.by_label.get(label, ()))]

    def near(self, box_min: np.ndarray, box_max: np.ndarray) -> set[str]:
        """Return the ids whose box meets the box (min, max), metres, map frame."""
        return self.index.query(box_min, box_max)

    # ------------------------------------------------------------------ writing

    def add(self, model: ObjectModel) -> None:
        """Add a model (confirmed or tentative) under its id."""
        oid = model.obj.id
        self.models[oid] = model
        if model.confirmed:
            self.objects[oid] = model.obj
            self.graph_changed.add(oid)
        else:
            self.tentative.add(oid)
        if model.obj.label:
            self.by_label.setdefault(model.obj.label, set()).add(oid)
        self.index.update(oid, model.obj.box_min, model.obj.box_max)

    def confirm(self, oid: str) -> None:
        """Make a tentative object part of the graph."""
        model = self.models[oid]
        model.confirmed = True
        self.objects[oid] = model.obj
        self.tentative.discard(oid)
        self.graph_changed.add(oid)

    def remove(self, oid: str) -> ObjectModel | None:
        """Remove ``oid`` from every container; return its model (None when unknown)."""
        model = self.models.pop(oid, None)
        if model is None:
            return None
        self.tentative.discard(oid)
        if self.objects.pop(oid, None) is not None:
            self.graph_changed.add(oid)
        self._unlabel(oid, model.obj.label)
        self.index.remove(oid)
        if self.patches_on:
            self.patches.forget_object(oid)
        return model

    def relabel(self, oid: str, old: str) -> None:
        """Move ``oid`` from the set of label ``old`` to that of its current label."""
        new = self.models[oid].obj.label
        if new == old:
            return
        self._unlabel(oid, old)
        if new:
            self.by_label.setdefault(new, set()).add(oid)

    def update_bounds(self, oid: str) -> None:
        """Refresh the spatial index after ``oid``'s geometry changed."""
        model = self.models.get(oid)
        if model is not None:
            self.index.update(oid, model.obj.box_min, model.obj.box_max)

    def absorbed(self, drop_id: str, keep_id: str) -> None:
        """Record that ``keep_id`` took over ``drop_id`` (already removed): patches renamed."""
        if self.patches_on:
            self.patches.rename_object(drop_id, keep_id)
        self.graph_changed |= {drop_id, keep_id}

    def mark_changed(self, ids: set[str] | list[str]) -> list[str]:
        """Note confirmed objects whose graph entries changed; return those confirmed ids."""
        out = [oid for oid in ids if oid in self.objects]
        self.graph_changed.update(out)
        return out

    def take_graph_changes(self) -> set[str]:
        """Return and clear the ids changed for the graph since the last call."""
        out, self.graph_changed = self.graph_changed, set()
        return out

    def _unlabel(self, oid: str, label: str) -> None:
        ids = self.by_label.get(label)
        if ids is not None:
            ids.discard(oid)
            if not ids:
                del self.by_label[label]
