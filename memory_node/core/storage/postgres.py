"""PostgreSQL backend of the fleet store, through psycopg 3.

``postgresql://user:password@host:port/database`` (libpq URL; ``connect_timeout`` defaults to
:attr:`PostgresStore.connect_timeout_s`). Writers are serialised by a transaction-scoped advisory
lock, so concurrent pushes from several robots (processes, machines) merge one after the other.
A broken connection (server restarted or down) raises :class:`StoreUnavailable`; the next call
reconnects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from memory_node.core.fleet import FleetConfig
from memory_node.core.storage.base import FleetStore, StorageError, StoreUnavailable

WRITER_LOCK = 0x6D656D  # advisory lock key held by every writing transaction


class PostgresStore(FleetStore):
    """The fleet store in a PostgreSQL database (see the module docstring)."""

    blob_type = "BYTEA"
    connect_timeout_s = 5

    def __init__(self, url: str, config: FleetConfig, migrate: bool, verify: bool = True) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a pinned dependency
            raise StorageError(
                "the PostgreSQL backend needs psycopg 3: pip install 'psycopg[binary]'"
            ) from exc
        self._psycopg = psycopg
        self._conn: Any = None
        self.url = url
        self._connect()
        try:
            super().__init__(url, config, migrate, verify)
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        """Where the store is, without the password."""
        from memory_node.core.storage import redact

        return f"PostgreSQL store {redact(self.url)}"

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        psycopg = self._psycopg
        try:
            # autocommit: a read is one statement, one round trip; writes open a transaction
            self._conn = psycopg.connect(
                self.url, connect_timeout=self.connect_timeout_s, autocommit=True
            )
        except psycopg.ProgrammingError as exc:
            raise StorageError(f"malformed connection string ({self.describe()}): {exc}") from exc
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(f"cannot connect to {self.describe()}: {reason}") from exc
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._connect().execute(sql.replace("?", "%s"), tuple(params) or None)
        return cur.fetchall() if cur.description is not None else []

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self._connect().cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[None]:
        psycopg = self._psycopg
        conn = self._connect()
        nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        try:
            if nested or not write:  # reads: each statement on its own (they read seq first)
                yield
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                yield
        except psycopg.OperationalError as exc:
            self._reset()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(f"{self.describe()} is unreachable: {reason}") from exc
        except psycopg.Error as exc:
            if conn.closed:
                self._reset()
                raise StoreUnavailable(f"{self.describe()} is unreachable: {exc}") from exc
            raise StorageError(f"{self.describe()}: {exc}") from exc

    def _has_table(self, name: str) -> bool:
        return self._execute("SELECT to_regclass(?)", (name,))[0][0] is not None

    def close(self) -> None:
        """Close the connection."""
        self._reset()
