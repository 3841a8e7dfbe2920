"""MaskedLinear: y = (W * M) x + b, with the masked weights fixed at zero for good."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn
from pcn import layers as L

IN, OUT, BATCH = 6, 4, 5
MASK = np.random.default_rng(0).random((OUT, IN)) < 0.5
DATA = np.random.default_rng(1)
X = jnp.asarray(DATA.normal(size=(BATCH, IN)), jnp.float32)
T = jnp.asarray(DATA.normal(size=(BATCH, OUT)), jnp.float32)


def layer(mask=MASK) -> L.MaskedLinear:
    return L.MaskedLinear(IN, OUT, mask, key=jax.random.key(0))


def loss(module: L.MaskedLinear) -> jax.Array:
    return jnp.sum(jnp.square(jax.vmap(module)(X) - T))


def test_masked_linear_computes_the_masked_product_and_accepts_bool_or_0_1_masks():
    bool_layer, float_layer = layer(MASK), layer(MASK.astype(np.float32))
    w, b = bool_layer.linear.weight, bool_layer.linear.bias
    np.testing.assert_array_equal(np.asarray(w)[~MASK], 0.0)
    expected = (np.asarray(w) * MASK) @ np.asarray(X[0]) + np.asarray(b)
    np.testing.assert_allclose(eqx.filter_jit(bool_layer)(X[0]), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(float_layer.linear.weight, w)
    assert bool_layer.mask.dtype == jnp.bool_


def test_masked_entries_have_zero_gradient_under_jax_grad():
    module = layer()

    def loss_of_weight(weight):
        return loss(eqx.tree_at(lambda m: m.linear.weight, module, weight))

    grad = np.asarray(jax.jit(jax.grad(loss_of_weight))(module.linear.weight))
    np.testing.assert_array_equal(grad[~MASK], 0.0)
    assert np.all(grad[MASK] != 0.0)
    # the mask is not differentiated at all: it is no floating-point leaf
    assert eqx.filter_grad(loss)(module).mask is None


def test_masked_entries_never_move_under_optax_updates_even_with_weight_decay():
    module = layer()
    optimizer = optax.adamw(0.1, weight_decay=0.5)
    opt_state = optimizer.init(eqx.filter(module, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(module, opt_state):
        grads = eqx.filter_grad(loss)(module)
        updates, opt_state = optimizer.update(
            grads, opt_state, eqx.filter(module, eqx.is_inexact_array)
        )
        return eqx.apply_updates(module, updates), opt_state

    trained = module
    for _ in range(5):
        trained, opt_state = step(trained, opt_state)
    before, after = np.asarray(module.linear.weight), np.asarray(trained.linear.weight)
    np.testing.assert_array_equal(after[~MASK], 0.0)
    assert np.all(after[MASK] != before[MASK])
    np.testing.assert_array_equal(trained.mask, MASK)
    assert loss(trained) < loss(module)


def test_in_a_pc_graph_the_mask_is_no_parameter_and_inference_learning_keeps_it():
    graph = pcn.PCGraph([pcn.Node("x", IN), pcn.Node("y", OUT)], [pcn.Edge(layer(), "x", "y")])
    params = pcn.parameters(graph).edges[0].module
    assert params.mask is None and params.linear.weight is not None

    step = pcn.make_train_step(graph, pcn.IL(stop=2, gamma=0.1), optax.adam(0.1))
    state = step.init(graph)
    for _ in range(3):
        state, _ = step(state, {"x": X, "y": T})
    trained = step.graph(state).edges[0].module
    np.testing.assert_array_equal(np.asarray(trained.linear.weight)[~MASK], 0.0)
    assert not np.allclose(trained.linear.weight, graph.edges[0].module.linear.weight)
    np.testing.assert_array_equal(trained.mask, MASK)
