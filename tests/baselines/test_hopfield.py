"""The Hopfield network classifier (Hebb's rule, synchronous sign updates)."""

import jax.numpy as jnp
import numpy as np
import pytest

from pcn.associative import keys
from pcn.baselines import hopfield


def _noisy_prototypes(n: int, seed: int, flip: float = 0.1):
    """Images `(n, 16)` in {0, 1}: one of 4 random binary prototypes with `flip` of the
    pixels flipped, and their classes."""
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 16)) < 0.5).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    flips = rng.random((n, 16)) < flip
    return np.abs(prototypes[y] - flips).astype(np.float32), y


def test_hebbian_weights_are_the_mean_outer_product_with_a_zero_diagonal():
    x, y = _noisy_prototypes(30, seed=1)
    net = hopfield.hopfield(16, 4)
    for i in range(0, 30, 10):
        net = hopfield.train_step(net, jnp.asarray(x[i : i + 10]), jnp.asarray(y[i : i + 10]))
    s = np.concatenate([2 * (x > 0.5) - 1, 2 * np.eye(4)[y] - 1], axis=1)
    expected = s.T @ s / 30 * (1 - np.eye(20))
    np.testing.assert_allclose(net.weight, expected, atol=1e-6)


def test_a_hopfield_network_classifies_noisy_prototypes_far_above_chance():
    x, y = _noisy_prototypes(200, seed=2)
    net = hopfield.train_step(hopfield.hopfield(16, 4), jnp.asarray(x), jnp.asarray(y))
    x_test, y_test = _noisy_prototypes(200, seed=3)
    result = hopfield.classify(net, jnp.asarray(x_test))
    assert np.mean(np.asarray(result.output) == y_test) > 0.9
    assert np.asarray(result.converged).all() and np.asarray(result.steps).max() < 100


def test_bad_shapes_and_settings_are_refused_with_clear_errors():
    net = hopfield.hopfield(16, 4)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 16\)"):
        hopfield.classify(net, jnp.ones((3, 15)))
    with pytest.raises(ValueError, match="one class index per image"):
        hopfield.train_step(net, jnp.ones((3, 16)), jnp.zeros((2,), int))
    with pytest.raises(ValueError, match="max_steps"):
        hopfield.classify(net, jnp.ones((3, 16)), max_steps=0)
    with pytest.raises(ValueError, match="labels"):
        hopfield.hopfield(16, 1)


def test_as_a_memory_hebbs_rule_is_symmetric_with_a_zero_diagonal_and_stores_few_patterns():
    patterns = (np.random.default_rng(3).random((3, 100)) < 0.5).astype(np.float32)
    memory = hopfield.hopfield_memory(patterns)
    w = np.asarray(memory.weight)
    s = 2 * patterns - 1
    np.testing.assert_allclose(w, (s.T @ s / 3) * (1 - np.eye(100)), rtol=1e-6)
    flipped = patterns.copy()
    flipped[:, :8] = 1 - flipped[:, :8]  # 8% of the bits wrong
    recall = memory.recall(keys.Key(flipped, None))
    np.testing.assert_array_equal(recall.images, patterns)
    assert np.all(recall.steps >= 1)


def test_as_a_memory_the_known_pixels_of_a_partial_key_stay_clamped():
    patterns = (np.random.default_rng(4).random((2, 64)) < 0.5).astype(np.float32)
    memory = hopfield.hopfield_memory(patterns)
    key = keys.partial(patterns, 0.5, seed=1)
    recall = memory.recall(key)
    np.testing.assert_array_equal(recall.images[key.known], patterns[key.known])
    with pytest.raises(ValueError, match=r"images of 64 pixels"):
        memory.recall(keys.Key(patterns[:, :10], None))
