"""Energy families: closed forms, zero at the mean, gradients against finite differences
(float64), and F_KL = F for Gaussian nodes (the beyond-Gaussians paper's supplement)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn

FAMILIES = {
    "gaussian": (pcn.Gaussian(precision=2.0), "real"),
    "categorical": (pcn.Categorical(), "simplex"),
    "softmax_categorical": (pcn.SoftmaxCategorical(), "real"),
    "bernoulli": (pcn.Bernoulli(), "unit"),
    "bernoulli_logits": (pcn.BernoulliLogits(), "real"),
}


def _value(kind, rng, shape):
    if kind == "simplex":
        v = rng.uniform(0.1, 1.0, size=shape)
        return v / v.sum(axis=-1, keepdims=True)
    if kind == "unit":
        return rng.uniform(0.05, 0.95, size=shape)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_energy_is_zero_at_the_mean_of_the_prediction(name):
    with jax.enable_x64(True):
        family, _ = FAMILIES[name]
        mu = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)))
        np.testing.assert_allclose(family.energy(family.mean(mu), mu), 0.0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_energy_gradients_match_central_finite_differences(name):
    with jax.enable_x64(True):
        family, kind = FAMILIES[name]
        rng = np.random.default_rng(1)
        value, mu = _value(kind, rng, (2, 4)), rng.normal(size=(2, 4))

        def total(v, m):
            return jnp.sum(family.energy(v, m))

        g_value, g_mu = jax.grad(total, argnums=(0, 1))(jnp.asarray(value), jnp.asarray(mu))
        h = 1e-6
        for grads, which in ((g_value, 0), (g_mu, 1)):
            for idx in np.ndindex(2, 4):
                args = [value.copy(), mu.copy()]
                args[which][idx] += h
                up = float(total(*map(jnp.asarray, args)))
                args[which][idx] -= 2 * h
                down = float(total(*map(jnp.asarray, args)))
                np.testing.assert_allclose(grads[idx], (up - down) / (2 * h), atol=1e-7)


def test_bernoulli_energy_is_binary_cross_entropy_for_binary_data():
    with jax.enable_x64(True):
        x = jnp.asarray([[0.0, 1.0, 1.0]])
        mu = jnp.asarray([[0.3, -1.2, 2.0]])
        p = 1 / (1 + np.exp(-np.asarray(mu)))
        bce = -np.sum(np.asarray(x) * np.log(p) + (1 - np.asarray(x)) * np.log(1 - p))
        np.testing.assert_allclose(pcn.Bernoulli().energy(x, mu), [bce], rtol=1e-12)


def test_gaussian_f_kl_equals_f_the_kl_between_equal_variance_gaussians():
    # KL(N(x, s2 I) || N(mu, s2 I)) = 1/2 [tr(I) + (mu-x)^T (mu-x) / s2 - d + log 1]
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        x, mu, s2 = rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), 0.7
        cov = s2 * np.eye(5)
        inv = np.linalg.inv(cov)
        kl = [
            0.5 * (np.trace(inv @ cov) + (m - v) @ inv @ (m - v) - 5 + 0.0)
            for v, m in zip(x, mu, strict=True)
        ]
        energy = pcn.Gaussian(precision=1 / s2).energy(jnp.asarray(x), jnp.asarray(mu))
        np.testing.assert_allclose(energy, kl, rtol=1e-12)


def test_a_free_bernoulli_node_is_refused_and_points_to_the_logit_family():
    graph = pcn.PCGraph(
        [pcn.Node("x", 3), pcn.Node("b", 2, energy=pcn.Bernoulli())],
        [pcn.Edge(pcn.layers.Linear(3, 2, key=jax.random.key(0)), "x", "b")],
    )
    values = pcn.forward_init(graph, {"x": jnp.ones((2, 3))})
    with pytest.raises(ValueError, match="Bernoulli energy.*BernoulliLogits"):
        pcn.infer(graph, values, clamp={"x": True}, steps=2, gamma=0.1)
