"""Z-IL's default case computed level by level: only the work that reaches a parameter.

With forward initialisation (zero errors), gamma = 1, a levelled graph and the
level-scheduled update, the error front of Algorithm 5 moves exactly one level
per step (thesis section 3.8, Lemma 3.8.1 / Claim 1 generalised to graphs):

* at step t the errors of the vertices at level t - 1 become
  eps_i = sum_j eps_j dmu_j/dx_i over their consumers j (at level t - 2),
  and no vertex at a higher level has moved yet, so every mu is still the
  forward-pass value;
* the leaves at level t are updated with dE_t/dzeta = sum_j eps_j dmu_j/dzeta.

An identity vertex only delays its consumer's error by one step, so it needs
no work here: the contribution of a skipping edge is simply added when its
tail's level is reached.  Everything else in Algorithm 5 (vertices whose
values move after their parameters were read, errors that oscillate behind the
front) cannot change any parameter update, so it is not computed.  The result
is one forward pass plus one vector-Jacobian product per vertex, in level order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from .forward import forward
from .level import Structure

__all__ = ["levelwise_grads"]


def levelwise_grads(
    s: Structure, params: Sequence[Any], inputs: Sequence[Any], targets: Sequence[Any]
) -> list[Any]:
    """dE_t/dzeta of every parameter leaf at its level t (flat list, like `params`)."""
    g = s.graph
    env, vjps = forward(s, params, inputs, with_vjp=True)
    by_level: dict[int, list[int]] = defaultdict(list)
    for op_id in s.live_ops:
        outs = [w for w in g.ops[op_id].outputs if w in s.live]
        by_level[max(s.level[w] for w in outs)].append(op_id)

    # Step t = 1: the output errors eps_out = mu_out - y (the clamped vertices).
    err: dict[int, Any] = {}
    for c, y in zip(s.clamped, targets, strict=True):
        if c >= 0:
            err[c] = env[c] - jnp.asarray(y, env[c].dtype)

    for t in range(1, s.depth + 1):
        for op_id in by_level[t - 1]:  # vertices at level t - 1 hold their final error
            op = g.ops[op_id]
            cts = tuple(
                err[w] if w in err else jnp.zeros(g.values[w].shape, g.values[w].dtype)
                for w in op.outputs
                if g.values[w].diff
            )
            contributions = vjps[op_id](cts)
            for u, ct in zip((u for u in op.inputs if u in s.live), contributions, strict=True):
                err[u] = err[u] + ct if u in err else ct
    grads = []
    for i, p in enumerate(g.params):
        if p in err:
            grads.append(err[p])
        else:
            grads.append(
                jnp.zeros(g.values[p].shape, g.values[p].dtype)
                if g.values[p].diff
                else jnp.zeros_like(params[i])
            )
    return grads
