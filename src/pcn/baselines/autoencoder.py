"""BP autoencoder (thesis section 5.3 and 5.6.1, Figs. 5.6d and 5.7d): the ANN baseline
PC graphs are compared with on denoising and image completion, and, iterated, the
overparameterised autoencoder memory PC memories are compared with (section 4.5.1,
`autoencoder_memory`).

The network is a `pcn.mlp` (the same one `fashion-mnist-generative` trains): an encoder
with the hidden widths of the PC graph it is set beside, mirrored into a decoder, sigmoid
output, trained by `pcn.BP` to reproduce clean images (squared error), with Adam and
weight decay as in the thesis. Denoising feeds the noisy image through it; completion
feeds the image with the missing pixels at zero and keeps the known pixels as given (as a
PC graph queried by conditioning does), so only the missing ones are the network's.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validation import check_at_least, check_positive
from ..algorithms import BP, TrainStep, make_train_step
from ..associative.keys import Key
from ..associative.protocol import Recall, check_key
from ..graph import PCGraph
from ..init import forward_init
from ..models import mlp
from ..training import predict, train_epoch


def autoencoder(
    n_inputs: int, hidden: Sequence[int], *, activation: str = "tanh", key: jax.Array
) -> PCGraph:
    """An MLP `n_inputs - hidden... - reversed(hidden)[1:]... - n_inputs` (the encoder's
    last width is the code), sigmoid output; nodes "x" (input) and "y" (output)."""
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError("An autoencoder needs at least one hidden layer; got hidden=().")
    check_at_least("n_inputs", n_inputs, 1)
    for width in hidden:
        check_at_least("hidden width", width, 1)
    sizes = (n_inputs, *hidden, *reversed(hidden[:-1]), n_inputs)
    return mlp(sizes, activation=activation, output_activation="sigmoid", key=key)


def train_step(graph: PCGraph, *, learning_rate: float, weight_decay: float = 0.0) -> TrainStep:
    """The compiled BP step `train` takes: `optax.adamw` on `|net(x) - x|^2`, for a
    training loop of one's own (feed it `batch(images)`)."""
    return make_train_step(graph, BP(), optax.adamw(learning_rate, weight_decay=weight_decay))


def batch(x: np.ndarray | jax.Array) -> dict[str, jax.Array]:
    """The node values of a training batch: the images are input and target."""
    return {"x": jnp.asarray(x), "y": jnp.asarray(x)}


def train(
    graph: PCGraph,
    x: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> tuple[PCGraph, list[float]]:
    """Train by backprop on `|net(x) - x|^2` with `optax.adamw`; returns the trained graph
    and each epoch's mean training loss."""
    check_at_least("epochs", epochs, 1)
    check_positive("learning_rate", learning_rate)
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    x = np.asarray(x)
    n_inputs = graph.node("x").shape[0]
    if x.ndim != 2 or x.shape[1] != n_inputs:
        raise ValueError(f"Training images must have shape (batch, {n_inputs}), got {x.shape}.")
    step = train_step(graph, learning_rate=learning_rate, weight_decay=weight_decay)
    state = step.init(graph)
    losses = []
    for epoch in range(epochs):
        state, stats = train_epoch(
            step,
            state,
            lambda xb, _: batch(xb),
            x,
            np.zeros(len(x), dtype=np.int64),
            batch_size=batch_size,
            seed=seed * 1000 + epoch,
        )
        losses.append(stats.loss)
    return step.graph(state), losses


def reconstruct(graph: PCGraph, x: np.ndarray | jax.Array) -> np.ndarray:
    """The network's output for `x` (denoising: pass the noisy image)."""
    return predict(graph, np.asarray(x))


def complete(
    graph: PCGraph, x: np.ndarray | jax.Array, known: np.ndarray | jax.Array
) -> np.ndarray:
    """Fill the pixels where `known` is False: the output for the image with them at zero,
    the known pixels kept as given."""
    x = np.asarray(x)
    known = np.broadcast_to(np.asarray(known, dtype=bool), x.shape)
    return np.where(known, x, predict(graph, np.where(known, x, 0.0)))


class AutoencoderMemory(eqx.Module):
    """A trained autoencoder iterated as an associative memory (Radhakrishnan et al.
    2020): `x <- net(x)`, `iterations` times; for a partial key the unknown pixels start
    at zero and the known ones are put back after every iteration (thesis section 4.5.1,
    for a fair comparison with the PC memory, which keeps them clamped)."""

    graph: PCGraph
    iterations: int = eqx.field(static=True, default=1)

    @property
    def pixels(self) -> int:
        return self.graph.node("x").shape[0]

    def recall(self, key: Key) -> Recall:
        check_key(self, key)
        image = jnp.asarray(key.image)
        known = jnp.zeros(image.shape, bool) if key.known is None else jnp.asarray(key.known)
        out = _iterate(self.graph, image, known, self.iterations)
        return Recall(np.asarray(out), np.full(len(image), self.iterations))


def autoencoder_memory(graph: PCGraph, *, iterations: int = 1) -> AutoencoderMemory:
    """The trained autoencoder `graph` (from `train`) as a memory."""
    check_at_least("iterations", iterations, 1)
    return AutoencoderMemory(graph, iterations)


@eqx.filter_jit
def _iterate(graph: PCGraph, image: jax.Array, known: jax.Array, iterations: int) -> jax.Array:
    def step(_, x):
        return jnp.where(known, image, forward_init(graph, {"x": x})["y"])

    return jax.lax.fori_loop(0, iterations, step, image)
