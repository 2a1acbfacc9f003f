"""``memory_export``: write a saved memory as a JSON document.

The document holds zones -> objects -> relations -> recent changes (schema
``docs/export-schema.json``)::

    memory_export memory.db --format json -o memory.json [--force] [--max-changes 100]

Without ``-o`` the document goes to standard output. An existing output file is refused unless
``--force`` is given; the file is written under a temporary name and moved into place, so a
failure leaves nothing behind. Exit status: 0 on success, 2 on bad input (the message says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memory_node.core.export import to_document
from memory_node.core.persistence import load_memory
from memory_node.core.types import InvalidInput

FORMATS = ("json",)


def write_new_file(path: str, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically; refuse an existing file unless ``force``.

    Raises:
        InvalidInput: the file exists (and not ``force``) or cannot be written; nothing is
            left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{path} is a directory")
    if target.exists() and not force:
        raise InvalidInput(f"{path} exists; pass --force to overwrite it")
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as err:
        raise InvalidInput(f"cannot write {path}: {err}") from err
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if another writer created it meanwhile
            os.unlink(tmp)
    except FileExistsError as err:
        os.unlink(tmp)
        raise InvalidInput(f"{path} exists; pass --force to overwrite it") from err
    except OSError as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise InvalidInput(f"cannot write {path}: {err}") from err


def export_file(db_path: str, max_changes: int = 100, frame_id: str = "map") -> dict[str, Any]:
    """Load the memory file ``db_path`` and return its export document."""
    return to_document(load_memory(db_path), frame_id=frame_id, max_changes=max_changes)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line of memory_export."""
    parser = argparse.ArgumentParser(
        prog="memory_export", description=__doc__.split("\n\n")[0].replace("``", "")
    )
    parser.add_argument("memory", help="SQLite memory file (from ~/save or autosave)")
    parser.add_argument("--format", default="json", choices=FORMATS, help="output format")
    parser.add_argument("-o", "--output", default="-", help="output file ('-' = stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument(
        "--max-changes", type=int, default=100, help="most recent changes kept (newest first)"
    )
    parser.add_argument("--frame-id", default="map", help="frame of the positions")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``memory_export``; returns the exit status."""
    args = parse_args(argv)
    try:
        doc = export_file(args.memory, args.max_changes, args.frame_id)
        text = json.dumps(doc, indent=1) + "\n"
        if args.output == "-":
            sys.stdout.write(text)
        else:
            write_new_file(args.output, text, args.force)
    except InvalidInput as err:
        print(f"memory_export: {err}", file=sys.stderr)
        return 2
    if args.output != "-":
        n = len(doc["unzoned_objects"]) + sum(len(z["objects"]) for z in doc["zones"])
        print(
            f"memory_export: wrote {args.output}: {len(doc['zones'])} zones, {n} objects, "
            f"{len(doc['relations'])} relations, {len(doc['changes'])} changes",
            file=sys.stderr,
        )
    return 0


def entry_point() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
