"""Training PC graphs (Algorithm 8) and querying one trained graph for several tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn.pcgraphs import (
    assemblies,
    batch,
    classify,
    complete,
    denoise,
    fully_connected,
    generate,
    generative,
    pc_graph,
    top_k,
    trainer,
    with_lateral,
)

QUERY = {"stop": pcn.Tolerance(1e-5, 2000), "gamma": 0.2}


@pytest.fixture(scope="module")
def trained():
    """A fully connected graph (16 pixels, 4 labels, 12 hidden) trained on 4 patterns."""
    rng = np.random.default_rng(0)
    patterns = jnp.asarray((rng.random((4, 16)) < 0.5).astype(np.float32))
    graph = pc_graph(fully_connected(32, sensory=16, labels=4), key=jax.random.key(0))
    step = trainer(graph, steps=20, gamma=0.2, learning_rate=3e-3)
    state = step.init(graph)
    data = batch(graph, patterns, jnp.arange(4))
    losses = []
    for _ in range(200):
        state, info = step(state, data)
        losses.append(float(info.loss))
    return step.graph(state), patterns, losses


def test_training_a_fully_connected_graph_on_patterns_and_labels_lowers_its_energy(trained):
    _, _, losses = trained
    assert losses[-1] < 0.01 * losses[0]


def test_the_trained_graph_classifies_its_training_patterns_by_conditioning_on_the_pixels(
    trained,
):
    graph, patterns, _ = trained
    result = classify(graph, patterns, **QUERY)
    np.testing.assert_array_equal(result.output, np.arange(4))
    assert bool(result.query.converged)
    by_prediction = classify(graph, patterns, read="prediction", **QUERY)
    np.testing.assert_array_equal(by_prediction.output, np.arange(4))
    with pytest.raises(ValueError, match="`read` must be"):
        classify(graph, patterns, read="mean", **QUERY)


def test_the_same_graph_generates_each_pattern_from_its_label(trained):
    graph, patterns, _ = trained
    result = generate(graph, jnp.arange(4), **QUERY)
    assert np.mean(np.abs(result.output - patterns)) < 0.1


def test_the_same_graph_completes_half_a_pattern_given_its_label(trained):
    graph, patterns, _ = trained
    known = jnp.arange(16) < 8
    result = complete(graph, patterns * known[None], known, labels=jnp.arange(4), **QUERY)
    np.testing.assert_array_equal(result.output[:, :8], patterns[:, :8])
    assert np.mean(np.abs(result.output[:, 8:] - patterns[:, 8:])) < 0.1


def test_the_same_graph_denoises_by_initialisation_lowering_the_error(trained):
    graph, patterns, _ = trained
    noisy = patterns + 0.3 * jax.random.normal(jax.random.key(1), patterns.shape)
    result = denoise(graph, noisy, **QUERY)
    assert np.mean((result.output - patterns) ** 2) < np.mean((noisy - patterns) ** 2)


def test_an_assembly_of_neurons_with_top_k_firing_trains_and_lowers_its_energy():
    topology = assemblies(3, 16, 0.3, 0.3, key=0, names=["sensory", "cluster_2", "cluster_3"])
    f = {name: top_k(0.25, "tanh") for name in topology.groups}
    graph = pc_graph(topology, activation=f, key=jax.random.key(2))
    x = (jax.random.uniform(jax.random.key(3), (4, 16)) < 0.5).astype(jnp.float32)
    step = trainer(graph, steps=10, gamma=0.2, learning_rate=1e-2, weight_decay=1e-4)
    state = step.init(graph)
    losses = []
    for _ in range(40):
        state, info = step(state, batch(graph, x))
        losses.append(float(info.loss))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_completion_by_initialisation_lets_every_pixel_move_and_fills_in_the_missing_half(
    trained,
):
    graph, patterns, _ = trained
    known = jnp.arange(16) < 8
    result = complete(graph, patterns * known[None], known, by="initialisation", **QUERY)
    assert not np.array_equal(result.output[:, :8], patterns[:, :8])
    missing_error = np.mean(np.abs(result.output[:, 8:] - patterns[:, 8:]))
    assert missing_error < np.mean(np.abs(patterns[:, 8:]))


def test_a_generative_graph_with_lateral_connections_trains_and_generates_from_labels():
    topology = with_lateral(generative([16, 12], labels=4))
    graph = pc_graph(topology, key=jax.random.key(4))
    patterns = (jax.random.uniform(jax.random.key(5), (4, 16)) < 0.5).astype(jnp.float32)
    step = trainer(graph, steps=20, gamma=0.2, learning_rate=1e-2)
    state = step.init(graph)
    data = batch(graph, patterns, jnp.arange(4))
    first = None
    for _ in range(100):
        state, info = step(state, data)
        first = float(info.loss) if first is None else first
    assert float(info.loss) < 0.1 * first
    result = generate(step.graph(state), jnp.arange(4), **QUERY)
    assert bool(result.query.converged)
    assert np.mean(np.abs(result.output - patterns)) < 0.25
