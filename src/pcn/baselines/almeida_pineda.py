"""Almeida–Pineda recurrent backpropagation on a fully connected network (thesis Table 5.1).

Neurons ordered pixels, labels, hidden; `u = W x + b`, `W` fully connected with no
self-connections. The pixel neurons are held at the image; the others relax to a fixed
point of `x = f(u)` by `x <- (1 - dt) x + dt f(W x + b)` for `steps` steps. The loss is
`1/2 ||x_label - onehot||^2`. Its gradient at the fixed point is found by a second
relaxation, of the adjoint (error) network (Almeida 1987, Pineda 1987):

    y <- (1 - dt) y + dt (e + W^T (f'(u) * y)),    e = dL/dx (non-zero on the labels),

and then `dL/dW = delta x^T`, `dL/db = delta` with `delta = f'(u) * y` on the free
neurons. Both relaxations are `lax.scan`s inside one jitted training step; Adam takes the
step. Classification relaxes the same way and reads the argmax of the label neurons.
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


class RecurrentNetwork(eqx.Module):
    """Weights `(n, n)` (`W[i, j]`: j drives i, zero diagonal) and biases `(n,)`."""

    weight: jax.Array
    bias: jax.Array
    sensory: int = eqx.field(static=True)
    labels: int = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.bias.shape[0]


class Classification(NamedTuple):
    """Predicted classes and the relaxed label activities."""

    output: jax.Array  # (batch,) int
    labels: jax.Array  # (batch, labels)


def recurrent_network(
    sensory: int, labels: int, hidden: int, *, key: jax.Array, weight_scale: float = 0.5
) -> RecurrentNetwork:
    """A network of `sensory + labels + hidden` fully connected tanh neurons, weights
    uniform in `+-weight_scale / sqrt(n)` (small enough for the relaxation to contract)."""
    check_at_least("sensory", sensory, 1)
    check_at_least("labels", labels, 2, hint="A classifier needs at least two classes.")
    check_at_least("hidden", hidden, 0)
    n = sensory + labels + hidden
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).reshape(-1))
    bound = weight_scale / np.sqrt(n)
    w = rng.uniform(-bound, bound, (n, n)) * (1 - np.eye(n))
    dtype = jnp.result_type(float)
    return RecurrentNetwork(jnp.asarray(w, dtype), jnp.zeros(n, dtype), sensory, labels)


def _check_pixels(net: RecurrentNetwork, pixels: jax.Array) -> None:
    if pixels.ndim != 2 or pixels.shape[1] != net.sensory:
        raise ValueError(
            f"The network has {net.sensory} pixel neurons and expects images of shape "
            f"(batch, {net.sensory}), got {tuple(pixels.shape)}; flatten the images."
        )


def relax(net: RecurrentNetwork, pixels: jax.Array, steps: int, dt: float) -> jax.Array:
    """States `(batch, n)` after `steps` damped iterations of `x = tanh(W x + b)` with
    the pixel neurons held at `pixels` (the others start at zero)."""
    pixels = pixels.astype(net.bias.dtype)
    w_free, b_free = net.weight[net.sensory :], net.bias[net.sensory :]  # rows that move

    def step(x_free, _):
        x = jnp.concatenate([pixels, x_free], axis=1)
        return (1 - dt) * x_free + dt * jnp.tanh(x @ w_free.T + b_free[None]), None

    start = jnp.zeros((pixels.shape[0], net.n - net.sensory), pixels.dtype)
    x_free, _ = jax.lax.scan(step, start, length=steps)
    return jnp.concatenate([pixels, x_free], axis=1)


def gradients(
    net: RecurrentNetwork, pixels: jax.Array, labels: jax.Array, *, steps: int, dt: float
) -> tuple[RecurrentNetwork, jax.Array]:
    """Almeida–Pineda gradient of the mean label loss: forward relaxation, adjoint
    relaxation, `delta x^T`. Returns the gradient (as a network) and the loss."""
    x = relax(net, pixels, steps, dt)
    s, k = net.sensory, net.labels
    target = jax.nn.one_hot(labels, k, dtype=x.dtype)
    out = x[:, s : s + k]
    loss = 0.5 * jnp.mean(jnp.sum((out - target) ** 2, axis=1))
    w_free = net.weight[s:]  # (free, n): only the free neurons have an adjoint
    e = jnp.zeros((x.shape[0], net.n - s), x.dtype).at[:, :k].set(out - target)
    slope = 1 - jnp.tanh(x @ w_free.T + net.bias[s:][None]) ** 2

    def adjoint(y, _):
        return (1 - dt) * y + dt * (e + (slope * y) @ w_free[:, s:]), None

    y, _ = jax.lax.scan(adjoint, jnp.zeros_like(e), length=steps)
    delta = slope * y / x.shape[0]
    grad_w = jnp.zeros_like(net.weight).at[s:].set(delta.T @ x)
    grad_w = grad_w * (1 - jnp.eye(net.n, dtype=x.dtype))
    grad_b = jnp.zeros_like(net.bias).at[s:].set(delta.sum(0))
    return RecurrentNetwork(grad_w, grad_b, s, k), loss


def make_train_step(optimizer: optax.GradientTransformation, *, steps: int = 20, dt: float = 0.5):
    """A jitted step `(net, opt_state, pixels, labels) -> (net, opt_state, loss)`."""
    check_at_least("steps", steps, 1)
    check_positive("dt", dt)

    @jax.jit
    def step(net: RecurrentNetwork, opt_state, pixels: jax.Array, labels: jax.Array):
        grads, loss = gradients(net, pixels, labels, steps=steps, dt=dt)
        params = eqx.filter(net, eqx.is_inexact_array)
        updates, opt_state = optimizer_update(optimizer, grads, opt_state, params)
        return eqx.apply_updates(net, updates), opt_state, loss

    return step


def classify(
    net: RecurrentNetwork, pixels: jax.Array, *, steps: int = 50, dt: float = 0.5
) -> Classification:
    """Relax with the pixels held; argmax of the label neurons."""
    _check_pixels(net, pixels)
    check_at_least("steps", steps, 1)
    check_positive("dt", dt)
    return _classify(net, jnp.asarray(pixels), steps, dt)


@eqx.filter_jit
def _classify(net, pixels, steps: int, dt: float) -> Classification:
    x = relax(net, pixels, steps, dt)
    labels = x[:, net.sensory : net.sensory + net.labels]
    return Classification(jnp.argmax(labels, axis=1), labels)
