"""Energy families of value nodes: how far a node's value is from its prediction.

Each family gives `energy(value, mu)`, one scalar per example (summed over the node's
own axes), and `mean(mu)`, the value that makes the energy zero (what forward
initialisation sets). The Gaussian family is the classic PC energy of thesis Eq. 2.3;
the categorical family is the KL energy of a softmax layer
(`papers/pc-beyond-gaussian-distributions.md`, Eq. 10). `DiagonalGaussian` has a fixed
or learned diagonal variance (F-tilde, Eq. 5), `ReparamGaussian` is the VAE bottleneck
whose value holds a mean AND a log-variance (section 4.2, Fig. 4), and `MonteCarloKL`
estimates the KL energy (Eq. 9) by sampling for families without a closed form.

Every family implements `AbstractEnergy` (Equinox's abstract/final pattern): a new
family is one subclass that defines `energy`, and overrides `mean` / `present` where its
zero-energy value or what children see is not the value itself, `check_free` where its
value cannot relax by gradient steps, and `check_data` where concrete data must lie in a
range (probabilities; `pcn.infer` and the compiled train step call `check_node_data`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from ._validation import check_at_least, check_positive
from .typing import NodeArray, PerExample


def _sum_per_example(x: jax.Array) -> jax.Array:
    return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


class AbstractEnergy(eqx.Module):
    """The energy of a node: how far its value is from its prediction `mu`.

    Subclasses define `energy`; the defaults say the value that makes it zero is `mu`
    itself, that children see the value itself, that the value relaxes freely and that
    any data is acceptable.
    """

    # whether `check_data` has anything to check (the train step then checks each batch)
    checks_data: ClassVar[bool] = False

    @abc.abstractmethod
    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)` (summed over the node's own axes)."""

    def mean(self, mu: NodeArray) -> NodeArray:
        """The value with zero energy for prediction `mu` (set by forward initialisation)."""
        return mu

    def present(self, value: NodeArray) -> NodeArray:
        """What children see of the node's value."""
        return value

    def check_free(self, name: str) -> None:
        """Raise `ValueError` (naming node `name` and the fix) if a value of this family
        cannot relax by gradient steps, so the node must be clamped."""

    def check_data(self, name: str, value: np.ndarray) -> None:
        """Raise `ValueError` (naming node `name` and the fix) if concrete data `value`
        is not a value of this family."""


class Gaussian(AbstractEnergy):
    """E = precision / 2 * ||value - mu||^2 per example (thesis Eq. 2.3).

    `precision` is 1 / sigma^2, fixed (not trained).
    """

    precision: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        check_positive("precision", self.precision, hint="Pass `Gaussian(precision=1.0)`.")

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        return 0.5 * self.precision * _sum_per_example(jnp.square(value - mu))


class Categorical(AbstractEnergy):
    """E = KL(value || softmax(mu)) per example; the prediction `mu` holds logits.

    With a one-hot `value` this is the cross-entropy of a softmax output layer. The
    value is a probability vector over the last axis.
    """

    checks_data: ClassVar[bool] = True

    def check_free(self, name: str) -> None:
        """A free categorical node is refused: gradient steps on its probabilities would
        leave the simplex (and make its KL energy negative)."""
        raise ValueError(
            f"Node {name!r} has a categorical energy and is not fully clamped; relaxing its "
            "probabilities is not supported (gradient steps would leave their range). Clamp "
            "it, or give it a `SoftmaxCategorical` energy (a node that holds logits and "
            "relaxes freely)."
        )

    def check_data(self, name: str, value: np.ndarray) -> None:
        """The value must be a probability vector over the last axis."""
        problem = _categorical_problem(np.asarray(value, dtype=float))
        if problem is not None:
            raise ValueError(
                f"Node {name!r} has a categorical energy, but {problem}; its value must be a "
                "probability vector over the last axis (non-negative, summing to 1): pass "
                "one-hot labels (`pcn.data.one_hot`) or normalised probabilities, or use "
                "`SoftmaxCategorical` for a node that holds logits."
            )

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        log_q = jax.nn.log_softmax(mu, axis=-1)
        kl = jax.scipy.special.xlogy(value, value) - value * log_q
        return _sum_per_example(kl)

    def mean(self, mu: NodeArray) -> NodeArray:
        """The zero-energy value for logits `mu`: `softmax(mu)`."""
        return jax.nn.softmax(mu, axis=-1)


class SoftmaxCategorical(AbstractEnergy):
    """A categorical node that holds LOGITS phi, so it can relax freely (Eq. 10 of
    `papers/pc-beyond-gaussian-distributions.md`, the F_KL energy of a softmax layer):

        E = KL(softmax(phi) || softmax(mu)),   children see softmax(phi).

    Its value stays a distribution however it moves, unlike gradient steps on a
    probability vector. Clamp labels with `Categorical` instead (one-hot has no logits).

    `precision` weights the KL (1: F_KL); a larger one stiffens the node like the
    precision of a Gaussian node, so it matches stiff Gaussian neighbours.
    """

    precision: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        check_positive(
            "precision", self.precision, hint="Use `SoftmaxCategorical(precision=1.0)` for F_KL."
        )

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        log_p = jax.nn.log_softmax(value, axis=-1)
        kl = jnp.exp(log_p) * (log_p - jax.nn.log_softmax(mu, axis=-1))
        if self.precision != 1.0:
            kl = self.precision * kl
        return _sum_per_example(kl)

    def present(self, value: NodeArray) -> NodeArray:
        """What children see of the node: `softmax(value)`."""
        return jax.nn.softmax(value, axis=-1)


class Bernoulli(AbstractEnergy):
    """Independent Bernoulli units; the prediction `mu` holds logits and the value holds
    probabilities in [0, 1] (binary or grey-level data, clamped):

        E = sum_i KL(Bern(x_i) || Bern(sigmoid(mu_i)))

    which, for binary x, is the binary cross-entropy. Free nodes use `BernoulliLogits`.
    """

    checks_data: ClassVar[bool] = True

    def check_free(self, name: str) -> None:
        """A free Bernoulli node is refused: gradient steps on its probabilities would
        leave [0, 1]."""
        raise ValueError(
            f"Node {name!r} has a Bernoulli energy and is not fully clamped; relaxing its "
            "probabilities is not supported (gradient steps would leave their range). Clamp "
            "it, or give it a `BernoulliLogits` energy (a node that holds logits and "
            "relaxes freely)."
        )

    def check_data(self, name: str, value: np.ndarray) -> None:
        """The values must be probabilities in [0, 1]."""
        problem = _bernoulli_problem(np.asarray(value, dtype=float))
        if problem is not None:
            raise ValueError(
                f"Node {name!r} has a Bernoulli energy, but {problem}; its values must be "
                "probabilities in [0, 1]: scale the data to [0, 1], or use `BernoulliLogits` "
                "for a node that holds logits."
            )

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        xlogx = jax.scipy.special.xlogy
        neg = xlogx(value, value) + xlogx(1.0 - value, 1.0 - value)
        cross = value * jax.nn.log_sigmoid(mu) + (1.0 - value) * jax.nn.log_sigmoid(-mu)
        return _sum_per_example(neg - cross)

    def mean(self, mu: NodeArray) -> NodeArray:
        """The zero-energy value for logits `mu`: `sigmoid(mu)`."""
        return jax.nn.sigmoid(mu)


class BernoulliLogits(AbstractEnergy):
    """Independent Bernoulli units held as LOGITS phi, free to relax:
    E = sum_i KL(Bern(sigmoid(phi_i)) || Bern(sigmoid(mu_i))); children see sigmoid(phi)."""

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        p = jax.nn.sigmoid(value)
        log_p, log_q = jax.nn.log_sigmoid(value), jax.nn.log_sigmoid(mu)
        log_1p, log_1q = jax.nn.log_sigmoid(-value), jax.nn.log_sigmoid(-mu)
        return _sum_per_example(p * (log_p - log_q) + (1.0 - p) * (log_1p - log_1q))

    def present(self, value: NodeArray) -> NodeArray:
        """What children see of the node: `sigmoid(value)`."""
        return jax.nn.sigmoid(value)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


class DiagonalGaussian(AbstractEnergy):
    """Gaussian energy with a diagonal variance sigma^2 (one per unit, or one for all):

        fixed:    E = 1/2 sum_i (value_i - mu_i)^2 / sigma_i^2
                    = KL(N(value, Sigma) || N(mu, Sigma))                (F_KL, Eq. 9)
        learned:  E = 1/2 sum_i [(value_i - mu_i)^2 / sigma_i^2 + log sigma_i^2]  (F~, Eq. 5)

    The log-variance is an array field of the node's energy, so it is part of the
    graph's parameters (`pcn.parameters`) and, with `learned=True`, the weight optimiser
    of `make_train_step` trains it with the weights (the log term keeps it from growing
    without bound). A fixed variance is held behind `stop_gradient`: its gradient is zero,
    so plain optimisers leave it unchanged (decoupled weight decay would not).
    """

    log_variance: jax.Array
    learned: bool = eqx.field(static=True)

    def __init__(
        self,
        variance: float | jax.Array | np.ndarray = 1.0,
        *,
        learned: bool = False,
        shape: int | tuple[int, ...] | None = None,
    ):
        """`variance`: a positive number or array (broadcast to the node's per-example
        shape); `shape` broadcasts it to one variance per unit (what a learned variance
        usually wants); `learned`: train it (F~ of Eq. 5) or keep it fixed."""
        if _is_concrete(variance):
            v = np.asarray(variance, dtype=float)
            bad = ~(np.isfinite(v) & (v > 0))
            if bad.any():
                raise ValueError(
                    f"`variance` of DiagonalGaussian must be finite and > 0 everywhere, got "
                    f"{float(v.ravel()[np.argmax(bad.ravel())])!r} (at flat index "
                    f"{int(np.argmax(bad.ravel()))}). Pass positive variances, e.g. "
                    "`DiagonalGaussian(variance=1.0)`."
                )
        log_variance = jnp.log(jnp.asarray(variance, dtype=jnp.result_type(float)))
        if shape is not None:
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            log_variance = jnp.broadcast_to(log_variance, shape)
        self.log_variance = log_variance
        self.learned = learned

    @property
    def variance(self) -> jax.Array:
        """sigma^2 (per unit, or one for all)."""
        return jnp.exp(self.log_variance)

    def _log_variance(self) -> jax.Array:
        return self.log_variance if self.learned else jax.lax.stop_gradient(self.log_variance)

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        log_var = self._log_variance()
        quad = jnp.square(value - mu) * jnp.broadcast_to(jnp.exp(-log_var), value.shape)
        if not self.learned:
            return 0.5 * _sum_per_example(quad)
        return 0.5 * _sum_per_example(quad + jnp.broadcast_to(log_var, quad.shape))


def _halves(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    size = x.shape[-1]
    if size % 2:
        raise ValueError(
            f"A ReparamGaussian node holds [mean, log-variance] on its last axis, so that "
            f"axis must have even size, got {size}; give the node shape (2 * latent,)."
        )
    return x[..., : size // 2], x[..., size // 2 :]


class ReparamGaussian(AbstractEnergy):
    """The VAE bottleneck (section 4.2, Fig. 4 right): a node whose value holds the
    parameters (u, log sigma^2) of a diagonal Gaussian, concatenated on the last axis,
    predicted by its parent edge as (u_hat, log sigma_hat^2). Its energy is the closed
    form of F_KL (Eq. 9), weighted by `precision`, plus `prior_weight` times the KL to the
    standard normal prior:

        E = p KL(N(u, sigma^2) || N(u_hat, sigma_hat^2)) + w KL(N(u, sigma^2) || N(0, I)).

    `precision` p = 1 is F_KL; a larger p stiffens the node like the precision of a
    Gaussian node (its value moves less in relaxation, p times its error is what the
    encoder learns from).

    At forward initialisation the first term is zero and E is the usual VAE KL term, so
    the graph's energy at the forward pass is the VAE loss (reconstruction + KL).
    Children see the parameters; the sample u + eps * sigma is taken by the child edge
    (`pcn.vae.Reparameterise`) with noise eps from a clamped root node, drawn once per
    data point before relaxation and held fixed through it.
    """

    prior_weight: float = eqx.field(static=True, default=1.0)
    precision: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        check_positive(
            "precision", self.precision, hint="Use `ReparamGaussian(precision=1.0)` for F_KL."
        )
        if not self.prior_weight >= 0:
            raise ValueError(
                f"`prior_weight` of ReparamGaussian must be >= 0, got {self.prior_weight!r}; "
                "use 1.0 for the VAE loss, 0.0 for no prior."
            )

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy, shape `(batch,)`."""
        u, s = _halves(value)
        u_hat, s_hat = _halves(mu)
        kl = 0.5 * (s_hat - s + (jnp.exp(s) + jnp.square(u - u_hat)) * jnp.exp(-s_hat) - 1.0)
        if self.precision != 1.0:
            kl = self.precision * kl
        if self.prior_weight:
            kl = kl + self.prior_weight * 0.5 * (jnp.exp(s) + jnp.square(u) - s - 1.0)
        return _sum_per_example(kl)


def laplace_sample(params: jax.Array, key: jax.Array) -> jax.Array:
    """A reparameterised sample of Laplace(loc, exp(log_scale)); `params` holds
    [loc, log_scale] on its last axis (for `MonteCarloKL`)."""
    loc, log_scale = _halves(params)
    u = jax.random.uniform(key, loc.shape, loc.dtype, minval=-0.5 + 1e-7, maxval=0.5 - 1e-7)
    return loc - jnp.exp(log_scale) * jnp.sign(u) * jnp.log1p(-2.0 * jnp.abs(u))


def laplace_log_prob(params: jax.Array, x: jax.Array) -> jax.Array:
    """Element-wise log density of Laplace(loc, exp(log_scale)) at `x` (for `MonteCarloKL`)."""
    loc, log_scale = _halves(params)
    return -jnp.abs(x - loc) * jnp.exp(-log_scale) - log_scale - jnp.log(2.0)


def gaussian_sample(params: jax.Array, key: jax.Array) -> jax.Array:
    """A reparameterised sample of N(u, exp(log_var)); `params` holds [u, log_var]."""
    u, log_var = _halves(params)
    return u + jnp.exp(0.5 * log_var) * jax.random.normal(key, u.shape, u.dtype)


def gaussian_log_prob(params: jax.Array, x: jax.Array) -> jax.Array:
    """Element-wise log density of N(u, exp(log_var)) at `x`; `params` holds [u, log_var]."""
    u, log_var = _halves(params)
    return -0.5 * (jnp.square(x - u) * jnp.exp(-log_var) + log_var + jnp.log(2.0 * jnp.pi))


class MonteCarloKL(AbstractEnergy):
    """F_KL (Eq. 9) by sampling, for families without a closed-form KL: the value and the
    prediction are parameters of distributions X(value), X_hat(mu) of one family, and

        E = 1/N sum_n [log p(s_n | value) - log p(s_n | mu)],   s_n = sample(value, key_n).

    The samples are reparameterised (gradients flow to the value) and the keys come from
    the fixed `seed` (common random numbers): within a relaxation the estimate is one
    smooth function of the value and the prediction, and it is exactly zero at
    value = mu. `sample(params, key)` and `log_prob(params, x)` act on whole batches
    (element-wise log densities); `laplace_*` and `gaussian_*` in this module are ready ones.
    """

    sample: Callable[[jax.Array, jax.Array], jax.Array] = eqx.field(static=True)
    log_prob: Callable[[jax.Array, jax.Array], jax.Array] = eqx.field(static=True)
    samples: int = eqx.field(static=True, default=16)
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self) -> None:
        check_at_least("samples", self.samples, 1, hint="MonteCarloKL needs N >= 1 samples.")

    def energy(self, value: NodeArray, mu: NodeArray) -> PerExample:
        """Per-example energy estimate, shape `(batch,)`."""
        keys = jax.random.split(jax.random.key(self.seed), self.samples)

        def one(key: jax.Array) -> jax.Array:
            s = self.sample(value, key)
            return _sum_per_example(self.log_prob(value, s) - self.log_prob(mu, s))

        return jnp.mean(jax.vmap(one)(keys), axis=0)


def _categorical_problem(value: np.ndarray) -> str | None:
    if value.size and value.min() < 0:
        return f"it has a negative entry ({value.min():.4g})"
    sums = value.sum(axis=-1)
    off = np.abs(sums - 1.0)
    if off.size and off.max() > 1e-3:
        return f"a row sums to {sums.ravel()[np.argmax(off.ravel())]:.4g} instead of 1"
    return None


def _bernoulli_problem(value: np.ndarray) -> str | None:
    if value.size and (value.min() < 0 or value.max() > 1):
        return f"it has entries outside [0, 1] (min {value.min():.4g}, max {value.max():.4g})"
    return None


def check_node_data(nodes: Iterable, values: Mapping[str, jax.Array]) -> None:
    """Refuse concrete values that a node's energy cannot take (its `check_data`).
    `nodes` are `pcn.Node`s; values that are absent or traced are skipped.

    Raises:
        ValueError: naming the node, what is wrong, and the fix.
    """
    for node in nodes:
        value = values.get(node.name)
        if value is None or not _is_concrete(value) or not node.energy.checks_data:
            continue
        node.energy.check_data(node.name, np.asarray(value))
