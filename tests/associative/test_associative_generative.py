"""The hierarchical generative PC memory (thesis sections 4.3-4.4): F of Fig. 4.4,
Algorithm 7, and memorisation by IL."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.associative import generative, keys, scores


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    x = rng.random((3, 24)).astype(np.float32)
    memory = generative.generative_memory(
        24, (4, 32), key=jax.random.key(0), value_optimizer=optax.sgd(0.05, momentum=0.9),
        stop=pcn.Tolerance(1e-7, 3000),
    )  # fmt: skip
    step = generative.train_step(memory, steps=50, gamma=0.05, optimizer=optax.adam(1e-3))
    state = step.init(memory.graph)
    first = None
    for _ in range(1500):
        state, info = step(state, generative.batch(x))
        first = float(info.loss) if first is None else first
    return generative.with_graph(memory, step.graph(state)), x, first, float(info.loss)


def test_memorising_lowers_the_energy_of_the_stored_images_by_orders_of_magnitude(trained):
    _, _, first, last = trained
    assert last < 1e-2 * first  # (3.2 -> 0.003 when written)


def test_f_is_the_sensory_prediction_after_relaxing_with_the_image_fixed(trained):
    memory, x, _, _ = trained
    noisy = keys.noisy(x, 0.05, seed=1).image
    values = pcn.forward_init(memory.graph, {"x": jnp.asarray(noisy)})
    relaxed = pcn.infer(memory.graph, values, clamp={"x": True}, stop=memory.stop,
                        value_optimizer=memory.value_optimizer)  # fmt: skip
    by_hand = memory.graph.predict(relaxed.values, "x")
    mapped, _ = memory.apply_f(jnp.asarray(noisy))
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(by_hand), rtol=1e-6, atol=1e-6)


def test_iterating_f_on_noisy_keys_moves_them_to_the_stored_images(trained):
    memory, x, _, _ = trained
    key = keys.noisy(x, 0.05, seed=2)
    path = memory.trajectory(key, 5)
    assert path.shape == (5, 3, 24)
    errors = [float(np.mean(scores.recall_mse(step, x))) for step in path]
    # (when written: 0.050 for the keys, then 0.011, 0.0075, 0.0071, 0.0070, 0.0070)
    assert errors[-1] < 0.2 * float(np.mean(scores.recall_mse(key.image, x)))
    assert errors[-1] < errors[0]
    np.testing.assert_allclose(memory.recall(key).images, path[0], rtol=1e-6)  # iterations=1


def test_a_partial_key_is_completed_by_algorithm_7_keeping_the_known_pixels(trained):
    memory, x, _, _ = trained
    key = keys.partial(x, 0.5, seed=3)
    recall = memory.recall(key)
    np.testing.assert_array_equal(recall.images[key.known], x[key.known])
    assert scores.score(recall.images, x, threshold=1e-3).retrieved == 3


def test_bad_keys_and_shapes_are_refused_naming_the_fix(trained):
    memory, x, _, _ = trained
    with pytest.raises(ValueError, match=r"images of 24 pixels.*\(batch, 24\)"):
        memory.recall(keys.Key(x[:, :20], None))
    with pytest.raises(ValueError, match="at least one hidden layer"):
        generative.generative_memory(24, (), key=jax.random.key(0))
