"""A fully connected (unconstrained) Boltzmann machine (thesis Table 5.1).

Binary stochastic neurons `s in {0, 1}` for the pixels, the labels (one-hot) and the
hidden neurons, every pair connected by a symmetric weight (no self-connections), with
energy `E(s) = -1/2 s^T W s - b^T s`. Training follows the Boltzmann machine learning
rule `dW = <s s^T>_data - <s s^T>_model` as in Salakhutdinov & Hinton's general BM
learning: the data term by mean-field over the hidden neurons with the pixels (sampled
from their intensities) and labels clamped; the model term from persistent Markov chains
(PCD), each step resampling a random half of the neurons from
`p(s_i = 1) = sigmoid(sum_j W_ij s_j + b_i)` (an approximation of sequential Gibbs
sampling that keeps a sweep one matrix product). Adam takes the gradient step.

Classification is a query by conditioning: pixels held at the test image, the label and
hidden neurons relaxed by damped mean-field; the prediction is the label with the largest
mean activity.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._typed import optimizer_update
from .._validation import check_at_least, check_positive


class BoltzmannMachine(eqx.Module):
    """Weights `(n, n)` (symmetric, zero diagonal) and biases `(n,)`; neurons ordered
    pixels, labels, hidden."""

    weight: jax.Array
    bias: jax.Array
    sensory: int = eqx.field(static=True)
    labels: int = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.bias.shape[0]


class BoltzmannState(NamedTuple):
    """Everything a training step changes: the machine, Adam's state, the chains."""

    machine: BoltzmannMachine
    opt_state: optax.OptState
    chains: jax.Array  # (chains, n) persistent fantasy particles in {0, 1}


class Classification(NamedTuple):
    """Predicted classes and the mean label activities they were read from."""

    output: jax.Array  # (batch,) int
    label_means: jax.Array  # (batch, labels)


def boltzmann_machine(
    sensory: int, labels: int, hidden: int, *, key: jax.Array, weight_scale: float = 0.01
) -> BoltzmannMachine:
    """A machine of `sensory + labels + hidden` fully connected neurons, small random
    symmetric weights N(0, weight_scale^2), zero biases."""
    check_at_least("sensory", sensory, 1)
    check_at_least("labels", labels, 2, hint="A classifier needs at least two classes.")
    check_at_least("hidden", hidden, 0)
    n = sensory + labels + hidden
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).reshape(-1))
    w = rng.normal(0.0, weight_scale, (n, n))
    w = np.triu(w, 1)
    dtype = jnp.result_type(float)
    return BoltzmannMachine(jnp.asarray(w + w.T, dtype), jnp.zeros(n, dtype), sensory, labels)


def _symmetric(w: jax.Array) -> jax.Array:
    """`w` made symmetric with a zero diagonal (the BM's weight constraint)."""
    w = 0.5 * (w + w.T)
    return w * (1 - jnp.eye(w.shape[0], dtype=w.dtype))


def init(
    machine: BoltzmannMachine, optimizer: optax.GradientTransformation, chains: int, key
) -> BoltzmannState:
    """Training state with `chains` persistent chains started at random binary states."""
    check_at_least("chains", chains, 1)
    start = jax.random.bernoulli(key, 0.5, (chains, machine.n)).astype(machine.bias.dtype)
    params = eqx.filter(machine, eqx.is_inexact_array)
    return BoltzmannState(machine, optimizer.init(params), start)


def _check_pixels(machine: BoltzmannMachine, pixels: jax.Array) -> None:
    if pixels.ndim != 2 or pixels.shape[1] != machine.sensory:
        raise ValueError(
            f"The Boltzmann machine has {machine.sensory} pixel neurons and expects images "
            f"of shape (batch, {machine.sensory}), got {tuple(pixels.shape)}."
        )


def _mean_field(machine, clamped, first_free: int, steps: int, damping: float):
    """Damped mean-field `m <- (1 - d) m + d sigmoid(W m + b)` on the neurons from
    `first_free` on (from 0.5), the ones before held at `clamped` `(batch, first_free)`."""
    w_free, b_free = machine.weight[first_free:], machine.bias[first_free:]

    def sweep(m_free, _):
        m = jnp.concatenate([clamped, m_free], axis=1)
        target = jax.nn.sigmoid(m @ w_free.T + b_free[None])
        return (1 - damping) * m_free + damping * target, None

    start = jnp.full((clamped.shape[0], machine.n - first_free), 0.5, clamped.dtype)
    m_free, _ = jax.lax.scan(sweep, start, length=steps)
    return jnp.concatenate([clamped, m_free], axis=1)


def _gibbs(machine, chains, key, steps: int):
    """`steps` updates of the chains, each resampling a random half of the neurons."""

    def sweep(s, k):
        k_pick, k_sample = jax.random.split(k)
        p = jax.nn.sigmoid(s @ machine.weight + machine.bias[None])
        sample = jax.random.bernoulli(k_sample, p).astype(s.dtype)
        pick = jax.random.bernoulli(k_pick, 0.5, s.shape)
        return jnp.where(pick, sample, s), None

    s, _ = jax.lax.scan(sweep, chains, jax.random.split(key, steps))
    return s


def make_train_step(
    optimizer: optax.GradientTransformation, *, steps: int = 20, gibbs_steps: int | None = None
):
    """A jitted step `(state, pixels, labels, key) -> (state, reconstruction error)`:
    `steps` mean-field sweeps for the data term, `gibbs_steps` (default `steps`) updates
    of the persistent chains for the model term."""
    check_at_least("steps", steps, 1)
    gibbs_steps = steps if gibbs_steps is None else gibbs_steps
    check_at_least("gibbs_steps", gibbs_steps, 1)

    @jax.jit
    def step(state: BoltzmannState, pixels: jax.Array, labels: jax.Array, key: jax.Array):
        machine = state.machine
        k_pix, k_gibbs = jax.random.split(key)
        batch = pixels.shape[0]
        v = jax.random.bernoulli(k_pix, pixels).astype(machine.bias.dtype)
        y = jax.nn.one_hot(labels, machine.labels, dtype=v.dtype)
        visible = jnp.concatenate([v, y], axis=1)
        data = _mean_field(machine, visible, machine.sensory + machine.labels, steps, 0.5)
        chains = _gibbs(machine, state.chains, k_gibbs, gibbs_steps)
        # gradient of the negative log-likelihood (a descent direction for optax)
        grad_w = chains.T @ chains / chains.shape[0] - data.T @ data / batch
        grad_b = jnp.mean(chains, 0) - jnp.mean(data, 0)
        grads = BoltzmannMachine(_symmetric(grad_w), grad_b, machine.sensory, machine.labels)
        params = eqx.filter(machine, eqx.is_inexact_array)
        updates, opt_state = optimizer_update(optimizer, grads, state.opt_state, params)
        new = eqx.apply_updates(machine, updates)
        new = eqx.tree_at(lambda m: m.weight, new, _symmetric(new.weight))
        # how well one mean-field pass from the data reconstructs the pixels
        w_pix = machine.weight[: machine.sensory]
        recon = jax.nn.sigmoid(data @ w_pix.T + machine.bias[None, : machine.sensory])
        error = jnp.mean((recon - pixels) ** 2)
        return BoltzmannState(new, opt_state, chains), error

    return step


def classify(
    machine: BoltzmannMachine, pixels: jax.Array, *, steps: int = 50, damping: float = 0.5
) -> Classification:
    """Pixels held at `pixels` (their intensities as mean activities), labels and hidden
    neurons relaxed by `steps` damped mean-field sweeps; argmax of the label means."""
    _check_pixels(machine, pixels)
    check_at_least("steps", steps, 1)
    check_positive("damping", damping)
    return _classify(machine, pixels, steps, damping)


@eqx.filter_jit
def _classify(machine, pixels, steps: int, damping: float) -> Classification:
    clamped = pixels.astype(machine.bias.dtype)
    m = _mean_field(machine, clamped, machine.sensory, steps, damping)
    labels = m[:, machine.sensory : machine.sensory + machine.labels]
    return Classification(jnp.argmax(labels, axis=1), labels)
