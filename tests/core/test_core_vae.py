"""The VAE graph: its forward energy is the VAE loss, BP trains that loss through the same
graph, PC relaxes with the noise held fixed, and both learn."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.vae import (
    Reparameterise,
    decode,
    encode,
    forward_energy,
    vae_batch,
    vae_loss,
)


def _graph(**kwargs):
    return pcn.vae_mlp(12, hidden=(10,), latent=3, key=jax.random.key(0), **kwargs)


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(n, 12)).astype(np.float32)


def test_the_graph_has_the_paper_shape():
    graph = _graph()
    assert graph.node("z").shape == (6,)  # 3 means + 3 log-variances
    assert graph.node("eps").shape == (3,)
    assert isinstance(graph.node("z").energy, pcn.ReparamGaussian)
    assert graph.node("e1").activation(jnp.asarray(3.0)) == 1.0  # Hardtanh
    np.testing.assert_allclose(graph.node("y").activation(jnp.asarray(0.0)), 0.5)  # sigmoid
    assert set(graph.roots()) == {"x", "eps"}


def test_forward_energy_is_reconstruction_plus_kl_to_the_prior(x64):
    graph = _graph()
    x = jnp.asarray(_data(4), jnp.float64)
    batch = vae_batch(graph, seed=1)(np.asarray(x), np.asarray(x))
    edges = {e.child: graph.edge_module(e) for e in graph.edges}
    h = jnp.clip(jax.vmap(edges["e1"])(x), -1, 1)
    params = jax.vmap(edges["z"])(h)
    u, log_var = params[:, :3], params[:, 3:]
    sample = u + batch["eps"] * jnp.exp(0.5 * log_var)
    d = jnp.clip(jax.vmap(edges["d1"].linear)(sample), -1, 1)
    recon = jax.nn.sigmoid(jax.vmap(edges["y"])(d))
    expected = 0.5 * jnp.sum((x - recon) ** 2, axis=1) + 0.5 * jnp.sum(
        jnp.exp(log_var) + u**2 - 1 - log_var, axis=1
    )
    np.testing.assert_allclose(eqx.filter_jit(forward_energy)(graph, batch), expected, rtol=1e-10)


def test_reparameterise_with_zero_noise_is_the_mean():
    module = Reparameterise(pcn.layers.Linear(2, 3, key=jax.random.key(0)))
    params = jnp.asarray([0.5, -1.0, 3.0, -2.0])
    np.testing.assert_allclose(module(params, jnp.zeros(2)), module.linear(params[:2]), rtol=1e-6)
    assert not np.allclose(module(params, jnp.ones(2)), module.linear(params[:2]))


def test_relaxation_moves_the_bottleneck_but_not_the_noise():
    graph = _graph()
    x = _data(8)
    batch = vae_batch(graph, seed=0)(x, x)
    values = pcn.forward_init(graph, batch)
    out = pcn.infer(graph, values, clamp={n: True for n in batch}, stop=16, gamma=0.05)
    np.testing.assert_array_equal(out.values["eps"], batch["eps"])
    assert not np.allclose(out.values["z"], values["z"])
    assert out.energy_trace[-1] < out.energy_trace[0]


def test_the_batch_maker_draws_fresh_noise_for_every_batch():
    graph = _graph()
    make = vae_batch(graph, seed=0)
    x = _data(4)
    first, second = make(x, x), make(x, x)
    np.testing.assert_array_equal(first["x"], first["y"])
    assert first["eps"].shape == (4, 3)
    assert not np.allclose(first["eps"], second["eps"])


@pytest.mark.parametrize("algorithm", ["bp", "pc"])
def test_bp_and_pc_lower_the_vae_loss(algorithm):
    graph = _graph(hidden_variance=0.1)
    x = _data(64)
    alg = pcn.BP(loss="forward_energy") if algorithm == "bp" else pcn.IL(16, gamma=0.02)
    step = pcn.make_train_step(graph, alg, optax.adam(3e-3))
    state = step.init(graph)
    before = vae_loss(graph, x)
    make = vae_batch(graph, seed=0)
    for _ in range(5):
        state, _ = pcn.train_epoch(step, state, make, x, x, batch_size=16, seed=0)
    assert vae_loss(step.graph(state), x) < 0.9 * before


def test_bp_step_takes_the_gradient_of_the_forward_energy():
    graph = _graph()
    x = _data(8)
    batch = vae_batch(graph, seed=0)(x, x)
    step = pcn.make_train_step(graph, pcn.BP(loss="forward_energy"), optax.sgd(1.0))
    state, info = step(step.init(graph), batch)
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    loss = jax.jit(lambda p: jnp.mean(forward_energy(eqx.combine(p, static), batch)))
    grads = jax.jit(jax.grad(loss))(params)
    expected = jax.tree.map(lambda p, g: p - g, params, grads)
    for got, want in zip(
        jax.tree.leaves(eqx.filter(step.graph(state), eqx.is_inexact_array)),
        jax.tree.leaves(expected),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.loss, loss(params), rtol=1e-6)


def test_bp_without_the_noise_node_names_it():
    graph = _graph()
    x = jnp.asarray(_data(4))
    step = pcn.make_train_step(graph, pcn.BP(loss="forward_energy"), optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"\['eps'\] are not in the batch"):
        step(step.init(graph), {"x": x, "y": x})


def test_encode_and_decode_shapes_and_zero_noise_reconstruction():
    graph = _graph()
    x = jnp.asarray(_data(5))
    u, log_var = encode(graph, x)
    assert u.shape == log_var.shape == (5, 3)
    recon = decode(graph, u)
    assert recon.shape == (5, 12)
    inputs = {"x": x, "eps": jnp.zeros((5, 3))}
    np.testing.assert_allclose(pcn.forward_init(graph, inputs)["y"], recon, rtol=1e-6)


def test_bad_builder_settings_are_refused():
    with pytest.raises(ValueError, match="hidden_variance"):
        _graph(hidden_variance=0.0)
    with pytest.raises(ValueError, match="latent"):
        pcn.vae_mlp(12, latent=0, key=jax.random.key(0))
