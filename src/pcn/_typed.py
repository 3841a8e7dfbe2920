"""Typed forms of a few calls whose annotations are narrower than what they accept.

The builtin `sum` starts from the integer 0, and optax annotates its trees as nested
arrays, lists and dicts, which Equinox modules (pytrees) are not; these wrappers do the
same work and tell the type checker so.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from typing import Any, TypeVar, cast

import jax
import optax

Tree = TypeVar("Tree")


def total(terms: Iterable[jax.Array]) -> jax.Array:
    """The sum of `terms` (at least one)."""
    return functools.reduce(operator.add, terms)


def apply_updates(values: dict[str, jax.Array], updates: Any) -> dict[str, jax.Array]:
    """`optax.apply_updates` on a dictionary of value nodes."""
    return cast(dict[str, jax.Array], optax.apply_updates(values, updates))


def optimizer_init(optimizer: optax.GradientTransformation, params: Any) -> optax.OptState:
    """`optimizer.init` on any pytree (an Equinox module included)."""
    return optimizer.init(params)


def optimizer_update(
    optimizer: optax.GradientTransformation, grads: Tree, opt_state: optax.OptState, params: Any
) -> tuple[Tree, optax.OptState]:
    """`optimizer.update` on any pytree: the updates have the structure of `grads`."""
    updates, opt_state = optimizer.update(cast(Any, grads), opt_state, params)
    return cast(Tree, updates), opt_state


def is_ready(array: jax.Array) -> bool:
    """Whether the computation producing `array` has finished (`jax.Array` declares no
    `is_ready`, which every concrete array has)."""
    return cast(Any, array).is_ready()
