"""Querying a trained PC graph (thesis section 5.1): by conditioning and by initialisation.

- Query by conditioning (Eq. 5.5): chosen value nodes (whole groups, or elements picked
  by a boolean mask) are FIXED to a stimulus for every t; the others relax to the
  minimum of the energy given them.
- Query by initialisation (Eq. 5.6): chosen value nodes only START at the stimulus;
  every value node then relaxes.

Both run SGD on the free values, `x <- x - gamma dE/dx` (Eq. 5.3), inside one jitted
`lax.while_loop` that stops when every example's energy changed by less than `tol` in the
last step, or after `max_steps` steps; the result says which.
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
from ..inference import check_batch, check_free_nodes
from .topology import Topology

FixedSpec = jax.Array | tuple[jax.Array, jax.Array]


class QueryResult(NamedTuple):
    """Relaxed values, steps taken, final energy per example, whether `tol` was met."""

    values: Values
    steps: jax.Array  # () int: relaxation steps taken
    energy: jax.Array  # (batch,): energy (Eq. 5.2) of each example at the final values
    converged: jax.Array  # () bool: every |dE| < tol at the last step (False at the cap
    # or when the energy became non-finite: lower gamma)


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


def _check_relax_settings(tol: float, max_steps: int, gamma: float) -> None:
    check_at_least("max_steps", max_steps, 1, hint="Relaxation needs at least one step.")
    check_positive("gamma", gamma, hint="It is the SGD step on the values (Eq. 5.3).")
    if not tol >= 0:
        raise ValueError(f"`tol` must be >= 0, got {tol!r}.")


def condition(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    fixed: Mapping[str, FixedSpec],
    *,
    tol: float = 1e-6,
    max_steps: int = 1000,
    gamma: float = 0.1,
    key: jax.Array | None = None,
    std: float = 0.1,
) -> QueryResult:
    """Query by conditioning (Eq. 5.5): fix `fixed`, relax the rest until converged.

    Args:
        graph: the trained PC graph.
        values: starting values of any nodes (`{name: (batch, *shape)}`); the others start
            at zero, or at N(0, std^2) if `key` is given ("randomly re-initialised").
        fixed: `{name: array}` fixes a whole node; `{name: (array, mask)}` fixes the
            elements where the boolean `mask` (broadcastable to the values) is True.
        tol: stop when every example's energy changes by less than `tol` in a step.
        max_steps: cap on the relaxation steps.
        gamma: SGD step on the values.

    Raises:
        ValueError: an unknown node, a shape that does not match, or a query that fixes
            every node (nothing to infer).
    """
    _check_relax_settings(tol, max_steps, gamma)
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
    return _relax_until(graph, start, masks, fully, *_traced(tol, max_steps, gamma))


def initialise(
    graph: PCGraph,
    start_values: Mapping[str, jax.Array],
    *,
    tol: float = 1e-6,
    max_steps: int = 1000,
    gamma: float = 0.1,
    key: jax.Array | None = None,
    std: float = 0.1,
) -> QueryResult:
    """Query by initialisation (Eq. 5.6): `start_values` set the values at t = 0 only
    (other nodes: zero, or N(0, std^2) with `key`); every node then relaxes until
    converged. Arguments as in `condition`."""
    _check_relax_settings(tol, max_steps, gamma)
    check_batch(graph, start_values)
    start = _start_values(graph, start_values, _batch_of(start_values), key, std)
    check_free_nodes(graph, frozenset(), {})
    return _relax_until(graph, start, {}, frozenset(), *_traced(tol, max_steps, gamma))


def _traced(tol: float, max_steps: int, gamma: float) -> tuple[jax.Array, ...]:
    """The settings as arrays: traced, so a new tolerance or cap does not recompile."""
    dtype = jnp.result_type(float)
    return jnp.asarray(tol, dtype), jnp.asarray(max_steps), jnp.asarray(gamma, dtype)


@eqx.filter_jit
def _relax_until(
    graph: PCGraph,
    values: Values,
    masks: Mapping[str, jax.Array],
    fixed: frozenset[str],
    tol: jax.Array,
    max_steps: jax.Array,
    gamma: jax.Array,
) -> QueryResult:
    """SGD on the values not in `fixed` (masked elements held) in a bounded while loop."""
    hoisted = graph.hoist(values, fixed)
    frozen = {n: v for n, v in values.items() if n in fixed}
    free = {n: v for n, v in values.items() if n not in fixed}

    def energy(free_values: Values) -> tuple[jax.Array, jax.Array]:
        full = {**frozen, **free_values}
        per_node = graph.node_energies(full, hoisted=hoisted, fixed=fixed)
        per_example = sum(per_node.values())
        return jnp.sum(per_example), per_example

    grad_fn = jax.grad(energy, has_aux=True)

    def converged(delta: jax.Array) -> jax.Array:
        return jnp.all(jnp.abs(delta) < tol)

    def cond(carry):
        _, e, _, t, delta = carry
        return (t < max_steps) & ~converged(delta) & jnp.all(jnp.isfinite(e))

    def body(carry):
        current, e, grads, t, _ = carry
        new = {}
        for name, value in current.items():
            stepped = value - gamma * grads[name]
            new[name] = jnp.where(masks[name], value, stepped) if name in masks else stepped
        new_grads, new_e = grad_fn(new)
        return new, new_e, new_grads, t + 1, e - new_e

    grads0, e0 = grad_fn(free)
    init = (free, e0, grads0, jnp.zeros_like(max_steps), jnp.full_like(e0, jnp.inf))
    free, e, _, steps, delta = jax.lax.while_loop(cond, body, init)
    return QueryResult({**frozen, **free}, steps, e, converged(delta))


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
