"""SQLite backend of the fleet store: one file, no server (the embedded default).

``sqlite:///abs/path.db`` or ``sqlite:relative/path.db``. The file is in WAL mode, so readers
never wait for the writer; writers take turns through ``BEGIN IMMEDIATE`` (waiting up to
``busy_timeout_s``), which serialises pushes of several processes sharing the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from memory_node.core.fleet import FleetConfig
from memory_node.core.storage.base import FleetStore, StorageError, StoreUnavailable


class SqliteStore(FleetStore):
    """The fleet store in an SQLite file (see the module docstring)."""

    blob_type = "BLOB"
    busy_timeout_s = 30.0

    def __init__(self, url: str, config: FleetConfig, migrate: bool, verify: bool = True) -> None:
        path = url.removeprefix("sqlite:")
        if path.startswith("/"):
            path = "/" + path.lstrip("/")  # sqlite:///abs/path.db
        if not path:
            raise StorageError(f"no file in storage URL {url!r} (expected sqlite:///path.db)")
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreUnavailable(f"cannot open {self.path}: no directory {directory}")
        if os.path.isdir(self.path):
            raise StoreUnavailable(f"cannot open {self.path}: it is a directory")
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._depth = 0
        try:
            super().__init__(url, config, migrate, verify)
        except BaseException:
            self._conn.close()
            raise

    def describe(self) -> str:
        """Where the store is."""
        return f"SQLite store {self.path}"

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.describe()}: {exc}") from exc

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.describe()}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[None]:
        if self._depth:  # nested: part of the enclosing transaction
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.describe()}: cannot begin ({exc})") from exc
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise StoreUnavailable(f"{self.describe()}: commit failed ({exc})") from exc

    def _has_table(self, name: str) -> bool:
        rows = self._execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        )
        return bool(rows)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()
