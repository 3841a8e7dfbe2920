"""Folders of JPEG/PNG images: RGB conversion, center crop, resizing, channel-first rows,
and the errors for an empty folder or a file that is not an image."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pcn.data import read_image_folder
from pcn.data.image_files import list_image_files, read_rgb, square_resize

Image = pytest.importorskip("PIL.Image")


def _bands(height: int, width: int) -> np.ndarray:
    """An RGB image whose middle square is green and whose margins are red (top/left)
    and blue (bottom/right), so a center crop keeps only green."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 1] = 200
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    image[:top, :, :] = (255, 0, 0)
    image[top + short :, :, :] = (0, 0, 255)
    image[:, :left, :] = (255, 0, 0)
    image[:, left + short :, :] = (0, 0, 255)
    return image


def test_a_folder_becomes_channel_first_unit_floats_in_name_order(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 4, 4, 3), dtype=np.uint8)
    for name, hwc in zip(("b.png", "a.PNG", "c.png"), pixels, strict=True):
        Image.fromarray(hwc, "RGB").save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    x = read_image_folder(tmp_path, 4)
    assert x.shape == (3, 3 * 4 * 4) and x.dtype == np.float32
    # sorted by name: a.PNG, b.png, c.png; (H, W, C) -> (C, H, W), value / 255
    expected = pixels[[1, 0, 2]].transpose(0, 3, 1, 2).reshape(3, -1) / np.float32(255)
    np.testing.assert_array_equal(x, expected.astype(np.float32))


@pytest.mark.parametrize(("height", "width"), [(6, 10), (10, 6), (5, 5)])
def test_a_wide_or_tall_image_is_center_cropped_to_its_square(tmp_path, height, width):
    Image.fromarray(_bands(height, width), "RGB").save(tmp_path / "x.png")
    square = read_image_folder(tmp_path, min(height, width)).reshape(3, -1)
    np.testing.assert_array_equal(square[0], 0.0)  # no red margin left
    np.testing.assert_array_equal(square[2], 0.0)  # no blue margin left
    np.testing.assert_allclose(square[1], 200 / 255)


def test_resizing_a_constant_image_keeps_its_colour_and_gives_the_side(tmp_path):
    Image.fromarray(np.full((40, 60, 3), (10, 120, 250), np.uint8), "RGB").save(tmp_path / "x.png")
    x = read_image_folder(tmp_path, 8).reshape(1, 3, 8, 8)
    for channel, value in enumerate((10, 120, 250)):
        np.testing.assert_allclose(x[0, channel], value / 255, atol=1 / 255)


def test_grayscale_palette_and_alpha_images_become_rgb(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    palette = Image.fromarray(gray // 16, "P")  # colour k of the palette is gray level 16 k
    palette.putpalette([16 * k for k in range(16) for _ in range(3)])
    palette.save(tmp_path / "palette.png")
    rgba = np.dstack([np.stack([gray] * 3, -1), np.full((4, 4), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for path in sorted(tmp_path.iterdir()):
        image = read_rgb(path)
        assert image.shape == (4, 4, 3) and image.dtype == np.uint8, path.name
        for channel in range(3):
            np.testing.assert_array_equal(image[..., channel], gray, err_msg=path.name)


def test_a_grayscale_jpeg_decodes_to_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    Image.fromarray(gray, "L").save(tmp_path / "g.jpg", quality=95)
    image = read_rgb(tmp_path / "g.jpg")
    assert image.shape == (64, 64, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    np.testing.assert_allclose(image[..., 0], gray, atol=4)  # JPEG is lossy


def test_a_large_jpeg_decoded_at_reduced_scale_matches_the_full_decode(tmp_path):
    Image.fromarray(np.full((400, 600, 3), (30, 90, 160), np.uint8), "RGB").save(
        tmp_path / "big.jpg", quality=95
    )
    x = read_image_folder(tmp_path, 16).reshape(3, -1)
    full = square_resize(read_rgb(tmp_path / "big.jpg"), 16)
    np.testing.assert_allclose(x, full.transpose(2, 0, 1).reshape(3, -1) / 255, atol=3 / 255)


def test_square_resize_of_a_square_of_that_side_returns_it_unchanged():
    image = np.random.default_rng(1).integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(square_resize(image, 5), image)


def test_an_empty_folder_is_an_error_naming_it_and_the_suffixes(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=rf"{tmp_path} holds no \.jpg/\.jpeg/\.png file"):
        read_image_folder(tmp_path, 8)


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(NotADirectoryError, match=r"nowhere does not exist"):
        list_image_files(tmp_path / "nowhere")


def test_a_file_that_is_not_an_image_is_an_error_naming_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), "RGB").save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"this is not a JPEG")
    with pytest.raises(ValueError, match=r"b\.jpg is not a readable image.*replace or remove"):
        read_image_folder(tmp_path, 4)


@pytest.mark.parametrize("side", [0, -3, 2.5, True])
def test_a_side_that_is_not_a_positive_integer_is_rejected(tmp_path, side):
    with pytest.raises(ValueError, match=r"`side` must be an integer >= 1"):
        read_image_folder(tmp_path, side)


def test_missing_pillow_names_the_file_and_the_install(tmp_path, hide_package):
    (tmp_path / "a.png").write_bytes(b"")
    hide_package("PIL")
    with pytest.raises(ImportError, match=r"a\.png needs the package 'Pillow'.*pip install Pillow"):
        read_image_folder(tmp_path, 4)


def test_importing_the_readers_loads_neither_pillow_nor_scipy():
    probe = (
        "import json, sys; import pcn.data, pcn.associative.captions; "
        "print(json.dumps(sorted({'PIL', 'scipy'} & {m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
