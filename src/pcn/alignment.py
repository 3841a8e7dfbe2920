"""How closely one training algorithm's weight update follows another's, per weight array.

PC approaches backprop only in limits (small errors, converged relaxation); how far a
given setting is from them shows in the update it makes. `update_alignment` runs one
step of each algorithm from the same weights on the same batch under plain SGD with rate
1 (so the change is minus the gradient the algorithm follows; for several updates per
batch, their sum) and reports, for every weight array, the cosine between the two changes
and the ratio of their norms. Cosine 1 and ratio 1 mean the same update.

`ppc_step_alignment` looks inside one batch of `pcn.PPC`: the weight gradient at each of
its T + 1 steps against the reference's, with the weights moving as PPC moves them and
with them held still. Where the two differ, the errors that PPC's own weight steps induce
(each step moves the predictions away from the values) outweigh the error that inference
carries down from the label.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._engine import _as_optax
from ._typed import apply_updates
from .algorithms import BP, AbstractAlgorithm, Batch
from .graph import PCGraph
from .init import AbstractCarryingInitialiser
from .ppc import PPC, _mean_cotangent, _ones


class Alignment(NamedTuple):
    """One weight array's update under an algorithm, compared with a reference's."""

    cosine: float  # cos of the angle between the two updates (nan if either is zero)
    norm_ratio: float  # ||update|| / ||reference update|| (nan if the reference is zero)


def weight_update(
    graph: PCGraph, algorithm: AbstractAlgorithm, batch: Batch, *, key: jax.Array | None = None
) -> PCGraph:
    """The change in the weights that one step of `algorithm` makes on `batch` under
    `optax.sgd(1.0)`: minus the gradient it follows (arrays; non-weights are None)."""
    optimizer = optax.sgd(1.0)
    params = eqx.filter(graph, eqx.is_inexact_array)
    new, _, _ = eqx.filter_jit(algorithm.step)(
        graph, optimizer.init(params), batch, optimizer=optimizer, key=key
    )
    return jax.tree.map(jnp.subtract, eqx.filter(new, eqx.is_inexact_array), params)


def update_alignment(
    graph: PCGraph,
    algorithm: AbstractAlgorithm,
    reference: AbstractAlgorithm,
    batch: Batch,
    *,
    key: jax.Array | None = None,
) -> dict[str, Alignment]:
    """Per weight array of `graph` (named by its edge, e.g. `x->h1.weight`),
    the alignment of `algorithm`'s update with `reference`'s, from the same weights on
    the same `batch` (and `key`)."""
    mine = weight_update(graph, algorithm, batch, key=key)
    theirs = weight_update(graph, reference, batch, key=key)
    paths = jax.tree_util.tree_flatten_with_path(mine)[0]
    out: dict[str, Alignment] = {}
    for (path, a), b in zip(paths, jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        nb = np.linalg.norm(b)
        ratio = float(np.linalg.norm(a) / nb) if nb > 0 else float("nan")
        out[_name(graph, path)] = Alignment(_cosine(a, b), ratio)
    return out


class StepAlignment(NamedTuple):
    """One weight array's gradient at each of PPC's steps t = 0 .. T, against the
    reference's gradient from the weights the batch started with."""

    moving: np.ndarray  # (T + 1,) cosines, the weights updated as PPC updates them
    still: np.ndarray  # (T + 1,) cosines, the weights held at their start
    moving_rms: np.ndarray  # (T + 1,) root mean square of the gradient, weights moving
    still_rms: np.ndarray  # (T + 1,) the same, weights held


def ppc_step_alignment(
    graph: PCGraph,
    algorithm: PPC,
    batch: Batch,
    *,
    optimizer: optax.GradientTransformation,
    opt_state: optax.OptState,
    reference: AbstractAlgorithm | None = None,
    key: jax.Array | None = None,
) -> dict[str, StepAlignment]:
    """Per weight array of `graph`, how PPC's weight gradient at each step of one batch
    lines up with `reference`'s (BP by default): once with the weights moving under
    `optimizer` from `opt_state` exactly as `algorithm.step` moves them, once held still
    (then the steps before the label's error reaches an array give it no gradient, cosine
    nan, and with forward initialisation the first that does is BP's direction).

    A diagnostic, one compiled call per step: PPC itself trains as one program."""
    if isinstance(algorithm.init, AbstractCarryingInitialiser):
        raise TypeError(
            f"ppc_step_alignment starts every batch afresh, but `init` is "
            f"{type(algorithm.init).__name__}, which carries values between batches; use "
            "`forward_init`, `zeros_init` or `NormalInit`."
        )
    reference_update = weight_update(graph, reference or BP(), batch, key=key)
    names = [_name(graph, path) for path, _ in jax.tree_util.tree_flatten_with_path(
        reference_update)[0]]  # fmt: skip
    target = [np.asarray(a, np.float64).ravel() for a in jax.tree.leaves(reference_update)]

    def measure(moving: bool) -> tuple[np.ndarray, np.ndarray]:
        steps, _ = _ppc_gradients(graph, algorithm, batch, optimizer, opt_state, moving, key)
        cosines = [[_cosine(-g, r) for g, r in zip(grads, target, strict=True)] for grads in steps]
        rms = [[float(np.sqrt(np.mean(g**2))) for g in grads] for grads in steps]
        return np.asarray(cosines).T, np.asarray(rms).T

    (moving, moving_rms), (still, still_rms) = measure(True), measure(False)
    return {
        name: StepAlignment(moving[i], still[i], moving_rms[i], still_rms[i])
        for i, name in enumerate(names)
    }


def _ppc_gradients(
    graph: PCGraph,
    algorithm: PPC,
    batch: Batch,
    optimizer: optax.GradientTransformation,
    opt_state: optax.OptState,
    moving: bool,
    key: jax.Array | None,
) -> tuple[list[list[np.ndarray]], PCGraph]:
    """PPC's weight gradient at each step t = 0 .. T of one batch (flattened arrays), and
    the graph it ends with: `algorithm.step`'s schedule, one step at a time."""
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    clamped = dict(batch)
    free = {n: v for n, v in algorithm.init(graph, batch, key=key).items() if n not in clamped}
    value_opt = _as_optax(algorithm.value_optimizer)
    p, w_state, v_state = params, opt_state, value_opt.init(free)
    steps = []
    for t in range(algorithm.steps + 1):
        weight_grads, value_grads = _step_gradients(p, static, clamped, free)
        steps.append([np.asarray(g, np.float64).ravel() for g in jax.tree.leaves(weight_grads)])
        if t < algorithm.steps:
            updates, v_state = value_opt.update(value_grads, v_state, free)
            free = apply_updates(free, updates)
        if moving and t > 0 and t % algorithm.weight_every == 0:
            updates, w_state = optimizer.update(weight_grads, w_state, p)
            p = eqx.apply_updates(p, updates)
    return steps, eqx.combine(p, static)


@eqx.filter_jit
def _step_gradients(
    params: Any, static: Any, clamped: dict[str, jax.Array], free: dict[str, jax.Array]
) -> tuple[Any, dict[str, jax.Array]]:
    """The weight gradient (energy averaged over the batch) and the value gradient (summed)
    at one step, from one forward pass; compiled once per graph shape, for every step and
    batch of `ppc_step_alignment`."""

    def energies(p: Any, f: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return eqx.combine(p, static).node_energies({**clamped, **f})

    per_node, pullback = jax.vjp(energies, params, free)
    weight_grads, _ = pullback(_mean_cotangent(per_node))
    _, value_grads = pullback(_ones(per_node))
    return weight_grads, value_grads


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _name(graph: PCGraph, path: tuple) -> str:
    """`x->h1.weight` for an edge's array, the key path otherwise (shared modules)."""
    if (
        len(path) > 2
        and getattr(path[0], "name", None) == "edges"
        and isinstance(path[1], jax.tree_util.SequenceKey)
    ):
        edge = graph.edges[path[1].idx]
        rest = jax.tree_util.keystr(path[2:]).removeprefix(".module")
        return f"{'+'.join(edge.parents)}->{edge.child}{rest}"
    return jax.tree_util.keystr(path)
