"""The linear recurrent PC memory (thesis section 4.2): Eq. 4.1, stored images as fixed
points, retrieval from partial and noisy keys, no strict retrieval, bad keys."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.associative import keys, linear, scores


@pytest.fixture(scope="module")
def stored():
    rng = np.random.default_rng(0)
    x = rng.random((3, 16)).astype(np.float32)
    memory = linear.linear_memory(16, key=jax.random.key(0), value_optimizer=optax.adam(0.05))
    memory, info = linear.memorise(
        memory, x, optimizer=optax.adam(1e-2), stop=pcn.Tolerance(1e-9, 4000)
    )
    return memory, x, info


def test_a_memorisation_step_is_eq_4_1_and_keeps_the_diagonal_at_zero():
    with jax.enable_x64(True):
        x = np.random.default_rng(1).random((4, 6))
        memory = linear.linear_memory(6, key=jax.random.key(0))
        weight = memory.graph.edges[0].module.weight
        assert weight.dtype == jnp.float64
        once, info = linear.memorise(
            memory, x, optimizer=optax.sgd(0.5), stop=pcn.Tolerance(0.0, 1)
        )
        assert info.steps == 1
        # from W = 0, b = 0: eps = x, so dW = alpha <eps x^T> off the diagonal, db = alpha <eps>
        expected = 0.5 * (x.T @ x) / len(x) * (1 - np.eye(6))
        block = once.graph.edges[0].module
        got = np.where(np.asarray(block.mask), np.asarray(block.weight), 0.0)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(block.bias), 0.5 * x.mean(axis=0), rtol=1e-12)


def test_memorising_stops_when_the_energy_settles_and_makes_the_images_fixed_points(stored):
    memory, x, info = stored
    trace = info.energy[: info.steps]
    assert info.steps < 4000 and np.all(np.isnan(info.energy[info.steps :]))
    assert trace[-1] < 1e-3 * trace[0]
    np.testing.assert_allclose(np.asarray(memory.predict(jnp.asarray(x))), x, atol=0.02)


def test_a_partial_key_is_completed_by_relaxing_the_unknown_pixels(stored):
    memory, x, _ = stored
    key = keys.partial(x, 0.5, seed=4)
    recall = memory.recall(key)
    np.testing.assert_array_equal(recall.images[key.known], x[key.known])  # kept clamped
    assert scores.score(recall.images, x, threshold=1e-3).retrieved == 3
    assert np.all(recall.steps > 1)


def test_a_noisy_key_is_cleaned_by_one_prediction_and_random_keys_give_no_stored_image(stored):
    memory, x, _ = stored
    key = keys.noisy(x, 0.01, seed=5)
    cleaned = scores.recall_mse(memory.recall(key).images, x)
    assert np.all(cleaned < scores.recall_mse(key.image, x))
    random = memory.recall(keys.random_keys(20, 16, seed=6)).images
    assert scores.strict_retrievals(random, x, threshold=0.005) == 0.0


def test_a_key_or_images_of_the_wrong_size_are_refused_naming_both_shapes(stored):
    memory, x, _ = stored
    with pytest.raises(ValueError, match=r"images of 16 pixels.*\(batch, 16\), got \(3, 15\)"):
        memory.recall(keys.Key(x[:, :15], None))
    with pytest.raises(ValueError, match=r"images of 16 pixels.*\(N, 16\)"):
        linear.memorise(memory, x[:, :8])
