"""How closely one training algorithm's weight update follows another's, per weight array.

PC approaches backprop only in limits (small errors, converged relaxation); how far a
given setting is from them shows in the update it makes. `update_alignment` runs one
step of each algorithm from the same weights on the same batch under plain SGD with rate
1 (so the change is minus the gradient the algorithm follows; for several updates per
batch, their sum) and reports, for every weight array, the cosine between the two changes
and the ratio of their norms. Cosine 1 and ratio 1 mean the same update.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .algorithms import AbstractAlgorithm, Batch
from .graph import PCGraph


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
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cosine = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
        name = _name(graph, path)
        out[name] = Alignment(cosine, float(na / nb) if nb > 0 else float("nan"))
    return out


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
