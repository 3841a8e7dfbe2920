"""Computational graph of any JAX function, one vertex per elementary operation.

Thesis section 3.3: a computational graph factors G(params, x) into elementary
functions g_i; every internal vertex has a value mu_i = g_i(values of its inputs)
(Eq. 3.13) and the parameter leaves are the zeta's that learning updates.
`trace` builds that graph from `jax.make_jaxpr`: every equation becomes an `Op`
whose local function re-binds its primitive, so that the per-vertex local
derivatives (Eq. 3.19/3.20) can later be taken with `jax.vjp` of that one op.

Nested `jit`/`pjit`/`closed_call`/`remat` bodies are inlined and `lax.scan`
loops are unrolled (one copy of the body per iteration, so time steps become
levels, as in the thesis's unrolled RNNs), whenever they touch the parameters.
`custom_jvp_call`/`custom_vjp_call` (`jax.nn.relu`, user custom rules) and any
other call primitive stay one vertex whose local function is the call itself.
Operations that do not depend on the parameters (input preprocessing, masks
built from `iota`, integer index arithmetic, `stop_gradient` outputs) are
constants of the PC graph: they are evaluated once, in the forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

__all__ = ["Graph", "Op", "Value", "trace"]

# Calls whose body is inlined (its equations become vertices of the graph).
_INLINED_CALLS = frozenset({"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint"})
# Primitives whose output carries no derivative: a constant of the PC graph.
_NON_DIFFERENTIABLE = frozenset({"stop_gradient"})
# Primitives refused when the output depends on them through the parameters.
_REFUSED = {
    "while": (
        "a lax.while_loop (or fori_loop with traced bounds) has no trip count known at "
        "trace time, so it cannot be unrolled into levels; use lax.scan or lax.fori_loop "
        "with static Python-int bounds"
    ),
    "pure_callback": "a host callback is opaque to JAX and has no local derivative",
    "io_callback": "a host callback is opaque to JAX and has no local derivative",
}


@dataclass(frozen=True)
class Value:
    """One array of the graph: a parameter/input leaf, a constant, or an op output.

    `diff` says whether the value is a differentiable function of the parameters
    (a floating-point array computed from a parameter leaf); only those are
    vertices of the PC graph, everything else is held fixed.
    """

    shape: tuple[int, ...]
    dtype: Any  # a numpy dtype, or JAX's for PRNG keys (never differentiable)
    kind: str  # "param" | "input" | "const" | "op"
    index: int  # leaf position (param/input), constant position, or producing op
    diff: bool
    out: int = 0  # output position inside the producing op


@dataclass(frozen=True)
class Op:
    """One elementary function g_i: `fn(*inputs) -> tuple of outputs`.

    `where` names the equation (index and source line) for error messages;
    `refusal` is set for primitives that cannot be part of Z-IL's graph;
    `effectful` ops (e.g. `jax.debug.print`) run in the forward pass even though
    no vertex reads them.
    """

    name: str
    fn: Callable[..., tuple[Any, ...]]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    where: str
    diff: bool
    refusal: str | None = None
    effectful: bool = False


@dataclass
class Graph:
    """The traced graph of `fn(params, x)`; ops are in topological order."""

    values: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    consts: list[Any] = field(default_factory=list)
    params: tuple[int, ...] = ()
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()
    out_tree: Any = None

    def new_value(
        self, shape: Sequence[int], dtype: Any, kind: str, index: int, diff: bool, out: int = 0
    ) -> int:
        """Append a value and return its id."""
        if not jnp.issubdtype(dtype, jax.dtypes.extended):  # PRNG keys stay as they are
            dtype = np.dtype(dtype)
        self.values.append(Value(tuple(shape), dtype, kind, index, diff, out))
        return len(self.values) - 1

    def const(self, val: Any) -> int:
        """A constant value (literal or closed-over array)."""
        self.consts.append(val)
        return self.new_value(
            np.shape(val), jnp.result_type(val), "const", len(self.consts) - 1, False
        )

    def add_op(
        self,
        name: str,
        fn: Callable[..., tuple[Any, ...]],
        inputs: Sequence[int],
        out_avals: Sequence[Any],
        where: str,
        effectful: bool = False,
    ) -> list[int]:
        """Append an op; it is differentiable if a differentiable value feeds it."""
        diff = name not in _NON_DIFFERENTIABLE and any(self.values[i].diff for i in inputs)
        op_id = len(self.ops)
        outs = [
            self.new_value(
                a.shape, a.dtype, "op", op_id, diff and jnp.issubdtype(a.dtype, jnp.inexact), k
            )
            for k, a in enumerate(out_avals)
        ]
        self.ops.append(
            Op(
                name,
                fn,
                tuple(inputs),
                tuple(outs),
                where,
                diff,
                _REFUSED.get(name) if diff else None,
                effectful,
            )
        )
        return outs


def _where(path: str, index: int, eqn: Any) -> str:
    """'equation 3 of fn (file.py:12 (f))' for error messages."""
    try:
        from jax._src import source_info_util

        src = source_info_util.summarize(eqn.source_info)
    except Exception:  # pragma: no cover - private API moved
        src = "unknown source"
    return f"equation {index} of {path} ({src})"


def _bind_fn(eqn: Any) -> Callable[..., tuple[Any, ...]]:
    """The local function of one equation: re-bind its primitive (as `eval_jaxpr` does)."""
    prim = eqn.primitive
    bound = prim.get_bind_params(eqn.params)
    subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
    ctx = getattr(getattr(eqn, "ctx", None), "manager", None)

    def fn(*ins: Any) -> tuple[Any, ...]:
        with ctx if ctx is not None else contextlib.nullcontext():
            out = prim.bind(*subfuns, *ins, **params)
        return tuple(out) if prim.multiple_results else (out,)

    return fn


def _split_closed(j: Any) -> tuple[Any, list[Any]]:
    """(jaxpr, consts) of a ClosedJaxpr or an open Jaxpr."""
    if isinstance(j, jcore.ClosedJaxpr):
        return j.jaxpr, list(j.consts)
    return j, []


class _Tracer:
    """Walks a jaxpr, appending ops to a `Graph` (inlining calls, unrolling scans)."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph

    def run(self, jaxpr: Any, consts: Sequence[int], args: Sequence[int], path: str) -> list[int]:
        """Inline `jaxpr` with its constvars bound to `consts` and invars to `args` (value ids)."""
        env: dict[Any, int] = dict(zip(jaxpr.constvars, consts, strict=True))
        env.update(zip(jaxpr.invars, args, strict=True))

        def read(a: Any) -> int:
            if isinstance(a, jcore.Literal):
                return self.g.const(a.val)
            return env[a]

        for idx, eqn in enumerate(jaxpr.eqns):
            ins = [read(a) for a in eqn.invars]
            outs = self.eqn(eqn, ins, _where(path, idx, eqn), f"{path} > {eqn.primitive.name}")
            for v, o in zip(eqn.outvars, outs, strict=True):
                if not isinstance(v, jcore.DropVar):
                    env[v] = o
        return [read(a) for a in jaxpr.outvars]

    def eqn(self, eqn: Any, ins: list[int], where: str, path: str) -> list[int]:
        name = eqn.primitive.name
        touches_params = any(self.g.values[i].diff for i in ins)
        if touches_params and name in _INLINED_CALLS:
            sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
            jaxpr, consts = _split_closed(sub)
            return self.run(jaxpr, [self.g.const(c) for c in consts], ins, path)
        if touches_params and name == "scan":
            return self.scan(eqn, ins, where, path)
        avals = [v.aval for v in eqn.outvars]
        return self.g.add_op(name, _bind_fn(eqn), ins, avals, where, bool(eqn.effects))

    def scan(self, eqn: Any, ins: list[int], where: str, path: str) -> list[int]:
        """Unroll `lax.scan`: one inlined body per iteration (time steps become levels)."""
        p = eqn.params
        length, n_consts, n_carry = p["length"], p["num_consts"], p["num_carry"]
        body, body_consts = _split_closed(p["jaxpr"])
        consts, carry, xs = (
            ins[:n_consts],
            ins[n_consts : n_consts + n_carry],
            ins[n_consts + n_carry :],
        )
        ys_avals = [v.aval for v in eqn.outvars[n_carry:]]
        body_const_ids = [self.g.const(c) for c in body_consts]
        ys_parts: list[list[int]] = [[] for _ in ys_avals]
        order = range(length - 1, -1, -1) if p.get("reverse", False) else range(length)
        for i in order:
            x_i = []
            for xv in xs:
                val = self.g.values[xv]
                x_i += self.g.add_op(
                    "scan_slice",
                    lambda a, i=i: (lax.index_in_dim(a, i, keepdims=False),),
                    [xv],
                    [jax.ShapeDtypeStruct(val.shape[1:], val.dtype)],
                    f"{where}, slice of xs at iteration {i}",
                )
            outs = self.run(body, body_const_ids, consts + carry + x_i, f"{path}[{i}]")
            carry = outs[:n_carry]
            for k, y in enumerate(outs[n_carry:]):
                ys_parts[k].append(y)
        ys = []
        for k, aval in enumerate(ys_avals):
            parts = ys_parts[k][::-1] if p.get("reverse", False) else ys_parts[k]
            if not parts:
                ys.append(self.g.const(np.zeros(aval.shape, aval.dtype)))
                continue
            ys += self.g.add_op(
                "scan_stack", lambda *a: (jnp.stack(a),), parts, [aval], f"{where}, stacking ys"
            )
        return list(carry) + ys


def _abstract(tree: Any) -> Any:
    """ShapeDtypeStructs of a pytree of arrays or tracers: the graph depends on shapes only."""

    def one(a: Any) -> jax.ShapeDtypeStruct:
        aval = jax.typeof(a)
        return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)

    return jax.tree.map(one, tree)


def trace(fn: Callable[[Any, Any], Any], params: Any, x: Any) -> Graph:
    """Trace `fn(params, x)` into a `Graph` (params leaves first, then x leaves)."""
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(_abstract(params), _abstract(x))
    n_params = len(jax.tree.leaves(params))
    avals = [v.aval for v in closed.jaxpr.invars]
    g = Graph()
    g.params = tuple(
        g.new_value(a.shape, a.dtype, "param", i, bool(jnp.issubdtype(a.dtype, jnp.inexact)))
        for i, a in enumerate(avals[:n_params])
    )
    g.inputs = tuple(
        g.new_value(a.shape, a.dtype, "input", i, False) for i, a in enumerate(avals[n_params:])
    )
    consts = [g.const(c) for c in closed.consts]
    g.outputs = tuple(_Tracer(g).run(closed.jaxpr, consts, g.params + g.inputs, "fn"))
    g.out_tree = jax.tree.structure(out_shape)
    return g
