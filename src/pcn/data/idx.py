"""Reader for the IDX file format used by MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order.
Files may be gzip-compressed; compression is detected from the content, not the name.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]

# Type code (third magic byte) -> big-endian numpy dtype, as in the IDX specification.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed) bytes of `path`, gunzipping when it starts with the gzip magic."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(
                f"IDX file {path} looks gzip-compressed but is corrupt: {err}"
            ) from err
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array with its native-endian dtype.

    Raises ValueError naming the file when the magic number, type code or size is wrong,
    so a truncated download or a wrong file is reported instead of silently misread.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path} is not an IDX file: only {len(data)} bytes, need a 4-byte magic")
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: bad magic number 0x{data[:4].hex()} "
            f"(expected 0x0000TTDD with type TT in "
            f"{', '.join(f'0x{code:02x}' for code in _IDX_DTYPES)})"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"IDX file {path} is truncated inside its header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        raise ValueError(
            f"IDX file {path} has {actual} data bytes but its header {shape} needs {expected}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=True)
