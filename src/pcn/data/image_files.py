"""Image files (JPEG, PNG) as arrays: decoding to RGB, squaring, resizing, whole folders.

Decoding uses Pillow (a dependency of matplotlib, so of the `experiments` extra), imported
when a file is read so that `import pcn` stays light. Every image becomes uint8 RGB
(grayscale, palette and alpha images are converted), and a batch of them comes back like
the CIFAR loader's: flattened channel-first rows `(N, 3 * side * side)`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .._optional import optional_import
from .._validation import check_at_least

__all__ = [
    "IMAGE_SUFFIXES",
    "decode_rgb",
    "list_image_files",
    "read_image_folder",
    "read_rgb",
    "read_square",
    "square_resize",
    "to_channel_first",
    "unit_float",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""Suffixes (any case) that `list_image_files` takes for images."""

# uint8 value -> float32 value / 255, the same float32 division as `np.divide(u8, 255,
# dtype=np.float32)` but several times faster on large batches (a table look-up).
_UNIT_TABLE = np.arange(256, dtype=np.float32) / np.float32(255)


def _pillow(purpose: str) -> ModuleType:
    return optional_import("PIL.Image", purpose, package="Pillow")


def unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, ...) -> float32 (N, features) in [0, 1], value / 255."""
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images to scale to [0, 1], got {images.dtype}")
    return _UNIT_TABLE[images.reshape(images.shape[0], -1)]


def _open(data: bytes, origin: str, *, draft: int | None = None) -> Any:
    """Decode `data` with Pillow into an RGB `PIL.Image`, or ValueError naming `origin`."""
    pil = _pillow(f"Reading the image {origin}")
    try:
        image = pil.open(io.BytesIO(data))
        if draft is not None and image.format == "JPEG":
            # decode a large JPEG at a reduced scale, still at least `draft` on each side
            image.draft("RGB", (draft, draft))
        image.load()
    except (OSError, ValueError, pil.DecompressionBombError) as err:
        raise ValueError(
            f"{origin} is not a readable image ({err}); replace or remove the file."
        ) from err
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_rgb(data: bytes, origin: str) -> np.ndarray:
    """Decode the bytes of a JPEG or PNG file to uint8 RGB `(height, width, 3)`.

    `origin` names the file in the ValueError raised when the bytes are not an image.
    """
    return np.asarray(_open(data, origin))


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read a JPEG or PNG file as uint8 RGB `(height, width, 3)`."""
    path = Path(path)
    return decode_rgb(path.read_bytes(), str(path))


def _square_resize(image: Any, side: int) -> np.ndarray:
    """Center-crop a `PIL.Image` to a square, resize it to `side` (bicubic)."""
    width, height = image.size
    short = min(width, height)
    if width != height:
        left, top = (width - short) // 2, (height - short) // 2
        image = image.crop((left, top, left + short, top + short))
    if short != side:
        image = image.resize((side, side), _pillow("Resizing images").Resampling.BICUBIC)
    return np.asarray(image)


def square_resize(image: np.ndarray, side: int) -> np.ndarray:
    """Center-crop uint8 RGB `(height, width, 3)` to its largest square, then resize it
    to `(side, side, 3)` (bicubic, antialiased when shrinking); a square of `side` is
    returned unchanged."""
    check_at_least("side", side, 1, hint="It is the side in pixels of the resized images.")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"`square_resize` expects a uint8 RGB image (height, width, 3), got "
            f"{image.dtype} {image.shape}; decode it with `read_rgb` first."
        )
    pil = _pillow("Resizing images")
    return _square_resize(pil.fromarray(image, "RGB"), side)


def to_channel_first(images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """uint8 RGB images `(height, width, 3)`, all the same size -> uint8 rows
    `(N, 3 * height * width)`: all red values, then green, then blue, each row-major."""
    stack = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2)).reshape(stack.shape[0], -1)


def list_image_files(path: str | os.PathLike) -> list[Path]:
    """The image files (suffixes `IMAGE_SUFFIXES`, any case) directly in folder `path`,
    sorted by name; other files are ignored.

    Raises NotADirectoryError when `path` is not a folder and ValueError when it holds no
    image file.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(
            f"image folder {folder} does not exist or is not a folder; pass the folder that "
            "holds the .jpg/.jpeg/.png files."
        )
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise ValueError(
            f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} file; point it at the "
            "folder of images (they are not searched for in subfolders)."
        )
    return files


def read_square(path: Path, side: int) -> np.ndarray:
    """Read one image file center-cropped and resized to uint8 `(side, side, 3)`."""
    return _square_resize(_open(path.read_bytes(), str(path), draft=side), side)


def read_image_folder(path: str | os.PathLike, side: int) -> np.ndarray:
    """Every image in folder `path` (see `list_image_files`, sorted by name),
    center-cropped to a square and resized to `side`, as float32 `(N, 3 * side * side)`
    in [0, 1], channel-first like the CIFAR loader (reshape to `(N, 3, side, side)`).

    Large JPEGs are decoded at a reduced scale of at least `side` pixels (Pillow's draft
    mode) before resizing, which is several times faster. Raises NotADirectoryError for a
    missing folder, ValueError for an empty folder or a file that is not an image.
    """
    check_at_least("side", side, 1, hint="It is the side in pixels of the resized images.")
    files = list_image_files(path)
    rows = np.empty((len(files), 3 * side * side), dtype=np.uint8)
    for row, file in enumerate(files):
        rows[row] = to_channel_first(read_square(file, side)[None])[0]
    return unit_float(rows)
