"""Activation functions by name, so models and the CLI can take `activation="tanh"`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ._validation import check_choice

Activation = Callable[[jax.Array], jax.Array]


def identity(x: jax.Array) -> jax.Array:
    """f(x) = x."""
    return x


def hard_tanh(x: jax.Array) -> jax.Array:
    """f(x) = clip(x, -1, 1)."""
    return jnp.clip(x, -1.0, 1.0)


ACTIVATIONS: dict[str, Activation] = {
    "identity": identity,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "gelu": jax.nn.gelu,
    "elu": jax.nn.elu,
    "sigmoid": jax.nn.sigmoid,
    "hard_tanh": hard_tanh,
}


def get_activation(activation: str | Activation) -> Activation:
    """Return the activation named `activation` (a callable passes through unchanged).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if callable(activation):
        return activation
    check_choice("activation", activation, ACTIVATIONS)
    return ACTIVATIONS[activation]
