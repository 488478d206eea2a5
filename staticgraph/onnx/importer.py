"""``sg.onnx.load``: an ONNX model built into the default graph as ordinary staticgraph ops.

Graph inputs become placeholders (unknown or symbolic dimensions become ``None``), initializers
become variables (trainable when floating) that ``sg.global_variables_initializer()`` sets, and
each node is built by its importer in ``opset.IMPORTERS`` with the public builders, so the loaded
model runs, differentiates and trains like any other graph. An initializer or Constant that a
node reads as a static argument (a Reshape's shape, a Slice's bounds) stays a NumPy value.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import dtypes
from ..errors import InvalidArgumentError
from ..files import file_error, reading
from ..ops import constant, placeholder
from ..tensor import Tensor
from ..variables import Variable
from .dependency import require_onnx
from .opset import IMPORTERS, Partial


class _Static:
    """A Constant node's value or an initializer: a NumPy array until a node reads it as a tensor
    (then a constant, or for an initializer a variable, built once)."""

    def __init__(self, value: np.ndarray, name: str, variable: bool):
        self.value, self.name, self.variable = value, name, variable
        self.tensor: Optional[Tensor] = None


class ImportContext:
    """What an importer of ``opset.IMPORTERS`` reads a node's inputs through."""

    def __init__(self, onnx, opset: int):
        self.onnx = onnx
        self.opset = opset
        self.values: Dict[str, object] = {}

    @staticmethod
    def op_name(node) -> str:
        """The staticgraph op name for ``node``'s result (its ONNX name, see ``_clean``)."""
        return _clean(node.name or node.output[0]) or node.op_type.lower()

    @staticmethod
    def present(node, i: int) -> bool:
        return i < len(node.input) and node.input[i] != ""

    def _raw(self, node, i: int):
        if not self.present(node, i):
            raise self.fail(node, f"input {i} is missing")
        try:
            return self.values[node.input[i]]
        except KeyError:
            raise self.fail(node, f"input '{node.input[i]}' is not a graph input, an initializer or the "
                                  f"output of an earlier node") from None

    def tensor(self, node, i: int) -> Tensor:
        """Input ``i`` as a tensor."""
        v = self._raw(node, i)
        if isinstance(v, Partial):
            raise self.fail(node, f"input '{node.input[i]}' can only be read by {v.readers}")
        if isinstance(v, _Static):
            if v.tensor is None:
                name = _clean(v.name) or None
                v.tensor = Variable(v.value, trainable=dtypes.is_floating(v.value.dtype), name=name) \
                    if v.variable else constant(v.value, dtype=v.value.dtype, name=name)
            return v.tensor
        return v

    def static(self, node, i: int, what: Optional[str] = None) -> Optional[np.ndarray]:
        """Input ``i``'s value when it is a Constant or an initializer; None when it is absent or
        (``what`` not given) computed; with ``what`` a computed input is an error naming it."""
        if not self.present(node, i):
            return None
        v = self._raw(node, i)
        if isinstance(v, _Static):
            return v.value
        if what is not None:
            raise self.fail(node, f"input {what} ('{node.input[i]}') must be a constant (a Constant node or "
                                  f"an initializer)")
        return None

    def partial(self, node, i: int, readers: str) -> Optional[Partial]:
        """Input ``i`` when it is a ``Partial`` value for ``readers``, else None."""
        v = self._raw(node, i)
        return v if isinstance(v, Partial) and v.readers == readers else None

    @staticmethod
    def static_value(value: np.ndarray) -> _Static:
        return _Static(value, "", variable=False)

    def np_dtype(self, elem_type: int) -> np.dtype:
        return np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(elem_type))

    def attrs(self, node, defaults: dict) -> dict:
        """The node's attributes over ``defaults``; any other attribute is an error naming it."""
        out = dict(defaults)
        for attr in node.attribute:
            if attr.name not in defaults:
                raise self.fail(node, f"attribute '{attr.name}' is not supported")
            value = self.onnx.helper.get_attribute_value(attr)
            if attr.type == self.onnx.AttributeProto.TENSOR:
                value = self.onnx.numpy_helper.to_array(value)
            elif isinstance(value, bytes):
                value = value.decode()
            out[attr.name] = value
        return out

    @staticmethod
    def fail(node, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"sg.onnx.load: node '{node.name or node.output[0]}' ({node.op_type}): {why}")


def load(path) -> Tuple[List[Tensor], List[Tensor]]:
    """Build the ONNX model at ``path`` into the default graph; returns ``(inputs, outputs)``: the
    placeholders of its graph inputs and the tensors of its outputs, in the model's order.

    A node outside the supported set (``sg.onnx.IMPORTERS``), or with an attribute or input form the
    importer does not support, raises ``sg.errors.InvalidArgumentError`` (a ``ValueError``) naming
    the node; an unreadable file a ``DataLossError`` naming the file."""
    onnx = require_onnx()
    model = _read(onnx, path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    ctx = ImportContext(onnx, opset)
    graph = model.graph
    for init in graph.initializer:
        ctx.values[init.name] = _Static(onnx.numpy_helper.to_array(init), init.name, variable=True)
    inputs = []
    for info in graph.input:
        if info.name in ctx.values:            # older models list initializers among the inputs
            continue
        ctx.values[info.name] = _placeholder(ctx, info)
        inputs.append(ctx.values[info.name])
    for node in graph.node:
        _build(ctx, node)
    outputs = []
    for info in graph.output:
        if info.name not in ctx.values:
            raise InvalidArgumentError(f"sg.onnx.load: graph output '{info.name}' is produced by no node")
        v = ctx.values[info.name]
        outputs.append(v if isinstance(v, Tensor) else ctx.tensor(_OutputRef(info.name), 0))
    return inputs, outputs


class _OutputRef:
    """A stand-in node for reading a graph output that is a constant or an initializer."""

    def __init__(self, name: str):
        self.name, self.op_type, self.input, self.output = name, "output", [name], [name]


def _read(onnx, path):
    from google.protobuf.message import DecodeError
    with reading(path, "ONNX model"):
        try:
            model = onnx.load(os.fspath(path))
        except DecodeError as exc:
            raise file_error(path, f"is not an ONNX model ({exc})", "ONNX model") from None
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise file_error(path, f"is not a valid ONNX model: {str(exc).splitlines()[0]}", "ONNX model") from None
    return model


def _placeholder(ctx: ImportContext, info) -> Tensor:
    tensor_type = info.type.tensor_type
    shape = None
    if tensor_type.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return placeholder(ctx.np_dtype(tensor_type.elem_type), shape, name=_clean(info.name))


def _clean(name: str) -> str:
    """An ONNX name as a staticgraph op name: no leading '/' (PyTorch's "/conv1/Conv"), no ':'
    (it separates a tensor's op name from its output index)."""
    return name.lstrip("/").replace(":", "_")


def _build(ctx: ImportContext, node) -> None:
    if node.domain not in ("", "ai.onnx"):
        raise ctx.fail(node, f"operator domain '{node.domain}' is not supported (only the standard ONNX ops)")
    if node.op_type not in IMPORTERS:
        raise ctx.fail(node, f"op type {node.op_type} is not supported; supported: {', '.join(sorted(IMPORTERS))}")
    fn, defaults = IMPORTERS[node.op_type]
    attrs = ctx.attrs(node, defaults)
    try:
        results = fn(ctx, node, attrs)
    except InvalidArgumentError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise ctx.fail(node, str(exc)) from None
    for name, value in zip(node.output, results):
        if name:
            ctx.values[name] = value
    if any(name for name in node.output[len(results):]):
        raise ctx.fail(node, f"only {len(results)} of its {len(node.output)} outputs are supported")
