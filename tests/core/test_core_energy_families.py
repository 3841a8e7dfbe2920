"""Energy families: closed forms, zero at the mean, gradients against finite differences
(float64), and F_KL = F for Gaussian nodes (the beyond-Gaussians paper's supplement)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import pcn
from pcn.energies import gaussian_log_prob, gaussian_sample, laplace_log_prob, laplace_sample

VARIANCES = np.array([0.5, 1.0, 2.0, 0.25])

# name -> (factory, kind of value, zero energy at `mean(mu)`); factories, so that arrays
# inside a family are made in float64 by the tests that enable it
FAMILIES = {
    "gaussian": (lambda: pcn.Gaussian(precision=2.0), "real", True),
    "categorical": (pcn.Categorical, "simplex", True),
    "softmax_categorical": (pcn.SoftmaxCategorical, "real", True),
    "bernoulli": (pcn.Bernoulli, "unit", True),
    "bernoulli_logits": (pcn.BernoulliLogits, "real", True),
    "diagonal_gaussian": (lambda: pcn.DiagonalGaussian(VARIANCES), "real", True),
    "diagonal_gaussian_learned": (
        lambda: pcn.DiagonalGaussian(VARIANCES, learned=True),
        "real",
        False,  # F~ (Eq. 5) keeps 1/2 sum log sigma^2
    ),
    "reparam_gaussian": (pcn.ReparamGaussian, "real", False),  # KL to the prior remains
    "reparam_gaussian_no_prior": (lambda: pcn.ReparamGaussian(prior_weight=0.0), "real", True),
    "monte_carlo_laplace": (
        lambda: pcn.MonteCarloKL(laplace_sample, laplace_log_prob, samples=8),
        "real",
        True,
    ),
}


def _value(kind, rng, shape):
    if kind == "simplex":
        v = rng.uniform(0.1, 1.0, size=shape)
        return v / v.sum(axis=-1, keepdims=True)
    if kind == "unit":
        return rng.uniform(0.05, 0.95, size=shape)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name", sorted(n for n, f in FAMILIES.items() if f[2]))
def test_energy_is_zero_at_the_mean_of_the_prediction(name):
    with jax.enable_x64(True):
        family = FAMILIES[name][0]()
        mu = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)))
        energy = eqx.filter_jit(family.energy)(family.mean(mu), mu)
        np.testing.assert_allclose(energy, 0.0, atol=1e-12)


def test_energy_at_the_mean_is_the_log_variance_term_or_the_prior_kl():
    with jax.enable_x64(True):
        mu = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)))
        learned = pcn.DiagonalGaussian(VARIANCES, learned=True)
        np.testing.assert_allclose(
            learned.energy(mu, mu), 0.5 * np.sum(np.log(VARIANCES)), rtol=1e-12
        )
        u, s = np.asarray(mu[:, :2]), np.asarray(mu[:, 2:])
        prior_kl = 0.5 * np.sum(np.exp(s) + u**2 - 1 - s, axis=1)
        np.testing.assert_allclose(pcn.ReparamGaussian().energy(mu, mu), prior_kl, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_energy_gradients_match_central_finite_differences(name):
    with jax.enable_x64(True):
        factory, kind, _ = FAMILIES[name]
        family = factory()
        rng = np.random.default_rng(1)
        value, mu = _value(kind, rng, (2, 4)), rng.normal(size=(2, 4))

        @jax.jit
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
        pcn.infer(graph, values, clamp={"x": True}, stop=2, gamma=0.1)


def _kl_diagonal(u, var, u_hat, var_hat):
    """KL(N(u, diag var) || N(u_hat, diag var_hat)) by the general matrix formula."""
    cov, cov_hat = np.diag(var), np.diag(var_hat)
    inv = np.linalg.inv(cov_hat)
    d = len(u)
    return 0.5 * (
        np.trace(inv @ cov)
        + (u_hat - u) @ inv @ (u_hat - u)
        - d
        + np.log(np.linalg.det(cov_hat) / np.linalg.det(cov))
    )


def test_diagonal_gaussian_fixed_is_f_kl_and_f_up_to_the_constant(x64):
    rng = np.random.default_rng(3)
    x, mu = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    energy = np.asarray(pcn.DiagonalGaussian(VARIANCES).energy(jnp.asarray(x), jnp.asarray(mu)))
    kl = [_kl_diagonal(v, VARIANCES, m, VARIANCES) for v, m in zip(x, mu, strict=True)]
    np.testing.assert_allclose(energy, kl, rtol=1e-12)
    # F = -ln N(x; mu, Sigma) = F_KL + 1/2 sum log sigma^2 + d/2 log 2 pi
    neg_log_lik = -np.sum(stats.norm.logpdf(x, mu, np.sqrt(VARIANCES)), axis=1)
    constant = 0.5 * np.sum(np.log(VARIANCES)) + 2 * np.log(2 * np.pi)
    np.testing.assert_allclose(energy + constant, neg_log_lik, rtol=1e-12)


def test_learned_diagonal_gaussian_is_f_tilde_of_eq_5(x64):
    rng = np.random.default_rng(4)
    x, mu = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    family = pcn.DiagonalGaussian(VARIANCES, learned=True)
    energy = np.asarray(family.energy(jnp.asarray(x), jnp.asarray(mu)))
    neg_log_lik = -np.sum(stats.norm.logpdf(x, mu, np.sqrt(VARIANCES)), axis=1)
    np.testing.assert_allclose(energy + 2 * np.log(2 * np.pi), neg_log_lik, rtol=1e-12)
    kl = [_kl_diagonal(v, VARIANCES, m, VARIANCES) for v, m in zip(x, mu, strict=True)]
    np.testing.assert_allclose(energy, np.asarray(kl) + 0.5 * np.sum(np.log(VARIANCES)))


@pytest.mark.parametrize("learned", [False, True])
def test_log_variance_gradient_matches_finite_differences_only_when_learned(x64, learned):
    rng = np.random.default_rng(5)
    x, mu = jnp.asarray(rng.normal(size=(2, 4))), jnp.asarray(rng.normal(size=(2, 4)))
    family = pcn.DiagonalGaussian(VARIANCES, learned=learned)

    @jax.jit
    def total(log_var):
        return jnp.sum(pcn.DiagonalGaussian(jnp.exp(log_var), learned=True).energy(x, mu))

    grad = jax.grad(lambda f: jnp.sum(f.energy(x, mu)))(family).log_variance
    if not learned:
        np.testing.assert_array_equal(grad, 0.0)  # a fixed variance is not trained
        return
    log_var, h = np.log(VARIANCES), 1e-6
    for i in range(4):
        up, down = log_var.copy(), log_var.copy()
        up[i] += h
        down[i] -= h
        fd = (float(total(jnp.asarray(up))) - float(total(jnp.asarray(down)))) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, atol=1e-7)


@pytest.mark.parametrize("prior_weight", [0.0, 1.0, 0.5])
def test_reparam_gaussian_is_the_kl_between_diagonal_gaussians(x64, prior_weight):
    rng = np.random.default_rng(6)
    value, mu = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    energy = pcn.ReparamGaussian(prior_weight).energy(jnp.asarray(value), jnp.asarray(mu))
    expected = []
    for v, m in zip(value, mu, strict=True):
        u, var, u_hat, var_hat = v[:3], np.exp(v[3:]), m[:3], np.exp(m[3:])
        prior = _kl_diagonal(u, var, np.zeros(3), np.ones(3))
        expected.append(_kl_diagonal(u, var, u_hat, var_hat) + prior_weight * prior)
    np.testing.assert_allclose(energy, expected, rtol=1e-12)


def test_reparam_gaussian_with_equal_fixed_variances_is_the_gaussian_energy(x64):
    # F_KL = F (up to the constant): equal variances leave the precision-weighted error
    rng = np.random.default_rng(7)
    u, u_hat = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    log_var = np.log(VARIANCES) * np.ones((3, 1))
    value = jnp.asarray(np.concatenate([u, log_var], axis=1))
    mu = jnp.asarray(np.concatenate([u_hat, log_var], axis=1))
    np.testing.assert_allclose(
        pcn.ReparamGaussian(prior_weight=0.0).energy(value, mu),
        pcn.DiagonalGaussian(VARIANCES).energy(jnp.asarray(u), jnp.asarray(u_hat)),
        rtol=1e-12,
    )


def test_monte_carlo_kl_of_gaussians_converges_to_the_closed_form(x64):
    rng = np.random.default_rng(8)
    value = jnp.asarray(rng.normal(scale=0.5, size=(2, 6)))
    mu = jnp.asarray(rng.normal(scale=0.5, size=(2, 6)))
    exact = pcn.ReparamGaussian(prior_weight=0.0).energy(value, mu)
    family = pcn.MonteCarloKL(gaussian_sample, gaussian_log_prob, samples=20000)
    mc = eqx.filter_jit(family.energy)(value, mu)
    np.testing.assert_allclose(mc, exact, rtol=0.05)
    assert not np.allclose(mc, exact, rtol=1e-6)  # an estimate, not the formula


def test_monte_carlo_kl_of_laplace_converges_to_the_closed_form(x64):
    rng = np.random.default_rng(9)
    value = rng.normal(scale=0.5, size=(2, 6))
    mu = rng.normal(scale=0.5, size=(2, 6))
    m1, b1, m2, b2 = value[:, :3], np.exp(value[:, 3:]), mu[:, :3], np.exp(mu[:, 3:])
    gap = np.abs(m1 - m2)
    exact = np.sum(np.log(b2 / b1) + gap / b2 + b1 / b2 * np.exp(-gap / b1) - 1, axis=1)
    family = pcn.MonteCarloKL(laplace_sample, laplace_log_prob, samples=20000, seed=3)
    estimate = eqx.filter_jit(family.energy)(jnp.asarray(value), jnp.asarray(mu))
    np.testing.assert_allclose(estimate, exact, rtol=0.05)


def _regression_graph(energy, key):
    return pcn.PCGraph(
        [pcn.Node("x", 3), pcn.Node("h", 8, activation="tanh"), pcn.Node("y", 2, energy=energy)],
        [
            pcn.Edge(pcn.layers.Linear(3, 8, key=jax.random.fold_in(key, 0)), "x", "h"),
            pcn.Edge(pcn.layers.Linear(8, 2, key=jax.random.fold_in(key, 1)), "h", "y"),
        ],
    )


@pytest.mark.parametrize("learned", [False, True])
def test_the_train_step_trains_a_learned_variance_and_leaves_a_fixed_one(learned):
    key = jax.random.key(0)
    graph = _regression_graph(pcn.DiagonalGaussian(1.0, shape=2, learned=learned), key)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    noise_std = np.array([0.1, 1.5], np.float32)  # one quiet, one noisy output unit
    y = (np.tanh(x[:, :2]) + noise_std * rng.normal(size=(64, 2))).astype(np.float32)
    step = pcn.make_train_step(graph, pcn.IL(8, gamma=0.1), optax.adam(5e-2))
    state = step.init(graph)
    for _ in range(150):
        state, _ = step(state, {"x": jnp.asarray(x), "y": jnp.asarray(y)})
    variance = np.asarray(step.graph(state).node("y").energy.variance)
    if not learned:
        np.testing.assert_array_equal(variance, [1.0, 1.0])
    else:
        assert variance[0] < 0.2 and 1.0 < variance[1] < 4.0, variance
