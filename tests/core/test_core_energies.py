"""Energy families against their textbook formulas."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn._fusion import plan_fusion


def softmax_np(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def test_categorical_energy_of_a_one_hot_value_is_the_cross_entropy(x64):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    one_hot = np.eye(4)[labels]

    energy = pcn.Categorical().energy(jnp.asarray(one_hot), jnp.asarray(logits))

    expected = -np.log(softmax_np(logits)[np.arange(5), labels])
    assert energy.shape == (5,)
    np.testing.assert_allclose(np.asarray(energy), expected, rtol=1e-12)


def test_categorical_energy_is_zero_at_the_softmax_of_the_prediction(x64):
    logits = np.random.default_rng(1).normal(size=(3, 6)) * 2
    family = pcn.Categorical()

    value = family.mean(jnp.asarray(logits))

    np.testing.assert_allclose(np.asarray(value), softmax_np(logits), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(family.energy(value, jnp.asarray(logits))), 0, atol=1e-12)


def test_categorical_energy_is_the_kl_divergence_for_any_probability_vector(x64):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 5))
    p = softmax_np(rng.normal(size=(4, 5)))
    p[0] = [0.5, 0.5, 0, 0, 0]  # zero entries contribute 0 log 0 = 0

    energy = pcn.Categorical().energy(jnp.asarray(p), jnp.asarray(logits))

    q = softmax_np(logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    np.testing.assert_allclose(np.asarray(energy), terms.sum(axis=1), rtol=1e-12)
    assert np.all(np.asarray(energy) > 0)


@pytest.mark.parametrize("precision", [1.0, 0.25, 4.0])
def test_gaussian_energy_is_half_the_precision_times_the_squared_distance(x64, precision):
    rng = np.random.default_rng(3)
    value, mu = rng.normal(size=(2, 3, 2, 4))  # batch 3, node shape (2, 4)

    energy = pcn.Gaussian(precision=precision).energy(jnp.asarray(value), jnp.asarray(mu))

    expected = precision / 2 * np.sum((value - mu) ** 2, axis=(1, 2))
    assert energy.shape == (3,)
    np.testing.assert_allclose(np.asarray(energy), expected, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(pcn.Gaussian().mean(jnp.asarray(mu))), mu)


def test_the_precision_of_a_free_output_scales_its_value_step(x64):
    """E_y = p/2 ||y - mu_y||^2, so one step moves a free output by -gamma p (y - mu_y)."""
    precision, gamma = 3.0, 0.1
    nodes = [pcn.Node("x", 2), pcn.Node("y", 2, energy=pcn.Gaussian(precision=precision))]
    weight = jnp.array([[1.0, 2.0], [-1.0, 0.5]])
    graph = pcn.PCGraph(nodes, [pcn.Edge(lambda x: weight @ x, "x", "y")])
    x = jnp.array([[1.0, -1.0]])
    y = jnp.array([[0.0, 0.0]])

    result = pcn.infer(graph, {"x": x, "y": y}, clamp={"x": True}, stop=1, gamma=gamma)

    mu = np.array([[-1.0, -1.5]])  # weight @ x
    expected = np.asarray(y) - gamma * precision * (np.asarray(y) - mu)
    np.testing.assert_allclose(np.asarray(result.values["y"]), expected, rtol=1e-12)


def test_energies_are_differentiable_in_the_prediction(x64):
    """dE/dmu: -p (x - mu) for the Gaussian, softmax(mu) - value for the categorical."""
    rng = np.random.default_rng(4)
    value, mu = jnp.asarray(rng.normal(size=(2, 1, 3)))
    grad_g = jax.grad(lambda m: pcn.Gaussian(precision=2.0).energy(value, m).sum())(mu)
    np.testing.assert_allclose(np.asarray(grad_g), -2.0 * np.asarray(value - mu), rtol=1e-12)

    target = jax.nn.softmax(value)
    grad_c = jax.grad(lambda m: pcn.Categorical().energy(target, m).sum())(mu)
    np.testing.assert_allclose(
        np.asarray(grad_c), softmax_np(np.asarray(mu)) - np.asarray(target), atol=1e-12
    )


@pytest.mark.parametrize("fuse", [True, False])
def test_the_precision_of_a_hidden_node_weighs_its_own_error_against_the_feedback(x64, fuse):
    """E = p/2 ||h - mu_h||^2 + 1/2 ||y - W2 h - b2||^2, so
    dh = -gamma (p (h - mu_h) - W2^T (y - W2 h - b2)), whichever way relaxation runs."""
    precision, gamma, steps = 2.5, 0.05, 4
    k1, k2 = jax.random.split(jax.random.key(0))
    first, second = eqx.nn.Linear(3, 6, key=k1), eqx.nn.Linear(6, 2, key=k2)
    nodes = [pcn.Node("x", 3), pcn.Node("h", 6, energy=pcn.Gaussian(precision=precision))]
    nodes.append(pcn.Node("y", 2))
    edges = [pcn.Edge(first, "x", "h"), pcn.Edge(second, "h", "y")]
    graph = pcn.PCGraph(nodes, edges)
    rng = np.random.default_rng(1)
    x, h, y = (rng.normal(size=(4, n)) for n in (3, 6, 2))

    w1, b1 = np.asarray(first.weight), np.asarray(first.bias)
    w2, b2 = np.asarray(second.weight), np.asarray(second.bias)
    mu_h = x @ w1.T + b1
    expected = h.copy()
    for _ in range(steps):
        eps_y = y - (expected @ w2.T + b2)
        expected = expected - gamma * (precision * (expected - mu_h) - eps_y @ w2)

    values = {"x": jnp.asarray(x), "h": jnp.asarray(h), "y": jnp.asarray(y)}
    clamp = {"x": True, "y": True}
    assert [f.name for f in plan_fusion(graph, frozenset(clamp), {})] == ["h"]
    result = pcn.infer(graph, values, clamp=clamp, stop=steps, gamma=gamma, fuse=fuse)

    np.testing.assert_allclose(np.asarray(result.values["h"]), expected, rtol=0, atol=1e-12)
    eps_y = y - (expected @ w2.T + b2)
    final = (precision * np.sum((expected - mu_h) ** 2) + np.sum(eps_y**2)) / 2 / 4
    np.testing.assert_allclose(float(result.energy_trace[-1]), final, rtol=1e-12)


def test_relaxing_a_free_categorical_node_is_refused_naming_the_node():
    # gradient steps on a categorical value would leave the probability simplex
    graph = pcn.mlp((3, 4, 5, 2), key=jax.random.key(2), output="categorical")
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3)), jnp.float32)
    values = pcn.forward_init(graph, {"x": x})

    with pytest.raises(ValueError, match=r"Node 'y' has a categorical energy.*Clamp it"):
        pcn.infer(graph, values, clamp={"x": True}, stop=5, gamma=0.1)
