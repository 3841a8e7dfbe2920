"""Keys to retrieve stored images from (thesis sections 4.2-4.5): noisy, partial, random.

A `Key` is what a memory is shown: an image `(batch, d)` and, for a partial key, the
mask of the pixels known to be right (the rest are zero in the image). A noisy key has
no mask: every pixel is given, and every pixel may be wrong. Corruptions are drawn with
NumPy from a seed, so that building keys compiles nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .._validation import check_positive


class Key(NamedTuple):
    """An image to retrieve from, and the pixels of it known to be right (None: all are
    given, none is known to be right: a noisy key)."""

    image: np.ndarray  # (batch, d)
    known: np.ndarray | None  # (batch, d) bool, or None


def _images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[0] == 0 or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            "Images to build keys from must be a non-empty float array (batch, pixels), got "
            f"shape {images.shape} of {images.dtype}; flatten them and scale to [0, 1]."
        )
    return images


def noisy(images: np.ndarray, variance: float, *, seed: int = 0) -> Key:
    """`images` plus Gaussian noise of mean 0 and `variance` on every pixel (the thesis's
    corrupted keys, variance 0.2 unless said otherwise); nothing is clipped."""
    images = _images(images)
    check_positive("variance", variance, hint="It is the variance of the Gaussian noise.")
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(variance), images.shape)
    return Key((images + noise).astype(images.dtype), None)


def partial(
    images: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
    image_shape: Sequence[int] | None = None,
    layout: str = "random",
) -> Key:
    """Keys that give `fraction` of each image's pixels and zero elsewhere.

    Args:
        images: `(batch, d)`.
        fraction: the share of pixels given, in (0, 1] (1/2, 1/4, 1/8 in the thesis).
        seed: of the random choice of pixels (`layout="random"`).
        image_shape: `(height, width)` or `(channels, height, width)` of a flattened
            image (channel-first, as `pcn.data` loads colour images): the pixels are
            then chosen by position, all channels of a position together. None: each of
            the d entries is a pixel.
        layout: "random" (a random set of pixels per image; the thesis notes that the
            mask's geometry does not matter to a PC memory, which stores single pixels)
            or "top" (the first rows given, the rest hidden, as in Fig. 4.5's panels).
    """
    images = _images(images)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(
            f"`fraction` (the share of pixels a partial key gives) must be in (0, 1], got "
            f"{fraction!r}; e.g. 0.25 for a quarter of the image."
        )
    batch, d = images.shape
    positions, channels = d, 1
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) not in (2, 3) or int(np.prod(shape)) != d:
            raise ValueError(
                f"`image_shape` {shape} holds {int(np.prod(shape))} pixels, but the images have "
                f"{d}; give (height, width) or (channels, height, width), channel-first."
            )
        channels = shape[0] if len(shape) == 3 else 1
        positions = d // channels
    given = max(1, round(fraction * positions))
    if layout == "random":
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((batch, positions)), axis=1)
        known = np.zeros((batch, positions), bool)
        np.put_along_axis(known, order[:, :given], True, axis=1)
    elif layout == "top":
        known = np.zeros((batch, positions), bool)
        known[:, :given] = True
    else:
        raise ValueError(f"`layout` must be 'random' or 'top', got {layout!r}.")
    known = np.tile(known, (1, channels))  # channel-first: each channel's plane in turn
    return Key(np.where(known, images, 0.0).astype(images.dtype), known)


def random_keys(n: int, d: int, *, seed: int = 0, dtype: type = np.float32) -> Key:
    """`n` images of uniform noise in [0, 1): keys that belong to no stored memory (the
    strict-retrieval test: a memory that returns a stored image for them retrieves
    "strictly")."""
    if n < 1 or d < 1:
        raise ValueError(f"Random keys need n >= 1 and d >= 1, got n={n!r}, d={d!r}.")
    return Key(np.random.default_rng(seed).random((n, d)).astype(dtype), None)
