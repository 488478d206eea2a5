"""Reductions, ``argmax``, ``norm`` and the shape-following ops used by gradients
(``broadcast_like``, ``sum_to_like``, ``reduced_count``)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes
from ..shapes import broadcast, fmt, normalize_axes, num_elements, reduced
from ..tensor import Tensor
from .core import TensorLike, as_tensor, def_op, make


# -- shape-following ops (their second input only supplies a run-time shape) ----------------

def _broadcast_like_infer(a, ref):
    if ref.shape is not None and a.shape is not None:
        try:
            broadcast(a.shape, ref.shape)
        except ValueError:
            raise ValueError(f"cannot broadcast {fmt(a.shape)} to the shape {fmt(ref.shape)} of "
                             f"'{ref.name}'") from None
    return ref.shape, a.dtype


def _sum_to_shape(a: np.ndarray, shape) -> np.ndarray:
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape) if d == 1 and a.shape[i + lead] != 1)
    out = a.sum(axis=axes, keepdims=True, dtype=a.dtype) if axes else a
    return out.reshape(shape)


def_op("BroadcastLike", _broadcast_like_infer, lambda a, ref: np.broadcast_to(a, ref.shape),
       lambda op, g: [sum_to_like(g, op.inputs[0]), None], default_name="broadcast_like", value_inputs=(0,))
def_op("SumToLike", lambda a, ref: (ref.shape, a.dtype), lambda a, ref: _sum_to_shape(a, ref.shape),
       lambda op, g: [broadcast_like(g, op.inputs[0]), None], default_name="sum_to_like", value_inputs=(0,))


def broadcast_like(a: TensorLike, ref: Tensor, name: Optional[str] = None) -> Tensor:
    """``a`` broadcast to the run-time shape of ``ref``."""
    a = as_tensor(a)
    if a.shape is not None and a.shape == ref.shape and None not in a.shape:
        return a
    return make("BroadcastLike", [a, ref], name=name)


def sum_to_like(a: Tensor, ref: Tensor, name: Optional[str] = None) -> Tensor:
    """Sum ``a`` over the axes along which ``ref`` was broadcast to it (the adjoint of broadcast_like)."""
    return make("SumToLike", [a, ref], name=name)


def _count_infer(x, axes, dtype):
    return (), dtype


def _count_reference(x, axes, dtype):
    dims = x.shape if axes is None else [x.shape[a] for a in axes]
    return np.asarray(num_elements(dims), dtype=dtype)


def_op("ReducedCount", _count_infer, _count_reference, None, default_name="reduced_count")


def reduced_count(x: Tensor, axes, dtype) -> TensorLike:
    """Number of elements of ``x`` along ``axes`` (a Python number when static)."""
    dims = x.shape if x.shape is None or axes is None else [x.shape[a] for a in axes]
    n = None if dims is None else num_elements(dims)
    return float(n) if n is not None else make("ReducedCount", [x], axes=axes, dtype=dtype)


# -- reductions -------------------------------------------------------------------------------

def _reduce_infer(type_):
    def infer(x, axes, keepdims):
        if x.dtype == dtypes.bool_:
            raise TypeError(f"{type_} does not take bool tensor '{x.name}'; cast it first")
        if x.shape is not None and axes is not None:
            normalize_axes(axes, len(x.shape))
        return reduced(x.shape, axes, keepdims), x.dtype
    return infer


def _expand_reduced(g: Tensor, x: Tensor, axes, keepdims: bool) -> Tensor:
    """Re-insert reduced axes into ``g`` so it broadcasts against ``x``."""
    from .array import expand_dims
    if keepdims or g.ndim == 0 or axes is None:
        return g
    return expand_dims(g, axes)


def _sum_grad(op, g):
    x = op.inputs[0]
    return [broadcast_like(_expand_reduced(g, x, op.attrs["axes"], op.attrs["keepdims"]), x)]


def _mean_grad(op, g):
    x, axes = op.inputs[0], op.attrs["axes"]
    return [broadcast_like(_expand_reduced(g, x, axes, op.attrs["keepdims"]), x)
            / reduced_count(x, axes, x.dtype)]


def _max_grad(op, g):
    from .array import cast
    from .math import equal
    x, axes, keepdims = op.inputs[0], op.attrs["axes"], op.attrs["keepdims"]
    y = broadcast_like(_expand_reduced(op.outputs[0], x, axes, keepdims), x)
    mask = cast(equal(x, y), x.dtype)
    ties = reduce_sum(mask, axes, keepdims=True)
    return [mask * broadcast_like(_expand_reduced(g, x, axes, keepdims), x) / ties]


def _np_reduce(fn):
    return lambda x, axes, keepdims: np.asarray(fn(x, axis=axes, keepdims=keepdims)).astype(x.dtype, copy=False)


def_op("ReduceSum", _reduce_infer("reduce_sum"), _np_reduce(np.sum), _sum_grad, default_name="sum")
def_op("ReduceMean", _reduce_infer("reduce_mean"), _np_reduce(np.mean), _mean_grad, default_name="mean")
def_op("ReduceMax", _reduce_infer("reduce_max"), _np_reduce(np.max), _max_grad, default_name="max")


def _reduction(type_: str, name: str):
    def builder(input: TensorLike, axis=None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
        x = as_tensor(input)
        try:
            axes = normalize_axes(axis, x.ndim) if axis is not None else None
        except ValueError as exc:
            raise ValueError(f"{builder.__name__}: {exc} (tensor '{x.name}' of shape {fmt(x.shape)})") from None
        return make(type_, [x], name=name, axes=axes, keepdims=bool(keepdims))
    builder.__name__ = name
    builder.__doc__ = f"{name} over ``axis`` (None: all axes; an int or a tuple of ints)."
    return builder


reduce_sum = _reduction("ReduceSum", "reduce_sum")
reduce_mean = _reduction("ReduceMean", "reduce_mean")
reduce_max = _reduction("ReduceMax", "reduce_max")


def _argmax_infer(x, axis):
    if x.dtype == dtypes.bool_:
        raise TypeError("argmax does not take bool tensors")
    if axis is None:
        return (), dtypes.int64
    if x.shape is None:
        return None, dtypes.int64
    (a,) = normalize_axes(axis, len(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i != a), dtypes.int64


def_op("ArgMax", _argmax_infer, lambda x, axis: np.argmax(x, axis=axis).astype(np.int64), None,
       default_name="argmax")


def argmax(input: TensorLike, axis: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """Index of the largest value along ``axis`` (flattened when None); int64, not differentiable."""
    x = as_tensor(input)
    if axis is not None and x.ndim is not None:
        (axis,) = normalize_axes(axis, x.ndim)
    return make("ArgMax", [x], name=name, axis=axis)


def norm(input: TensorLike, name: Optional[str] = None) -> Tensor:
    """L2 norm of all elements: ``sqrt(sum(x**2))``."""
    from .math import sqrt, square
    x = as_tensor(input)
    return sqrt(reduce_sum(square(x)), name=name or "norm")
