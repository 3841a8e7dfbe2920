"""Checks of the values and clamps given to the relaxation engine, at trace time.

Each raises one sentence naming the node, what was received and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.core
import jax.numpy as jnp

from .graph import PCGraph
from .typing import Mask

Clamp = Mapping[str, bool | Mask]


def check_batch(graph: PCGraph, batch: Mapping[str, jax.Array]) -> None:
    """The arrays in `batch` are named after nodes and shaped (batch, *node.shape)."""
    sizes = set()
    for name, value in batch.items():
        if name not in graph.names:
            raise ValueError(
                f"Got data for node {name!r}, which is not in the graph; "
                f"nodes are {list(graph.names)}."
            )
        expected = graph.node(name).shape
        if value.ndim != len(expected) + 1 or tuple(value.shape[1:]) != expected:
            raise ValueError(
                f"Node {name!r} expects values of shape (batch, {', '.join(map(str, expected))})"
                f" but got shape {tuple(value.shape)}; reshape the data to match the model."
            )
        sizes.add(value.shape[0])
    if len(sizes) > 1:
        raise ValueError(f"The arrays given for the nodes disagree on the batch size: {sizes}.")


def check_values(graph: PCGraph, values: Mapping[str, jax.Array]) -> None:
    """Every node has a value of shape (batch, *node.shape), one batch size for all."""
    missing = [n for n in graph.names if n not in values]
    if missing:
        raise ValueError(f"No value given for nodes {missing}; pass one for every node.")
    check_batch(graph, values)


def check_free_nodes(graph: PCGraph, clamped: frozenset[str] | set[str]) -> None:
    """Every node not fully clamped has an energy whose value can relax (its
    `check_free`; e.g. a categorical node's probabilities cannot)."""
    for node in graph.nodes:
        if node.name not in clamped:
            node.energy.check_free(node.name)


ALL_CLAMPED = "`clamp` fixes every node, so there is nothing to infer; leave some neurons free."


def split_clamp(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    clamp: Clamp,
    *,
    all_clamped: str = ALL_CLAMPED,
) -> tuple[frozenset[str], dict[str, jax.Array]]:
    """Validate `clamp` and split it into the static set of fully clamped nodes and the
    element masks (broadcast to the values) of partially clamped ones. A mask that holds
    every element clamps its node; `all_clamped` is the error when every node is."""
    clamped, masks = set(), {}
    for name, spec in clamp.items():
        if name not in graph.names:
            raise ValueError(
                f"`clamp` names node {name!r}, which is not in the graph; "
                f"nodes are {list(graph.names)}."
            )
        if spec is True:
            clamped.add(name)
        elif spec is False or spec is None:
            continue
        else:
            mask = jnp.asarray(spec, dtype=bool)
            try:
                mask = jnp.broadcast_to(mask, values[name].shape)
            except ValueError:
                raise ValueError(
                    f"The clamp mask of node {name!r} has shape {mask.shape}, which does not "
                    f"broadcast to the node's values {values[name].shape}."
                ) from None
            if not isinstance(mask, jax.core.Tracer) and bool(jnp.all(mask)):
                clamped.add(name)  # every element held: the node is clamped
            else:
                masks[name] = mask
    if len(clamped) == len(graph.names):
        raise ValueError(all_clamped)
    check_free_nodes(graph, clamped)
    return frozenset(clamped), masks
