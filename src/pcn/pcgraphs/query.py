"""Querying a trained PC graph (thesis section 5.1): by conditioning and by initialisation.

- Query by conditioning (Eq. 5.5): chosen value nodes (whole groups, or elements picked
  by a boolean mask) are clamped to a stimulus for every t; the others relax to the
  minimum of the energy given them.
- Query by initialisation (Eq. 5.6): chosen value nodes only START at the stimulus;
  every value node then relaxes.

Both are thin wrappers over the relaxation engine (`pcn.infer`): by default SGD on the
free values, `x <- x - gamma dE/dx` (Eq. 5.3), to a tolerance (`pcn.Tolerance`): an
example whose energy changed by less than `tol` in a step has converged and stops moving;
the loop ends when every example has, or at the step cap. The result (`pcn.Inference`)
says, for the batch and for each example, how many steps were taken and whether `tol`
was met. An energy that becomes nan or inf raises `pcn.NonFiniteEnergyError` naming the
node (the value step is too large) rather than returning nan.
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_batch, split_clamp
from .._finite import non_finite_errors
from ..energies import check_node_data
from ..graph import PCGraph, Values
from ..inference import Inference, run_inference
from ..options import Stop, Tolerance, ValueOptimizer, as_stop, value_optimizer_of
from ..typing import Key, Mask, ValuesIn
from .topology import Topology

QUERY_STOP = Tolerance(tol=1e-6, max_steps=1000)
_ALL_CLAMPED = (
    "The query clamps every node, so there is nothing to infer; leave some neurons free "
    "(or use `initialise` to only set starting values)."
)


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


def condition(
    graph: PCGraph,
    provided: ValuesIn,
    *,
    clamp: Mapping[str, Mask] | None = None,
    start: ValuesIn | None = None,
    stop: int | Stop = QUERY_STOP,
    gamma: float | None = None,
    value_optimizer: ValueOptimizer | None = None,
    key: Key | None = None,
    std: float = 0.1,
    check_finite: bool = True,
) -> Inference:
    """Query by conditioning (Eq. 5.5): clamp the `provided` values, relax the rest.

    Args:
        graph: the trained PC graph.
        provided: `{name: (batch, *shape)}`, the stimulus; each provided node is clamped
            whole unless `clamp` gives it a mask.
        clamp: `{name: mask}` clamps only the elements of a provided node where the
            boolean `mask` (broadcastable to its values) is True; the others start at
            the provided values and relax.
        start: starting values of other nodes; the rest start at zero, or at
            N(0, std^2) if `key` is given ("randomly re-initialised").
        stop: `pcn.Tolerance(tol, max_steps)` (default: 1e-6 within 1000 steps), or a
            number of steps.
        gamma: SGD step on the values (default 0.1), shorthand for
            `value_optimizer=pcn.SGD(gamma)`.
        value_optimizer: `pcn.SGD(gamma, momentum=0.9)` (heavy ball: near 1 it speeds up
            the slow directions of a stiff graph without changing the minimum it
            converges to) or any optax transformation.
        check_finite: raise if an energy becomes nan or inf (else return what there is).

    Raises:
        ValueError: an unknown node, a shape that does not match, or a query that clamps
            every node (nothing to infer).
        NonFiniteEnergyError: (with `check_finite`) an energy became nan or inf; the
            message names the node. Lower `gamma`.
    """
    clamp = dict(clamp or {})
    start = dict(start or {})
    for name in (*provided, *clamp, *start):
        if name not in graph.names:
            raise ValueError(
                f"The query names node {name!r}, which is not in the graph; "
                f"nodes are {list(graph.names)}."
            )
    unprovided = [n for n in clamp if n not in provided]
    if unprovided:
        raise ValueError(
            f"`clamp` gives masks for nodes {unprovided} that have no provided values; "
            "pass their values in `provided`."
        )
    provided = {n: jnp.asarray(v) for n, v in provided.items()}
    check_batch(graph, {**start, **provided})
    whole = {n: v for n, v in provided.items() if n not in clamp}
    values = _start_values(graph, {**start, **whole}, _batch_of(start, provided), key, std)
    spec: dict[str, bool | jax.Array] = {name: True for name in whole}
    for name, mask in clamp.items():
        try:
            mask = jnp.broadcast_to(jnp.asarray(mask, dtype=bool), values[name].shape)
        except ValueError:
            raise ValueError(
                f"The mask clamping node {name!r} has shape {np.shape(mask)}, which does not "
                f"broadcast to the node's values {values[name].shape}."
            ) from None
        # the clamped elements at the stimulus, the others where they start
        values[name] = jnp.where(mask, provided[name], values[name])
        spec[name] = mask
    clamped, masks = split_clamp(graph, values, spec, all_clamped=_ALL_CLAMPED)
    return _query(graph, values, clamped, masks, stop, gamma, value_optimizer, check_finite)


def initialise(
    graph: PCGraph,
    start: ValuesIn,
    *,
    stop: int | Stop = QUERY_STOP,
    gamma: float | None = None,
    value_optimizer: ValueOptimizer | None = None,
    key: Key | None = None,
    std: float = 0.1,
    check_finite: bool = True,
) -> Inference:
    """Query by initialisation (Eq. 5.6): `start` sets the values at t = 0 only (other
    nodes: zero, or N(0, std^2) with `key`); every node then relaxes until `stop`.
    Arguments and errors as in `condition`."""
    check_batch(graph, start)
    values = _start_values(graph, start, _batch_of(start), key, std)
    clamped, masks = split_clamp(graph, values, {})
    return _query(graph, values, clamped, masks, stop, gamma, value_optimizer, check_finite)


def _query(graph, values, clamped, masks, stop, gamma, value_optimizer, check_finite) -> Inference:
    """The compiled relaxation of a query, a non-finite energy turned into a plain error."""
    check_node_data(graph.nodes, values)
    stop = as_stop(stop)
    value_optimizer = value_optimizer_of(gamma, value_optimizer, default_gamma=0.1)
    with non_finite_errors(graph.names):
        return _relax(graph, values, masks, clamped, stop, value_optimizer, check_finite)


@eqx.filter_jit
def _relax(graph, values, masks, clamped, stop, value_optimizer, check_finite) -> Inference:
    return run_inference(
        graph,
        values,
        clamped=clamped,
        masks=masks,
        stop=stop,
        value_optimizer=value_optimizer,
        check_finite=check_finite,
    )


def fix_neurons(
    topology: Topology, neurons: np.ndarray | list[int], stimulus: jax.Array
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """`(provided, clamp)` for `condition` that clamp the neurons with global indices
    `neurons` (Eq. 5.5's set I) to `stimulus` of shape (batch, len(neurons)): each group
    that holds one of them is provided, with a mask of the neurons clamped.

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
    provided: dict[str, jax.Array] = {}
    clamp: dict[str, jax.Array] = {}
    for column, neuron in enumerate(neurons):
        group, pos = topology.locate(neuron)
        if group not in provided:
            size = len(topology.groups[group])
            provided[group], clamp[group] = jnp.zeros((batch, size)), jnp.zeros((size,), bool)
        provided[group] = provided[group].at[:, pos].set(stimulus[:, column])
        clamp[group] = clamp[group].at[pos].set(True)
    return provided, clamp
