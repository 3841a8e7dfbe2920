"""`pcn.update_alignment`: how closely one algorithm's weight update follows another's."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn


def _graph_and_batch(output_precision: float):
    graph = pcn.mlp([5, 8, 8, 3], key=jax.random.key(0), output_precision=output_precision)
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.normal(size=(16, 5))), "y": jnp.asarray(rng.normal(size=(16, 3)))}
    return graph, batch


def test_an_algorithm_is_aligned_with_itself_for_every_weight_array():
    with jax.enable_x64(True):
        graph, batch = _graph_and_batch(1.0)
        result = pcn.update_alignment(graph, pcn.BP(), pcn.BP(), batch)
    assert len(result) == 6  # weight and bias of three edges
    assert "x->h1.weight" in result and "h2->y.bias" in result
    for alignment in result.values():
        assert alignment.cosine == pytest.approx(1.0, abs=1e-12)
        assert alignment.norm_ratio == pytest.approx(1.0, abs=1e-12)


def test_il_follows_backprop_when_errors_are_small_and_not_when_they_are_large():
    """PC's update tends to BP's as the output precision (so every error) goes to zero
    with relaxation converged; at precision 1 after three steps the output layer's update
    (made at the relaxed hidden values) is visibly off."""
    with jax.enable_x64(True):
        small, batch = _graph_and_batch(1e-6)
        close = pcn.update_alignment(small, pcn.IL(200, gamma=0.2), pcn.BP(), batch)
        large, _ = _graph_and_batch(1.0)
        far = pcn.update_alignment(large, pcn.IL(3, gamma=0.5), pcn.BP(), batch)
    for alignment in close.values():
        assert alignment.cosine > 1 - 1e-5
        assert alignment.norm_ratio == pytest.approx(1.0, rel=1e-3)
    assert min(a.cosine for a in far.values()) < 0.99


def test_weight_update_is_minus_the_backprop_gradient():
    with jax.enable_x64(True):
        graph, batch = _graph_and_batch(1.0)
        update = pcn.weight_update(graph, pcn.BP(), batch)
        grads = eqx.filter_grad(lambda g: pcn.bp_loss(g, batch))(graph)
    first = update.edges[0].module.weight
    np.testing.assert_allclose(first, -grads.edges[0].module.weight, rtol=1e-10, atol=1e-14)
