"""Data types: staticgraph dtypes are NumPy dtype objects.

``sg.float32`` *is* ``numpy.dtype("float32")``, so NumPy dtypes, their scalar
types and dtype strings are accepted wherever a dtype is.
"""
from __future__ import annotations

from typing import Any

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED = (float32, float64, int32, int64, bool_)


def as_dtype(dtype: Any) -> np.dtype:
    """Normalise a dtype-like (``sg.float32``, ``np.int64``, ``"float32"``) to a supported dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"not a dtype: {dtype!r}") from exc
    if dt not in SUPPORTED:
        names = ", ".join(d.name for d in SUPPORTED)
        raise TypeError(f"unsupported dtype {dt.name}; staticgraph supports {names}")
    return dt


def is_floating(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_integer(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def dtype_of_value(value: Any) -> np.dtype:
    """The dtype a value takes when it enters the graph (API.md §10).

    Python floats and float64 arrays become float32; Python ints int64;
    bools bool; other NumPy arrays keep their dtype.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return float32
    arr = np.asarray(value)
    if arr.dtype == float64 or arr.dtype.kind == "f" and arr.dtype not in SUPPORTED:
        return float32
    if arr.dtype.kind == "i" and arr.dtype not in SUPPORTED:
        return int64
    if arr.dtype.kind == "u":
        return int64
    if arr.dtype == object:
        raise TypeError(f"cannot make a tensor from {value!r}")
    return as_dtype(arr.dtype)


def lossless_problem(arr: np.ndarray, dtype: np.dtype) -> str:
    """Why converting ``arr`` to integer ``dtype`` would change values ("" when it would not):
    non-integral floats, or integers out of the dtype's range (no silent wraparound)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or arr.size == 0 or arr.dtype.kind not in "biuf":
        return ""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        return f"it holds non-integer values (e.g. {arr[~(np.isfinite(arr) & (arr == np.round(arr)))].flat[0]!r})"
    info = np.iinfo(dtype)
    lo, hi = arr.min(), arr.max()
    if lo < info.min or hi > info.max:
        return f"its values [{lo}, {hi}] do not fit {dtype.name} [{info.min}, {info.max}]"
    return ""
