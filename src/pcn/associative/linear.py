"""The linear recurrent PC memory (thesis section 4.2, Fig. 4.2): d neurons for d pixels,
all `d (d - 1)` directed connections, no activation.

Every neuron is a sensory neuron, so its prediction is `mu = W x + b` with `W` zero on
the diagonal, and the energy is `E = 1/2 |x - mu|^2`. It is a fully connected PC graph
(`pcn.pcgraphs`) with the identity activation and a bias:

- memorisation clamps every value to an image and descends the weights alone (Eq. 4.1,
  `dW = alpha eps x^T`) until the mean energy over the images changes by less than a
  tolerance in a step: one compiled loop;
- retrieval from a noisy key is one prediction, `x <- W x + b` (iterated on request);
- retrieval from a partial key clamps the known pixels and relaxes the others until the
  energy converges (`pcn.pcgraphs.condition`).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validation import check_at_least
from ..graph import PCGraph
from ..options import Stop, Tolerance, ValueOptimizer, as_stop
from ..pcgraphs import build, query, topology
from .keys import Key
from .protocol import Recall, check_key

NODE = topology.SENSORY
RELAX = Tolerance(1e-6, 5000)  # a partial key's relaxation
MEMORISE = Tolerance(1e-6, 1500)  # the thesis: converged within 1500 steps


class Memorisation(NamedTuple):
    """How memorising went: epochs over the images, and each epoch's mean energy per
    image before its updates (NaN after the last epoch)."""

    steps: int
    energy: np.ndarray  # (max_steps,)


class LinearMemory(eqx.Module):
    """A linear recurrent PC memory of images of `pixels` entries, with its retrieval
    settings."""

    graph: PCGraph
    iterations: int = eqx.field(static=True)  # predictions per retrieval from a noisy key
    stop: Stop = eqx.field(static=True)  # of a partial key's relaxation
    value_optimizer: ValueOptimizer = eqx.field(static=True)  # of the free pixels

    @property
    def pixels(self) -> int:
        return self.graph.node(NODE).shape[0]

    def predict(self, images: jax.Array) -> jax.Array:
        """`W x + b` for each image: one retrieval step from a noisy key."""
        return self.graph.predict({NODE: images}, NODE)

    def recall(self, key: Key) -> Recall:
        """A noisy key: `iterations` predictions `x <- W x + b`. A partial key: its known
        pixels clamped, the others relaxed from zero until `stop`."""
        check_key(self, key)
        image = jnp.asarray(key.image)
        if key.known is None:
            out = _iterate(self.graph, image, self.iterations)
            return Recall(np.asarray(out), np.full(len(image), self.iterations))
        result = query.condition(
            self.graph,
            {NODE: image},
            clamp={NODE: jnp.asarray(key.known)},
            stop=self.stop,
            value_optimizer=self.value_optimizer,
        )
        return Recall(np.asarray(result.values[NODE]), np.asarray(result.example_steps))


@eqx.filter_jit
def _iterate(graph: PCGraph, image: jax.Array, iterations: int) -> jax.Array:
    return jax.lax.fori_loop(0, iterations, lambda _, x: graph.predict({NODE: x}, NODE), image)


def linear_memory(
    pixels: int,
    *,
    iterations: int = 1,
    stop: int | Stop = RELAX,
    gamma: float = 0.1,
    value_optimizer: ValueOptimizer | None = None,
    key: jax.Array,
) -> LinearMemory:
    """An empty memory of `pixels`-entry images: weights and bias at zero (so that
    memorising finds the smallest weights that store the images).

    Args:
        pixels: d, the entries of a flattened image (neurons of the graph).
        iterations: predictions per retrieval from a noisy key (the thesis: 1).
        stop: relaxation of a partial key, `pcn.Tolerance(tol, max_steps)` or a step count.
        gamma: SGD step on the free pixels, unless `value_optimizer` is given (e.g.
            `optax.sgd(gamma, momentum=0.9, nesterov=True)` for fewer steps).
        key: PRNG key (the graph's construction takes one; the weights start at zero).
    """
    check_at_least("pixels", pixels, 2, hint="A recurrent memory needs at least two neurons.")
    check_at_least("iterations", iterations, 1)
    graph = build.pc_graph(
        topology.fully_connected(pixels, sensory=pixels),
        activation="identity",
        bias=True,
        weight_scale=0.0,
        key=key,
    )
    params, static = eqx.partition(graph, eqx.is_inexact_array)  # (the mask is not)
    graph = eqx.combine(jax.tree.map(jnp.zeros_like, params), static)  # the bias at zero too
    optimizer = value_optimizer if value_optimizer is not None else optax.sgd(gamma)
    return LinearMemory(graph, iterations, as_stop(stop), optimizer)


def memorise(
    memory: LinearMemory,
    images: np.ndarray,
    *,
    optimizer: optax.GradientTransformation | None = None,
    stop: Tolerance = MEMORISE,
    batch_size: int | None = None,
) -> tuple[LinearMemory, Memorisation]:
    """Store `images` `(N, d)`: every value clamped to its image, the weights descend the
    mean energy over a batch of images (Eq. 4.1), one epoch after another in a fixed
    order, until the epoch's mean energy changes by less than `stop.tol` or after
    `stop.max_steps` epochs (the thesis: learning rate 0.001, converged within 1500).

    `batch_size` None (the default) takes all images in one step per epoch; a small one
    (1: one image per update, as a thesis iteration over the images most likely was)
    stores the same images with the same arithmetic per epoch in many more updates.
    It must divide N. `optimizer` defaults to `optax.sgd(1e-3)`."""
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != memory.pixels or len(images) == 0:
        raise ValueError(
            f"This memory stores images of {memory.pixels} pixels; got images of shape "
            f"{images.shape}, expected (N, {memory.pixels}) with N >= 1."
        )
    if not isinstance(stop, Tolerance):
        raise TypeError(f"`stop` must be a pcn.Tolerance(tol, max_steps), got {stop!r}.")
    batch_size = len(images) if batch_size is None else batch_size
    check_at_least("batch_size", batch_size, 1)
    if len(images) % batch_size:
        raise ValueError(
            f"`batch_size` {batch_size} does not divide the {len(images)} images; pick a "
            "divisor (every image is stored once per epoch)."
        )
    optimizer = optimizer if optimizer is not None else optax.sgd(1e-3)
    batches = jnp.asarray(images).reshape(-1, batch_size, images.shape[1])
    graph, epochs, energy = _memorise(memory.graph, batches, optimizer, stop)
    return eqx.tree_at(lambda m: m.graph, memory, graph), Memorisation(
        int(epochs), np.asarray(energy)
    )


@eqx.filter_jit
def _memorise(graph: PCGraph, batches: jax.Array, optimizer, stop: Tolerance):
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def mean_energy(p, images):
        return jnp.mean(eqx.combine(p, static).energy({NODE: images}))

    def update(state, images):
        p, o = state
        energy, grads = jax.value_and_grad(mean_energy)(p, images)
        updates, o = optimizer.update(grads, o, p)
        return (optax.apply_updates(p, updates), o), energy

    def cond(carry):
        _, _, t, before_last, last, _ = carry  # mean energies of the last two epochs
        return (t < stop.max_steps) & (jnp.abs(before_last - last) >= stop.tol)

    def body(carry):
        p, o, t, _, last, trace = carry
        (p, o), energies = jax.lax.scan(update, (p, o), batches)
        energy = jnp.mean(energies)
        return p, o, t + 1, last, energy, trace.at[t].set(energy)

    dtype = batches.dtype
    trace = jnp.full((stop.max_steps,), jnp.nan, dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    carry = (params, optimizer.init(params), 0, inf, -inf, trace)
    params, _, epochs, _, _, trace = jax.lax.while_loop(cond, body, carry)
    return eqx.combine(params, static), epochs, trace
