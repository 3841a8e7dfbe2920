"""Restricted Boltzmann machine (thesis Table 5.2, section 5.7, Fig. 5.12): the energy model
PC graphs are compared with on classification, completion and denoising.

Visible units `v` (Bernoulli for pixels in [0, 1], or unit-variance Gaussian), binary
hidden units `h`, and optionally a group of softmax label units `y` joined to the hidden
layer ("joint label units", Hinton et al. 2006; Larochelle & Bengio 2008). The energy is

    E(v, y, h) = -b.v - d.y - c.h - v W h - y U h          (Bernoulli visibles)

(`+ |v - b|^2 / 2 - b.v` replaces `-b.v` for Gaussian ones), so the free energy
`F(v, y) = -log sum_h exp(-E)` is closed-form. Training is contrastive divergence (CD-k):
the gradient of `F(data) - F(sample after k Gibbs steps)` (the sample held constant),
optionally plus `alpha` times the exact cross-entropy of `p(y | v)` (the hybrid
discriminative RBM of Larochelle & Bengio), each step one jitted program. A trained RBM
classifies by `p(y | v) ~ exp(-F(v, y))` and completes or denoises images by mean-field
Gibbs steps with the known pixels held.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._typed import optimizer_update
from .._validation import check_at_least, check_choice, check_positive
from ..typing import Labels

VISIBLE_KINDS = ("bernoulli", "gaussian")


class RBM(eqx.Module):
    """Weights of an RBM: visible-hidden `weight` (n_visible, n_hidden), biases, and
    label-hidden `label_weight` (n_labels, n_hidden) with `label_bias` when it has labels."""

    weight: jax.Array
    visible_bias: jax.Array
    hidden_bias: jax.Array
    label_weight: jax.Array | None
    label_bias: jax.Array | None
    visible: str = eqx.field(static=True)

    @property
    def n_visible(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    @property
    def n_labels(self) -> int:
        return 0 if self.label_weight is None else self.label_weight.shape[0]

    def label_parameters(self) -> tuple[jax.Array, jax.Array]:
        """`(label_weight, label_bias)`; an error for an RBM without label units."""
        if self.label_weight is None or self.label_bias is None:
            raise ValueError("This RBM has no label units; build it with n_labels.")
        return self.label_weight, self.label_bias


def rbm(
    n_visible: int,
    n_hidden: int,
    *,
    n_labels: int = 0,
    visible: str = "bernoulli",
    key: jax.Array,
    weight_std: float = 0.01,
) -> RBM:
    """A fresh RBM: weights N(0, weight_std^2), biases zero (Hinton's practical guide)."""
    check_at_least("n_visible", n_visible, 1)
    check_at_least("n_hidden", n_hidden, 1)
    check_at_least("n_labels", n_labels, 0, hint="Use 0 for an RBM without label units.")
    check_choice("visible", visible, VISIBLE_KINDS)
    check_positive("weight_std", weight_std)
    k_w, k_u = jax.random.split(key)
    label_weight = label_bias = None
    if n_labels:
        label_weight = weight_std * jax.random.normal(k_u, (n_labels, n_hidden))
        label_bias = jnp.zeros(n_labels)
    return RBM(
        weight_std * jax.random.normal(k_w, (n_visible, n_hidden)),
        jnp.zeros(n_visible),
        jnp.zeros(n_hidden),
        label_weight,
        label_bias,
        visible,
    )


def _check_visible(model: RBM, v: jax.Array | np.ndarray) -> None:
    if v.ndim != 2 or v.shape[1] != model.n_visible:
        raise ValueError(
            f"Visible values must have shape (batch, {model.n_visible}), got {v.shape}."
        )


def _check_labels(model: RBM, y: jax.Array | None) -> None:
    if y is None:
        return
    if model.n_labels == 0:
        raise ValueError("Labels were given to an RBM without label units; build it with n_labels.")
    if y.ndim != 2 or y.shape[1] != model.n_labels:
        raise ValueError(f"Labels must be one-hot (batch, {model.n_labels}), got shape {y.shape}.")


def hidden_input(model: RBM, v: jax.Array, y: jax.Array | None = None) -> jax.Array:
    """Total input `c + v W (+ y U)` of the hidden units, (batch, n_hidden)."""
    pre = model.hidden_bias[None] + v @ model.weight
    return pre if y is None or model.label_weight is None else pre + y @ model.label_weight


def hidden_probs(model: RBM, v: jax.Array, y: jax.Array | None = None) -> jax.Array:
    """`p(h = 1 | v, y)`, the RBM's features of `v`."""
    return jax.nn.sigmoid(hidden_input(model, v, y))


def visible_mean(model: RBM, h: jax.Array) -> jax.Array:
    """`E[v | h]`: sigmoid (Bernoulli) or linear (Gaussian) of `b + W h`."""
    pre = model.visible_bias[None] + h @ model.weight.T
    return jax.nn.sigmoid(pre) if model.visible == "bernoulli" else pre


def label_probs(model: RBM, h: jax.Array) -> jax.Array:
    """`p(y | h)`: softmax of `d + U h`."""
    weight, bias = model.label_parameters()
    return jax.nn.softmax(bias[None] + h @ weight.T, axis=-1)


def free_energy(model: RBM, v: jax.Array, y: jax.Array | None = None) -> jax.Array:
    """`F(v, y)` per example, (batch,): `E` with the hidden units summed out."""
    if model.visible == "bernoulli":
        visible_term = -v @ model.visible_bias
    else:
        visible_term = 0.5 * jnp.sum((v - model.visible_bias[None]) ** 2, axis=-1)
    label_term = 0.0 if y is None or model.label_bias is None else -y @ model.label_bias
    return visible_term + label_term - jnp.sum(jax.nn.softplus(hidden_input(model, v, y)), -1)


def label_logits(model: RBM, v: jax.Array) -> jax.Array:
    """`log p(y | v)` up to a constant: `-F(v, e_c)` for every class c, (batch, n_labels)."""
    if model.n_labels == 0:
        raise ValueError("This RBM has no label units; build it with n_labels to classify.")
    base = model.hidden_bias[None] + v @ model.weight  # (batch, n_hidden)
    weight, bias = model.label_parameters()
    per_class = base[:, None, :] + weight[None]  # (batch, n_labels, n_hidden)
    return bias[None] + jnp.sum(jax.nn.softplus(per_class), axis=-1)


def gibbs_step(
    model: RBM, v: jax.Array, y: jax.Array | None, key: jax.Array
) -> tuple[jax.Array, jax.Array | None]:
    """One sampled Gibbs sweep `v, y -> h -> v', y'`."""
    k_h, k_v, k_y = jax.random.split(key, 3)
    h = jax.random.bernoulli(k_h, hidden_probs(model, v, y)).astype(v.dtype)
    mean = visible_mean(model, h)
    if model.visible == "bernoulli":
        v_new = jax.random.bernoulli(k_v, mean).astype(v.dtype)
    else:
        v_new = mean + jax.random.normal(k_v, mean.shape, v.dtype)
    if y is None:
        return v_new, None
    weight, bias = model.label_parameters()
    logits = bias[None] + h @ weight.T
    y_new = jax.nn.one_hot(jax.random.categorical(k_y, logits), model.n_labels, dtype=v.dtype)
    return v_new, y_new


def cd_loss(
    model: RBM,
    v: jax.Array,
    y: jax.Array | None,
    key: jax.Array,
    *,
    k: int,
    alpha: float = 0.0,
) -> jax.Array:
    """The CD-k surrogate `mean F(data) - mean F(sample)` (its gradient is the CD update),
    plus `alpha` times the mean cross-entropy of `p(y | v)` when labels are given."""

    def sweep(carry, step_key):
        v_t, y_t = carry
        return gibbs_step(model, v_t, y_t, step_key), None

    (v_k, y_k), _ = jax.lax.scan(sweep, (v, y), jax.random.split(key, k))
    v_k, y_k = jax.lax.stop_gradient((v_k, y_k))
    loss = jnp.mean(free_energy(model, v, y)) - jnp.mean(free_energy(model, v_k, y_k))
    if alpha and y is not None:
        loss = loss + alpha * jnp.mean(optax.softmax_cross_entropy(label_logits(model, v), y))
    return loss


class CDTrainer(NamedTuple):
    """A compiled CD-k step with its optimiser: `model, state = trainer.step(model, state,
    v, y, key)`; `trainer.init(model)` gives the optimiser state."""

    optimizer: optax.GradientTransformation
    step: Callable[..., tuple[RBM, optax.OptState, jax.Array]]

    def init(self, model: RBM) -> optax.OptState:
        return self.optimizer.init(eqx.filter(model, eqx.is_inexact_array))


def cd_trainer(
    optimizer: optax.GradientTransformation, *, k: int = 1, alpha: float = 0.0
) -> CDTrainer:
    """One jitted CD-k update (`k` Gibbs sweeps in a `lax.scan`) with `optimizer`."""
    check_at_least("k", k, 1, hint="CD-k needs at least one Gibbs sweep.")
    if not alpha >= 0:
        raise ValueError(
            f"`alpha` (weight of the discriminative term) must be >= 0, got {alpha!r}."
        )

    @eqx.filter_jit
    def step(model: RBM, opt_state, v: jax.Array, y: jax.Array | None, key: jax.Array):
        loss, grads = eqx.filter_value_and_grad(cd_loss)(model, v, y, key, k=k, alpha=alpha)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer_update(optimizer, grads, opt_state, params)
        return eqx.apply_updates(model, updates), opt_state, loss

    return CDTrainer(optimizer, step)


class CDState(NamedTuple):
    """What CD training carries from batch to batch: the model, its optimiser state and
    the random key of the Gibbs chains."""

    model: RBM
    opt_state: optax.OptState
    key: jax.Array


def train_batch(
    trainer: CDTrainer, state: CDState, v: jax.Array, y: Labels | None
) -> tuple[CDState, jax.Array]:
    """One CD-k update on the batch `v` (with class indices `y` if the RBM has label
    units); returns the new state and the batch's mean-field reconstruction error after
    the update (one sweep, a progress measure)."""
    model = state.model
    labels = None if y is None else jax.nn.one_hot(jnp.asarray(y), model.n_labels)
    key, sub = jax.random.split(state.key)
    model, opt_state, _ = trainer.step(model, state.opt_state, v, labels, sub)
    return CDState(model, opt_state, key), _recon_error(model, v, labels)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Example indices of the batches of epoch `epoch` (from 0) in the order `train`
    uses: that epoch's permutation of `range(n)` drawn from `np.random.default_rng(seed)`,
    cut into whole batches (so a resumed run sees the batches of an uninterrupted one)."""
    rng = np.random.default_rng(seed)
    for _ in range(epoch):
        rng.permutation(n)
    return _whole_batches(rng.permutation(n), batch_size)


def _whole_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """`order` cut into batches of `batch_size`, the last partial one left out (one
    compiled shape), or all of `order` if it is shorter than a batch."""
    starts = range(0, max(len(order) - batch_size, 0) + 1, batch_size)
    return [order[start : start + batch_size] for start in starts]


def train(
    model: RBM,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    k: int = 1,
    alpha: float = 0.0,
    seed: int = 0,
) -> tuple[RBM, list[float]]:
    """Train by CD-k with Adam(`learning_rate`) on shuffled batches of `x` (and class
    indices `y` if the RBM has label units; the last partial batch of an epoch is left
    out). Returns the model and each epoch's mean reconstruction error of the batches
    (mean-field, one sweep), a progress measure. The batches of epoch `e` are
    `epoch_batches(len(x), batch_size, seed, e)`; one step is `train_batch`."""
    check_at_least("epochs", epochs, 1)
    check_at_least("batch_size", batch_size, 1)
    check_positive("learning_rate", learning_rate)
    x = np.asarray(x)
    _check_visible(model, x)
    if (y is None) != (model.n_labels == 0):
        raise ValueError(
            "Pass labels `y` exactly when the RBM has label units "
            f"(it has {model.n_labels}); got {'none' if y is None else 'labels'}."
        )
    trainer = cd_trainer(optax.adam(learning_rate), k=k, alpha=alpha)
    state = CDState(model, trainer.init(model), jax.random.key(seed))
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(epochs):
        batch_errors = []
        for idx in _whole_batches(rng.permutation(len(x)), batch_size):
            state, error = train_batch(
                trainer, state, jnp.asarray(x[idx]), None if y is None else y[idx]
            )
            batch_errors.append(error)
        errors.append(float(jnp.mean(jnp.stack(batch_errors))))
    return state.model, errors


@eqx.filter_jit
def _recon_error(model: RBM, v: jax.Array, y: jax.Array | None) -> jax.Array:
    return jnp.mean((visible_mean(model, hidden_probs(model, v, y)) - v) ** 2)


@eqx.filter_jit
def _classify(model: RBM, v: jax.Array) -> jax.Array:
    return jnp.argmax(label_logits(model, v), axis=-1)


def classify(model: RBM, x: np.ndarray, *, chunk: int = 2000) -> np.ndarray:
    """Class indices `argmax_c p(c | x)` (exact, from the free energies)."""
    x = np.asarray(x)
    _check_visible(model, x)
    if model.n_labels == 0:
        raise ValueError("This RBM has no label units; build it with n_labels to classify.")
    return np.concatenate(
        [
            np.asarray(_classify(model, jnp.asarray(x[i : i + chunk])))
            for i in range(0, len(x), chunk)
        ]
    )


@eqx.filter_jit
def _mean_field(model, v, known, target, y, clamp_labels, steps):
    def sweep(carry, _):
        v, y_cur = carry
        h = hidden_probs(model, v, y_cur)
        v = jnp.where(known, target, visible_mean(model, h))
        if y_cur is not None and not clamp_labels:
            y_cur = label_probs(model, h)
        return (v, y_cur), None

    (v, _), _ = jax.lax.scan(sweep, (v, y), None, length=steps)
    return v


def reconstruct(
    model: RBM,
    x: np.ndarray | jax.Array,
    *,
    known: np.ndarray | jax.Array | None = None,
    labels: np.ndarray | jax.Array | None = None,
    steps: int = 10,
) -> np.ndarray:
    """Mean-field Gibbs from `x`: `steps` sweeps `v -> p(h | v, y) -> E[v | h]`, holding
    the pixels where `known` is True at `x` (completion) or none (denoising: `known`
    None). `labels` (class indices) are held fixed when given; otherwise, for an RBM with
    label units, the label units follow `p(y | h)` from uniform."""
    check_at_least("steps", steps, 1)
    v = jnp.asarray(x)
    _check_visible(model, v)
    mask = (
        jnp.zeros(v.shape, bool)
        if known is None
        else jnp.broadcast_to(jnp.asarray(known, bool), v.shape)
    )
    y = None
    if model.n_labels:
        if labels is None:
            y = jnp.full((v.shape[0], model.n_labels), 1.0 / model.n_labels, v.dtype)
        else:
            y = jax.nn.one_hot(jnp.asarray(labels), model.n_labels, dtype=v.dtype)
            _check_labels(model, y)
    elif labels is not None:
        raise ValueError("Labels were given to an RBM without label units; build it with n_labels.")
    return np.asarray(_mean_field(model, v, mask, v, y, labels is not None, steps))
