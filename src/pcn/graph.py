"""The one object every model is: a graph of value nodes with an energy.

A `Node` holds the activities of one group of neurons (batch-first) and owns its energy
family. An `Edge` is an Equinox module mapping the values of its parent nodes to a
contribution to its child's prediction. A node's prediction is

    mu_c = activation_c( sum over edges e into c of e.module(*parents of e) )      (thesis Eq. 2.1)

and the energy of the graph is the sum of the node energies `E_c(x_c, mu_c)` (Eq. 2.3).
Cycles are allowed; only forward initialisation and Z-IL need a DAG. Nodes without
incoming edges (roots) carry no energy: give one a prior by adding an edge with no
parents (for example `Bias`).

Edge modules act on ONE example (Equinox convention); the graph maps them over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp

from ._typed import total
from .activations import Activation, get_activation, identity
from .energies import AbstractEnergy, Gaussian
from .typing import NodeArray, PerExample, Values, ValuesIn


class Node(eqx.Module):
    """A group of value nodes: name, per-example shape, energy family, activation of mu."""

    name: str = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    energy: AbstractEnergy
    activation: Activation = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        shape: int | Iterable[int],
        *,
        energy: AbstractEnergy | None = None,
        activation: str | Activation = identity,
    ):
        self.name = name
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in self.shape):
            raise ValueError(
                f"Node {name!r} needs a shape of integers >= 1 (a width of at least one "
                f"neuron), got {self.shape}."
            )
        if energy is not None and not isinstance(energy, AbstractEnergy):
            raise TypeError(
                f"The energy of node {name!r} must be a `pcn.energies.AbstractEnergy` (e.g. "
                f"`pcn.Gaussian()`), got {type(energy).__name__}; a new family subclasses it."
            )
        self.energy = Gaussian() if energy is None else energy
        self.activation = get_activation(activation)


class Edge(eqx.Module):
    """A parameterised map from the values of `parents` to a contribution to `child`'s mu.

    `module` is an Equinox module, or the name of one in the graph's `shared` modules
    (the same weights on several edges: an unrolled RNN, tied layers).
    """

    module: Callable | str = eqx.field(static=False)
    parents: tuple[str, ...] = eqx.field(static=True)
    child: str = eqx.field(static=True)

    def __init__(self, module: Callable | str, parents: str | Iterable[str], child: str):
        self.module = module
        self.parents = (parents,) if isinstance(parents, str) else tuple(parents)
        self.child = child


class Bias(eqx.Module):
    """An edge module with no inputs: a learned constant prediction (a prior mean)."""

    value: jax.Array

    def __call__(self) -> jax.Array:
        return self.value


def _topological_prefix(names: tuple[str, ...], edges: tuple[Edge, ...]) -> list[str]:
    """Kahn's algorithm over parent -> child: the nodes that can be ordered (all of them
    exactly when the graph is a DAG)."""
    parents = {n: {p for e in edges if e.child == n for p in e.parents} for n in names}
    order: list[str] = []
    while True:
        ready = [n for n in names if n not in order and parents[n] <= set(order)]
        if not ready:
            return order
        order.extend(ready)


class PCGraph(eqx.Module):
    """Value nodes and the edges between them; predictions and energy of given values.

    Values are a dict `{node name: array of shape (batch, *node.shape)}`.
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    shared: dict[str, Callable]
    order: tuple[str, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        shared: Mapping[str, Callable] | None = None,
    ):
        """`shared` names modules that edges refer to by name (weights used on several
        edges, trained as one)."""
        self.nodes = tuple(nodes)
        self.edges = tuple(edges)
        self.shared = dict(shared or {})
        names = [n.name for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Node names must be unique; {duplicates} appear more than once.")
        for i, edge in enumerate(self.edges):
            for end in (*edge.parents, edge.child):
                if end not in names:
                    raise ValueError(
                        f"Edge {i} ({edge.parents} -> {edge.child!r}) refers to node {end!r}, "
                        f"which is not in the graph; nodes are {names}."
                    )
        for i, edge in enumerate(self.edges):
            if isinstance(edge.module, str) and edge.module not in self.shared:
                raise ValueError(
                    f"Edge {i} ({edge.parents} -> {edge.child!r}) uses shared module "
                    f"{edge.module!r}, but `shared` has only {sorted(self.shared)}."
                )
        prefix = _topological_prefix(tuple(names), self.edges)
        self.order = tuple(prefix) if len(prefix) == len(names) else None
        self._check_edge_shapes()

    def _check_edge_shapes(self) -> None:
        for i, edge in enumerate(self.edges):
            # check with the module's own float dtype (float64 models under x64)
            leaves = jax.tree.leaves(eqx.filter(self.edge_module(edge), eqx.is_inexact_array))
            dtype = leaves[0].dtype if leaves else jnp.result_type(float)
            args = [jax.ShapeDtypeStruct(self.node(p).shape, dtype) for p in edge.parents]
            try:
                out = eqx.filter_eval_shape(self.edge_module(edge), *args)
            except Exception as err:
                raise ValueError(
                    f"Edge {i} ({edge.parents} -> {edge.child!r}) fails on inputs of shapes "
                    f"{[a.shape for a in args]}: {err}"
                ) from err
            expected = self.node(edge.child).shape
            if not hasattr(out, "shape") or tuple(out.shape) != expected:
                got = getattr(out, "shape", type(out).__name__)
                raise ValueError(
                    f"Edge {i} ({edge.parents} -> {edge.child!r}) outputs shape {tuple(got)} per "
                    f"example, but node {edge.child!r} has shape {expected}; make the edge "
                    "module's output match the child node."
                )

    # --- structure -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def _presenters(self) -> dict[str, Callable[[jax.Array], jax.Array]]:
        """How each node's value is presented to its children (its energy's `present`)."""
        return {n.name: n.energy.present for n in self.nodes}

    def edge_module(self, edge: Edge) -> Callable:
        """The module of `edge` (looked up in `shared` when the edge names one)."""
        return self.shared[edge.module] if isinstance(edge.module, str) else edge.module

    def node(self, name: str) -> Node:
        """The node called `name`."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"No node {name!r} in the graph; nodes are {list(self.names)}.")

    def incoming(self, name: str) -> tuple[Edge, ...]:
        """Edges into node `name`."""
        return tuple(e for e in self.edges if e.child == name)

    def roots(self) -> tuple[str, ...]:
        """Nodes with no incoming edge (they carry no energy)."""
        return tuple(n for n in self.names if not self.incoming(n))

    def cycle_hint(self) -> str:
        """A human-readable note on why the graph is not a DAG (empty for a DAG)."""
        if self.order is not None:
            return ""
        placed = set(_topological_prefix(self.names, self.edges))
        stuck = [n for n in self.names if n not in placed]
        return f"nodes {stuck} lie on or after a cycle"

    # --- maths -----------------------------------------------------------------------
    def predict(self, values: ValuesIn, name: str) -> NodeArray:
        """mu of node `name` (Eq. 2.1): activation of the summed incoming contributions."""
        return self._predict(values, name)

    def node_energies(self, values: ValuesIn) -> dict[str, PerExample]:
        """Per-example energy of every node that has a prediction: `{name: (batch,)}`."""
        return self._node_energies(values)

    def energy(self, values: ValuesIn) -> PerExample:
        """Total energy per example, shape `(batch,)` (thesis Eq. 2.3)."""
        return total(self.node_energies(values).values())

    # --- for the relaxation engine (pcn._engine): hoisted and tracked contributions ----
    def _hoist(self, values: Mapping[str, jax.Array], clamped: frozenset[str]) -> Values:
        """Contributions that cannot change while only nodes outside `clamped` move:
        `{child: summed contribution}` of the edges whose parents are all clamped (and of
        parent-less edges), computed once per batch instead of once per step."""
        hoisted: Values = {}
        for edge in self.edges:
            if set(edge.parents) <= clamped:
                out = _edge_output(
                    self.edge_module(edge),
                    edge,
                    values,
                    self.node(edge.child).shape,
                    self._presenters,
                )
                prev = hoisted.get(edge.child)
                hoisted[edge.child] = out if prev is None else prev + out
        return hoisted

    def _predict(
        self,
        values: Mapping[str, jax.Array],
        name: str,
        *,
        hoisted: Mapping[str, jax.Array] | None = None,
        clamped: frozenset[str] = frozenset(),
        overrides: Mapping[int, jax.Array] | None = None,
    ) -> jax.Array:
        """`predict`, reading edges whose parents are all in `clamped` from
        `hoisted = graph._hoist(values, clamped)`, and the edges indexed (in `self.edges`)
        by `overrides` from their given outputs instead of calling them."""
        total = None if hoisted is None else hoisted.get(name)
        for index, edge in enumerate(self.edges):
            if edge.child != name:
                continue
            if hoisted is not None and set(edge.parents) <= clamped:
                continue  # already summed into `hoisted`
            if overrides is not None and index in overrides:
                out = overrides[index]
            else:
                out = _edge_output(
                    self.edge_module(edge), edge, values, self.node(name).shape, self._presenters
                )
            total = out if total is None else total + out
        if total is None:
            raise ValueError(f"Node {name!r} has no incoming edge, so it has no prediction.")
        return self.node(name).activation(total)

    def _node_energies(
        self,
        values: Mapping[str, jax.Array],
        *,
        hoisted: Mapping[str, jax.Array] | None = None,
        clamped: frozenset[str] = frozenset(),
        overrides: Mapping[int, jax.Array] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> Values:
        """`node_energies` without the nodes in `exclude`; the rest as in `_predict`."""
        return {
            node.name: node.energy.energy(
                values[node.name],
                self._predict(
                    values, node.name, hoisted=hoisted, clamped=clamped, overrides=overrides
                ),
            )
            for node in self.nodes
            if self.incoming(node.name) and node.name not in exclude
        }


def _edge_output(
    module: Callable,
    edge: Edge,
    values: Mapping[str, jax.Array],
    shape: tuple[int, ...],
    present: Mapping[str, Callable[[jax.Array], jax.Array]],
) -> jax.Array:
    if edge.parents:
        return jax.vmap(module)(*(present[p](values[p]) for p in edge.parents))
    batch = next(iter(values.values())).shape[0]
    return jnp.broadcast_to(module(), (batch, *shape))
