"""The BP autoencoder baseline: shape, training that lowers the loss, denoising, completion."""

import jax
import numpy as np
import pytest

from pcn.associative import keys
from pcn.baselines import autoencoder


def _patterns(n: int, seed: int) -> np.ndarray:
    """Images in [0, 1] of 20 pixels spanned by 3 smooth prototypes."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 20)
    protos = np.stack([t, 1 - t, 0.5 + 0.4 * np.sin(6 * t)])
    weights = rng.dirichlet(np.ones(3), n)
    return (weights @ protos).astype(np.float32)


def test_mirrored_shape_and_names():
    graph = autoencoder.autoencoder(20, (16, 8), key=jax.random.key(0))
    assert [n.shape[0] for n in graph.nodes] == [20, 16, 8, 16, 20]
    assert graph.names[0] == "x" and graph.names[-1] == "y"
    with pytest.raises(ValueError, match="hidden"):
        autoencoder.autoencoder(20, (), key=jax.random.key(0))


def test_training_lowers_the_loss_and_the_net_denoises_and_completes():
    x = _patterns(512, 0)
    graph = autoencoder.autoencoder(20, (16, 8), key=jax.random.key(0))
    trained, losses = autoencoder.train(graph, x, epochs=30, batch_size=32, learning_rate=3e-3)
    assert losses[-1] < 0.25 * losses[0]
    test = _patterns(64, 1)
    noisy = test + 0.1 * np.random.default_rng(2).standard_normal(test.shape)
    assert np.mean((autoencoder.reconstruct(trained, noisy) - test) ** 2) < np.mean(
        (noisy - test) ** 2
    )
    known = np.arange(20) < 12
    filled = autoencoder.complete(trained, test, known)
    np.testing.assert_array_equal(filled[:, known], test[:, known])
    zero_filled = np.where(known, test, 0.0)
    assert np.mean((filled - test) ** 2) < 0.5 * np.mean((zero_filled - test) ** 2)


def test_bad_training_input_is_named():
    graph = autoencoder.autoencoder(20, (8,), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"\(batch, 20\)"):
        autoencoder.train(graph, np.zeros((4, 10)), epochs=1, batch_size=2, learning_rate=1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        autoencoder.train(
            graph, np.zeros((4, 20)), epochs=1, batch_size=2, learning_rate=1e-3, weight_decay=-1
        )


def test_iterated_as_a_memory_it_applies_the_net_each_time_and_puts_the_known_pixels_back():
    x = _patterns(8, 3)
    graph = autoencoder.autoencoder(20, (16, 8), key=jax.random.key(1))
    key = keys.partial(x, 0.5, seed=0)
    by_hand = key.image
    for _ in range(3):
        by_hand = np.where(key.known, key.image, autoencoder.reconstruct(graph, by_hand))
    recall = autoencoder.autoencoder_memory(graph, iterations=3).recall(key)
    np.testing.assert_allclose(recall.images, by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(recall.images[key.known], x[key.known])
    noisy = keys.noisy(x, 0.1)
    once = autoencoder.autoencoder_memory(graph).recall(noisy).images
    np.testing.assert_allclose(once, autoencoder.reconstruct(graph, noisy.image), rtol=1e-5)
