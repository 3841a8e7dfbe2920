"""Hetero-associative vectors and keys (thesis section 4.7)."""

import numpy as np
import pytest

from pcn.associative import hetero


def test_keys_give_one_part_and_hide_the_other():
    images = np.arange(12, dtype=np.float32).reshape(2, 6) / 12
    captions = np.array([[0.5, 0.25], [1.0, 0.0]], np.float32)
    vectors = hetero.join(images, captions)
    assert vectors.shape == (2, 8) and vectors.dtype == np.float32
    by_image = hetero.caption_keys(vectors, 6)
    assert by_image.known is not None
    np.testing.assert_array_equal(by_image.known[:, :6], True)
    np.testing.assert_array_equal(by_image.known[:, 6:], False)
    np.testing.assert_array_equal(by_image.image[:, 6:], 0.0)
    by_caption = hetero.image_keys(vectors, 6)
    image, caption = hetero.split(by_caption.image, 6)
    np.testing.assert_array_equal(image, 0.0)
    np.testing.assert_array_equal(caption, captions)


def test_mismatched_parts_are_refused_naming_the_shapes():
    with pytest.raises(ValueError, match=r"one caption per image"):
        hetero.join(np.zeros((2, 6)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"after 8 pixels"):
        hetero.split(np.zeros((2, 8)), 8)
