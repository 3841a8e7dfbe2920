"""Captioned images in the Flickr8k / Flickr30k layout: a folder of JPEGs and a file of
five captions per image.

The two caption files (both plain UTF-8 text):

- Flickr8k `Flickr8k.token.txt`: `1000268201_693b08cb0e.jpg#0<TAB>A child in a pink ...`,
  `#0`..`#4` numbering an image's captions;
- Flickr30k `results.csv`: a header `image_name| comment_number| comment`, then
  `1000092795.jpg| 0| Two young guys with shaggy hair ...` (a line whose second `|` is
  missing, as one of the Kaggle copy's is, is read too).

The thesis (section 4.7) keeps the first caption of each image and resizes the images to
32x32; `read_flickr` does both, in the order the images first appear in the captions file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from .._validation import check_at_least, check_choice
from .image_files import read_square, to_channel_first, unit_float

__all__ = ["CaptionedImages", "read_flickr", "read_flickr_captions"]

_FLICKR8K = re.compile(r"^(?P<image>[^\t#]+)#(?P<number>\d+)\t(?P<caption>.*)$")
_FLICKR30K = re.compile(r"^(?P<image>[^|]+)\|\s*(?P<number>\d+)\s*\|?\s?(?P<caption>.*)$")
_FLICKR30K_HEADER = re.compile(r"^\s*image_name\s*\|\s*comment_number\s*\|\s*comment\s*$")


class CaptionedImages(NamedTuple):
    """Images with one caption each."""

    images: np.ndarray  # float32 (N, 3 * side * side) in [0, 1], channel-first
    captions: tuple[str, ...]  # the first caption of each image
    filenames: tuple[str, ...]  # the image file of each row


def read_flickr_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a Flickr8k `*.token.txt` or Flickr30k `results.csv` caption file -> image file
    name -> its captions ordered by their number, images in the order of the file.

    The format is told by the first line (the Flickr30k header or not). Raises ValueError
    naming the file and line for a line of neither format.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"caption file {path} is not UTF-8 text: {err}") from err
    flickr30k = bool(lines) and _FLICKR30K_HEADER.match(lines[0]) is not None
    pattern, example = (
        (_FLICKR30K, "`image.jpg| 0| caption`")
        if flickr30k
        else (_FLICKR8K, "`image.jpg#0<TAB>caption`")
    )
    numbered: dict[str, list[tuple[int, str]]] = {}
    for number, line in enumerate(lines[1:] if flickr30k else lines, 2 if flickr30k else 1):
        if not line.strip():
            continue
        match = pattern.match(line)
        if match is None:
            raise ValueError(
                f"caption file {path} line {number}: expected {example}, got {line!r}; pass "
                "a Flickr8k Flickr8k.token.txt or a Flickr30k results.csv."
            )
        entry = (int(match["number"]), match["caption"].strip())
        numbered.setdefault(match["image"].strip(), []).append(entry)
    if not numbered:
        raise ValueError(f"caption file {path} holds no caption")
    return {image: [text for _, text in sorted(entries)] for image, entries in numbered.items()}


def read_flickr(
    images_dir: str | os.PathLike,
    captions_file: str | os.PathLike,
    *,
    side: int = 32,
    limit: int | None = None,
    missing: Literal["raise", "skip"] = "raise",
) -> CaptionedImages:
    """The first caption of each image of `captions_file` and that image from
    `images_dir`, center-cropped and resized to `side` (as `read_image_folder` does), in
    the order of the captions file; only the first `limit` images when it is given.

    An image named in the captions but absent from the folder raises FileNotFoundError,
    or is left out with `missing="skip"` (Flickr8k's token file names one image,
    `2258277193_586949ec62.jpg.1`, that its image folder lacks).
    """
    check_at_least("side", side, 1, hint="It is the side in pixels of the resized images.")
    check_choice("missing", missing, ("raise", "skip"))
    if limit is not None:
        check_at_least("limit", limit, 1, hint="It is how many images to read, or None for all.")
    folder = Path(images_dir).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(
            f"`images_dir` {folder} does not exist or is not a folder; pass the folder of "
            "the Flickr JPEGs (Flicker8k_Dataset/ or flickr30k_images/)."
        )
    rows, captions, filenames = [], [], []
    for image, texts in read_flickr_captions(captions_file).items():
        if limit is not None and len(rows) == limit:
            break
        path = folder / image
        if not path.is_file():
            if missing == "skip":
                continue
            raise FileNotFoundError(
                f"{path} is named in {captions_file} but is not in `images_dir`; pass the "
                'folder that holds the images, or missing="skip" to leave such images out.'
            )
        rows.append(read_square(path, side))
        captions.append(texts[0])
        filenames.append(image)
    if not rows:
        raise ValueError(f"none of the images named in {captions_file} is in {folder}")
    return CaptionedImages(unit_float(to_channel_first(rows)), tuple(captions), tuple(filenames))
