"""The hierarchical generative PC memory (thesis sections 4.3-4.5, Figs. 4.4 and 4.5,
Algorithms 6 and 7): a generative PCN whose sensory layer is the image.

The network is `pcn.generative_mlp`: a free top layer "z", hidden layers, and the
sensory layer "x" at the bottom (ReLU by default, a linear sensory prediction). It stores
images by training with the image clamped at "x" (`train_step`, plain `pcn.IL`; drive
it with any loop, e.g. the suite's `fit`), until the energy no longer falls.

- A noisy key is cleaned by the map F of Fig. 4.4: the sensory values fixed to the current
  image, every other value relaxed to convergence, the image replaced by the sensory
  layer's prediction; F is iterated (`iterations`, `trajectory` returns every iterate).
- A partial key is completed by Algorithm 7: its known pixels clamped, every other value
  (the unknown pixels too) relaxed to convergence; the answer is the sensory values.

Every relaxation starts from the forward pass of the top layer at zero (`forward_init`).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validation import check_at_least
from ..algorithms import IL, TrainStep, make_train_step
from ..graph import PCGraph
from ..inference import infer
from ..init import forward_init
from ..models import generative_mlp
from ..options import Stop, Tolerance, ValueOptimizer, as_stop
from .keys import Key
from .protocol import Recall, check_key

SENSORY = "x"
RELAX = Tolerance(1e-5, 2000)


class GenerativeMemory(eqx.Module):
    """A generative PCN used as a memory of its sensory layer, with retrieval settings."""

    graph: PCGraph
    iterations: int = eqx.field(static=True)  # applications of F to a noisy key
    stop: Stop = eqx.field(static=True)  # of each relaxation
    value_optimizer: ValueOptimizer = eqx.field(static=True)

    @property
    def pixels(self) -> int:
        return self.graph.node(SENSORY).shape[0]

    def apply_f(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """F of Fig. 4.4 once: the sensory prediction after relaxing with `images` fixed,
        and the steps each example took."""
        return _apply_f(self, images)

    def trajectory(self, key: Key, iterations: int) -> np.ndarray:
        """`(iterations, batch, d)`: the image after each application of F to a noisy key."""
        check_key(self, key)
        check_at_least("iterations", iterations, 1)
        x, out = jnp.asarray(key.image), []
        for _ in range(iterations):  # each application is one compiled relaxation
            x, _ = self.apply_f(x)
            out.append(np.asarray(x))
        return np.stack(out)

    def recall(self, key: Key) -> Recall:
        """A noisy key: F applied `iterations` times. A partial key: Algorithm 7."""
        check_key(self, key)
        image = jnp.asarray(key.image)
        if key.known is None:
            steps = jnp.zeros(len(image), jnp.int32)
            for _ in range(self.iterations):
                image, taken = self.apply_f(image)
                steps = steps + taken
            return Recall(np.asarray(image), np.asarray(steps))
        out, steps = _complete(self, image, jnp.asarray(key.known))
        return Recall(np.asarray(out), np.asarray(steps))


def _relax(memory: GenerativeMemory, image: jax.Array, clamp: bool | jax.Array):
    """One compiled relaxation (`pcn.infer`) from the forward pass of a zero top layer."""
    values = _start(memory.graph, image)
    return infer(
        memory.graph,
        values,
        clamp={SENSORY: clamp},
        stop=memory.stop,
        value_optimizer=memory.value_optimizer,
    )


@eqx.filter_jit
def _start(graph: PCGraph, image: jax.Array) -> dict[str, jax.Array]:
    return forward_init(graph, {SENSORY: image})


@eqx.filter_jit
def _sensory_prediction(graph: PCGraph, values: dict[str, jax.Array]) -> jax.Array:
    return graph.node(SENSORY).energy.mean(graph.predict(values, SENSORY))


def _apply_f(memory: GenerativeMemory, image: jax.Array) -> tuple[jax.Array, jax.Array]:
    result = _relax(memory, image, True)
    return _sensory_prediction(memory.graph, result.values), result.example_steps


def _complete(memory: GenerativeMemory, image: jax.Array, known: jax.Array):
    result = _relax(memory, image, known)
    return result.values[SENSORY], result.example_steps


def generative_memory(
    pixels: int,
    hidden: Sequence[int],
    *,
    activation: str = "relu",
    iterations: int = 1,
    stop: int | Stop = RELAX,
    gamma: float = 0.1,
    value_optimizer: ValueOptimizer | None = None,
    key: jax.Array,
) -> GenerativeMemory:
    """An untrained memory of `pixels`-entry images: top layer `hidden[0]` wide, then the
    other `hidden` widths down to the sensory layer (e.g. `hidden=(1024, 1024)` is the
    thesis's "2-layer" network of width 1024).

    Args:
        activation: of the hidden layers' predictions (the thesis: ReLU); the sensory
            prediction is linear.
        iterations: applications of F to a noisy key.
        stop: of each relaxation (retrieval), `pcn.Tolerance(tol, max_steps)` or T.
        gamma: SGD step on the values unless `value_optimizer` is given.
        key: PRNG key of the weights.
    """
    check_at_least("pixels", pixels, 1)
    if not hidden:
        raise ValueError("A generative memory needs at least one hidden layer, e.g. (512, 512).")
    check_at_least("iterations", iterations, 1)
    graph = generative_mlp(
        [*hidden, pixels], activation=activation, output_activation="identity", key=key
    )
    optimizer = value_optimizer if value_optimizer is not None else optax.sgd(gamma)
    return GenerativeMemory(graph, iterations, as_stop(stop), optimizer)


def train_step(
    memory: GenerativeMemory,
    *,
    steps: int = 50,
    gamma: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
) -> TrainStep:
    """The compiled memorisation step: the batch's images clamped at the sensory layer,
    `steps` value steps of SGD `gamma` from the forward pass of a zero top layer, one
    weight update by `optimizer` (default `optax.adam(1e-4)`). Feed it `batch(images)`."""
    algorithm = IL(steps, gamma=gamma, init=forward_init)
    return make_train_step(memory.graph, algorithm, optimizer or optax.adam(1e-4))


def batch(images: np.ndarray | jax.Array) -> dict[str, jax.Array]:
    """The clamped values of a memorisation batch."""
    return {SENSORY: jnp.asarray(images)}


def with_graph(memory: GenerativeMemory, graph: PCGraph) -> GenerativeMemory:
    """`memory` holding the trained `graph` (e.g. `step.graph(state)` of `train_step`)."""
    return eqx.tree_at(lambda m: m.graph, memory, graph)
