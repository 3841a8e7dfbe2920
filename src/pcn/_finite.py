"""Stopping loudly when an energy becomes nan or inf, naming the node.

Inside compiled code the check is `eqx.branched_error_if` with one message per node,
built from `NON_FINITE_MESSAGE`; JAX wraps the message in a long callback traceback, and
`non_finite_errors` turns it back into a plain `NonFiniteEnergyError` by looking for the
same message, formatted with each of the graph's node names (one shared constant, no
parsing of the text).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

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
    finite, messages = [], []
    for name, value in (data or {}).items():
        if jnp.issubdtype(value.dtype, jnp.inexact):
            finite.append(jnp.all(jnp.isfinite(value)))
            messages.append(NON_FINITE_DATA_MESSAGE.format(name=name))
    for name, energy in node_energy.items():
        finite.append(jnp.all(jnp.isfinite(energy)))
        messages.append(NON_FINITE_MESSAGE.format(name=name))
    if loss is not None:
        finite.append(jnp.all(jnp.isfinite(loss)))
        messages.append(NON_FINITE_LOSS_MESSAGE)
    if not finite:
        return target
    flags = jnp.stack(finite)
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
