"""The IDX file format of MNIST: read and write unsigned-byte IDX files, plain or gzip.

An IDX file is a big-endian header, ``0x00 0x00 <dtype byte> <ndim>`` then
``ndim`` 32-bit dimensions, followed by the values in C order. MNIST uses
dtype ``0x08`` (unsigned byte): magic 2051 (``0x00000803``) for image files
(N × rows × cols) and 2049 (``0x00000801``) for label files (N).

Every error is an :class:`IDXError` (a ``ValueError``) naming the file and
what is wrong with it.
"""
from __future__ import annotations

import gzip
import os
import zlib
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UBYTE = 0x08
_DTYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
                0x0D: "float32", 0x0E: "float64"}


class IDXError(ValueError):
    """A file is not a valid IDX file of the expected kind (the message names the file)."""


def _read_bytes(path: PathLike) -> bytes:
    """The file's content, gunzipped when its name ends in ``.gz``."""
    if not str(path).endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path: PathLike, magic: int) -> np.ndarray:
    """The unsigned-byte array stored in the IDX file ``path`` (``.gz`` or plain).

    ``magic`` is the expected magic number (2051 for images, 2049 for labels);
    it fixes the number of dimensions. The header, the dtype byte, and the file
    size against the dimensions (truncated or trailing data) are all checked.
    """
    data = _read_bytes(path)
    ndim = magic & 0xFF
    kind = {IMAGES_MAGIC: "image", LABELS_MAGIC: "label"}.get(magic, "IDX")
    if len(data) < 4:
        raise IDXError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise IDXError(f"{path}: bad magic number {found} (0x{found:08x}); expected {magic} "
                       f"(0x{magic:08x}) for an IDX {kind} file: not an IDX file")
    if data[2] != UBYTE:
        name = _DTYPE_NAMES.get(data[2], "unknown")
        raise IDXError(f"{path}: bad magic number {found} (0x{found:08x}): dtype byte 0x{data[2]:02x} "
                       f"({name}), expected 0x08 (unsigned byte) as in magic {magic}")
    if data[3] != ndim:
        raise IDXError(f"{path}: bad magic number {found} (0x{found:08x}): {data[3]} dimensions, "
                       f"expected {ndim} as in magic {magic} (an IDX {kind} file)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated: {len(data)} bytes, the header alone needs {header}")
    dims = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    shape = " x ".join(map(str, dims))
    if len(data) < expected:
        raise IDXError(f"{path}: truncated: {len(data)} bytes, expected {expected} for dimensions {shape}")
    if len(data) > expected:
        raise IDXError(f"{path}: {len(data) - expected} unexpected trailing bytes after the "
                       f"{expected} that dimensions {shape} need")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write a uint8 ``array`` (1-D labels or 3-D images) as an IDX file; gzip if ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx({path}): the array must be uint8, got {array.dtype}")
    if array.ndim not in (1, 3):
        raise ValueError(f"write_idx({path}): expected 1-D labels or 3-D images, got shape {array.shape}")
    content = bytes([0, 0, UBYTE, array.ndim])
    content += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    content += np.ascontiguousarray(array).tobytes()
    if str(path).endswith(".gz"):
        content = gzip.compress(content)
    with open(path, "wb") as f:
        f.write(content)
