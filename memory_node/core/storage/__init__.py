"""Storage of the shared long-term memory: one interface, two backends.

* ``sqlite:///path/fleet.db`` (or ``sqlite:relative/path.db``): an SQLite file, the embedded
  default: no server, one machine (several processes may share the file; writers take turns).
* ``postgresql://user:password@host:port/db``: a PostgreSQL server through psycopg 3, for
  several machines (``tools/postgres.sh`` runs a private one).

Both hold the same versioned schema (:data:`SCHEMA_VERSION`; :mod:`.sql` lists the migrations):
the fleet objects (global ids, box, state, presence, label, provenance), each robot's pushed
objects (its local ids and stamps, linked to a fleet object), and the fleet-level change events.
Near-queries use a grid-cell index (an int64 cell key per object, see
:func:`memory_node.core.fleet.cell_of`); feature vectors are stored as blobs (bytea) and
re-ranked in process (there is no pgvector on Debian 12). A robot's own memory file stays the
SQLite file of :mod:`memory_node.core.persistence` (today's format); the fleet node's ``~/save``
and ``~/load`` write and read that same format.

Errors: :class:`StoreUnavailable` (no connection: wrong URL, password, server down; retry
later), :class:`SchemaMismatch` (the database holds another schema version: run ``python -m
memory_node.core.storage migrate URL``), :class:`~memory_node.core.fleet.FleetError` (a push
refused, e.g. another map frame). Every one leaves the caller's memory untouched.
"""

from __future__ import annotations

import re

from memory_node.core.fleet import FleetConfig
from memory_node.core.storage.base import (
    SCHEMA_VERSION,
    FleetStore,
    SchemaMismatch,
    StorageError,
    StoreUnavailable,
)

__all__ = [
    "SCHEMA_VERSION",
    "FleetStore",
    "SchemaMismatch",
    "StorageError",
    "StoreUnavailable",
    "open_store",
    "redact",
]


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and error messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_store(
    url: str, config: FleetConfig | None = None, migrate: bool = False, verify: bool = True
) -> FleetStore:
    """Open the store at ``url`` (see the module docstring for the forms).

    Args:
        url: ``sqlite:...`` or ``postgresql://...`` (``postgres://`` too).
        config: merge parameters; the map frame and cell size of a new store come from it.
        migrate: create the schema or bring an older one up to :data:`SCHEMA_VERSION`; when
            False a store of another version raises :class:`SchemaMismatch`.
        verify: check the schema version (False only for administration: see ``__main__``).

    Raises:
        StorageError: a malformed URL, an unreachable server, a wrong password, another schema.
    """
    config = config or FleetConfig()
    if url.startswith("sqlite:"):
        from memory_node.core.storage.sqlite import SqliteStore

        return SqliteStore(url, config, migrate, verify)
    if url.startswith(("postgresql://", "postgres://")):
        from memory_node.core.storage.postgres import PostgresStore

        return PostgresStore(url, config, migrate, verify)
    raise StorageError(
        f"unsupported storage URL {redact(url)!r}: expected sqlite:///path/file.db or "
        "postgresql://user:password@host:port/database"
    )
