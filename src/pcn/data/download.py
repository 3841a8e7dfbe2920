"""Checksummed file download into a directory, atomically.

Bytes are streamed by `pcn.files.atomic_write` into a temporary file next to the target,
which is renamed into place only after their md5 matches the published value, so an
interrupted or corrupted download never leaves a file that a later lookup would mistake
for good data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO
from urllib.request import urlopen

from ..files import atomic_write

__all__ = ["DEFAULT_TIMEOUT_S", "ChecksumError", "download_file", "md5_of"]

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded file's md5 differs from the published one (the file was not kept)."""


def md5_of(path: str | os.PathLike) -> str:
    """Return the hex md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str,
    target: str | os.PathLike,
    md5: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download `url` to `target` if its md5 equals `md5`; return the target path.

    Network errors (urllib.error.URLError, OSError, http.client.HTTPException) propagate
    unchanged for the caller to handle. A checksum mismatch raises ChecksumError naming
    the file and both md5s. In every failure case the temporary file is removed.
    """
    target = Path(target)

    def write(out: BinaryIO) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != md5.lower():  # raising here discards the temporary file
            raise ChecksumError(
                f"checksum mismatch for {target.name} downloaded from {url}: "
                f"expected md5 {md5.lower()}, got {actual}; the download was discarded"
            )

    return atomic_write(target, write)
