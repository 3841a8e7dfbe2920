"""Training algorithms with one signature: `algorithm.step(graph, opt_state, batch, ...)`.

- `IL`: inference learning (thesis Algorithm 1): initialise the values, relax them for
  T steps with the weights fixed, then one weight update at the relaxed values,
  `dtheta = -alpha dE/dtheta` (Eq. 2.5), the energy averaged over the batch.
- `BP`: backpropagation on the same graph: the loss is the energy of the provided nodes
  at the forward pass, so with the same modules, initial weights and optimiser it is the
  baseline PC is compared with everywhere.

`make_train_step` compiles one whole step (initialisation, relaxation, weight update) into
one XLA program with `eqx.filter_jit`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._validation import check_at_least
from .energies import check_node_data, needs_data_check
from .fusion import known_linear_output
from .graph import PCGraph, Values
from .inference import (
    Relaxation,
    check_batch,
    check_free_nodes,
    non_finite_errors,
    raise_if_not_finite,
    relax,
    resolve_value_optimizer,
)
from .init import Initialiser, forward_init

Batch = Mapping[str, jax.Array]


class StepInfo(NamedTuple):
    """What one training step reports."""

    loss: jax.Array  # mean energy per example at the values the weights were updated at
    energy: jax.Array  # (T,) mean energy per example before each relaxation step ((0,) for BP)


def parameters(graph: PCGraph) -> PCGraph:
    """The trainable part of `graph`: its floating-point arrays (others set to None)."""
    return eqx.filter(graph, eqx.is_inexact_array)


def init_optimizer(graph: PCGraph, optimizer: optax.GradientTransformation) -> optax.OptState:
    """Optimiser state for the weights of `graph`."""
    return optimizer.init(parameters(graph))


def update_weights(
    graph: PCGraph,
    opt_state: optax.OptState,
    loss_fn: Callable[[PCGraph], tuple[jax.Array, Any]],
    optimizer: optax.GradientTransformation,
) -> tuple[PCGraph, optax.OptState, jax.Array, Any]:
    """One optimiser step on the weights down the gradient of `loss_fn(graph)`."""
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def loss_of_params(p):
        return loss_fn(eqx.combine(p, static))

    (loss, aux), grads = jax.value_and_grad(loss_of_params, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.combine(optax.apply_updates(params, updates), static), opt_state, loss, aux


class IL(eqx.Module):
    """Inference learning: T relaxation steps on the values, then one weight update
    (or `weight_updates` of them at the same relaxed values)."""

    steps: int = eqx.field(static=True)
    weight_updates: int = eqx.field(static=True)
    record_energy: bool = eqx.field(static=True)
    value_optimizer: optax.GradientTransformation | float = eqx.field(static=True)
    init: Initialiser = eqx.field(static=True)
    check_finite: bool = eqx.field(static=True)
    fuse: bool = eqx.field(static=True)

    def __init__(
        self,
        steps: int = 20,
        *,
        gamma: float | None = None,
        value_optimizer: optax.GradientTransformation | None = None,
        init: Initialiser = forward_init,
        check_finite: bool = True,
        fuse: bool = True,
        weight_updates: int = 1,
        record_energy: bool = True,
    ):
        """Args:
        steps: relaxation steps T per batch (>= 1).
        gamma: SGD step on the values (per example); ignored if `value_optimizer`.
        value_optimizer: any optax transformation for the values instead of SGD.
        init: initialiser of the values (forward initialisation by default).
        check_finite: stop with an error naming the node if an energy is nan/inf.
        fuse: with plain SGD, relax nodes whose prediction is fixed (e.g. the first
            hidden layer, input clamped) in the exact fused form of `pcn.fusion`.
        weight_updates: optimiser steps on the weights per batch, all at the relaxed
            values (non-Gaussian PC paper, section 4.3: several help F_KL). The reported
            loss is the energy before the first of them.
        record_energy: report the energy before each relaxation step (`StepInfo.energy`);
            False skips computing it (an empty trace) for a faster step.
        """
        check_at_least("steps", steps, 1, hint="Inference learning needs T >= 1 steps.")
        check_at_least("weight_updates", weight_updates, 1, hint="Use 1 for the usual Algorithm 1.")
        if gamma is None and value_optimizer is None:
            gamma = 0.1
        self.steps = steps
        self.value_optimizer = resolve_value_optimizer(gamma, value_optimizer)
        self.init = init
        self.check_finite = check_finite
        self.fuse = fuse
        self.weight_updates = weight_updates
        self.record_energy = record_energy

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: jax.Array | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """Clamp the nodes in `batch`, relax the rest, update the weights."""
        check_batch(graph, batch)
        fixed = frozenset(batch)
        check_free_nodes(graph, fixed, {})
        values = self.init(graph, batch, key=key)
        relaxed = relax(
            graph,
            values,
            fixed=fixed,
            masks={},
            steps=self.steps,
            optimizer=self.value_optimizer,
            fuse=self.fuse,
            record=self.record_energy,
            at_prediction=self.init is forward_init,
        )

        def energy_at_relaxed(g: PCGraph) -> tuple[jax.Array, Values]:
            return _mean_energy(g, relaxed.values)

        def energy_at_relaxed_tracked(g: PCGraph) -> tuple[jax.Array, Values]:
            # the first update: the weights are those the relaxation ran with
            return _mean_energy(g, relaxed.values, _tracked_outputs(g, relaxed))

        graph, opt_state, loss, node_energy = update_weights(
            graph, opt_state, energy_at_relaxed_tracked, optimizer
        )
        if self.weight_updates > 1:
            params, static = eqx.partition(graph, eqx.is_inexact_array)

            def one_more(carry, _):
                g, o = carry
                g, o, _, _ = update_weights(eqx.combine(g, static), o, energy_at_relaxed, optimizer)
                return (eqx.filter(g, eqx.is_inexact_array), o), None

            (params, opt_state), _ = jax.lax.scan(
                one_more, (params, opt_state), None, length=self.weight_updates - 1
            )
            graph = eqx.combine(params, static)
        if self.check_finite:
            graph = raise_if_not_finite(node_energy, graph)
        return graph, opt_state, StepInfo(loss, relaxed.energy)


class BP(eqx.Module):
    """Backpropagation through the forward pass of the same graph (the baseline)."""

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: jax.Array | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """One backprop step on the loss `bp_loss(graph, batch)`."""
        check_batch(graph, batch)
        graph, opt_state, loss, _ = update_weights(
            graph, opt_state, lambda g: (bp_loss(g, batch), None), optimizer
        )
        return graph, opt_state, StepInfo(loss, jnp.zeros((0,), loss.dtype))


def bp_loss(graph: PCGraph, batch: Batch) -> jax.Array:
    """Mean over the batch of the energies of the provided nodes that have a prediction,
    with every other node set to its forward prediction: the usual supervised loss
    (squared error for Gaussian outputs, cross-entropy for categorical ones)."""
    missing = [r for r in graph.roots() if r not in batch]
    if missing:
        raise ValueError(
            f"Backprop needs a value for every root node, but {missing} are not in the batch; "
            "BP trains discriminative graphs (use IL for generative ones)."
        )
    inputs = {n: v for n, v in batch.items() if not graph.incoming(n)}
    values = forward_init(graph, inputs)
    targets = [n for n in batch if graph.incoming(n)]
    return sum(
        jnp.mean(graph.node(n).energy.energy(batch[n], graph.predict(values, n))) for n in targets
    )


def _mean_energy(
    graph: PCGraph, values: Values, overrides: Mapping[int, jax.Array] | None = None
) -> tuple[jax.Array, Values]:
    energies = graph.node_energies(values, overrides=overrides)
    return sum(jnp.mean(e) for e in energies.values()), energies


def _tracked_outputs(graph: PCGraph, relaxed: Relaxation) -> dict[int, jax.Array]:
    """The fused nodes' linear edge outputs at the relaxed values, as the relaxation
    tracked them, differentiable by the weights without recomputing the products."""
    overrides = {}
    for index, product in (relaxed.edge_outputs or {}).items():
        edge = graph.edges[index]
        linear = graph.edge_module(edge)
        out = known_linear_output(linear.weight, relaxed.values[edge.parents[0]], product)
        overrides[index] = out if linear.bias is None else out + linear.bias[None]
    return overrides


Algorithm = IL | BP


class TrainState(NamedTuple):
    """Weights and optimiser state of a training run, as one flat tuple of arrays.

    Flat so that each compiled step is dispatched without walking the model's Python
    structure (which costs more than a small step itself); `TrainStep.graph(state)`
    rebuilds the model and `TrainStep.opt_state(state)` the optimiser state.
    """

    leaves: tuple[jax.Array, ...]


class TrainStep:
    """One compiled training step of `algorithm` on models shaped like `graph`.

    >>> from pcn.models import mlp
    >>> graph, x, y = mlp([4, 8, 3], key=jax.random.key(0)), jnp.ones((2, 4)), jnp.eye(3)[:2]
    >>> step = make_train_step(graph, IL(steps=20, gamma=0.1), optax.adam(1e-3))
    >>> state = step.init(graph)
    >>> state, info = step(state, {"x": x, "y": y})
    >>> trained = step.graph(state)
    >>> info.energy.shape, bool(info.energy[-1] < info.energy[0])  # the relaxation descends
    ((20,), True)
    """

    def __init__(
        self, graph: PCGraph, algorithm: Algorithm, optimizer: optax.GradientTransformation
    ):
        self.algorithm = algorithm
        self.optimizer = optimizer
        params, self._static = eqx.partition(graph, eqx.is_inexact_array)
        _, self._treedef = jax.tree.flatten((params, optimizer.init(params)))
        self._compiled = jax.jit(self._step, donate_argnums=0)
        # nodes whose data must be probabilities, checked before each (compiled) step
        self._checked_nodes = tuple(n for n in graph.nodes if needs_data_check(n.energy))

    def init(self, graph: PCGraph, opt_state: optax.OptState | None = None) -> TrainState:
        """The training state of `graph` (a fresh optimiser state unless one is given)."""
        params, static = eqx.partition(graph, eqx.is_inexact_array)
        if opt_state is None:
            opt_state = self.optimizer.init(params)
        leaves, treedef = jax.tree.flatten((params, opt_state))
        if treedef != self._treedef:
            raise ValueError(
                "This graph (or optimiser state) is not shaped like the one the step was made "
                "for; call `make_train_step` with this graph."
            )
        # copies: the compiled step donates (reuses) the buffers of the state it is given
        return TrainState(tuple(jnp.array(leaf, copy=True) for leaf in leaves))

    def graph(self, state: TrainState) -> PCGraph:
        """The model held by `state`."""
        params, _ = jax.tree.unflatten(self._treedef, state.leaves)
        return eqx.combine(params, self._static)

    def opt_state(self, state: TrainState) -> optax.OptState:
        """The weight optimiser's state held by `state`."""
        return jax.tree.unflatten(self._treedef, state.leaves)[1]

    def _step(self, leaves, batch, key):
        params, opt_state = jax.tree.unflatten(self._treedef, leaves)
        graph = eqx.combine(params, self._static)
        graph, opt_state, info = self.algorithm.step(
            graph, opt_state, batch, optimizer=self.optimizer, key=key
        )
        params = eqx.filter(graph, eqx.is_inexact_array)
        return TrainState(tuple(jax.tree.leaves((params, opt_state)))), info

    def __call__(
        self, state: TrainState, batch: Batch, key: jax.Array | None = None
    ) -> tuple[TrainState, StepInfo]:
        """Initialise values, relax, update the weights: one compiled program.

        The buffers of `state` are donated: use the returned state, not the old one.

        Raises:
            NonFiniteEnergyError: an energy became nan or inf (IL with `check_finite`).
            ValueError: a categorical / Bernoulli node's data is not a probability.
        """
        if self._checked_nodes:
            check_node_data(self._checked_nodes, batch)
        with non_finite_errors():
            return self._compiled(state.leaves, batch, key)


def make_train_step(
    graph: PCGraph, algorithm: Algorithm, optimizer: optax.GradientTransformation
) -> TrainStep:
    """One compiled step of `algorithm` with weight optimiser `optimizer` (any optax one)
    for models shaped like `graph`."""
    return TrainStep(graph, algorithm, optimizer)
