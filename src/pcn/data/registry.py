"""Dataset registry: find a dataset's files by name, read them, return a `Dataset`.

Lookup order for file-based datasets (a location is a directory holding all the files):
  1. the `data_dir` argument (files directly in it, then in `data_dir/<name>/`);
     without it, the PCN_DATA environment variable (`$PCN_DATA/<name>/`, then `$PCN_DATA`);
  2. system locations (the Debian package directory for fashion-mnist, this workplace's
     shared copies of mnist, cifar10-png and tiny-imagenet-val);
  3. the user cache `$XDG_CACHE_HOME/pcn/<name>` (default `~/.cache/pcn/<name>`);
  4. if `download`, a checksummed download into that cache directory.
If all fail, DatasetNotFoundError lists every location tried and how to fix it.
"""

from __future__ import annotations

import http.client
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np

from . import download as _download
from .cifar import find_cifar10_png, find_cifar10_python, read_cifar10_png, read_cifar10_python
from .dataset import Dataset
from .digits import read_digits
from .idx import read_idx
from .image_files import unit_float
from .svhn import TEST_FILE, TRAIN_FILE, find_svhn, read_svhn
from .tiny_imagenet import (
    ZIP,
    find_tiny_imagenet_val,
    read_tiny_imagenet_classes,
    read_tiny_imagenet_val,
)

__all__ = [
    "DEFAULT_DATASET",
    "SYSTEM_DIRS",
    "DatasetNotFoundError",
    "cache_dir",
    "find_text_corpus",
    "list_datasets",
    "list_text_datasets",
    "load",
]

DEFAULT_DATASET = "digits"

# System-wide install locations per dataset, searched after data_dir / PCN_DATA.
# A module-level mapping so tests (and unusual installs) can replace it.
# The project's shared data folder, where this workplace keeps its copies.
_SHARED_DATA = "/work/shared/datasets"
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "/usr/share/datasets/fashion-mnist",
    ),  # apt-get install dataset-fashion-mnist
    "mnist": (f"{_SHARED_DATA}/mnist",),
    "cifar10-png": (f"{_SHARED_DATA}/cifar10-png",),
    "tiny-imagenet-val": (f"{_SHARED_DATA}/tiny-imagenet-200-val",),
    "tiny-shakespeare": (f"{_SHARED_DATA}/tinyshakespeare",),
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DatasetNotFoundError(FileNotFoundError):
    """No location held the dataset's files and none could be downloaded.

    The message lists every location tried, in order, and how to fix it;
    `locations` holds the same (path-or-step, outcome) pairs.
    """

    def __init__(self, message: str, locations: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.locations = locations

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class _Remote:
    """One file to download: published address and md5."""

    url: str
    filename: str
    md5: str


@dataclass(frozen=True)
class _Spec:
    """How to find, read and fetch one dataset."""

    image_shape: tuple[int, ...]
    num_classes: int
    expected: str  # the files a location must hold, for error messages
    find: Callable[[Path], Path | None]  # location -> what to read, or None
    read: Callable[[Path], Arrays]
    remotes: tuple[_Remote, ...] = ()
    class_names: Callable[[Path], tuple[str, ...]] | None = None  # what to read -> names


# --- IDX datasets (MNIST family) ---

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx_file(directory: Path, stem: str) -> Path | None:
    """The gzip file if present, else the uncompressed one, else None."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _find_idx(directory: Path) -> Path | None:
    return directory if all(_idx_file(directory, stem) for stem in _IDX_FILES) else None


_unit_float = unit_float  # uint8 images (N, ...) -> float32 (N, features) in [0, 1]


def _read_idx_pair(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    image_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
    label_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
    assert image_path is not None and label_path is not None  # guaranteed by _find_idx
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{image_path}: expected uint8 (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{label_path}: expected {images.shape[0]} labels to match {image_path.name}, "
            f"got shape {labels.shape}"
        )
    return _unit_float(images), labels.astype(np.int64)


def _read_idx_dataset(directory: Path) -> Arrays:
    return (*_read_idx_pair(directory, "train"), *_read_idx_pair(directory, "t10k"))


def _idx_remotes(base_url: str, md5s: tuple[str, str, str, str]) -> tuple[_Remote, ...]:
    return tuple(
        _Remote(f"{base_url}{stem}.gz", f"{stem}.gz", md5)
        for stem, md5 in zip(_IDX_FILES, md5s, strict=True)
    )


_IDX_EXPECTED = ", ".join(f"{stem}.gz" for stem in _IDX_FILES) + " (or the same without .gz)"

# --- CIFAR-10 ---


def _read_cifar10(source: Path) -> Arrays:
    x_train, y_train, x_test, y_test = read_cifar10_python(source)
    return _unit_float(x_train), y_train, _unit_float(x_test), y_test


def _read_cifar10_png(folder: Path) -> Arrays:
    x_train, y_train, x_test, y_test, classes = read_cifar10_png(folder)
    if len(classes) != 10:
        raise ValueError(f"{folder / 'labels.txt'}: expected 10 class names, got {len(classes)}")
    return _unit_float(x_train), y_train, _unit_float(x_test), y_test


# --- Tiny ImageNet (validation split) and SVHN ---


def _read_tiny_imagenet_val(source: Path) -> Arrays:
    """All 10,000 validation images as the training split; no test split (the release's
    test images are unlabelled)."""
    val = read_tiny_imagenet_val(source)
    if len(val.wnids) != 200:
        raise ValueError(
            f"{source}: wnids.txt lists {len(val.wnids)} classes, not the 200 of Tiny "
            "ImageNet-200; use the original release, or read another class list with "
            "`pcn.data.read_tiny_imagenet_val`."
        )
    x_test = np.zeros((0, val.images.shape[1]), dtype=np.float32)
    return _unit_float(val.images), val.labels, x_test, np.zeros(0, dtype=np.int64)


def _tiny_imagenet_words(source: Path) -> tuple[str, ...]:
    return read_tiny_imagenet_classes(source)[1]


def _read_svhn(directory: Path) -> Arrays:
    x_train, y_train, x_test, y_test = read_svhn(directory)
    return _unit_float(x_train), y_train, _unit_float(x_test), y_test


# --- The registry ---

# md5s as published by torchvision for the original archives (SVHN's .mat files too);
# Tiny ImageNet's zip as the loaders that fetch it publish it (e.g. avalanche's).
_SPECS: dict[str, _Spec] = {
    "mnist": _Spec(
        (28, 28),
        10,
        _IDX_EXPECTED,
        _find_idx,
        _read_idx_dataset,
        _idx_remotes(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        ),
    ),
    "fashion-mnist": _Spec(
        (28, 28),
        10,
        _IDX_EXPECTED,
        _find_idx,
        _read_idx_dataset,
        _idx_remotes(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
    ),
    "kmnist": _Spec(
        (28, 28),
        10,
        _IDX_EXPECTED,
        _find_idx,
        _read_idx_dataset,
        _idx_remotes(
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            (
                "bdb82020997e1d708af4cf47b453dcf7",
                "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7",
                "7320c461ea6c1c855c0b718fb2a4b134",
            ),
        ),
    ),
    "cifar10": _Spec(
        (3, 32, 32),
        10,
        "cifar-10-batches-py/ holding data_batch_1..data_batch_5 and test_batch "
        "(or those six files directly), or cifar-10-python.tar.gz",
        find_cifar10_python,
        _read_cifar10,
        (
            _Remote(
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a",
            ),
        ),
    ),
    "cifar10-png": _Spec(
        (3, 32, 32),
        10,
        "labels.txt, train/<index>_<class>.png and test/<index>_<class>.png "
        "(directly or under cifar/)",
        find_cifar10_png,
        _read_cifar10_png,
    ),
    "tiny-imagenet-val": _Spec(
        (3, 64, 64),
        200,
        "tiny-imagenet-200/ holding wnids.txt, words.txt, val/val_annotations.txt and "
        f"val/images/val_*.JPEG (or those directly), or {ZIP}",
        find_tiny_imagenet_val,
        _read_tiny_imagenet_val,
        (
            _Remote(
                "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                ZIP,
                "90528d7ca1a48142e341f4ef8d21d0de",
            ),
        ),
        class_names=_tiny_imagenet_words,
    ),
    "svhn": _Spec(
        (3, 32, 32),
        10,
        f"{TRAIN_FILE} and {TEST_FILE} (the cropped-digits format)",
        find_svhn,
        _read_svhn,
        tuple(
            _Remote(f"http://ufldl.stanford.edu/housenumbers/{filename}", filename, md5)
            for filename, md5 in (
                (TRAIN_FILE, "e26dedcc434d2e4c54c9b2d4a06d8373"),
                (TEST_FILE, "eb5a983be6a315427106f1b164d9cef3"),
            )
        ),
    ),
}
_EMBEDDED = {"digits": ((8, 8), 10)}


# --- Text corpora (read by `pcn.data.text`) ---


@dataclass(frozen=True)
class _TextSpec:
    """How to find and fetch one text corpus (`find` returns the file or folder to read)."""

    expected: str
    find: Callable[[Path], Path | None]
    remotes: tuple[_Remote, ...] = ()


def _find_file(filename: str) -> Callable[[Path], Path | None]:
    return lambda directory: (directory / filename) if (directory / filename).is_file() else None


_OBW_TRAIN = "training-monolingual.tokenized.shuffled/news.en-00001-of-00100"
_OBW_HELDOUT = (
    "heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050",
    "heldout-monolingual.tokenized.shuffled/news.en.heldout-00001-of-00050",
)


def _find_one_billion_word(directory: Path) -> Path | None:
    """The benchmark's root folder (as unpacked from 1-billion-word-language-modeling-
    benchmark-r13output.tar.gz), directly or one level down."""
    for root in (directory, directory / "1-billion-word-language-modeling-benchmark-r13output"):
        if all((root / f).is_file() for f in (_OBW_TRAIN, *_OBW_HELDOUT)):
            return root
    return None


_TEXT_SPECS: dict[str, _TextSpec] = {
    "tiny-shakespeare": _TextSpec(
        "input.txt (karpathy/char-rnn data/tinyshakespeare/input.txt)",
        _find_file("input.txt"),
        (
            _Remote(
                "https://raw.githubusercontent.com/karpathy/char-rnn/"
                "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                "input.txt",
                "6fb458f1232090904fb40fe944165e91",
            ),
        ),
    ),
    "one-billion-word": _TextSpec(
        "training-monolingual.tokenized.shuffled/news.en-000NN-of-00100 (at least 00001) and "
        "heldout-monolingual.tokenized.shuffled/news.en.heldout-0000{0,1}-of-00050, as unpacked "
        "from 1-billion-word-language-modeling-benchmark-r13output.tar.gz",
        _find_one_billion_word,
    ),
}


def list_text_datasets() -> list[str]:
    """Text corpora accepted by `find_text_corpus` and `pcn.data.load_text`, sorted."""
    return sorted(_TEXT_SPECS)


def list_datasets() -> list[str]:
    """Names accepted by `load`, sorted."""
    return sorted([*_SPECS, *_EMBEDDED])


def cache_dir(name: str) -> Path:
    """Per-user cache directory: $XDG_CACHE_HOME/pcn/<name>, default ~/.cache/pcn/<name>."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "pcn" / name


def _normalise(name: str) -> str:
    """Canonical registry key for `name` (case-insensitive, '_' == '-'), or ValueError."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    if key in _TEXT_SPECS:
        raise ValueError(
            f"{name!r} is a text corpus, not an image dataset; load it with "
            f"`pcn.data.load_text({key!r})`."
        )
    if key not in _SPECS and key not in _EMBEDDED:
        raise ValueError(
            f"unknown dataset {name!r} for setting `dataset`; valid names: "
            f"{', '.join(list_datasets())}"
        )
    return key


def _candidates(name: str, data_dir: str | os.PathLike | None) -> list[tuple[Path | str, str]]:
    """Directories to search, in order, with a label; a str instead of a Path marks a skip."""
    out: list[tuple[Path | str, str]] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        out += [(root, "data_dir argument"), (root / name, "data_dir argument, <name>/ subfolder")]
        out.append(("skipped because data_dir was given", "PCN_DATA environment variable"))
    else:
        env = os.environ.get("PCN_DATA", "")
        if env:
            root = Path(env).expanduser()
            if not root.is_dir():  # a typo would otherwise fall back to another copy unseen
                raise NotADirectoryError(
                    f"PCN_DATA={env} is not a folder (it does not exist, or is a file); point "
                    "it at the folder that holds the datasets, or unset it."
                )
            out += [(root / name, "$PCN_DATA/<name>/"), (root, "$PCN_DATA")]
        else:
            out.append(("not set, skipped", "PCN_DATA environment variable"))
    out += [(Path(path), "system location") for path in SYSTEM_DIRS.get(name, ())]
    out.append((cache_dir(name), "user cache"))
    return out


def _download_all(spec: _Spec | _TextSpec, target: Path) -> str | None:
    """Fetch the files missing from `target`; return None on success, else why it failed.

    Network failures are reported, not raised; ChecksumError propagates.
    """
    for remote in spec.remotes:
        if (target / remote.filename).is_file():
            continue
        try:
            _download.download_file(remote.url, target / remote.filename, remote.md5)
        except (URLError, OSError, http.client.HTTPException) as err:
            return f"download of {remote.url} failed: {err}"
    return None


def _not_found(
    name: str, spec: _Spec | _TextSpec, tried: list[tuple[str, str]]
) -> DatasetNotFoundError:
    lines = [f"dataset {name!r} not found. A location must hold: {spec.expected}.", ""]
    lines.append("Locations tried, in order:")
    lines += [f"  {i}. {where}: {outcome}" for i, (where, outcome) in enumerate(tried, 1)]
    lines += ["", "To fix, do one of:"]
    lines.append(f"  - pass data_dir=<dir> to load(), with the files in <dir> or <dir>/{name}/")
    lines.append(f"  - set PCN_DATA=<dir>, with the files in <dir>/{name}/ or <dir>")
    if name == "fashion-mnist":
        lines.append(
            "  - install the Debian/Ubuntu package: sudo apt-get install dataset-fashion-mnist "
            "(files go to /usr/share/datasets/fashion-mnist)"
        )
    lines.append(f"  - put the files in the cache directory {cache_dir(name)}")
    if spec.remotes:
        lines.append(
            "  - allow the download (download=True, the default) on a machine with network "
            "access; it fetches " + ", ".join(r.url for r in spec.remotes)
        )
    else:
        lines.append("  (no download address is known for this dataset)")
    return DatasetNotFoundError("\n".join(lines), tried)


def _describe_miss(path: Path) -> str:
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    return "some expected files are missing"


def _locate(
    key: str, spec: _Spec | _TextSpec, data_dir: str | os.PathLike | None, download: bool
) -> tuple[Path, str]:
    """What to read for dataset `key` and a description of where it was found, searched
    in the order of the module docstring; DatasetNotFoundError lists every miss."""
    tried: list[tuple[str, str]] = []
    found: tuple[Path, str] | None = None
    for path, label in _candidates(key, data_dir):
        if isinstance(path, str):
            tried.append((label, path))
            continue
        hit = spec.find(path) if path.is_dir() else None
        if hit is not None:
            found = (hit, str(hit))
            break
        tried.append((f"{path} ({label})", _describe_miss(path)))
    if found is None:
        target = cache_dir(key)
        step = f"download into {target}"
        if not spec.remotes:
            tried.append((step, "no download address known"))
        elif not download:
            tried.append((step, "not attempted (download=False)"))
        else:
            failure = _download_all(spec, target)
            hit = spec.find(target) if failure is None else None
            if hit is not None:
                found = (hit, f"{hit} (downloaded from {spec.remotes[0].url.rsplit('/', 1)[0]}/)")
            else:
                tried.append((step, failure or "files still incomplete after download"))
    if found is None:
        raise _not_found(key, spec, tried)
    return found


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load dataset `name` (see `list_datasets`) as a `Dataset`.

    `data_dir` is searched first; see the module docstring for the full lookup order.
    Raises ValueError for an unknown name, DatasetNotFoundError when no location has
    the files, and ChecksumError when a download does not match its published md5.
    """
    key = _normalise(name)
    if key in _EMBEDDED:
        image_shape, num_classes = _EMBEDDED[key]
        x_train, y_train, x_test, y_test = read_digits()
        return Dataset(
            name=key,
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            image_shape=image_shape,
            num_classes=num_classes,
            source="scikit-learn bundled load_digits (seeded stratified split)",
        )
    hit, source = _locate(key, _SPECS[key], data_dir, download)
    spec = _SPECS[key]
    x_train, y_train, x_test, y_test = spec.read(hit)
    class_names = spec.class_names(hit) if spec.class_names is not None else ()
    if math.prod(spec.image_shape) != x_train.shape[1]:
        raise ValueError(
            f"{source}: examples have {x_train.shape[1]} values, not {spec.image_shape}"
        )
    return Dataset(
        name=key,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=spec.image_shape,
        num_classes=spec.num_classes,
        source=source,
        class_names=class_names,
    )


def find_text_corpus(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[str, Path, str]:
    """Locate text corpus `name` (see `list_text_datasets`) in the lookup order of
    `load`; return its canonical name, the file or folder to read, and where it was found.

    Raises ValueError for an unknown name, DatasetNotFoundError when no location has it.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    if key not in _TEXT_SPECS:
        raise ValueError(
            f"unknown text corpus {name!r}; valid names: {', '.join(list_text_datasets())}"
        )
    path, source = _locate(key, _TEXT_SPECS[key], data_dir, download)
    return key, path, source
