"""The op table of ``sg.onnx``: how each staticgraph op type is written as ONNX nodes (``EXPORTERS``)
and how each ONNX op type is built back as staticgraph ops (``IMPORTERS``). Adding an op touches
this module only.

An exporter is ``fn(ctx, op)``: it emits the nodes computing ``op``'s outputs through the export
context (``exporter.ExportContext``: ``name``, ``out``, ``node``, ``chain``, ``const``, ``temp``,
``needed``, ``tensor_proto``, ``elem_type``, ``fail``). An importer is ``fn(ctx, node, attrs) -> outputs``: ``attrs`` holds the node's
attributes, checked against the names and defaults it was registered with (``@imports(type,
**defaults)``: any other attribute is an error naming the node), and it returns the staticgraph
values of the node's outputs, built with the public builders (``importer.ImportContext``:
``tensor``, ``static``, ``present``, ``partial``, ``static_value``, ``np_dtype``, ``op_name``,
``fail``, ``opset``).

Every op type of ``staticgraph.ops`` is either in ``EXPORTERS``, in ``NO_ONNX_FORM`` (with the
reason the exporter's error gives) or a graph leaf the exporter handles itself (``Placeholder``:
a graph input, ``Variable``: an initializer); ``tests/test_onnx.py`` holds new op types to that.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .. import ops
from ..nn import functional as F
from ..ops.core import make
from ..tensor import Tensor

EXPORTERS: Dict[str, Callable] = {}
IMPORTERS: Dict[str, Tuple[Callable, dict]] = {}
NO_ONNX_FORM: Dict[str, str] = {
    **dict.fromkeys(["AvgPoolGrad", "ConvBackpropFilter", "ConvBackpropInput", "MaxPoolGather", "MaxPoolGrad",
                     "NllLossGrad", "BroadcastLike", "SumToLike", "ReshapeLike", "ScatterLike", "SplitLike",
                     "ReducedCount"], "a gradient op: export the forward outputs"),
    "Assign": "an assign: an ONNX model is a pure function of its inputs",
    "NoOp": "a group of ops run for their effects, which an ONNX model has none of",
    "RandomNormal": "a random op: draw the values in the session and feed them as an input",
    "RandomUniform": "a random op: draw the values in the session and feed them as an input",
    "Allreduce": "a collective over an MPI job's ranks (sg.distributed): a training-time op; export the model's forward outputs",
}
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
_BIG = 2 ** 62          # a Slice bound beyond this means "to the end" (exporters write INT64_MAX/MIN)


class Partial:
    """A value only certain nodes may read (``tensor()`` refuses it, saying so): a shape computed
    in the model (``ShapeValue``) or MaxPool's flat Indices (read by a Mod by the plane size,
    which gives staticgraph's per-plane indices)."""

    def __init__(self, tensor: Optional[Tensor], readers: str, info=None):
        self.tensor, self.readers, self.info = tensor, readers, info


SHAPE_READERS = "Gather, Unsqueeze, Concat, Reshape and ConstantOfShape (shape arithmetic)"
INDICES_READERS = "Mod by the size of the pooled plane"


class ShapeValue(Partial):
    """A shape computed in the model: Shape, then Gather/Unsqueeze/Concat of its pieces and
    constants, as PyTorch writes ``x.view(x.size(0), -1)``. ``entries`` are ints, or ``("dim",
    tensor, axis)`` for a size known only at run time; ``tensor`` is set when the value is that
    tensor's whole shape; ``scalar`` marks one entry taken by a scalar Gather."""

    def __init__(self, entries, of: Optional[Tensor] = None, scalar: bool = False):
        super().__init__(of, SHAPE_READERS)
        self.entries, self.scalar = list(entries), scalar


def exports(*op_types: str):
    """Register ``fn(ctx, op)`` as the exporter of ``op_types``."""
    def register(fn):
        for t in op_types:
            EXPORTERS[t] = fn
        return fn
    return register


def imports(*onnx_types: str, **defaults):
    """Register ``fn(ctx, node, attrs)`` as the importer of ``onnx_types``; ``defaults`` lists the
    attributes it understands and their ONNX defaults."""
    def register(fn):
        for t in onnx_types:
            IMPORTERS[t] = (fn, defaults)
        return fn
    return register


# -- one-to-one ops (same inputs, same outputs, no attributes) ---------------------------------------

DIRECT = {
    "Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sin": "Sin", "Cos": "Cos", "Tanh": "Tanh",
    "Sigmoid": "Sigmoid", "Sqrt": "Sqrt", "Abs": "Abs", "Sign": "Sign", "Relu": "Relu",
    "Identity": "Identity", "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow",
    "Maximum": "Max", "Minimum": "Min", "Less": "Less", "LessEqual": "LessOrEqual", "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual", "Equal": "Equal", "Where": "Where", "MatMul": "MatMul",
}
_FROM_ONNX = {onnx_type: sg_type for sg_type, onnx_type in DIRECT.items()}


@exports(*DIRECT)
def _direct(ctx, op):
    ctx.node(DIRECT[op.type], [ctx.name(t) for t in op.inputs], [ctx.out(op)], op)


@exports("StopGradient", "CheckNumerics")      # ONNX has no gradients and no assertions: the value itself
def _identity(ctx, op):
    ctx.node("Identity", [ctx.name(op.inputs[0])], [ctx.out(op)], op)


@imports(*(t for t in _FROM_ONNX if t not in ("Pow", "Max", "Min")))   # those three: below
def _import_direct(ctx, node, a):
    inputs = [ctx.tensor(node, i) for i in range(len(node.input))]
    return [make(_FROM_ONNX[node.op_type], inputs, name=ctx.op_name(node))]


@imports("Pow")
def _import_pow(ctx, node, a):
    base = ctx.tensor(node, 0)
    exponent = ctx.static(node, 1)        # ONNX lets the exponent's dtype differ from the base's
    exponent = ctx.tensor(node, 1) if exponent is None else ops.constant(exponent, dtype=base.dtype)
    return [ops.pow(base, exponent, name=ctx.op_name(node))]


@imports("Max", "Min")
def _import_variadic(ctx, node, a):
    fn = ops.maximum if node.op_type == "Max" else ops.minimum
    out = ctx.tensor(node, 0)
    for i in range(1, len(node.input)):
        out = fn(out, ctx.tensor(node, i), name=ctx.op_name(node) if i == len(node.input) - 1 else None)
    return [out]


@imports("Not")
def _import_not(ctx, node, a):
    return [ops.equal(ctx.tensor(node, 0), False, name=ctx.op_name(node))]


@exports("NotEqual")
def _not_equal(ctx, op):
    a, b = (ctx.name(t) for t in op.inputs)
    ctx.chain(op, a, [("Equal", [b], {}, "equal"), ("Not", [], {}, "not")])


@exports("Square")
def _square(ctx, op):
    x = ctx.name(op.inputs[0])
    ctx.node("Mul", [x, x], [ctx.out(op)], op)


# -- leaves ---------------------------------------------------------------------------------------------

@exports("Const")
def _const(ctx, op):
    ctx.node("Constant", [], [ctx.out(op)], op, value=ctx.tensor_proto(op.attrs["value"], ctx.out(op)))


@exports("Fill")
def _fill(ctx, op):
    value = np.full(op.attrs["shape"], op.attrs["value"], op.attrs["dtype"])
    ctx.node("Constant", [], [ctx.out(op)], op, value=ctx.tensor_proto(value, ctx.out(op)))


@exports("FillLike")
def _fill_like(ctx, op):
    value = ctx.tensor_proto(np.full((1,), op.attrs["value"], op.attrs["dtype"]), "value")
    ctx.chain(op, ctx.name(op.inputs[0]), [("Shape", [], {}, "shape"), ("ConstantOfShape", [], {"value": value}, "")])


@imports("Constant", value=None, value_float=None, value_int=None, value_floats=None, value_ints=None)
def _import_constant(ctx, node, a):
    given = [k for k, v in a.items() if v is not None]
    if len(given) != 1:
        raise ctx.fail(node, f"needs exactly one of value, value_float(s), value_int(s); got {given}")
    v = a[given[0]]
    dtype = np.float32 if "float" in given[0] else np.int64 if "int" in given[0] else None
    return [ctx.static_value(np.asarray(v, dtype=dtype))]


@imports("Shape", start=0, end=None)
def _import_shape(ctx, node, a):
    x = ctx.tensor(node, 0)
    if x.shape is None:
        raise ctx.fail(node, f"input '{x.name}' needs a known rank")
    dims = [("dim", x, i) if d is None else d for i, d in enumerate(x.shape)]
    whole = a["start"] == 0 and a["end"] is None
    return [ShapeValue(dims[a["start"]:a["end"]], of=x if whole else None)]


@imports("ConstantOfShape", value=None)
def _import_constant_of_shape(ctx, node, a):
    value = np.zeros(1, np.float32) if a["value"] is None else np.asarray(a["value"])
    if value.size != 1:
        raise ctx.fail(node, f"value must have one element, got shape {value.shape}")
    like = ctx.partial(node, 0, SHAPE_READERS)
    if like is not None and like.tensor is not None:    # Shape(x): a fill shaped like x at run time
        return [make("FillLike", [like.tensor], name=ctx.op_name(node), value=value.item(), dtype=value.dtype)]
    shape = _shape_entries(ctx, node, 0)
    if any(isinstance(d, tuple) for d in shape):
        raise ctx.fail(node, "a shape known only at run time is supported only as a whole Shape(x)")
    return [make("Fill", [], name=ctx.op_name(node), shape=tuple(int(d) for d in shape),
                 value=value.item(), dtype=value.dtype)]


# -- shapes and indexing -----------------------------------------------------------------------------

@exports("Cast")
def _cast(ctx, op):
    ctx.node("Cast", [ctx.name(op.inputs[0])], [ctx.out(op)], op, to=ctx.elem_type(op.attrs["dtype"]))


@imports("Cast", to=None, saturate=1)
def _import_cast(ctx, node, a):
    return [ops.cast(ctx.tensor(node, 0), ctx.np_dtype(a["to"]), name=ctx.op_name(node))]


@exports("Reshape")
def _reshape(ctx, op):
    shape = np.array(op.attrs["shape"], dtype=np.int64)
    attrs = {"allowzero": 1} if 0 in shape else {}       # ONNX's 0 copies a dim unless allowzero
    ctx.node("Reshape", [ctx.name(op.inputs[0]), ctx.const(op, "shape", shape)], [ctx.out(op)], op, **attrs)


def _shape_entries(ctx, node, i: int) -> list:
    """Input ``i``, a shape: the entries of a ``ShapeValue`` or the ints of a constant."""
    shape = ctx.partial(node, i, SHAPE_READERS)
    if shape is not None:
        return list(shape.entries)
    return [int(d) for d in np.ravel(ctx.static(node, i, "shape"))]


def _reshape_target(ctx, node, x: Tensor, shape: list, allowzero: bool) -> list:
    """An ONNX Reshape's target as staticgraph's static shape (one -1 allowed). A 0 copies ``x``'s
    dim (unless ``allowzero``); one dim known only at run time (the batch, from ``Shape``) becomes
    the -1, and a -1 beside it is solved from ``x``'s static dims."""
    copied = [] if allowzero else [i for i, d in enumerate(shape) if isinstance(d, int) and d == 0]
    if copied and (x.shape is None or max(copied) >= len(x.shape)):
        raise ctx.fail(node, f"shape {shape} copies dims of input '{x.name}' of shape {x.shape}")
    for i in copied:
        shape[i] = ("dim", x, i) if x.shape[i] is None else x.shape[i]
    dynamic = [i for i, d in enumerate(shape) if isinstance(d, tuple)]
    if not dynamic:
        return shape
    k = dynamic[0]
    if len(dynamic) == 1 and -1 not in shape:
        return [-1 if i == k else d for i, d in enumerate(shape)]
    _, of, axis = shape[k]
    rest = [d for i, d in enumerate(x.shape or ()) if i != axis]
    others = 0 if len(dynamic) > 1 else math.prod(d for i, d in enumerate(shape) if i != k and d != -1)
    if others == 0 or of is not x or None in rest or math.prod(rest) % others:
        raise ctx.fail(node, f"the target shape cannot be resolved statically for input '{x.name}' of shape "
                             f"{x.shape}")
    return [-1 if i == k else math.prod(rest) // others if d == -1 else d for i, d in enumerate(shape)]


@imports("Reshape", allowzero=0)
def _import_reshape(ctx, node, a):
    x = ctx.tensor(node, 0)
    shape = _reshape_target(ctx, node, x, _shape_entries(ctx, node, 1), bool(a["allowzero"]))
    return [ops.reshape(x, shape, name=ctx.op_name(node))]


@imports("Flatten", axis=1)
def _import_flatten(ctx, node, a):
    x = ctx.tensor(node, 0)
    if x.shape is None:
        raise ctx.fail(node, f"input '{x.name}' needs a known rank")
    axis = a["axis"] % (len(x.shape) + 1) if a["axis"] < 0 else a["axis"]
    head, tail = x.shape[:axis], x.shape[axis:]
    sizes = [None if None in part else math.prod(part) for part in (head, tail)]
    if sizes == [None, None]:
        raise ctx.fail(node, f"input '{x.name}' of shape {x.shape} has unknown dims on both sides of axis {axis}")
    return [ops.reshape(x, [-1 if s is None else s for s in sizes], name=ctx.op_name(node))]


@exports("ExpandDims")
def _expand_dims(ctx, op):
    axes = ctx.const(op, "axes", np.array(op.attrs["axes"], dtype=np.int64))
    ctx.node("Unsqueeze", [ctx.name(op.inputs[0]), axes], [ctx.out(op)], op)


@imports("Unsqueeze", axes=None)
def _import_unsqueeze(ctx, node, a):
    axes = a["axes"] if a["axes"] is not None else ctx.static(node, 1, "axes")
    shape = ctx.partial(node, 0, SHAPE_READERS)
    if shape is not None:       # one size taken from a shape, made a 1-element piece of another
        if not shape.scalar or [int(v) for v in np.ravel(axes)] not in ([0], [-1]):
            raise ctx.fail(node, "only a scalar piece of a shape can be unsqueezed (to one element)")
        return [ShapeValue(shape.entries)]
    return [ops.expand_dims(ctx.tensor(node, 0), [int(v) for v in axes], name=ctx.op_name(node))]


@imports("Squeeze", axes=None)
def _import_squeeze(ctx, node, a):
    x = ctx.tensor(node, 0)
    if x.shape is None:
        raise ctx.fail(node, f"input '{x.name}' needs a known rank")
    axes = a["axes"] if a["axes"] is not None else ctx.static(node, 1, "axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {int(v) % len(x.shape) for v in axes}
    index = tuple(0 if i in axes else slice(None) for i in range(len(x.shape)))
    return [ops.getitem(x, index, name=ctx.op_name(node))]


@exports("Transpose")
def _transpose(ctx, op):
    perm = op.attrs["perm"]
    attrs = {} if perm is None else {"perm": list(perm)}
    ctx.node("Transpose", [ctx.name(op.inputs[0])], [ctx.out(op)], op, **attrs)


@imports("Transpose", perm=None)
def _import_transpose(ctx, node, a):
    perm = None if a["perm"] is None else [int(p) for p in a["perm"]]
    return [ops.transpose(ctx.tensor(node, 0), perm, name=ctx.op_name(node))]


@exports("Concat")
def _concat(ctx, op):
    ctx.node("Concat", [ctx.name(t) for t in op.inputs], [ctx.out(op)], op, axis=op.attrs["axis"])


@imports("Concat", axis=None)
def _import_concat(ctx, node, a):
    if any(ctx.partial(node, i, SHAPE_READERS) is not None for i in range(len(node.input))):
        return [ShapeValue([d for i in range(len(node.input)) for d in _shape_entries(ctx, node, i)])]
    values = [ctx.tensor(node, i) for i in range(len(node.input))]
    return [ops.concat(values, a["axis"], name=ctx.op_name(node))]


def _expanded_spec(spec, ndim: int):
    """``GetItem``'s spec with the ellipsis (explicit or implied) replaced by full slices."""
    if not any(s[0] == "ellipsis" for s in spec):
        spec = spec + (("ellipsis",),)
    consumed = sum(1 for s in spec if s[0] in ("int", "slice"))
    out = []
    for s in spec:
        out.extend([("slice", None, None, None)] * (ndim - consumed) if s[0] == "ellipsis" else [s])
    return out


@exports("GetItem")
def _getitem(ctx, op):
    """Slice for the slices, Gather (a scalar index) per int, one Unsqueeze for the new axes."""
    x = op.inputs[0]
    if x.ndim is None:
        raise ctx.fail(op, f"indexing '{x.name}' needs a known rank")
    starts, ends, axes, strides, picks, new_axes = [], [], [], [], [], []
    dim = pos = 0
    for s in _expanded_spec(op.attrs["spec"], x.ndim):
        if s[0] == "new":
            new_axes.append(pos)
            pos += 1
            continue
        if s[0] == "int":
            picks.append((dim, s[1]))
        elif s[1:] != (None, None, None):
            step = 1 if s[3] is None else s[3]
            starts.append(s[1] if s[1] is not None else 0 if step > 0 else INT64_MAX)
            ends.append(s[2] if s[2] is not None else INT64_MAX if step > 0 else INT64_MIN)
            axes.append(dim)
            strides.append(step)
        pos += s[0] == "slice"
        dim += 1
    steps = []
    if axes:
        steps.append(("Slice", [ctx.const(op, what, np.array(v, dtype=np.int64)) for what, v in
                                (("starts", starts), ("ends", ends), ("axes", axes), ("steps", strides))], {}, "slice"))
    for dim, index in sorted(picks, reverse=True):      # the last axis first: the others stay put
        index_name = ctx.const(op, f"index{dim}", np.array(index, np.int64))
        steps.append(("Gather", [index_name], {"axis": dim}, f"gather{dim}"))
    if new_axes:
        steps.append(("Unsqueeze", [ctx.const(op, "new_axes", np.array(new_axes, np.int64))], {}, "unsqueeze"))
    ctx.chain(op, ctx.name(x), steps or [("Identity", [], {}, "")])


def _bound(v: int):
    return None if abs(v) >= _BIG else v


@imports("Slice")
def _import_slice(ctx, node, a):
    x = ctx.tensor(node, 0)
    if x.ndim is None:
        raise ctx.fail(node, f"input '{x.name}' needs a known rank")
    starts, ends = ctx.static(node, 1, "starts"), ctx.static(node, 2, "ends")
    axes = ctx.static(node, 3, "axes") if ctx.present(node, 3) else np.arange(len(starts))
    steps = ctx.static(node, 4, "steps") if ctx.present(node, 4) else np.ones(len(starts), np.int64)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax) % x.ndim] = slice(_bound(int(s)), _bound(int(e)), int(st))
    return [ops.getitem(x, tuple(index), name=ctx.op_name(node))]


@imports("Gather", axis=0)
def _import_gather(ctx, node, a):
    index = ctx.static(node, 1, "indices")
    shape = ctx.partial(node, 0, SHAPE_READERS)
    if shape is not None:       # sizes taken from a shape
        return [ShapeValue([shape.entries[int(i)] for i in np.ravel(index)], scalar=index.ndim == 0)]
    x = ctx.tensor(node, 0)
    if x.ndim is None or index.ndim != 0:
        raise ctx.fail(node, "only a constant scalar index into a tensor of known rank is supported "
                             "(basic indexing)")
    axis = a["axis"] % x.ndim
    return [ops.getitem(x, (slice(None),) * axis + (int(index),), name=ctx.op_name(node))]


@exports("OneHot")
def _one_hot(ctx, op):
    """``indices[..., None] == arange(depth)`` as float32: out-of-range (and negative) indices give
    zeros, as staticgraph's one_hot does (ONNX's OneHot counts negative indices from the end)."""
    indices = op.inputs[0]
    ctx.chain(op, ctx.name(indices), [
        ("Unsqueeze", [ctx.const(op, "last", np.array([-1], np.int64))], {}, "column"),
        ("Equal", [ctx.const(op, "classes", np.arange(op.attrs["depth"], dtype=indices.dtype))], {}, "hits"),
        ("Cast", [], {"to": ctx.elem_type(np.float32)}, "")])


# -- reductions ---------------------------------------------------------------------------------------

_REDUCE = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax"}


@exports(*_REDUCE)
def _reduce(ctx, op):
    x, axes, keepdims = ctx.name(op.inputs[0]), op.attrs["axes"], op.attrs["keepdims"]
    if axes is not None and len(axes) == 0:            # reduce over no axis: ONNX would reduce all
        ctx.node("Identity", [x], [ctx.out(op)], op)
        return
    onnx_type, inputs, attrs = _REDUCE[op.type], [x], {"keepdims": int(keepdims)}
    if axes is not None:
        if ctx.opset >= (13 if onnx_type == "ReduceSum" else 18):
            inputs.append(ctx.const(op, "axes", np.array(axes, dtype=np.int64)))
        else:
            attrs["axes"] = list(axes)
    ctx.node(onnx_type, inputs, [ctx.out(op)], op, **attrs)


@imports(*_REDUCE, axes=None, keepdims=1, noop_with_empty_axes=0)
def _import_reduce(ctx, node, a):
    axes = a["axes"] if a["axes"] is not None else ctx.static(node, 1, "axes") if ctx.present(node, 1) else None
    if axes is not None and len(axes) == 0:
        axes = () if a["noop_with_empty_axes"] else None
    builder = {"ReduceSum": ops.reduce_sum, "ReduceMean": ops.reduce_mean, "ReduceMax": ops.reduce_max}
    axis = None if axes is None else tuple(int(v) for v in axes)
    return [builder[node.op_type](ctx.tensor(node, 0), axis, keepdims=bool(a["keepdims"]),
                                  name=ctx.op_name(node))]


@exports("ArgMax")
def _argmax(ctx, op):
    axis = op.attrs["axis"]
    flat = [("Reshape", [ctx.const(op, "flat_shape", np.array([-1], np.int64))], {}, "flat")]  # over all
    ctx.chain(op, ctx.name(op.inputs[0]), (flat if axis is None else []) +
              [("ArgMax", [], {"axis": 0 if axis is None else axis, "keepdims": 0}, "")])


@imports("ArgMax", axis=0, keepdims=1, select_last_index=0)
def _import_argmax(ctx, node, a):
    if a["select_last_index"]:
        raise ctx.fail(node, "select_last_index=1 is not supported (staticgraph's argmax picks the first)")
    x = ctx.tensor(node, 0)
    out = ops.argmax(x, a["axis"], name=None if a["keepdims"] else ctx.op_name(node))
    return [ops.expand_dims(out, a["axis"] % x.ndim, name=ctx.op_name(node)) if a["keepdims"] else out]


# -- neural-network ops ---------------------------------------------------------------------------------

@exports("Conv")
def _conv(ctx, op):
    at = op.attrs
    kernel = op.inputs[1].shape[2:]
    if None in kernel:
        raise ctx.fail(op, f"the kernel size of weight '{op.inputs[1].name}' must be known")
    ctx.node("Conv", [ctx.name(t) for t in op.inputs], [ctx.out(op)], op, kernel_shape=list(kernel),
             strides=list(at["stride"]), pads=list(at["padding"]) * 2, dilations=list(at["dilation"]),
             group=at["groups"])


def _symmetric_pads(ctx, node, pads, d: int):
    pads = [0] * (2 * d) if pads is None else [int(p) for p in pads]
    if pads[:d] != pads[d:]:
        raise ctx.fail(node, f"pads {pads} differ at the begin and end of an axis; only symmetric padding "
                             f"is supported")
    return tuple(pads[:d])


def _window_attrs(ctx, node, a, x):
    if a["auto_pad"] not in ("NOTSET", "VALID"):
        raise ctx.fail(node, f"auto_pad={a['auto_pad']!r} is not supported (only explicit pads)")
    d = len(a["kernel_shape"]) if a.get("kernel_shape") is not None else x.ndim - 2
    if d not in (1, 2, 3):
        raise ctx.fail(node, f"{d} spatial dims: only 1, 2 or 3 are supported")
    ones = (1,) * d
    return d, dict(stride=tuple(a["strides"] or ones), padding=_symmetric_pads(ctx, node, a["pads"], d),
                   dilation=tuple(a["dilations"] or ones))


@imports("Conv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None)
def _import_conv(ctx, node, a):
    x, w = ctx.tensor(node, 0), ctx.tensor(node, 1)
    d, window = _window_attrs(ctx, node, a, x)
    if a["kernel_shape"] is not None and w.shape is not None and tuple(a["kernel_shape"]) != tuple(w.shape[2:]):
        raise ctx.fail(node, f"kernel_shape {a['kernel_shape']} differs from weight shape {w.shape}")
    bias = ctx.tensor(node, 2) if ctx.present(node, 2) else None
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[d]
    return [conv(x, w, bias, groups=a["group"], name=ctx.op_name(node), **window)]


def _axis0(ctx, op) -> str:
    return ctx.const(op, "axis0", np.array([0], np.int64))


def _batch_steps(ctx, op, step: tuple, unbatched: bool) -> list:
    """``step`` (a node that needs a batch axis) between an Unsqueeze and a Squeeze of axis 0 when
    ``op``'s input is ``unbatched``."""
    if not unbatched:
        return [step]
    return [("Unsqueeze", [_axis0(ctx, op)], {}, "batched"), step, ("Squeeze", [_axis0(ctx, op)], {}, "unbatched")]


def _pool_input(ctx, op):
    """The pooled tensor and whether it is unbatched (C, *spatial)."""
    x = op.inputs[0]
    if x.ndim is None:
        raise ctx.fail(op, f"pooling '{x.name}' needs a known rank")
    return x, x.ndim == len(op.attrs["kernel_size"]) + 1


def _pool_attrs(at) -> dict:
    return dict(kernel_shape=list(at["kernel_size"]), strides=list(at["stride"]), pads=list(at["padding"]) * 2,
                ceil_mode=int(at["ceil_mode"]))


@exports("MaxPool")
def _max_pool(ctx, op):
    """ONNX MaxPool; its Indices (flat over the whole tensor), when needed, taken modulo the plane
    size give PyTorch's per-plane indices."""
    (x, unbatched), at = _pool_input(ctx, op), op.attrs
    attrs = dict(dilations=list(at["dilation"]), **_pool_attrs(at))
    if not ctx.needed(op.outputs[1]):
        ctx.chain(op, ctx.name(x), _batch_steps(ctx, op, ("MaxPool", [], attrs, "pool"), unbatched))
        return
    plane = x.shape[-len(at["kernel_size"]):]
    if None in plane:
        raise ctx.fail(op, f"exporting max-pool indices needs the spatial size of '{x.name}' (shape {x.shape})")
    x_name = ctx.name(x)
    if unbatched:
        ctx.node("Unsqueeze", [x_name, _axis0(ctx, op)], [ctx.temp(op, "batched")], op, part="batched")
        x_name = ctx.temp(op, "batched")
    values, indices = (ctx.temp(op, "values"), ctx.temp(op, "indices")) if unbatched else \
        (ctx.out(op, 0), ctx.out(op, 1))
    ctx.node("MaxPool", [x_name], [values, ctx.temp(op, "flat_indices")], op, **attrs)
    ctx.node("Mod", [ctx.temp(op, "flat_indices"), ctx.const(op, "plane", np.array(math.prod(plane), np.int64))],
             [indices], op, part="indices")
    if unbatched:
        for i, name in enumerate((values, indices)):
            ctx.node("Squeeze", [name, _axis0(ctx, op)], [ctx.out(op, i)], op, part=f"unbatched{i}")


@exports("AvgPool")
def _avg_pool(ctx, op):
    (x, unbatched), at = _pool_input(ctx, op), op.attrs
    step = ("AveragePool", [], dict(count_include_pad=int(at["count_include_pad"]), **_pool_attrs(at)), "pool")
    ctx.chain(op, ctx.name(x), _batch_steps(ctx, op, step, unbatched))


_POOL_ATTRS = dict(auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None, strides=None)


@imports("MaxPool", storage_order=0, **_POOL_ATTRS)
def _import_max_pool(ctx, node, a):
    """The values; the flat Indices (if wanted) only through a Mod by the plane size, the form
    the exporter writes for PyTorch's per-plane indices."""
    if a["storage_order"]:
        raise ctx.fail(node, "storage_order=1 is not supported")
    x = ctx.tensor(node, 0)
    d, window = _window_attrs(ctx, node, a, x)
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[d]
    values, indices = pool(x, tuple(a["kernel_shape"]), ceil_mode=bool(a["ceil_mode"]), return_indices=True,
                           name=ctx.op_name(node), **window)
    plane = None if x.shape is None or None in x.shape[2:] else math.prod(x.shape[2:])
    return [values, Partial(indices, INDICES_READERS, plane)]


@imports("Mod", fmod=0)
def _import_mod(ctx, node, a):
    indices = ctx.partial(node, 0, INDICES_READERS)
    divisor = ctx.static(node, 1)
    if indices is None or divisor is None or indices.info is None or int(divisor) != indices.info:
        raise ctx.fail(node, "Mod is only supported on MaxPool's Indices by the size of the pooled plane")
    return [ops.identity(indices.tensor, name=ctx.op_name(node))]


@imports("AveragePool", count_include_pad=0, **_POOL_ATTRS)
def _import_avg_pool(ctx, node, a):
    x = ctx.tensor(node, 0)
    d, window = _window_attrs(ctx, node, a, x)
    if any(v != 1 for v in window.pop("dilation")):
        raise ctx.fail(node, f"dilations {a['dilations']} are not supported for average pooling")
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[d]
    return [pool(x, tuple(a["kernel_shape"]), ceil_mode=bool(a["ceil_mode"]),
                 count_include_pad=bool(a["count_include_pad"]), name=ctx.op_name(node), **window)]


@exports("Softmax", "LogSoftmax")
def _softmax(ctx, op):
    ctx.node(op.type, [ctx.name(op.inputs[0])], [ctx.out(op)], op, axis=op.attrs["axis"])


@imports("Softmax", "LogSoftmax", axis=-1)
def _import_softmax(ctx, node, a):
    if ctx.opset < 13:
        raise ctx.fail(node, f"opset {ctx.opset} {node.op_type} (over flattened trailing axes) is not "
                             f"supported; opset 13 or later is")
    fn = F.softmax if node.op_type == "Softmax" else F.log_softmax
    return [fn(ctx.tensor(node, 0), a["axis"], name=ctx.op_name(node))]


@exports("NllLoss")
def _nll_loss(ctx, op):
    """NegativeLogLikelihoodLoss with reduction "none" (the reductions are ops of their own); an
    unbatched (C,) input and its () label get a batch axis of one, which the result loses again."""
    logp, labels = op.inputs
    step = ("NegativeLogLikelihoodLoss", [ctx.name(labels)], {"reduction": "none"}, "loss")
    if logp.ndim != 1:
        ctx.chain(op, ctx.name(logp), [step])
        return
    ctx.node("Unsqueeze", [ctx.name(labels), _axis0(ctx, op)], [ctx.temp(op, "labels")], op, part="labels")
    step = (step[0], [ctx.temp(op, "labels")], *step[2:])
    ctx.chain(op, ctx.name(logp), _batch_steps(ctx, op, step, True))


@imports("NegativeLogLikelihoodLoss", reduction="mean", ignore_index=None)
def _import_nll_loss(ctx, node, a):
    if a["ignore_index"] is not None:
        raise ctx.fail(node, "ignore_index is not supported")
    if ctx.present(node, 2):
        raise ctx.fail(node, "class weights (input 3) are not supported")
    reduction = a["reduction"].decode() if isinstance(a["reduction"], bytes) else a["reduction"]
    return [F.nll_loss(ctx.tensor(node, 0), ctx.tensor(node, 1), reduction, name=ctx.op_name(node))]


@imports("Gemm", alpha=1.0, beta=1.0, transA=0, transB=0)
def _import_gemm(ctx, node, a):
    """``alpha * A' @ B' + beta * C`` (PyTorch writes its Linear layers so)."""
    m, n = ctx.tensor(node, 0), ctx.tensor(node, 1)
    m = ops.transpose(m, (1, 0)) if a["transA"] else m
    n = ops.transpose(n, (1, 0)) if a["transB"] else n
    has_c = ctx.present(node, 2)
    out = ops.matmul(m, n, name=None if has_c or a["alpha"] != 1 else ctx.op_name(node))
    if a["alpha"] != 1:
        out = ops.multiply(out, float(a["alpha"]), name=None if has_c else ctx.op_name(node))
    if has_c:
        c = ctx.tensor(node, 2)
        c = ops.multiply(c, float(a["beta"])) if a["beta"] != 1 else c
        out = ops.add(out, c, name=ctx.op_name(node))
    return [out]
