"""An output folder belongs to one run at a time, and its checkpoints to one run.

- `locked(folder)`: while a run writes to `folder` it holds `folder/.pcn-run.lock`
  (created exclusively, holding its PID, host and start time; removed at exit). A second
  run into the same folder fails at once, naming the holder; the lock of a process that
  no longer exists is stale and taken over.
- `claim(folder, identity, resume=..., overwrite=...)`: `folder/run.json` records the
  identity (experiment, quick, seed, settings, data folder, pcn version) of the run whose
  checkpoints the folder holds. `--resume` continues only that run (any difference is an
  error naming each field and both values; each checkpoint also carries the identity,
  with the full config, and `trainer.fit` checks it again); a new run refuses a folder
  holding another run's checkpoints unless told to `overwrite` them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pcn.files import atomic_write, process_exists

LOCK_FILE = ".pcn-run.lock"
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"


class RunFolderError(ValueError):
    """The output folder cannot be used as asked (busy, or another run's checkpoints)."""


def identity_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`field: saved value there, current value now` for every field that differs."""
    fields = sorted(set(saved) | set(current))
    return [
        f"{field}: {saved.get(field, '(not recorded)')!r} there, "
        f"{current.get(field, '(not recorded)')!r} now"
        for field in fields
        if saved.get(field) != current.get(field)
    ]


def mismatch_message(where: Path, differences: list[str]) -> str:
    return (
        f"--resume: the checkpoints in {where} belong to another run ("
        + "; ".join(differences)
        + "). Resume with that run's settings, or start afresh: run without --resume "
        "and with --overwrite (or pass another --out)."
    )


def _has_checkpoints(folder: Path) -> bool:
    return any((folder / CHECKPOINTS).rglob("*.ckpt")) if (folder / CHECKPOINTS).is_dir() else False


def claim(folder: Path, identity: Mapping[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Make `folder` the record of the run `identity` (see the module docstring).

    Raises:
        RunFolderError: `resume` with checkpoints of a run of another identity; or,
            without `resume` or `overwrite`, a folder that holds checkpoints already.
    """
    run_file = folder / RUN_FILE
    saved = json.loads(run_file.read_text()) if run_file.is_file() else None
    if resume and overwrite:
        raise RunFolderError("Pass one of --resume and --overwrite, not both.")
    if resume:
        if saved is not None:
            differences = identity_differences(saved, identity)
            if differences:
                raise RunFolderError(mismatch_message(folder, differences))
    elif _has_checkpoints(folder):
        if not overwrite:
            raise RunFolderError(
                f"{folder} holds the checkpoints of an earlier run; continue it with "
                "--resume, replace it with --overwrite, or pass another --out."
            )
        shutil.rmtree(folder / CHECKPOINTS)
    atomic_write(run_file, (json.dumps(dict(identity), indent=2, sort_keys=True) + "\n").encode())


def _holder(lock: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None  # gone, or half-written by a process that died while creating it
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold `folder`'s run lock for the duration of the block.

    Raises:
        RunFolderError: another live process (or one on another host) holds the lock.
    """
    lock = folder / LOCK_FILE
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except PermissionError as error:
            raise RunFolderError(
                f"--out {folder} is not writable ({error.strerror}); pass a folder you can "
                "write to."
            ) from error
        except FileExistsError:
            holder = _holder(lock)
            if holder is not None:
                elsewhere = holder.get("host") != me["host"]
                if elsewhere or process_exists(holder["pid"]):
                    where = f" on {holder.get('host')}" if elsewhere else ""
                    raise RunFolderError(
                        f"Another pcn run (PID {holder['pid']}{where}, started "
                        f"{holder.get('started', '?')}) is writing to {folder}; wait for it "
                        f"to finish or pass another --out (if that run is gone, delete "
                        f"{lock})."
                    ) from None
            lock.unlink(missing_ok=True)  # stale: its process has ended
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise RunFolderError(f"Could not take the run lock {lock}; another run keeps taking it.")
    try:
        yield
    finally:
        holder = _holder(lock)
        if holder is not None and holder.get("pid") == me["pid"]:
            lock.unlink(missing_ok=True)
