"""Stateful ops: variable reads, assigns, and ``group`` (a no-op with control inputs).

Within one run every variable read sees the value from before the run; the
assigns of the run are collected and land together when it finishes.
"""
from __future__ import annotations

from typing import Optional

from ..graph import Operation
from ..shapes import broadcast, fmt
from ..tensor import Tensor
from .core import TensorLike, def_op, make, operands


def_op("Variable", lambda shape, dtype: (shape, dtype),
       lambda ctx, shape, dtype: ctx.read_variable(), None, default_name="Variable", stateful=True)


def _assign_infer(var, value, mode):
    if var.op.type != "Variable":
        raise TypeError(f"can only assign to a Variable, not to '{var.name}' ({var.op.type})")
    if value.dtype != var.dtype:
        raise TypeError(f"value of dtype {value.dtype.name} cannot be assigned to variable '{var.op.name}' "
                        f"of dtype {var.dtype.name}")
    ok = value.shape is None or len(value.shape) <= len(var.shape)
    if ok and value.shape is not None:
        try:
            ok = broadcast(var.shape, value.shape) == var.shape
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"value of shape {fmt(value.shape)} cannot be assigned to variable "
                         f"'{var.op.name}' of shape {fmt(var.shape)}")
    return []


def_op("Assign", _assign_infer, lambda ctx, var, value, mode: ctx.assign(value, mode), None,
       default_name="assign", stateful=True, ref_inputs=(0,))
def_op("NoOp", lambda: [], lambda: (), None, default_name="group")


def _assign(var: Tensor, value: TensorLike, mode: str, name: Optional[str]) -> Operation:
    if not isinstance(var, Tensor):
        raise TypeError(f"assign target must be a Variable, got {type(var).__name__}")
    var, value = operands(var, value, op_name="assign")
    return make("Assign", [var, value], name=name or ("assign" if mode == "set" else f"assign_{mode}"),
                mode=mode)


def assign(var: Tensor, value: TensorLike, name: Optional[str] = None) -> Operation:
    """An op that sets ``var`` to ``value`` when the run finishes (value broadcasts to var's shape)."""
    return _assign(var, value, "set", name)


def assign_add(var: Tensor, value: TensorLike, name: Optional[str] = None) -> Operation:
    """An op that adds ``value`` to ``var`` when the run finishes."""
    return _assign(var, value, "add", name)


def assign_sub(var: Tensor, value: TensorLike, name: Optional[str] = None) -> Operation:
    """An op that subtracts ``value`` from ``var`` when the run finishes."""
    return _assign(var, value, "sub", name)


def group(*inputs, name: Optional[str] = None) -> Operation:
    """An op that runs all ``inputs`` (ops or tensors) and outputs nothing."""
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    ops = [i.op if isinstance(i, Tensor) else i for i in inputs]
    from ..graph import get_default_graph
    g = ops[0].graph if ops else get_default_graph()
    return make("NoOp", [], name=name or "group", graph=g, control_inputs=ops)
