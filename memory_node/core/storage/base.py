"""The fleet store interface and the SQL shared by its SQLite and PostgreSQL backends.

Schema (version :data:`SCHEMA_VERSION`; each migration is a list of statements, applied in one
transaction that also records the new version):

1. ``schema_version(version)``; ``fleet_meta(key, value)`` (``map_frame``, ``cell_size_m``,
   ``next_index``, ``seq``); ``fleet_objects`` (global id, update counter ``seq``, label, box
   centre ``cx, cy, cz`` and size ``sx, sy, sz`` in metres, state, presence, stamps, feature and
   colour descriptor as little-endian float32 blobs, grid ``cell`` key, ``sources`` JSON
   provenance, ``winner``), indexed on ``cell`` and ``seq``; ``robot_objects`` (each robot's
   pushed objects by (robot id, local id), linked to a fleet id).
2. ``fleet_changes``: fleet-level change events with the robot that caused them.
3. ``fleet_objects.merged_into``: the id a duplicate was merged into ('' for live objects).

Writes (pushes, loads, migrations) are serialised by the backend's writer lock (an advisory
transaction lock in PostgreSQL, ``BEGIN IMMEDIATE`` in SQLite), so concurrent pushes of several
robots never lose an update; reads run concurrently.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from memory_node.core.fleet import (
    FleetChange,
    FleetConfig,
    FleetError,
    FleetObject,
    MergeResult,
    Source,
    cell_of,
    cells_around,
    make_fleet_id,
    merge_push,
    search_radius,
    validate_object,
)
from memory_node.core.types import ChangeEvent, ChangeKind, InvalidInput, SceneObject

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""Version this build reads and writes."""

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "CREATE TABLE fleet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE fleet_objects (
            id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            label TEXT NOT NULL,
            label_confidence DOUBLE PRECISION NOT NULL,
            label_votes TEXT NOT NULL,
            cx DOUBLE PRECISION NOT NULL,
            cy DOUBLE PRECISION NOT NULL,
            cz DOUBLE PRECISION NOT NULL,
            sx DOUBLE PRECISION NOT NULL,
            sy DOUBLE PRECISION NOT NULL,
            sz DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            zone_id TEXT NOT NULL,
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            observations BIGINT NOT NULL,
            present INTEGER NOT NULL,
            miss_count DOUBLE PRECISION NOT NULL,
            feature {blob},
            appearance {blob},
            cell BIGINT NOT NULL,
            sources TEXT NOT NULL,
            winner TEXT NOT NULL
        )""",
        "CREATE INDEX fleet_objects_cell ON fleet_objects (cell)",
        "CREATE INDEX fleet_objects_seq ON fleet_objects (seq)",
        """CREATE TABLE robot_objects (
            robot_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            fleet_id TEXT NOT NULL,
            label TEXT NOT NULL,
            label_confidence DOUBLE PRECISION NOT NULL,
            cx DOUBLE PRECISION NOT NULL,
            cy DOUBLE PRECISION NOT NULL,
            cz DOUBLE PRECISION NOT NULL,
            sx DOUBLE PRECISION NOT NULL,
            sy DOUBLE PRECISION NOT NULL,
            sz DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            present INTEGER NOT NULL,
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            observations BIGINT NOT NULL,
            feature {blob},
            appearance {blob},
            seq BIGINT NOT NULL,
            PRIMARY KEY (robot_id, object_id)
        )""",
        "CREATE INDEX robot_objects_fleet ON robot_objects (fleet_id)",
    ],
    2: [
        """CREATE TABLE fleet_changes (
            seq BIGINT PRIMARY KEY,
            kind INTEGER NOT NULL,
            object_id TEXT NOT NULL,
            label TEXT NOT NULL,
            stamp DOUBLE PRECISION NOT NULL,
            robot_id TEXT NOT NULL,
            ox DOUBLE PRECISION NOT NULL,
            oy DOUBLE PRECISION NOT NULL,
            oz DOUBLE PRECISION NOT NULL,
            nx DOUBLE PRECISION NOT NULL,
            ny DOUBLE PRECISION NOT NULL,
            nz DOUBLE PRECISION NOT NULL,
            old_state TEXT NOT NULL,
            new_state TEXT NOT NULL
        )""",
        "CREATE INDEX fleet_changes_stamp ON fleet_changes (stamp)",
        "INSERT INTO fleet_meta (key, value) VALUES ('change_seq', '0')",
    ],
    3: [
        # duplicates merged after the fact leave a tombstone, so readers drop them too
        "ALTER TABLE fleet_objects ADD COLUMN merged_into TEXT NOT NULL DEFAULT ''",
    ],
}

_FLEET_COLUMNS = (
    "id, seq, label, label_confidence, label_votes, cx, cy, cz, sx, sy, sz, state, zone_id, "
    "first_seen, last_seen, observations, present, miss_count, feature, appearance, cell, "
    "sources, winner"
)
_ROBOT_COLUMNS = (
    "robot_id, object_id, fleet_id, label, label_confidence, cx, cy, cz, sx, sy, sz, state, "
    "present, first_seen, last_seen, observations, feature, appearance, seq"
)
_CHANGE_COLUMNS = (
    "seq, kind, object_id, label, stamp, robot_id, ox, oy, oz, nx, ny, nz, old_state, new_state"
)
_CHUNK = 500  # ids per IN (...) list

_F32 = np.dtype("<f4")


class StorageError(InvalidInput):
    """The store cannot do what was asked; the message says why. Nothing was written."""


class StoreUnavailable(StorageError):
    """No usable connection (wrong URL or password, server down): retry later."""


class SchemaMismatch(StorageError):
    """The database holds another schema version than this build's."""


def _blob(v: np.ndarray | None) -> bytes | None:
    return None if v is None else np.ascontiguousarray(np.reshape(v, -1), dtype=_F32).tobytes()


def _vector(b: Any) -> np.ndarray | None:
    if b is None:
        return None
    return np.frombuffer(bytes(b), dtype=_F32).astype(np.float32)


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class FleetStore(abc.ABC):
    """A shared long-term memory of several robots (see :mod:`memory_node.core.storage`).

    Backends implement connection handling (:meth:`_execute`, :meth:`_executemany`,
    :meth:`_transaction`, :meth:`_has_table`, :meth:`close`); the schema, merge and queries are
    shared. Not thread-safe: use one store per thread, or a lock.
    """

    blob_type = "BLOB"

    def __init__(self, url: str, config: FleetConfig, migrate: bool, verify: bool = True) -> None:
        self.url = url
        self.config = config
        self.map_frame = config.map_frame
        if migrate:
            self.migrate()
        if not verify:
            return
        version = self.schema_version()
        if version != SCHEMA_VERSION:
            self._raise_version(version)
        meta = self._meta()
        self.map_frame = meta.get("map_frame", config.map_frame)
        cell = float(meta.get("cell_size_m", config.cell_size_m))
        if cell != config.cell_size_m:
            log.info("store cell size is %g m (configured %g m): using the store's", cell,
                     config.cell_size_m)  # fmt: skip
            self.config = FleetConfig(**{**vars(config), "cell_size_m": cell})

    # ------------------------------------------------------------------ backend hooks

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) in the current transaction; return its rows."""

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each row of ``rows``."""

    @abc.abstractmethod
    def _transaction(self, write: bool) -> contextlib.AbstractContextManager[None]:
        """Open a transaction; ``write`` ones hold the store-wide writer lock until they end."""

    @abc.abstractmethod
    def _has_table(self, name: str) -> bool:
        """Whether the database has a table ``name``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (the store may not be used afterwards)."""

    # ------------------------------------------------------------------ schema

    def schema_version(self) -> int:
        """Return the database's schema version (0 for an empty database)."""
        with self._transaction(write=False):
            if not self._has_table("schema_version"):
                return 0
            rows = self._execute("SELECT version FROM schema_version")
        return int(rows[0][0]) if rows else 0

    def _raise_version(self, version: int) -> None:
        where = self.describe()
        if version == 0:
            raise SchemaMismatch(
                f"{where} holds no fleet memory schema (version 0, this build uses "
                f"{SCHEMA_VERSION}): start fleet_memory with storage.migrate true, or run "
                "`python -m memory_node.core.storage migrate URL`"
            )
        if version < SCHEMA_VERSION:
            raise SchemaMismatch(
                f"{where} has schema version {version}, older than this build's "
                f"{SCHEMA_VERSION}: run `python -m memory_node.core.storage migrate URL` "
                "(or start fleet_memory with storage.migrate true)"
            )
        raise SchemaMismatch(
            f"{where} has schema version {version}, newer than this build's {SCHEMA_VERSION}: "
            "update memory_node on this robot"
        )

    def migrate(self, target: int = SCHEMA_VERSION) -> list[int]:
        """Apply the migrations above the database's version up to ``target``; return them.

        Raises:
            SchemaMismatch: the database is newer than ``target``.
        """
        with self._transaction(write=True):
            current = 0
            if self._has_table("schema_version"):
                rows = self._execute("SELECT version FROM schema_version")
                current = int(rows[0][0]) if rows else 0
            if current > target:
                raise SchemaMismatch(
                    f"{self.describe()} has schema version {current}, newer than {target}"
                )
            applied = []
            for version in range(current + 1, target + 1):
                for statement in MIGRATIONS[version]:
                    self._execute(statement.replace("{blob}", self.blob_type))
                if version == 1:
                    self._execute("INSERT INTO schema_version (version) VALUES (1)")
                    self._executemany(
                        "INSERT INTO fleet_meta (key, value) VALUES (?, ?)",
                        [
                            ("map_frame", self.config.map_frame),
                            ("cell_size_m", repr(float(self.config.cell_size_m))),
                            ("next_index", "0"),
                            ("seq", "0"),
                        ],
                    )
                else:
                    self._execute("UPDATE schema_version SET version = ?", (version,))
                applied.append(version)
        if applied:
            log.info("%s: applied schema migrations %s", self.describe(), applied)
        return applied

    def describe(self) -> str:
        """Where the store is, without secrets."""
        from memory_node.core.storage import redact

        return f"store {redact(self.url)}"

    def _meta(self) -> dict[str, str]:
        with self._transaction(write=False):
            return {k: v for k, v in self._execute("SELECT key, value FROM fleet_meta")}

    def _set_meta(self, **values: object) -> None:
        self._executemany(
            "UPDATE fleet_meta SET value = ? WHERE key = ?",
            [(str(v), k) for k, v in values.items()],
        )

    # ------------------------------------------------------------------ rows

    def _fleet_row(self, f: FleetObject, seq: int) -> tuple[Any, ...]:
        o = f.obj
        c, s = np.asarray(o.center, float), np.asarray(o.size, float)
        sources = {
            r: {
                "object_id": src.object_id,
                "last_seen": src.last_seen,
                "observations": src.observations,
                "center": [float(v) for v in src.center],
                "present": src.present,
                "state": src.state,
                "evidence": src.evidence,
            }
            for r, src in f.sources.items()
        }
        return (
            o.id, seq, o.label, float(o.label_confidence), json.dumps(o.label_votes),
            float(c[0]), float(c[1]), float(c[2]), float(s[0]), float(s[1]), float(s[2]),
            o.state, o.zone_id, float(o.first_seen), float(o.last_seen), int(o.observations),
            int(bool(o.present)), float(o.miss_count), _blob(o.feature), _blob(o.appearance),
            cell_of(c[0], c[1], self.config.cell_size_m), json.dumps(sources), f.winner,
        )  # fmt: skip

    @staticmethod
    def _fleet_object(row: Sequence[Any]) -> FleetObject:
        (fid, seq, label, conf, votes, cx, cy, cz, sx, sy, sz, state, zone_id, first_seen,
         last_seen, observations, present, miss, feature, app, _cell, sources,
         winner) = row  # fmt: skip
        obj = SceneObject(
            id=fid,
            label=label,
            label_confidence=float(conf),
            label_votes={str(k): float(v) for k, v in json.loads(votes).items()},
            center=np.array([cx, cy, cz], np.float64),
            size=np.array([sx, sy, sz], np.float64),
            feature=_vector(feature),
            state=state,
            zone_id=zone_id,
            first_seen=float(first_seen),
            last_seen=float(last_seen),
            observations=int(observations),
            present=bool(present),
            miss_count=float(miss),
            appearance=_vector(app),
        )
        srcs = {
            r: Source(
                object_id=v["object_id"],
                last_seen=float(v["last_seen"]),
                observations=int(v["observations"]),
                center=np.array(v["center"], np.float64),
                present=bool(v["present"]),
                state=v["state"],
                evidence=float(v.get("evidence", v["last_seen"])),
            )
            for r, v in json.loads(sources).items()
        }
        return FleetObject(obj=obj, sources=srcs, winner=winner, seq=int(seq))

    @staticmethod
    def _robot_row(robot_id: str, o: SceneObject, fleet_id: str, seq: int) -> tuple[Any, ...]:
        c, s = np.asarray(o.center, float), np.asarray(o.size, float)
        return (
            robot_id, o.id, fleet_id, o.label, float(o.label_confidence),
            float(c[0]), float(c[1]), float(c[2]), float(s[0]), float(s[1]), float(s[2]),
            o.state, int(bool(o.present)), float(o.first_seen), float(o.last_seen),
            int(o.observations), _blob(o.feature), _blob(o.appearance), seq,
        )  # fmt: skip

    def _select_fleet(
        self, where: str, params: Sequence[Any], features: bool = True
    ) -> list[FleetObject]:
        """Return the live fleet objects matching ``where``.

        Without ``features`` their feature is None (a push leaves the stored one in place
        unless its evidence brings a new one).
        """
        columns = _FLEET_COLUMNS if features else _FLEET_COLUMNS.replace("feature,", "NULL,", 1)
        rows = self._execute(
            f"SELECT {columns} FROM fleet_objects WHERE merged_into = '' AND ({where})", params
        )
        return [self._fleet_object(r) for r in rows]

    def _fleet_by_ids(self, ids: Sequence[str], features: bool = True) -> list[FleetObject]:
        out: list[FleetObject] = []
        for chunk in _chunks(list(ids)):
            where = f"id IN ({_placeholders(len(chunk))})"
            out += self._select_fleet(where, list(chunk), features)
        return out

    def _fleet_in_cell_labels(self, keys: Sequence[tuple[int, str]]) -> list[FleetObject]:
        """Fleet objects of the given (cell, label) pairs (the candidates of a push)."""
        by_label: dict[str, set[int]] = {}
        for cell, label in keys:
            by_label.setdefault(label, set()).add(cell)
        out: list[FleetObject] = []
        for label, cells in sorted(by_label.items()):  # "cell IN (...) AND label = ?": the index
            out += (
                self._fleet_in_cells(sorted(cells), label, False)
                if label
                else [f for f in self._fleet_in_cells(sorted(cells), "", False) if not f.obj.label]
            )
        return out

    def _fleet_in_cells(
        self, cells: Sequence[int], label: str = "", features: bool = True
    ) -> list[FleetObject]:
        out: list[FleetObject] = []
        extra = " AND label = ?" if label else ""
        for chunk in _chunks(sorted(set(cells))):
            params: list[Any] = list(chunk) + ([label] if label else [])
            where = f"cell IN ({_placeholders(len(chunk))}){extra}"
            out += self._select_fleet(where, params, features)
        return out

    # ------------------------------------------------------------------ writes

    def push(
        self,
        robot_id: str,
        frame_id: str,
        objects: Sequence[SceneObject],
        stamps: Mapping[str, float] | None = None,
    ) -> MergeResult:
        """Merge one robot's objects into the fleet memory, atomically.

        Args:
            robot_id: the pushing robot (e.g. its namespace).
            frame_id: the frame of the robot's map; must be the fleet's ``map_frame``.
            objects: the robot's long-term objects (local ids) that changed since its last push.
            stamps: local id -> evidence time later than ``last_seen`` (objects found gone).

        Raises:
            FleetError: another map frame, an empty robot id, a malformed object (nothing
                written).
            StoreUnavailable: the connection failed (nothing written; push again later).
        """
        if not robot_id:
            raise FleetError("a push needs a non-empty robot id")
        if frame_id != self.map_frame:
            raise FleetError(
                f"robot {robot_id!r} publishes in frame {frame_id!r} but the fleet memory is in "
                f"{self.map_frame!r}: fleet robots must share one map frame (nothing written)"
            )
        objects = list(objects)
        for o in objects:
            validate_object(o, robot_id)
        if len({o.id for o in objects}) != len(objects):
            raise FleetError(f"robot {robot_id!r} pushed one object id twice")
        if not objects:
            return MergeResult()
        with self._transaction(write=True):
            meta = {k: v for k, v in self._execute("SELECT key, value FROM fleet_meta")}
            seq = int(meta["seq"]) + 1
            next_index = int(meta["next_index"])
            ids = [o.id for o in objects]
            links: dict[str, str] = {}
            for chunk in _chunks(ids):
                links.update(
                    self._execute(
                        "SELECT object_id, fleet_id FROM robot_objects WHERE robot_id = ? AND "
                        f"object_id IN ({_placeholders(len(chunk))})",
                        [robot_id, *chunk],
                    )
                )
            keys: set[tuple[int, str]] = set()
            for o in objects:  # candidates of unlinked objects, look-alikes of linked ones
                radius = search_radius(o, self.config)
                cells = cells_around(o.center, radius, self.config.cell_size_m)
                keys.update((c, o.label) for c in cells)
            # features are not read (the bulk of a row): the upsert keeps the stored one
            linked = self._fleet_by_ids(sorted(set(links.values())), features=False)
            fleet = {f.id: f for f in linked}
            for f in self._fleet_in_cell_labels(sorted(keys)):
                fleet.setdefault(f.id, f)

            def new_id() -> str:
                nonlocal next_index
                next_index += 1
                return make_fleet_id(next_index - 1)

            result = merge_push(robot_id, objects, links, fleet, self.config, new_id, stamps)
            removed = {}
            for drop, keep in result.removed.items():
                while keep in result.removed:  # a chain of merges: the last one kept
                    keep = result.removed[keep]
                removed[drop] = keep
            self._executemany(
                "UPDATE fleet_objects SET merged_into = ?, seq = ? WHERE id = ?",
                [(keep, seq, drop) for drop, keep in removed.items()],
            )
            self._executemany(
                "UPDATE robot_objects SET fleet_id = ? WHERE fleet_id = ?",
                [(keep, drop) for drop, keep in removed.items()],
            )
            self._executemany(
                f"INSERT INTO fleet_objects ({_FLEET_COLUMNS}) VALUES ({_placeholders(23)}) "
                "ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(
                    f"{c} = COALESCE(excluded.{c}, fleet_objects.{c})"
                    if c == "feature"
                    else f"{c} = excluded.{c}"
                    for c in _FLEET_COLUMNS.split(", ")[1:]
                ),
                [self._fleet_row(f, seq) for f in result.objects.values()],
            )
            # Each robot's row only moves forward in time (a late, older push changes nothing).
            self._executemany(
                f"INSERT INTO robot_objects ({_ROBOT_COLUMNS}) VALUES ({_placeholders(19)}) "
                "ON CONFLICT (robot_id, object_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _ROBOT_COLUMNS.split(", ")[2:])
                + " WHERE excluded.last_seen >= robot_objects.last_seen",
                [self._robot_row(robot_id, o, result.links[o.id], seq) for o in objects],
            )
            change_seq = int(meta["change_seq"])
            rows = []
            for ch in result.changes:
                e = ch.event
                change_seq += 1
                rows.append(
                    (
                        change_seq,
                        int(e.kind),
                        e.object_id,
                        e.label,
                        float(e.stamp),
                        ch.robot_id,
                        *map(float, e.old_position),
                        *map(float, e.new_position),
                        e.old_state,
                        e.new_state,
                    )
                )
            self._executemany(
                f"INSERT INTO fleet_changes ({_CHANGE_COLUMNS}) VALUES ({_placeholders(14)})",
                rows,
            )
            self._set_meta(seq=seq, next_index=next_index, change_seq=change_seq)
        return result

    def replace_all(self, objects: Sequence[FleetObject], changes: Sequence[FleetChange]) -> None:
        """Replace the whole fleet memory (fleet objects, provenance, changes), atomically."""
        with self._transaction(write=True):
            meta = {k: v for k, v in self._execute("SELECT key, value FROM fleet_meta")}
            seq = int(meta["seq"]) + 1
            next_index = 0
            for f in objects:
                with contextlib.suppress(ValueError):
                    next_index = max(next_index, int(f.id.rsplit("_", 1)[-1]) + 1)
            for table in ("fleet_objects", "robot_objects", "fleet_changes"):
                self._execute(f"DELETE FROM {table}")
            self._executemany(
                f"INSERT INTO fleet_objects ({_FLEET_COLUMNS}) VALUES ({_placeholders(23)})",
                [self._fleet_row(f, seq) for f in objects],
            )
            robot_rows = []
            for f in objects:
                for robot, src in f.sources.items():
                    o = SceneObject(
                        id=src.object_id, label=f.obj.label, center=src.center,
                        size=f.obj.size, state=src.state, present=src.present,
                        first_seen=f.obj.first_seen, last_seen=src.last_seen,
                        observations=src.observations,
                    )  # fmt: skip
                    robot_rows.append(self._robot_row(robot, o, f.id, seq))
            self._executemany(
                f"INSERT INTO robot_objects ({_ROBOT_COLUMNS}) VALUES ({_placeholders(19)})",
                robot_rows,
            )
            self._executemany(
                f"INSERT INTO fleet_changes ({_CHANGE_COLUMNS}) VALUES ({_placeholders(14)})",
                [
                    (i + 1, int(c.event.kind), c.event.object_id, c.event.label,
                     float(c.event.stamp), c.robot_id, *map(float, c.event.old_position),
                     *map(float, c.event.new_position), c.event.old_state, c.event.new_state)
                    for i, c in enumerate(changes)
                ],
            )  # fmt: skip
            self._set_meta(
                seq=seq,
                next_index=max(next_index, int(meta["next_index"])),
                change_seq=len(changes),
            )

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        """Return the number of fleet objects."""
        with self._transaction(write=False):
            return int(self._execute("SELECT COUNT(*) FROM fleet_objects")[0][0])

    def objects(self, since_seq: int = 0) -> tuple[list[FleetObject], int]:
        """Fleet objects changed after ``since_seq`` (all with 0) and the store's current seq."""
        with self._transaction(write=False):
            seq = int(self._execute("SELECT value FROM fleet_meta WHERE key = 'seq'")[0][0])
            found = self._select_fleet("seq > ?", (int(since_seq),))
        return found, seq

    def merged_since(self, since_seq: int) -> dict[str, str]:
        """Fleet objects merged into another after ``since_seq``: dropped id -> kept id."""
        with self._transaction(write=False):
            rows = self._execute(
                "SELECT id, merged_into FROM fleet_objects WHERE merged_into <> '' AND seq > ?",
                (int(since_seq),),
            )
        return {str(a): str(b) for a, b in rows}

    def get(self, ids: Sequence[str]) -> list[FleetObject]:
        """Return the fleet objects with these global ids (unknown ids are left out)."""
        with self._transaction(write=False):
            return self._fleet_by_ids(ids)

    def query(
        self,
        near: Sequence[float] | None = None,
        radius: float = 0.0,
        label: str = "",
        text_vector: np.ndarray | None = None,
        k: int = 10,
    ) -> list[tuple[FleetObject, float]]:
        """Fleet objects near a point and/or of a label, best first.

        Args:
            near: (3,) point, metres, map frame; with ``radius`` > 0 only objects whose centre
                is within ``radius`` (x, y, z distance) are returned, found through the grid
                cells; without it every object is a candidate.
            radius: metres; 0 with ``near`` = no limit (ranked by distance).
            label: "" = any label.
            text_vector: (D,) unit text embedding: candidates are re-ranked in process by the
                cosine with their stored feature (objects without one score 0).
            k: most results.

        Returns:
            (object, score) pairs: score = cosine with ``text_vector`` when given, else
            1 / (1 + distance) with ``near``, else 0; present objects before absent ones.
        """
        if k <= 0:
            return []
        with self._transaction(write=False):
            if near is not None and radius > 0:
                cells = cells_around(near, radius, self.config.cell_size_m)
                found = self._fleet_in_cells(cells, label)
            elif label:
                found = self._select_fleet("label = ?", (label,))
            else:
                found = self._select_fleet("1 = 1", ())
        scored: list[tuple[FleetObject, float]] = []
        p = None if near is None else np.asarray(near, np.float64).reshape(3)
        for f in found:
            d = 0.0 if p is None else float(np.linalg.norm(np.asarray(f.obj.center) - p))
            if p is not None and radius > 0 and d > radius:
                continue
            if text_vector is not None:
                feat = f.obj.feature
                score = 0.0
                if feat is not None and feat.shape == np.shape(text_vector):
                    score = float(np.dot(feat, text_vector))
            else:
                score = 1.0 / (1.0 + d) if p is not None else 0.0
            scored.append((f, score))
        scored.sort(key=lambda fs: (not fs[0].obj.present, -fs[1], fs[0].obj.id))
        return scored[:k]

    def robot_objects(self, robot_id: str) -> list[tuple[SceneObject, str]]:
        """Return a robot's pushed objects as last acknowledged, with their fleet ids."""
        with self._transaction(write=False):
            rows = self._execute(
                f"SELECT {_ROBOT_COLUMNS} FROM robot_objects WHERE robot_id = ? ORDER BY "
                "object_id",
                (robot_id,),
            )
        out = []
        for (_r, oid, fid, label, conf, cx, cy, cz, sx, sy, sz, state, present, first_seen,
             last_seen, observations, feature, app, _seq) in rows:  # fmt: skip
            obj = SceneObject(
                id=oid,
                label=label,
                label_confidence=float(conf),
                center=np.array([cx, cy, cz], np.float64),
                size=np.array([sx, sy, sz], np.float64),
                state=state,
                present=bool(present),
                first_seen=float(first_seen),
                last_seen=float(last_seen),
                observations=int(observations),
                feature=_vector(feature),
                appearance=_vector(app),
            )
            out.append((obj, fid))
        return out

    def robots(self) -> list[str]:
        """Ids of the robots that pushed objects."""
        with self._transaction(write=False):
            return [r for (r,) in self._execute("SELECT DISTINCT robot_id FROM robot_objects")]

    def changes(
        self, since: float = -math.inf, object_id: str = "", max_results: int = 50
    ) -> list[FleetChange]:
        """Fleet-level changes with ``stamp >= since``, newest first.

        Raises:
            InvalidInput: NaN ``since`` or negative ``max_results``.
        """
        if isinstance(since, float) and math.isnan(since):
            raise InvalidInput("since must be a number, got NaN")
        if max_results < 0:
            raise InvalidInput(f"max_results must be >= 0, got {max_results}")
        limit = max_results or 50
        where = "stamp >= ?"
        params: list[Any] = [float(max(since, -1e300))]
        if object_id:
            where += " AND object_id = ?"
            params.append(object_id)
        with self._transaction(write=False):
            rows = self._execute(
                f"SELECT {_CHANGE_COLUMNS} FROM fleet_changes WHERE {where} "
                f"ORDER BY stamp DESC, seq DESC LIMIT {int(limit)}",
                params,
            )
        out = []
        for (_s, kind, oid, label, stamp, robot, ox, oy, oz, nx, ny, nz, old_state,
             new_state) in rows:  # fmt: skip
            event = ChangeEvent(
                kind=ChangeKind(int(kind)),
                object_id=oid,
                label=label,
                stamp=float(stamp),
                old_position=np.array([ox, oy, oz], np.float64),
                new_position=np.array([nx, ny, nz], np.float64),
                old_state=old_state,
                new_state=new_state,
            )
            out.append(FleetChange(event, robot))
        return out
