"""`pcn.update_alignment`: how closely one algorithm's weight update follows another's."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
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


def _ppc_setup():
    graph, batch = _graph_and_batch(1.0)
    optimizer = optax.adam(1e-2)
    return graph, batch, optimizer, optimizer.init(eqx.filter(graph, eqx.is_inexact_array))


def test_ppc_step_alignment_walks_the_weights_exactly_as_ppc_step_does():
    """The diagnostic's step-by-step walk ends at the weights of PPC's one compiled step
    (float64), for iPC (k = 1) and a k = 2 schedule."""
    from pcn.alignment import _ppc_gradients

    with jax.enable_x64(True):
        graph, batch, optimizer, state = _ppc_setup()
        for k in (1, 2):
            ppc = pcn.PPC(4, weight_every=k, gamma=0.3)
            stepped, _, _ = ppc.step(graph, state, batch, optimizer=optimizer)
            _, walked = _ppc_gradients(graph, ppc, batch, optimizer, state, True, None)
            for a, b in zip(jax.tree.leaves(stepped), jax.tree.leaves(walked), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_held_weights_get_backprops_direction_when_the_labels_error_first_reaches_them():
    """Forward-initialised and held still, an array's gradient is zero until the output
    error has travelled down to it, and then points along BP's; moving, iPC's differs."""
    with jax.enable_x64(True):
        graph, batch, optimizer, state = _ppc_setup()
        result = pcn.ppc_step_alignment(
            graph, pcn.PPC(3, gamma=0.3), batch, optimizer=optimizer, opt_state=state
        )
    first_reached = {"h2->y.weight": 0, "h1->h2.weight": 1, "x->h1.weight": 2}
    for name, t in first_reached.items():
        alignment = result[name]
        assert np.all(np.isnan(alignment.still[:t]))
        assert alignment.still[t] == pytest.approx(1.0, abs=1e-10)
        assert alignment.still_rms[t] > 0
    # the first weight step (after t = 0's value step) moves h2->y before t = 1's gradient
    assert result["h2->y.weight"].moving[0] == pytest.approx(1.0, abs=1e-10)
    assert abs(result["h2->y.weight"].moving[2] - result["h2->y.weight"].still[2]) > 1e-3


def test_ppc_step_alignment_of_the_il_schedule_sees_no_weight_move_inside_the_batch():
    with jax.enable_x64(True):
        graph, batch, optimizer, state = _ppc_setup()
        result = pcn.ppc_step_alignment(
            graph, pcn.PPC(3, weight_every=3), batch, optimizer=optimizer, opt_state=state
        )
    for alignment in result.values():
        np.testing.assert_array_equal(alignment.moving, alignment.still)


def test_ppc_step_alignment_refuses_an_initialiser_that_carries_values():
    graph, batch, optimizer, state = _ppc_setup()
    with pytest.raises(TypeError, match="carries values between batches; use `forward_init`"):
        pcn.ppc_step_alignment(
            graph, pcn.PPC(3, init=pcn.NullInit()), batch, optimizer=optimizer, opt_state=state
        )
