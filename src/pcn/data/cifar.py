"""Readers for CIFAR-10: the "python version" pickle batches and a PNG-folder conversion.

Both return images as uint8 arrays of shape (N, 3072) in the original channel-major
layout (1,024 red values, then green, then blue, each row-major), i.e. a flattened
(N, 3, 32, 32), plus int64 labels. Scaling to [0, 1] is left to the caller so the
two sources give bit-identical arrays.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tarfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._optional import optional_import

__all__ = [
    "BATCHES_DIR",
    "TARBALL",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "find_cifar10_png",
    "find_cifar10_python",
    "read_cifar10_png",
    "read_cifar10_python",
    "read_cifar_batch",
]

BATCHES_DIR = "cifar-10-batches-py"
TARBALL = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_FEATURES = 3 * 32 * 32

# Globals a CIFAR pickle legitimately needs (numpy array reconstruction). Anything else
# is refused, so a tampered file cannot run code when it is loaded.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals needed for CIFAR batches."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a CIFAR batch")


def _get(batch: dict, key: str) -> Any:
    """Look a key up as bytes (Python 2 pickles) or str (Python 3 pickles)."""
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise KeyError(key)


def _parse_batch(handle: IO[bytes], origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle one batch dict and return (uint8 images (N, 3072), int64 labels (N,))."""
    try:
        batch = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ValueError(f"{origin} is not a readable CIFAR python batch: {err}") from err
    if not isinstance(batch, dict):
        raise ValueError(f"{origin} is not a CIFAR python batch: got {type(batch).__name__}")
    try:
        images = np.asarray(_get(batch, "data"))
        labels = np.asarray(_get(batch, "labels"), dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"{origin} is not a CIFAR python batch: no key {err}") from err
    if images.ndim != 2 or images.shape[1] != _FEATURES or images.dtype != np.uint8:
        raise ValueError(
            f"{origin}: expected uint8 data of shape (N, {_FEATURES}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{origin}: {images.shape[0]} images but labels of shape {labels.shape}")
    return images, labels


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch file -> (uint8 images (N, 3072), int64 labels (N,))."""
    path = Path(path)
    with open(path, "rb") as handle:
        return _parse_batch(handle, str(path))


def find_cifar10_python(directory: Path) -> Path | None:
    """Return what to read for CIFAR-10 in `directory`, or None when it is not all there.

    Accepts, in this order: a `cifar-10-batches-py/` folder with all six batches, the six
    batches directly in `directory`, or the tarball `cifar-10-python.tar.gz`.
    """
    names = (*TRAIN_BATCHES, TEST_BATCH)
    for folder in (directory / BATCHES_DIR, directory):
        if all((folder / name).is_file() for name in names):
            return folder
    tarball = directory / TARBALL
    return tarball if tarball.is_file() else None


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_cifar10_python(
    source: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10 from a batches folder or the tarball (read in place, not extracted).

    Returns (x_train, y_train, x_test, y_test): uint8 (N, 3072) images and int64 labels,
    training batches 1..5 concatenated in order.
    """
    source = Path(source)
    if source.is_dir():
        train = [read_cifar_batch(source / name) for name in TRAIN_BATCHES]
        x_test, y_test = read_cifar_batch(source / TEST_BATCH)
        return (*_concat(train), x_test, y_test)
    parsed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(source, "r:*") as archive:
        for name in (*TRAIN_BATCHES, TEST_BATCH):
            member = f"{BATCHES_DIR}/{name}"
            try:
                handle = archive.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise ValueError(f"{source} has no file {member}")
            with handle:
                parsed[name] = _parse_batch(io.BytesIO(handle.read()), f"{source}:{member}")
    x_test, y_test = parsed[TEST_BATCH]
    return (*_concat([parsed[name] for name in TRAIN_BATCHES]), x_test, y_test)


# --- PNG folder layout: <root>/labels.txt, <root>/{train,test}/<index>_<class>.png ---

_PNG_NAME = re.compile(r"^(\d+)_(.+)\.png$")


def find_cifar10_png(directory: Path) -> Path | None:
    """Return the folder holding labels.txt, train/ and test/ (`directory` or its `cifar/`)."""
    for folder in (directory, directory / "cifar"):
        if (
            (folder / "labels.txt").is_file()
            and (folder / "train").is_dir()
            and (folder / "test").is_dir()
        ):
            return folder
    return None


def _read_png_rgb(path: Path) -> np.ndarray:
    """Decode a PNG to uint8 (H, W, 3) via matplotlib (of the `experiments` extra)."""
    mpimg = optional_import(
        "matplotlib.image", "Reading CIFAR-10 from PNG files", package="matplotlib"
    )

    image = np.asarray(mpimg.imread(path))
    if image.dtype.kind == "f":  # matplotlib gives float32 in [0, 1] for PNG
        image = np.rint(image * 255.0).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"{path}: expected an RGB image, got shape {image.shape}")
    return image[..., :3]


def _read_png_split(folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read every <index>_<class>.png in `folder`, sorted by index (the original order)."""
    entries: list[tuple[int, Path, int]] = []
    for path in folder.iterdir():
        match = _PNG_NAME.match(path.name)
        if match is None:
            continue
        index, class_name = int(match.group(1)), match.group(2)
        if class_name not in classes:
            raise ValueError(f"{path}: class {class_name!r} is not in labels.txt {classes}")
        entries.append((index, path, classes.index(class_name)))
    if not entries:
        raise ValueError(f"{folder} holds no <index>_<class>.png files")
    entries.sort()
    indices = [index for index, _, _ in entries]
    if len(set(indices)) != len(indices):
        raise ValueError(f"{folder} holds two images with the same index")
    images = np.empty((len(entries), _FEATURES), dtype=np.uint8)
    for row, (_, path, _) in enumerate(entries):
        image = _read_png_rgb(path)
        if image.shape != (32, 32, 3):
            raise ValueError(f"{path}: expected a 32x32 RGB image, got {image.shape}")
        images[row] = image.transpose(2, 0, 1).reshape(-1)  # (H, W, C) -> channel-major
    labels = np.array([label for _, _, label in entries], dtype=np.int64)
    return images, labels


def read_cifar10_png(
    folder: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read the PNG layout -> (x_train, y_train, x_test, y_test, class_names).

    Images come back in the same uint8 channel-major (N, 3072) layout as the pickles.
    The label of `<i>_<name>.png` is the line number of `name` in labels.txt.
    """
    folder = Path(folder)
    classes = [line.strip() for line in (folder / "labels.txt").read_text().splitlines()]
    classes = [c for c in classes if c]
    x_train, y_train = _read_png_split(folder / "train", classes)
    x_test, y_test = _read_png_split(folder / "test", classes)
    return x_train, y_train, x_test, y_test, classes
