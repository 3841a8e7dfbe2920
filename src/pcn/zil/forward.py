"""Forward pass over a traced graph (thesis Eq. 3.13) and per-vertex local derivatives.

The forward pass gives every vertex its value mu_i; Z-IL initialises the value
nodes there (x_i = mu_i, zero error).  `local_vjp` is the only place where JAX
differentiates anything: one op at a time, never the loss as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .level import Structure
from .trace import Graph, Op

__all__ = ["forward", "local_vjp", "read"]


def read(
    g: Graph, env: dict[int, Any], params: Sequence[Any], inputs: Sequence[Any], v: int
) -> Any:
    """The array of value `v`: a leaf, a constant, or an already computed op output."""
    val = g.values[v]
    if val.kind == "param":
        return params[val.index]
    if val.kind == "input":
        return inputs[val.index]
    if val.kind == "const":
        return g.consts[val.index]
    return env[v]


def local_vjp(
    op: Op,
    ins: Sequence[Any],
    diff: Sequence[bool],
    float_out: Sequence[bool],
) -> tuple[tuple[Any, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]]:
    """Outputs of `op` at `ins` and the VJP w.r.t. the inputs flagged in `diff`.

    Returns `(outs, vjp)`: `outs` are all outputs of the op; `vjp(cts)` takes
    one cotangent per output flagged in `float_out` (the others are not
    differentiable) and returns one cotangent per flagged input.  Failures of
    JAX's rules become a `ValueError` naming the primitive and the equation.
    """
    pos = [i for i, d in enumerate(diff) if d]

    def f(*d: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        full = list(ins)
        for i, a in zip(pos, d, strict=True):
            full[i] = a
        outs = op.fn(*full)
        return (
            tuple(o for o, k in zip(outs, float_out, strict=True) if k),
            tuple(o for o, k in zip(outs, float_out, strict=True) if not k),
        )

    try:
        diff_outs, vjp, aux = jax.vjp(f, *(ins[i] for i in pos), has_aux=True)
    except Exception as e:
        raise ValueError(
            f"pcn.zil: cannot take the local derivative of primitive '{op.name}' at "
            f"{op.where}: {type(e).__name__}: {e}"
        ) from e
    it_d, it_a = iter(diff_outs), iter(aux)
    outs = tuple(next(it_d) if k else next(it_a) for k in float_out)
    return outs, vjp


def forward(
    s: Structure,
    params: Sequence[Any],
    inputs: Sequence[Any],
    with_vjp: bool,
) -> tuple[dict[int, Any], dict[int, Callable[..., tuple[Any, ...]]]]:
    """Values of every needed op output, and (with `with_vjp`) each live op's VJP.

    With `with_vjp` the live ops are evaluated through `jax.vjp`, so the forward
    values and the residuals of the local derivatives come from one evaluation
    (under `jax.jit` nothing is computed twice).
    """
    g = s.graph
    env: dict[int, Any] = {}
    vjps: dict[int, Callable[..., tuple[Any, ...]]] = {}
    live_ops = set(s.live_ops)
    for op_id in s.needed_ops:
        op = g.ops[op_id]
        ins = [read(g, env, params, inputs, u) for u in op.inputs]
        if with_vjp and op_id in live_ops:
            float_out = [jnp.issubdtype(g.values[w].dtype, jnp.inexact) for w in op.outputs]
            outs, vjps[op_id] = local_vjp(op, ins, [u in s.live for u in op.inputs], float_out)
        else:
            outs = op.fn(*ins)
        env.update(zip(op.outputs, outs, strict=True))
    return env, vjps
