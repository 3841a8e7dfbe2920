"""Caption vectors (thesis section 4.7): vocabulary, ids / V with zero padding, decoding
to the nearest id, exact recovery, the too-long error, the Tiny ImageNet stand-in."""

from __future__ import annotations

import numpy as np
import pytest

from pcn.associative import captions as cap

CAPTIONS = [
    "Two young guys with shaggy hair look at their hands.",
    "Several men in hard hats are operating a giant pulley system",
    "A child in a pink dress is climbing up a set of stairs!",
]


def test_tokens_are_lowercased_words_without_punctuation():
    assert cap.tokenize("A child, in a PINK dress -- climbing (up) stairs .") == [
        "a",
        "child",
        "in",
        "a",
        "pink",
        "dress",
        "climbing",
        "up",
        "stairs",
    ]


def test_the_vocabulary_is_the_sorted_distinct_words_with_ids_from_one():
    vocab = cap.build_vocabulary(["b a", "c, a."])
    assert vocab.words == ("a", "b", "c") and vocab.size == 3


def test_a_caption_is_its_ids_over_v_then_zero_padding():
    vocab = cap.build_vocabulary(["b a", "c a"])  # a=1, b=2, c=3, V=3
    vectors = cap.encode_captions(["b a", "c"], vocab, length=4)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 4)
    expected = np.array([[2 / 3, 1 / 3, 0, 0], [3 / 3, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(vectors, expected)
    assert vectors.min() >= 0.0 and vectors.max() <= 1.0


def test_without_a_length_captions_pad_to_the_longest():
    vocab = cap.build_vocabulary(CAPTIONS)
    vectors = cap.encode_captions(CAPTIONS, vocab)
    assert vectors.shape == (3, max(len(cap.tokenize(c)) for c in CAPTIONS))


def test_encoding_then_decoding_gives_back_the_tokens_and_ids():
    vocab = cap.build_vocabulary(CAPTIONS)
    vectors = cap.encode_captions(CAPTIONS, vocab, length=20)
    assert cap.decode_captions(vectors, vocab) == [" ".join(cap.tokenize(c)) for c in CAPTIONS]
    ids = cap.caption_ids(vectors, vocab)
    index = {w: i for i, w in enumerate(vocab.words, 1)}
    assert ids[2, :3].tolist() == [index["a"], index["child"], index["in"]]
    assert np.all(ids[:, 14:] == 0)  # no caption has 15 words
    assert cap.caption_recovered(vectors, vectors, vocab).tolist() == [True] * 3


def test_a_caption_is_recovered_only_when_every_entry_rounds_to_its_id():
    vocab = cap.build_vocabulary(CAPTIONS)
    v = vocab.size
    originals = cap.encode_captions(CAPTIONS, vocab, length=16)
    within = originals + np.float32(0.49 / v)  # every entry still nearest its own id
    assert cap.caption_recovered(within, originals, vocab).tolist() == [True] * 3
    one_word = originals.copy()
    one_word[1, 2] += 0.51 / v  # the third word of caption 2 becomes the next word
    assert cap.caption_recovered(one_word, originals, vocab).tolist() == [True, False, True]
    padding = originals.copy()
    padding[0, -1] = 0.51 / v  # a padding slot decodes to word 1: an extra word
    assert cap.caption_recovered(padding, originals, vocab).tolist() == [False, True, True]


def test_decoding_clips_recalls_outside_zero_one_to_the_nearest_valid_id():
    vocab = cap.build_vocabulary(["a b"])
    assert cap.caption_ids(np.array([[-0.3, 1.7]]), vocab).tolist() == [[0, 2]]


def test_a_caption_longer_than_the_length_names_it_its_length_and_the_fix():
    vocab = cap.build_vocabulary(CAPTIONS)
    with pytest.raises(ValueError) as info:
        cap.encode_captions(CAPTIONS, vocab, length=10)
    text = str(info.value)
    assert repr(CAPTIONS[1]) in text and "has 11 words" in text
    assert "`length`=10" in text and "pass length >= 13 (the longest caption)" in text


def test_a_word_outside_the_vocabulary_or_an_empty_caption_is_an_error_naming_it():
    vocab = cap.build_vocabulary(["a dog"])
    with pytest.raises(ValueError, match=r"'a cat' has words not in the vocabulary: \['cat'\]"):
        cap.encode_captions(["a cat"], vocab)
    with pytest.raises(ValueError, match=r"caption '\.\.\.' has no word"):
        cap.encode_captions(["..."], vocab)
    with pytest.raises(ValueError, match=r"`captions` must be a non-empty sequence"):
        cap.build_vocabulary("a dog")


def test_pairs_keep_one_caption_per_image():
    images = np.random.default_rng(0).random((3, 12)).astype(np.float32)
    pairs = cap.pair_captions(images, CAPTIONS, length=16)
    assert pairs.vectors.shape == (3, 16) and pairs.captions == tuple(CAPTIONS)
    np.testing.assert_array_equal(pairs.images, images)
    with pytest.raises(ValueError, match=r"one caption each, got images of shape \(3, 12\)"):
        cap.pair_captions(images, CAPTIONS[:2])


def _tiny_imagenet(directory, labels):
    """tiny-imagenet-200/ with 200 classes and one 64x64 PNG-content image per label."""
    image_module = pytest.importorskip("PIL.Image")
    root = directory / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    wnids = [f"n{i:08d}" for i in range(200)]
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    names = ["goldfish, Carassius auratus", "Egyptian cat", "goldfish"]
    names += [f"class {i}" for i in range(3, 200)]
    (root / "words.txt").write_text(
        "".join(f"{w}\t{n}\n" for w, n in zip(wnids, names, strict=True))
    )
    lines = [f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63\n" for i, label in enumerate(labels)]
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    for i, label in enumerate(labels):
        pixels = np.full((64, 64, 3), (i * 40, label, 7), np.uint8)
        image_module.fromarray(pixels, "RGB").save(root / "val" / "images" / f"val_{i}.JPEG", "PNG")
    return names


def test_the_tiny_imagenet_stand_in_takes_the_first_image_of_each_class(tmp_path):
    names = _tiny_imagenet(tmp_path, [1, 0, 1, 2, 0])  # first images: class 0 val_1, ...
    pairs = cap.tiny_imagenet_pairs(3, data_dir=tmp_path, download=False)
    assert pairs.captions == tuple(names[:3])
    red = pairs.images.reshape(3, 3, -1)[:, 0, 0] * 255
    np.testing.assert_allclose(red, [40, 0, 120])  # val_1, val_0, val_3
    assert pairs.images.shape == (3, 3 * 64 * 64)
    assert pairs.vocabulary.words == ("auratus", "carassius", "cat", "egyptian", "goldfish")
    decoded = cap.decode_captions(pairs.vectors, pairs.vocabulary)
    assert decoded == ["goldfish carassius auratus", "egyptian cat", "goldfish"]
    assert len(set(map(tuple, pairs.vectors))) == 3


def test_the_stand_in_refuses_more_images_than_classes_or_a_class_without_images(tmp_path):
    _tiny_imagenet(tmp_path, [0, 1])
    with pytest.raises(ValueError, match=r"`n`=201 is more than the 200 classes"):
        cap.tiny_imagenet_pairs(201, data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match=r"no validation image of class 2 \('goldfish'\)"):
        cap.tiny_imagenet_pairs(3, data_dir=tmp_path, download=False)
