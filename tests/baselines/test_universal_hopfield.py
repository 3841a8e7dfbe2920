"""Universal and modern Hopfield networks (Millidge et al. 2022, Ramsauer et al. 2020):
the update rule in float64, one-shot retrieval, similarity over a partial key's known
pixels, bad settings."""

import jax
import numpy as np
import pytest

from pcn.associative import keys, scores
from pcn.baselines import universal_hopfield as uh


def stored(n=8, d=40):
    return np.random.default_rng(0).random((n, d))


def test_the_modern_hopfield_update_is_memories_times_softmax_of_beta_dot_products():
    with jax.enable_x64(True):
        m, q = stored(), np.random.default_rng(1).random((3, 40))
        net = uh.modern_hopfield(m, beta=0.7)
        logits = 0.7 * q @ m.T
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        got = net.recall(keys.Key(q, None)).images
        np.testing.assert_allclose(got, weights @ m, rtol=1e-12)


@pytest.mark.parametrize("similarity", uh.SIMILARITIES)
def test_max_separation_returns_the_most_similar_memory_exactly(similarity):
    m = stored()
    if similarity == "dot":  # dot products favour bright images: give them one norm
        m = m / np.linalg.norm(m, axis=1, keepdims=True)
    net = uh.universal_hopfield(m, similarity=similarity, separation="max")
    key = keys.noisy(m, 0.001, seed=2)
    np.testing.assert_allclose(net.recall(key).images, m, rtol=1e-6)


def test_a_partial_key_is_compared_on_its_known_pixels_only_and_keeps_them():
    m = stored()
    key = keys.partial(m, 0.5, seed=3)
    garbage = np.where(key.known, key.image, 5.0)  # the unknown pixels must not matter
    net = uh.universal_hopfield(m, similarity="euclidean", separation="softmax", beta=50.0)
    recall = net.recall(keys.Key(garbage, key.known))
    np.testing.assert_allclose(recall.images[key.known], m[key.known], rtol=1e-6)
    assert scores.score(recall.images, m, threshold=1e-4).retrieved == len(m)


def test_bad_settings_name_the_setting_and_the_choices():
    with pytest.raises(ValueError, match="similarity"):
        uh.universal_hopfield(stored(), similarity="cosine")
    with pytest.raises(ValueError, match="separation"):
        uh.universal_hopfield(stored(), separation="sparsemax")
    with pytest.raises(ValueError, match="beta"):
        uh.modern_hopfield(stored(), beta=0.0)
    with pytest.raises(ValueError, match=r"images of 40 pixels.*\(batch, 40\)"):
        uh.modern_hopfield(stored()).recall(keys.Key(np.zeros((2, 39)), None))
