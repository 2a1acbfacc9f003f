"""Path checks for memory files: saves write regular files only, loads never block.

* :func:`save_target` refuses empty paths, NUL characters, over-long paths, directories,
  devices, FIFOs and sockets, and symbolic links to any of those. A symbolic link to a regular
  file (or to a missing file in an existing directory) is resolved: the save replaces its
  target, and the link stays a link.
* :func:`open_regular` opens a file for reading only when it is a regular file: the type is
  checked before opening, and the file is opened with ``O_NONBLOCK`` and checked again on the
  open descriptor, so a FIFO swapped in meanwhile cannot block the caller.
"""

from __future__ import annotations

import os
import stat

from memory_node.core.types import InvalidInput

MAX_PATH_BYTES = 4096
"""Longest path accepted, in UTF-8 bytes (Linux PATH_MAX)."""


def _check_text(path: object, action: str) -> str:
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"cannot {action}: empty path")
    if "\x00" in path:
        raise InvalidInput(f"cannot {action}: the path contains a NUL character")
    try:
        size = len(os.fsencode(path))
    except UnicodeError as exc:
        raise InvalidInput(f"cannot {action}: the path is not valid text ({exc})") from exc
    if size > MAX_PATH_BYTES:
        raise InvalidInput(f"cannot {action}: the path is {size} bytes long (> {MAX_PATH_BYTES})")
    return path


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def save_target(path: str) -> str:
    """Return the absolute path a save to ``path`` should replace.

    Raises:
        InvalidInput: the path is empty, holds NUL, is too long, names something other than a
            regular file (directly or through symbolic links), or its directory is missing.
    """
    if os.path.basename(_check_text(path, "save")) in ("", ".", ".."):
        raise InvalidInput(f"cannot save: {path} names a directory, not a file")
    path = os.path.abspath(path)
    try:
        if os.path.islink(path):
            path = os.path.realpath(path)
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InvalidInput(f"cannot save to {path}: {exc}") from exc
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise InvalidInput(f"cannot save: {path} is {kind}, not a regular file")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise InvalidInput(f"cannot save: directory {directory} does not exist")
    return path


def open_regular(path: str) -> int:
    """Open the regular file ``path`` for reading without ever blocking; return the descriptor.

    Raises:
        InvalidInput: the path is empty, holds NUL, is too long, is missing, unreadable, or
            not a regular file (directory, FIFO, device, socket).
    """
    _check_text(path, "load")
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise InvalidInput(f"cannot load: {path} does not exist") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot load: {path}: {exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"cannot load: {path} is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InvalidInput(f"cannot load: {path} is not readable ({exc})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInput(f"cannot load: {path} is not a regular file")
    return fd
