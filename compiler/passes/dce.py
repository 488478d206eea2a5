"""Dead-code elimination: keep only the ops the fetches, the targets and the state changes need.

Roots: the producers of unfed fetches, the target ops, and every stateful op other than a
plain read (``Assign`` and random ops: a random op that runs advances its generator, so it
stays even when its value is unused). Liveness flows back through value inputs (not through
``Assign``'s variable reference, nor past a fed tensor) and control inputs.
"""
from __future__ import annotations

from typing import Dict, List

from staticgraph.graph import Operation

from .rewrite import Program

READS = frozenset({"Variable", "Placeholder"})


def dce(prog: Program) -> int:
    """Drop the ops nothing needs; returns the number dropped."""
    inside: Dict[Operation, bool] = {op: True for op in prog.ops}
    stack: List[Operation] = [t.op for t in prog.fetches if t not in prog.fed]
    stack += list(prog.targets)
    stack += [op for op in prog.ops if op.opdef.stateful and op.type not in READS]
    live: Dict[Operation, bool] = {}
    while stack:
        op = stack.pop()
        if op in live or op not in inside:
            continue
        live[op] = True
        refs = op.opdef.ref_inputs
        stack.extend(t.op for i, t in enumerate(op.inputs) if i not in refs and t not in prog.fed)
        stack.extend(op.control_inputs)
    before = len(prog.ops)
    prog.ops = [op for op in prog.ops if op in live]
    return before - len(prog.ops)
