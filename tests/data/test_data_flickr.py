"""Flickr8k / Flickr30k captioned images from a tiny generated folder: both caption
formats, the first caption of each image, resizing, missing images, bad lines."""

from __future__ import annotations

import numpy as np
import pytest

from pcn.data import read_flickr, read_flickr_captions

Image = pytest.importorskip("PIL.Image")

NAMES = ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg")


def _images(folder, side=6):
    """Three constant-colour PNG-content images (exact pixels), different sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    colours = [(255, 0, 0), (0, 128, 0), (10, 20, 30)]
    shapes = [(side, side), (side, side + 4), (side + 2, side)]
    for name, colour, shape in zip(NAMES, colours, shapes, strict=True):
        Image.fromarray(np.full((*shape, 3), colour, np.uint8), "RGB").save(
            folder / name, format="PNG"
        )
    return colours


def _flickr8k(path):
    # captions of an image out of order (#1 before #0) and images interleaved
    path.write_text(
        f"{NAMES[0]}#1\tA girl going into a wooden building .\n"
        f"{NAMES[0]}#0\tA child in a pink dress is climbing up a set of stairs .\n"
        f"{NAMES[1]}#0\tA black dog and a spotted dog are fighting\n"
        f"{NAMES[2]}#0\tA little girl covered in paint sits in front of a rainbow .\n"
        f"{NAMES[1]}#1\tTwo dogs on pavement moving toward each other .\n"
    )
    return path


def _flickr30k(path):
    path.write_text(
        "image_name| comment_number| comment\n"
        f"{NAMES[0]}| 0| Two young guys with shaggy hair look at their hands .\n"
        f"{NAMES[0]}| 1| Two young , White males are outside near many bushes .\n"
        f"{NAMES[1]}| 4 Several men in hard hats are operating a giant pulley system .\n"
        f"{NAMES[2]}| 0| A child in a pink dress is climbing up a set of stairs .\n"
    )
    return path


def test_flickr8k_captions_are_grouped_per_image_in_number_order(tmp_path):
    captions = read_flickr_captions(_flickr8k(tmp_path / "Flickr8k.token.txt"))
    assert list(captions) == list(NAMES)
    assert captions[NAMES[0]] == [
        "A child in a pink dress is climbing up a set of stairs .",
        "A girl going into a wooden building .",
    ]
    assert len(captions[NAMES[1]]) == 2


def test_flickr30k_results_csv_is_read_including_a_line_missing_its_second_bar(tmp_path):
    captions = read_flickr_captions(_flickr30k(tmp_path / "results.csv"))
    assert list(captions) == list(NAMES)
    assert captions[NAMES[0]][0] == "Two young guys with shaggy hair look at their hands ."
    assert captions[NAMES[1]] == ["Several men in hard hats are operating a giant pulley system ."]


@pytest.mark.parametrize("write", [_flickr8k, _flickr30k])
def test_each_image_comes_with_its_first_caption_resized_channel_first(tmp_path, write):
    colours = _images(tmp_path / "images")
    captions_file = write(tmp_path / "captions.txt")
    pairs = read_flickr(tmp_path / "images", captions_file, side=4)
    assert pairs.filenames == NAMES
    assert pairs.images.shape == (3, 3 * 4 * 4) and pairs.images.dtype == np.float32
    planes = pairs.images.reshape(3, 3, 16)
    for row, colour in enumerate(colours):
        expected_planes = np.broadcast_to(np.array(colour)[:, None] / 255, (3, 16))
        np.testing.assert_allclose(planes[row], expected_planes, atol=1 / 255)
    expected = read_flickr_captions(captions_file)
    assert pairs.captions == tuple(expected[name][0] for name in NAMES)


def test_limit_reads_only_the_first_images(tmp_path):
    _images(tmp_path / "images")
    pairs = read_flickr(tmp_path / "images", _flickr8k(tmp_path / "t.txt"), side=2, limit=2)
    assert pairs.filenames == NAMES[:2] and pairs.images.shape == (2, 12)


def test_a_missing_image_raises_naming_it_or_is_skipped_on_request(tmp_path):
    _images(tmp_path / "images")
    (tmp_path / "images" / NAMES[1]).unlink()
    captions_file = _flickr8k(tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError, match=rf'{NAMES[1]} is named in .*missing="skip"'):
        read_flickr(tmp_path / "images", captions_file, side=2)
    pairs = read_flickr(tmp_path / "images", captions_file, side=2, missing="skip")
    assert pairs.filenames == (NAMES[0], NAMES[2])


def test_a_line_of_neither_format_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text(f"{NAMES[0]}#0\tfine\n{NAMES[1]} a caption without its number\n")
    with pytest.raises(ValueError, match=r"captions\.txt line 2: expected `image\.jpg#0<TAB>"):
        read_flickr_captions(path)


def test_bad_settings_name_the_setting(tmp_path):
    _images(tmp_path / "images")
    captions_file = _flickr8k(tmp_path / "t.txt")
    with pytest.raises(ValueError, match=r"Unknown `missing` 'ignore'"):
        read_flickr(tmp_path / "images", captions_file, missing="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`limit` must be an integer >= 1"):
        read_flickr(tmp_path / "images", captions_file, limit=0)
    with pytest.raises(NotADirectoryError, match=r"`images_dir` .*nowhere does not exist"):
        read_flickr(tmp_path / "nowhere", captions_file)
