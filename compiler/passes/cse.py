"""Common-subexpression elimination by structural hashing.

Two ops are the same computation when they have the same type, the same input
tensors (after earlier merges; in either order for commutative ops) and equal
canonical attributes. Attribute values canonicalise by type and bits: arrays by
dtype, shape and bytes; floats by their IEEE bytes (so ``0.0`` and ``-0.0``
differ and NaNs of one payload merge); bools never equal ints. The first op of
each class (in program order) survives, so the result is deterministic.
"""
from __future__ import annotations

import struct
from typing import Dict, Hashable

import numpy as np

from staticgraph.graph import Operation
from staticgraph.tensor import Tensor

from .rewrite import Program, Rewrite

COMMUTATIVE = frozenset({"Add", "Mul", "Maximum", "Minimum", "Equal", "NotEqual"})


class _Opaque(Exception):
    """An attribute value with no canonical form: the op is never merged."""


def cse(prog: Program) -> int:
    """Merge structurally equal ops into their first occurrence; returns the number merged."""
    seen: Dict[Hashable, Operation] = {}
    numbers: Dict[Tensor, int] = {}

    def number(t: Tensor) -> int:
        return numbers.setdefault(t, len(numbers))

    def visit(op: Operation) -> Rewrite:
        if prog.pinned(op):
            return None
        inputs = tuple(number(t) for t in op.inputs)
        if op.type in COMMUTATIVE:
            inputs = tuple(sorted(inputs))
        try:
            key = (op.type, inputs, canonical(op.attrs))
        except _Opaque:
            return None
        first = seen.setdefault(key, op)
        if first is op:
            return None
        return (), first.outputs
    return prog.sweep(visit)


def canonical(value) -> Hashable:
    """A hashable form of an attribute value that is equal exactly when the values are."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    raise _Opaque(type(value).__name__)
