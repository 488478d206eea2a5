"""``sg.onnx.export``: the forward subgraph that some outputs need, written as an ONNX model.

The walk goes back from the outputs to the given inputs (a tensor among ``inputs`` cuts off its
producers, as a feed does), so gradient ops, assigns and anything the outputs do not need stay
out. Each op becomes the nodes its exporter in ``opset.EXPORTERS`` emits: the main node is named
after the op, helper nodes ``<op name>:<part>``, and every node's ``doc_string`` says which op
it stands for and the user's line that built it. Values are named after the tensors
(``"matmul:0"``); graph inputs after their placeholders (``"x"``), initializers after their
variables (``"fc1/weight"``), holding the session's current values. ``None`` dimensions of the
inputs become symbolic dimensions (``"x_dim0"``).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Set, Union

import numpy as np

from ..errors import InvalidArgumentError
from ..files import write_atomically
from ..graph import Operation
from ..tensor import Tensor
from .dependency import require_onnx
from .opset import EXPORTERS, NO_ONNX_FORM

DEFAULT_OPSET = 17          # widely deployed (ONNX Runtime, TensorRT 8.6+, onnxruntime-web)
MIN_OPSET = 13              # Softmax over one axis, ReduceSum/Unsqueeze/Squeeze axes as inputs


class ExportContext:
    """What an exporter of ``opset.EXPORTERS`` writes through: value names and node emission."""

    def __init__(self, onnx, opset: int, needed: Set[Tensor]):
        self.onnx = onnx
        self.opset = opset
        self.nodes: list = []
        self.names: Dict[Tensor, str] = {}
        self._needed = needed
        self._consts: Set[str] = set()

    def name(self, t: Tensor) -> str:
        """The ONNX name of an input tensor (already produced)."""
        return self.names[t]

    def out(self, op: Operation, i: int = 0) -> str:
        """The ONNX name of ``op``'s output ``i``."""
        return self.names.setdefault(op.outputs[i], op.outputs[i].name)

    @staticmethod
    def temp(op: Operation, part: str) -> str:
        """The name of an intermediate value of ``op``'s nodes (``<op name>:<part>``)."""
        return f"{op.name}:{part}"

    def needed(self, t: Tensor) -> bool:
        """Whether the exported graph reads ``t`` (an op's optional output may then be skipped)."""
        return t in self._needed

    def node(self, onnx_type: str, inputs: Sequence[str], outputs: Sequence[str], op: Operation,
             part: Optional[str] = None, **attrs) -> None:
        """Emit a node for ``op``: named after it (``part`` tells a helper node apart)."""
        name = op.name if part is None else self.temp(op, part)
        doc = f"{op.type} '{op.name}' defined at {op.defined_at}"
        self.nodes.append(self.onnx.helper.make_node(onnx_type, list(inputs), list(outputs), name=name,
                                                     doc_string=doc, **attrs))

    def chain(self, op: Operation, first: str, steps: Sequence[tuple]) -> None:
        """Nodes applied one after the other to ``first``, each step ``(onnx_type, more_inputs, attrs,
        part)`` reading the previous result then ``more_inputs``; the last writes ``op``'s output
        and carries ``op``'s name."""
        current = first
        for k, (onnx_type, more, attrs, part) in enumerate(steps):
            last = k == len(steps) - 1
            out = self.out(op) if last else self.temp(op, part)
            self.node(onnx_type, [current, *more], [out], op, part=None if last else part, **attrs)
            current = out

    def const(self, op: Operation, part: str, value) -> str:
        """A Constant node holding ``value`` for ``op``'s nodes; returns its output name."""
        out = self.temp(op, part)
        if out not in self._consts:                 # asked for twice by one op: one node
            self._consts.add(out)
            self.node("Constant", [], [out], op, part=part, value=self.tensor_proto(np.asarray(value), out))
        return out

    def tensor_proto(self, value: np.ndarray, name: str):
        return self.onnx.numpy_helper.from_array(np.asarray(value), name)

    def elem_type(self, dtype) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    @staticmethod
    def fail(op: Operation, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"sg.onnx.export: {op.type} '{op.name}': {why}", op)


def export(sess, outputs: Union[Tensor, Sequence[Tensor]], inputs: Sequence[Tensor], path,
           opset: Optional[int] = None):
    """Write the forward subgraph that ``outputs`` need to the ONNX file ``path`` (atomically), with
    ``inputs`` (placeholders) as the graph inputs in that order and the variables as initializers
    holding ``sess``'s current values; returns the ``onnx.ModelProto``. ``opset`` defaults to 17.

    An op with no ONNX form (a gradient op, an assign, a random op) or a placeholder the outputs
    need that is not among ``inputs`` raises ``sg.errors.InvalidArgumentError`` (a ``ValueError``)
    naming the op and the line that built it."""
    onnx = require_onnx()
    opset = _check_opset(onnx, opset)
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = list(inputs)
    _check_tensors(sess, outs, ins)
    ops = _forward_ops(outs, ins)
    needed = {t for op in ops for t in op.inputs} | set(outs)
    ctx = ExportContext(onnx, opset, needed)
    helper = onnx.helper
    graph_inputs = []
    for t in ins:
        ctx.names[t] = t.op.name if t.op.type == "Placeholder" else t.name
        graph_inputs.append(_value_info(ctx, t, symbolic=True))
    initializers = _emit(ctx, sess, ops)
    graph_outputs = _graph_outputs(ctx, outs, ins, {i.name for i in initializers})
    graph = helper.make_graph(ctx.nodes, _graph_name(path), graph_inputs, graph_outputs, initializers,
                              doc_string="exported by staticgraph's sg.onnx.export")
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="staticgraph",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    write_atomically(path, model.SerializeToString(), "ONNX model")
    return model


def _emit(ctx: ExportContext, sess, ops: List[Operation]) -> list:
    """Each op as its nodes (in ``ctx``); returns the initializers (the variables' current values)."""
    initializers = []
    for op in ops:
        if op.type == "Variable":
            ctx.names[op.outputs[0]] = op.name
            initializers.append(ctx.tensor_proto(sess.get_variable_value(op.outputs[0]), op.name))
        elif op.type == "Placeholder":
            raise ExportContext.fail(op, "the outputs need this placeholder, which is not among `inputs`")
        elif op.type in EXPORTERS:
            EXPORTERS[op.type](ctx, op)
        else:
            why = NO_ONNX_FORM.get(op.type, "no exporter in staticgraph/onnx/opset.py")
            raise ExportContext.fail(op, f"no ONNX form ({why})")
    return initializers


def _check_opset(onnx, opset: Optional[int]) -> int:
    newest = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"sg.onnx.export: opset {opset} is not supported; use {MIN_OPSET} to {newest}")
    return opset


def _check_tensors(sess, outs: List[Tensor], ins: List[Tensor]) -> None:
    for role, tensors in (("outputs", outs), ("inputs", ins)):
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"sg.onnx.export: {role} must be tensors, got {t!r}")
            if t.graph is not sess.graph:
                raise ValueError(f"sg.onnx.export: tensor '{t.name}' belongs to another graph than the session's")
    if not outs:
        raise ValueError("sg.onnx.export: no outputs given")
    if len(set(ins)) != len(ins):
        raise ValueError("sg.onnx.export: a tensor appears twice among the inputs")


def _forward_ops(outs: List[Tensor], ins: List[Tensor]) -> List[Operation]:
    """The ops the outputs need, back to the inputs (which cut off their producers), by id."""
    cut = set(ins)
    seen: Dict[int, Operation] = {}
    stack = [t for t in outs if t not in cut]
    while stack:
        t = stack.pop()
        if t.op.id in seen:
            continue
        seen[t.op.id] = t.op
        stack.extend(x for x in t.op.inputs if x not in cut)
    return [seen[i] for i in sorted(seen)]


def _value_info(ctx: ExportContext, t: Tensor, symbolic: bool, name: Optional[str] = None):
    """A graph input's or output's type: ONNX needs its rank; ``None`` dims are symbolic (inputs)
    or left unnamed (outputs)."""
    name = name or ctx.names[t]
    if t.shape is None:
        raise ValueError(f"sg.onnx.export: tensor '{t.name}' has an unknown rank; the inputs and outputs of an "
                         f"ONNX graph need one (give the placeholder a shape, e.g. (None, 3))")
    shape = [
        (f"{name}_dim{i}" if symbolic else None) if d is None else d for i, d in enumerate(t.shape)]
    return ctx.onnx.helper.make_tensor_value_info(name, ctx.elem_type(t.dtype), shape)


def _graph_outputs(ctx: ExportContext, outs: List[Tensor], ins: List[Tensor], initializers: Set[str]):
    """One graph output per requested tensor; an output that is a graph input, an initializer or
    listed twice goes through an Identity node of its own (ONNX names must be distinct)."""
    infos, used = [], set(initializers) | {ctx.names[t] for t in ins}
    for k, t in enumerate(outs):
        name = ctx.names[t]
        if name in used:
            alias = f"{t.op.name}:output{k}"
            ctx.nodes.append(ctx.onnx.helper.make_node("Identity", [name], [alias], name=alias))
            name = alias
        used.add(name)
        infos.append(_value_info(ctx, t, symbolic=False, name=name))
    return infos


def _graph_name(path) -> str:
    return os.path.splitext(os.path.basename(os.fspath(path)))[0] or "staticgraph"
