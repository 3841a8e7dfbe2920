"""Algorithm 5 (Z-IL for computational graphs) as the full predictive-coding dynamics.

Every internal vertex i holds a value node x_i and an error eps_i = mu_i - x_i
with mu_i = g_i(x of its inputs) (Eq. 3.17); the energy is
E_t = 1/2 sum_i ||eps_i||^2 (Eq. 3.18) with the output vertices clamped to the
target.  One step t = 1, ..., K (K the largest level of a parameter leaf):

1. evaluate every mu_i from the current values and the errors eps_i;
2. every parameter leaf zeta scheduled at step t records
   dE_t/dzeta = sum_j eps_j^T dmu_j/dzeta (Eq. 3.20 / 3.27);
3. every non-clamped value moves: x_i <- x_i - gamma dE_t/dx_i with
   dE_t/dx_i = -eps_i + sum_j eps_j^T dmu_j/dx_i (Eq. 3.19).

A leaf is scheduled at t = its level (longest distance to the output) with the
layer-dependent update, and at t = K for every leaf without it (all weights
updated together at the end of inference, as in plain PC).  The leaves keep
their values during inference and the recorded dE_t/dzeta is returned (the
update is -alpha times it): under the Z-IL conditions this equals updating
them in place, because a leaf changed at step k can first influence an error
at level >= k at step k + 2, after every leaf reading those errors recorded.

Floating point: with forward initialisation every error starts at exactly 0,
and it stays 0 while neither x_i nor an input of vertex i has moved (mu_i is
then unchanged by definition), so such errors are not recomputed.  Recomputing
them would give last-bit noise (the loop's mu is compiled differently from the
forward pass, e.g. with fused multiply-adds), and gamma = 1 dynamics amplify
noise ahead of the error front super-exponentially in deep graphs with products
of two moving values (attention, layer norm) until it reaches the front.

This is the reference used to check `levelwise_grads` and for the ablations of
the paper's Appendix H (gamma != 1, no forward initialisation, no
level-scheduled update, no levelling); every step costs one forward and one
VJP per vertex, identity vertices included.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .forward import forward, local_vjp, read
from .level import Structure, VertexGraph, vertex_graph
from .trace import Op

__all__ = ["simulate_grads"]


def _vertex_op(vg: VertexGraph, j: int) -> Op:
    v = vg.vertices[j]
    return Op(v.name, lambda *a: (v.fn(*a),), (), (), f"vertex {j} ({v.name})", True)


def simulate_grads(
    s: Structure,
    params: Sequence[Any],
    inputs: Sequence[Any],
    targets: Sequence[Any],
    *,
    gamma: float,
    forward_init: bool,
    level_scheduled: bool,
    levelled: bool,
) -> list[Any]:
    """Run Algorithm 5 for K steps; the recorded dE_t/dzeta per parameter leaf (flat)."""
    g = s.graph
    vg = vertex_graph(s, levelled)
    n_v, n_p = len(vg.vertices), len(vg.params)
    env, _ = forward(s, params, inputs, with_vjp=False)
    fixed = [read(g, env, params, inputs, c) for c in vg.fixed]
    leaves = [read(g, env, params, inputs, p) for p in vg.params]
    clamp = {
        c: jnp.asarray(y, g.values[vg.vertices[c].source].dtype)
        for c, y in zip(vg.clamped, targets, strict=True)
        if c >= 0
    }

    x0 = []
    for j, v in enumerate(vg.vertices):
        val = read(g, env, params, inputs, v.source)
        x0.append(clamp[j] if j in clamp else (val if forward_init else jnp.zeros_like(val)))
    steps = [lv if level_scheduled else s.depth for lv in vg.param_level]
    ops = [_vertex_op(vg, j) for j in range(n_v)]
    # Vertices whose error is recomputed only once their value or an input moved.
    memo = [forward_init and j not in clamp for j in range(n_v)]

    def energy_grads(xs: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """dE/dx for every vertex and dE/dzeta for every leaf at the current values."""
        slots = list(xs) + leaves + fixed
        moved = [jnp.any(x != x_init) for x, x_init in zip(xs, x0, strict=True)]
        dx: list[Any] = [None] * (n_v + n_p)
        for j, v in enumerate(vg.vertices):
            ins = [slots[i] for i in v.inputs]
            diff = [i < n_v + n_p for i in v.inputs]
            (mu,), vjp = local_vjp(ops[j], ins, diff, [True])
            eps = mu - xs[j]
            if memo[j]:
                touched = functools.reduce(
                    jnp.logical_or, [moved[i] for i in v.inputs if i < n_v], moved[j]
                )
                eps = jnp.where(touched, eps, jnp.zeros_like(eps))
            dx[j] = -eps if dx[j] is None else dx[j] - eps
            for i, ct in zip((i for i in v.inputs if i < n_v + n_p), vjp((eps,)), strict=True):
                dx[i] = ct if dx[i] is None else dx[i] + ct
        dz = [
            d if d is not None else jnp.zeros_like(z) for d, z in zip(dx[n_v:], leaves, strict=True)
        ]
        return dx[:n_v], dz

    def step(t: Any, carry: tuple[list[Any], list[Any]]) -> tuple[list[Any], list[Any]]:
        xs, rec = carry
        dx, dz = energy_grads(xs)
        rec = [jnp.where(t == k, d, r) for d, r, k in zip(dz, rec, steps, strict=True)]
        xs = [
            x if j in clamp else x - gamma * d for j, (x, d) in enumerate(zip(xs, dx, strict=True))
        ]
        return xs, rec

    rec0 = [jnp.zeros_like(z) for z in leaves]
    if s.depth > 0:
        _, rec = lax.fori_loop(1, s.depth + 1, step, (x0, rec0))
    else:
        rec = rec0
    by_value = dict(zip(vg.params, rec, strict=True))
    return [
        by_value[p] if p in by_value else jnp.zeros_like(jax.numpy.asarray(params[i]))
        for i, p in enumerate(g.params)
    ]
