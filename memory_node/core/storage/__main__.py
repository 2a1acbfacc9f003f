"""Fleet store administration: ``python -m memory_node.core.storage {version,migrate} URL``."""

from __future__ import annotations

import argparse
import sys

from memory_node.core.storage import SCHEMA_VERSION, StorageError, open_store, redact
from memory_node.core.storage.base import MIGRATIONS


def main(argv: list[str] | None = None) -> int:
    """Print the schema version of a store, or migrate it (to this build's by default)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("command", choices=("version", "migrate"))
    p.add_argument("url", help="sqlite:///path/fleet.db or postgresql://user:pw@host:port/db")
    p.add_argument("--to", type=int, default=SCHEMA_VERSION, choices=sorted(MIGRATIONS))
    args = p.parse_args(argv)
    try:
        store = open_store(args.url, verify=False)
        try:
            if args.command == "migrate":
                applied = store.migrate(args.to)
                print(f"{redact(args.url)}: applied {applied or 'nothing'}; version {args.to}")
            else:
                print(store.schema_version())
        finally:
            store.close()
    except StorageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
