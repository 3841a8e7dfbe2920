"""Tiny ImageNet validation split: the original layout, folder or zip, labels in wnids.txt
order, words.txt descriptions, grayscale to RGB, lookup, download, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pcn.data.download as download_module
import pcn.data.registry as registry
from pcn.data import DatasetNotFoundError, load, read_tiny_imagenet_val
from pcn.data.image_files import read_rgb
from pcn.data.tiny_imagenet import find_tiny_imagenet_val, read_tiny_imagenet_classes

# the 200 classes of wnids.txt, in its (unsorted) order; the images use the first three
WNIDS = ["n02124075", "n04067472", "n01443537"] + [f"n1{i:07d}" for i in range(197)]
LABELS = [2, 0, 1, 0, 2]  # class of val_0 .. val_4
SHARED = Path("/work/shared/datasets/tiny-imagenet-200-val")
REGISTERED = dict(registry.SYSTEM_DIRS)  # before the autouse fixture hides system dirs


def _rows(pixels: np.ndarray) -> np.ndarray:
    """(N, 64, 64, 3) uint8 -> the loader's float32 channel-first rows (N, 12288)."""
    return (pixels.transpose(0, 3, 1, 2).reshape(len(pixels), -1) / np.float32(255)).astype(
        np.float32
    )


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, path.relative_to(folder.parent).as_posix())


def test_the_val_split_loads_as_unit_floats_with_labels_in_wnids_order(
    tmp_path, tiny_imagenet_like
):
    pixels = tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    ds = load("tiny-imagenet-val", data_dir=tmp_path, download=False)
    assert ds.source == str(tmp_path / "tiny-imagenet-200")
    assert ds.image_shape == (3, 64, 64) and ds.num_classes == 200
    np.testing.assert_array_equal(ds.x_train, _rows(pixels))
    assert ds.y_train.tolist() == LABELS
    assert ds.x_test.shape == (0, 3 * 64 * 64) and ds.y_test.shape == (0,)
    assert len(ds.class_names) == 200
    assert ds.class_names[:3] == (
        "thing 0, synonym of thing 0",
        "thing 1, synonym of thing 1",
        "thing 2, synonym of thing 2",
    )


def test_a_grayscale_image_becomes_three_equal_channels(tmp_path, tiny_imagenet_like):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    planes = read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200").images[1].reshape(3, -1)
    np.testing.assert_array_equal(planes[0], planes[1])
    np.testing.assert_array_equal(planes[0], planes[2])


def test_real_jpegs_give_the_pixels_pillow_decodes_channel_first(tmp_path, tiny_imagenet_like):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS, jpeg=True)
    val = read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200")
    images = tmp_path / "tiny-imagenet-200" / "val" / "images"
    decoded = np.stack([read_rgb(images / f"val_{i}.JPEG") for i in range(len(LABELS))])
    np.testing.assert_array_equal(val.images, decoded.transpose(0, 3, 1, 2).reshape(5, -1))
    assert val.filenames == tuple(f"val_{i}.JPEG" for i in range(5))
    assert val.wnids == tuple(WNIDS)


def test_a_class_list_other_than_200_is_refused_by_the_registry_naming_the_fix(
    tmp_path, tiny_imagenet_like
):
    tiny_imagenet_like(tmp_path, WNIDS[:3], LABELS)
    with pytest.raises(ValueError, match=r"lists 3 classes, not the 200.*read_tiny_imagenet_val"):
        load("tiny-imagenet-val", data_dir=tmp_path, download=False)
    assert read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200").labels.tolist() == LABELS


def test_the_zip_is_read_in_place_and_gives_the_same_arrays_as_the_folder(
    tmp_path, tiny_imagenet_like
):
    tiny_imagenet_like(tmp_path / "build", WNIDS, LABELS)
    home = tmp_path / "home"
    home.mkdir()
    _zip_folder(tmp_path / "build" / "tiny-imagenet-200", home / "tiny-imagenet-200.zip")
    from_zip = load("tiny-imagenet-val", data_dir=home, download=False)
    from_folder = load("tiny-imagenet-val", data_dir=tmp_path / "build", download=False)
    assert from_zip.source == str(home / "tiny-imagenet-200.zip")
    assert os.listdir(home) == ["tiny-imagenet-200.zip"]  # nothing extracted
    np.testing.assert_array_equal(from_zip.x_train, from_folder.x_train)
    np.testing.assert_array_equal(from_zip.y_train, from_folder.y_train)
    assert from_zip.class_names == from_folder.class_names


def test_the_root_folder_itself_may_be_given_as_data_dir(tmp_path, tiny_imagenet_like):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    root = tmp_path / "tiny-imagenet-200"
    assert load("tiny-imagenet-val", data_dir=root, download=False).source == str(root)


def test_a_system_location_holding_the_shared_layout_is_found(
    tmp_path, tiny_imagenet_like, monkeypatch
):
    tiny_imagenet_like(tmp_path / "shared" / "tiny-imagenet-200-val", WNIDS, LABELS)
    copy = tmp_path / "shared" / "tiny-imagenet-200-val"
    monkeypatch.setitem(registry.SYSTEM_DIRS, "tiny-imagenet-val", (str(copy),))
    ds = load("tiny_imagenet_val", download=False)
    assert ds.name == "tiny-imagenet-val" and ds.source == str(copy / "tiny-imagenet-200")


def test_the_not_found_error_names_the_layout_the_zip_and_its_address(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("tiny-imagenet-val", data_dir=tmp_path, download=False)
    text = str(info.value)
    assert "val/val_annotations.txt" in text and "tiny-imagenet-200.zip" in text
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in text


def test_a_verified_download_of_the_zip_is_read_from_the_cache(
    tmp_path, tiny_imagenet_like, isolated_lookup, monkeypatch
):
    tiny_imagenet_like(tmp_path / "server", WNIDS, LABELS)
    served = tmp_path / "tiny-imagenet-200.zip"
    _zip_folder(tmp_path / "server" / "tiny-imagenet-200", served)
    payload = served.read_bytes()
    spec = registry._SPECS["tiny-imagenet-val"]
    assert spec.remotes[0].md5 == "90528d7ca1a48142e341f4ef8d21d0de"
    remote = dataclasses.replace(spec.remotes[0], md5=hashlib.md5(payload).hexdigest())
    monkeypatch.setitem(
        registry._SPECS, "tiny-imagenet-val", dataclasses.replace(spec, remotes=(remote,))
    )
    requested = []

    def serve(url, timeout=None):
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(download_module, "urlopen", serve)
    ds = load("tiny-imagenet-val")
    cache = isolated_lookup / "pcn" / "tiny-imagenet-val"
    assert requested == ["http://cs231n.stanford.edu/tiny-imagenet-200.zip"]
    assert os.listdir(cache) == ["tiny-imagenet-200.zip"]
    assert "downloaded from http://cs231n.stanford.edu/" in ds.source
    assert ds.y_train.tolist() == LABELS


def test_an_annotation_with_an_unknown_wnid_is_an_error_naming_the_line(
    tmp_path, tiny_imagenet_like
):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    annotations = tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    lines = annotations.read_text().splitlines()
    lines[3] = "val_3.JPEG\tn99999999\t0\t0\t1\t1"
    annotations.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"val_annotations\.txt line 4: .*n99999999"):
        read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200")


def test_a_missing_image_is_an_error_naming_it(tmp_path, tiny_imagenet_like):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    (tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(ValueError, match=r"val_2\.JPEG is missing.*unpack"):
        read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200")


def test_an_image_of_another_size_is_an_error_naming_it(tmp_path, tiny_imagenet_like):
    image_module = pytest.importorskip("PIL.Image")
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    path = tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_4.JPEG"
    image_module.fromarray(np.zeros((32, 48, 3), np.uint8), "RGB").save(path, format="PNG")
    with pytest.raises(ValueError, match=r"val_4\.JPEG: expected a 64x64 image, got 48x32"):
        read_tiny_imagenet_val(tmp_path / "tiny-imagenet-200")


def test_a_class_missing_from_words_txt_is_an_error_naming_it(tmp_path, tiny_imagenet_like):
    tiny_imagenet_like(tmp_path, WNIDS, LABELS)
    words = tmp_path / "tiny-imagenet-200" / "words.txt"
    kept = [line for line in words.read_text().splitlines() if not line.startswith("n01443537")]
    words.write_text("".join(f"{line}\n" for line in kept))
    with pytest.raises(ValueError, match=r"words\.txt has no .* 1 classes .*first: n01443537"):
        read_tiny_imagenet_classes(tmp_path / "tiny-imagenet-200")


def test_a_corrupt_zip_is_an_error_saying_to_download_it_again(tmp_path):
    (tmp_path / "tiny-imagenet-200.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable zip.*download tiny-imagenet-200"):
        load("tiny-imagenet-val", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared Tiny ImageNet copy on this machine")
def test_the_shared_copy_is_registered_and_has_200_classes_of_50_images():
    assert str(SHARED) in REGISTERED["tiny-imagenet-val"]
    root = find_tiny_imagenet_val(SHARED)
    assert root == SHARED / "tiny-imagenet-200"
    wnids, words = read_tiny_imagenet_classes(root)
    assert wnids[:5] == ("n02124075", "n04067472", "n04540053", "n04099969", "n07749582")
    assert len(wnids) == 200 and words[wnids.index("n01443537")] == "goldfish, Carassius auratus"
    annotations = (root / "val" / "val_annotations.txt").read_text().splitlines()
    counts = np.bincount([wnids.index(line.split("\t")[1]) for line in annotations])
    assert counts.tolist() == [50] * 200
    assert read_rgb(root / "val" / "images" / "val_0.JPEG").shape == (64, 64, 3)
