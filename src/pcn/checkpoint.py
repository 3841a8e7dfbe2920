"""Checkpoints: the arrays of any pytree plus JSON metadata in one file, written atomically.

A checkpoint holds the array leaves of a pytree (an equinox model, an optax state, a
`TrainState`, a tuple of them) with their exact dtypes (float64, int32, bfloat16, typed
PRNG keys, ...) and a JSON dict of metadata (step, epoch, config). Loading needs a `like`
tree of the same structure (e.g. a freshly built state): the file stores data, not code,
so the tree's structure and its non-array leaves (activation functions, Python settings)
come from `like`.

File layout (all integers little-endian)::

    b"PCNCKPT\\n"               8 bytes, identifies the file
    format version             uint32
    header length              uint64
    header                     UTF-8 JSON: metadata and, per leaf, path/kind/dtype/shape/offset
    payload                    the leaves' bytes, C order, little-endian
    SHA-256                    32 bytes, of everything before it

The checksum makes a truncated or damaged file fail loudly instead of loading garbage.
Writing goes through `pcn.files.atomic_write` (a temporary file in the target's folder,
flushed, fsynced, given the umask's mode and renamed over the target), so a crash at any
point leaves either the old checkpoint or the new one, never a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from .files import atomic_write

__all__ = [
    "CHECKPOINT_SUFFIX",
    "FORMAT_VERSION",
    "checkpoint_path",
    "latest_checkpoint",
    "step_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

T = TypeVar("T")

FORMAT_VERSION = 1
"""Version of the file layout; bumped on any change a version-1 reader could misread."""

CHECKPOINT_SUFFIX = ".ckpt"

_MAGIC = b"PCNCKPT\n"
_PREFIX = struct.Struct("<IQ")  # format version, header length
_DIGEST_SIZE = hashlib.sha256().digest_size
_STEP_NAME = re.compile(r"step-(\d+)" + re.escape(CHECKPOINT_SUFFIX))
_CHUNK = 1 << 24  # bytes written per call, so huge leaves are not copied whole


# ----------------------------------------------------------------------------- leaves


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray | np.generic)


def _is_key(dtype: Any) -> bool:
    return jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _dtype_name(dtype: Any) -> str:
    """`float32`, `bfloat16`, `key<fry>`: the name of a dtype whatever its byte order."""
    return str(dtype) if _is_key(dtype) else np.dtype(dtype).name


def _storable(dtype: np.dtype) -> bool:
    """Whether arrays of `dtype` are plain bytes that its name alone brings back: numbers,
    bool, bfloat16 and other ml_dtypes; not strings, objects or structured records."""
    if dtype.hasobject:
        return False
    try:
        return jnp.dtype(dtype.name) == dtype.newbyteorder("=")
    except TypeError:
        return False


def _describe(leaf: Any) -> str:
    """`float32[8,4]` for an array (or shape spec), the type name for anything else."""
    if _is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct):
        return f"{_dtype_name(leaf.dtype)}[{','.join(map(str, leaf.shape))}]"
    return type(leaf).__name__


def _host_data(leaf: jax.Array | np.ndarray | np.generic) -> tuple[np.ndarray, dict[str, Any]]:
    """The bytes-ready numpy array of one leaf and its header entry (without offset)."""
    if _is_key(leaf.dtype):
        # typed PRNG keys have no numpy dtype: store their raw uint32 data and the impl
        key = cast(jax.Array, leaf)
        data = np.asarray(jax.random.key_data(key))
        impl = str(jax.random.key_impl(key))
        entry: dict[str, Any] = {"kind": "key", "dtype": _dtype_name(leaf.dtype), "impl": impl}
    else:
        data = np.asarray(leaf)
        if not _storable(data.dtype):
            raise TypeError(
                f"an array of dtype {data.dtype} cannot be checkpointed (only numeric, bool "
                "and PRNG key arrays can); keep strings and objects in `metadata`."
            )
        entry = {"kind": "array", "dtype": _dtype_name(data.dtype)}
    # (not np.ascontiguousarray: it turns 0-d arrays into 1-d ones)
    data = np.asarray(data.astype(data.dtype.newbyteorder("<"), copy=False), order="C")
    entry.update(
        shape=list(leaf.shape),
        data_dtype=data.dtype.name,
        data_shape=list(data.shape),
        nbytes=data.nbytes,
    )
    return data, entry


def _leaf_paths(tree: Any) -> tuple[list[str], list[Any], Any]:
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [jax.tree_util.keystr(p) or "<root>" for p, _ in path_leaves]
    return paths, [leaf for _, leaf in path_leaves], treedef


# ----------------------------------------------------------------------------- saving


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / jax scalars and small arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_payload(f: BinaryIO, arrays: list[np.ndarray], digest: Any) -> None:
    """Append every array's bytes to `f`, feeding them to `digest` too."""
    for data in arrays:
        view = data.reshape(-1).view(np.uint8).data
        for start in range(0, len(view), _CHUNK):
            chunk = view[start : start + _CHUNK]
            digest.update(chunk)
            f.write(chunk)


def save_checkpoint(path: str | os.PathLike, tree: Any, *, metadata: dict | None = None) -> Path:
    """Atomically write the array leaves of `tree` and the JSON dict `metadata` to `path`.

    Non-array leaves (functions, Python numbers and strings) are not stored: on loading
    they come from `like`; keep counters such as the step in `metadata`. Parent folders
    are created. If anything fails, the temporary file is removed and an existing
    checkpoint at `path` is left untouched. Returns `path` as a `Path`.
    """
    path = Path(path)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"`metadata` must be a dict or None, got {type(metadata).__name__}.")
    try:
        metadata_json = json.loads(json.dumps(metadata, default=_json_default))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`metadata` must be JSON serialisable (dicts, lists, str, numbers): {error}."
        ) from error

    paths, leaves, _ = _leaf_paths(tree)
    arrays, entries, offset = [], [], 0
    for index, (leaf_path, leaf) in enumerate(zip(paths, leaves, strict=True)):
        entry: dict[str, Any] = {"path": leaf_path}
        if _is_array(leaf):
            try:
                data, array_entry = _host_data(leaf)
            except TypeError as error:
                raise TypeError(f"Leaf {index} ({leaf_path}): {error}") from error
            entry.update(array_entry, offset=offset)
            arrays.append(data)
            offset += data.nbytes
        else:
            entry.update(kind="static", type=type(leaf).__name__)
        entries.append(entry)

    header = json.dumps(
        {
            "format": "pcn-checkpoint",
            "format_version": FORMAT_VERSION,
            "metadata": metadata_json,
            "leaves": entries,
            "payload_nbytes": offset,
        },
        separators=(",", ":"),
    ).encode()
    head = _MAGIC + _PREFIX.pack(FORMAT_VERSION, len(header)) + header

    def write(f: BinaryIO) -> None:
        digest = hashlib.sha256(head)
        f.write(head)
        _write_payload(f, arrays, digest)
        f.write(digest.digest())

    return atomic_write(path, write)


# ----------------------------------------------------------------------------- loading


def _read(path: Path) -> tuple[dict[str, Any], memoryview]:
    """The verified header and payload of the checkpoint at `path`."""
    if not path.exists():
        raise FileNotFoundError(
            f"No checkpoint at {path}. Check the path, or use `latest_checkpoint(directory)` "
            "to find the newest one (it returns None when there is none yet)."
        )
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a directory; pass a checkpoint file, e.g. `latest_checkpoint({path})`."
        )
    raw = memoryview(path.read_bytes())
    fixed = len(_MAGIC) + _PREFIX.size
    if bytes(raw[: len(_MAGIC)]) != _MAGIC:
        if len(raw) < len(_MAGIC) and _MAGIC.startswith(bytes(raw)):
            raise ValueError(f"{path} is truncated ({len(raw)} bytes); it cannot be loaded.")
        raise ValueError(
            f"{path} is not a pcn checkpoint (it does not start with {_MAGIC!r}); "
            "write checkpoints with `pcn.save_checkpoint`."
        )
    if len(raw) < fixed:
        raise ValueError(f"{path} is truncated ({len(raw)} bytes); it cannot be loaded.")
    version, header_nbytes = _PREFIX.unpack(raw[len(_MAGIC) : fixed])
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {version}, but this pcn reads versions "
            f"up to {FORMAT_VERSION}; upgrade pcn to load it."
        )
    if len(raw) < fixed + header_nbytes + _DIGEST_SIZE:
        raise ValueError(
            f"{path} is truncated ({len(raw)} bytes, its header alone needs "
            f"{fixed + header_nbytes + _DIGEST_SIZE}); it cannot be loaded."
        )
    try:
        header = json.loads(bytes(raw[fixed : fixed + header_nbytes]))
        payload_nbytes = int(header["payload_nbytes"])
        if not isinstance(header["leaves"], list) or not isinstance(header["metadata"], dict):
            raise TypeError("`leaves` must be a list and `metadata` a dict")
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is corrupt: its header cannot be read ({error}).") from error
    expected = fixed + header_nbytes + payload_nbytes + _DIGEST_SIZE
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "corrupt (it has trailing bytes)"
        raise ValueError(
            f"{path} is {problem}: {len(raw)} bytes where its header says {expected}; "
            "it cannot be loaded."
        )
    body = raw[: expected - _DIGEST_SIZE]
    if hashlib.sha256(body).digest() != bytes(raw[expected - _DIGEST_SIZE :]):
        raise ValueError(
            f"{path} is corrupt: its checksum does not match its content; "
            "load an earlier checkpoint instead."
        )
    return header, raw[fixed + header_nbytes : expected - _DIGEST_SIZE]


def _mismatch(path: Path, index: int, leaf_path: str, problem: str) -> ValueError:
    return ValueError(
        f"Checkpoint {path} does not match `like` at leaf {index} ({leaf_path}): {problem}. "
        "Build `like` exactly as the saved tree was built (same model sizes, optimiser, "
        "dtypes and jax_enable_x64 setting)."
    )


def _restore(path: Path, index: int, entry: dict[str, Any], like: Any, payload: memoryview):
    """Leaf `index` read from `payload`, checked against and placed like `like`."""
    leaf_path = entry["path"]
    like_is_array = _is_array(like) or isinstance(like, jax.ShapeDtypeStruct)
    if entry["kind"] == "static":
        if like_is_array:
            raise _mismatch(
                path,
                index,
                leaf_path,
                f"saved a {entry['type']}, `like` has an array {_describe(like)}",
            )
        return like
    saved = f"{entry['dtype']}[{','.join(map(str, entry['shape']))}]"
    if not like_is_array:
        raise _mismatch(
            path, index, leaf_path, f"saved an array {saved}, `like` has a {type(like).__name__}"
        )
    if tuple(entry["shape"]) != tuple(like.shape) or entry["dtype"] != _dtype_name(like.dtype):
        raise _mismatch(path, index, leaf_path, f"saved {saved}, `like` has {_describe(like)}")

    dtype = jnp.dtype(entry["data_dtype"]).newbyteorder("<")
    offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
    data = np.frombuffer(payload[offset : offset + nbytes], dtype=dtype)
    # a copy in native byte order: the result must not keep the whole file's buffer alive
    data = data.astype(dtype.newbyteorder("="), copy=True).reshape(entry["data_shape"])
    if entry["kind"] == "key":
        value = jax.random.wrap_key_data(jnp.asarray(data), impl=entry["impl"])
    elif isinstance(like, np.ndarray):
        return data
    elif isinstance(like, np.generic):
        return data[()]
    else:
        value = data
    sharding = getattr(like, "sharding", None)
    return jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value)


def load_checkpoint(path: str | os.PathLike, like: T) -> tuple[T, dict[str, Any]]:
    """Read the checkpoint at `path` into a tree shaped like `like`; returns it and the metadata.

    `like` is a tree of the saved structure (e.g. `step.init(graph)` of a freshly built
    model); its array leaves (or `jax.ShapeDtypeStruct`s) fix the expected shapes, dtypes
    and device placement, its non-array leaves are returned as they are. Raises
    `FileNotFoundError` for a missing file and `ValueError` for a file that is not a pcn
    checkpoint, is truncated or corrupt, or does not match `like`.
    """
    path = Path(path)
    header, payload = _read(path)
    paths, like_leaves, treedef = _leaf_paths(like)
    entries = header["leaves"]
    if len(entries) != len(like_leaves):
        raise ValueError(
            f"Checkpoint {path} holds a tree with {len(entries)} leaves but `like` has "
            f"{len(like_leaves)}; build `like` the way the saved tree was built (same model, "
            "same optimiser)."
        )
    leaves = []
    for index, (entry, like_path, like_leaf) in enumerate(
        zip(entries, paths, like_leaves, strict=True)
    ):
        if entry["path"] != like_path:
            raise _mismatch(path, index, entry["path"], f"`like` has {like_path} there")
        leaves.append(_restore(path, index, entry, like_leaf, payload))
    return jax.tree_util.tree_unflatten(treedef, leaves), header["metadata"]


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of the checkpoint at `path`, after verifying the whole file (so a
    corrupt or truncated checkpoint raises `ValueError` here, as in `load_checkpoint`)."""
    header, _ = _read(Path(path))
    return header["metadata"]


# ----------------------------------------------------------------------------- resuming


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    """The conventional file for the checkpoint at `step`: `directory/step-000120.ckpt`."""
    if not isinstance(step, int | np.integer) or isinstance(step, bool) or step < 0:
        raise ValueError(f"`step` must be an integer >= 0, got {step!r}.")
    return Path(directory) / f"step-{int(step):06d}{CHECKPOINT_SUFFIX}"


def step_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The `checkpoint_path` files in `directory`, by step (by number, not by name);
    empty when there is none yet (or no such folder)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _STEP_NAME.fullmatch(child.name)
        if match and child.is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint in `directory` with the highest step (by number, not by name), or
    None when there is none yet (or no such folder), so a run can resume or start fresh."""
    paths = step_checkpoints(directory)
    return paths[-1] if paths else None
