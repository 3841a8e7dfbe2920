"""Losses at the forward pass, shared by backprop (`pcn.BP`) and Z-IL (`pcn.ZIL`).

The forward pass sets the roots from the batch and every other node to the mean of its
prediction (forward initialisation). `bp_loss` is the energy of the provided targets
there: the usual supervised loss (squared error for Gaussian outputs, cross-entropy for
categorical ones). `forward_energy` is the whole graph's energy there: for a VAE graph
the VAE loss, reconstruction + KL to the prior.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._typed import total
from .graph import PCGraph, Values
from .init import forward_init
from .typing import Scalar, ValuesIn

Batch = ValuesIn


def forward_values(graph: PCGraph, batch: Batch, *, purpose: str = "Backprop") -> Values:
    """The values of the forward pass from the roots in `batch` (targets not applied).

    Raises:
        ValueError: a root has no value in `batch` (`purpose` names who needs it).
    """
    missing = [r for r in graph.roots() if r not in batch]
    if missing:
        raise ValueError(
            f"{purpose} needs a value for every root node, but {missing} are not in the "
            "batch; BP trains graphs whose roots are all provided (use IL for generative ones)."
        )
    return forward_init(graph, {n: batch[n] for n in graph.roots()})


def target_loss(graph: PCGraph, batch: Batch, forward: Values) -> Scalar:
    """Mean over the batch of the energies of the provided nodes that have a prediction,
    at the forward values `forward`."""
    targets = [n for n in batch if graph.incoming(n)]
    return total(
        jnp.mean(graph.node(n).energy.energy(batch[n], graph.predict(forward, n))) for n in targets
    )


def bp_loss(graph: PCGraph, batch: Batch) -> Scalar:
    """Mean over the batch of the provided targets' energies at the forward pass."""
    return target_loss(graph, batch, forward_values(graph, batch))


def forward_energy(graph: PCGraph, batch: Batch) -> Scalar:
    """Per-example energy of the whole graph at the forward pass, the provided non-roots
    (targets) at their values: `(batch,)`."""
    values = forward_values(graph, batch)
    values.update({n: v for n, v in batch.items() if graph.incoming(n)})
    return graph.energy(values)
