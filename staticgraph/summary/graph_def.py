"""A staticgraph ``Graph`` as TensorBoard's ``GraphDef`` (built with tensorboardX's protobufs).

One ``NodeDef`` per op: ``name`` is the op name, whose ``/``-separated name scopes TensorBoard
shows as collapsible groups (gradient ops live under ``gradients/``, so they group apart);
``op`` is the op type; ``input`` lists ``producer``, ``producer:i`` (output i > 0) and
``^producer`` (control inputs), TF's convention. Attributes: ``_output_shapes`` (shown on the
edges and in the node panel; -1 for unknown dims), ``dtype`` (of output 0), ``defined_at`` (the
user's ``file:line``), ``gradient_of`` (for gradient ops) and the op's own attributes as text.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..graph import Graph, Operation
from ._tbx import tensorboardx

_MAX_ATTR_TEXT = 200


def _protos():
    tensorboardx()      # clear ImportError when missing
    from tensorboardX.proto import attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, types_pb2
    from tensorboardX.proto import versions_pb2
    return attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, types_pb2, versions_pb2


def _dtype_enum(types_pb2, dtype: np.dtype) -> int:
    return {"float32": types_pb2.DT_FLOAT, "float64": types_pb2.DT_DOUBLE, "int32": types_pb2.DT_INT32,
            "int64": types_pb2.DT_INT64, "bool": types_pb2.DT_BOOL}.get(np.dtype(dtype).name,
                                                                      types_pb2.DT_INVALID)


def _shape_proto(tensor_shape_pb2, shape):
    if shape is None:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else int(d)) for d in shape])


def _text(value) -> bytes:
    text = repr(value)
    if len(text) > _MAX_ATTR_TEXT:
        text = text[:_MAX_ATTR_TEXT - 3] + "..."
    return text.encode("utf-8")


def input_names(op: Operation):
    """The ``input`` entries of ``op``'s NodeDef: data inputs, then ``^control`` inputs."""
    names = [t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}" for t in op.inputs]
    return names + [f"^{c.name}" for c in op.control_inputs]


def graph_def(graph: Graph):
    """``graph`` as a tensorboardX ``GraphDef`` protobuf (see the module docstring)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"expected an sg.Graph, got {type(graph).__name__}")
    attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, types_pb2, versions_pb2 = _protos()
    AttrValue = attr_value_pb2.AttrValue
    nodes = []
    for op in graph.get_operations():
        attrs: Dict[str, object] = {
            "_output_shapes": AttrValue(list=AttrValue.ListValue(
                shape=[_shape_proto(tensor_shape_pb2, t.shape) for t in op.outputs])),
            "defined_at": AttrValue(s=op.defined_at.encode("utf-8")),
        }
        if op.outputs:
            attrs["dtype"] = AttrValue(type=_dtype_enum(types_pb2, op.outputs[0].dtype))
        if op.is_gradient:
            attrs["gradient_of"] = AttrValue(s=op.grad_of.name.encode("utf-8"))
        for key, value in op.attrs.items():
            if key not in attrs:
                attrs[key] = AttrValue(s=_text(value))
        nodes.append(node_def_pb2.NodeDef(name=op.name, op=op.type, input=input_names(op), attr=attrs))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))
