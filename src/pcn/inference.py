"""Inference: relax the free value nodes to lower the energy, in one compiled loop.

    x_{t+1} = x_t + optimizer_update(dE/dx_t)       (SGD with step gamma: thesis Eq. 2.4)

over `T` steps as a single `lax.scan`. All free nodes move in parallel from one
`jax.grad` of the total energy (summed over the batch, so `gamma` is a per-example step).
Clamping is data: `clamp={"x": True}` fixes a whole node; `clamp={"x": mask}` fixes
the elements where the boolean `mask` (broadcastable to the node's values) is true.
Contributions that only depend on fully clamped nodes are computed once, before the loop.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._validation import check_at_least, check_positive
from .energies import Bernoulli, Categorical, check_node_data
from .fusion import plan_fusion, relax_fused
from .graph import PCGraph, Values

Clamp = Mapping[str, bool | jax.Array]


class Relaxation(NamedTuple):
    """Result of `relax`: final values and the mean energy per example before each step."""

    values: Values
    energy: jax.Array  # (T,)
    # outputs W v (no bias) of the fused nodes' linear out-edges at the final values, by
    # edge index: the fused relaxation tracks them, so the weight update need not
    # recompute them (see `fusion.known_linear_output`)
    edge_outputs: Mapping[int, jax.Array] | None = None


class Inference(NamedTuple):
    """Result of `infer`: final values, energy trace (T + 1,) and final energy per node."""

    values: Values
    energy: jax.Array  # (T + 1,): before each step, then after the last
    node_energy: Values  # {name: mean energy per example} at the final values


def split_clamp(graph: PCGraph, values: Mapping[str, jax.Array], clamp: Clamp):
    """Validate `clamp` and split it into the static set of fully fixed nodes and the
    element masks of partially fixed ones."""
    fixed, masks = set(), {}
    for name, spec in clamp.items():
        if name not in graph.names:
            raise ValueError(
                f"`clamp` names node {name!r}, which is not in the graph; "
                f"nodes are {list(graph.names)}."
            )
        if spec is True:
            fixed.add(name)
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
            masks[name] = mask
    if len(fixed) == len(graph.names):
        raise ValueError("`clamp` fixes every node, so there is nothing to infer.")
    check_free_nodes(graph, fixed, masks)
    return frozenset(fixed), masks


def check_free_nodes(
    graph: PCGraph, fixed: frozenset[str] | set[str], masks: Mapping[str, jax.Array]
) -> None:
    """Refuse to relax a free categorical or Bernoulli node: plain gradient steps on its
    probabilities would leave the simplex / [0, 1] (and make its KL energy negative)."""
    for node in graph.nodes:
        if isinstance(node.energy, Categorical | Bernoulli) and node.name not in fixed:
            kind, free = (
                ("categorical", "SoftmaxCategorical")
                if isinstance(node.energy, Categorical)
                else ("Bernoulli", "BernoulliLogits")
            )
            raise ValueError(
                f"Node {node.name!r} has a {kind} energy and is not fully clamped; relaxing "
                "its probabilities is not supported (gradient steps would leave their range). "
                f"Clamp it, or give it a `{free}` energy (a node that holds logits and "
                "relaxes freely)."
            )


def check_values(graph: PCGraph, values: Mapping[str, jax.Array]) -> None:
    """Every node has a value of shape (batch, *node.shape), one batch size for all."""
    missing = [n for n in graph.names if n not in values]
    if missing:
        raise ValueError(f"No value given for nodes {missing}; pass one for every node.")
    check_batch(graph, values)


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


def relax(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    fixed: frozenset[str],
    masks: Mapping[str, jax.Array],
    steps: int,
    optimizer: optax.GradientTransformation | float,
    fuse: bool = True,
    record: bool = True,
    at_prediction: bool = False,
) -> Relaxation:
    """Run `steps` optimiser steps on the free values (the core loop; no checks).

    A float `optimizer` is plain SGD with that step (gamma); then, with `fuse`, free
    nodes whose prediction cannot change are relaxed in the exact fused form of
    `pcn.fusion` where that is cheaper. Without `record` the energy trace is not
    computed (an empty trace; a training step that does not report it runs faster).
    `at_prediction` promises that the free nodes start at their predictions (forward
    initialisation), which spares the fused form its initial-error products.
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        gamma = float(optimizer)
        plan = plan_fusion(graph, fixed, masks) if fuse else ()
        if plan:
            return relax_fused(
                graph,
                values,
                fixed=fixed,
                masks=masks,
                steps=steps,
                gamma=gamma,
                plan=plan,
                record=record,
                at_prediction=at_prediction,
            )
        optimizer = optax.sgd(gamma)
    hoisted = graph.hoist(values, fixed)
    frozen = {n: v for n, v in values.items() if n in fixed}
    free = {n: v for n, v in values.items() if n not in fixed}
    batch = next(iter(values.values())).shape[0]

    def total_energy(free_values: Values) -> jax.Array:
        full = {**frozen, **free_values}
        energies = graph.node_energies(full, hoisted=hoisted, fixed=fixed)
        return sum(jnp.sum(e) for e in energies.values())

    def step(carry, _):
        current, opt_state = carry
        energy, grads = jax.value_and_grad(total_energy)(current)
        updates, opt_state = optimizer.update(grads, opt_state, current)
        new = optax.apply_updates(current, updates)
        for name, mask in masks.items():
            new[name] = jnp.where(mask, current[name], new[name])
        return (new, opt_state), (energy / batch if record else None)

    (free, _), trace = jax.lax.scan(step, (free, optimizer.init(free)), length=steps)
    return Relaxation({**frozen, **free}, trace if record else no_trace(values))


def no_trace(values: Mapping[str, jax.Array]) -> jax.Array:
    """The empty energy trace of a relaxation that did not record one."""
    return jnp.zeros((0,), dtype=next(iter(values.values())).dtype)


class NonFiniteEnergyError(FloatingPointError):
    """An energy became nan or inf during relaxation (the message names the node)."""


_NON_FINITE = re.compile(r"The energy of node '[^']+' became non-finite[^\n]*")


@contextlib.contextmanager
def non_finite_errors() -> Iterator[None]:
    """Turn the run-time error that `raise_if_not_finite` raises inside compiled code
    (wrapped by JAX in a long callback traceback) into a plain `NonFiniteEnergyError`."""
    try:
        yield
    except Exception as err:
        match = _NON_FINITE.search(str(err))
        if match is None:
            raise
        raise NonFiniteEnergyError(match.group(0)) from None


def raise_if_not_finite(node_energy: Mapping[str, jax.Array], target):
    """Stop (at run time, inside jit too) when a node's energy is nan or inf, naming it."""
    names = list(node_energy)
    finite = jnp.stack([jnp.all(jnp.isfinite(node_energy[n])) for n in names])
    messages = [
        f"The energy of node {n!r} became non-finite (nan or inf) during relaxation. "
        "The value step is probably too large: lower `gamma` (or the value optimiser's "
        "learning rate), or lower the weight learning rate."
        for n in names
    ]
    return eqx.branched_error_if(target, ~jnp.all(finite), jnp.argmin(finite), messages)


def infer(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamp: Clamp,
    steps: int,
    gamma: float | None = None,
    optimizer: optax.GradientTransformation | None = None,
    check_finite: bool = True,
    fuse: bool = True,
) -> Inference:
    """Relax the values not fixed by `clamp` for `steps` steps of `optimizer`.

    Args:
        graph: the model.
        values: starting values, `{name: (batch, *shape)}` for every node.
        clamp: `{name: True}` fixes a node, `{name: mask}` fixes the masked elements.
        steps: number of relaxation steps T (>= 1).
        gamma: SGD step on the values; shorthand for `optimizer=optax.sgd(gamma)`.
        optimizer: any optax transformation applied to the values.
        check_finite: raise (naming the node) if an energy becomes nan or inf.
        fuse: with `gamma`, relax nodes whose prediction is fixed in the exact fused form
            (`pcn.fusion`); `False` runs the direct loop.

    Returns:
        `Inference(values, energy, node_energy)`; `energy[t]` is the mean energy per
        example before step t, and `energy[T]` after the last step.

    Raises:
        NonFiniteEnergyError: (with `check_finite`) an energy became nan or inf.
        ValueError: a categorical / Bernoulli node's value is not a probability.
    """
    check_node_data(graph.nodes, values)  # concrete data only; traced values pass
    with non_finite_errors():
        return _infer(
            graph,
            values,
            clamp=clamp,
            steps=steps,
            gamma=gamma,
            optimizer=optimizer,
            check_finite=check_finite,
            fuse=fuse,
        )


@eqx.filter_jit
def _infer(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamp: Clamp,
    steps: int,
    gamma: float | None,
    optimizer: optax.GradientTransformation | None,
    check_finite: bool,
    fuse: bool,
) -> Inference:
    check_at_least("steps", steps, 1, hint="Relaxation needs at least one step (T >= 1).")
    optimizer = resolve_value_optimizer(gamma, optimizer)
    check_values(graph, values)
    fixed, masks = split_clamp(graph, values, clamp)
    result = relax(
        graph, values, fixed=fixed, masks=masks, steps=steps, optimizer=optimizer, fuse=fuse
    )
    node_energy = graph.node_energies(result.values)
    final = sum(jnp.mean(e) for e in node_energy.values())
    out_values = result.values
    if check_finite:
        out_values = raise_if_not_finite(node_energy, out_values)
    return Inference(
        out_values,
        jnp.concatenate([result.energy, jnp.reshape(final, (1,))]),
        {n: jnp.mean(e) for n, e in node_energy.items()},
    )


def resolve_value_optimizer(
    gamma: float | None, optimizer: optax.GradientTransformation | None
) -> optax.GradientTransformation | float:
    """The given optimiser, or `gamma` itself (a float means plain SGD with that step)."""
    if (gamma is None) == (optimizer is None):
        raise ValueError("Pass exactly one of `gamma` (SGD step on values) and `optimizer`.")
    if optimizer is not None:
        return optimizer
    check_positive("gamma", gamma, hint="It is the step size of inference on the values.")
    return float(gamma)
