"""Atomic file writes: the one way pcn (and its experiment suite) puts a file on disk.

The bytes go to a temporary file in the target's folder, which is flushed, fsynced, given
the mode a plain `open(path, "w")` would give (0o666 minus the umask: 0o644 under umask
022, where `tempfile.mkstemp`'s own 0o600 would hide the file from other users), and then
renamed over the target with `os.replace`. A crash or an exception at any point leaves
either the old file or the new one, never a half-written one. An exception removes the
temporary file; after a hard kill (`kill -9`, power loss) it stays, named with the
writer's PID, and the next write into that folder removes it once that process is gone.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "default_file_mode", "process_exists"]


def default_file_mode() -> int:
    """0o666 minus the process umask: the mode `open(path, "w")` creates files with."""
    try:  # Linux reports the umask without changing it (os.umask would, for a moment)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Atomically replace `path` by `data`: bytes, or a callback `write(f)` that writes to
    the binary file `f` (to stream large payloads, or for writers such as matplotlib's
    `savefig`). Parent folders are created; returns `path` as a `Path`.

    If `write` (or anything else) raises, the temporary file is removed, an existing file
    at `path` is left untouched and the exception propagates.
    """
    path = Path(path)
    if not (isinstance(data, bytes | bytearray | memoryview) or callable(data)):
        raise TypeError(
            f"`data` must be bytes or a callable write(f), got {type(data).__name__}; "
            "encode text first (text.encode())."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path.parent)
    fd, tmp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fchmod(f.fileno(), default_file_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


_TEMPORARY = re.compile(r"\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.tmp")


def _remove_leftovers(directory: Path) -> None:
    """Delete the temporary files in `directory` of writers that no longer run."""
    for child in directory.glob(".*.tmp"):
        match = _TEMPORARY.fullmatch(child.name)
        if match and not process_exists(int(match.group("pid"))):
            child.unlink(missing_ok=True)


def process_exists(pid: int) -> bool:
    """Whether a process with this PID runs on this machine (the owner of a lock or of a
    temporary file; a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; or not a PID
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable too (best effort: not every platform can open folders)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
