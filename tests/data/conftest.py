"""Shared fixtures for the data tests: isolation from the machine, small IDX files, a
tiny Tiny ImageNet layout, hiding an installed package."""

from __future__ import annotations

import gzip
import struct
import sys
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


def write_tiny_imagenet(
    directory: Path, wnids: list[str], labels: list[int], *, jpeg: bool = False, seed: int = 0
) -> np.ndarray:
    """Write `directory/tiny-imagenet-200/` with one 64x64 image per entry of `labels` (an
    index into `wnids`), val_0 first; image 1 is grayscale. Return the pixels (N, 64, 64, 3).

    With `jpeg=False` the `.JPEG` files hold PNG bytes, so that pixels round-trip exactly
    (Pillow, like the reader, tells the format from the content, not the name).
    """
    image_module = pytest.importorskip("PIL.Image")
    root = directory / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    words = ["n00000001\tentity"] + [
        f"{w}\tthing {i}, synonym of thing {i}" for i, w in enumerate(wnids)
    ]
    (root / "words.txt").write_text("\n".join(reversed(words)) + "\n")  # not in wnids order
    lines = [f"val_{i}.JPEG\t{wnids[label]}\t0\t1\t62\t63" for i, label in enumerate(labels)]
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 64, 64, 3), np.uint8)
    for i, hwc in enumerate(pixels):
        if i == 1:
            pixels[i] = hwc[..., :1]  # grayscale: the same value in the three channels
            image = image_module.fromarray(np.ascontiguousarray(hwc[..., 0]), "L")
        else:
            image = image_module.fromarray(hwc, "RGB")
        image.save(root / "val" / "images" / f"val_{i}.JPEG", format="JPEG" if jpeg else "PNG")
    return pixels


@pytest.fixture
def tiny_imagenet_like() -> Callable[..., np.ndarray]:
    """The writer of a tiny Tiny ImageNet layout: tiny_imagenet_like(dir, wnids, labels)."""
    return write_tiny_imagenet


@pytest.fixture
def idx_writer() -> Callable[..., Path]:
    """The IDX writer: idx_writer(path, array, compress=bool)."""
    return write_idx


@pytest.fixture
def mnist_like() -> Callable[..., Path]:
    """Factory writing a tiny MNIST-format dataset: mnist_like(dir, n_train, n_test)."""
    return write_mnist_like


class _Hidden:
    """A finder, first on `sys.meta_path`, for which package `name` is not installed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.split(".")[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=self.name)
        return None


@pytest.fixture
def hide_package(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """hide_package(name): until the test ends, importing package `name` fails as if it
    were not installed (its loaded modules are put back afterwards)."""

    def hide(name: str) -> None:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(sys, "meta_path", [_Hidden(name), *sys.meta_path])

    return hide


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
