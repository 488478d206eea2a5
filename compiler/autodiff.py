"""The symbolic differentiation pass (reverse mode), TF1's ``gradients`` algorithm.

1. Forward from ``xs``: the tensors that depend differentiably on them
   (not through non-differentiable ops, ``stop_gradient``, ``stop_gradients``,
   or non-floating tensors).
2. Backward from ``ys``: keep the ops on some xs -> ys path ("between" ops).
3. Visit those ops in descending id (a reverse topological order, since the
   graph is append-only), summing each output's incoming gradients and calling
   the op's gradient rule for the inputs that need one.

Every op the pass creates is an ordinary graph op marked as gradient of the
forward op it comes from, so results can be fetched and differentiated again.
Only ops on xs -> ys paths are differentiated; nothing else is added.

An OpDef may declare ``value_inputs``: the input positions whose *values*
reach the outputs; the other inputs only supply a run-time shape
(``BroadcastLike``'s ``ref``...). Dependence does not flow through those, so a
gradient that only touches x via shapes is ``None`` and builds no dead ops.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set

from staticgraph import dtypes
from staticgraph.graph import Operation
from staticgraph.shapes import compatible, fmt
from staticgraph.tensor import Tensor


def gradients(ys: Sequence[Tensor], xs: Sequence[Tensor], grad_ys: Optional[Sequence] = None,
              stop_gradients: Sequence[Tensor] = ()) -> List[Optional[Tensor]]:
    """``d(sum(ys))/d(x)`` for each x in ``xs`` (``None`` where ys does not depend on x)."""
    from staticgraph import ops as sgops
    _check_floating(ys, "ys")
    _check_floating(xs, "xs")
    graph = (list(ys) + list(xs))[0].graph
    for t in list(ys) + list(xs) + list(stop_gradients):
        if t.graph is not graph:
            raise ValueError(f"gradients: tensor '{t.name}' belongs to another graph")
    stopped = set(stop_gradients)
    reached = _reached(graph, xs, stopped)
    between = _between(ys, reached, stopped)

    grads: Dict[Tensor, List[Tensor]] = {}
    with graph.as_default():
        for i, y in enumerate(ys):
            gy = None if grad_ys is None else grad_ys[i]
            if y in reached:
                with graph.gradient_of(y.op):
                    grads.setdefault(y, []).append(_seed(y, gy, sgops))
        for op in sorted(between, key=lambda o: -o.id):
            _backprop_op(op, grads, reached, graph, sgops)
    return [_total(grads, x, graph, sgops) for x in xs]


def _check_floating(ts: Sequence[Tensor], what: str) -> None:
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"gradients: {what} must be Tensors, got {type(t).__name__}")
        if not dtypes.is_floating(t.dtype):
            raise TypeError(f"only floating point tensors can have gradients: '{t.name}' in {what} has "
                            f"dtype {t.dtype.name}")


def _consumers(graph, start_id: int) -> Dict[Tensor, List[Operation]]:
    out: Dict[Tensor, List[Operation]] = {}
    for op in graph.get_operations()[start_id:]:
        for t in op.inputs:
            out.setdefault(t, []).append(op)
    return out


def _reached(graph, xs: Sequence[Tensor], stopped: Set[Tensor]) -> Set[Tensor]:
    """Tensors that depend differentiably on ``xs`` (``xs`` included, even stopped ones: a stopped
    x still gets its own gradient, it only passes none on to what produced it)."""
    consumers = _consumers(graph, min(x.op.id for x in xs))
    reached: Set[Tensor] = set(xs)
    stack = list(reached)
    while stack:
        t = stack.pop()
        for op in consumers.get(t, ()):
            if not op.opdef.differentiable or not any(op.inputs[i] is t for i in _value_inputs(op)):
                continue
            for out in op.outputs:
                if out not in reached and out not in stopped and dtypes.is_floating(out.dtype):
                    reached.add(out)
                    stack.append(out)
    return reached


def _between(ys: Sequence[Tensor], reached: Set[Tensor], stopped: Set[Tensor]) -> Set[Operation]:
    """Ops on some path from the xs (via ``reached``) to ``ys`` that does not cross a stopped tensor."""
    ops: Set[Operation] = set()
    stack = [y.op for y in ys if y in reached and y not in stopped]
    while stack:
        op = stack.pop()
        if op in ops:
            continue
        inputs = [op.inputs[i] for i in _value_inputs(op)]
        if not any(t in reached for t in inputs):
            continue
        ops.add(op)
        stack.extend(t.op for t in inputs if t in reached and t not in stopped)
    return ops


def _value_inputs(op: Operation) -> Sequence[int]:
    """Positions of the inputs of ``op`` whose values (not just shapes) reach its outputs."""
    declared = op.opdef.value_inputs
    return range(len(op.inputs)) if declared is None else declared


def _seed(y: Tensor, gy, sgops) -> Tensor:
    if gy is None:
        if y.shape is not None and None not in y.shape:
            return sgops.ones(y.shape, y.dtype)
        return sgops.ones_like(y)
    gy = sgops.as_tensor(gy, dtype=y.dtype) if not isinstance(gy, Tensor) else gy
    if gy.dtype != y.dtype:
        raise TypeError(f"grad_ys for '{y.name}' has dtype {gy.dtype.name}, expected {y.dtype.name}")
    if not compatible(gy.shape, y.shape):
        raise ValueError(f"grad_ys for '{y.name}' has shape {fmt(gy.shape)}, expected {fmt(y.shape)}")
    return gy


def _total(grads: Dict[Tensor, List[Tensor]], t: Tensor, graph, sgops) -> Optional[Tensor]:
    """The sum of the gradient contributions to ``t`` (one add per extra contribution)."""
    parts = grads.get(t)
    if not parts:
        return None
    if len(parts) > 1:
        with graph.gradient_of(t.op):
            total = parts[0]
            for p in parts[1:]:
                total = sgops.add(total, p)
        grads[t] = [total]
    return grads[t][0]


def _backprop_op(op: Operation, grads, reached: Set[Tensor], graph, sgops) -> None:
    out_grads = [_total(grads, t, graph, sgops) for t in op.outputs]
    if all(g is None for g in out_grads):
        return
    with graph.gradient_of(op):
        if len(op.outputs) == 1:
            rule_out = op.opdef.grad(op, out_grads[0])
        else:
            rule_out = op.opdef.grad(op, *out_grads)
        if len(rule_out) != len(op.inputs):
            raise RuntimeError(f"gradient rule of {op.type} returned {len(rule_out)} gradients for "
                               f"{len(op.inputs)} inputs")
        for x, g in zip(op.inputs, rule_out):
            if x not in reached or g is None:
                continue
            g = g() if callable(g) else g
            if g is None:
                continue
            _check_grad(op, x, g)
            grads.setdefault(x, []).append(g)


def _check_grad(op: Operation, x: Tensor, g: Tensor) -> None:
    if g.dtype != x.dtype:
        raise RuntimeError(f"gradient of {op.type} '{op.name}' for input '{x.name}' has dtype {g.dtype.name}, "
                           f"expected {x.dtype.name}")
    if not compatible(g.shape, x.shape):
        raise RuntimeError(f"incompatible shapes between input '{x.name}' {fmt(x.shape)} of {op.type} "
                           f"'{op.name}' and its calculated gradient {fmt(g.shape)}")
