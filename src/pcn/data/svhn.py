"""Reader for SVHN (Netzer et al. 2011), cropped digits, from its MATLAB `.mat` files.

`train_32x32.mat` (73,257 images) and `test_32x32.mat` (26,032) each hold `X`, uint8 of
shape (32, 32, 3, N), and `y`, shape (N, 1), with labels 1..10 where 10 is the digit 0.
They are read with `scipy.io.loadmat` (SciPy comes with scikit-learn, of the
`experiments` extra), imported when a file is read. Images come back as the CIFAR
reader's: uint8 channel-first rows (N, 3072); labels as int64 digits 0..9.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._optional import optional_import

__all__ = ["TEST_FILE", "TRAIN_FILE", "find_svhn", "read_svhn", "read_svhn_mat"]

TRAIN_FILE = "train_32x32.mat"
TEST_FILE = "test_32x32.mat"


def find_svhn(directory: Path) -> Path | None:
    """`directory` when it holds both `train_32x32.mat` and `test_32x32.mat`, else None."""
    return directory if all((directory / f).is_file() for f in (TRAIN_FILE, TEST_FILE)) else None


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one SVHN `.mat` file -> (uint8 images (N, 3072) channel-first, int64 digits (N,)).

    Label 10 becomes digit 0. Raises ValueError naming the file when it is not a MATLAB
    file with `X` (32, 32, 3, N) uint8 and `y` of N labels in 1..10.
    """
    path = Path(path)
    sio = optional_import("scipy.io", f"Reading the SVHN file {path}", package="scipy")
    try:
        contents = sio.loadmat(path, variable_names=("X", "y"))
    except NotImplementedError as err:  # scipy's answer to a MATLAB v7.3 (HDF5) file
        raise ValueError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read ({err}); SVHN's "
            "own files are MATLAB v5: download them again from "
            "http://ufldl.stanford.edu/housenumbers/, or save yours with `-v7`."
        ) from err
    except (ValueError, TypeError, OSError, sio.matlab.MatReadError) as err:
        raise ValueError(
            f"{path} is not a readable MATLAB file ({err}); download it again from "
            "http://ufldl.stanford.edu/housenumbers/."
        ) from err
    if "X" not in contents or "y" not in contents:
        raise ValueError(f"{path}: expected the variables X and y, got {sorted(contents)}")
    x, y = np.asarray(contents["X"]), np.asarray(contents["y"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise ValueError(
            f"{path}: expected X uint8 of shape (32, 32, 3, N), got {x.dtype} {x.shape}"
        )
    n = x.shape[3]
    if y.size != n or y.ndim > 2 or not np.issubdtype(y.dtype, np.number):
        raise ValueError(
            f"{path}: expected y of shape ({n}, 1) to match X, got {y.dtype} {y.shape}"
        )
    labels = y.reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise ValueError(
            f"{path}: labels must be 1..10 (10 for the digit 0), got {labels.min()}..{labels.max()}"
        )
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).reshape(n, -1)  # (H,W,C,N)->(N,C,H,W)
    return images, labels % 10


def read_svhn(
    directory: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read `train_32x32.mat` and `test_32x32.mat` in `directory` -> (x_train, y_train,
    x_test, y_test), uint8 images (N, 3072) and int64 digits 0..9."""
    directory = Path(directory)
    return (*read_svhn_mat(directory / TRAIN_FILE), *read_svhn_mat(directory / TEST_FILE))
