"""The passes' working copy of a Schedule: a ``Program`` over a private Graph.

``Program.from_schedule`` copies the scheduled ops into a new Graph (the user's
graph is never touched); passes then rewrite that copy in place, and
``Program.to_schedule`` copies the result into a fresh, compact Graph whose op
ids ascend in schedule order. Every copy keeps name, type, attrs, control
inputs, ``defined_at`` and ``grad_of``, and records in ``op.origin`` the
user-graph op it stands for (None for ops that passes create).

Ops the schedule refers to without running them (fed placeholders, variables
that are only assigned) are copied as input-less *external* ops that are not in
``Program.ops``, exactly as they are absent from ``Schedule.ops``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from staticgraph.errors import InternalError
from staticgraph.graph import Graph, Operation, _normalise_specs
from staticgraph.opdef import get_opdef
from staticgraph.tensor import Tensor

from ..schedule import Schedule

#: what a visit returns to ``sweep``: new ops to place before the visited op's slot, and one
#: replacement tensor per output of the visited op (which is then dropped)
Rewrite = Optional[Tuple[Sequence[Operation], Sequence[Tensor]]]


def origin(op: Operation) -> Operation:
    """The user-graph op that ``op`` stands for (``op`` itself for user ops and pass-made ops)."""
    return getattr(op, "origin", None) or op


class Program:
    """A mutable, ordered op list over a private Graph, with its feeds, fetches and targets."""

    def __init__(self, graph: Graph, ops: Sequence[Operation], feeds: Sequence[Tensor],
                 fetches: Sequence[Tensor], targets: Sequence[Operation]):
        self.graph = graph
        self.ops: List[Operation] = list(ops)
        self.feeds: Tuple[Tensor, ...] = tuple(feeds)
        self.fetches: List[Tensor] = list(fetches)
        self.targets: Tuple[Operation, ...] = tuple(targets)
        self.fed: Dict[Tensor, bool] = {t: True for t in self.feeds}
        self._targets: Dict[Operation, bool] = {op: True for op in self.targets}

    # -- conversion ----------------------------------------------------------------------------
    @classmethod
    def from_schedule(cls, sched: Schedule) -> "Program":
        """A private copy of ``sched`` (origins: the user ops its ops stand for)."""
        return _copy(sched.ops, sched.feeds, sched.fetches, sched.targets, origin)

    def to_schedule(self) -> Schedule:
        """The program as a Schedule over a fresh, compact Graph (ids ascend in op order)."""
        prog = _copy(self.ops, self.feeds, self.fetches, self.targets, lambda op: getattr(op, "origin", None))
        return Schedule(tuple(prog.ops), prog.feeds, tuple(prog.fetches), prog.targets)

    # -- queries ------------------------------------------------------------------------------
    def pinned(self, op: Operation) -> bool:
        """Ops no pass may fold, merge, simplify away or fuse: state, side effects, targets,
        control dependencies and ops whose outputs are fed."""
        return (op.opdef.stateful or op.type == "NoOp" or not op.outputs or op in self._targets
                or bool(op.control_inputs) or any(t in self.fed for t in op.outputs))

    def const_value(self, t: Tensor):
        """The value of a Const tensor that is not fed, else None."""
        if t.op.type == "Const" and t not in self.fed:
            return t.op.attrs["value"]
        return None

    def consumers(self) -> Dict[Operation, List[Operation]]:
        """Each op's consumers in program order (data and control edges; an op appears once)."""
        out: Dict[Operation, List[Operation]] = {}
        for op in self.ops:
            seen: Dict[Operation, bool] = {}
            for t in op.inputs:
                seen[t.op] = True
            for c in op.control_inputs:
                seen[c] = True
            for producer in seen:
                out.setdefault(producer, []).append(op)
        return out

    # -- building ------------------------------------------------------------------------------
    def new_op(self, op_type: str, inputs: Sequence[Tensor], attrs: dict, like: Operation,
               name: Optional[str] = None, out_specs: Optional[Sequence[tuple]] = None) -> Operation:
        """A pass-made op in the private graph (not placed in ``ops``); provenance from ``like``.
        Output specs are inferred unless given."""
        opdef = get_opdef(op_type)
        if out_specs is None:
            out_specs = opdef.infer(*inputs, **attrs)
        op = Operation(self.graph, len(self.graph._ops), op_type,
                       self.graph.unique_name(name or f"{like.name}/{opdef.default_name}"),
                       inputs, dict(attrs), (), _normalise_specs(out_specs), like.defined_at,
                       like.grad_of, opdef)
        op.origin = None
        self.graph._ops.append(op)
        return op

    def sweep(self, visit: Callable[[Operation], Rewrite]) -> int:
        """Visit the ops in order (each with its inputs already rewritten); an op whose visit
        returns a rewrite is replaced by the given tensors and dropped. Returns the rewrite count."""
        subst: Dict[Tensor, Tensor] = {}
        op_subst: Dict[Operation, Operation] = {}
        kept: List[Operation] = []
        count = 0
        for op in self.ops:
            remap(op, subst, op_subst)
            result = visit(op)
            if result is None:
                kept.append(op)
                continue
            new_ops, replacements = result
            if len(replacements) != len(op.outputs) or not op.outputs:
                raise InternalError(f"pass rewrite of '{op.name}' gave {len(replacements)} tensors for "
                                    f"{len(op.outputs)} outputs", op)
            count += 1
            kept.extend(new_ops)
            for old, new in zip(op.outputs, replacements):
                subst[old] = new
            op_subst[op] = replacements[0].op
        self.ops = kept
        self.fetches = [subst.get(t, t) for t in self.fetches]
        return count


def remap(op: Operation, subst: Dict[Tensor, Tensor], op_subst: Dict[Operation, Operation]) -> None:
    """Rewrite ``op``'s inputs and control inputs through the substitutions (in place)."""
    if subst and any(t in subst for t in op.inputs):
        op.inputs = tuple(subst.get(t, t) for t in op.inputs)
    if op_subst and any(c in op_subst for c in op.control_inputs):
        ctrl: Dict[Operation, bool] = {}
        for c in op.control_inputs:
            ctrl[op_subst.get(c, c)] = True
        op.control_inputs = tuple(ctrl)


def _copy(ops: Sequence[Operation], feeds: Sequence[Tensor], fetches: Sequence[Tensor],
          targets: Sequence[Operation], origin_of: Callable[[Operation], Optional[Operation]]) -> Program:
    """Copy ``ops`` (in order) and the external ops they refer to into a new Graph."""
    graph = Graph()
    inside: Dict[Operation, bool] = {op: True for op in ops}
    omap: Dict[Operation, Operation] = {}

    def clone(op: Operation, external: bool) -> None:
        inputs = () if external else tuple(omap[t.op].outputs[t.value_index] for t in op.inputs)
        ctrl = () if external else tuple(omap[c] for c in op.control_inputs)
        new = Operation(graph, len(graph._ops), op.type, op.name, inputs, dict(op.attrs), ctrl,
                        [(t.shape, t.dtype) for t in op.outputs], op.defined_at, op.grad_of, op.opdef)
        new.origin = origin_of(op)
        graph._ops.append(new)
        graph._names.setdefault(op.name, 0)
        omap[op] = new

    for op in _externals(ops, feeds, fetches, targets, inside):
        clone(op, external=True)
    for op in ops:
        clone(op, external=False)
    missing = [op.name for op in targets if op not in omap]
    if missing:
        raise InternalError(f"schedule targets {missing} are not among its ops")
    tensor = lambda t: omap[t.op].outputs[t.value_index]  # noqa: E731
    return Program(graph, [omap[op] for op in ops], [tensor(t) for t in feeds], [tensor(t) for t in fetches],
                   [omap[op] for op in targets])


def _externals(ops, feeds, fetches, targets, inside) -> List[Operation]:
    """Ops referred to (by inputs, control inputs, feeds or fetches) but not in ``ops``, first use first."""
    found: Dict[Operation, bool] = {}
    for op in ops:
        for t in op.inputs:
            if t.op not in inside:
                found[t.op] = True
        for c in op.control_inputs:
            if c not in inside:
                found[c] = True
    for t in list(feeds) + list(fetches):
        if t.op not in inside:
            found[t.op] = True
    return list(found)
