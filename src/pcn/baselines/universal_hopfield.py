"""Universal Hopfield Networks (Millidge et al. 2022), with the modern continuous Hopfield
network (Ramsauer et al. 2020) as its softmax-dot-product case: the one-shot memories a
user would pick instead of a PC memory.

A UHN stores the images as the rows of `M` `(N, d)` and retrieves in one step
`x_new = M^T sep(beta * sim(M, q))`:

- similarity `sim`: "dot" (`M q`, the modern Hopfield network's), "euclidean"
  (`-|M_i - q|_2`) or "manhattan" (`-|M_i - q|_1`);
- separation `sep`: "softmax" (with inverse temperature `beta`) or "max" (the one-hot
  of the most similar memory, `beta`-free).

For a partial key the similarity is taken over the known pixels only (the strongest
use of what the key gives: zeros at the unknown pixels would count as evidence), and
the known pixels are kept in the output, so one step is the answer. For a noisy key
`iterations` > 1 repeats the step from its output.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_at_least, check_choice, check_positive
from ..associative.keys import Key
from ..associative.protocol import Recall, check_key

Similarity = Literal["dot", "euclidean", "manhattan"]
Separation = Literal["softmax", "max"]
SIMILARITIES = ("dot", "euclidean", "manhattan")
SEPARATIONS = ("softmax", "max")


class UniversalHopfield(eqx.Module):
    """A UHN storing `memories` `(N, d)`."""

    memories: jax.Array
    similarity: str = eqx.field(static=True, default="dot")
    separation: str = eqx.field(static=True, default="softmax")
    beta: float = eqx.field(static=True, default=1.0)
    iterations: int = eqx.field(static=True, default=1)

    def __check_init__(self) -> None:
        check_choice("similarity", self.similarity, SIMILARITIES)
        check_choice("separation", self.separation, SEPARATIONS)
        check_positive("beta", self.beta, hint="It is the inverse temperature of the softmax.")
        check_at_least("iterations", self.iterations, 1)

    @property
    def pixels(self) -> int:
        return int(self.memories.shape[1])

    def recall(self, key: Key) -> Recall:
        """One (or `iterations`) step(s) `x <- M^T sep(beta sim(M, x))`."""
        check_key(self, key)
        image = jnp.asarray(key.image, self.memories.dtype)
        known = jnp.ones(image.shape, bool) if key.known is None else jnp.asarray(key.known)
        out = _recall(self, image, known, key.known is not None)
        return Recall(np.asarray(out), np.full(len(image), self.iterations))


def universal_hopfield(
    memories: np.ndarray,
    *,
    similarity: Similarity = "dot",
    separation: Separation = "softmax",
    beta: float = 1.0,
    iterations: int = 1,
) -> UniversalHopfield:
    """A UHN of the images `memories` `(N, d)` (storing them is all its training)."""
    memories = np.asarray(memories)
    if memories.ndim != 2 or memories.shape[0] == 0:
        raise ValueError(f"Memories must be (N, d) with N >= 1, got shape {memories.shape}.")
    return UniversalHopfield(jnp.asarray(memories), similarity, separation, float(beta), iterations)


def modern_hopfield(
    memories: np.ndarray, *, beta: float = 1.0, iterations: int = 1
) -> UniversalHopfield:
    """The modern continuous Hopfield network (Ramsauer et al. 2020): dot-product
    similarity, softmax separation with inverse temperature `beta`."""
    return universal_hopfield(
        memories, similarity="dot", separation="softmax", beta=beta, iterations=iterations
    )


def _scores(net: UniversalHopfield, query: jax.Array, known: jax.Array) -> jax.Array:
    """`sim(M, q)` over the known pixels, `(batch, N)`."""
    m, w = net.memories, known.astype(query.dtype)
    if net.similarity == "dot":
        return (query * w) @ m.T
    # |m - q| over known pixels without a (batch, N, d) array: sum_j w_j (m_j - q_j)^2
    if net.similarity == "euclidean":
        d2 = w @ (m**2).T - 2 * (query * w) @ m.T + jnp.sum(w * query**2, axis=1, keepdims=True)
        return -jnp.sqrt(jnp.maximum(d2, 0.0))
    return -jax.lax.map(lambda qw: jnp.abs(m - qw[0][None]) @ qw[1], (query, w))


@eqx.filter_jit
def _recall(net: UniversalHopfield, image: jax.Array, known: jax.Array, partial: bool) -> jax.Array:
    def step(_, x):
        s = _scores(net, x if not partial else image, known)
        if net.separation == "softmax":
            weights = jax.nn.softmax(net.beta * s, axis=1)
        else:
            weights = jax.nn.one_hot(jnp.argmax(s, axis=1), s.shape[1], dtype=s.dtype)
        out = weights @ net.memories
        return jnp.where(known, image, out) if partial else out

    return jax.lax.fori_loop(0, net.iterations, step, image)
