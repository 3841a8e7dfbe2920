"""The identity edge (kept apart from `layers` so the graph core does not import it)."""

from __future__ import annotations

import equinox as eqx
import jax


class Identity(eqx.Module):
    """mu = x: the edge of identity nodes inserted when levelling a graph."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x
