"""CIFAR-10 readers: python batches (folder and tarball), PNG folder layout."""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
import pytest

from pcn.data import load
from pcn.data.cifar import BATCHES_DIR, TEST_BATCH, TRAIN_BATCHES, read_cifar_batch

PER_BATCH = 3
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(seed: int, n: int = PER_BATCH) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [
        int(v) for v in rng.integers(0, 10, n)
    ]


def _write_batches(folder, *, bytes_keys: bool = True, protocol: int = 2):
    """Write data_batch_1..5 and test_batch; return (x_train, y_train, x_test, y_test) uint8."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for seed, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        data, labels = _batch(seed)
        keys = (b"data", b"labels") if bytes_keys else ("data", "labels")
        with open(folder / name, "wb") as handle:
            pickle.dump({keys[0]: data, keys[1]: labels}, handle, protocol=protocol)
        parts[name] = (data, np.array(labels))
    x_train = np.concatenate([parts[n][0] for n in TRAIN_BATCHES])
    y_train = np.concatenate([parts[n][1] for n in TRAIN_BATCHES])
    return x_train, y_train, *parts[TEST_BATCH]


def test_one_python_batch_round_trips_as_uint8_rows_and_int64_labels(tmp_path):
    data, labels = _batch(7, n=4)
    with open(tmp_path / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, handle)
    images, out_labels = read_cifar_batch(tmp_path / "data_batch_1")
    np.testing.assert_array_equal(images, data)
    assert out_labels.dtype == np.int64 and out_labels.tolist() == labels


@pytest.mark.parametrize(("bytes_keys", "protocol"), [(True, 2), (False, 5)])
def test_cifar10_loads_from_a_batches_folder_in_data_dir(tmp_path, bytes_keys, protocol):
    x_train, y_train, x_test, y_test = _write_batches(
        tmp_path / BATCHES_DIR, bytes_keys=bytes_keys, protocol=protocol
    )
    ds = load("cifar10", data_dir=tmp_path, download=False)
    assert ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    assert ds.x_train.shape == (5 * PER_BATCH, 3072) and ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.x_train, x_train.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.x_test, x_test.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.source == str(tmp_path / BATCHES_DIR)


def test_cifar10_loads_from_the_tarball_without_extracting_it(tmp_path):
    expected = _write_batches(tmp_path / "build" / BATCHES_DIR)
    home = tmp_path / "home"
    home.mkdir()
    with tarfile.open(home / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "build" / BATCHES_DIR, arcname=BATCHES_DIR)
    ds = load("cifar10", data_dir=home, download=False)
    assert ds.source.endswith("cifar-10-python.tar.gz")
    assert os.listdir(home) == ["cifar-10-python.tar.gz"]
    np.testing.assert_array_equal(ds.x_train, expected[0].astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y_test, expected[3])


def test_a_pickle_that_would_call_an_arbitrary_function_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match=r"data_batch_1.*refusing to load global"):
        read_cifar_batch(path)


def test_a_batch_with_the_wrong_row_length_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"test_batch.*3072"):
        read_cifar_batch(path)


def _write_png_layout(root, images_by_split):
    image_module = pytest.importorskip("PIL.Image")
    folder = root / "cifar"
    for split, items in images_by_split.items():
        (folder / split).mkdir(parents=True)
        for index, label, hwc in items:
            image_module.fromarray(hwc, "RGB").save(
                folder / split / f"{index}_{CLASSES[label]}.png"
            )
    (folder / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    return folder


def test_cifar10_png_layout_reads_in_index_order_with_channel_major_pixels(tmp_path):
    rng = np.random.default_rng(3)
    hwc = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    # Indices 10 and 2 check numeric (not string) sorting of "<index>_<class>.png".
    folder = _write_png_layout(
        tmp_path,
        {"train": [(10, 3, hwc[0]), (2, 8, hwc[1]), (0, 0, hwc[2])], "test": [(0, 9, hwc[3])]},
    )
    ds = load("cifar10-png", data_dir=tmp_path, download=False)
    assert ds.source == str(folder)
    assert ds.y_train.tolist() == [0, 8, 3] and ds.y_test.tolist() == [9]
    expected = hwc[[2, 1, 0]].transpose(0, 3, 1, 2).reshape(3, -1).astype(np.float32) / 255
    np.testing.assert_array_equal(ds.x_train, expected)
    assert ds.x_train.reshape(-1, *ds.image_shape).shape == (3, 3, 32, 32)


def test_png_and_pickle_copies_of_the_same_images_give_identical_arrays(tmp_path):
    x_train, y_train, x_test, y_test = _write_batches(tmp_path / "py" / BATCHES_DIR)

    def to_items(x, y):
        return [
            (i, int(label), row.reshape(3, 32, 32).transpose(1, 2, 0))
            for i, (row, label) in enumerate(zip(x, y, strict=True))
        ]

    _write_png_layout(
        tmp_path / "png", {"train": to_items(x_train, y_train), "test": to_items(x_test, y_test)}
    )
    from_pickle = load("cifar10", data_dir=tmp_path / "py", download=False)
    from_png = load("cifar10-png", data_dir=tmp_path / "png", download=False)
    np.testing.assert_array_equal(from_png.x_train, from_pickle.x_train)
    np.testing.assert_array_equal(from_png.x_test, from_pickle.x_test)
    np.testing.assert_array_equal(from_png.y_train, from_pickle.y_train)
