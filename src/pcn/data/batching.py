"""Seeded shuffling, mini-batching and one-hot targets on numpy arrays.

Batches are drawn on the host with numpy so the order depends only on the seed (not
on device or JAX version): the same seed gives the same batches, run after run.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["batches", "one_hot", "stream_aligned_batches"]


def _rng(key_or_seed: Any) -> np.random.Generator:
    """A numpy Generator from a non-negative int seed or a JAX PRNG key."""
    if isinstance(key_or_seed, bool):
        raise TypeError("key_or_seed must be an int seed or a JAX PRNG key, not a bool")
    if isinstance(key_or_seed, numbers.Integral):
        if key_or_seed < 0:
            raise ValueError(f"key_or_seed must be a non-negative int, got {key_or_seed}")
        return np.random.default_rng(int(key_or_seed))
    data = key_or_seed
    if getattr(getattr(data, "dtype", None), "name", "").startswith("key<"):
        import jax  # only reached when given a typed JAX key

        data = jax.random.key_data(data)
    words = np.asarray(data)
    if words.dtype.kind != "u" or words.size == 0:
        raise TypeError(
            f"key_or_seed must be an int seed or a JAX PRNG key, got {type(key_or_seed).__name__}"
        )
    return np.random.default_rng([int(w) for w in words.ravel()])


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    key_or_seed: Any,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x_batch, y_batch) pairs covering each example at most once (one epoch).

    `key_or_seed` (an int >= 0 or a JAX PRNG key) fixes the shuffled order; use a new
    seed per epoch for a new order. With `drop_last`, a final short batch is dropped so
    every batch has `batch_size` rows (one jit trace); otherwise it is yielded.
    Arguments are checked when called, before the first batch is requested.

    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in batches(x, y, 2, key_or_seed=0, shuffle=False)]
    [[0, 1], [2, 3]]
    >>> [yb.tolist() for _, yb in batches(x, y, 2, key_or_seed=0, drop_last=False)]
    [[2, 4], [3, 0], [1]]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} and {len(y)}")
    n = len(x)
    if drop_last and batch_size > n:
        raise ValueError(
            f"batch_size ({batch_size}) is larger than the number of examples ({n}) and "
            "drop_last=True, so no batch would be produced"
        )
    rng = _rng(key_or_seed)  # validated even when shuffle=False
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _iterate(x, y, order, int(batch_size), stop)


def _iterate(
    x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def stream_aligned_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    key_or_seed: Any,
    num_classes: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x_batch, y_batch) pairs of one epoch of stream-aligned batches (Faster-PC
    paper, Section 4.1): each batch is C blocks of `batch_size / C` rows, block c holding
    examples of class c only, so row i of every batch comes from the same class (its
    "stream": what the paper's average initialisation relies on).

    Each class is shuffled by `key_or_seed` (an int >= 0 or a JAX PRNG key); the epoch
    ends when a class runs out, so with unequal classes the rest of the larger ones sit
    this epoch out (other examples in an epoch of another seed). `num_classes` defaults
    to `max(y) + 1`; every class must have examples for at least one block.

    >>> x, y = np.arange(8)[:, None], np.array([0, 1, 0, 1, 0, 1, 0, 1])
    >>> [yb.tolist() for _, yb in stream_aligned_batches(x, y, 4, key_or_seed=0)]
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    labels = np.asarray(y)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"y must be 1-D integer class indices for stream-aligned batches, got "
            f"{labels.dtype} {labels.shape} (pass the class indices, not one-hot rows)"
        )
    if len(x) != len(labels):
        raise ValueError(f"x and y have different lengths: {len(x)} and {len(labels)}")
    classes = int(labels.max()) + 1 if num_classes is None and labels.size else num_classes
    if not classes or classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in [0, {classes}), got {labels.min()}..{labels.max()}")
    if batch_size < classes or batch_size % classes:
        nearest = classes * max(1, batch_size // classes)
        raise ValueError(
            f"batch_size ({batch_size}) must be a positive multiple of the {classes} classes "
            f"(one equal block per class); e.g. batch_size={nearest}."
        )
    block = batch_size // classes
    rng = _rng(key_or_seed)
    streams = [rng.permutation(np.flatnonzero(labels == c)) for c in range(classes)]
    counts = [len(s) for s in streams]
    short = [c for c in range(classes) if counts[c] < block]
    if short:
        raise ValueError(
            f"class {short[0]} has {counts[short[0]]} examples, fewer than one block of "
            f"{block} (batch_size {batch_size} / {classes} classes); use batch_size <= "
            f"{classes * max(1, min(counts))}, or give every class at least {block} examples."
        )
    rounds = min(counts) // block
    order = np.stack([s[: rounds * block].reshape(rounds, block) for s in streams], axis=1)
    return _iterate(x, labels, order.reshape(-1), batch_size, rounds * batch_size)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices (N,) -> float32 one-hot targets (N, num_classes)."""
    labels = np.asarray(y)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"y must be 1-D integer class indices, got {labels.dtype} {labels.shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out
