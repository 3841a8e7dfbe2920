"""Scores: hit counts at a threshold, the UHN criterion, strict retrievals."""

import numpy as np
import pytest

from pcn.associative import scores


def test_an_image_counts_as_retrieved_below_the_threshold_and_the_uhn_criterion_is_60_per_784():
    originals = np.zeros((4, 784))
    retrieved = originals.copy()
    retrieved[1] += np.sqrt(0.004)  # MSE 0.004: a hit at 0.005, not at 0.001
    retrieved[2] += np.sqrt(0.999 * 60 / 784)  # just inside the UHN bound
    retrieved[3] += 0.5
    result = scores.score(retrieved, originals, threshold=0.005)
    assert (result.retrieved, result.uhn_retrieved) == (2, 3)
    assert result.fraction == 0.5
    np.testing.assert_allclose(result.mse, (0.004 + 0.999 * 60 / 784 + 0.25) / 4)
    assert scores.score(retrieved, originals, threshold=0.001).retrieved == 1


def test_strict_retrievals_count_answers_that_are_some_stored_image():
    rng = np.random.default_rng(0)
    stored = rng.random((5, 30))
    answers = np.concatenate([stored[[3, 1]], rng.random((2, 30))])
    assert scores.strict_retrievals(answers, stored, threshold=0.005) == 0.5


def test_a_non_positive_threshold_or_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="`threshold`.*0.005 for noisy keys"):
        scores.score(np.zeros((2, 3)), np.zeros((2, 3)), threshold=0)
    with pytest.raises(ValueError, match="same shape"):
        scores.score(np.zeros((2, 3)), np.zeros((3, 3)), threshold=0.1)
