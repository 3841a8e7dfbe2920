"""`infer`: relax the free value nodes of a graph to lower its energy, in one compiled loop.

    x_{t+1} = x_t + value_optimizer_update(dE/dx_t)      (SGD with step gamma: thesis Eq. 2.4)

Clamping is data: `clamp={"x": True}` fixes a whole node; `clamp={"x": mask}` fixes the
elements where the boolean `mask` (broadcastable to the node's values) is true. The stop
is a number of steps T (`FixedSteps`: a `lax.scan` with an energy trace) or a tolerance
with a step cap (`Tolerance`: a bounded `lax.while_loop`; the result says per example how
many steps it took and whether it converged). The value optimiser is `pcn.SGD` (or the
shorthand `gamma=`) or any optax transformation. Every other loop over values in pcn (the
train steps, the PC-graph queries) runs on the same engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ._checks import Clamp, check_values, split_clamp
from ._engine import relax
from ._finite import non_finite_errors, raise_if_not_finite
from ._typed import total
from .energies import check_node_data
from .graph import PCGraph
from .options import Stop, ValueOptimizer, as_stop, value_optimizer_of
from .typing import (
    EnergyTrace,
    ExampleFlags,
    ExampleSteps,
    Flag,
    PerExample,
    Scalar,
    StepCount,
    Values,
    ValuesIn,
)


class Inference(NamedTuple):
    """Result of `infer`: the relaxed values, what the energy did, and whether (and when)
    each example met the stop's condition."""

    values: Values
    # FixedSteps: (T + 1,) mean energy per example before each step, then after the last;
    # Tolerance: (1,), the mean energy per example at the final values
    energy_trace: EnergyTrace
    final_energy: PerExample  # energy (Eq. 2.3) of each example at the final values
    node_energy: dict[str, Scalar]  # {name: mean energy per example} at the final values
    steps: StepCount  # steps taken (by the slowest example)
    converged: Flag  # every example met `tol` (always True for FixedSteps)
    example_steps: ExampleSteps  # steps each example moved
    example_converged: ExampleFlags  # the example met `tol` within the cap


def infer(
    graph: PCGraph,
    values: ValuesIn,
    *,
    clamp: Clamp,
    stop: int | Stop,
    gamma: float | None = None,
    value_optimizer: ValueOptimizer | None = None,
    check_finite: bool = True,
    fuse: bool = True,
) -> Inference:
    """Relax the values not fixed by `clamp` until `stop`.

    Args:
        graph: the model.
        values: starting values, `{name: (batch, *shape)}` for every node.
        clamp: `{name: True}` fixes a node, `{name: mask}` fixes the masked elements.
        stop: a number of steps T >= 1 (or `pcn.FixedSteps(T)`), or
            `pcn.Tolerance(tol, max_steps)`.
        gamma: SGD step on the values; shorthand for `value_optimizer=pcn.SGD(gamma)`.
        value_optimizer: `pcn.SGD(gamma, momentum=...)` or any optax transformation.
        check_finite: raise (naming the node) if an energy becomes nan or inf.
        fuse: with plain SGD and a fixed T, relax nodes whose prediction is fixed in an
            exact fused form (the same trajectory, fewer products); `False` never does.

    Returns:
        `Inference`; with `FixedSteps`, `energy_trace[t]` is the mean energy per example
        before step t, and `energy_trace[T]` after the last step.

    Raises:
        NonFiniteEnergyError: (with `check_finite`) an energy became nan or inf.
        NonFiniteDataError: (with `check_finite`) a clamped value holds nan or inf.
        ValueError: a bad clamp or shape, or data a node's energy cannot take (e.g. a
            categorical value that is not a probability vector).
    """
    check_node_data(graph.nodes, values)  # concrete data only; traced values pass
    stop = as_stop(stop)
    value_optimizer = value_optimizer_of(gamma, value_optimizer, default_gamma=None)
    with non_finite_errors(graph.names):
        return _infer(
            graph,
            values,
            clamp=clamp,
            stop=stop,
            value_optimizer=value_optimizer,
            check_finite=check_finite,
            fuse=fuse,
        )


@eqx.filter_jit
def _infer(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamp: Clamp,
    stop: Stop,
    value_optimizer: ValueOptimizer,
    check_finite: bool,
    fuse: bool,
) -> Inference:
    check_values(graph, values)
    clamped, masks = split_clamp(graph, values, clamp)
    return run_inference(
        graph,
        values,
        clamped=clamped,
        masks=masks,
        stop=stop,
        value_optimizer=value_optimizer,
        check_finite=check_finite,
        fuse=fuse,
    )


def run_inference(
    graph: PCGraph,
    values: Mapping[str, jax.Array],
    *,
    clamped: frozenset[str],
    masks: Mapping[str, jax.Array],
    stop: Stop,
    value_optimizer: ValueOptimizer,
    check_finite: bool,
    fuse: bool = True,
) -> Inference:
    """`infer` on checked, split clamps, inside a caller's compiled function (the
    PC-graph queries): the engine's relaxation and the result's summaries."""
    result = relax(
        graph,
        values,
        clamped=clamped,
        masks=masks,
        stop=stop,
        value_optimizer=value_optimizer,
        fuse=fuse,
    )
    node_energy = graph.node_energies(result.values)
    mean = total(jnp.mean(e) for e in node_energy.values())
    if check_finite:  # a nan in clamped data is the data's fault, not the value step's
        held = {n: v for n, v in values.items() if n in clamped or n in masks}
        # tied to a scalar output: the check costs no copy of the values
        mean = raise_if_not_finite(node_energy, mean, data=held)
    final = result.example_energy
    if final is None:
        final = total(node_energy.values())
    out_values = result.values
    return Inference(
        out_values,
        jnp.concatenate([result.energy_trace, jnp.reshape(mean, (1,))]),
        final,
        {n: jnp.mean(e) for n, e in node_energy.items()},
        result.steps,
        jnp.all(result.example_converged),
        result.example_steps,
        result.example_converged,
    )
