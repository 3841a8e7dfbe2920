"""SVHN from tiny `.mat` files written here: the (32, 32, 3, N) layout to channel-first
rows, label 10 to digit 0, registry lookup and downloads, errors naming the file."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os

import numpy as np
import pytest

import pcn.data.download as download_module
import pcn.data.registry as registry
from pcn.data import ChecksumError, load, read_svhn
from pcn.data.svhn import read_svhn_mat

sio = pytest.importorskip("scipy.io", reason="scipy (of the `experiments` extra) reads .mat")


def _write_mat(path, n, *, seed, labels=None):
    """An SVHN-format file: X uint8 (32, 32, 3, n), y uint8 (n, 1) in 1..10."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = np.array(labels if labels is not None else rng.integers(1, 11, n), np.uint8)[:, None]
    sio.savemat(path, {"X": x, "y": y})
    return x, y


def test_pixels_become_channel_first_rows_and_label_10_becomes_0(tmp_path):
    x, _ = _write_mat(tmp_path / "train_32x32.mat", 4, seed=0, labels=[10, 1, 9, 10])
    images, digits = read_svhn_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (4, 3072) and images.dtype == np.uint8
    assert digits.dtype == np.int64 and digits.tolist() == [0, 1, 9, 0]
    planes = images.reshape(4, 3, 32, 32)
    for n, c, h, w in [(0, 0, 0, 0), (1, 2, 5, 31), (3, 1, 31, 7)]:
        assert planes[n, c, h, w] == x[h, w, c, n]


def test_svhn_loads_by_name_from_data_dir_as_unit_floats(tmp_path):
    x_train, y_train = _write_mat(tmp_path / "train_32x32.mat", 5, seed=1)
    x_test, _ = _write_mat(tmp_path / "test_32x32.mat", 2, seed=2, labels=[3, 10])
    ds = load("svhn", data_dir=tmp_path, download=False)
    assert ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    assert ds.x_train.shape == (5, 3072) and ds.x_train.dtype == np.float32
    expected = x_train.transpose(3, 2, 0, 1).reshape(5, -1) / np.float32(255)
    np.testing.assert_array_equal(ds.x_train, expected.astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, y_train[:, 0] % 10)
    assert ds.y_test.tolist() == [3, 0] and ds.x_test.shape == (2, 3072)
    np.testing.assert_array_equal(
        read_svhn(tmp_path)[2], x_test.transpose(3, 2, 0, 1).reshape(2, -1)
    )


def test_a_folder_missing_the_test_file_is_skipped_and_the_error_names_both_files(tmp_path):
    _write_mat(tmp_path / "train_32x32.mat", 2, seed=0)
    with pytest.raises(FileNotFoundError) as info:
        load("svhn", data_dir=tmp_path, download=False)
    text = str(info.value)
    assert "train_32x32.mat and test_32x32.mat" in text
    assert "http://ufldl.stanford.edu/housenumbers/test_32x32.mat" in text


def test_a_wrongly_shaped_x_is_an_error_naming_the_file(tmp_path):
    sio.savemat(
        tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": [[1], [2]]}
    )
    with pytest.raises(
        ValueError, match=r"train_32x32\.mat: expected X uint8 of shape \(32, 32, 3, N\)"
    ):
        read_svhn_mat(tmp_path / "train_32x32.mat")


def test_labels_outside_1_to_10_are_an_error_naming_the_file(tmp_path):
    _write_mat(tmp_path / "test_32x32.mat", 2, seed=0, labels=[0, 4])
    with pytest.raises(ValueError, match=r"test_32x32\.mat: labels must be 1\.\.10"):
        read_svhn_mat(tmp_path / "test_32x32.mat")


def test_a_file_that_is_not_matlab_is_an_error_saying_to_download_it_again(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"<html>404 not found</html>" * 8)
    with pytest.raises(ValueError, match=r"train_32x32\.mat is not a readable MATLAB file.*ufldl"):
        read_svhn_mat(tmp_path / "train_32x32.mat")


def test_a_matlab_v73_file_is_an_error_naming_the_version_and_the_fix(tmp_path):
    # the 128-byte header of a MATLAB v7.3 (HDF5) file: text, subsystem offset, 0x0200, IM
    header = b"MATLAB 7.3 MAT-file".ljust(116, b" ") + bytes(8) + b"\x00\x02IM"
    (tmp_path / "train_32x32.mat").write_bytes(header + bytes(512))
    with pytest.raises(ValueError, match=r"train_32x32\.mat is a MATLAB v7\.3.*-v7"):
        read_svhn_mat(tmp_path / "train_32x32.mat")


def test_a_download_with_the_wrong_md5_keeps_no_file_and_names_the_published_one(
    isolated_lookup, monkeypatch
):
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout=None: io.BytesIO(b"x"))
    with pytest.raises(ChecksumError, match=r"train_32x32\.mat.*e26dedcc434d2e4c54c9b2d4a06d8373"):
        load("svhn")
    assert os.listdir(isolated_lookup / "pcn" / "svhn") == []


def test_verified_downloads_of_both_files_are_read_from_the_cache(
    tmp_path, isolated_lookup, monkeypatch
):
    _write_mat(tmp_path / "train_32x32.mat", 3, seed=0)
    _write_mat(tmp_path / "test_32x32.mat", 1, seed=1)
    files = {p.name: p.read_bytes() for p in tmp_path.glob("*.mat")}
    spec = registry._SPECS["svhn"]
    assert [r.md5 for r in spec.remotes] == [
        "e26dedcc434d2e4c54c9b2d4a06d8373",
        "eb5a983be6a315427106f1b164d9cef3",
    ]
    remotes = tuple(
        dataclasses.replace(r, md5=hashlib.md5(files[r.filename]).hexdigest()) for r in spec.remotes
    )
    monkeypatch.setitem(registry._SPECS, "svhn", dataclasses.replace(spec, remotes=remotes))
    requested = []

    def serve(url, timeout=None):
        requested.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download_module, "urlopen", serve)
    ds = load("svhn")
    assert requested == [
        "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
        "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
    ]
    assert sorted(os.listdir(isolated_lookup / "pcn" / "svhn")) == sorted(files)
    assert ds.x_train.shape == (3, 3072) and ds.x_test.shape == (1, 3072)


def test_missing_scipy_names_the_file_and_the_install(tmp_path, hide_package):
    _write_mat(tmp_path / "train_32x32.mat", 1, seed=0)
    hide_package("scipy")
    with pytest.raises(
        ImportError, match=r"train_32x32\.mat needs the package 'scipy'.*pip install scipy"
    ):
        read_svhn_mat(tmp_path / "train_32x32.mat")
