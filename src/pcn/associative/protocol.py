"""What every associative memory offers, PC or not: `recall(key) -> Recall`.

One protocol for the PC memories of this package and for the baselines they are set
beside (`pcn.baselines.hopfield`, `pcn.baselines.universal_hopfield`,
`pcn.baselines.autoencoder`), so that one evaluation (`pcn.associative.scores`) scores
them all on the same keys.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from .keys import Key


class Recall(NamedTuple):
    """What a memory returned for a batch of keys."""

    images: np.ndarray  # (batch, d): the retrieved images
    steps: np.ndarray  # (batch,): relaxation steps or iterations each key took


class Memory(Protocol):
    """A trained associative memory of images `(d,)`."""

    @property
    def pixels(self) -> int:
        """d, the size of a stored image."""
        ...

    def recall(self, key: Key) -> Recall:
        """The images retrieved from `key` (the known pixels of a partial key are kept)."""
        ...


def check_key(memory: Memory, key: Key) -> None:
    """Refuse a key of the wrong shape for `memory`, naming both shapes."""
    image = np.asarray(key.image)
    if image.ndim != 2 or image.shape[1] != memory.pixels or image.shape[0] == 0:
        raise ValueError(
            f"This memory stores images of {memory.pixels} pixels and needs keys of shape "
            f"(batch, {memory.pixels}), got {image.shape}; flatten the key images."
        )
    if key.known is not None and np.shape(key.known) != image.shape:
        raise ValueError(
            f"The key's `known` mask has shape {np.shape(key.known)}, its image {image.shape}; "
            "give one flag per pixel (pcn.associative.keys.partial builds both)."
        )
