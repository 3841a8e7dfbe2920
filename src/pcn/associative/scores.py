"""How well a memory retrieved its images: the thesis's hit counts, the mean recall
error, the Universal Hopfield Networks criterion and the strict-retrieval rate.

- An image is retrieved when the MSE between it and what the memory returned is below
  a threshold: 0.005 for noisy keys, 0.001 for partial ones (thesis sections 4.2-4.5).
- The mean recall MSE over the images is the associative-memory metric of the PCX
  benchmark.
- Universal Hopfield Networks (Millidge et al. 2022) count an image as retrieved when
  the summed squared error is at most 60 per 784 pixels: a per-pixel MSE of 60 / 784.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NOISY_THRESHOLD = 0.005
PARTIAL_THRESHOLD = 0.001
UHN_PIXEL_MSE = 60 / 784


class Scores(NamedTuple):
    """One memory's retrievals of one set of keys."""

    retrieved: int  # images with MSE below the threshold
    fraction: float  # retrieved / images
    mse: float  # mean recall MSE over the images
    uhn_retrieved: int  # images within the Universal Hopfield Networks criterion
    threshold: float

    def as_dict(self) -> dict[str, float | int]:
        return self._asdict()


def _pair(retrieved: np.ndarray, originals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    retrieved, originals = np.asarray(retrieved), np.asarray(originals)
    if retrieved.shape != originals.shape or retrieved.ndim != 2:
        raise ValueError(
            f"Retrieved images {retrieved.shape} and originals {originals.shape} must have "
            "the same shape (batch, pixels), one retrieval per original."
        )
    return retrieved.astype(np.float64), originals.astype(np.float64)


def recall_mse(retrieved: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """The MSE of each retrieval to its original, `(batch,)`."""
    retrieved, originals = _pair(retrieved, originals)
    return np.mean((retrieved - originals) ** 2, axis=1)


def score(retrieved: np.ndarray, originals: np.ndarray, *, threshold: float) -> Scores:
    """Hit count (MSE < `threshold`), fraction, mean MSE and the UHN count."""
    if not threshold > 0:
        raise ValueError(
            f"`threshold` (the MSE below which an image counts as retrieved) must be > 0, "
            f"got {threshold!r}; the thesis uses {NOISY_THRESHOLD} for noisy keys and "
            f"{PARTIAL_THRESHOLD} for partial ones."
        )
    mse = recall_mse(retrieved, originals)
    hits = int(np.sum(mse < threshold))
    return Scores(
        hits, hits / len(mse), float(np.mean(mse)), int(np.sum(mse <= UHN_PIXEL_MSE)), threshold
    )


def strict_retrievals(retrieved: np.ndarray, stored: np.ndarray, *, threshold: float) -> float:
    """The fraction of `retrieved` images (answers to keys that belong to no memory, such
    as random ones) within `threshold` MSE of some stored image: a memory that answers
    everything with a stored image retrieves "strictly" (thesis section 4.2.1)."""
    retrieved, stored = np.asarray(retrieved, np.float64), np.asarray(stored, np.float64)
    if retrieved.ndim != 2 or stored.ndim != 2 or retrieved.shape[1] != stored.shape[1]:
        raise ValueError(
            f"Retrieved images {retrieved.shape} and stored ones {stored.shape} must both be "
            "(batch, pixels) with the same number of pixels."
        )
    # squared distances without a (batch, stored, d) array
    d2 = (
        np.sum(retrieved**2, axis=1)[:, None]
        - 2 * retrieved @ stored.T
        + np.sum(stored**2, axis=1)[None, :]
    )
    nearest = np.maximum(d2.min(axis=1), 0.0) / stored.shape[1]
    return float(np.mean(nearest < threshold))
