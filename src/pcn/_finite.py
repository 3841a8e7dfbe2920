"""Stopping loudly when an energy or the data becomes nan or inf, naming the node.

Two mechanisms:
- A training step computes a status code (`step_status`, indexing `step_problems`),
  skips its own update when the code is not zero, and `TrainStep` raises the code's
  error on the host a few calls later. Raising inside the program costs a `lax.cond`,
  and raising at the very call a wait for the step to finish: 5-15% of a small step.
- A relaxation or query, whose values the caller reads at once, checks inside with
  `eqx.branched_error_if`, one message per node (`raise_if_not_finite`). JAX wraps the
  message in a long callback traceback, and `non_finite_errors` turns it back into a
  plain exception by looking for the same message, formatted with each node's name (one
  shared constant, no parsing of the text)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

T = TypeVar("T")

NON_FINITE_MESSAGE = (
    "The energy of node {name!r} became non-finite (nan or inf) during relaxation. The "
    "value step is too large for this graph: lower `gamma` (or the value optimiser's "
    "learning rate; queries on a fully connected graph want a smaller one than training "
    "used), or lower the weight learning rate."
)


NON_FINITE_DATA_MESSAGE = (
    "The data given for node {name!r} holds nan or inf values: the batch, not the model or "
    "its step sizes, is at fault. Clean or drop those examples (np.isfinite finds them)."
)


class NonFiniteEnergyError(FloatingPointError):
    """An energy became nan or inf during relaxation (the message names the node)."""


NON_FINITE_LOSS_MESSAGE = (
    "The training loss became non-finite (nan or inf) on finite data: the weights diverged. "
    "Lower the weight learning rate (or the value step `gamma` of IL)."
)


class NonFiniteDataError(ValueError):
    """A batch given to a training step holds nan or inf (the message names the node)."""


class Problem(NamedTuple):
    """What a non-zero status code of a step means: its error type and message."""

    error: type[Exception]
    message: str


def _checks(
    node_energy: Mapping[str, jax.Array],
    data: Mapping[str, jax.Array] | None,
    loss: jax.Array | None,
) -> tuple[list[jax.Array], list[Problem]]:
    """Each check's flag (True: finite) with its problem, data first: non-finite data is
    the cause of what follows (integer data, such as token ids, is always finite)."""
    finite, problems = [], []
    for name, value in (data or {}).items():
        if jnp.issubdtype(value.dtype, jnp.inexact):
            finite.append(jnp.all(jnp.isfinite(value)))
            problems.append(Problem(NonFiniteDataError, NON_FINITE_DATA_MESSAGE.format(name=name)))
    for name, energy in node_energy.items():
        finite.append(jnp.all(jnp.isfinite(energy)))
        problems.append(Problem(NonFiniteEnergyError, NON_FINITE_MESSAGE.format(name=name)))
    if loss is not None:
        finite.append(jnp.all(jnp.isfinite(loss)))
        problems.append(Problem(NonFiniteEnergyError, NON_FINITE_LOSS_MESSAGE))
    return finite, problems


def step_problems(names: Iterable[str]) -> tuple[Problem, ...]:
    """The problems a training step's status code indexes (code = 1 + index): the data
    of each node, then the energy of each node, then the loss."""
    names = tuple(names)
    return (
        *(Problem(NonFiniteDataError, NON_FINITE_DATA_MESSAGE.format(name=n)) for n in names),
        *(Problem(NonFiniteEnergyError, NON_FINITE_MESSAGE.format(name=n)) for n in names),
        Problem(NonFiniteEnergyError, NON_FINITE_LOSS_MESSAGE),
    )


def step_status(
    names: Iterable[str],
    *,
    data: Mapping[str, jax.Array],
    node_energy: Mapping[str, jax.Array],
    loss: jax.Array,
) -> jax.Array:
    """An int32 code: 0 when the floating-point `data`, every node's energy and `loss`
    are finite, else 1 + the index in `step_problems(names)` of the first that is not."""
    names = tuple(names)

    def finite(value: jax.Array | None) -> jax.Array:
        if value is None or not jnp.issubdtype(value.dtype, jnp.inexact):
            return jnp.asarray(True)  # absent, or integer (token ids): always finite
        return jnp.all(jnp.isfinite(value))

    flags = jnp.stack(
        [finite(data.get(n)) for n in names]
        + [finite(node_energy.get(n)) for n in names]
        + [finite(loss)]
    )
    return jnp.where(jnp.all(flags), 0, 1 + jnp.argmin(flags)).astype(jnp.int32)


def raise_if_not_finite(
    node_energy: Mapping[str, jax.Array],
    target: T,
    *,
    data: Mapping[str, jax.Array] | None = None,
    loss: jax.Array | None = None,
) -> T:
    """`target`, or (at run time, inside jit too) an error naming the first problem: a
    node's `data` holding nan or inf (checked first: it is the cause of what follows),
    then a node whose energy is nan or inf, then a non-finite `loss`.

    One check for all of them, and `target` best a scalar: `eqx.branched_error_if` is a
    `lax.cond` whose branches return `target`, so a large target (a whole model) is
    copied in every run of the program (integer data, such as token ids, is always
    finite and not checked)."""
    finite, problems = _checks(node_energy, data, loss)
    if not finite:
        return target
    flags = jnp.stack(finite)
    messages = [problem.message for problem in problems]
    return eqx.branched_error_if(target, ~jnp.all(flags), jnp.argmin(flags), messages)


@contextlib.contextmanager
def non_finite_errors(names: Iterable[str]) -> Iterator[None]:
    """Re-raise the run-time error of `raise_if_not_finite` as a plain exception with its
    message: `NonFiniteDataError` for a node's data, `NonFiniteEnergyError` for a node's
    energy (one of `names`) or for the loss."""
    try:
        yield
    except Exception as err:
        text = str(err)
        if NON_FINITE_LOSS_MESSAGE in text:
            raise NonFiniteEnergyError(NON_FINITE_LOSS_MESSAGE) from None
        for name in names:
            message = NON_FINITE_DATA_MESSAGE.format(name=name)
            if message in text:
                raise NonFiniteDataError(message) from None
            message = NON_FINITE_MESSAGE.format(name=name)
            if message in text:
                raise NonFiniteEnergyError(message) from None
        raise
