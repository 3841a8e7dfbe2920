"""Captions as vectors for hetero-associative memories (thesis section 4.7).

A caption becomes a vector the way the thesis builds it: a vocabulary of the captions'
words (lowercased, punctuation stripped; id 0 is padding, so words are 1..V), each word
replaced by its id scaled to [0, 1],

    v_j = id(w_j) / V,   j = 1..n,   v_j = 0 for n < j <= L,

and the vector zero-padded to a fixed length L (the longest caption, unless given), so
that it sits in the same range as the pixels it is stored with. A recalled vector is
read back by rounding `v * V` to the nearest id; a caption counts as recovered only when
every one of its L entries decodes to the right id (words are discrete: a word is either
exact or another word of the vocabulary).

The thesis uses Flickr30k (`pcn.data.read_flickr`); `tiny_imagenet_pairs` is a stand-in
for machines without it: Tiny ImageNet images with their class's words.txt description.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._validation import check_at_least
from ..data import load

__all__ = [
    "CaptionPairs",
    "Vocabulary",
    "build_vocabulary",
    "caption_ids",
    "caption_recovered",
    "decode_captions",
    "encode_captions",
    "pair_captions",
    "tiny_imagenet_pairs",
    "tokenize",
]

_PUNCTUATION = re.compile(r"[^\w\s]")


def tokenize(caption: str) -> list[str]:
    """The words of `caption`: lowercased, punctuation removed, split on whitespace.

    >>> tokenize("A child in a pink dress, climbing up stairs.")
    ['a', 'child', 'in', 'a', 'pink', 'dress', 'climbing', 'up', 'stairs']
    """
    return _PUNCTUATION.sub("", caption.lower()).split()


@dataclass(frozen=True)
class Vocabulary:
    """The words of a set of captions; `words[i]` has id `i + 1` (0 is padding)."""

    words: tuple[str, ...]

    @property
    def size(self) -> int:
        """V, the number of words (the largest id)."""
        return len(self.words)


def build_vocabulary(captions: Sequence[str]) -> Vocabulary:
    """The sorted distinct words of `captions` (see `tokenize`).

    >>> build_vocabulary(["Two dogs.", "A dog"]).words
    ('a', 'dog', 'dogs', 'two')
    """
    if isinstance(captions, str) or not captions:
        raise ValueError(
            f"`captions` must be a non-empty sequence of strings, got {captions!r}; pass a "
            "list of captions, one per image."
        )
    return Vocabulary(tuple(sorted({word for c in captions for word in tokenize(c)})))


def _token_ids(caption: str, ids: dict[str, int]) -> list[int]:
    words = tokenize(caption)
    if not words:
        raise ValueError(
            f"caption {caption!r} has no word once lowercased and stripped of punctuation; "
            "give every image a caption with at least one word."
        )
    unknown = [w for w in words if w not in ids]
    if unknown:
        raise ValueError(
            f"caption {caption!r} has words not in the vocabulary: {unknown}; build the "
            "vocabulary from these captions too (`build_vocabulary`)."
        )
    return [ids[w] for w in words]


def encode_captions(
    captions: Sequence[str], vocabulary: Vocabulary, *, length: int | None = None
) -> np.ndarray:
    """Captions as float32 vectors `(N, L)`: `id / V` for each word, then zeros.

    `length` is L; None takes the longest caption's word count. Raises ValueError for a
    caption longer than `length`, or a word not in `vocabulary`.

    >>> vocab = build_vocabulary(["a dog", "two dogs run"])
    >>> encode_captions(["a dog"], vocab, length=3)
    array([[0.2, 0.4, 0. ]], dtype=float32)
    """
    if length is not None:
        check_at_least("length", length, 1, hint="It is L, the length captions are padded to.")
    ids = {word: i for i, word in enumerate(vocabulary.words, 1)}
    tokens = [_token_ids(c, ids) for c in captions]
    if not tokens:
        raise ValueError("`captions` is empty; pass one caption per image.")
    width = length if length is not None else max(len(t) for t in tokens)
    longest = max(len(t) for t in tokens)
    if longest > width:
        row = next(i for i, t in enumerate(tokens) if len(t) > width)
        caption, token = captions[row], tokens[row]
        raise ValueError(
            f"caption {caption!r} has {len(token)} words, more than `length`={width}; pass "
            f"length >= {longest} (the longest caption), or length=None to use the longest."
        )
    out = np.zeros((len(tokens), width), dtype=np.float32)
    for row, token in enumerate(tokens):
        out[row, : len(token)] = np.asarray(token, dtype=np.float32) / vocabulary.size
    return out


def caption_ids(vectors: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """The nearest ids `round(v * V)` of caption vectors `(N, L)`, clipped to [0, V]:
    int64 `(N, L)`, 0 for padding."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(
            f"caption vectors must be (captions, length), got shape {vectors.shape}; add a "
            "leading axis for a single caption."
        )
    return np.clip(np.rint(vectors * vocabulary.size), 0, vocabulary.size).astype(np.int64)


def decode_captions(vectors: np.ndarray, vocabulary: Vocabulary) -> list[str]:
    """Caption vectors `(N, L)` back to text: the words of the nearest ids, padding
    dropped, joined by spaces."""
    return [
        " ".join(vocabulary.words[i - 1] for i in row if i > 0)
        for row in caption_ids(vectors, vocabulary)
    ]


def caption_recovered(
    recalled: np.ndarray, originals: np.ndarray, vocabulary: Vocabulary
) -> np.ndarray:
    """Whether each recalled caption vector decodes to its original, entry by entry
    (padding included): bool `(N,)`. The thesis counts a caption as recovered only then."""
    recalled, originals = np.asarray(recalled), np.asarray(originals)
    if recalled.shape != originals.shape:
        raise ValueError(
            f"recalled captions {recalled.shape} and originals {originals.shape} must have "
            "the same shape (captions, length), one recall per original."
        )
    decoded, target = caption_ids(recalled, vocabulary), caption_ids(originals, vocabulary)
    return np.all(decoded == target, axis=1)


class CaptionPairs(NamedTuple):
    """Images and their captions, ready to store together in a memory."""

    images: np.ndarray  # float32 (N, d) in [0, 1]
    captions: tuple[str, ...]
    vectors: np.ndarray  # float32 (N, L): the captions encoded with `vocabulary`
    vocabulary: Vocabulary


def pair_captions(
    images: np.ndarray, captions: Sequence[str], *, length: int | None = None
) -> CaptionPairs:
    """Pair `images` `(N, d)` with one caption each, encoded with a vocabulary built from
    these captions (see `encode_captions` for `length`)."""
    images = np.asarray(images)
    if images.ndim != 2 or len(images) != len(captions):
        raise ValueError(
            f"`images` must be (N, pixels) with one caption each, got images of shape "
            f"{images.shape} and {len(captions)} captions."
        )
    vocabulary = build_vocabulary(captions)
    vectors = encode_captions(captions, vocabulary, length=length)
    return CaptionPairs(images, tuple(captions), vectors, vocabulary)


def tiny_imagenet_pairs(
    n: int,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    length: int | None = None,
) -> CaptionPairs:
    """A stand-in captioned set: the first validation image of each of the first `n`
    classes of Tiny ImageNet (wnids.txt order), captioned with its class's words.txt
    description (e.g. "Egyptian cat"). One image per class, so no two captions are equal.

    The data are found as `pcn.data.load("tiny-imagenet-val", data_dir=..., download=...)`
    finds them. The descriptions are class names, not sentences: a crude stand-in for
    Flickr30k's captions.
    """
    check_at_least("n", n, 1, hint="It is the number of captioned images (one per class).")
    ds = load("tiny-imagenet-val", data_dir=data_dir, download=download)
    if n > ds.num_classes:
        raise ValueError(
            f"`n`={n} is more than the {ds.num_classes} classes of Tiny ImageNet; pass "
            f"n <= {ds.num_classes} (one image per class)."
        )
    rows = []
    for label in range(n):
        found = np.flatnonzero(ds.y_train == label)
        if found.size == 0:
            raise ValueError(
                f"{ds.source} has no validation image of class {label} "
                f"({ds.class_names[label]!r}); use a complete copy of Tiny ImageNet."
            )
        rows.append(int(found[0]))
    captions = [ds.class_names[label] for label in range(n)]
    return pair_captions(ds.x_train[rows], captions, length=length)
