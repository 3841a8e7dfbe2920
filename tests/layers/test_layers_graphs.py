"""Small networks built from the layers as PC graphs: a CNN and a causal transformer
block, whose forward initialisation reproduces the plain forward pass and which train."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn
from pcn import layers as L

BATCH = 3


def small_cnn(key: jax.Array) -> pcn.PCGraph:
    """x (1, 8, 8) -conv-> c (4, 8, 8), relu on the node -pool-> p (4, 4, 4) -flatten->
    f (64,) -linear-> y (10,), a softmax output."""
    k1, k2 = jax.random.split(key)
    nodes = [
        pcn.Node("x", (1, 8, 8)),
        pcn.Node("c", (4, 8, 8), activation="relu"),
        pcn.Node("p", (4, 4, 4)),
        pcn.Node("f", 64),
        pcn.Node("y", 10, energy=pcn.Categorical()),
    ]
    edges = [
        pcn.Edge(L.Conv2d(1, 4, 3, padding="SAME", key=k1), "x", "c"),
        pcn.Edge(L.MaxPool2d(2), "c", "p"),
        pcn.Edge(L.Flatten(), "p", "f"),
        pcn.Edge(L.Linear(64, 10, key=k2), "f", "y"),
    ]
    return pcn.PCGraph(nodes, edges)


def images(seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(BATCH, 1, 8, 8)), jnp.float32)


@eqx.filter_jit
def forward_and_energy(graph: pcn.PCGraph, inputs: dict[str, jax.Array]):
    values = pcn.forward_init(graph, inputs)
    return values, graph.energy(values)


@eqx.filter_jit
def batched(module, xs):
    return jax.vmap(module)(xs)


def test_a_small_cnn_graph_forward_initialises_to_the_plain_cnn_at_zero_energy():
    graph = small_cnn(jax.random.key(0))
    conv, pool, flatten, linear = (e.module for e in graph.edges)
    x = images()
    values, energy = forward_and_energy(graph, {"x": x})

    plain_cnn = eqx.nn.Sequential(
        [conv, eqx.nn.Lambda(jax.nn.relu), pool, flatten, linear, eqx.nn.Lambda(jax.nn.softmax)]
    )
    np.testing.assert_allclose(values["y"], batched(plain_cnn, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(energy, np.zeros(BATCH), atol=1e-6)


def test_a_small_cnn_graph_trains_with_inference_learning():
    graph = small_cnn(jax.random.key(0))
    labels = jax.nn.one_hot(jnp.arange(BATCH), 10)
    step = pcn.make_train_step(graph, pcn.IL(stop=3, gamma=0.1), optax.sgd(0.05))
    state = step.init(graph)
    losses = []
    for _ in range(3):
        state, info = step(state, {"x": images(), "y": labels})
        losses.append(float(info.loss))
    trained = step.graph(state)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    # the convolution, two edges below the output, has learned too
    assert not np.allclose(trained.edges[0].module.weight, graph.edges[0].module.weight)


def test_a_causal_transformer_block_is_four_edges_two_per_residual_node():
    block = L.TransformerBlock(8, 2, 16, causal=True, key=jax.random.key(1))
    nodes = [pcn.Node("x", (5, 8)), pcn.Node("h", (5, 8)), pcn.Node("y", (5, 8))]
    graph = pcn.PCGraph(nodes, block.edges("x", "h", "y"))
    one_edge_each = pcn.PCGraph(
        nodes,
        [
            pcn.Edge(L.Residual(block.attention), "x", "h"),
            pcn.Edge(L.Residual(block.mlp), "h", "y"),
        ],
    )
    assert [len(graph.incoming(n)) for n in ("h", "y")] == [2, 2]
    x = jnp.asarray(np.random.default_rng(2).normal(size=(BATCH, 5, 8)), jnp.float32)

    @eqx.filter_jit
    def run(graph, one_edge_each, block, x):
        values, single = (
            pcn.forward_init(graph, {"x": x}),
            pcn.forward_init(one_edge_each, {"x": x}),
        )
        energies = graph.energy(values), one_edge_each.energy(single)
        return values, single, energies, x + jax.vmap(block.attention)(x), jax.vmap(block)(x)

    values, single, energies, h_plain, y_plain = run(graph, one_edge_each, block, x)

    np.testing.assert_allclose(values["h"], h_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["y"], y_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single["y"], values["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(energies[0], np.zeros(BATCH))
    np.testing.assert_array_equal(energies[1], np.zeros(BATCH))
