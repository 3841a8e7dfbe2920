"""The relaxation engine: the one loop that moves value nodes (no checks; see `pcn.infer`).

    x_{t+1} = x_t + value_optimizer_update(dE/dx_t)      (SGD with step gamma: thesis Eq. 2.4)

All free nodes move in parallel from one `jax.grad` of the total energy (summed over the
batch, so `gamma` is a per-example step); clamped nodes are constants, masked elements
are held. Contributions that only depend on clamped nodes are computed once, before the
loop. `FixedSteps` runs one `lax.scan` (energy trace); `Tolerance` one bounded
`lax.while_loop` in which each example stops moving once its energy changes by less than
`tol` in a step. With plain `SGD` and a fixed number of steps, free nodes whose
prediction cannot change are relaxed in the exact fused form of `pcn._fusion` where that
is cheaper; `Relaxation.mean_energy` then reuses the edge outputs it tracked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._fusion import known_linear_output, plan_fusion, relax_fused
from ._typed import apply_updates, total
from .graph import PCGraph, Values
from .options import SGD, Stop, Tolerance, ValueOptimizer


class Relaxation(NamedTuple):
    """What the engine returns: final values, what it recorded, and (per example) the
    steps taken and whether the stop's condition was met."""

    values: Values
    energy_trace: jax.Array  # (T,) mean energy per example before each step; (0,) if none
    steps: jax.Array  # () int: steps taken (by the slowest example)
    example_steps: jax.Array  # (batch,) int: steps each example moved
    example_converged: jax.Array  # (batch,) bool: met `tol` (always True for FixedSteps)
    example_energy: jax.Array | None = None  # (batch,) at the final values (Tolerance only)
    # outputs W v (no bias) of the fused nodes' linear out-edges at the final values, by
    # edge index, as the fused relaxation tracked them
    edge_outputs: Mapping[int, jax.Array] | None = None

    def mean_energy(self, graph: PCGraph) -> tuple[jax.Array, Values]:
        """Mean energy per example at the relaxed values, and each node's per-example
        energy, as a function of `graph`'s weights (for the weight update).

        `graph` must have the weights the relaxation ran with: the fused nodes' edge
        outputs are read from what the relaxation tracked (differentiable in the weights
        without recomputing the products). For other weights use `mean_energy`."""
        overrides = {}
        for index, product in (self.edge_outputs or {}).items():
            edge = graph.edges[index]
            linear = graph.edge_module(edge)
            out = known_linear_output(linear.weight, self.values[edge.parents[0]], product)
            overrides[index] = out if linear.bias is None else out + linear.bias[None]
        return mean_energy(graph, self.values, overrides)


def mean_energy(
    graph: PCGraph, values: Values, overrides: Mapping[int, jax.Array] | None = None
) -> tuple[jax.Array, Values]:
    """Mean energy per example at `values` and each node's per-example energy."""
    energies = graph._node_energies(values, overrides=overrides)
    return total(jnp.mean(e) for e in energies.values()), energies


def relax(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamped: frozenset[str],
    masks: Mapping[str, jax.Array],
    stop: Stop,
    value_optimizer: ValueOptimizer,
    fuse: bool = True,
    record: bool = True,
    at_prediction: bool = False,
) -> Relaxation:
    """Move the values not in `clamped` (masked elements held) until `stop`.

    Without `record` a fixed-step relaxation computes no energy trace (a training step
    that does not report it runs faster). `at_prediction` promises that the free nodes
    start at their predictions (forward initialisation), which spares the fused form its
    initial-error products.
    """
    batch = next(iter(values.values())).shape[0]
    if isinstance(stop, Tolerance):
        return _relax_to_tolerance(graph, values, clamped, masks, stop, value_optimizer)
    plain_sgd = isinstance(value_optimizer, SGD) and not value_optimizer.momentum
    plan = plan_fusion(graph, clamped, masks) if fuse and plain_sgd else ()
    all_steps = jnp.full((batch,), stop.steps)
    done = jnp.ones((batch,), bool)
    if plan:
        assert isinstance(value_optimizer, SGD)
        fused = relax_fused(
            graph,
            values,
            clamped=clamped,
            masks=masks,
            steps=stop.steps,
            unroll=stop.unroll,
            gamma=value_optimizer.gamma,
            plan=plan,
            record=record,
            at_prediction=at_prediction,
        )
        trace = fused.trace if fused.trace is not None else _no_trace(values)
        return Relaxation(
            fused.values, trace, jnp.asarray(stop.steps), all_steps, done, None, fused.edge_outputs
        )
    optimizer = _as_optax(value_optimizer)
    hoisted = graph._hoist(values, clamped)
    frozen = {n: v for n, v in values.items() if n in clamped}
    free = {n: v for n, v in values.items() if n not in clamped}

    def total_energy(free_values: Values) -> jax.Array:
        full = {**frozen, **free_values}
        energies = graph._node_energies(full, hoisted=hoisted, clamped=clamped)
        return total(jnp.sum(e) for e in energies.values())

    def step(carry, _):
        current, opt_state = carry
        energy, grads = jax.value_and_grad(total_energy)(current)
        updates, opt_state = optimizer.update(grads, opt_state, current)
        new = apply_updates(current, updates)
        for name, mask in masks.items():
            new[name] = jnp.where(mask, current[name], new[name])
        return (new, opt_state), (energy / batch if record else None)

    (free, _), trace = jax.lax.scan(
        step, (free, optimizer.init(free)), length=stop.steps, unroll=stop.unroll
    )
    trace = trace if trace is not None else _no_trace(values)
    return Relaxation({**frozen, **free}, trace, jnp.asarray(stop.steps), all_steps, done)


def _relax_to_tolerance(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    clamped: frozenset[str],
    masks: Mapping[str, jax.Array],
    stop: Tolerance,
    value_optimizer: ValueOptimizer,
) -> Relaxation:
    """The bounded while loop: an example whose energy changed by less than `stop.tol`
    in a step has converged and stops moving; the loop ends when every example has, at
    `stop.max_steps`, or when an energy is no longer finite."""
    optimizer = _as_optax(value_optimizer)
    hoisted = graph._hoist(values, clamped)
    frozen = {n: v for n, v in values.items() if n in clamped}
    free = {n: v for n, v in values.items() if n not in clamped}

    def energy(free_values: Values) -> tuple[jax.Array, jax.Array]:
        full = {**frozen, **free_values}
        per_node = graph._node_energies(full, hoisted=hoisted, clamped=clamped)
        per_example = total(per_node.values())
        return jnp.sum(per_example), per_example

    grad_fn = jax.grad(energy, has_aux=True)

    def cond(carry):
        _, _, e, _, t, done, _ = carry
        return (t < stop.max_steps) & ~jnp.all(done) & jnp.all(jnp.isfinite(e))

    def body(carry):
        current, opt_state, e, grads, t, done, taken = carry
        updates, opt_state = optimizer.update(grads, opt_state, current)
        proposed = apply_updates(current, updates)
        new = {}
        for name, value in current.items():
            held = done.reshape((-1,) + (1,) * (value.ndim - 1))
            if name in masks:
                held = held | masks[name]
            new[name] = jnp.where(held, value, proposed[name])
        new_grads, new_e = grad_fn(new)
        now_done = done | (jnp.abs(e - new_e) < stop.tol)
        taken = taken + (~done).astype(taken.dtype)
        return new, opt_state, new_e, new_grads, t + 1, now_done, taken

    grads0, e0 = grad_fn(free)
    none_done = jnp.zeros(e0.shape, bool)
    no_steps = jnp.zeros(e0.shape, int)
    start = (free, optimizer.init(free), e0, grads0, jnp.asarray(0), none_done, no_steps)
    free, _, e, _, steps, done, taken = jax.lax.while_loop(cond, body, start)
    return Relaxation({**frozen, **free}, _no_trace(values), steps, taken, done, e)


def _as_optax(value_optimizer: ValueOptimizer) -> optax.GradientTransformation:
    return value_optimizer.transform() if isinstance(value_optimizer, SGD) else value_optimizer


def _no_trace(values: Mapping[str, jax.Array]) -> jax.Array:
    """The empty energy trace of a relaxation that did not record one."""
    return jnp.zeros((0,), dtype=next(iter(values.values())).dtype)
