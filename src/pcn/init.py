"""Starting values of the value nodes (the "initialisation" of inference).

An initialiser is an `AbstractInitialiser`: `init(graph, provided, *, key) -> values`,
where `provided` holds the values of the nodes the caller gives (data, labels, queries)
and the result holds a value for every node of the graph. A new initialiser is one
subclass; `starts_at_prediction` tells the relaxation engine that every node that is not
provided starts at its prediction (zero error), which lets it skip work.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._validation import check_positive
from .graph import PCGraph, Values
from .typing import Key, ValuesIn


class AbstractInitialiser(eqx.Module):
    """Starting values for every node, from the provided ones."""

    # every node that is not provided starts at the mean of its prediction
    starts_at_prediction: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        """`{name: (batch, *shape)}` for every node of `graph`; provided nodes keep theirs."""


def batch_size_of(provided: Mapping[str, jax.Array]) -> int:
    """The batch size shared by the provided values."""
    sizes = {name: v.shape[0] for name, v in provided.items()}
    if not sizes:
        raise ValueError("No node values were provided, so the batch size is unknown.")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Provided values disagree on the batch size: {sizes}.")
    return next(iter(sizes.values()))


class ForwardInit(AbstractInitialiser):
    """Every node at the mean of its prediction, in topological order (DAG only).

    Provided nodes keep their values; free roots start at `root_init(shape)` (zeros).
    All errors of the nodes that are not provided are then zero, so a network whose
    only provided node is its input sits at zero energy ("forward initialisation").
    """

    root_init: Callable[[tuple[int, ...]], jax.Array] = eqx.field(static=True, default=jnp.zeros)
    starts_at_prediction: ClassVar[bool] = True

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        if graph.order is None:
            raise ValueError(
                "Forward initialisation needs a DAG, but this graph has a cycle "
                f"({graph.cycle_hint()}); use `zeros_init` or `normal_init` instead."
            )
        batch = batch_size_of(provided)
        values: Values = {}
        for name in graph.order:
            node = graph.node(name)
            if name in provided:
                values[name] = provided[name]
            elif graph.incoming(name):
                # the provided values travel along: a prior edge (`Bias`, no parents) on
                # a root that comes first takes its batch size from them
                known = {**provided, **values}
                values[name] = node.energy.mean(graph.predict(known, name))
            else:
                values[name] = self.root_init((batch, *node.shape))
        return values


class ZerosInit(AbstractInitialiser):
    """Provided nodes keep their values; every other node starts at zero."""

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        batch = batch_size_of(provided)
        return {
            n.name: provided[n.name] if n.name in provided else jnp.zeros((batch, *n.shape))
            for n in graph.nodes
        }


class NormalInit(AbstractInitialiser):
    """Provided nodes keep their values; every other node starts at N(0, std^2)."""

    std: float = eqx.field(static=True, default=0.1)

    def __check_init__(self) -> None:
        check_positive("std", self.std, hint="e.g. `NormalInit(std=0.1)`.")

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        if key is None:
            raise ValueError("`normal_init` draws random values: pass `key=jax.random.key(...)`.")
        batch = batch_size_of(provided)
        keys = jax.random.split(key, len(graph.nodes))
        return {
            n.name: provided[n.name]
            if n.name in provided
            else self.std * jax.random.normal(k, (batch, *n.shape))
            for n, k in zip(graph.nodes, keys, strict=True)
        }


forward_init = ForwardInit()
zeros_init = ZerosInit()
normal_init = NormalInit()
