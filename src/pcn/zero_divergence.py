"""Z-IL (zero-divergence inference learning) on PC graphs: exactly backprop's update.

Thesis Algorithm 2 / 5 and Theorems 1-5: with forward-initialised values, integration
step gamma = 1 and a levelled graph, the prediction error of every node at distance d
from the output equals backprop's delta at step t = d, so updating the edges INTO the
nodes at distance d at step t = d with the PC rule (Eq. 2.5) gives backprop's gradient.

`ZIL` is an algorithm for `make_train_step` like `IL` and `BP`. Its default path runs
that schedule with only the work that can reach a weight update (the error front moves
one level per step, so each step touches one level: the cost of one backward pass);
`faithful=True` runs the full dynamics (every free node updated every step) and exposes
the ablations of the CNN/RNN paper's Appendix H: `gamma != 1`, no forward
initialisation, no level-scheduled update. The weight gradient accumulated over the
schedule is applied by the optimiser once per batch, as backprop's would be.
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._checks import check_batch
from ._typed import optimizer_update, total
from .algorithms import AbstractAlgorithm, Batch, StepInfo
from .energies import Gaussian
from .graph import PCGraph, Values
from .init import forward_init, zeros_init
from .levels import is_levelled, node_levels
from .losses import target_loss


class ZIL(AbstractAlgorithm):
    """Z-IL: level-scheduled weight updates over T = depth steps of gamma = 1 inference."""

    faithful: bool = eqx.field(static=True, default=False)
    gamma: float = eqx.field(static=True, default=1.0)
    forward_init: bool = eqx.field(static=True, default=True)
    level_scheduled: bool = eqx.field(static=True, default=True)

    def __check_init__(self) -> None:
        exact = self.gamma == 1.0 and self.forward_init and self.level_scheduled
        if not self.faithful and not exact:
            raise ValueError(
                "`gamma`, `forward_init` and `level_scheduled` ablations need the full "
                "dynamics: pass `faithful=True`."
            )

    def step(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: Batch,
        *,
        optimizer: optax.GradientTransformation,
        key: jax.Array | None = None,
    ) -> tuple[PCGraph, optax.OptState, StepInfo]:
        """One Z-IL weight update on `batch` (inputs and labels clamped)."""
        check_batch(graph, batch)
        grads, loss, trace = zil_gradients(
            graph,
            batch,
            faithful=self.faithful,
            gamma=self.gamma,
            forward_initialise=self.forward_init,
            level_scheduled=self.level_scheduled,
        )
        params = eqx.filter(graph, eqx.is_inexact_array)
        updates, opt_state = optimizer_update(optimizer, grads, opt_state, params)
        graph = eqx.combine(eqx.apply_updates(params, updates), graph)
        return graph, opt_state, StepInfo(loss, trace)


def _targets(graph: PCGraph, batch: Batch) -> tuple[str, ...]:
    targets = tuple(n for n in batch if graph.incoming(n))
    if not targets:
        raise ValueError("Z-IL needs a clamped output: give a value for a node with a prediction.")
    return targets


def _check_unit_precision(graph: PCGraph, levels: Mapping[str, int], targets) -> None:
    for name, level in levels.items():
        energy = graph.node(name).energy
        if (
            name not in targets
            and level > 0
            and not (isinstance(energy, Gaussian) and energy.precision == 1.0)
        ):
            raise ValueError(
                f"Z-IL equals backprop only when hidden nodes have Gaussian energies of "
                f"precision 1, but node {name!r} has {energy!r}."
            )


def _level_energy(graph: PCGraph, values: Values, nodes: tuple[str, ...]) -> jax.Array:
    """Sum over the batch of the energies of `nodes`."""
    return total(
        jnp.sum(graph.node(n).energy.energy(values[n], graph.predict(values, n))) for n in nodes
    )


def zil_gradients(
    graph: PCGraph,
    batch: Batch,
    *,
    faithful: bool = False,
    gamma: float = 1.0,
    forward_initialise: bool = True,
    level_scheduled: bool = True,
) -> tuple[PCGraph, jax.Array, jax.Array]:
    """The weight gradient Z-IL applies for `batch` (shaped like the graph's parameters,
    averaged over the batch like backprop's), the loss at the forward pass, and the mean
    energy per example at each of the T = depth steps (with `faithful`, of the whole
    graph; otherwise of the level the error front is at)."""
    targets = _targets(graph, batch)
    levels = node_levels(graph, targets)
    _check_unit_precision(graph, levels, targets)
    if not faithful and not is_levelled(graph, targets):
        raise ValueError(
            "Z-IL's exact schedule needs a levelled graph (every path to the output of the "
            "same length); level it with `pcn.level_graph(graph, outputs)`, or pass "
            "`faithful=True` to run the (then inexact) dynamics as they are."
        )
    fixed = frozenset(batch)
    depth = max(levels.values())
    size = next(iter(batch.values())).shape[0]
    inputs = {n: v for n, v in batch.items() if not graph.incoming(n)}
    forward = forward_init(graph, inputs)
    loss = target_loss(graph, batch, forward)
    if forward_initialise:
        values = {**forward, **batch}
    else:
        values = zeros_init(graph, batch)
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    total = jax.tree.map(jnp.zeros_like, params)
    trace = []
    by_level = {d: tuple(n for n, lv in levels.items() if lv == d) for d in range(depth)}
    for t in range(depth):
        level_t = tuple(n for n in by_level[t] if graph.incoming(n))
        if faithful:
            energy, (g_params, g_values) = jax.value_and_grad(
                _total_energy_of_params, argnums=(0, 1)
            )(params, values, static)
            if level_scheduled:  # only the edges into level t learn at step t
                g_params = jax.grad(_level_energy_of_params)(params, values, static, level_t)
            values = {n: v if n in fixed else v - gamma * g_values[n] for n, v in values.items()}
        else:
            # only level t has a non-zero error at step t, and only level t + 1 moves
            energy, (g_params, g_values) = jax.value_and_grad(
                _level_energy_of_params, argnums=(0, 1)
            )(params, values, static, level_t)
            movers = {n for n, lv in levels.items() if lv == t + 1 and n not in fixed}
            values = {n: v - g_values[n] if n in movers else v for n, v in values.items()}
        total = jax.tree.map(jnp.add, total, g_params)
        trace.append(energy / size)
    grads = jax.tree.map(lambda g: g / size, total)
    return grads, loss, jnp.stack(trace)


def _total_energy_of_params(params, values: Values, static) -> jax.Array:
    graph = eqx.combine(params, static)
    return total(jnp.sum(e) for e in graph.node_energies(values).values())


def _level_energy_of_params(params, values: Values, static, nodes: tuple[str, ...]):
    return _level_energy(eqx.combine(params, static), values, nodes)
