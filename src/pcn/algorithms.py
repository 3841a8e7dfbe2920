"""Training algorithms: implementations of `AbstractAlgorithm`, one compiled step each.

- `IL`: inference learning (thesis Algorithm 1): initialise the values, relax them with
  the weights fixed until the stop (T steps), then one weight update at the relaxed
  values, `dtheta = -alpha dE/dtheta` (Eq. 2.5), the energy averaged over the batch.
- `BP`: backpropagation on the same graph: the loss is the energy of the provided nodes
  at the forward pass (or, with `loss="forward_energy"`, the whole graph's energy there),
  so with the same modules, initial weights and optimiser it is the baseline PC is
  compared with everywhere.
- `pcn.ZIL` (in `pcn.zero_divergence`): Z-IL, exactly backprop's update by PC dynamics.

A new algorithm is one subclass of `AbstractAlgorithm`. `make_train_step` compiles one
whole step (initialisation, relaxation, weight update) into one XLA program.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._checks import check_batch, check_free_nodes
from ._engine import mean_energy, relax
from ._finite import non_finite_errors, raise_if_not_finite
from ._typed import optimizer_init
from ._validation import check_at_least, check_choice
from .energies import check_node_data
from .graph import PCGraph
from .init import AbstractInitialiser, forward_init
from .losses import bp_loss, forward_energy, forward_values
from .options import Stop, ValueOptimizer, as_stop, value_optimizer_of
from .typing import EnergyTrace, Key, Scalar, ValuesIn

Batch = ValuesIn


class StepInfo(NamedTuple):
    """What one training step reports."""

    loss: Scalar  # mean energy per example at the values the weights were updated at
    # (T,) mean energy per example before each relaxation step; (0,) where none is kept
    energy_trace: EnergyTrace


def parameters(graph: PCGraph) -> PCGraph:
    """The trainable part of `graph`: its floating-point arrays (others set to None)."""
    return eqx.filter(graph, eqx.is_inexact_array)


def init_optimizer(graph: PCGraph, optimizer: optax.GradientTransformation) -> optax.OptState:
    """Optimiser state for the weights of `graph`."""
    return optimizer_init(optimizer, parameters(graph))


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
    return eqx.combine(eqx.apply_updates(params, updates), static), opt_state, loss, aux


def repeat_updates(
    graph: PCGraph,
    opt_state: optax.OptState,
    loss_fn: Callable[[PCGraph], tuple[jax.Array, Any]],
    optimizer: optax.GradientTransformation,
    count: int,
) -> tuple[PCGraph, optax.OptState]:
    """`count` more optimiser steps down `loss_fn`, in one `lax.scan`."""
    if count == 0:
        return graph, opt_state
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def one_more(carry, _):
        g, o = carry
        g, o, _, _ = update_weights(eqx.combine(g, static), o, loss_fn, optimizer)
        return (eqx.filter(g, eqx.is_inexact_array), o), None

    (params, opt_state), _ = jax.lax.scan(one_more, (params, opt_state), None, length=count)
    return eqx.combine(params, static), opt_state


class AbstractAlgorithm(eqx.Module):
    """A training algorithm: one step on a batch, inside one compiled program."""

    @abc.abstractmethod
    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """Update the weights of `graph` (weight optimiser `optimizer`) on `batch`, the
        values of the nodes it provides; return the new graph, optimiser state and info."""

    @property
    def stops_on_non_finite_energy(self) -> bool:
        """Whether `step` itself raises, naming the node, when an energy becomes nan or
        inf (then `TrainStep` leaves the loss to it rather than checking it again)."""
        return False


class IL(AbstractAlgorithm):
    """Inference learning: relax the values until `stop` (T steps), then one weight
    update (or `weight_updates` of them at the same relaxed values)."""

    stop: Stop = eqx.field(static=True)
    weight_updates: int = eqx.field(static=True)
    record_energy: bool = eqx.field(static=True)
    value_optimizer: ValueOptimizer = eqx.field(static=True)
    init: AbstractInitialiser = eqx.field(static=True)
    check_finite: bool = eqx.field(static=True)
    fuse: bool = eqx.field(static=True)

    def __init__(
        self,
        stop: int | Stop = 20,
        *,
        gamma: float | None = None,
        value_optimizer: ValueOptimizer | None = None,
        init: AbstractInitialiser = forward_init,
        check_finite: bool = True,
        fuse: bool = True,
        weight_updates: int = 1,
        record_energy: bool = True,
    ):
        """Args:
        stop: relaxation steps T per batch (an int >= 1, or `pcn.FixedSteps(T)`), or
            `pcn.Tolerance(tol, max_steps)`.
        gamma: SGD step on the values (per example), shorthand for
            `value_optimizer=pcn.SGD(gamma)`; 0.1 when neither is given.
        value_optimizer: `pcn.SGD(gamma, momentum=...)` or any optax transformation.
        init: initialiser of the values (forward initialisation by default).
        check_finite: stop with an error naming the node if an energy is nan/inf.
        fuse: with plain SGD and a fixed T, relax nodes whose prediction is fixed (e.g.
            the first hidden layer, input clamped) in an exact fused form.
        weight_updates: optimiser steps on the weights per batch, all at the relaxed
            values (non-Gaussian PC paper, section 4.3: several help F_KL). The reported
            loss is the energy before the first of them.
        record_energy: report the energy before each relaxation step
            (`StepInfo.energy_trace`); False skips computing it for a faster step.
        """
        check_at_least("weight_updates", weight_updates, 1, hint="Use 1 for the usual Algorithm 1.")
        self.stop = as_stop(stop)
        self.value_optimizer = value_optimizer_of(gamma, value_optimizer, default_gamma=0.1)
        self.init = init
        self.check_finite = check_finite
        self.fuse = fuse
        self.weight_updates = weight_updates
        self.record_energy = record_energy

    @property
    def stops_on_non_finite_energy(self) -> bool:
        return self.check_finite

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """Clamp the nodes in `batch`, relax the rest, update the weights."""
        check_batch(graph, batch)
        clamped = frozenset(batch)
        check_free_nodes(graph, clamped)
        values = self.init(graph, batch, key=key)
        relaxed = relax(
            graph,
            values,
            clamped=clamped,
            masks={},
            stop=self.stop,
            value_optimizer=self.value_optimizer,
            fuse=self.fuse,
            record=self.record_energy,
            at_prediction=getattr(self.init, "starts_at_prediction", False),
        )
        # the first update has the weights the relaxation ran with: reuse what it tracked
        graph, opt_state, loss, node_energy = update_weights(
            graph, opt_state, relaxed.mean_energy, optimizer
        )
        graph, opt_state = repeat_updates(
            graph,
            opt_state,
            lambda g: mean_energy(g, relaxed.values),
            optimizer,
            self.weight_updates - 1,
        )
        if self.check_finite:  # tied to the (scalar) loss: checking costs no copy
            loss = raise_if_not_finite(node_energy, loss, data=batch)
        return graph, opt_state, StepInfo(loss, relaxed.energy_trace)


BPLoss = Literal["provided", "forward_energy"]


class BP(AbstractAlgorithm):
    """Backpropagation through the forward pass of the same graph (the baseline).

    `loss="provided"` (the default) is `bp_loss`, the energies of the provided targets;
    `"forward_energy"` is the whole graph's energy at the forward pass (`forward_energy`),
    which also counts energies that are not zero there (a VAE's KL to the prior), so BP
    trains the usual VAE loss through the same graph and modules as PC.
    `weight_updates` optimiser steps are taken on each batch (a control that gives BP as
    many weight updates per batch as PC gets); the reported loss is before the first.
    """

    loss: BPLoss = eqx.field(static=True, default="provided")
    weight_updates: int = eqx.field(static=True, default=1)

    def __check_init__(self) -> None:
        check_choice("loss", self.loss, ("provided", "forward_energy"))
        check_at_least("weight_updates", self.weight_updates, 1, hint="Use 1 for plain BP.")

    def loss_of(self, graph: PCGraph, batch: Batch) -> jax.Array:
        """The mean loss per example that this BP descends."""
        if self.loss == "provided":
            return bp_loss(graph, batch)
        forward_values(graph, batch)  # names missing roots before anything else fails
        return jnp.mean(forward_energy(graph, batch))

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """`weight_updates` backprop steps on `self.loss_of(graph, batch)`."""
        check_batch(graph, batch)

        def loss_fn(g: PCGraph) -> tuple[jax.Array, None]:
            return self.loss_of(g, batch), None

        graph, opt_state, loss, _ = update_weights(graph, opt_state, loss_fn, optimizer)
        graph, opt_state = repeat_updates(
            graph, opt_state, loss_fn, optimizer, self.weight_updates - 1
        )
        return graph, opt_state, StepInfo(loss, jnp.zeros((0,), loss.dtype))


class TrainState(NamedTuple):
    """Weights and optimiser state of a training run, as one flat tuple of arrays.

    Flat so that each compiled step is dispatched without walking the model's Python
    structure (which costs more than a small step itself); `TrainStep.graph(state)`
    rebuilds the model and `TrainStep.opt_state(state)` the optimiser state.
    """

    leaves: tuple[jax.Array, ...]


class TrainStep:
    """One compiled training step of `algorithm` on models shaped like `graph`.

    By default the step does not donate the state it is given: if it raises (a
    non-finite energy, bad data), the state passed in is still valid, so a caller can
    catch the error and retry, say with a smaller value step. `donate=True` lets XLA
    reuse the state's buffers for the new state (one copy of the model and optimiser
    state in memory instead of two); the state passed in is then invalid after the call,
    raising or not, and must not be used again.

    With `check_finite` (the default) the compiled step also checks that the batch holds
    no nan or inf (`NonFiniteDataError`, naming the node: the data is at fault) and that
    the loss it returns is finite (`NonFiniteEnergyError`: the weights diverged); IL's
    own `check_finite` checks the energies during relaxation.

    >>> from pcn.models import mlp
    >>> graph, x, y = mlp([4, 8, 3], key=jax.random.key(0)), jnp.ones((2, 4)), jnp.eye(3)[:2]
    >>> step = make_train_step(graph, IL(20, gamma=0.1), optax.adam(1e-3))
    >>> state = step.init(graph)
    >>> state, info = step(state, {"x": x, "y": y})
    >>> trained = step.graph(state)
    >>> info.energy_trace.shape, bool(info.energy_trace[-1] < info.energy_trace[0])
    ((20,), True)
    """

    def __init__(
        self,
        graph: PCGraph,
        algorithm: AbstractAlgorithm,
        optimizer: optax.GradientTransformation,
        *,
        donate: bool = False,
        check_finite: bool = True,
    ):
        self.algorithm = algorithm
        self.optimizer = optimizer
        self.donate = donate
        self.check_finite = check_finite
        # nodes that receive predictions but predict nothing (a classifier's label, a
        # decoder's image): left out of a batch, such a node is free and learns nothing
        parents = {p for edge in graph.edges for p in edge.parents}
        self._sinks = frozenset(n for n in graph.names if graph.incoming(n) and n not in parents)
        self._warned: set[frozenset[str]] = set()
        params, self._static = eqx.partition(graph, eqx.is_inexact_array)
        _, self._treedef = jax.tree.flatten((params, optimizer.init(params)))
        self._compiled = jax.jit(self._step, donate_argnums=0 if donate else ())
        # nodes whose data must be probabilities, checked before each (compiled) step
        self._checked_nodes = tuple(n for n in graph.nodes if n.energy.checks_data)
        self._names = graph.names

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
        # copies: a donating step reuses the buffers of the state it is given, and even a
        # step that does not must not share buffers with the caller's graph
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
        if self.check_finite and not self.algorithm.stops_on_non_finite_energy:
            # (an algorithm that checks its energies checks the data with them)
            info = info._replace(
                loss=raise_if_not_finite({}, info.loss, data=batch, loss=info.loss)
            )
        return TrainState(tuple(jax.tree.leaves((params, opt_state)))), info

    def _check_batch(self, batch: Batch) -> None:
        """Host-side checks that need no data (kinds, sizes, missing outputs)."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"A batch is a dict {{node name: array}}, got {type(batch).__name__}.")
        for name, value in batch.items():
            if not (hasattr(value, "shape") and hasattr(value, "dtype")):
                raise TypeError(
                    f"The data of node {name!r} is a {type(value).__name__}, not an array; "
                    "pass jnp.asarray(...) (or a numpy array)."
                )
            if value.ndim == 0 or value.shape[0] == 0:
                raise ValueError(
                    f"The batch of node {name!r} holds no example (shape {tuple(value.shape)}); "
                    "a batch needs at least one row."
                )
        missing = self._sinks - set(batch)
        if missing and frozenset(batch) not in self._warned:
            self._warned.add(frozenset(batch))
            warnings.warn(
                f"The batch gives no data for {sorted(missing)}, which the graph predicts but "
                "which predict nothing: left free, their energy relaxes to zero and they teach "
                "the weights nothing. Give their data (the label, the image) in the batch.",
                UserWarning,
                stacklevel=3,
            )

    def __call__(
        self, state: TrainState, batch: Batch, key: Key | None = None
    ) -> tuple[TrainState, StepInfo]:
        """Initialise values, relax, update the weights: one compiled program.

        With `donate=True` the buffers of `state` are reused: use the returned state, not
        the old one. Without (the default), `state` stays valid, also when this raises.

        Raises:
            NonFiniteDataError: (with `check_finite`) the batch holds nan or inf.
            NonFiniteEnergyError: an energy (IL with `check_finite`) or the loss (with
                `check_finite`) became nan or inf.
            ValueError: an empty batch, or a categorical / Bernoulli node's data that is not
                a probability.
            TypeError: a batch that is not a dict of arrays.
        """
        self._check_batch(batch)
        if self._checked_nodes:
            check_node_data(self._checked_nodes, batch)
        with non_finite_errors(self._names):
            return self._compiled(state.leaves, batch, key)


def make_train_step(
    graph: PCGraph,
    algorithm: AbstractAlgorithm,
    optimizer: optax.GradientTransformation,
    *,
    donate: bool = False,
    check_finite: bool = True,
) -> TrainStep:
    """One compiled step of `algorithm` with weight optimiser `optimizer` (any optax one)
    for models shaped like `graph`; `donate` and `check_finite` as in `TrainStep`."""
    return TrainStep(graph, algorithm, optimizer, donate=donate, check_finite=check_finite)
