"""The one rule for putting a value into a graph's tensors at run time (API.md §10).

Feeds (``compiler/plan.py``), ``Session.set_variable_value`` and landing assigns
(``compiler/state.py``) all call ``convert_value``:

- the value must be numeric or bool (no strings, objects, ragged lists);
- its dtype must cast to the target dtype with NumPy's ``same_kind`` casting
  (float64 -> float32 and int64 -> int32 are accepted, float -> int is not);
- integer narrowing must be lossless: every value must fit the target dtype
  (no silent wraparound of 2**40 + 5 into an int32);
- its shape must fit the target's static shape (``None`` dims are free), or,
  with ``broadcast=True`` (assigns), broadcast to it.

Every refusal is an ``sg.errors.InvalidArgumentError`` naming ``what`` (e.g.
``"placeholder 'x'"`` or ``"variable 'w'"``) with the expected and given dtype/shape.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .dtypes import lossless_problem
from .errors import InvalidArgumentError
from .shapes import fmt, is_compatible


def convert_value(value: Any, dtype: np.dtype, shape: Optional[Sequence[Optional[int]]], what: str,
                  op=None, broadcast: bool = False, verb: str = "feed") -> np.ndarray:
    """Check ``value`` against ``dtype``/``shape`` and return it as an array of ``dtype``.

    ``what`` names the receiver in errors; ``op`` is attached to the error; ``verb`` says what
    is being done ("feed", "assign", "set"). With ``broadcast``, ``value`` only has to broadcast
    to the fully known ``shape`` and the result has that shape.
    """
    dtype = np.dtype(dtype)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything NumPy cannot take (ragged lists, ...)
        raise InvalidArgumentError(f"cannot {verb} {type(value).__name__} to {what}: {exc}", op) from None
    if arr.dtype != dtype:
        if arr.dtype.kind not in "biuf" or not np.can_cast(arr.dtype, dtype, "same_kind"):
            raise InvalidArgumentError(f"cannot {verb} a value of dtype {arr.dtype.name} to {what}, which has "
                                       f"dtype {dtype.name} (use an array of dtype {dtype.name})", op)
        problem = lossless_problem(arr, dtype) if arr.dtype.kind in "iu" else ""
        if problem:
            raise InvalidArgumentError(f"cannot {verb} this {arr.dtype.name} value to {what} of dtype "
                                       f"{dtype.name}: {problem}", op)
        arr = arr.astype(dtype)
    if broadcast:
        return _broadcast_to(arr, tuple(shape), what, op, verb)
    if not is_compatible(None if shape is None else tuple(shape), arr.shape):
        raise InvalidArgumentError(f"cannot {verb} a value of shape {tuple(arr.shape)} to {what}, which has "
                                   f"shape {fmt(None if shape is None else tuple(shape))}", op)
    return arr


def check_broadcastable(value_shape: tuple, shape: tuple, what: str, op=None, verb: str = "assign") -> None:
    """Raise ``InvalidArgumentError`` naming ``what`` unless ``value_shape`` broadcasts to ``shape``."""
    value_shape, shape = tuple(value_shape), tuple(shape)
    try:
        fits = np.broadcast_shapes(value_shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise InvalidArgumentError(f"cannot {verb} a value of shape {value_shape} to {what}, which has "
                                   f"shape {shape} (the value must broadcast to it)", op)


def _broadcast_to(arr: np.ndarray, shape: tuple, what: str, op, verb: str) -> np.ndarray:
    check_broadcastable(arr.shape, shape, what, op, verb)
    return np.broadcast_to(arr, shape)
