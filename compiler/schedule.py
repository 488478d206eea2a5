"""Pruning and scheduling: the ops a set of fetches needs, in a deterministic order.

The graph is append-only, so ascending op id is a topological order; sorting
by id gives the same schedule (and the same plan) under any PYTHONHASHSEED.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from staticgraph.errors import InvalidArgumentError
from staticgraph.graph import Operation
from staticgraph.shapes import fmt
from staticgraph.tensor import Tensor


@dataclass(frozen=True)
class Schedule:
    """What one step executes: ``ops`` in order, fed tensors, fetched tensors."""
    ops: Tuple[Operation, ...]
    feeds: Tuple[Tensor, ...]
    fetches: Tuple[Tensor, ...]
    targets: Tuple[Operation, ...]

    @property
    def assigns(self) -> List[Operation]:
        return [op for op in self.ops if op.type == "Assign"]


def needed_ops(fetches: Sequence[Tensor], targets: Sequence[Operation], feeds: Sequence[Tensor]) -> List[Operation]:
    """The ops that must run to produce ``fetches`` and run ``targets`` given ``feeds`` (by id)."""
    fed = set(feeds)
    seen: Dict[int, Operation] = {}
    stack: List[Operation] = [t.op for t in fetches if t not in fed] + list(targets)
    while stack:
        op = stack.pop()
        if op.id in seen:
            continue
        seen[op.id] = op
        refs = op.opdef.ref_inputs
        stack.extend(t.op for i, t in enumerate(op.inputs)
                     if i not in refs and t not in fed and t.op.id not in seen)
        stack.extend(c for c in op.control_inputs if c.id not in seen)
    return [seen[i] for i in sorted(seen)]


def schedule(fetches: Sequence[Tensor], targets: Sequence[Operation], feeds: Sequence[Tensor]) -> Schedule:
    """Prune to the fetched subgraph, order it, and check what can be checked before running."""
    ops = needed_ops(fetches, targets, feeds)
    fed = set(feeds)
    for op in ops:
        if op.type == "Placeholder" and op.outputs[0] not in fed:
            t = op.outputs[0]
            raise InvalidArgumentError(
                f"You must feed a value for placeholder '{op.name}' (dtype {t.dtype.name}, shape "
                f"{fmt(t.shape)}): the fetches depend on it", op)
    _check_single_assign(ops)
    return Schedule(tuple(ops), tuple(feeds), tuple(fetches), tuple(targets))


def _check_single_assign(ops: Sequence[Operation]) -> None:
    """Two assigns to one variable in one run have no defined result: reject them."""
    first: Dict[int, Operation] = {}
    for op in ops:
        if op.type != "Assign":
            continue
        var = op.inputs[0].op
        if var.id in first:
            other = first[var.id]
            raise ValueError(f"variable '{var.name}' is assigned twice in one run: by '{other.name}' "
                             f"(defined at {other.defined_at}) and by '{op.name}' (defined at "
                             f"{op.defined_at}); split them into separate runs")
        first[var.id] = op
