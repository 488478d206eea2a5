"""``TransposedMatMul``: a matmul that reads operands transposed in their last two axes, and the
``simplify`` rules that make it from ``MatMul(Transpose(x), y)`` and ``Transpose(MatMul(x, y))``.

Gradients of ``MatMul`` are matmuls of transposes (``g @ swap(b)``, ``swap(a) @ g``). A backend
with a BLAS reads a transposed operand in place (a transpose flag), so the rule folds a
``Transpose`` that swaps exactly the last two axes of a matmul operand into the flags; ``dce``
then drops the ``Transpose`` when nothing else reads it. The op is compiler-internal (made by a
pass, never differentiated): attrs ``transpose_a``/``transpose_b`` say which stored operand is
read as its swap of the last two axes, so the value is ``matmul(swap(a) if transpose_a else a,
swap(b) if transpose_b else b)``; a transposed operand has rank >= 2.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from staticgraph.graph import Operation
from staticgraph.ops.core import def_op
from staticgraph.opdef import get_opdef
from staticgraph.tensor import Tensor

from .rewrite import Program, Rewrite


class _Swapped:
    """A stand-in tensor for inference: ``t``'s static type with the last two axes swapped."""

    def __init__(self, t: Tensor):
        s = t.shape
        self.shape = None if s is None else s[:-2] + (s[-1], s[-2])
        self.dtype, self.name = t.dtype, t.name
        self.ndim = None if s is None else len(s)


def _swap(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _check_rank(t: Tensor, flag: str) -> None:
    if t.shape is not None and len(t.shape) < 2:
        raise ValueError(f"TransposedMatMul: {flag} needs an operand of rank >= 2, '{t.name}' has shape {t.shape}")


def _infer(a, b, transpose_a: bool, transpose_b: bool):
    if transpose_a:
        _check_rank(a, "transpose_a")
    if transpose_b:
        _check_rank(b, "transpose_b")
    return get_opdef("MatMul").infer(_Swapped(a) if transpose_a else a, _Swapped(b) if transpose_b else b)


def _reference(a, b, transpose_a: bool, transpose_b: bool):
    return np.matmul(_swap(a) if transpose_a else a, _swap(b) if transpose_b else b)


def_op("TransposedMatMul", _infer, _reference, None, default_name="matmul_t")

MATMULS = frozenset({"MatMul", "TransposedMatMul"})


def _swaps_last_two(op: Operation) -> bool:
    """Is ``op`` a Transpose exchanging exactly the last two axes of an operand of rank >= 2?"""
    if op.type != "Transpose":
        return False
    x = op.inputs[0]
    if x.shape is None or len(x.shape) < 2:
        return False
    n = len(x.shape)
    perm = op.attrs["perm"]
    perm = tuple(range(n))[::-1] if perm is None else tuple(perm)
    return perm == tuple(range(n - 2)) + (n - 1, n - 2)


def absorb_transposes(prog: Program, op: Operation) -> Optional[Operation]:
    """``MatMul``/``TransposedMatMul`` reading a last-two-axes ``Transpose`` (not pinned: not fed,
    no control inputs) -> a ``TransposedMatMul`` reading the transpose's input with the flag
    toggled; else None."""
    flags = [bool(op.attrs.get("transpose_a", False)), bool(op.attrs.get("transpose_b", False))]
    inputs = list(op.inputs)
    changed = False
    for i, t in enumerate(op.inputs):
        if not prog.pinned(t.op) and t.shape is not None and len(t.shape) >= 2 and _swaps_last_two(t.op):
            inputs[i] = t.op.inputs[0]
            flags[i] = not flags[i]
            changed = True
    if not changed:
        return None
    attrs = {"transpose_a": flags[0], "transpose_b": flags[1]}
    return prog.new_op("TransposedMatMul", inputs, attrs, like=op, name=f"{op.name}/transposed",
                       out_specs=[(t.shape, t.dtype) for t in op.outputs])


def fold_output_transposes(prog: Program) -> int:
    """``Transpose(matmul(a, b))`` of the last two axes -> ``TransposedMatMul(b, a)`` with the
    flags swapped and toggled (``swap(a @ b) = swap(b) @ swap(a)``), when the transpose is the
    matmul's only reader (so ``dce`` drops the matmul). Returns the number of rewrites."""
    uses: Dict[Tensor, int] = {}
    for t in [t for op in prog.ops for t in op.inputs] + list(prog.fetches):
        uses[t] = uses.get(t, 0) + 1

    def visit(op: Operation) -> Rewrite:
        if op.type != "Transpose" or prog.pinned(op) or not _swaps_last_two(op):
            return None
        y = op.inputs[0]
        mm = y.op
        if mm.type not in MATMULS or prog.pinned(mm) or y in prog.fed or uses.get(y, 0) != 1:
            return None
        a, b = mm.inputs
        if any(t.shape is None or len(t.shape) < 2 for t in (a, b)):
            return None
        attrs = {"transpose_a": not mm.attrs.get("transpose_b", False),
                 "transpose_b": not mm.attrs.get("transpose_a", False)}
        new = prog.new_op("TransposedMatMul", [b, a], attrs, like=op, name=f"{op.name}/matmul",
                          out_specs=[(t.shape, t.dtype) for t in op.outputs])
        return (new,), new.outputs
    return prog.sweep(visit)
