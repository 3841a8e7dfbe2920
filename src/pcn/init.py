"""Starting values of the value nodes (the "initialisation" of inference).

Every initialiser has the signature `init(graph, fixed, *, key) -> values`, where
`fixed` holds the values of the nodes the caller provides (data, labels, queries) and
the result holds a value for every node of the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import jax
import jax.numpy as jnp

from .graph import PCGraph, Values


class Initialiser(Protocol):
    def __call__(
        self, graph: PCGraph, fixed: Mapping[str, jax.Array], *, key: jax.Array | None = None
    ) -> Values: ...


def batch_size_of(fixed: Mapping[str, jax.Array]) -> int:
    """The batch size shared by the provided values."""
    sizes = {name: v.shape[0] for name, v in fixed.items()}
    if not sizes:
        raise ValueError("No node values were provided, so the batch size is unknown.")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Provided values disagree on the batch size: {sizes}.")
    return next(iter(sizes.values()))


def forward_init(
    graph: PCGraph,
    fixed: Mapping[str, jax.Array],
    *,
    key: jax.Array | None = None,
    root_init: Callable[[tuple[int, ...]], jax.Array] = jnp.zeros,
) -> Values:
    """Set every node to the mean of its prediction, in topological order (DAG only).

    Provided nodes keep their values; free roots start at `root_init(shape)` (zeros).
    All errors of the nodes that are not provided are then zero, so a network whose
    only provided node is its input sits at zero energy ("forward initialisation").
    """
    if graph.order is None:
        raise ValueError(
            "Forward initialisation needs a DAG, but this graph has a cycle "
            f"({graph.cycle_hint()}); use `zeros_init` or `normal_init` instead."
        )
    batch = batch_size_of(fixed)
    values: Values = {}
    for name in graph.order:
        node = graph.node(name)
        if name in fixed:
            values[name] = fixed[name]
        elif graph.incoming(name):
            values[name] = node.energy.mean(graph.predict(values, name))
        else:
            values[name] = root_init((batch, *node.shape))
    return values


def zeros_init(
    graph: PCGraph, fixed: Mapping[str, jax.Array], *, key: jax.Array | None = None
) -> Values:
    """Provided nodes keep their values; every other node starts at zero."""
    batch = batch_size_of(fixed)
    return {
        n.name: fixed[n.name] if n.name in fixed else jnp.zeros((batch, *n.shape))
        for n in graph.nodes
    }


def normal_init(
    graph: PCGraph,
    fixed: Mapping[str, jax.Array],
    *,
    key: jax.Array | None = None,
    std: float = 0.1,
) -> Values:
    """Provided nodes keep their values; every other node starts at N(0, std^2)."""
    if key is None:
        raise ValueError("`normal_init` draws random values: pass `key=jax.random.key(...)`.")
    batch = batch_size_of(fixed)
    keys = jax.random.split(key, len(graph.nodes))
    return {
        n.name: fixed[n.name] if n.name in fixed else std * jax.random.normal(k, (batch, *n.shape))
        for n, k in zip(graph.nodes, keys, strict=True)
    }
