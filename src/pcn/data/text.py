"""Text corpora for language models: a BPE tokenizer trained once on the training split
(SentencePiece, cached), and train/dev/test splits of fixed-length token sequences.

Each line of the corpus is encoded on its own and followed by the end-of-line token
(`EOL_ID`), so line structure survives tokenization: the end of a sentence in One
Billion Word, a line break in tiny-shakespeare. The streams of a split are cut into
non-overlapping windows of `seq_len + 1` ids sharing their boundary token: the first
`seq_len` are the model's input, the last `seq_len` the next tokens it predicts, so every
token of the split is predicted once.

The tokenizer is trained on the training split only, with `vocab_size` pieces including
`<unk>` (id 0) and the end-of-line token (id 1), and stored under
`$XDG_CACHE_HOME/pcn/tokenizers/` (default `~/.cache/pcn/tokenizers/`), named by the
corpus, vocabulary size and a hash of the training text, and written atomically.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._optional import optional_import
from .._validation import check_at_least
from ..files import atomic_write
from .registry import find_text_corpus

if TYPE_CHECKING:  # sentencepiece is imported where it is used: `import pcn` needs none
    import sentencepiece as spm

__all__ = [
    "EOL_ID",
    "TextCorpus",
    "TokenizedText",
    "cut_sequences",
    "encode_lines",
    "load_text",
    "read_text_corpus",
    "tokenizer_cache_dir",
    "train_tokenizer",
]

UNK_ID = 0
EOL_ID = 1
"""Id of the end-of-line token appended to every encoded line."""


@dataclass(frozen=True, eq=False)
class TextCorpus:
    """Raw lines of a corpus' train/dev/test splits and where they were found."""

    name: str
    train: list[str]
    dev: list[str]
    test: list[str]
    source: str


@dataclass(frozen=True, eq=False)
class TokenizedText:
    """Train/dev/test token sequences, int32 of shape `(n, seq_len + 1)`, and the
    tokenizer that made them (`tokenizer.decode(ids)` turns ids back into text)."""

    name: str
    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    seq_len: int
    vocab_size: int
    tokenizer: spm.SentencePieceProcessor
    tokenizer_path: Path
    source: str

    def __repr__(self) -> str:
        return (
            f"TokenizedText(name={self.name!r}, train={self.train.shape}, dev={self.dev.shape}, "
            f"test={self.test.shape}, vocab_size={self.vocab_size}, source={self.source!r})"
        )


# --- reading the corpora ---------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _split_by_lines(lines: list[str], dev: float, test: float) -> tuple[list, list, list]:
    """Contiguous train / dev / test parts by line (a corpus without an official split)."""
    n = len(lines)
    n_test, n_dev = int(round(n * test)), int(round(n * dev))
    n_train = n - n_dev - n_test
    return lines[:n_train], lines[n_train : n_train + n_dev], lines[n_train + n_dev :]


def read_text_corpus(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    train_shards: int = 1,
) -> TextCorpus:
    """The lines of corpus `name` (`"tiny-shakespeare"` or `"one-billion-word"`) by split.

    tiny-shakespeare: the first 90% of the lines train, the next 5% dev, the last 5% test.
    One Billion Word: `train_shards` training files (`news.en-00001-of-00100`, ...), the
    held-out file 00001 as dev and 00000 (the usual test set) as test. Files are found
    as by `pcn.data.load` (`data_dir`, `PCN_DATA`, system locations, cache, download).
    """
    check_at_least("train_shards", train_shards, 1)
    key, location, source = find_text_corpus(name, data_dir=data_dir, download=download)
    if key == "tiny-shakespeare":
        train, dev, test = _split_by_lines(_read_lines(location), dev=0.05, test=0.05)
        return TextCorpus(key, train, dev, test, source)
    train_dir = location / "training-monolingual.tokenized.shuffled"
    heldout_dir = location / "heldout-monolingual.tokenized.shuffled"
    shards = sorted(train_dir.glob("news.en-*-of-00100"))[:train_shards]
    train = [line for shard in shards for line in _read_lines(shard)]
    dev = _read_lines(heldout_dir / "news.en.heldout-00001-of-00050")
    test = _read_lines(heldout_dir / "news.en.heldout-00000-of-00050")
    return TextCorpus(key, train, dev, test, f"{source} ({len(shards)} training shards)")


# --- the tokenizer ------------------------------------------------------------------------


def tokenizer_cache_dir() -> Path:
    """Where trained tokenizers are kept: `$XDG_CACHE_HOME/pcn/tokenizers`."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "pcn" / "tokenizers"


def train_tokenizer(
    lines: Sequence[str],
    *,
    vocab_size: int,
    name: str = "corpus",
    cache: str | os.PathLike | None = None,
) -> Path:
    """Train a BPE SentencePiece model with `vocab_size` pieces on `lines` (once: a model
    already cached for the same text and size is reused); return its path.

    Raises:
        ValueError: `vocab_size` is too large for the text (SentencePiece cannot find that
            many pieces) or too small to hold the special tokens and the characters.
    """
    check_at_least("vocab_size", vocab_size, 3, hint="It counts <unk> and end-of-line too.")
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    folder = Path(cache) if cache is not None else tokenizer_cache_dir()
    path = folder / f"{name}-bpe{vocab_size}-{digest}.model"
    if path.is_file():
        return path
    spm = optional_import("sentencepiece", "Training the text tokenizer")  # lazy: see above

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([line for line in lines if line.strip()]),
            model_writer=model,
            model_type="bpe",
            vocab_size=vocab_size,
            character_coverage=1.0,
            unk_id=UNK_ID,
            eos_id=EOL_ID,
            bos_id=-1,
            pad_id=-1,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise ValueError(
            f"Could not train a tokenizer of `vocab_size={vocab_size}` on {name!r}: {err}. "
            "Choose a smaller `vocab_size` for a small corpus (or a larger one than the "
            "number of distinct characters plus 2)."
        ) from None
    atomic_write(path, model.getvalue())  # a crash never leaves a half-written model
    return path


def encode_lines(tokenizer: spm.SentencePieceProcessor, lines: Sequence[str]) -> np.ndarray:
    """One int32 stream of ids: every line encoded, each followed by `EOL_ID`."""
    pieces = tokenizer.encode(list(lines))
    return np.fromiter((i for ids in pieces for i in (*ids, EOL_ID)), dtype=np.int32, count=-1)


def cut_sequences(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """Non-overlapping windows of `seq_len + 1` ids sharing their boundary token, int32
    `(n, seq_len + 1)`; the leftover tail shorter than a window is dropped."""
    check_at_least("seq_len", seq_len, 1)
    n = (len(stream) - 1) // seq_len
    if n < 1:
        return np.zeros((0, seq_len + 1), np.int32)
    starts = np.arange(n)[:, None] * seq_len
    return np.asarray(stream, np.int32)[starts + np.arange(seq_len + 1)]


def load_text(
    name: str,
    *,
    vocab_size: int = 1024,
    seq_len: int = 32,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    train_shards: int = 1,
    tokenizer_dir: str | os.PathLike | None = None,
) -> TokenizedText:
    """Corpus `name` tokenized with a BPE tokenizer of `vocab_size` pieces trained on its
    training split, as train/dev/test windows of `seq_len` inputs plus the next token.

    Raises:
        ValueError: an unknown name (the valid ones are listed), bad sizes, or a split too
            short to hold one window.
        DatasetNotFoundError: no location holds the corpus (every location tried is listed).
    """
    check_at_least("seq_len", seq_len, 1)
    corpus = read_text_corpus(name, data_dir=data_dir, download=download, train_shards=train_shards)
    path = train_tokenizer(
        corpus.train, vocab_size=vocab_size, name=corpus.name, cache=tokenizer_dir
    )
    spm = optional_import("sentencepiece", "Loading the text tokenizer")  # lazy: see above

    tokenizer = spm.SentencePieceProcessor(model_file=str(path))
    splits = {}
    for split in ("train", "dev", "test"):
        splits[split] = cut_sequences(encode_lines(tokenizer, getattr(corpus, split)), seq_len)
        if len(splits[split]) == 0:
            raise ValueError(
                f"The {split} split of {corpus.name!r} is shorter than one window of "
                f"{seq_len + 1} tokens; use a smaller `seq_len`."
            )
    return TokenizedText(
        name=corpus.name,
        **splits,
        seq_len=seq_len,
        vocab_size=tokenizer.vocab_size(),
        tokenizer=tokenizer,
        tokenizer_path=path,
        source=corpus.source,
    )
