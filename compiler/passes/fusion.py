"""Convex elementwise fusion into ``FusedElementwise`` ops (PyTensor's FusionOptimizer is the model).

Groups grow from the last unfused elementwise op backwards over its producers, highest
position first. A producer joins when it is fusable, has exactly the group's static loop
shape (same rank, equal dims, ``None`` at the same positions), and no path leaves it and
re-enters the group (none of its consumers outside the group reaches the group). A group
of one op is not fused. Contracting every group must keep the program acyclic (two convex
groups can still depend on each other); a group on such a cycle is dissolved.

``FusedElementwise`` (see compiler.md): inputs are the group's external tensors; attrs
``program`` (instructions ``(op_type, args, attrs_items, dtype_str)`` with args
``("in", i)``, ``("v", j)`` or ``("c", python_scalar, dtype_str)`` for inlined 0-d constants)
and ``outputs`` (instruction indices whose values leave the group, in order).
"""
from __future__ import annotations

import heapq
from typing import Dict, List, Union

import numpy as np

from staticgraph.graph import Operation
from staticgraph.opdef import get_opdef
from staticgraph.ops.core import def_op
from staticgraph.shapes import broadcast, fmt
from staticgraph.tensor import Tensor

from .rewrite import Program, remap

FUSABLE = frozenset({
    "Neg", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "Sqrt", "Square", "Abs", "Sign", "Relu",
    "Add", "Sub", "Mul", "Div", "Pow", "Maximum", "Minimum", "Less", "LessEqual", "Greater",
    "GreaterEqual", "Equal", "NotEqual", "Where", "Cast", "Identity", "StopGradient"})


# -- the op ---------------------------------------------------------------------------------------

def _program_shapes(input_shapes, program) -> list:
    """Static shape of every instruction (NumPy broadcasting of its arguments)."""
    shapes = []
    for k, (op_type, args, _attrs, _dtype) in enumerate(program):
        if op_type not in FUSABLE:
            raise ValueError(f"instruction {k} has op type '{op_type}', which is not fusable")
        arg_shapes = []
        for a in args:
            if a[0] == "in" and 0 <= a[1] < len(input_shapes):
                arg_shapes.append(input_shapes[a[1]])
            elif a[0] == "v" and 0 <= a[1] < k:
                arg_shapes.append(shapes[a[1]])
            elif a[0] == "c" and len(a) == 3:
                arg_shapes.append(())
            else:
                raise ValueError(f"instruction {k} ({op_type}) has a bad argument {a!r}: expected ('in', i) "
                                 f"with i < {len(input_shapes)}, ('v', j) with j < {k}, or ('c', value, dtype)")
        try:
            shapes.append(broadcast(*arg_shapes))
        except ValueError:
            raise ValueError(f"instruction {k} ({op_type}): argument shapes "
                             f"{', '.join(fmt(s) for s in arg_shapes)} cannot be broadcast") from None
    return shapes


def _fused_infer(*inputs, program, outputs):
    shapes = _program_shapes([t.shape for t in inputs], program)
    bad = [j for j in outputs if not 0 <= j < len(program)]
    if bad:
        raise ValueError(f"outputs {bad} are not instruction indices (the program has {len(program)})")
    return [(shapes[j], np.dtype(program[j][3])) for j in outputs]


def _fused_reference(*arrays, program, outputs):
    values: List[np.ndarray] = []
    for op_type, args, attrs, _dtype in program:
        xs = [arrays[a[1]] if a[0] == "in" else values[a[1]] if a[0] == "v" else np.asarray(a[1], dtype=a[2])
              for a in args]
        values.append(np.asarray(get_opdef(op_type).reference(*xs, **dict(attrs))))
    results = tuple(values[j] for j in outputs)
    return results[0] if len(results) == 1 else results


def_op("FusedElementwise", _fused_infer, _fused_reference, None, default_name="fused")


# -- the pass -------------------------------------------------------------------------------------

def fusion(prog: Program) -> int:
    """Fuse convex groups of same-shaped elementwise ops; returns the number of groups fused."""
    ops = prog.ops
    pos = {op: i for i, op in enumerate(ops)}
    consumers = prog.consumers()
    group_of: Dict[Operation, int] = {}
    groups: List[List[Operation]] = []
    for start in reversed(ops):
        if start not in group_of and _fusable(prog, start):
            members = _grow(prog, start, pos, consumers, group_of, len(groups))
            groups.append(members)
    fused = [g for g in groups if len(g) > 1]
    while True:
        order, stuck = _contracted_order(ops, pos, fused)
        if not stuck:
            break
        fused = [g for g in fused if g is not stuck]
    _emit(prog, order, consumers)
    return len(fused)


def _fusable(prog: Program, op: Operation) -> bool:
    return (op.type in FUSABLE and len(op.outputs) == 1 and op.outputs[0].shape is not None
            and not prog.pinned(op))


def _grow(prog: Program, start: Operation, pos, consumers, group_of, gid: int) -> List[Operation]:
    """The convex group grown from ``start`` over producers (marks ``group_of``)."""
    ops, loop, limit = prog.ops, start.outputs[0].shape, pos[start]
    members = [start]
    group_of[start] = gid
    heap: List[int] = []
    reaches_group: Dict[Operation, bool] = {}   # memo; both answers stay true as the group grows

    def push_producers(op: Operation) -> None:
        for t in op.inputs:
            if t.op in pos and t.op not in group_of and t not in prog.fed:
                heapq.heappush(heap, -pos[t.op])

    def reaches(q: Operation) -> bool:
        if q in reaches_group:
            return reaches_group[q]
        stack, seen = [q], {}
        while stack:
            x = stack.pop()
            if group_of.get(x) == gid or reaches_group.get(x):
                reaches_group[q] = True
                return True
            if x in seen or x in reaches_group or pos[x] > limit:
                continue
            seen[x] = True
            stack.extend(consumers.get(x, ()))
        for x in seen:       # nothing reachable from them is in the group, now or later
            reaches_group[x] = False
        return False

    push_producers(start)
    while heap:
        p = ops[-heapq.heappop(heap)]
        if p in group_of or not _fusable(prog, p) or p.outputs[0].shape != loop:
            continue
        if any(reaches(q) for q in consumers.get(p, ()) if group_of.get(q) != gid):
            continue
        group_of[p] = gid
        members.append(p)
        push_producers(p)
    members.sort(key=pos.__getitem__)
    return members


Node = Union[Operation, List[Operation]]   # an op, or a fused group (its members in order)


def _contracted_order(ops, pos, fused: List[List[Operation]]):
    """A topological order of the program with each group as one node (Kahn's algorithm,
    earliest original position first; a group sits at its last member's position), and the
    group to dissolve (None if contraction made no cycle). Nodes are numbered by that position."""
    node_of: Dict[Operation, int] = {}
    groups: Dict[int, List[Operation]] = {}
    for g in fused:
        groups[pos[g[-1]]] = g
        for m in g:
            node_of[m] = pos[g[-1]]
    for op in ops:
        node_of.setdefault(op, pos[op])
    succ: Dict[int, Dict[int, bool]] = {}
    indeg: Dict[int, int] = {}
    for op in ops:
        dst = node_of[op]
        indeg.setdefault(dst, 0)
        for src_op in [t.op for t in op.inputs] + list(op.control_inputs):
            src = node_of.get(src_op)
            if src is None or src == dst or dst in succ.setdefault(src, {}):
                continue
            succ[src][dst] = True
            indeg[dst] += 1
    ready = sorted(n for n, d in indeg.items() if d == 0)
    order: List[int] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for d in succ.get(n, ()):
            indeg[d] -= 1
            if indeg[d] == 0:
                heapq.heappush(ready, d)
    nodes: List[Node] = [groups.get(n) or ops[n] for n in order]
    if len(order) == len(indeg):
        return nodes, None
    worst = max(n for n, d in indeg.items() if d > 0 and n in groups)
    return nodes, groups[worst]


def _emit(prog: Program, order: List[Node], consumers) -> None:
    """Rebuild ``prog.ops`` in ``order``, replacing each group by one FusedElementwise op."""
    subst: Dict[Tensor, Tensor] = {}
    op_subst: Dict[Operation, Operation] = {}
    fetched = {t: True for t in prog.fetches}
    inlined: Dict[Operation, bool] = {}
    out: List[Operation] = []
    for node in order:
        if isinstance(node, Operation):
            remap(node, subst, op_subst)
            out.append(node)
            continue
        fused = _fuse(prog, node, subst, consumers, fetched, inlined)
        out.append(fused)
        for m in node:
            op_subst[m] = fused
    prog.fetches = [subst.get(t, t) for t in prog.fetches]
    prog.ops = _drop_unused_constants(prog, out, inlined)


def _drop_unused_constants(prog: Program, ops: List[Operation], inlined: Dict[Operation, bool]):
    """Remove the Const ops whose every use was inlined into a fused program."""
    used: Dict[Operation, bool] = {t.op: True for t in prog.fetches}
    for op in ops:
        for t in op.inputs:
            used[t.op] = True
        for c in op.control_inputs:
            used[c] = True
    return [op for op in ops if not (op in inlined and op not in used and not prog.pinned(op))]


_DTYPE_NAMES: Dict[np.dtype, str] = {}


def _dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, memoised (NumPy computes it anew on every access)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def _fuse(prog: Program, members: List[Operation], subst, consumers, fetched, inlined) -> Operation:
    index = {m: j for j, m in enumerate(members)}
    inputs: List[Tensor] = []
    input_index: Dict[Tensor, int] = {}
    program = []
    for m in members:
        args = []
        for t in m.inputs:
            value = prog.const_value(t)
            if t.op in index:
                args.append(("v", index[t.op]))
            elif value is not None and value.ndim == 0:
                args.append(("c", value.item(), _dtype_name(value.dtype)))
                inlined[t.op] = True
            else:
                t = subst.get(t, t)
                if t not in input_index:
                    input_index[t] = len(inputs)
                    inputs.append(t)
                args.append(("in", input_index[t]))
        program.append((m.type, tuple(args), tuple(sorted(m.attrs.items())), _dtype_name(m.outputs[0].dtype)))
    outputs = [j for j, m in enumerate(members)
               if m.outputs[0] in fetched
               or any(q not in index and m.outputs[0] in q.inputs for q in consumers.get(m, ()))]
    if not outputs:
        outputs = [len(members) - 1]
    sink = members[-1]
    fused = prog.new_op("FusedElementwise", inputs, {"program": tuple(program), "outputs": tuple(outputs)},
                        like=sink, name="fused",
                        out_specs=[(members[j].outputs[0].shape, members[j].outputs[0].dtype) for j in outputs])
    for k, j in enumerate(outputs):
        subst[members[j].outputs[0]] = fused.outputs[k]
    return fused
