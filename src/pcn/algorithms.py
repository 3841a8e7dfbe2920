"""Training algorithms: implementations of `AbstractAlgorithm`, one compiled step each.

- `IL`: inference learning (thesis Algorithm 1): initialise the values, relax them with
  the weights fixed until the stop (T steps), then one weight update at the relaxed
  values, `dtheta = -alpha dE/dtheta` (Eq. 2.5), the energy averaged over the batch.
- `BP`: backpropagation on the same graph: the loss is the energy of the provided nodes
  at the forward pass (or, with `loss="forward_energy"`, the whole graph's energy there),
  so with the same modules, initial weights and optimiser it is the baseline PC is
  compared with everywhere.
- `pcn.ZIL` (in `pcn.zero_divergence`): Z-IL, exactly backprop's update by PC dynamics.
- `pcn.PPC` (in `pcn.ppc`): parallel / incremental PC, a weight step every k value steps
  (k = 1: iPC; k = T: `IL`'s step).

A new algorithm is one subclass of `AbstractAlgorithm`. `make_train_step` compiles one
whole step (initialisation, relaxation, weight update) into one XLA program.
"""

from __future__ import annotations

import abc
import collections
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checks import check_batch, check_free_nodes
from ._engine import mean_energy, relax
from ._finite import step_problems, step_status
from ._typed import is_ready, optimizer_init
from ._validation import check_at_least, check_choice
from .energies import check_node_data
from .graph import PCGraph
from .init import AbstractCarryingInitialiser, AbstractInitialiser, forward_init
from .losses import bp_loss, forward_energy, forward_values
from .options import Stop, ValueOptimizer, as_stop, value_optimizer_of
from .parallel import Parallel
from .parallel import current as current_parallel
from .typing import EnergyTrace, Key, Scalar, ValuesIn

Batch = ValuesIn


class StepInfo(NamedTuple):
    """What one training step reports."""

    loss: Scalar  # mean energy per example at the values the weights were updated at
    # (T,) mean energy per example before each relaxation step; (0,) where none is kept
    energy_trace: EnergyTrace
    # each node's mean energy per example at those values (a relaxation's; empty for BP):
    # what `TrainStep`'s finiteness check names a node by
    node_energy: Mapping[str, Scalar] = {}  # noqa: RUF012 (never mutated)


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


# what to change when a relaxation's energy rises over its value steps, unless the
# algorithm knows better (`AbstractAlgorithm.rising_energy_hint`)
UNSTABLE_RELAXATION_HINT = (
    "The relaxation is unstable: lower the value step (`gamma`), for the stiffest node at least."
)


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
    def rising_energy_hint(self) -> str:
        """What to change when a relaxation's energy rose over its value steps (the
        warning of `TrainStep`)."""
        return UNSTABLE_RELAXATION_HINT

    @property
    def carries(self) -> bool:
        """Whether the step carries state from batch to batch (`start_carry`), so that
        `TrainStep.init` needs the first batch."""
        return False

    def start_carry(self, graph: PCGraph, batch: Batch | None, *, key: Key | None = None) -> Any:
        """What the algorithm carries from one batch to the next (a pytree of arrays; none
        by default), before the first batch `batch`."""
        return ()

    def step_carrying(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        carry: Any,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, Any, StepInfo]:
        """`step`, given and returning the carry (`start_carry`); what `TrainStep` runs."""
        graph, opt_state, info = self.step(graph, opt_state, batch, optimizer=optimizer, key=key)
        return graph, opt_state, carry, info


class AbstractRelaxingAlgorithm(AbstractAlgorithm):
    """An algorithm that starts the free values with an initialiser (`init`, which may
    carry values from batch to batch) and then relaxes them and updates the weights
    (`_train_on`): the batch checks, the carry and the `step` / `step_carrying` plumbing
    that `IL` and `pcn.PPC` share."""

    init: eqx.AbstractVar[AbstractInitialiser]

    @abc.abstractmethod
    def _train_on(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        values: dict[str, jax.Array],
        optimizer: optax.GradientTransformation,
        at_prediction: bool,
    ) -> tuple[PCGraph, optax.OptState, StepInfo, dict[str, jax.Array]]:
        """From the started `values` (at their predictions, if `at_prediction`): relax,
        update the weights; return the graph, optimiser state, info and relaxed values."""

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """Clamp the nodes in `batch`, start the rest with `init`, relax and update."""
        if self.carries:
            raise TypeError(
                f"{type(self).__name__}(init={type(self.init).__name__}(...)) carries values "
                "from batch to batch, so it trains through `make_train_step` (whose state "
                f"carries them), not `{type(self).__name__}.step`."
            )
        check_batch(graph, batch)
        check_free_nodes(graph, frozenset(batch))
        values = self.init(graph, batch, key=key)
        at_prediction = getattr(self.init, "starts_at_prediction", False)
        graph, opt_state, info, _ = self._train_on(
            graph, opt_state, batch, values, optimizer, at_prediction
        )
        return graph, opt_state, info

    @property
    def carries(self) -> bool:
        """Whether the initialiser carries values from batch to batch."""
        return isinstance(self.init, AbstractCarryingInitialiser)

    def start_carry(self, graph: PCGraph, batch: Batch | None, *, key: Key | None = None) -> Any:
        """A carrying initialiser's state before the first batch (else nothing)."""
        if not isinstance(self.init, AbstractCarryingInitialiser):
            return ()
        if batch is None:
            raise ValueError(
                f"{type(self).__name__}(init={type(self.init).__name__}(...)) carries values "
                "from batch to batch and starts from the first one: pass it, "
                "`step.init(graph, batch=first_batch)`."
            )
        check_batch(graph, batch)
        return self.init.start(graph, batch, key=key)

    def step_carrying(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        carry: Any,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: Key | None = None,
    ) -> tuple[PCGraph, optax.OptState, Any, StepInfo]:
        """`step`, the values started from (and the carry advanced by) a carrying
        initialiser."""
        if not isinstance(self.init, AbstractCarryingInitialiser):
            return super().step_carrying(
                graph, opt_state, carry, batch, optimizer=optimizer, key=key
            )
        check_batch(graph, batch)
        check_free_nodes(graph, frozenset(batch))
        values = self.init.initialise(carry, graph, batch, key=key)
        new_graph, opt_state, info, relaxed = self._train_on(
            graph, opt_state, batch, values, optimizer, False
        )
        return new_graph, opt_state, self.init.advance(carry, graph, batch, relaxed), info


class IL(AbstractRelaxingAlgorithm):
    """Inference learning: relax the values until `stop` (T steps), then one weight
    update (or `weight_updates` of them at the same relaxed values)."""

    stop: Stop = eqx.field(static=True)
    weight_updates: int = eqx.field(static=True)
    record_energy: bool = eqx.field(static=True)
    value_optimizer: ValueOptimizer = eqx.field(static=True)
    init: AbstractInitialiser = eqx.field(static=True)
    fuse: bool = eqx.field(static=True)

    def __init__(
        self,
        stop: int | Stop = 20,
        *,
        gamma: float | None = None,
        value_optimizer: ValueOptimizer | None = None,
        init: AbstractInitialiser = forward_init,
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
        self.fuse = fuse
        self.weight_updates = weight_updates
        self.record_energy = record_energy

    def _train_on(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        values: dict[str, jax.Array],
        optimizer: optax.GradientTransformation,
        at_prediction: bool,
    ) -> tuple[PCGraph, optax.OptState, StepInfo, dict[str, jax.Array]]:
        """Relax `values` with the nodes of `batch` clamped, then update the weights."""
        clamped = frozenset(batch)
        relaxed = relax(
            graph,
            values,
            clamped=clamped,
            masks={},
            stop=self.stop,
            value_optimizer=self.value_optimizer,
            fuse=self.fuse,
            record=self.record_energy,
            at_prediction=at_prediction,
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
        per_node = {name: jnp.mean(energy) for name, energy in node_energy.items()}
        info = StepInfo(loss, relaxed.energy_trace, per_node)
        return graph, opt_state, info, relaxed.values


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
    """Weights, optimiser state and the algorithm's carry (`start_carry`: a carrying
    initialiser's values) of a training run, as one flat tuple of arrays.

    Flat so that each compiled step is dispatched without walking the model's Python
    structure (which costs more than a small step itself); `TrainStep.graph(state)`
    rebuilds the model and `TrainStep.opt_state(state)` the optimiser state.
    """

    leaves: tuple[jax.Array, ...]


# a step's status: the low bits a problem code (0: none, else 1 + its index), this bit
# a relaxation whose energy rose over the steps
_ROSE = 1 << 16
_CODE = _ROSE - 1
# Statuses are read in bursts, once this many are unread, and only those of finished
# steps: reading each step's status as it finishes, or waiting for one, cost up to 10%
# of a 1 ms BP step (benchmarks/README.md). Past `_MOST_UNCHECKED` a call waits.
_READ_AT = 16
_MOST_UNCHECKED = 256


class TrainStep:
    """One compiled training step of `algorithm` on models shaped like `graph`.

    With `check_finite` (the default) the step checks that the batch holds no nan or
    inf (`NonFiniteDataError`, naming the node: the data is at fault), that no node's
    energy became nan or inf (`NonFiniteEnergyError`, naming the node: lower `gamma`) and
    that the loss is finite (`NonFiniteEnergyError`: the weights diverged). A step that
    fails a check skips its own update: the state it returns is the state it was given
    (and its `info.loss` is nan). The error is raised on the host by a later call,
    before that call runs, or by `check()` and `graph(state)`: raising inside the program
    at the failing call would cost 5-15% of a small step (see benchmarks/README.md). It
    names the failing call; the state the caller holds then is finite and valid, so
    catching the error and retrying (say with a smaller value step) works. A relaxation
    whose energy rose over its steps (an unstable value step) gives one warning.

    With `parallel` (`pcn.parallel.data_parallel(devices)` or `model_parallel(...)`, or
    by default the one a `pcn.parallel.use` block sets) the step is data parallel:
    each batch is split over the devices of the mesh's data axis (its size a multiple of
    theirs), the state is replicated (with a model axis, its large arrays split over
    it), and XLA partitions the one program (a relaxation needs no communication; each
    weight update, one all-reduce). The numbers are those of one device up to the order
    of the batch sums.

    By default the step does not donate the state it is given: the state passed in stays
    valid after the call. `donate=True` lets XLA reuse the state's buffers for the new
    state (one copy of the model and optimiser state in memory instead of two); the
    state passed in is then invalid once the call has run and must not be used again
    (an error of an earlier call is raised before the state is given to the program).

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
        parallel: Parallel | None = None,
    ):
        self.algorithm = algorithm
        self.parallel = parallel if parallel is not None else current_parallel()
        self.optimizer = optimizer
        self.donate = donate
        self.check_finite = check_finite
        # nodes that receive predictions but predict nothing (a classifier's label, a
        # decoder's image): left out of a batch, such a node is free and learns nothing
        parents = {p for edge in graph.edges for p in edge.parents}
        self._sinks = frozenset(n for n in graph.names if graph.incoming(n) and n not in parents)
        self._warned: set[frozenset[str]] = set()
        params, self._static = eqx.partition(graph, eqx.is_inexact_array)
        # shapes only: a model too large for one device is never allocated here
        opt_shapes = jax.eval_shape(optimizer.init, params)
        model_leaves, self._treedef = jax.tree.flatten((params, opt_shapes))
        self._model_leaves = len(model_leaves)  # the carry's leaves come after these
        self._carry_treedef = jax.tree.structure(())
        self._compiled = jax.jit(self._step, donate_argnums=0 if donate else ())
        # a parallel step: (state shardings, compiled step) per state layout (`_on_mesh`)
        self._sharded: dict[tuple, tuple[tuple, Any]] = {}
        # nodes whose data must be probabilities, checked before each (compiled) step
        self._checked_nodes = tuple(n for n in graph.nodes if n.energy.checks_data)
        self._calls = 0
        # (call number, status) of the steps whose status is not read yet
        self._unchecked: collections.deque[tuple[int, jax.Array]] = collections.deque()
        self._names = graph.names
        self._problems = step_problems(self._names)
        self._rose_warned = False

    def init(
        self,
        graph: PCGraph,
        opt_state: optax.OptState | None = None,
        *,
        batch: Batch | None = None,
        key: Key | None = None,
    ) -> TrainState:
        """The training state of `graph` (a fresh optimiser state unless one is given).

        `batch` (the first batch) is needed by an algorithm that carries values from
        batch to batch (`IL` with a carrying initialiser such as `pcn.NullInit`)."""
        params, static = eqx.partition(graph, eqx.is_inexact_array)
        if opt_state is None:
            opt_state = self.optimizer.init(params)
        leaves, treedef = jax.tree.flatten((params, opt_state))
        if treedef != self._treedef:
            raise ValueError(
                "This graph (or optimiser state) is not shaped like the one the step was made "
                "for; call `make_train_step` with this graph."
            )
        carry = self.algorithm.start_carry(graph, batch, key=key)
        carry_leaves, self._carry_treedef = jax.tree.flatten(carry)
        # copies: a donating step reuses the buffers of the state it is given, and even a
        # step that does not must not share buffers with the caller's graph
        return TrainState(tuple(jnp.array(leaf, copy=True) for leaf in (*leaves, *carry_leaves)))

    def graph(self, state: TrainState) -> PCGraph:
        """The model held by `state` (after `check()`: an earlier step's error is raised)."""
        self.check()
        params, _ = jax.tree.unflatten(self._treedef, state.leaves[: self._model_leaves])
        return eqx.combine(params, self._static)

    def opt_state(self, state: TrainState) -> optax.OptState:
        """The weight optimiser's state held by `state`."""
        return jax.tree.unflatten(self._treedef, state.leaves[: self._model_leaves])[1]

    def carry(self, state: TrainState) -> Any:
        """The algorithm's carry held by `state` (a carrying initialiser's values)."""
        return jax.tree.unflatten(self._carry_treedef, state.leaves[self._model_leaves :])

    def check(self) -> None:
        """Wait for the steps run so far and raise the error of the first that failed a
        finiteness check (the others' too are then forgotten)."""
        while self._unchecked:
            self._report(wait=True)

    def _report(self, *, wait: bool) -> None:
        """Read the statuses of finished steps (with `wait`, the oldest even if it has
        not finished): warn once for a rising relaxation, raise a failed step's error."""
        while self._unchecked and (wait or is_ready(self._unchecked[0][1])):
            wait = False
            call, status_array = self._unchecked.popleft()
            status = int(np.asarray(status_array))
            if status & _ROSE and not self._rose_warned:
                self._rose_warned = True
                warnings.warn(
                    f"In call {call} of this training step the relaxation energy rose "
                    f"over the value steps. {self.algorithm.rising_energy_hint}",
                    RuntimeWarning,
                    stacklevel=4,
                )
            code = status & _CODE
            if code:
                self._unchecked.clear()
                error, message = self._problems[code - 1]
                after = self._calls - call
                later = {0: "", 1: f"; call {call + 1} ran on after it"}.get(
                    after, f"; calls {call + 1}-{self._calls} ran on after it"
                )
                raise error(
                    f"{message} (Call {call} of this training step: its update was "
                    f"skipped, the state it returned is the one it was given{later}.)"
                )

    def _step(self, leaves, batch, key):
        params, opt_state = jax.tree.unflatten(self._treedef, leaves[: self._model_leaves])
        carry = jax.tree.unflatten(self._carry_treedef, leaves[self._model_leaves :])
        graph = eqx.combine(params, self._static)
        graph, opt_state, carry, info = self.algorithm.step_carrying(
            graph, opt_state, carry, batch, optimizer=self.optimizer, key=key
        )
        params = eqx.filter(graph, eqx.is_inexact_array)
        new = tuple(jax.tree.leaves((params, opt_state, carry)))
        return self._finish(leaves, new, batch, info)

    def _finish(self, leaves, new, batch, info: StepInfo):
        """The checks of a step: with `check_finite`, the state `new` if the batch, every
        node's energy and the loss are finite, else `leaves` (the update skipped), and
        the status code `_report` reads."""
        if not self.check_finite:
            return TrainState(new), info, jnp.zeros((), jnp.int32)
        code = step_status(self._names, data=batch, node_energy=info.node_energy, loss=info.loss)
        ok = code == 0
        # a failed step is not applied (a select, which XLA fuses into the update)
        new = tuple(jnp.where(ok, n, old) for n, old in zip(new, leaves, strict=True))
        info = info._replace(loss=jnp.where(ok, info.loss, jnp.nan))
        trace = info.energy_trace
        status = code
        if trace.shape[0] > 1:
            rose = trace[-1] - trace[0] > 0.01 * jnp.abs(trace[0])
            status = status + jnp.where(rose, _ROSE, 0).astype(jnp.int32)
        return TrainState(new), info, status

    def _on_mesh(self, leaves: tuple[jax.Array, ...]) -> tuple[tuple[jax.Array, ...], Any]:
        """The state moved to its shardings on the mesh (a state from another mesh or one
        device moves too), and the step compiled for them: the batch split over the data
        axis, the state kept where it is. Both are made once per state layout."""
        assert self.parallel is not None
        layout = tuple((leaf.shape, leaf.dtype) for leaf in leaves)
        if layout not in self._sharded:
            shardings = tuple(self.parallel.leaf_sharding(leaf) for leaf in leaves)
            whole = self.parallel.replicated
            compiled = jax.jit(
                self._step,
                in_shardings=(shardings, self.parallel.split, whole),
                # the state comes back as a TrainState of leaves sharded as they went in
                out_shardings=(TrainState(shardings), whole, whole),  # type: ignore[arg-type]
                donate_argnums=0 if self.donate else (),
            )
            self._sharded[layout] = (shardings, compiled)
        shardings, compiled = self._sharded[layout]
        return jax.device_put(leaves, shardings), compiled

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
        the old one. Without (the default), `state` stays valid.

        Raises (for an earlier call, before this one runs; see the class docstring):
            NonFiniteDataError: (with `check_finite`) a batch held nan or inf.
            NonFiniteEnergyError: (with `check_finite`) an energy or the loss became nan
                or inf.
        Raises (for this call):
            ValueError: an empty batch, or a categorical / Bernoulli node's data that is not
                a probability.
            TypeError: a batch that is not a dict of arrays.
        """
        self._check_batch(batch)
        if self.parallel is not None:
            self.parallel.check_batch(batch)
        if self._checked_nodes:
            check_node_data(self._checked_nodes, batch)
        if len(self._unchecked) >= _READ_AT:
            self._report(wait=len(self._unchecked) >= _MOST_UNCHECKED)
        leaves, compiled = state.leaves, self._compiled
        if self.parallel is not None:
            leaves, compiled = self._on_mesh(leaves)
            batch = self.parallel.place_batch(batch)
        leaves, info, status = compiled(leaves, batch, key)
        self._calls += 1
        if self.check_finite:
            self._unchecked.append((self._calls, status))
        return leaves, info


def make_train_step(
    graph: PCGraph,
    algorithm: AbstractAlgorithm,
    optimizer: optax.GradientTransformation,
    *,
    donate: bool = False,
    check_finite: bool = True,
    parallel: Parallel | None = None,
) -> TrainStep:
    """One compiled step of `algorithm` with weight optimiser `optimizer` (any optax one)
    for models shaped like `graph`; `donate`, `check_finite` and `parallel` (data
    parallel over a mesh, `pcn.parallel.data_parallel`) as in `TrainStep`."""
    return TrainStep(
        graph, algorithm, optimizer, donate=donate, check_finite=check_finite, parallel=parallel
    )
