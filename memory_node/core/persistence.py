"""Save and load the memory as one SQLite file, atomically.

File layout (schema version :data:`SCHEMA_VERSION`, journal mode WAL):

* ``schema(version)``: one row;
* ``meta(key, value)``: ``next_object_index`` and ``meta`` (JSON);
* ``objects``: one row per :class:`SceneObject`; arrays as little-endian blobs: ``center``,
  ``size`` (3,) float64; ``points`` (N, 3) float32; ``feature`` (D,) float32 or NULL;
  ``history`` (H, 4) float64 rows ``(stamp, x, y, z)``; ``label_votes`` as JSON;
  ``appearance`` (D,) float32 or NULL (added in version 2; version-1 files still load);
* ``zones``, ``relations``, ``changes``: one row each, in list order (column ``idx``);
* ``free_space`` (added in version 3; files of versions 1 and 2 load without keyframes): one
  row per free-space keyframe, oldest first (column ``idx``): ``stamp``, ``height``,
  ``width`` of the pooled image, ``K`` (3, 3) and ``camera_T_map`` (4, 4) float64 blobs,
  ``depth`` (height, width) float16 blob (metres, 0 = no evidence);
* ``surface_heights`` (added in version 4; keyframes of older files load without them): one
  row per keyframe with block heights (column ``idx`` = its ``free_space`` row): ``height``,
  ``width``, ``heights`` (height, width) float16 blob (map-frame z, NaN = no evidence).
* ``free_space_missing`` (added in version 5; older files kept only blocks with every reading,
  and load as such): one row per keyframe with blocks missing depth readings (column ``idx`` =
  its ``free_space`` row): ``missing`` (height, width) uint16 blob of the ``free_space`` row's
  size, the readings each block lacks.

Saves are atomic: the file is written under a temporary name in the destination directory
(without a journal: nobody else sees it yet), switched to WAL mode, closed, fsynced and moved
over the destination with :func:`os.replace` (keeping the old file's mode), so a crash or
kill at any moment leaves either the previous file or the new one, never a mix. One writer per
path at a time is assumed (the node serialises saves); temporary files left by a killed save are
removed by the next save to the same path.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.safe_paths import open_regular, save_target
from memory_node.core.types import (
    ChangeEvent,
    ChangeKind,
    FreeSpaceKeyframes,
    InvalidInput,
    MemorySnapshot,
    Relation,
    SceneObject,
    Zone,
)

_LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 5
"""Version written to and required in the ``schema`` table."""

_SCHEMA = """
CREATE TABLE schema (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    label_confidence REAL NOT NULL,
    label_votes TEXT NOT NULL,
    center BLOB NOT NULL,
    size BLOB NOT NULL,
    points BLOB NOT NULL,
    feature BLOB,
    state TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    observations INTEGER NOT NULL,
    present INTEGER NOT NULL,
    miss_count REAL NOT NULL,
    history BLOB NOT NULL,
    appearance BLOB
);
CREATE TABLE zones (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    label TEXT NOT NULL,
    center BLOB NOT NULL,
    size BLOB NOT NULL,
    object_ids TEXT NOT NULL
);
CREATE TABLE relations (
    idx INTEGER PRIMARY KEY,
    subject_id TEXT NOT NULL,
    predicate TEXT NOT NULL,
    object_id TEXT NOT NULL,
    confidence REAL NOT NULL
);
CREATE TABLE changes (
    idx INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    label TEXT NOT NULL,
    stamp REAL NOT NULL,
    old_position BLOB NOT NULL,
    new_position BLOB NOT NULL,
    old_state TEXT NOT NULL,
    new_state TEXT NOT NULL
);
CREATE TABLE free_space (
    idx INTEGER PRIMARY KEY,
    stamp REAL NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    K BLOB NOT NULL,
    camera_T_map BLOB NOT NULL,
    depth BLOB NOT NULL
);
CREATE TABLE surface_heights (
    idx INTEGER PRIMARY KEY,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    heights BLOB NOT NULL
);
CREATE TABLE free_space_missing (
    idx INTEGER PRIMARY KEY,
    missing BLOB NOT NULL
);
"""

_F64 = np.dtype("<f8")
_F32 = np.dtype("<f4")
_F16 = np.dtype("<f2")
_U16 = np.dtype("<u2")


def _blob(array: Any, dtype: np.dtype) -> bytes:
    return np.ascontiguousarray(np.asarray(array), dtype=dtype).tobytes()


def _vec3(array: Any, what: str) -> bytes:
    arr = np.asarray(array, dtype=_F64).reshape(-1)
    if arr.shape != (3,):
        raise InvalidInput(f"cannot save: {what} has shape {np.shape(array)}, expected (3,)")
    return arr.tobytes()


def _history_blob(history: Sequence[tuple[float, np.ndarray]]) -> bytes:
    rows = np.empty((len(history), 4), dtype=_F64)
    for i, (stamp, centre) in enumerate(history):
        rows[i, 0] = stamp
        rows[i, 1:] = np.asarray(centre, dtype=_F64).reshape(3)
    return rows.tobytes()


def _object_rows(objects: Sequence[SceneObject]) -> Iterator[tuple[Any, ...]]:
    """Yield one ``objects`` row per object (a generator, so rows are not all held at once)."""
    for i, obj in enumerate(objects):
        points = np.asarray(obj.points)
        if points.size and (points.ndim != 2 or points.shape[1] != 3):
            raise InvalidInput(f"cannot save: object {obj.id} points have shape {points.shape}")
        feature = None if obj.feature is None else _blob(np.reshape(obj.feature, -1), _F32)
        for name in ("label_confidence", "first_seen", "last_seen", "miss_count"):
            if math.isnan(getattr(obj, name)):
                raise InvalidInput(f"cannot save: object {obj.id} has {name} = NaN")
        yield (
            i,
            obj.id,
            obj.label,
            float(obj.label_confidence),
            json.dumps({str(k): float(v) for k, v in obj.label_votes.items()}),
            _vec3(obj.center, f"object {obj.id} center"),
            _vec3(obj.size, f"object {obj.id} size"),
            _blob(points.reshape(-1, 3), _F32),
            feature,
            obj.state,
            obj.zone_id,
            float(obj.first_seen),
            float(obj.last_seen),
            int(obj.observations),
            int(bool(obj.present)),
            float(obj.miss_count),
            _history_blob(obj.history),
            None if obj.appearance is None else _blob(np.reshape(obj.appearance, -1), _F32),
        )


def _free_space_rows(keyframes: FreeSpaceKeyframes) -> Iterator[tuple[Any, ...]]:
    """Yield one ``free_space`` row per keyframe, oldest first, each image without padding."""
    depth, sizes = np.asarray(keyframes.depth), np.asarray(keyframes.sizes)
    K, T = np.asarray(keyframes.K), np.asarray(keyframes.camera_T_map)
    stamps = np.asarray(keyframes.stamps)
    for i in range(len(keyframes)):
        h, w = int(sizes[i, 0]), int(sizes[i, 1])
        yield (
            i,
            float(stamps[i]),
            h,
            w,
            _blob(K[i], _F64),
            _blob(T[i], _F64),
            _blob(depth[i, :h, :w], _F16),
        )


def _surface_rows(keyframes: FreeSpaceKeyframes) -> Iterator[tuple[Any, ...]]:
    """Yield one ``surface_heights`` row per keyframe with block heights, without padding."""
    if keyframes.heights is None or keyframes.height_sizes is None:
        return
    heights, hsizes = np.asarray(keyframes.heights), np.asarray(keyframes.height_sizes)
    for i in range(len(keyframes)):
        h, w = int(hsizes[i, 0]), int(hsizes[i, 1])
        if h and w:
            yield (i, h, w, _blob(heights[i, :h, :w], _F16))


def _missing_rows(keyframes: FreeSpaceKeyframes) -> Iterator[tuple[Any, ...]]:
    """Yield one ``free_space_missing`` row per keyframe with blocks missing readings."""
    if keyframes.missing is None:
        return
    sizes = np.asarray(keyframes.sizes)
    missing = np.clip(np.asarray(keyframes.missing), 0, np.iinfo(np.uint16).max)
    for i in range(len(keyframes)):
        h, w = int(sizes[i, 0]), int(sizes[i, 1])
        if missing[i, :h, :w].any():
            yield (i, _blob(missing[i, :h, :w], _U16))


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    for p in (path, path + "-wal", path + "-shm", path + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(p)


def save_memory(path: str, snapshot: MemorySnapshot) -> None:
    """Write ``snapshot`` to the SQLite file ``path`` atomically (replacing any previous file).

    The file written is always a regular file; a symbolic link is followed only to a regular
    file (see :func:`safe_paths.save_target`).

    Raises:
        InvalidInput: ``path`` is empty, holds NUL, names a directory, device, FIFO or socket
            (or a link to one), lies in a missing directory, or the snapshot holds arrays of the
            wrong shape or non-JSON meta. The previous file is untouched.
    """
    path = save_target(path)
    directory = os.path.dirname(path)
    try:
        meta_json = json.dumps(snapshot.meta, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot save: meta is not JSON-serialisable ({exc})") from exc
    keyframes = snapshot.free_space or FreeSpaceKeyframes()
    try:
        keyframes.validate()
    except InvalidInput as exc:
        raise InvalidInput(f"cannot save: free-space {exc}") from exc

    prefix = f".{os.path.basename(path)}."
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*.tmp")):
        _LOG.info("removing %s left by an interrupted save", stale)
        _remove_quietly(stale)
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InvalidInput(f"cannot save to {path}: {exc}") from exc
    os.close(fd)
    try:
        # mkstemp makes the file private (0600): keep the mode of the file being replaced
        mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # The temporary file is private until os.replace: it needs no journal, and one
            # fsync at the end replaces SQLite's (writing through a WAL would copy every page
            # twice). It is switched to WAL mode before it is published.
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA page_size=16384")
            conn.execute("BEGIN")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("next_object_index", str(int(snapshot.next_object_index))),
                    ("meta", meta_json),
                ],
            )
            conn.executemany(
                "INSERT INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _object_rows(snapshot.objects),
            )
            conn.executemany(
                "INSERT INTO zones VALUES (?,?,?,?,?,?)",
                (
                    (
                        i,
                        z.id,
                        z.label,
                        _vec3(z.center, f"zone {z.id} center"),
                        _vec3(z.size, f"zone {z.id} size"),
                        json.dumps([str(o) for o in z.object_ids]),
                    )
                    for i, z in enumerate(snapshot.zones)
                ),
            )
            conn.executemany(
                "INSERT INTO relations VALUES (?,?,?,?,?)",
                (
                    (i, r.subject_id, r.predicate, r.object_id, float(r.confidence))
                    for i, r in enumerate(snapshot.relations)
                ),
            )
            conn.executemany(
                "INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    (
                        i,
                        int(e.kind),
                        e.object_id,
                        e.label,
                        float(e.stamp),
                        _vec3(e.old_position, f"change {i} old_position"),
                        _vec3(e.new_position, f"change {i} new_position"),
                        e.old_state,
                        e.new_state,
                    )
                    for i, e in enumerate(snapshot.changes)
                ),
            )
            conn.executemany(
                "INSERT INTO free_space VALUES (?,?,?,?,?,?,?)", _free_space_rows(keyframes)
            )
            conn.executemany(
                "INSERT INTO surface_heights VALUES (?,?,?,?)", _surface_rows(keyframes)
            )
            conn.executemany(
                "INSERT INTO free_space_missing VALUES (?,?)", _missing_rows(keyframes)
            )
            conn.execute("COMMIT")
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                raise sqlite3.OperationalError("could not switch the file to WAL mode")
        finally:
            conn.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except sqlite3.IntegrityError as exc:
        _remove_quietly(tmp)
        raise InvalidInput(f"cannot save: inconsistent snapshot ({exc})") from exc
    except (sqlite3.Error, OSError) as exc:
        _remove_quietly(tmp)
        raise InvalidInput(f"cannot save to {path}: {exc}") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    finally:
        for side in (tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(side)
    _LOG.debug(
        "saved %d objects, %d zones, %d relations, %d changes, %d free-space keyframes to %s",
        len(snapshot.objects),
        len(snapshot.zones),
        len(snapshot.relations),
        len(snapshot.changes),
        len(keyframes),
        path,
    )


def _array(blob: bytes, dtype: np.dtype, what: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(blob, bytes) or len(blob) % dtype.itemsize:
        raise InvalidInput(f"corrupt memory file: {what} blob has a bad length")
    arr = np.frombuffer(blob, dtype=dtype)
    count = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if arr.size % count:
            raise InvalidInput(f"corrupt memory file: {what} blob has a bad length")
    elif arr.size != count:
        raise InvalidInput(f"corrupt memory file: {what} has {arr.size} values, expected {count}")
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _read_surface_heights(conn: sqlite3.Connection, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Read the ``surface_heights`` table into (heights, height_sizes) for ``n`` keyframes."""
    rows: dict[int, np.ndarray] = {}
    for idx, height, width, blob in conn.execute(
        "SELECT idx, height, width, heights FROM surface_heights ORDER BY idx"
    ):
        what = f"surface_heights row {idx}"
        if not isinstance(idx, int) or not 0 <= idx < n:
            raise InvalidInput(f"corrupt memory file: {what} names no free_space keyframe")
        if not isinstance(height, int) or not isinstance(width, int) or height < 1 or width < 1:
            raise InvalidInput(f"corrupt memory file: {what} has size {height!r} x {width!r}")
        rows[idx] = _array(blob, _F16, f"{what} heights", (height, width))
    return _stack(rows, n, np.nan)


def _stack(blocks: dict[int, np.ndarray], n: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Pad the (h, w) images of keyframes 0..n-1 (index -> image) into one (n, H, W) float16.

    Returns the array (padding ``fill``) and the (n, 2) int64 sizes, (0, 0) where none.
    """
    sizes = np.zeros((n, 2), np.int64)
    for i, a in blocks.items():
        sizes[i] = a.shape
    h, w = (int(v) for v in sizes.max(axis=0)) if n else (0, 0)
    out = np.full((n, h, w), fill, np.float16)
    for i, a in blocks.items():
        out[i, : a.shape[0], : a.shape[1]] = a
    return out, sizes


def _read_missing(conn: sqlite3.Connection, sizes: np.ndarray) -> np.ndarray:
    """Read the ``free_space_missing`` table into (n, h, w) counts for keyframes of ``sizes``."""
    n = sizes.shape[0]
    h, w = (int(v) for v in sizes.max(axis=0)) if n else (0, 0)
    out = np.zeros((n, h, w), np.uint16)
    for idx, blob in conn.execute("SELECT idx, missing FROM free_space_missing ORDER BY idx"):
        what = f"free_space_missing row {idx}"
        if not isinstance(idx, int) or not 0 <= idx < n:
            raise InvalidInput(f"corrupt memory file: {what} names no free_space keyframe")
        hk, wk = int(sizes[idx, 0]), int(sizes[idx, 1])
        out[idx, :hk, :wk] = _array(blob, _U16, f"{what} missing", (hk, wk))
    return out


def _read_free_space(
    conn: sqlite3.Connection, with_heights: bool, with_missing: bool
) -> FreeSpaceKeyframes:
    """Read the ``free_space`` table, with ``surface_heights`` and ``free_space_missing``.

    Those two are read when ``with_heights`` and ``with_missing`` say so. A bad row raises
    :class:`InvalidInput` naming it.
    """
    rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    for idx, stamp, height, width, K, T, depth in conn.execute(
        "SELECT idx, stamp, height, width, K, camera_T_map, depth FROM free_space ORDER BY idx"
    ):
        what = f"free_space row {idx}"
        if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise InvalidInput(f"corrupt memory file: {what} has stamp {stamp!r}")
        if not isinstance(height, int) or not isinstance(width, int) or height < 1 or width < 1:
            raise InvalidInput(f"corrupt memory file: {what} has size {height!r} x {width!r}")
        k = _array(K, _F64, f"{what} K", (3, 3))
        t = _array(T, _F64, f"{what} camera_T_map", (4, 4))
        for name, arr in (("K", k), ("camera_T_map", t)):
            if not np.isfinite(arr).all():
                raise InvalidInput(f"corrupt memory file: {what} {name} is not finite")
        rows.append((float(stamp), k, t, _array(depth, _F16, f"{what} depth", (height, width))))
    depth_all, sizes = _stack({i: d for i, (_, _, _, d) in enumerate(rows)}, len(rows), 0.0)
    keyframes = FreeSpaceKeyframes(
        depth=depth_all,
        sizes=sizes,
        K=np.array([k for _, k, _, _ in rows]).reshape(-1, 3, 3),
        camera_T_map=np.array([t for _, _, t, _ in rows]).reshape(-1, 4, 4),
        stamps=np.array([s for s, _, _, _ in rows], np.float64),
    )
    if with_heights:
        keyframes.heights, keyframes.height_sizes = _read_surface_heights(conn, len(rows))
    if with_missing:
        keyframes.missing = _read_missing(conn, sizes)
    try:
        keyframes.validate()
    except InvalidInput as exc:
        raise InvalidInput(f"corrupt memory file: free_space table: {exc}") from exc
    return keyframes


def _read(conn: sqlite3.Connection) -> MemorySnapshot:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema" not in tables:
        raise InvalidInput("not a memory_node memory file: no schema table")
    versions = [row[0] for row in conn.execute("SELECT version FROM schema")]
    if versions not in ([1], [2], [3], [4], [SCHEMA_VERSION]):
        raise InvalidInput(
            f"unsupported memory file schema version {versions} (this build reads 1 to "
            f"{SCHEMA_VERSION})"
        )
    required = {"meta", "objects", "zones", "relations", "changes"}
    if versions[0] >= 3:
        required.add("free_space")  # versions 1 and 2 have no keyframes
    if versions[0] >= 4:
        required.add("surface_heights")  # version 3 has keyframes without block heights
    if versions == [SCHEMA_VERSION]:
        required.add("free_space_missing")  # version 4 kept only complete blocks
    missing = required - tables
    if missing:
        raise InvalidInput(f"corrupt memory file: missing tables {sorted(missing)}")

    meta_rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    try:
        next_index = int(meta_rows["next_object_index"])
        meta = json.loads(meta_rows["meta"])
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"corrupt memory file: bad meta table ({exc})") from exc
    if not isinstance(meta, dict):
        raise InvalidInput("corrupt memory file: meta is not a JSON object")

    objects: list[SceneObject] = []
    for row in conn.execute("SELECT * FROM objects ORDER BY idx"):
        (_, oid, label, conf, votes, center, size, points, feature, state, zone_id,
         first_seen, last_seen, observations, present, miss_count, history) = row[:17]  # fmt: skip
        appearance = row[17] if len(row) > 17 else None  # version 1 files have no column
        hist = _array(history, _F64, f"object {oid} history", (-1, 4))
        objects.append(
            SceneObject(
                id=oid,
                label=label,
                label_confidence=conf,
                label_votes={str(k): float(v) for k, v in json.loads(votes).items()},
                center=_array(center, _F64, f"object {oid} center", (3,)),
                size=_array(size, _F64, f"object {oid} size", (3,)),
                points=_array(points, _F32, f"object {oid} points", (-1, 3)),
                feature=None
                if feature is None
                else _array(feature, _F32, f"object {oid} feature", (-1,)),
                state=state,
                zone_id=zone_id,
                first_seen=first_seen,
                last_seen=last_seen,
                observations=int(observations),
                present=bool(present),
                miss_count=miss_count,
                history=[(float(h[0]), h[1:].copy()) for h in hist],
                appearance=None
                if appearance is None
                else _array(appearance, _F32, f"object {oid} appearance", (-1,)),
            )
        )
    zones = [
        Zone(
            id=zid,
            label=label,
            center=_array(center, _F64, f"zone {zid} center", (3,)),
            size=_array(size, _F64, f"zone {zid} size", (3,)),
            object_ids=[str(o) for o in json.loads(object_ids)],
        )
        for (_, zid, label, center, size, object_ids) in conn.execute(
            "SELECT * FROM zones ORDER BY idx"
        )
    ]
    relations = [
        Relation(subject_id=s, predicate=p, object_id=o, confidence=c)
        for (_, s, p, o, c) in conn.execute("SELECT * FROM relations ORDER BY idx")
    ]
    changes = []
    for i, kind, oid, label, stamp, old_pos, new_pos, old_state, new_state in conn.execute(
        "SELECT * FROM changes ORDER BY idx"
    ):
        try:
            change_kind = ChangeKind(kind)
        except ValueError as exc:
            raise InvalidInput(f"corrupt memory file: change {i} has kind {kind}") from exc
        changes.append(
            ChangeEvent(
                kind=change_kind,
                object_id=oid,
                label=label,
                stamp=stamp,
                old_position=_array(old_pos, _F64, f"change {i} old_position", (3,)),
                new_position=_array(new_pos, _F64, f"change {i} new_position", (3,)),
                old_state=old_state,
                new_state=new_state,
            )
        )
    return MemorySnapshot(
        objects=objects,
        relations=relations,
        zones=zones,
        changes=changes,
        next_object_index=next_index,
        meta=meta,
        free_space=(
            _read_free_space(conn, "surface_heights" in required, "free_space_missing" in required)
            if "free_space" in required
            else None
        ),
    )


def load_memory(path: str) -> MemorySnapshot:
    """Read a file written by :func:`save_memory`.

    Never blocks on the path: FIFOs, devices and other non-regular files are refused before
    they are opened (:func:`safe_paths.open_regular`).

    Raises:
        InvalidInput: the path is missing, not a regular file, not an SQLite file, truncated or
            corrupt, or of another schema; the message says which.
    """
    fd = open_regular(path)
    try:
        header = os.read(fd, 16)
    except OSError as exc:
        raise InvalidInput(f"cannot load: {path} is not readable ({exc})") from exc
    finally:
        os.close(fd)
    if header != b"SQLite format 3\x00":
        raise InvalidInput(f"cannot load: {path} is not an SQLite file")
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"cannot load: {path} cannot be opened ({exc})") from exc
    try:
        snapshot = _read(conn)
    except sqlite3.Error as exc:
        raise InvalidInput(f"cannot load: {path} is corrupt or truncated ({exc})") from exc
    except InvalidInput:
        raise
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidInput(f"cannot load: {path} holds malformed values ({exc})") from exc
    finally:
        conn.close()
    _LOG.debug("loaded %d objects from %s", len(snapshot.objects), path)
    return snapshot
