"""``assign(var, var - x)`` -> ``assign_sub(var, x)`` (and ``var + x``, ``x + var`` -> ``assign_add``).

Optimizers build updates as a whole new value (``var - lr * grad``) assigned to the variable;
a backend then computes the difference into a temporary and copies it over the variable. As an
``add``/``sub`` assignment it updates the variable's storage in one pass. The value is the same:
assignments land after every read of the step, so the variable still holds the value the
difference read. Rewritten only when the difference has no other reader (not fetched or fed),
keeps the variable's shape and dtype, and the variable has no other assignment in the program.
"""
from __future__ import annotations

from typing import Dict

from staticgraph.graph import Operation
from staticgraph.tensor import Tensor

from .rewrite import Program

# value op type -> (operand positions that may read the variable, the resulting mode)
_MODES = {"Sub": ((0,), "sub"), "Add": ((0, 1), "add")}


def update_in_place(prog: Program) -> int:
    """Rewrite ``set`` assignments of ``var -/+ x`` in place (see the module doc); returns the count."""
    uses: Dict[Tensor, int] = {}
    for t in [t for op in prog.ops for t in op.inputs] + list(prog.fetches):
        uses[t] = uses.get(t, 0) + 1
    assigns: Dict[Operation, int] = {}
    for op in prog.ops:
        if op.type == "Assign":
            assigns[op.inputs[0].op] = assigns.get(op.inputs[0].op, 0) + 1
    count = 0
    for op in prog.ops:
        if op.type != "Assign" or op.attrs["mode"] != "set" or assigns[op.inputs[0].op] != 1:
            continue
        var, value = op.inputs
        rule = _MODES.get(value.op.type)
        if (rule is None or value in prog.fed or uses.get(value, 0) != 1 or value.dtype != var.dtype
                or value.shape != var.shape or bool(value.op.control_inputs)):
            continue
        positions, mode = rule
        for i in positions:
            if value.op.inputs[i] is var:
                x = value.op.inputs[1 - i]
                op.inputs = (var, x)
                op.attrs = dict(op.attrs, mode=mode)
                count += 1
                break
    return count
