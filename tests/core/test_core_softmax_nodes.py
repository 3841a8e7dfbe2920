"""Softmax (categorical-logits) nodes: the F_KL energy of a softmax layer (Eq. 10 of the
beyond-Gaussians paper), free to relax because the node holds logits."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn


def _kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_node_energy_is_the_kl_between_the_two_softmaxes():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        phi, mu = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
        energy = pcn.SoftmaxCategorical().energy(jnp.asarray(phi), jnp.asarray(mu))
        np.testing.assert_allclose(energy, _kl(_softmax(phi), _softmax(mu)), rtol=1e-12)
        # logits are defined up to a shift: equal up to a constant means zero energy
        zero = pcn.SoftmaxCategorical().energy(jnp.asarray(mu + 3.0), jnp.asarray(mu))
        np.testing.assert_allclose(zero, 0.0, atol=1e-12)


def test_softmax_node_precision_weights_the_kl_and_must_be_positive():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        phi, mu = jnp.asarray(rng.normal(size=(3, 5))), jnp.asarray(rng.normal(size=(3, 5)))
        stiff = pcn.SoftmaxCategorical(precision=50.0).energy(phi, mu)
        np.testing.assert_allclose(stiff, 50.0 * pcn.SoftmaxCategorical().energy(phi, mu))
    with pytest.raises(ValueError, match="precision"):
        pcn.SoftmaxCategorical(precision=0.0)


def _softmax_hidden_graph():
    k = jax.random.split(jax.random.key(0), 3)
    nodes = [
        pcn.Node("x", 4),
        pcn.Node("h", 6, energy=pcn.SoftmaxCategorical()),
        pcn.Node("y", 3),
    ]
    edges = [
        pcn.Edge(eqx.nn.Linear(4, 6, key=k[0]), "x", "h"),
        pcn.Edge(eqx.nn.Linear(6, 3, key=k[1]), "h", "y"),
    ]
    return pcn.PCGraph(nodes, edges)


def test_children_of_a_softmax_node_see_its_softmax_and_bp_uses_the_same_network():
    with jax.enable_x64(True):
        graph = _softmax_hidden_graph()
        x = jax.random.normal(jax.random.key(1), (5, 4))
        y = jax.random.normal(jax.random.key(2), (5, 3))
        w1, w2 = graph.edges[0].module, graph.edges[1].module
        expected = jax.vmap(w2)(jax.nn.softmax(jax.vmap(w1)(x), axis=-1))
        values = pcn.forward_init(graph, {"x": x})
        np.testing.assert_allclose(values["y"], expected, rtol=1e-12)
        assert float(jnp.max(jnp.abs(graph.energy(values)))) < 1e-12

        def reference(ws):
            a, b = ws
            out = jax.vmap(b)(jax.nn.softmax(jax.vmap(a)(x), axis=-1))
            return 0.5 * jnp.mean(jnp.sum((y - out) ** 2, axis=1))

        params, static = eqx.partition(graph, eqx.is_inexact_array)
        ours = jax.grad(lambda p: pcn.bp_loss(eqx.combine(p, static), {"x": x, "y": y}))(params)
        ref = jax.grad(reference)((w1, w2))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_a_free_softmax_node_relaxes_and_its_presented_value_stays_a_distribution():
    graph = _softmax_hidden_graph()
    x = jax.random.normal(jax.random.key(1), (5, 4))
    y = jax.random.normal(jax.random.key(2), (5, 3))
    values = pcn.forward_init(graph, {"x": x, "y": y})
    result = pcn.infer(graph, values, clamp={"x": True, "y": True}, stop=50, gamma=0.1)
    trace = np.asarray(result.energy_trace)
    assert trace[-1] < trace[0]
    assert np.all(np.diff(trace) <= 1e-7)
    shown = jax.nn.softmax(result.values["h"], axis=-1)
    np.testing.assert_allclose(np.asarray(shown).sum(axis=1), 1.0, rtol=1e-6)
