"""IDX reader: round trips, compression detection, clear errors for bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pcn.data import read_idx


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_uint8_images_round_trip_through_an_idx_file(tmp_path, idx_writer, compress):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    path = idx_writer(tmp_path / "images.idx3", images, compress=compress)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_one_dimensional_labels_round_trip_through_an_idx_file(tmp_path, idx_writer, compress):
    labels = np.array([5, 0, 4, 1, 9, 2], dtype=np.uint8)
    out = read_idx(idx_writer(tmp_path / "labels.idx1", labels, compress=compress))
    assert out.shape == (6,)
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_multi_byte_types_are_read_big_endian_into_native_arrays(tmp_path, idx_writer, dtype):
    values = np.arange(-3, 9, dtype=dtype).reshape(3, 4)
    out = read_idx(idx_writer(tmp_path / "v.idx", values, compress=False))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_compression_is_detected_from_content_not_from_the_file_name(tmp_path, idx_writer):
    labels = np.arange(10, dtype=np.uint8)
    raw_named_gz = idx_writer(tmp_path / "labels.gz", labels, compress=False)
    np.testing.assert_array_equal(read_idx(raw_named_gz), labels)


def test_a_bad_magic_number_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "not-idx.gz"
    path.write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 12))
    with pytest.raises(ValueError, match=r"not-idx\.gz.*magic"):
        read_idx(path)


def test_an_unknown_type_code_is_a_bad_magic_number(tmp_path):
    path = tmp_path / "odd.idx"
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match=r"odd\.idx.*magic"):
        read_idx(path)


def test_a_truncated_file_raises_an_error_naming_the_file(tmp_path, idx_writer):
    path = idx_writer(tmp_path / "short.idx", np.zeros((4, 2, 2), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"short\.idx.*13 data bytes.*16"):
        read_idx(path)


def test_a_corrupt_gzip_file_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(ValueError, match=r"broken\.gz"):
        read_idx(path)
