"""Constant folding: evaluate ops whose value inputs are all constants, at compile time.

An op folds when every value input is an unfed ``Const`` and every shape-only
input (``OpDef.value_inputs``) has a fully known static shape. Stateful and
random ops never fold. Big results are not materialised: a result over
``MAX_ELEMENTS`` elements folds only if it is no larger than its largest
constant input. An op whose reference raises, or returns the wrong dtype or
shape, is left for run time (where it gives its usual error).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from staticgraph.graph import Operation
from staticgraph.shapes import is_compatible, num_elements

from .rewrite import Program, Rewrite

MAX_ELEMENTS = 4096


def constant_folding(prog: Program) -> int:
    """Replace foldable ops by ``Const`` ops; returns the number of ops folded."""
    return prog.sweep(lambda op: _fold(prog, op))


def _fold(prog: Program, op: Operation) -> Rewrite:
    if op.type == "Const" or prog.pinned(op):
        return None
    args = _arguments(prog, op)
    if args is None:
        return None
    sizes = [a.size for i, a in enumerate(args) if _is_value_input(op, i)]
    try:
        with np.errstate(all="ignore"):
            out = op.opdef.reference(*args, **op.attrs)
    except Exception:  # noqa: BLE001 - any failure is reported when the op runs
        return None
    outs = (out,) if len(op.outputs) == 1 else tuple(out)
    values = [np.asarray(v) for v in outs]
    if len(values) != len(op.outputs):
        return None
    for t, v in zip(op.outputs, values):
        if v.dtype != t.dtype or not is_compatible(t.shape, v.shape):
            return None
        if v.size > MAX_ELEMENTS and v.size > max(sizes, default=0):
            return None
    consts = []
    for t, v in zip(op.outputs, values):
        v = np.array(v, copy=True)
        v.setflags(write=False)
        suffix = "folded" if len(op.outputs) == 1 else f"folded_{t.value_index}"
        consts.append(prog.new_op("Const", [], {"value": v, "dtype": t.dtype}, like=op,
                                  name=f"{op.name}/{suffix}"))
    return consts, [c.outputs[0] for c in consts]


def _is_value_input(op: Operation, i: int) -> bool:
    vi = op.opdef.value_inputs
    return vi is None or i in vi


def _arguments(prog: Program, op: Operation) -> Optional[list]:
    """The reference's arguments if ``op`` can be evaluated now, else None."""
    args = []
    for i, t in enumerate(op.inputs):
        if _is_value_input(op, i):
            value = prog.const_value(t)
            if value is None:
                return None
            args.append(value)
        else:  # only the shape is read: a stand-in array of the static shape will do
            if t.shape is None or num_elements(t.shape) is None:
                return None
            args.append(np.broadcast_to(np.zeros((), t.dtype), t.shape))
    return args
