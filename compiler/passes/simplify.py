"""Algebraic simplification: rewrites that provably keep every value, shape and dtype.

- ``x*1``, ``1*x``, ``x+0``, ``0+x``, ``x-0``, ``x/1`` -> ``x`` when the constant does not
  broadcast ``x`` to a bigger shape (the static result shape equals ``x``'s);
- ``Identity``/``StopGradient`` -> their input (forward identities), ``Neg(Neg(x))`` -> ``x``,
  ``Cast`` to ``x``'s own dtype -> ``x``;
- ``Transpose(Transpose(x, p), q)`` -> one transpose with the composed permutation (or ``x``);
  a transpose by the identity permutation -> ``x``;
- reshape chains: ``Reshape``/``ReshapeLike`` of a ``Reshape``/``ReshapeLike`` read ``x`` directly;
  a reshape to ``x``'s own (provably equal) shape -> ``x``;
- ``BroadcastLike(x, ref)`` and ``SumToLike(x, ref)`` -> ``x`` when ``x`` and ``ref`` provably
  have the same run-time shape, which also removes ``SumToLike(BroadcastLike(x, ref), x)`` pairs
  that are provably ``x`` (never ones that broadcast: those sum copies); a broadcasting op
  reads ``x`` instead of ``BroadcastLike(x, ref)`` when another operand provably has ``ref``'s shape;
- ``MatMul(Transpose(x), y)`` with a transpose of the last two axes -> ``TransposedMatMul``
  reading ``x`` with a transpose flag (see ``transposed_matmul.py``; ``dce`` drops the
  transpose when nothing else reads it); ``Transpose(MatMul(x, y))`` of the last two axes, as
  the matmul's only reader -> ``TransposedMatMul(y, x)`` (a second sweep);
- ``assign(var, var - x)`` -> ``assign_sub(var, x)``, ``var + x`` -> ``assign_add`` (one pass over
  the variable instead of a difference and a copy; see ``update_in_place.py``).

Shapes are "provably equal" when both are fully known and equal, or when both follow from one
source tensor through shape-preserving ops (see ``ShapeSources``). ``x + 0`` -> ``x`` can turn a
result of ``+0.0`` into ``-0.0`` where ``x`` is ``-0.0``; every other rewrite is exact.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from staticgraph.graph import Operation
from staticgraph.opdef import get_opdef
from staticgraph.shapes import num_elements
from staticgraph.tensor import Tensor

from .rewrite import Program, Rewrite
from .transposed_matmul import MATMULS, absorb_transposes, fold_output_transposes
from .update_in_place import update_in_place

UNARY_ELEMENTWISE = frozenset({"Neg", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "Sqrt", "Square", "Abs",
                               "Sign", "Relu", "Identity", "StopGradient", "Cast", "FillLike"})
BROADCASTING = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Maximum", "Minimum", "Less", "LessEqual",
                          "Greater", "GreaterEqual", "Equal", "NotEqual", "Where"})
SHAPE_FROM_REF = frozenset({"BroadcastLike", "SumToLike", "ReshapeLike"})
# backward ops shaped like a shape-only input: op type -> its position
SHAPED_LIKE = {"MaxPoolGrad": 2, "AvgPoolGrad": 1, "ConvBackpropInput": 2, "ConvBackpropFilter": 2}
RESHAPES = frozenset({"Reshape", "ReshapeLike"})

# (op type, operand position of x, the neutral constant)
NEUTRAL = {("Mul", 0): 1, ("Mul", 1): 1, ("Add", 0): 0, ("Add", 1): 0, ("Sub", 0): 0, ("Div", 0): 1}


def simplify(prog: Program) -> int:
    """Apply the rewrites above in one ordered sweep; returns the number of ops rewritten."""
    shapes = ShapeSources(prog)

    def visit(op: Operation) -> Rewrite:
        rewrite = _simplify(prog, shapes, op)
        for kept in ([op] if rewrite is None else rewrite[0]):
            shapes.record(kept)
        return rewrite
    return prog.sweep(visit) + fold_output_transposes(prog) + update_in_place(prog)


def _simplify(prog: Program, shapes: "ShapeSources", op: Operation) -> Rewrite:
    if prog.pinned(op):
        return None
    rule = _RULES.get(op.type)
    result = None if rule is None else rule(prog, shapes, op)
    if result is None and op.type in BROADCASTING:
        result = _unbroadcast(prog, shapes, op)
        rule = _RULES.get(result.type) if result is not None else None
        if rule is not None:      # Mul(BroadcastLike(1, y), y) -> Mul(1, y) -> y, in one sweep
            again = rule(prog, shapes, result)
            result = result if again is None else again
    if result is None:
        return None
    if isinstance(result, Tensor):
        return (), (result,)
    return (result,), result.outputs


def _replacement(prog: Program, op: Operation, op_type: str, inputs, attrs: dict, suffix: str):
    """A new op computing ``op``'s value; it keeps ``op``'s static output types (the values are
    equal, and inference from the new inputs may know less). None if the op does not infer."""
    try:
        get_opdef(op_type).infer(*inputs, **attrs)
    except (ValueError, TypeError):
        return None
    return prog.new_op(op_type, inputs, attrs, like=op, name=f"{op.name}/{suffix}",
                       out_specs=[(t.shape, t.dtype) for t in op.outputs])


def _same(op: Operation, x: Tensor) -> Optional[Tensor]:
    """``x`` if it may stand for ``op``'s output (same dtype, same static rank)."""
    out = op.outputs[0]
    if x.dtype != out.dtype or x.shape is None or out.shape is None or len(x.shape) != len(out.shape):
        return None
    return x


def _neutral(prog: Program, shapes: "ShapeSources", op: Operation):
    out = op.outputs[0]
    for pos in (0, 1):
        want = NEUTRAL.get((op.type, pos))
        if want is None:
            continue
        x, c = op.inputs[pos], op.inputs[1 - pos]
        value = prog.const_value(c)
        # a constant operand has a fully known shape, so equal static shapes prove x is not broadcast
        if value is not None and x.shape == out.shape and value.size and np.all(value == want):
            return _same(op, x)
    return None


def _forward_identity(prog: Program, shapes: "ShapeSources", op: Operation):
    return _same(op, op.inputs[0])


def _double_negation(prog: Program, shapes: "ShapeSources", op: Operation):
    x = op.inputs[0]
    if x.op.type == "Neg" and x not in prog.fed:
        return _same(op, x.op.inputs[0])
    return None


def _cast(prog: Program, shapes: "ShapeSources", op: Operation):
    x = op.inputs[0]
    return _same(op, x) if x.dtype == op.attrs["dtype"] else None


def _perm(perm, ndim: int) -> Tuple[int, ...]:
    return tuple(range(ndim))[::-1] if perm is None else tuple(perm)


def _transpose(prog: Program, shapes: "ShapeSources", op: Operation):
    x = op.inputs[0]
    if x.shape is None:
        return None
    outer = _perm(op.attrs["perm"], len(x.shape))
    if x.op.type == "Transpose" and x not in prog.fed and x.op.inputs[0].shape is not None:
        inner = _perm(x.op.attrs["perm"], len(x.shape))
        x = x.op.inputs[0]
        composed = tuple(inner[i] for i in outer)
        if composed != tuple(range(len(composed))):
            return _replacement(prog, op, "Transpose", [x], {"perm": composed}, "composed")
        return _same(op, x)
    if outer == tuple(range(len(outer))):
        return _same(op, x)
    return None


def _reshape(prog: Program, shapes: "ShapeSources", op: Operation):
    x = op.inputs[0]
    if shapes.same(x, op.inputs[1] if op.type == "ReshapeLike" else op.outputs[0]):
        return _same(op, x)
    if x.op.type in RESHAPES and x not in prog.fed:
        inputs = [x.op.inputs[0]] + list(op.inputs[1:])
        return _replacement(prog, op, op.type, inputs, op.attrs, "direct")
    return None


def _unbroadcast(prog: Program, shapes: "ShapeSources", op: Operation):
    """A broadcasting op reads ``x`` instead of ``BroadcastLike(x, ref)`` when another operand
    provably has ``ref``'s shape (the op broadcasts ``x`` to it anyway)."""
    for i, t in enumerate(op.inputs):
        inputs = list(op.inputs)
        if t.op.type != "BroadcastLike" or prog.pinned(t.op):
            continue
        x, ref = t.op.inputs
        if x.dtype == t.dtype and any(j != i and shapes.same(o, ref) for j, o in enumerate(op.inputs)):
            inputs[i] = x      # one operand per rewrite: the witness keeps the output's shape
            return _replacement(prog, op, op.type, inputs, op.attrs, "unbroadcast")
    return None


def _shape_follower(prog: Program, shapes: "ShapeSources", op: Operation):
    x, ref = op.inputs
    return _same(op, x) if shapes.same(x, ref) else None


def _matmul(prog: Program, shapes: "ShapeSources", op: Operation):
    return absorb_transposes(prog, op)


_RULES = {"Mul": _neutral, "Add": _neutral, "Sub": _neutral, "Div": _neutral,
          "Identity": _forward_identity, "StopGradient": _forward_identity, "Neg": _double_negation,
          "Cast": _cast, "Transpose": _transpose, "Reshape": _reshape, "ReshapeLike": _reshape,
          "BroadcastLike": _shape_follower, "SumToLike": _shape_follower, **{t: _matmul for t in MATMULS}}


# -- run-time shape equality from static information ----------------------------------------------

class ShapeSources:
    """For each tensor of the sweep, the earliest tensor whose run-time shape provably equals its
    own, built op by op in program order: unary elementwise ops and casts keep their input's
    source, the ``*Like`` ops take their ``ref``'s, the pool and conv backward ops
    (``SHAPED_LIKE``) their shape-only input's, and a broadcasting op whose output is statically
    shaped like an operand ``x`` takes ``x``'s source when every other operand has ``x``'s source or
    a fully known shape. A fed tensor is its own source (a feed may have any compatible shape)."""

    def __init__(self, prog: Program):
        self._prog = prog
        self._source: Dict[Tensor, Tensor] = {}

    def of(self, t: Tensor) -> Tensor:
        return self._source.get(t, t)

    def record(self, op: Operation) -> None:
        if len(op.outputs) != 1 or op.outputs[0] in self._prog.fed or op.outputs[0].shape is None:
            return
        out = op.outputs[0]
        if op.type in UNARY_ELEMENTWISE:
            nxt = op.inputs[0]
        elif op.type in SHAPE_FROM_REF:
            nxt = op.inputs[1]
        elif op.type in SHAPED_LIKE:
            nxt = op.inputs[SHAPED_LIKE[op.type]]
        elif op.type in BROADCASTING:
            nxt = self._broadcast_source(op)
        else:
            nxt = None
        if nxt is not None and nxt.shape is not None and len(nxt.shape) == len(out.shape):
            self._source[out] = self.of(nxt)

    def _broadcast_source(self, op: Operation) -> Optional[Tensor]:
        out = op.outputs[0]
        for i, x in enumerate(op.inputs):
            if x.shape != out.shape:
                continue
            src = self.of(x)
            if all(j == i or self.of(o) is src or _known(o.shape) and len(o.shape) <= len(out.shape)
                   for j, o in enumerate(op.inputs)):
                return x
        return None

    def same(self, a: Tensor, b: Tensor) -> bool:
        """Do ``a`` and ``b`` provably have the same run-time shape?"""
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
            return False
        if _known(a.shape) and a.shape == b.shape:
            return True
        return self.of(a) is self.of(b)


def _known(shape) -> bool:
    return shape is not None and num_elements(shape) is not None
