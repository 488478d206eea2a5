"""Code for ``FusedElementwise`` ops: one generated loop per group, in the plan module.

The group's program (compiler.md) becomes straight-line scalar statements inside
``library.loop_kernel``'s broadcast loop; each instruction's value is converted to
its dtype (``np.float32(...)``), exactly as storing it in a buffer would.
"""
from __future__ import annotations

import math
import re
from typing import List

from staticgraph.graph import Operation

from .library import ELEMENTWISE, check_lines, loop_kernel

_BY_TYPE = {"Identity": "Copy", "StopGradient": "Copy"}


def _literal(value, dtype: str) -> str:
    if dtype == "bool":
        return f"np.bool_({bool(value)})"
    if isinstance(value, float) and not math.isfinite(value):
        text = "np.nan" if math.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
        return f"np.{dtype}({text})"
    return f"np.{dtype}({value!r})"


def _expr(template: str, args: List[str]) -> str:
    """``template`` (over x0, x1...) with each ``xk`` replaced by ``(args[k])``, in one pass."""
    return re.sub(r"\bx(\d+)\b", lambda m: f"({args[int(m.group(1))]})", template)


def fused_body(op: Operation) -> List[str]:
    """Per-element statements of a FusedElementwise op (inputs x0.., outputs y0..)."""
    program, outputs = op.attrs["program"], op.attrs["outputs"]
    lines = []
    for j, (op_type, args, attrs, dtype) in enumerate(program):
        names = []
        for a in args:
            names.append(f"x{a[1]}" if a[0] == "in" else f"v{a[1]}" if a[0] == "v" else _literal(a[1], a[2]))
        attrs = dict(attrs)
        if op_type == "Cast":
            name = "CastBool" if dtype == "bool" else "Copy"
        elif op_type == "Pow" and dtype.startswith("int"):
            name = "PowInt"
        else:
            name = _BY_TYPE.get(op_type, op_type)
        arity, template, check = ELEMENTWISE[name]
        if check:
            lines += check_lines(_expr(check, names))
        conv = "np.bool_" if dtype == "bool" else f"np.{dtype}"
        lines.append(f"v{j} = {conv}({_expr(template, names)})")
    lines += [f"y{k} = v{j}" for k, j in enumerate(outputs)]
    return lines


def fused_source(fname: str, op: Operation, decorate: bool = True) -> str:
    return loop_kernel(fname, len(op.inputs), len(op.outputs), fused_body(op), decorate)
