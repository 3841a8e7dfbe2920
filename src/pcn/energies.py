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


class Bernoulli(eqx.Module):
    """Independent Bernoulli units; the prediction `mu` holds logits and the value holds
    probabilities in [0, 1] (binary or grey-level data, clamped):

        E = sum_i KL(Bern(x_i) || Bern(sigmoid(mu_i)))

    which, for binary x, is the binary cross-entropy. Free nodes use `BernoulliLogits`.
    """

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        """Per-example energy, shape `(batch,)`."""
        xlogx = jax.scipy.special.xlogy
        neg = xlogx(value, value) + xlogx(1.0 - value, 1.0 - value)
        cross = value * jax.nn.log_sigmoid(mu) + (1.0 - value) * jax.nn.log_sigmoid(-mu)
        return _sum_per_example(neg - cross)

    def mean(self, mu: jax.Array) -> jax.Array:
        """The zero-energy value for logits `mu`: `sigmoid(mu)`."""
        return jax.nn.sigmoid(mu)

    def present(self, value: jax.Array) -> jax.Array:
        """What children see of the node: the probabilities themselves."""
        return value


class BernoulliLogits(eqx.Module):
    """Independent Bernoulli units held as LOGITS phi, free to relax:
    E = sum_i KL(Bern(sigmoid(phi_i)) || Bern(sigmoid(mu_i))); children see sigmoid(phi)."""

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        """Per-example energy, shape `(batch,)`."""
        p = jax.nn.sigmoid(value)
        log_p, log_q = jax.nn.log_sigmoid(value), jax.nn.log_sigmoid(mu)
        log_1p, log_1q = jax.nn.log_sigmoid(-value), jax.nn.log_sigmoid(-mu)
        return _sum_per_example(p * (log_p - log_q) + (1.0 - p) * (log_1p - log_1q))

    def mean(self, mu: jax.Array) -> jax.Array:
        """The zero-energy value for logits `mu`: `mu` itself."""
        return mu

    def present(self, value: jax.Array) -> jax.Array:
        """What children see of the node: `sigmoid(value)`."""
        return jax.nn.sigmoid(value)


EnergyFamily = Gaussian | Categorical | SoftmaxCategorical | Bernoulli | BernoulliLogits
