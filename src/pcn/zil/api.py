"""Public entry points: `grad`, `simulate` and `graph_info`.

Each builds the computational graph of `fn(params, x)` from shapes at trace
time (so everything is `jax.jit`-compatible with params, x and y as traced
arguments), then runs Z-IL on it.  The loss whose gradient Z-IL reproduces is
L = 1/2 sum((fn(params, x) - y) ** 2) over every output leaf, whose output
error mu_out - y is the clamped vertex's error (thesis Eq. 3.20).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from .dynamics import simulate_grads
from .level import Structure, structure
from .schedule import levelwise_grads
from .trace import trace

__all__ = ["GraphInfo", "grad", "graph_info", "simulate"]

Fn = Callable[[Any, Any], Any]


def _build(fn: Fn, params: Any, x: Any) -> Structure:
    _check_real(params, "parameter")
    out = jax.eval_shape(fn, params, x)
    _check_real(out, "output")
    return structure(trace(fn, params, x))


def _check_real(tree: Any, what: str) -> None:
    """Z-IL, like `jax.grad`, needs floating-point parameters and outputs."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not jax.numpy.issubdtype(dtype, jax.numpy.inexact):
            where = jax.tree_util.keystr(path) or "(the whole tree)"
            raise TypeError(
                f"pcn.zil needs floating-point {what}s, as jax.grad does, but the {what} leaf "
                f"{where} has dtype {dtype}; cast it (e.g. `.astype(jnp.float32)`)"
                + (", or drop it from the output." if what == "output" else ".")
            )


def _targets(s: Structure, y: Any) -> list[Any]:
    """Flat target leaves, checked against the output structure and shapes."""
    tree = s.graph.out_tree
    if jax.tree.structure(y) != tree:
        raise ValueError(
            f"pcn.zil: y must have the structure of fn's output {tree}, got {jax.tree.structure(y)}"
        )
    leaves = jax.tree.leaves(y)
    for v, leaf in zip(s.graph.outputs, leaves, strict=True):
        want = s.graph.values[v].shape
        if tuple(np.shape(leaf)) != want:
            raise ValueError(f"pcn.zil: a target has shape {np.shape(leaf)}, the output {want}")
    return leaves


def _run(fn: Fn, params: Any, x: Any, y: Any, runner: Callable[..., list[Any]]) -> Any:
    s = _build(fn, params, x)
    p_leaves, p_tree = jax.tree.flatten(params)
    grads = runner(s, p_leaves, jax.tree.leaves(x), _targets(s, y))
    return jax.tree.unflatten(p_tree, grads)


def grad(fn: Fn, *, levelled: bool = True) -> Callable[[Any, Any, Any], Any]:
    """Exact backprop by Z-IL: `grad(fn)(params, x, y)` equals `jax.grad` of
    L(params) = 1/2 sum((fn(params, x) - y) ** 2) (thesis Theorem 5).

    `params` and `x` are pytrees of arrays; only `params` leaves are learned
    (inputs and constants are fixed leaves).  `y` has the structure of the
    output.  The result has the structure of `params`: dE_t/dzeta of every leaf
    at its level t, i.e. minus the Z-IL update divided by the learning rate.

    The default (levelled) runs the efficient level-by-level schedule of
    Algorithm 5 with gamma = 1 and forward initialisation: one forward pass and
    one local VJP per vertex.  `levelled=False` runs Algorithm 5 on the raw
    graph (no identity vertices, full dynamics), which differs from backprop
    whenever a vertex is used at several depths (thesis Table 3.1).
    The returned function is jitted; it may also be used inside `jax.jit`.

    Randomness inside `fn` (dropout, noise): pass the PRNG key in `x` (or close over
    it). What a key draws depends on no parameter, so it is a fixed leaf, as it is for
    `jax.grad` with the same key; give a new key per call for a new mask. A key drawn
    inside `fn` from nothing but constants gives the same draw on every call.

    >>> import jax.numpy as jnp
    >>> fn = lambda p, x: jnp.tanh(x @ p["w"])
    >>> params, x, y = {"w": jnp.array([[0.5], [-0.3]])}, jnp.array([[1.0, 2.0]]), jnp.ones((1, 1))
    >>> by_zil = grad(fn)(params, x, y)["w"]
    >>> by_jax = jax.grad(lambda p: 0.5 * jnp.sum((fn(p, x) - y) ** 2))(params)["w"]
    >>> by_zil.shape, bool(jnp.allclose(by_zil, by_jax))
    ((2, 1), True)
    """
    if levelled:

        def run(params: Any, x: Any, y: Any) -> Any:
            return _run(fn, params, x, y, levelwise_grads)
    else:
        return simulate(fn, levelled=False)
    return jax.jit(run)


def simulate(
    fn: Fn,
    *,
    gamma: float = 1.0,
    forward_init: bool = True,
    level_scheduled: bool = True,
    levelled: bool = True,
) -> Callable[[Any, Any, Any], Any]:
    """Algorithm 5 with the full predictive-coding dynamics, for ablations.

    `simulate(fn, ...)(params, x, y)` runs K inference steps (K = the largest
    level of a parameter leaf) in which every internal value moves by
    -gamma * dE/dx_i (Eq. 3.19), and returns the recorded dE_t/dzeta of every
    parameter leaf (Eq. 3.27).  The defaults are Z-IL and equal `grad`;
    the paper's ablations (Appendix H) are `gamma != 1`, `forward_init=False`
    (values start at zero instead of the forward pass), `level_scheduled=False`
    (every leaf read at the last step K) and `levelled=False` (no identity
    vertices, Algorithm 4 skipped).  Non-differentiable values (masks, integer
    arithmetic, `stop_gradient` outputs) stay at their forward-pass values.
    """

    def run(params: Any, x: Any, y: Any) -> Any:
        def runner(s: Structure, p: list[Any], xs: list[Any], ys: list[Any]) -> list[Any]:
            return simulate_grads(
                s,
                p,
                xs,
                ys,
                gamma=gamma,
                forward_init=forward_init,
                level_scheduled=level_scheduled,
                levelled=levelled,
            )

        return _run(fn, params, x, y, runner)

    return jax.jit(run)


@dataclass(frozen=True)
class GraphInfo:
    """What Z-IL sees of `fn`: vertex counts, depth and levelling (Algorithm 4).

    `num_vertices` counts the internal vertices (one per live op output, before
    levelling), `num_params` the parameter leaves that reach the output,
    `depth` the number of Z-IL steps K, `is_levelled` whether the traced graph
    already is levelled, and `num_identities` how many identity vertices
    Algorithm 4 inserts to level it.  `primitives` counts live vertices per
    primitive name.
    """

    num_vertices: int
    num_params: int
    depth: int
    is_levelled: bool
    num_identities: int
    primitives: dict[str, int]


def graph_info(fn: Fn, params: Any, x: Any) -> GraphInfo:
    """Levelling report of the computational graph of `fn(params, x)` (shapes only)."""
    s = _build(fn, params, x)
    g = s.graph
    counts: dict[str, int] = {}
    n = 0
    for op_id in s.live_ops:
        k = sum(1 for w in g.ops[op_id].outputs if w in s.live)
        n += k
        counts[g.ops[op_id].name] = counts.get(g.ops[op_id].name, 0) + k
    return GraphInfo(
        num_vertices=n,
        num_params=sum(1 for p in g.params if p in s.live),
        depth=s.depth,
        is_levelled=s.is_levelled,
        num_identities=s.num_identities,
        primitives=counts,
    )
