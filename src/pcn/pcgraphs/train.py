"""Training a PC graph (thesis Algorithm 8): sensory (and label) nodes clamped to the data,
T steps of SGD on the other values from zero (Eq. 5.3), one weight update (Eq. 5.4) with
Adam and weight decay (section 5.6.1). Plain `pcn.IL` with `zeros_init`: a graph with
cycles has no forward pass to initialise from.
"""

from __future__ import annotations

import jax
import optax

from ..algorithms import IL, TrainStep, make_train_step
from ..graph import PCGraph
from ..init import AbstractInitialiser, zeros_init
from .tasks import one_hot
from .topology import LABEL, SENSORY


def trainer(
    graph: PCGraph,
    *,
    steps: int = 20,
    gamma: float = 0.5,
    learning_rate: float | optax.Schedule = 1e-3,
    weight_decay: float = 0.0,
    init: AbstractInitialiser = zeros_init,
) -> TrainStep:
    """A compiled training step: `IL(steps, gamma, init=init)` with
    `optax.adamw(learning_rate, weight_decay=weight_decay)` on the weights (the rate may
    be an optax schedule). `init=pcn.forward_init` starts a DAG (a feedforward graph)
    from its forward pass instead of zeros."""
    algorithm = IL(steps, gamma=gamma, init=init)
    return make_train_step(graph, algorithm, optax.adamw(learning_rate, weight_decay=weight_decay))


def batch(
    graph: PCGraph,
    inputs: jax.Array,
    labels: jax.Array | None = None,
    *,
    sensory: str = SENSORY,
    label: str = LABEL,
) -> dict[str, jax.Array]:
    """The clamped nodes of a training batch: `{sensory: inputs, label: one-hot}`.

    Raises:
        ValueError: the label count does not match the graph's label neurons.
    """
    out = {sensory: inputs}
    if labels is not None:
        if label not in graph.names:
            raise ValueError(
                f"Labels were given but the graph has no group {label!r}; "
                f"nodes are {list(graph.names)}."
            )
        out[label] = one_hot(labels, graph.node(label).shape[0])
    return out
