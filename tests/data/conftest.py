"""Shared fixtures for the data tests: isolation from the machine, small IDX files."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import pcn.data.download as download_module
import pcn.data.registry as registry

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
_IDX_CODES.update({np.float32: 0x0D, np.float64: 0x0E})


def write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    """Write `array` as an IDX file (big-endian), gzip-compressed when `compress`."""
    code = _IDX_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_mnist_like(directory: Path, n_train: int, n_test: int, *, seed: int = 0) -> Path:
    """Write the four standard MNIST .gz files with random content into `directory`."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels, compress=True)
    return directory


@pytest.fixture
def idx_writer() -> Callable[..., Path]:
    """The IDX writer: idx_writer(path, array, compress=bool)."""
    return write_idx


@pytest.fixture
def mnist_like() -> Callable[..., Path]:
    """Factory writing a tiny MNIST-format dataset: mnist_like(dir, n_train, n_test)."""
    return write_mnist_like


@pytest.fixture(autouse=True)
def isolated_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hide PCN_DATA, system dirs and the real cache; make any network access fail loudly."""
    monkeypatch.delenv("PCN_DATA", raising=False)
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(registry, "SYSTEM_DIRS", {})

    def no_network(url: str, timeout: float | None = None) -> None:
        raise AssertionError(f"test tried to reach the network: {url}")

    monkeypatch.setattr(download_module, "urlopen", no_network)
    return cache
