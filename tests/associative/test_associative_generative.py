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


def _f64(tree):
    return jax.tree.map(
        lambda a: a.astype(jnp.float64) if isinstance(a, jax.Array) and a.dtype == jnp.float32
        else a, tree,
    )  # fmt: skip


def test_f_on_the_reduced_sensory_layer_is_the_plain_relaxation_in_float64():
    # F relaxes the hidden values against Q^T (x - b) and R (W = QR) instead of the
    # d-wide sensory layer: the same gradients, so the same iterate to rounding
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).random((5, 60)))
        memory = generative.generative_memory(
            60, (4, 16), key=jax.random.key(0), value_optimizer=optax.adam(0.01),
            stop=pcn.Tolerance(1e-9, 300),
        )  # fmt: skip
        memory = _f64(memory)
        assert generative._reducible(memory.graph)
        fast, steps = memory.apply_f(x)
        plain = generative._relax(memory, x, True)
        by_hand = generative._sensory_prediction(memory.graph, plain.values)
        assert fast.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(fast), np.asarray(by_hand), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(steps), np.asarray(plain.example_steps))


def test_marginal_completion_reaches_algorithm_7s_answer_in_float64():
    # a linear memory (a convex energy in the values: one minimum) and keys that know the
    # same 12 of 30 entries: Algorithm 7 and the marginal relaxation end at one answer
    with jax.enable_x64(True):
        x = np.random.default_rng(2).random((4, 30))
        known = np.zeros((4, 30), bool)
        known[:, :12] = True
        key = keys.Key(np.where(known, x, 0.0), known)
        settings = dict(activation="identity", value_optimizer=optax.sgd(0.1, momentum=0.9),
                        stop=pcn.Tolerance(1e-14, 20000), key=jax.random.key(3))  # fmt: skip
        relax = _f64(generative.generative_memory(30, (3, 8), **settings))
        marginal = _f64(generative.generative_memory(30, (3, 8), completion="marginal", **settings))
        by_algorithm_7, by_marginal = relax.recall(key), marginal.recall(key)
        assert by_marginal.images.dtype == np.float64
        np.testing.assert_array_equal(by_marginal.images[known], x[known])
        np.testing.assert_allclose(by_marginal.images, by_algorithm_7.images, atol=1e-6)
        assert np.all(by_marginal.steps < 20000) and np.all(by_algorithm_7.steps < 20000)


def test_marginal_completion_refuses_keys_with_different_masks_and_unknown_modes():
    x = np.random.default_rng(3).random((2, 30)).astype(np.float32)
    memory = generative.generative_memory(30, (3, 8), completion="marginal",
                                          key=jax.random.key(0))  # fmt: skip
    with pytest.raises(ValueError, match='same entries.*completion="relax"'):
        memory.recall(keys.partial(x, 0.5, seed=0))  # each key its own random pixels
    choices = "Unknown `completion` 'fast'; valid values are: 'relax', 'marginal'"
    with pytest.raises(ValueError, match=choices):
        generative.generative_memory(30, (3, 8), completion="fast", key=jax.random.key(0))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stored_by_algorithm_6():
    x = np.random.default_rng(4).random((6, 48)).astype(np.float32)
    memory = generative.generative_memory(
        48, (4, 32), key=jax.random.key(1), value_optimizer=optax.adam(0.02),
        stop=pcn.Tolerance(1e-7, 1000),
    )  # fmt: skip
    memory, storing = generative.memorise(memory, x, stop=pcn.Tolerance(1e-7, 1500))
    return memory, storing, x


def test_algorithm_6_stores_images_as_attractors_of_f_and_completes_them(stored_by_algorithm_6):
    memory, storing, x = stored_by_algorithm_6
    start = generative.start_storing(memory, x)
    assert 0 < int(storing.steps) <= 1500
    # each image keeps its own code: the energy falls by orders of magnitude
    first = generative.store_more(generative.start_storing(memory, x), x, steps=1)
    assert float(storing.energy) < 1e-3 * float(first.energy)  # (when written: 2.4 -> 1e-4)
    assert start.values["z"].shape == (6, 4)
    half = memory.recall(keys.partial(x, 0.5, seed=5))
    assert scores.score(half.images, x, threshold=1e-3).retrieved == 6
    noisy = keys.noisy(x, 0.02, seed=6)
    path = memory.trajectory(noisy, 3)
    before = float(np.mean(scores.recall_mse(noisy.image, x)))
    assert float(np.mean(scores.recall_mse(path[-1], x))) < 0.3 * before


def test_storing_in_chunks_is_storing_at_once():
    # what lets a long storage resume from a checkpoint: the state carries everything
    x = np.random.default_rng(7).random((4, 20)).astype(np.float32)
    memory = generative.generative_memory(20, (3, 8), key=jax.random.key(2))
    once = generative.store_more(generative.start_storing(memory, x), x, steps=30, tol=0.0)
    chunked = generative.start_storing(memory, x)
    for _ in range(3):
        chunked = generative.store_more(chunked, x, steps=10, tol=0.0)
    assert int(once.steps) == int(chunked.steps) == 30
    for a, b in zip(jax.tree.leaves(once), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_storing_stops_at_its_tolerance_and_then_takes_no_more_steps():
    x = np.random.default_rng(8).random((4, 20)).astype(np.float32)
    memory = generative.generative_memory(20, (3, 8), key=jax.random.key(3))
    storing = generative.store_more(generative.start_storing(memory, x), x, steps=5000, tol=1e-3)
    assert int(storing.steps) < 5000 and storing.converged(1e-3)
    again = generative.store_more(storing, x, steps=100, tol=1e-3)
    assert int(again.steps) == int(storing.steps)


def test_storing_refuses_other_images_and_bad_settings_naming_the_fix():
    x = np.random.default_rng(9).random((4, 20)).astype(np.float32)
    memory = generative.generative_memory(20, (3, 8), key=jax.random.key(3))
    storing = generative.start_storing(memory, x)
    with pytest.raises(ValueError, match=r"started on images of shape \(4, 20\)"):
        generative.store_more(storing, x[:3], steps=1)
    with pytest.raises(ValueError, match=r"images of 20 pixels.*\(N, 20\)"):
        generative.start_storing(memory, x[:, :10])
    with pytest.raises(ValueError, match="steps"):
        generative.store_more(storing, x, steps=0)
    with pytest.raises(pcn.NonFiniteDataError):
        generative.store_more(storing, np.full_like(x, np.nan), steps=1)
    with pytest.raises(FloatingPointError, match="weight_optimizer"):
        diverging = generative.start_storing(memory, x * 1e30, weight_optimizer=optax.sgd(1e10))
        generative.store_more(diverging, x * 1e30, steps=50)
    with pytest.raises(TypeError, match="Tolerance"):
        generative.memorise(memory, x, stop=10)  # type: ignore[arg-type]
