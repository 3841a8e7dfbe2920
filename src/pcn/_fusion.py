"""Exact, faster SGD relaxation of free nodes whose prediction cannot change.

A free node v whose parents are all clamped has a constant prediction mu_v, so under
plain SGD on the values its error e = v - mu_v evolves linearly:

    e <- a e - gamma * sum_i d_i W_i,        a = 1 - gamma * precision,

where W_i are the weights of v's outgoing linear edges and d_i = dE/dc_i the energy
gradient at their outputs c_i = W_i v + b_i. The children only ever see Q_i = e W_i^T,
which then evolves as

    Q_j <- a Q_j - gamma * sum_i d_i G_ij,   G_ij = W_i W_j^T  (computed once per batch),

so each relaxation step costs one (batch x out_j x out_i) product per pair instead of a
forward and a backward product through W_i. The node's energy ||e||^2 and its final
value follow exactly from the same quantities (see `relax_fused`). In exact arithmetic
this is the same trajectory as `inference.relax`; in floating point it agrees to
rounding (tested in float64). Roots (no prediction, no energy) are the case a = 1.

Private to the relaxation engine (`pcn._engine`), which picks it when the value optimiser
is plain `pcn.SGD` (no momentum), the stop is a fixed number of steps, and the product
pairs are cheaper than the forward/backward products. The engine's result then carries the
tracked edge outputs, so the weight update at the relaxed values need not recompute them
(`known_linear_output`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ._typed import total
from .energies import Gaussian
from .graph import PCGraph, Values


class FusedRelaxation(NamedTuple):
    """Final values, the energy trace (T,) (or None), and the outputs W v (no bias) of the
    fused nodes' linear out-edges at the final values, by edge index."""

    values: Values
    trace: jax.Array | None
    edge_outputs: dict[int, jax.Array]


class FusedNode(NamedTuple):
    """A node relaxed in fused form: its name, precision (0 for a root), out-edges."""

    name: str
    precision: float
    edges: tuple[int, ...]


def plan_fusion(
    graph: PCGraph, clamped: frozenset[str], masks: Mapping[str, jax.Array]
) -> tuple[FusedNode, ...]:
    """The free nodes that can be relaxed in fused form, and only where it is cheaper."""
    plan = []
    for node in graph.nodes:
        name = node.name
        if name in clamped or name in masks or len(node.shape) != 1:
            continue
        incoming = graph.incoming(name)
        if incoming and not all(set(e.parents) <= clamped for e in incoming):
            continue  # the prediction moves during relaxation
        if not isinstance(node.energy, Gaussian):
            continue  # the fused form needs the value itself, linearly, on the out-edges
        outgoing = [i for i, e in enumerate(graph.edges) if name in e.parents]
        linear = all(
            graph.edges[i].parents == (name,)
            # exactly Linear: a subclass may call its weights differently
            and type(graph.edge_module(graph.edges[i])) is eqx.nn.Linear
            for i in outgoing
        )
        if not outgoing or not linear:
            continue
        widths = [math.prod(graph.node(graph.edges[i].child).shape) for i in outgoing]
        fused_cost = sum(widths) ** 2  # products with the Gram blocks
        direct_cost = 2 * node.shape[0] * sum(widths)  # forward + backward through W_i
        if fused_cost >= direct_cost:
            continue
        precision = node.energy.precision if incoming else 0.0
        plan.append(FusedNode(name, precision, tuple(outgoing)))
    return tuple(plan)


class _FusedState(NamedTuple):
    q: dict[int, jax.Array]  # e W_i^T per out-edge
    d_sum: dict[int, jax.Array]  # sum_t a^(T-1-t) d_i,t
    sq_norm: jax.Array  # ||e||^2 per example


def relax_fused(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamped: frozenset[str],
    masks: Mapping[str, jax.Array],
    steps: int,
    gamma: float,
    plan: tuple[FusedNode, ...],
    unroll: bool = False,
    record: bool = True,
    at_prediction: bool = False,
) -> FusedRelaxation:
    """The engine's fixed-step relaxation with plain SGD (step `gamma`), the nodes in
    `plan` fused; without `record`, no energy trace (nor the fused nodes' squared errors)
    is computed; `unroll` lays the steps out instead of looping. `at_prediction` promises
    that every fused node starts at its prediction (forward initialisation), so its
    initial error is zero and its products are skipped."""
    hoisted = graph._hoist(values, clamped)
    fused = frozenset(f.name for f in plan)
    frozen = {n: v for n, v in values.items() if n in clamped}
    free = {n: v for n, v in values.items() if n not in clamped and n not in fused}
    batch = next(iter(values.values())).shape[0]

    weights, const, const_b, gram, start, err0, mu_of = {}, {}, {}, {}, {}, {}, {}
    for f in plan:
        v0 = values[f.name]
        mu = graph._predict(values, f.name, hoisted=hoisted, clamped=clamped) if f.precision else v0
        # a root's error is its displacement from where it started: zero at the start
        zero_start = at_prediction or not f.precision
        mu_of[f.name] = mu
        err0[f.name] = None if zero_start else v0 - mu
        for i in f.edges:
            linear = graph.edge_module(graph.edges[i])
            weights[i] = linear.weight
            const[i] = mu @ linear.weight.T  # W mu, kept for the tracked edge outputs
            const_b[i] = const[i] if linear.bias is None else const[i] + linear.bias[None]
        for i in f.edges:
            for j in f.edges:
                gram[i, j] = weights[i] @ weights[j].T
        start[f.name] = _FusedState(
            {
                i: jnp.zeros_like(const[i]) if zero_start else err0[f.name] @ weights[i].T
                for i in f.edges
            },
            {i: jnp.zeros_like(const[i]) for i in f.edges},
            jnp.zeros(batch, v0.dtype)
            if zero_start
            else jnp.sum(jnp.square(err0[f.name]), axis=-1),
        )

    def total_energy(free_values: Values, outputs: dict[int, jax.Array], states) -> jax.Array:
        full = {**frozen, **free_values}
        energies = graph._node_energies(
            full, hoisted=hoisted, clamped=clamped, overrides=outputs, exclude=fused
        )
        own = total(0.5 * f.precision * jnp.sum(states[f.name].sq_norm) for f in plan)
        return total(jnp.sum(e) for e in energies.values()) + own

    def step(carry, _):
        current, states = carry
        outputs = {i: const_b[i] + states[f.name].q[i] for f in plan for i in f.edges}
        recorded: jax.Array | None = None
        if record:
            energy, (g_free, g_out) = jax.value_and_grad(total_energy, argnums=(0, 1))(
                current, outputs, states
            )
            recorded = energy / batch
        else:
            g_free, g_out = jax.grad(total_energy, argnums=(0, 1))(current, outputs, states)
        new = {n: current[n] - gamma * g_free[n] for n in current}
        for name, mask in masks.items():
            new[name] = jnp.where(mask, current[name], new[name])
        new_states = {}
        for f in plan:
            a = 1.0 - gamma * f.precision
            old = states[f.name]
            r = {j: sum(g_out[i] @ gram[i, j] for i in f.edges) for j in f.edges}
            sq_norm = old.sq_norm
            if record:
                cross = sum(jnp.sum(g_out[i] * old.q[i], axis=-1) for i in f.edges)
                quad = sum(jnp.sum(r[j] * g_out[j], axis=-1) for j in f.edges)
                sq_norm = a * a * old.sq_norm - 2 * gamma * a * cross + gamma**2 * quad
            new_states[f.name] = _FusedState(
                {j: a * old.q[j] - gamma * r[j] for j in f.edges},
                {i: a * old.d_sum[i] + g_out[i] for i in f.edges},
                sq_norm,
            )
        return (new, new_states), recorded

    (free, states), trace = jax.lax.scan(step, (free, start), length=steps, unroll=unroll)
    out = {**frozen, **free}
    for f in plan:
        a = 1.0 - gamma * f.precision
        err = -gamma * sum(states[f.name].d_sum[i] @ weights[i] for i in f.edges)
        if err0[f.name] is not None:
            err = err + a**steps * err0[f.name]
        out[f.name] = mu_of[f.name] + err
    edge_outputs = {i: const[i] + states[f.name].q[i] for f in plan for i in f.edges}
    return FusedRelaxation(out, trace, edge_outputs)


@jax.custom_vjp
def known_linear_output(weight: jax.Array, v: jax.Array, known: jax.Array) -> jax.Array:
    """`v @ weight.T` when its value `known` has already been computed: returns `known`,
    and differentiates as the product would (no product is computed on the way)."""
    return known


def _known_forward(weight, v, known):
    return known, (weight, v, known)


def _known_backward(residuals, g):
    weight, v, known = residuals
    # the cotangent of `v` is only used when differentiating by the values (never in
    # a weight update, where XLA drops it); `known` stands for the product, so has none
    return g.T @ v, g @ weight, jnp.zeros_like(known)


known_linear_output.defvjp(_known_forward, _known_backward)
