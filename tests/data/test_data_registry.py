"""Dataset registry: names, the embedded digits set, lookup order, errors, downloads."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import pcn.data.download as download_module
import pcn.data.registry as registry
from pcn.data import ChecksumError, Dataset, DatasetNotFoundError, list_datasets, load

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SHARED_MNIST = Path("/work/shared/datasets/mnist")


def test_every_documented_dataset_name_is_listed():
    assert list_datasets() == sorted(
        [
            "digits",
            "mnist",
            "fashion-mnist",
            "kmnist",
            "cifar10",
            "cifar10-png",
            "svhn",
            "tiny-imagenet-val",
        ]  # fmt: skip
    )


def test_an_unknown_name_raises_a_value_error_naming_the_setting_and_valid_names():
    with pytest.raises(ValueError, match=r"`dataset`.*cifar10, cifar10-png, digits"):
        load("imagenet")


def test_digits_loads_offline_with_a_fixed_stratified_1437_360_split():
    ds = load("digits", download=False)
    assert isinstance(ds, Dataset)
    assert ds.x_train.shape == (1437, 64) and ds.x_test.shape == (360, 64)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.image_shape == (8, 8) and ds.num_classes == 10
    assert set(np.bincount(ds.y_test).tolist()) <= {35, 36, 37}
    again = load("digits")
    np.testing.assert_array_equal(again.y_train, ds.y_train)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_names_are_matched_case_insensitively_with_underscores_as_hyphens(tmp_path, mnist_like):
    mnist_like(tmp_path, 2, 1)
    assert load("Fashion_MNIST", data_dir=tmp_path, download=False).name == "fashion-mnist"


def test_an_idx_dataset_is_scaled_to_unit_floats_and_flattened(tmp_path, mnist_like):
    mnist_like(tmp_path, 12, 4)
    ds = load("mnist", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (4, 784)
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.y_train.tolist() == [i % 10 for i in range(12)]
    assert ds.image_shape == (28, 28)


def _make_sources(tmp_path, mnist_like, cache):
    """Three complete copies told apart by their training-set size."""
    mnist_like(tmp_path / "explicit", 3, 1)
    mnist_like(tmp_path / "env" / "kmnist", 4, 1)
    mnist_like(cache / "pcn" / "kmnist", 5, 1)


def test_explicit_data_dir_beats_pcn_data_which_beats_the_cache(
    tmp_path, mnist_like, isolated_lookup, monkeypatch
):
    _make_sources(tmp_path, mnist_like, isolated_lookup)
    monkeypatch.setenv("PCN_DATA", str(tmp_path / "env"))
    assert len(load("kmnist", data_dir=tmp_path / "explicit", download=False).y_train) == 3
    assert len(load("kmnist", download=False).y_train) == 4
    monkeypatch.delenv("PCN_DATA")
    ds = load("kmnist", download=False)
    assert len(ds.y_train) == 5
    assert ds.source == str(isolated_lookup / "pcn" / "kmnist")


def test_data_dir_may_hold_the_files_in_a_subfolder_named_after_the_dataset(tmp_path, mnist_like):
    mnist_like(tmp_path / "kmnist", 2, 1)
    assert load("kmnist", data_dir=tmp_path, download=False).source == str(tmp_path / "kmnist")


def test_pcn_data_subfolder_is_checked_before_pcn_data_itself(tmp_path, mnist_like, monkeypatch):
    mnist_like(tmp_path, 2, 1)
    mnist_like(tmp_path / "mnist", 6, 1)
    monkeypatch.setenv("PCN_DATA", str(tmp_path))
    assert len(load("mnist", download=False).y_train) == 6


def test_a_system_location_is_used_after_pcn_data_and_before_the_cache(
    tmp_path, mnist_like, isolated_lookup, monkeypatch
):
    mnist_like(tmp_path / "system", 7, 1)
    mnist_like(isolated_lookup / "pcn" / "fashion-mnist", 5, 1)
    monkeypatch.setitem(registry.SYSTEM_DIRS, "fashion-mnist", (str(tmp_path / "system"),))
    assert len(load("fashion-mnist", download=False).y_train) == 7
    mnist_like(tmp_path / "env", 4, 1)
    monkeypatch.setenv("PCN_DATA", str(tmp_path / "env"))
    assert len(load("fashion-mnist", download=False).y_train) == 4


def test_a_location_missing_one_required_file_is_skipped(tmp_path, mnist_like, isolated_lookup):
    mnist_like(tmp_path / "partial", 3, 1)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    mnist_like(isolated_lookup / "pcn" / "mnist", 5, 1)
    assert len(load("mnist", data_dir=tmp_path / "partial", download=False).y_train) == 5


def test_uncompressed_idx_files_are_accepted_too(tmp_path, mnist_like):
    mnist_like(tmp_path, 3, 2)
    for gz in tmp_path.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert load("mnist", data_dir=tmp_path, download=False).x_test.shape == (2, 784)


def test_the_not_found_error_lists_every_location_in_order_and_the_fixes(
    tmp_path, isolated_lookup, monkeypatch
):
    monkeypatch.setitem(registry.SYSTEM_DIRS, "fashion-mnist", (str(tmp_path / "sys"),))
    with pytest.raises(DatasetNotFoundError) as info:
        load("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    text = str(err)
    cache = isolated_lookup / "pcn" / "fashion-mnist"
    ordered = [
        f"1. {tmp_path / 'mine'} (data_dir argument)",
        f"2. {tmp_path / 'mine' / 'fashion-mnist'} (data_dir argument, <name>/ subfolder)",
        "3. PCN_DATA environment variable: skipped",
        f"4. {tmp_path / 'sys'} (system location)",
        f"5. {cache} (user cache)",
        f"6. download into {cache}: not attempted (download=False)",
    ]
    positions = [text.index(line) for line in ordered]
    assert positions == sorted(positions)
    for fix in ("data_dir=", "PCN_DATA=", "apt-get install dataset-fashion-mnist", str(cache)):
        assert fix in text
    assert "train-images-idx3-ubyte.gz" in text and "t10k-labels-idx1-ubyte.gz" in text
    assert len(err.locations) == 6


def test_the_not_found_error_lists_both_pcn_data_locations_when_it_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("PCN_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        load("cifar10-png", download=False)
    text = str(info.value)
    assert f"1. {tmp_path / 'cifar10-png'} ($PCN_DATA/<name>/): does not exist" in text
    assert f"2. {tmp_path} ($PCN_DATA): some expected files are missing" in text
    assert "no download address" in text and "labels.txt" in text


def test_a_network_failure_falls_through_to_the_not_found_error(isolated_lookup, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(download_module, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match=r"download of https://.*no route to host"):
        load("mnist")
    cache = isolated_lookup / "pcn" / "mnist"
    assert not cache.exists() or os.listdir(cache) == []


def test_a_checksum_mismatch_keeps_no_file_and_names_the_file_and_both_md5s(
    isolated_lookup, monkeypatch
):
    wrong = b"this is not the MNIST training set"
    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout=None: io.BytesIO(wrong))
    with pytest.raises(ChecksumError) as info:
        load("mnist")
    text = str(info.value)
    assert "train-images-idx3-ubyte.gz" in text
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in text
    assert hashlib.md5(wrong).hexdigest() in text
    assert os.listdir(isolated_lookup / "pcn" / "mnist") == []


def test_an_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise TimeoutError("read timed out")

    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout=None: Broken())
    with pytest.raises(TimeoutError):
        download_module.download_file("https://example.invalid/f.gz", tmp_path / "f.gz", "0" * 32)
    assert os.listdir(tmp_path) == []


def test_a_verified_download_lands_in_the_cache_and_is_found_there_next_time(
    tmp_path, mnist_like, isolated_lookup, monkeypatch
):
    served = mnist_like(tmp_path / "server", 8, 3)
    files = {p.name: p.read_bytes() for p in served.iterdir()}
    spec = registry._SPECS["mnist"]
    remotes = tuple(
        dataclasses.replace(r, md5=hashlib.md5(files[r.filename]).hexdigest()) for r in spec.remotes
    )
    monkeypatch.setitem(registry._SPECS, "mnist", dataclasses.replace(spec, remotes=remotes))
    requested = []

    def serve(url, timeout=None):
        requested.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download_module, "urlopen", serve)
    ds = load("mnist")
    cache = isolated_lookup / "pcn" / "mnist"
    assert "downloaded from https://ossci-datasets.s3.amazonaws.com/mnist" in ds.source
    assert sorted(os.listdir(cache)) == sorted(files)
    assert len(requested) == 4 and ds.x_train.shape == (8, 784)
    monkeypatch.setattr(download_module, "urlopen", None)  # a second load must not download
    assert load("mnist").source == str(cache)


def test_download_false_never_touches_the_network(monkeypatch):
    monkeypatch.setattr(download_module, "urlopen", None)
    with pytest.raises(DatasetNotFoundError):
        load("kmnist", download=False)


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_the_debian_fashion_mnist_package_loads_with_6000_images_per_class(monkeypatch):
    monkeypatch.setitem(registry.SYSTEM_DIRS, "fashion-mnist", (str(FASHION_SYSTEM_DIR),))
    ds = load("fashion-mnist", download=False)
    assert ds.source == str(FASHION_SYSTEM_DIR)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no shared MNIST copy on this machine")
def test_the_shared_mnist_copy_has_the_published_label_counts(monkeypatch):
    monkeypatch.setenv("PCN_DATA", str(SHARED_MNIST.parent))
    ds = load("mnist", download=False)
    assert ds.source == str(SHARED_MNIST)
    assert np.bincount(ds.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_pcn_data_that_is_not_a_folder_is_an_error_not_a_silent_fallback(
    tmp_path, monkeypatch, kind
):
    target = tmp_path / "typo"
    if kind == "file":
        target.write_text("")
    monkeypatch.setenv("PCN_DATA", str(target))
    with pytest.raises(NotADirectoryError, match="PCN_DATA=.*is not a folder"):
        load("mnist", download=False)
