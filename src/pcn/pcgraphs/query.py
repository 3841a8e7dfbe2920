"""Querying a trained PC graph (thesis section 5.1): by conditioning and by initialisation.

- Query by conditioning (Eq. 5.5): chosen value nodes (whole groups, or elements picked
  by a boolean mask) are FIXED to a stimulus for every t; the others relax to the
  minimum of the energy given them.
- Query by initialisation (Eq. 5.6): chosen value nodes only START at the stimulus;
  every value node then relaxes.

Both run SGD on the free values, `x <- x - gamma dE/dx` (Eq. 5.3), inside one jitted
`lax.while_loop`. An example whose energy changed by less than `tol` in a step has
converged and stops moving; the loop ends when every example has, or after `max_steps`
steps. The result says, for the batch and for each example, how many steps were taken and
whether `tol` was met. An energy that becomes nan or inf raises `pcn.NonFiniteEnergyError`
naming the node (the value step `gamma` is too large) rather than returning nan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_at_least, check_positive
from ..graph import PCGraph, Values
from ..inference import check_batch, check_free_nodes, non_finite_errors
from .topology import Topology

FixedSpec = jax.Array | tuple[jax.Array, jax.Array]


class QueryResult(NamedTuple):
    """Relaxed values, steps taken, final energy per example, whether `tol` was met
    (for the whole batch, and per example)."""

    values: Values
    steps: jax.Array  # () int: relaxation steps taken (by the slowest example)
    energy: jax.Array  # (batch,): energy (Eq. 5.2) of each example at the final values
    converged: jax.Array  # () bool: every example met `tol` (False at the cap)
    example_steps: jax.Array  # (batch,) int: steps each example took until it converged
    example_converged: jax.Array  # (batch,) bool: the example met `tol` within the cap


def _start_values(
    graph: PCGraph,
    given: Mapping[str, jax.Array],
    batch: int,
    key: jax.Array | None,
    std: float,
) -> Values:
    """`given` values, the other nodes at zero (or N(0, std^2) with a `key`)."""
    keys = jax.random.split(key, len(graph.nodes)) if key is not None else [None] * len(graph.nodes)
    out: Values = {}
    for node, k in zip(graph.nodes, keys, strict=True):
        if node.name in given:
            out[node.name] = jnp.asarray(given[node.name])
        elif k is None:
            out[node.name] = jnp.zeros((batch, *node.shape))
        else:
            out[node.name] = std * jax.random.normal(k, (batch, *node.shape))
    return out


def _batch_of(*dicts: Mapping[str, jax.Array]) -> int:
    sizes = {v.shape[0] for d in dicts for v in d.values()}
    if not sizes:
        raise ValueError("No values given: the batch size is unknown; pass at least one node.")
    if len(sizes) > 1:
        raise ValueError(f"The given values disagree on the batch size: {sorted(sizes)}.")
    return sizes.pop()


def _check_relax_settings(tol: float, max_steps: int, gamma: float, momentum: float) -> None:
    check_at_least("max_steps", max_steps, 1, hint="Relaxation needs at least one step.")
    check_positive("gamma", gamma, hint="It is the SGD step on the values (Eq. 5.3).")
    if not tol >= 0:
        raise ValueError(f"`tol` must be >= 0, got {tol!r}.")
    if not 0 <= momentum < 1:
        raise ValueError(
            f"`momentum` must be in [0, 1), got {momentum!r}; 0 is plain SGD (Eq. 5.3)."
        )


def condition(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    fixed: Mapping[str, FixedSpec],
    *,
    tol: float = 1e-6,
    max_steps: int = 1000,
    gamma: float = 0.1,
    momentum: float = 0.0,
    key: jax.Array | None = None,
    std: float = 0.1,
    check_finite: bool = True,
) -> QueryResult:
    """Query by conditioning (Eq. 5.5): fix `fixed`, relax the rest until converged.

    Args:
        graph: the trained PC graph.
        values: starting values of any nodes (`{name: (batch, *shape)}`); the others start
            at zero, or at N(0, std^2) if `key` is given ("randomly re-initialised").
        fixed: `{name: array}` fixes a whole node; `{name: (array, mask)}` fixes the
            elements where the boolean `mask` (broadcastable to the values) is True.
        tol: an example has converged (and stops moving) once its energy changes by
            less than `tol` in a step; the query stops when every example has.
        max_steps: cap on the relaxation steps.
        gamma: SGD step on the values.
        momentum: heavy-ball momentum of that SGD (0: plain SGD, Eq. 5.3). Near 1 it
            speeds up the slow directions of a stiff graph (a deep one whose stable
            `gamma` is small) without changing the minimum it converges to.
        check_finite: raise if an energy becomes nan or inf (else return what there is).

    Raises:
        ValueError: an unknown node, a shape that does not match, or a query that fixes
            every node (nothing to infer).
        NonFiniteEnergyError: (with `check_finite`) an energy became nan or inf; the
            message names the node. Lower `gamma`.
    """
    _check_relax_settings(tol, max_steps, gamma, momentum)
    whole, masks, targets = {}, {}, {}
    for name, spec in fixed.items():
        if name not in graph.names:
            raise ValueError(
                f"The query fixes node {name!r}, which is not in the graph; "
                f"nodes are {list(graph.names)}."
            )
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"Fix node {name!r} with an array or an (array, mask) pair.")
            targets[name], masks[name] = jnp.asarray(spec[0]), spec[1]
        else:
            whole[name] = jnp.asarray(spec)
    check_batch(graph, {**values, **whole, **targets})
    batch = _batch_of(values, whole, targets)
    start = _start_values(graph, {**values, **whole}, batch, key, std)
    for name, mask in masks.items():
        try:
            mask = jnp.broadcast_to(jnp.asarray(mask, dtype=bool), start[name].shape)
        except ValueError:
            raise ValueError(
                f"The mask fixing node {name!r} has shape {np.shape(mask)}, which does not "
                f"broadcast to the node's values {start[name].shape}."
            ) from None
        masks[name] = mask
        start[name] = jnp.where(mask, targets[name], start[name])
    fully = frozenset(whole) | frozenset(
        n for n, m in masks.items() if not isinstance(m, jax.core.Tracer) and bool(jnp.all(m))
    )
    if fully == frozenset(graph.names):
        raise ValueError(
            "The query fixes every node, so there is nothing to infer; leave some "
            "neurons free (or use `initialise` to only set starting values)."
        )
    masks = {n: m for n, m in masks.items() if n not in fully}
    check_free_nodes(graph, fully, masks)
    return _run(graph, start, masks, fully, tol, max_steps, gamma, momentum, check_finite)


def initialise(
    graph: PCGraph,
    start_values: Mapping[str, jax.Array],
    *,
    tol: float = 1e-6,
    max_steps: int = 1000,
    gamma: float = 0.1,
    momentum: float = 0.0,
    key: jax.Array | None = None,
    std: float = 0.1,
    check_finite: bool = True,
) -> QueryResult:
    """Query by initialisation (Eq. 5.6): `start_values` set the values at t = 0 only
    (other nodes: zero, or N(0, std^2) with `key`); every node then relaxes until
    converged. Arguments and errors as in `condition`."""
    _check_relax_settings(tol, max_steps, gamma, momentum)
    check_batch(graph, start_values)
    start = _start_values(graph, start_values, _batch_of(start_values), key, std)
    check_free_nodes(graph, frozenset(), {})
    return _run(graph, start, {}, frozenset(), tol, max_steps, gamma, momentum, check_finite)


def _run(graph, start, masks, fixed, tol, max_steps, gamma, momentum, check_finite) -> QueryResult:
    """The compiled relaxation, a non-finite energy turned into a plain error."""
    with non_finite_errors():
        settings = _traced(tol, max_steps, gamma, momentum)
        return _relax_until(graph, start, masks, fixed, *settings, check_finite=check_finite)


def _traced(tol: float, max_steps: int, gamma: float, momentum: float) -> tuple[jax.Array, ...]:
    """The settings as arrays: traced, so a new tolerance or cap does not recompile."""
    dtype = jnp.result_type(float)
    return (
        jnp.asarray(tol, dtype),
        jnp.asarray(max_steps),
        jnp.asarray(gamma, dtype),
        jnp.asarray(momentum, dtype),
    )


_NON_FINITE_HINT = (
    "The energy of node {name!r} became non-finite (nan or inf) during the query. The "
    "value step is too large for this graph: lower the query's `gamma` (a fully connected "
    "graph wants a smaller one than training used)."
)


@eqx.filter_jit
def _relax_until(
    graph: PCGraph,
    values: Values,
    masks: Mapping[str, jax.Array],
    fixed: frozenset[str],
    tol: jax.Array,
    max_steps: jax.Array,
    gamma: jax.Array,
    momentum: jax.Array,
    *,
    check_finite: bool = True,
) -> QueryResult:
    """SGD (heavy-ball momentum, if set) on the values not in `fixed` (masked elements
    held) in a bounded while loop; an example stops moving once its energy changes by
    less than `tol` in a step."""
    hoisted = graph.hoist(values, fixed)
    frozen = {n: v for n, v in values.items() if n in fixed}
    free = {n: v for n, v in values.items() if n not in fixed}

    def energy(free_values: Values) -> tuple[jax.Array, jax.Array]:
        full = {**frozen, **free_values}
        per_node = graph.node_energies(full, hoisted=hoisted, fixed=fixed)
        per_example = sum(per_node.values())
        return jnp.sum(per_example), per_example

    grad_fn = jax.grad(energy, has_aux=True)

    def cond(carry):
        _, _, e, _, t, done, _ = carry
        return (t < max_steps) & ~jnp.all(done) & jnp.all(jnp.isfinite(e))

    def body(carry):
        current, velocity, e, grads, t, done, taken = carry
        new, new_velocity = {}, {}
        for name, value in current.items():
            held = done.reshape((-1,) + (1,) * (value.ndim - 1))
            if name in masks:
                held = held | masks[name]
            step = momentum * velocity[name] - gamma * grads[name]
            new_velocity[name] = jnp.where(held, 0.0, step)
            new[name] = value + new_velocity[name]
        new_grads, new_e = grad_fn(new)
        now_done = done | (jnp.abs(e - new_e) < tol)
        taken = taken + (~done).astype(taken.dtype)
        return new, new_velocity, new_e, new_grads, t + 1, now_done, taken

    grads0, e0 = grad_fn(free)
    none = jnp.zeros(e0.shape, bool)
    still = jax.tree.map(jnp.zeros_like, free)
    init = (free, still, e0, grads0, jnp.zeros_like(max_steps), none, jnp.zeros(e0.shape, int))
    free, _, e, _, steps, done, taken = jax.lax.while_loop(cond, body, init)
    out = {**frozen, **free}
    if check_finite:
        node_energy = graph.node_energies(out, hoisted=hoisted, fixed=fixed)
        names = list(node_energy)
        finite = jnp.stack([jnp.all(jnp.isfinite(node_energy[n])) for n in names])
        messages = [_NON_FINITE_HINT.format(name=n) for n in names]
        out = eqx.branched_error_if(out, ~jnp.all(finite), jnp.argmin(finite), messages)
    return QueryResult(out, steps, e, jnp.all(done), taken, done)


def fix_neurons(
    topology: Topology, neurons: np.ndarray | list[int], stimulus: jax.Array
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """The `fixed` argument of `condition` that fixes the neurons with global indices
    `neurons` (Eq. 5.5's set I) to `stimulus` of shape (batch, len(neurons)).

    Raises:
        IndexError: a neuron index out of range.
    """
    stimulus = jnp.asarray(stimulus)
    neurons = [int(i) for i in np.asarray(neurons).reshape(-1)]
    if stimulus.ndim != 2 or stimulus.shape[1] != len(neurons):
        raise ValueError(
            f"The stimulus must have shape (batch, {len(neurons)}), got {stimulus.shape}."
        )
    batch = stimulus.shape[0]
    specs: dict[str, tuple[jax.Array, jax.Array]] = {}
    for column, neuron in enumerate(neurons):
        group, pos = topology.locate(neuron)
        if group not in specs:
            size = len(topology.groups[group])
            specs[group] = (jnp.zeros((batch, size)), jnp.zeros((size,), bool))
        value, mask = specs[group]
        specs[group] = (value.at[:, pos].set(stimulus[:, column]), mask.at[pos].set(True))
    return specs
