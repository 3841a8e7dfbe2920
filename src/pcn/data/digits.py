"""The scikit-learn 8x8 digits set with a fixed split: the dataset that needs no files.

It ships inside scikit-learn, so examples, tests and CI runs work offline. The split is
a seeded stratified one so every run of every user trains and tests on the same images.
"""

from __future__ import annotations

import numpy as np

from .._optional import optional_import

__all__ = ["DIGITS_SPLIT_SEED", "DIGITS_TEST_SIZE", "read_digits"]

DIGITS_TEST_SIZE = 360  # of 1,797 images: 1,437 train / 360 test
DIGITS_SPLIT_SEED = 0


def read_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test): float32 pixels/16 in [0, 1], int64 labels."""
    # lazy: scikit-learn is slow to import and is not a library dependency
    datasets = optional_import("sklearn.datasets", "The digits dataset", package="scikit-learn")
    model_selection = optional_import(
        "sklearn.model_selection", "The digits dataset", package="scikit-learn"
    )
    train_test_split = model_selection.train_test_split

    bunch = datasets.load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_SIZE, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    return x_train, y_train, x_test, y_test
