"""Almeida–Pineda recurrent backpropagation on a fully connected network."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pcn.baselines import almeida_pineda as ap


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _noisy_prototypes(n: int, seed: int, flip: float = 0.1):
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 16)) < 0.5).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    flips = rng.random((n, 16)) < flip
    return np.abs(prototypes[y] - flips).astype(np.float32), y


def test_the_adjoint_relaxation_gives_the_gradient_of_the_loss_at_the_fixed_point(x64):
    net = ap.recurrent_network(5, 3, 4, key=jax.random.key(0), weight_scale=2.0)
    x = jax.random.uniform(jax.random.key(1), (6, 5))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    grads, loss = ap.gradients(net, x, y, steps=400, dt=0.5)

    def unrolled(weight, bias):  # autodiff through a converged relaxation
        states = ap.relax(ap.RecurrentNetwork(weight, bias, 5, 3), x, 400, 0.5)
        out = states[:, 5:8]
        return 0.5 * jnp.mean(jnp.sum((out - jax.nn.one_hot(y, 3)) ** 2, axis=1))

    gw, gb = jax.grad(unrolled, argnums=(0, 1))(net.weight, net.bias)
    assert float(loss) == pytest.approx(float(unrolled(net.weight, net.bias)))
    np.testing.assert_allclose(grads.weight, gw * (1 - np.eye(12)), atol=1e-9)
    np.testing.assert_allclose(grads.bias, gb, atol=1e-9)
    assert np.abs(np.asarray(gw)).max() > 1e-3  # not trivially zero
    np.testing.assert_array_equal(np.diag(grads.weight), 0.0)


def test_almeida_pineda_learns_to_classify_noisy_prototypes():
    x, y = _noisy_prototypes(256, seed=1)
    net = ap.recurrent_network(16, 4, 8, key=jax.random.key(0))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(net)
    step = ap.make_train_step(optimizer, steps=20)
    losses = []
    for _epoch in range(10):
        for i in range(0, 256, 32):
            net, opt_state, loss = step(net, opt_state, x[i : i + 32], y[i : i + 32])
            losses.append(float(loss))
    x_test, y_test = _noisy_prototypes(200, seed=2)
    result = ap.classify(net, jnp.asarray(x_test), steps=20)
    assert np.mean(np.asarray(result.output) == y_test) > 0.9
    assert losses[-1] < 0.5 * losses[0]


def test_bad_shapes_and_settings_are_refused_with_clear_errors():
    net = ap.recurrent_network(16, 4, 8, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 16\)"):
        ap.classify(net, jnp.ones((3, 15)))
    with pytest.raises(ValueError, match="steps"):
        ap.make_train_step(optax.adam(1e-3), steps=0)
    with pytest.raises(ValueError, match="dt"):
        ap.classify(net, jnp.ones((3, 16)), dt=0.0)
    with pytest.raises(ValueError, match="hidden"):
        ap.recurrent_network(16, 4, -1, key=jax.random.key(0))
