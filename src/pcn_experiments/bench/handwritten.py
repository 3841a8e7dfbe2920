"""A hand-written JAX PC training step for the reference MLP, the yardstick the library
must not lose to: the clamped input's projection is hoisted out of the relaxation loop,
the loop is a `lax.scan`, energies and gradients are written out by hand with autodiff."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def init_params(key: jax.Array, sizes: tuple[int, ...]) -> list[tuple[jax.Array, jax.Array]]:
    """Weights (in, out) and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    params = []
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    for k, (n_in, n_out) in zip(jax.random.split(key, len(layers)), layers, strict=True):
        kw, kb = jax.random.split(k)
        lim = n_in**-0.5
        params.append(
            (
                jax.random.uniform(kw, (n_in, n_out), minval=-lim, maxval=lim),
                jax.random.uniform(kb, (n_out,), minval=-lim, maxval=lim),
            )
        )
    return params


def _energy(hidden, params, first, y):
    """Sum over the batch of 1/2 ||errors||^2 with mu_1 = tanh(first) precomputed."""
    h1, h2 = hidden
    _, (w2, b2), (w3, b3) = params
    e1 = h1 - jnp.tanh(first)
    e2 = h2 - jnp.tanh(h1 @ w2 + b2[None])
    e3 = y - (h2 @ w3 + b3[None])
    return 0.5 * (jnp.sum(e1**2) + jnp.sum(e2**2) + jnp.sum(e3**2))


def make_step(steps: int, gamma: float, optimizer: optax.GradientTransformation):
    """A jitted `(params, opt_state, x, y) -> (params, opt_state)` PC step, 784-h-h-10."""

    def weight_loss(params, hidden, x, y):
        w1, b1 = params[0]
        return _energy(hidden, params, x @ w1 + b1[None], y) / x.shape[0]

    @jax.jit
    def step(params, opt_state, x, y):
        (w1, b1), (w2, b2), _ = params
        first = x @ w1 + b1[None]  # hoisted: the input is clamped
        h1 = jnp.tanh(first)
        h2 = jnp.tanh(h1 @ w2 + b2[None])

        def relax(hidden, _):
            grads = jax.grad(_energy)(hidden, params, first, y)
            return jax.tree.map(lambda h, g: h - gamma * g, hidden, grads), None

        hidden, _ = jax.lax.scan(relax, (h1, h2), length=steps)
        grads = jax.grad(weight_loss)(params, hidden, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step
