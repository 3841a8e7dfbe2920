"""Reader for the validation split of Tiny ImageNet-200, in its original layout.

The layout is that of the unpacked `tiny-imagenet-200.zip` (Le and Yang, CS231n 2015):

    tiny-imagenet-200/wnids.txt                  200 WordNet ids, one a line
    tiny-imagenet-200/words.txt                  `wnid<TAB>synonyms` for all WordNet nouns
    tiny-imagenet-200/val/val_annotations.txt    `val_K.JPEG<TAB>wnid<TAB>box` a line
    tiny-imagenet-200/val/images/val_K.JPEG      10,000 JPEGs of 64x64 (168 grayscale)

It is read from the folder, or from the zip in place (not extracted). The label of an
image is the line index of its wnid in wnids.txt (not the sorted order torchvision's
ImageFolder would give); images come in the order of val_annotations.txt.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .image_files import decode_rgb

__all__ = [
    "IMAGE_SIDE",
    "ROOT",
    "ZIP",
    "TinyImageNetVal",
    "find_tiny_imagenet_val",
    "read_tiny_imagenet_classes",
    "read_tiny_imagenet_val",
]

ROOT = "tiny-imagenet-200"
ZIP = "tiny-imagenet-200.zip"
IMAGE_SIDE = 64
_TEXT_FILES = ("wnids.txt", "words.txt", "val/val_annotations.txt")


class TinyImageNetVal(NamedTuple):
    """The validation split: images, labels and what each class is."""

    images: np.ndarray  # uint8 (N, 3 * 64 * 64), channel-first like the CIFAR reader's
    labels: np.ndarray  # int64 (N,): index of the image's wnid in `wnids`
    wnids: tuple[str, ...]  # the classes, in wnids.txt order
    words: tuple[str, ...]  # words.txt description of each class, e.g. "goldfish, ..."
    filenames: tuple[str, ...]  # the image file of each row, e.g. "val_0.JPEG"


def find_tiny_imagenet_val(directory: Path) -> Path | None:
    """What to read in `directory`: a `tiny-imagenet-200/` folder (or `directory` itself
    being one) holding the text files and `val/images/`, else `tiny-imagenet-200.zip`,
    else None."""
    for folder in (directory / ROOT, directory):
        if (folder / "val" / "images").is_dir() and all(
            (folder / name).is_file() for name in _TEXT_FILES
        ):
            return folder
    archive = directory / ZIP
    return archive if archive.is_file() else None


Reader = Callable[[str], tuple[bytes, str]]  # path inside the root -> (bytes, origin)


@contextmanager
def _open_source(source: Path) -> Iterator[Reader]:
    """A reader of files by their path inside `tiny-imagenet-200/`, from a folder or the
    zip; a missing file is a ValueError naming it."""
    if source.is_dir():

        def read_file(name: str) -> tuple[bytes, str]:
            path = source / name
            try:
                return path.read_bytes(), str(path)
            except (FileNotFoundError, IsADirectoryError) as err:
                raise ValueError(
                    f"{path} is missing: the Tiny ImageNet folder {source} is incomplete; "
                    f"unpack {ZIP} again."
                ) from err

        yield read_file
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"{source} is not a readable zip ({err}); delete it and download {ZIP} again."
        ) from err
    with archive:

        def read_member(name: str) -> tuple[bytes, str]:
            member = f"{ROOT}/{name}"
            try:
                return archive.read(member), f"{source}:{member}"
            except KeyError as err:
                raise ValueError(
                    f"{source} has no member {member}; it is not the Tiny ImageNet-200 zip."
                ) from err

        yield read_member


def _lines(read: Reader, name: str) -> tuple[list[str], str]:
    data, origin = read(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{origin} is not UTF-8 text: {err}") from err
    return [line for line in text.splitlines() if line.strip()], origin


def _read_wnids(read: Reader) -> tuple[str, ...]:
    lines, origin = _lines(read, "wnids.txt")
    wnids = tuple(line.strip() for line in lines)
    if not wnids or len(set(wnids)) != len(wnids):
        raise ValueError(f"{origin} must list distinct wnids, one a line; got {len(wnids)} lines")
    return wnids


def _read_words(read: Reader, wnids: tuple[str, ...]) -> tuple[str, ...]:
    lines, origin = _lines(read, "words.txt")
    wanted, found = set(wnids), {}
    for line in lines:
        wnid, _, description = line.partition("\t")
        if wnid in wanted:
            found[wnid] = description.strip()
    missing = [wnid for wnid in wnids if wnid not in found]
    if missing:
        raise ValueError(
            f"{origin} has no `wnid<TAB>description` line for {len(missing)} classes of "
            f"wnids.txt (first: {missing[0]}); use the words.txt of the same release."
        )
    return tuple(found[wnid] for wnid in wnids)


def _read_annotations(read: Reader, wnids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    lines, origin = _lines(read, "val/val_annotations.txt")
    index = {wnid: i for i, wnid in enumerate(wnids)}
    filenames, labels = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 2 or parts[1] not in index:
            raise ValueError(
                f"{origin} line {number}: expected `<file><TAB><wnid>...` with a wnid of "
                f"wnids.txt, got {line!r}"
            )
        filenames.append(parts[0])
        labels.append(index[parts[1]])
    if not filenames or len(set(filenames)) != len(filenames):
        raise ValueError(f"{origin} must name each image once, got {len(filenames)} lines")
    return filenames, np.array(labels, dtype=np.int64)


def read_tiny_imagenet_classes(
    source: str | os.PathLike,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The classes of a `tiny-imagenet-200/` folder or zip, without the images: (wnids in
    wnids.txt order, the words.txt description of each)."""
    with _open_source(Path(source)) as read:
        wnids = _read_wnids(read)
        return wnids, _read_words(read, wnids)


def read_tiny_imagenet_val(source: str | os.PathLike) -> TinyImageNetVal:
    """Read the validation split from a `tiny-imagenet-200/` folder or the zip.

    Grayscale images are converted to RGB; every image must be 64x64. Raises ValueError
    naming the file for a missing or malformed file, or an image of another size.
    """
    source = Path(source)
    with _open_source(source) as read:
        wnids = _read_wnids(read)
        words = _read_words(read, wnids)
        filenames, labels = _read_annotations(read, wnids)
        images = np.empty((len(filenames), 3 * IMAGE_SIDE * IMAGE_SIDE), dtype=np.uint8)
        for row, filename in enumerate(filenames):
            data, origin = read(f"val/images/{filename}")
            image = decode_rgb(data, origin)
            if image.shape != (IMAGE_SIDE, IMAGE_SIDE, 3):
                raise ValueError(
                    f"{origin}: expected a {IMAGE_SIDE}x{IMAGE_SIDE} image, got "
                    f"{image.shape[1]}x{image.shape[0]}; this is not the Tiny ImageNet file."
                )
            images[row] = image.transpose(2, 0, 1).reshape(-1)  # (H, W, C) -> channel-first
    return TinyImageNetVal(images, labels, wnids, words, tuple(filenames))
