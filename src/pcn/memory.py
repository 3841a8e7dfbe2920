"""Memory of a compiled training step, as XLA plans it: how the papers' bound
M_PC < 2 M_BP (beyond-Gaussians paper, "Memory consumption") is checked here.

XLA's `compile().memory_analysis()` reports the bytes of the step's arguments (weights,
optimiser state, batch), outputs, the outputs that reuse argument buffers (aliased), and
temporaries (activations, relaxed values, errors, gradients). The step's peak is at most
arguments + outputs + temporaries - aliased; the figure is exact for the compiled program,
the same on every run, and needs no timing or sampling.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import optax

from .algorithms import AbstractAlgorithm, Batch
from .graph import PCGraph


class StepMemory(NamedTuple):
    """Bytes of one compiled training step."""

    temp: int  # intermediate buffers: activations, values, errors, gradients
    arguments: int  # weights, optimiser state, batch
    output: int  # new weights and optimiser state, step info
    aliased: int  # outputs written into argument buffers
    total: int  # arguments + output + temp - aliased

    def as_dict(self) -> dict[str, int]:
        """The figures by name (for results.json)."""
        return self._asdict()


def step_memory(
    graph: PCGraph,
    algorithm: AbstractAlgorithm,
    optimizer: optax.GradientTransformation,
    batch: Batch,
    *,
    key: jax.Array | None = None,
) -> StepMemory:
    """The memory XLA plans for one training step of `algorithm` on `graph` with weight
    optimiser `optimizer` and a batch shaped like `batch` (nothing is run)."""
    params, static = eqx.partition(graph, eqx.is_inexact_array)

    def one_step(params, opt_state, batch, key):
        g, opt_state, info = algorithm.step(
            eqx.combine(params, static), opt_state, batch, optimizer=optimizer, key=key
        )
        return eqx.filter(g, eqx.is_inexact_array), opt_state, info

    lowered = jax.jit(one_step).lower(params, optimizer.init(params), batch, key)
    stats = lowered.compile().memory_analysis()
    if stats is None:
        raise RuntimeError(f"The {jax.default_backend()} backend reports no memory analysis.")
    temp, arguments = int(stats.temp_size_in_bytes), int(stats.argument_size_in_bytes)
    output, aliased = int(stats.output_size_in_bytes), int(stats.alias_size_in_bytes)
    return StepMemory(temp, arguments, output, aliased, arguments + output + temp - aliased)
