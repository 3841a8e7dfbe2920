"""The `Dataset` container every loader returns.

One fixed shape for all datasets (flattened float32 inputs in [0, 1], int64 class
indices) lets models and experiments switch dataset by name without special cases.
Where the files name the classes (Tiny ImageNet's words.txt), `class_names` holds them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of an image classification dataset.

    x_* are float32 arrays of shape (N, features) with values in [0, 1]; an example
    reshapes to `image_shape` (channel-first for colour). y_* are int64 class indices
    in [0, num_classes). `source` says where the data was found, for logs and reports.
    `class_names[k]` describes class k where the dataset's files say (empty otherwise).
    A split may be empty (N = 0): Tiny ImageNet's validation images are all in `x_train`.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...]
    num_classes: int
    source: str
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: class_names must name all {self.num_classes} classes (or be "
                f"empty), got {len(self.class_names)} names"
            )
        features = math.prod(self.image_shape)
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != features:
                raise ValueError(
                    f"{self.name}: x_{split} must be float32 of shape (N, {features}) "
                    f"for image_shape {self.image_shape}, got {x.dtype} {x.shape}"
                )
            if x.size and (x.min() < 0.0 or x.max() > 1.0):
                raise ValueError(f"{self.name}: x_{split} has values outside [0, 1]")
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"{self.name}: y_{split} must be int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {y.shape}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(
                    f"{self.name}: y_{split} has labels outside [0, {self.num_classes})"
                )

    @property
    def num_features(self) -> int:
        """Length of one flattened example."""
        return math.prod(self.image_shape)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, source={self.source!r})"
        )
