"""Hetero-associative memories (thesis section 4.7): two sensory groups stored as one
vector, `[image | caption]`, so that either part recalls the other.

A memory of such vectors (e.g. `generative.generative_memory(d + L, ...)`) stores the
joined pairs; a key gives one part as known pixels and leaves the other to be relaxed
(Algorithm 7): `caption_keys` (the image known, its caption recalled) and `image_keys`
(the caption known, its image recalled). `split` cuts a recall back into its parts.
"""

from __future__ import annotations

import numpy as np

from .keys import Key


def join(images: np.ndarray, captions: np.ndarray) -> np.ndarray:
    """`[image | caption]` rows `(N, d + L)` of images `(N, d)` and caption vectors
    `(N, L)` (`captions.encode_captions`), in the images' float dtype."""
    images, captions = np.asarray(images), np.asarray(captions)
    if images.ndim != 2 or captions.ndim != 2 or len(images) != len(captions):
        raise ValueError(
            f"Images {images.shape} and caption vectors {captions.shape} must be (N, d) and "
            "(N, L) with one caption per image."
        )
    return np.concatenate([images, captions.astype(images.dtype)], axis=1)


def split(vectors: np.ndarray, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """The image part `(N, pixels)` and the caption part `(N, L)` of joined vectors."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not 0 < pixels < vectors.shape[1]:
        raise ValueError(
            f"Cannot split vectors of shape {vectors.shape} after {pixels} pixels; `pixels` "
            "is the image size d, and the vectors are (N, d + L)."
        )
    return vectors[:, :pixels], vectors[:, pixels:]


def _key(vectors: np.ndarray, pixels: int, image_known: bool) -> Key:
    split(vectors, pixels)  # shape check
    known = np.zeros(vectors.shape, bool)
    if image_known:
        known[:, :pixels] = True
    else:
        known[:, pixels:] = True
    return Key(np.where(known, vectors, 0.0).astype(vectors.dtype), known)


def caption_keys(vectors: np.ndarray, pixels: int) -> Key:
    """Keys that give each pair's image and hide its caption (caption from image)."""
    return _key(np.asarray(vectors), pixels, image_known=True)


def image_keys(vectors: np.ndarray, pixels: int) -> Key:
    """Keys that give each pair's caption and hide its image (image from caption)."""
    return _key(np.asarray(vectors), pixels, image_known=False)
