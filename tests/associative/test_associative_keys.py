"""Keys: the share of pixels a partial key gives, the noise of a noisy key, bad settings."""

import numpy as np
import pytest

from pcn.associative import keys


def images(n=6, d=48):
    return np.random.default_rng(0).random((n, d)).astype(np.float32)


@pytest.mark.parametrize("fraction", [1 / 2, 1 / 4, 1 / 8])
def test_a_partial_key_gives_that_share_of_pixels_and_zeros_elsewhere(fraction):
    x = images()
    key = keys.partial(x, fraction, seed=3)
    assert key.known is not None
    np.testing.assert_array_equal(key.known.sum(axis=1), round(fraction * 48))
    np.testing.assert_array_equal(key.image[key.known], x[key.known])
    assert np.all(key.image[~key.known] == 0)
    assert len({tuple(row) for row in key.known}) > 1  # each image its own pixels


def test_with_an_image_shape_the_channels_of_a_position_are_given_together():
    x = images(d=3 * 4 * 4)
    key = keys.partial(x, 0.25, image_shape=(3, 4, 4))  # channel-first, as pcn.data loads
    planes = key.known.reshape(6, 3, 16)
    assert np.all(planes.all(axis=1) == planes.any(axis=1))
    np.testing.assert_array_equal(planes[:, 0].sum(axis=1), 4)
    top = keys.partial(x, 0.5, image_shape=(3, 4, 4), layout="top").known.reshape(6, 3, 4, 4)
    assert top[:, :, :2].all() and not top[:, :, 2:].any()  # the top two rows of each channel


def test_a_noisy_key_adds_noise_of_the_given_variance_to_every_pixel():
    x = np.zeros((200, 500), np.float32)
    key = keys.noisy(x, 0.2, seed=1)
    assert key.known is None
    assert abs(float(np.var(key.image)) - 0.2) < 0.005
    assert abs(float(np.mean(key.image))) < 0.005


def test_random_keys_are_uniform_noise_of_the_asked_size():
    key = keys.random_keys(5, 30, seed=2)
    assert key.image.shape == (5, 30) and key.known is None
    assert 0 <= key.image.min() and key.image.max() < 1


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_a_fraction_outside_zero_one_is_refused_naming_it(fraction):
    with pytest.raises(ValueError, match=r"`fraction`.*\(0, 1\]"):
        keys.partial(images(), fraction)


def test_bad_images_shapes_and_settings_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="flatten"):
        keys.noisy(np.zeros((2, 3, 4), np.float32), 0.2)
    with pytest.raises(ValueError, match="variance"):
        keys.noisy(images(), 0.0)
    with pytest.raises(ValueError, match=r"`image_shape` \(4, 4, 4\) holds 64 pixels.*48"):
        keys.partial(images(), 0.5, image_shape=(4, 4, 4))
    with pytest.raises(ValueError, match="`layout`"):
        keys.partial(images(), 0.5, layout="checkerboard")
