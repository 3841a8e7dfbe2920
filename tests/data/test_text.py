"""Text corpora: the BPE tokenizer is trained once and cached, windows are cut exactly,
the corpora are found in the registry's lookup order (or fail naming every place)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcn.data import DatasetNotFoundError, load, load_text, read_text_corpus
from pcn.data.text import EOL_ID, cut_sequences, encode_lines

WORDS = "the king shall speak and we will hear my lord good night sweet prince".split()


def write_corpus(path: Path, lines: int = 400, seed: int = 0) -> list[str]:
    """A tiny-shakespeare-like input.txt of random lines of words; returns its lines."""
    rng = np.random.default_rng(seed)
    text = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(lines)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "input.txt").write_text("\n".join(text) + "\n")
    return text


def test_cut_sequences_makes_windows_that_share_their_boundary_token():
    windows = cut_sequences(np.arange(11), 3)
    np.testing.assert_array_equal(windows, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    assert cut_sequences(np.arange(3), 3).shape == (0, 4)


def test_load_text_cuts_every_split_into_windows_of_the_model_context(tmp_path):
    lines = write_corpus(tmp_path / "tiny-shakespeare")
    data = load_text("tiny-shakespeare", vocab_size=48, seq_len=8, data_dir=tmp_path)
    assert data.vocab_size == 48
    for split in (data.train, data.dev, data.test):
        assert split.dtype == np.int32 and split.shape[1] == 9 and len(split) > 0
        assert split.min() >= 0 and split.max() < 48
        np.testing.assert_array_equal(split[:-1, -1], split[1:, 0])
    # 90% / 5% / 5% of the lines, in order: the training windows decode to the first lines
    corpus = read_text_corpus("tiny-shakespeare", data_dir=tmp_path)
    assert (len(corpus.train), len(corpus.dev), len(corpus.test)) == (360, 20, 20)
    stream = np.concatenate([data.train[0], *[w[1:] for w in data.train[1:]]])
    first = [i for i, t in enumerate(stream) if t == EOL_ID][0]
    assert data.tokenizer.decode(stream[:first].tolist()) == lines[0]


def test_encoding_ends_every_line_with_the_end_of_line_token(tmp_path):
    write_corpus(tmp_path / "tiny-shakespeare")
    data = load_text("tiny-shakespeare", vocab_size=48, seq_len=4, data_dir=tmp_path)
    stream = encode_lines(data.tokenizer, ["good night", "", "sweet prince"])
    assert (stream == EOL_ID).sum() == 3 and stream[-1] == EOL_ID
    pieces = np.split(stream, np.flatnonzero(stream == EOL_ID) + 1)[:3]
    assert [data.tokenizer.decode(p[:-1].tolist()) for p in pieces] == [
        "good night",
        "",
        "sweet prince",
    ]


def test_the_tokenizer_is_trained_once_and_cached_atomically(
    tmp_path, isolated_lookup, monkeypatch
):
    write_corpus(tmp_path / "tiny-shakespeare")
    first = load_text("tiny-shakespeare", vocab_size=40, seq_len=4, data_dir=tmp_path)
    assert first.tokenizer_path.parent == isolated_lookup / "pcn" / "tokenizers"
    assert not [p for p in first.tokenizer_path.parent.iterdir() if p.name.startswith(".")]

    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    sentencepiece = pytest.importorskip("sentencepiece")  # the `experiments` extra
    monkeypatch.setattr(sentencepiece.SentencePieceTrainer, "train", no_training)
    again = load_text("tiny-shakespeare", vocab_size=40, seq_len=4, data_dir=tmp_path)
    assert again.tokenizer_path == first.tokenizer_path
    np.testing.assert_array_equal(again.train, first.train)
    with pytest.raises(AssertionError, match="trained again"):
        load_text("tiny-shakespeare", vocab_size=41, seq_len=4, data_dir=tmp_path)


def test_a_vocabulary_too_large_for_the_corpus_is_refused_naming_the_setting(tmp_path):
    write_corpus(tmp_path / "tiny-shakespeare", lines=50)
    with pytest.raises(ValueError, match="vocab_size=5000"):
        load_text("tiny-shakespeare", vocab_size=5000, data_dir=tmp_path)


def test_a_missing_corpus_lists_every_location_tried(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_text("tiny-shakespeare", data_dir=tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert "input.txt" in message and "nowhere" in message
    assert "download=False" in message and "raw.githubusercontent.com/karpathy" in message


def test_one_billion_word_is_read_from_its_benchmark_layout(tmp_path):
    root = tmp_path / "one-billion-word"
    train_dir = root / "training-monolingual.tokenized.shuffled"
    heldout_dir = root / "heldout-monolingual.tokenized.shuffled"
    train_dir.mkdir(parents=True)
    heldout_dir.mkdir()
    for shard in (1, 2, 3):
        (train_dir / f"news.en-0000{shard}-of-00100").write_text(
            f"train {shard} a\ntrain {shard} b\n"
        )
    for shard in (0, 1):
        (heldout_dir / f"news.en.heldout-0000{shard}-of-00050").write_text(f"heldout {shard}\n")
    corpus = read_text_corpus("one_billion_word", data_dir=tmp_path, train_shards=2)
    assert corpus.train == ["train 1 a", "train 1 b", "train 2 a", "train 2 b"]
    assert corpus.test == ["heldout 0"] and corpus.dev == ["heldout 1"]


def test_one_billion_word_without_its_heldout_files_is_not_found(tmp_path):
    train_dir = tmp_path / "training-monolingual.tokenized.shuffled"
    train_dir.mkdir(parents=True)
    (train_dir / "news.en-00001-of-00100").write_text("a b\n")
    with pytest.raises(DatasetNotFoundError, match="news.en.heldout"):
        read_text_corpus("one-billion-word", data_dir=tmp_path, download=False)


def test_image_loader_points_text_corpora_to_load_text():
    with pytest.raises(ValueError, match="load_text"):
        load("tiny-shakespeare")
    with pytest.raises(ValueError, match="valid names: one-billion-word, tiny-shakespeare"):
        read_text_corpus("wikitext")
