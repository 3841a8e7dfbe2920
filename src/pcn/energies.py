"""Energy families of value nodes: how far a node's value is from its prediction.

Each family gives `energy(value, mu)`, one scalar per example (summed over the node's
own axes), and `mean(mu)`, the value that makes the energy zero (what forward
initialisation sets). The Gaussian family is the classic PC energy of thesis Eq. 2.3;
the categorical family is the KL energy of a softmax layer
(`papers/pc-beyond-gaussian-distributions.md`, Eq. 10).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._validation import check_positive


def _sum_per_example(x: jax.Array) -> jax.Array:
    return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


class Gaussian(eqx.Module):
    """E = precision / 2 * ||value - mu||^2 per example (thesis Eq. 2.3).

    `precision` is 1 / sigma^2, fixed (not trained).
    """

    precision: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        check_positive("precision", self.precision, hint="Pass `Gaussian(precision=1.0)`.")

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        """Per-example energy, shape `(batch,)`."""
        return 0.5 * self.precision * _sum_per_example(jnp.square(value - mu))

    def mean(self, mu: jax.Array) -> jax.Array:
        """The zero-energy value for prediction `mu`: `mu` itself."""
        return mu

    def present(self, value: jax.Array) -> jax.Array:
        """What children see of the node: its value."""
        return value


class Categorical(eqx.Module):
    """E = KL(value || softmax(mu)) per example; the prediction `mu` holds logits.

    With a one-hot `value` this is the cross-entropy of a softmax output layer. The
    value is a probability vector over the last axis.
    """

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        """Per-example energy, shape `(batch,)`."""
        log_q = jax.nn.log_softmax(mu, axis=-1)
        kl = jax.scipy.special.xlogy(value, value) - value * log_q
        return _sum_per_example(kl)

    def mean(self, mu: jax.Array) -> jax.Array:
        """The zero-energy value for logits `mu`: `softmax(mu)`."""
        return jax.nn.softmax(mu, axis=-1)

    def present(self, value: jax.Array) -> jax.Array:
        """What children see of the node: the probability vector itself."""
        return value


class SoftmaxCategorical(eqx.Module):
    """A categorical node that holds LOGITS phi, so it can relax freely (Eq. 10 of
    `papers/pc-beyond-gaussian-distributions.md`, the F_KL energy of a softmax layer):

        E = KL(softmax(phi) || softmax(mu)),   children see softmax(phi).

    Its value stays a distribution however it moves, unlike gradient steps on a
    probability vector. Clamp labels with `Categorical` instead (one-hot has no logits).
    """

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        """Per-example energy, shape `(batch,)`."""
        log_p = jax.nn.log_softmax(value, axis=-1)
        kl = jnp.exp(log_p) * (log_p - jax.nn.log_softmax(mu, axis=-1))
        return _sum_per_example(kl)

    def mean(self, mu: jax.Array) -> jax.Array:
        """A zero-energy value for logits `mu`: `mu` itself (logits up to a shift)."""
        return mu

    def present(self, value: jax.Array) -> jax.Array:
        """What children see of the node: `softmax(value)`."""
        return jax.nn.softmax(value, axis=-1)


EnergyFamily = Gaussian | Categorical | SoftmaxCategorical
