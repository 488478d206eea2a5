"""Shape and layout ops: reshape, transpose, concat/stack, indexing, casts, fills, one_hot."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import dtypes
from ..shapes import fmt, normalize_axes, num_elements
from ..tensor import Tensor
from .core import TensorLike, as_tensor, def_op, graph_of, make


# -- reshape ------------------------------------------------------------------------------------

def _reshape_infer(x, shape):
    if list(shape).count(-1) > 1:
        raise ValueError(f"only one -1 is allowed in the target shape {shape}")
    if any(d < -1 for d in shape):
        raise ValueError(f"invalid target shape {shape}")
    known = num_elements(d for d in shape if d != -1)
    total = None if x.shape is None else num_elements(x.shape)
    if -1 in shape:
        if total is None:
            fill = None
        elif known == 0 or total % known:
            raise ValueError(f"cannot reshape '{x.name}' of shape {fmt(x.shape)} ({total} elements) "
                             f"into {tuple(shape)}")
        else:
            fill = total // known
        return tuple(fill if d == -1 else d for d in shape), x.dtype
    if total is not None and total != known:
        raise ValueError(f"cannot reshape '{x.name}' of shape {fmt(x.shape)} ({total} elements) into "
                         f"{tuple(shape)} ({known} elements)")
    return tuple(shape), x.dtype


def_op("Reshape", _reshape_infer, lambda x, shape: np.reshape(x, shape),
       lambda op, g: [reshape_like(g, op.inputs[0])], default_name="reshape")
def_op("ReshapeLike", lambda a, ref: (ref.shape, a.dtype), lambda a, ref: np.reshape(a, ref.shape),
       lambda op, g: [reshape_like(g, op.inputs[0]), None], default_name="reshape_like", value_inputs=(0,))


def reshape(x: TensorLike, shape: Sequence[int], name: Optional[str] = None) -> Tensor:
    """``x`` with a new shape (one ``-1`` allowed)."""
    x = as_tensor(x)
    shape = tuple(int(d) for d in ((shape,) if isinstance(shape, int) else shape))
    return make("Reshape", [x], name=name, shape=shape)


def reshape_like(a: Tensor, ref: Tensor, name: Optional[str] = None) -> Tensor:
    """``a`` reshaped to the run-time shape of ``ref``."""
    if a.shape is not None and a.shape == ref.shape and None not in a.shape:
        return a
    return make("ReshapeLike", [a, ref], name=name)


def _expand_infer(x, axes):
    if x.shape is None:
        return None, x.dtype
    out = list(x.shape)
    for a in axes:
        if not 0 <= a <= len(out):
            raise ValueError(f"axis {a} out of range for expand_dims of shape {fmt(x.shape)}")
        out.insert(a, 1)
    return tuple(out), x.dtype


def_op("ExpandDims", _expand_infer, lambda x, axes: np.expand_dims(x, axes),
       lambda op, g: [reshape_like(g, op.inputs[0])], default_name="expand_dims")


def expand_dims(x: TensorLike, axis, name: Optional[str] = None) -> Tensor:
    """Insert size-1 axes at ``axis`` (an int or ints, positions in the result)."""
    x = as_tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if x.ndim is not None:
        axes = normalize_axes(axes, x.ndim + len(axes))
    return make("ExpandDims", [x], name=name, axes=tuple(sorted(axes)))


# -- transpose ------------------------------------------------------------------------------------

def _transpose_infer(x, perm):
    if x.shape is None:
        return None, x.dtype
    if perm is None:
        return tuple(reversed(x.shape)), x.dtype
    if sorted(perm) != list(range(len(x.shape))):
        raise ValueError(f"perm {perm} is not a permutation of the {len(x.shape)} axes of "
                         f"'{x.name}' (shape {fmt(x.shape)})")
    return tuple(x.shape[p] for p in perm), x.dtype


def _transpose_grad(op, g):
    perm = op.attrs["perm"]
    return [transpose(g, None if perm is None else tuple(int(i) for i in np.argsort(perm)))]


def_op("Transpose", _transpose_infer, lambda x, perm: np.transpose(x, perm), _transpose_grad,
       default_name="transpose")


def transpose(input: TensorLike, perm: Optional[Sequence[int]] = None, name: Optional[str] = None) -> Tensor:
    """NumPy's transpose: ``perm`` is a full permutation; None reverses the axes."""
    x = as_tensor(input)
    if perm is not None:
        # wrap only in-range negative axes: an out-of-range entry must fail the permutation check
        perm = tuple(int(p) + x.ndim if x.ndim and -x.ndim <= int(p) < 0 else int(p) for p in perm)
    return make("Transpose", [x], name=name, perm=perm)


# -- concat / split / stack -------------------------------------------------------------------------

def _concat_infer(*values, axis):
    first = values[0]
    if any(v.dtype != first.dtype for v in values):
        raise TypeError("concat inputs have different dtypes: " + ", ".join(v.dtype.name for v in values))
    if any(v.shape is None for v in values):
        return None, first.dtype
    ranks = {len(v.shape) for v in values}
    if len(ranks) > 1 or first.ndim == 0:
        raise ValueError("concat inputs must have the same rank >= 1, got shapes "
                         + ", ".join(fmt(v.shape) for v in values))
    out = []
    for i in range(first.ndim):
        dims = [v.shape[i] for v in values]
        if i == axis:
            out.append(None if None in dims else sum(dims))
            continue
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            raise ValueError(f"concat along axis {axis}: shapes " + ", ".join(fmt(v.shape) for v in values)
                             + f" differ in dimension {i}")
        out.append(known.pop() if known else None)
    return tuple(out), first.dtype


def _concat_grad(op, *grads):
    g = grads[0]
    return list(split_like(g, op.inputs, op.attrs["axis"]))


def _split_reference(a, *refs, axis):
    bounds = np.cumsum([r.shape[axis] for r in refs])[:-1]
    return tuple(np.split(a, bounds, axis=axis))


def _split_grad(op, *grads):
    pieces = [g if g is not None else zeros_like(ref) for g, ref in zip(grads, op.inputs[1:])]
    return [concat(pieces, op.attrs["axis"])] + [None] * (len(op.inputs) - 1)


def_op("Concat", _concat_infer, lambda *values, axis: np.concatenate(values, axis=axis), _concat_grad,
       default_name="concat")
def_op("SplitLike", lambda a, *refs, axis: [(r.shape, a.dtype) for r in refs], _split_reference,
       _split_grad, default_name="split_like", value_inputs=(0,))


def concat(values: Sequence[TensorLike], axis: int, name: Optional[str] = None) -> Tensor:
    """Join tensors along an existing ``axis``."""
    if not values:
        raise ValueError("concat needs at least one tensor")
    from .core import operands
    tensors = operands(*values, op_name="concat")
    ndim = next((t.ndim for t in tensors if t.ndim is not None), None)
    if ndim is not None:
        (axis,) = normalize_axes(axis, ndim)
    return make("Concat", list(tensors), name=name, axis=int(axis))


def split_like(a: Tensor, refs: Sequence[Tensor], axis: int):
    """Pieces of ``a`` along ``axis`` sized like ``refs`` at run time (the adjoint of concat)."""
    out = make("SplitLike", [a, *refs], axis=axis)
    return out if isinstance(out, tuple) else (out,)


def stack(values: Sequence[TensorLike], axis: int = 0, name: Optional[str] = None) -> Tensor:
    """Join tensors along a new ``axis``."""
    from .core import operands
    tensors = operands(*values, op_name="stack")
    ndim = next((t.ndim for t in tensors if t.ndim is not None), None)
    if ndim is None:
        raise ValueError("stack needs tensors of known rank")
    (axis,) = normalize_axes(axis, ndim + 1)
    return concat([expand_dims(t, axis) for t in tensors], axis, name=name or "stack")


# -- indexing --------------------------------------------------------------------------------------

def _index_spec(index) -> tuple:
    """Normalise a basic index into a hashable spec of ('int', i) / ('slice', a, b, c) / ('new',) / ('ellipsis',)."""
    items = index if isinstance(index, tuple) else (index,)
    spec = []
    for it in items:
        if isinstance(it, Tensor):
            raise TypeError(f"indexing with tensor '{it.name}' is not supported: only basic indexing "
                            f"(ints, slices, None, ...) is")
        if it is None:
            spec.append(("new",))
        elif it is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(it, slice):
            spec.append(("slice", it.start, it.stop, it.step))
        elif isinstance(it, (int, np.integer)) and not isinstance(it, bool):
            spec.append(("int", int(it)))
        else:
            raise TypeError(f"unsupported index {it!r}: only basic indexing (ints, slices, None, ...)")
    if sum(1 for s in spec if s[0] == "ellipsis") > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    return tuple(spec)


def _np_index(spec) -> tuple:
    out = []
    for s in spec:
        out.append({"new": lambda: None, "ellipsis": lambda: Ellipsis,
                    "int": lambda: s[1], "slice": lambda: slice(*s[1:])}[s[0]]())
    return tuple(out)


def _getitem_infer(x, spec):
    if x.shape is None:
        return None, x.dtype
    consumed = sum(1 for s in spec if s[0] in ("int", "slice"))
    if consumed > len(x.shape):
        raise IndexError(f"too many indices for tensor '{x.name}' of shape {fmt(x.shape)}")
    if not any(s[0] == "ellipsis" for s in spec):
        spec = spec + (("ellipsis",),)
    expanded = []
    for s in spec:
        expanded.extend([("slice", None, None, None)] * (len(x.shape) - consumed) if s[0] == "ellipsis" else [s])
    out, dim = [], 0
    for s in expanded:
        if s[0] == "new":
            out.append(1)
            continue
        size = x.shape[dim]
        if s[0] == "int":
            if size is not None and not -size <= s[1] < size:
                raise IndexError(f"index {s[1]} is out of bounds for axis {dim} with size {size} "
                                 f"(tensor '{x.name}' of shape {fmt(x.shape)})")
        else:
            if s[3] == 0:
                raise ValueError("slice step cannot be zero")
            out.append(None if size is None else len(range(*slice(*s[1:]).indices(size))))
        dim += 1
    return tuple(out), x.dtype


def _scatter_reference(g, ref, spec):
    out = np.zeros(ref.shape, dtype=g.dtype)
    out[_np_index(spec)] = g
    return out


def_op("GetItem", _getitem_infer, lambda x, spec: np.asarray(x[_np_index(spec)]),
       lambda op, g: [scatter_like(g, op.inputs[0], op.attrs["spec"])], default_name="getitem")
def_op("ScatterLike", lambda g, ref, spec: (ref.shape, g.dtype), _scatter_reference,
       lambda op, g: [make("GetItem", [g], spec=op.attrs["spec"]), None], default_name="scatter_like",
       value_inputs=(0,))


def getitem(x: Tensor, index, name: Optional[str] = None) -> Tensor:
    """Basic indexing: ints, slices, ``None``, ``...`` and negative indices."""
    return make("GetItem", [x], name=name, spec=_index_spec(index))


def scatter_like(g: Tensor, ref: Tensor, spec: tuple) -> Tensor:
    """Zeros shaped like ``ref`` with ``g`` written at index ``spec`` (the adjoint of getitem)."""
    return make("ScatterLike", [g, ref], spec=spec)


# -- dtype changes, identity, fills -----------------------------------------------------------------

def _cast_grad(op, g):
    x = op.inputs[0]
    if not (dtypes.is_floating(x.dtype) and dtypes.is_floating(op.attrs["dtype"])):
        return [None]
    return [cast(g, x.dtype)]


def_op("Cast", lambda x, dtype: (x.shape, dtype), lambda x, dtype: np.asarray(x).astype(dtype), _cast_grad,
       default_name="cast")


def cast(x: TensorLike, dtype, name: Optional[str] = None) -> Tensor:
    """``x`` converted to ``dtype`` (casts to integer types pass no gradient)."""
    x = as_tensor(x)
    dtype = dtypes.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    return make("Cast", [x], name=name, dtype=dtype)


def_op("Identity", lambda x: (x.shape, x.dtype), lambda x: x, lambda op, g: [g], default_name="identity")
def_op("StopGradient", lambda x: (x.shape, x.dtype), lambda x: x, None, default_name="stop_gradient")


def identity(x: TensorLike, name: Optional[str] = None) -> Tensor:
    """``x`` unchanged, as a new tensor."""
    return make("Identity", [as_tensor(x)], name=name)


def stop_gradient(x: TensorLike, name: Optional[str] = None) -> Tensor:
    """Identity forward; gradients do not flow through it."""
    return make("StopGradient", [as_tensor(x)], name=name)


def _fill_shape(shape) -> tuple:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(d is None or int(d) < 0 for d in shape):
        raise ValueError(f"fill shapes must be fully known and non-negative, got {shape}")
    return tuple(int(d) for d in shape)


def_op("Fill", lambda shape, value, dtype: (shape, dtype), lambda shape, value, dtype: np.full(shape, value, dtype),
       None, default_name="fill")
def_op("FillLike", lambda x, value, dtype: (x.shape, dtype), lambda x, value, dtype: np.full(x.shape, value, dtype),
       None, default_name="fill_like")


def zeros(shape, dtype=dtypes.float32, name: Optional[str] = None) -> Tensor:
    """A tensor of zeros."""
    return make("Fill", [], name=name or "zeros", graph=graph_of(), shape=_fill_shape(shape), value=0,
                dtype=dtypes.as_dtype(dtype))


def ones(shape, dtype=dtypes.float32, name: Optional[str] = None) -> Tensor:
    """A tensor of ones."""
    return make("Fill", [], name=name or "ones", graph=graph_of(), shape=_fill_shape(shape), value=1,
                dtype=dtypes.as_dtype(dtype))


def zeros_like(x: TensorLike, dtype=None, name: Optional[str] = None) -> Tensor:
    """Zeros with the (run-time) shape of ``x``."""
    x = as_tensor(x)
    return make("FillLike", [x], name=name or "zeros_like", value=0,
                dtype=x.dtype if dtype is None else dtypes.as_dtype(dtype))


def ones_like(x: TensorLike, dtype=None, name: Optional[str] = None) -> Tensor:
    """Ones with the (run-time) shape of ``x``."""
    x = as_tensor(x)
    return make("FillLike", [x], name=name or "ones_like", value=1,
                dtype=x.dtype if dtype is None else dtypes.as_dtype(dtype))


def _one_hot_infer(indices, depth):
    if not dtypes.is_integer(indices.dtype):
        raise TypeError(f"one_hot indices must be integers, got '{indices.name}' of dtype {indices.dtype.name}")
    if depth < 1:
        raise ValueError(f"one_hot depth must be positive, got {depth}")
    return (None if indices.shape is None else indices.shape + (depth,)), dtypes.float32


def_op("OneHot", _one_hot_infer,
       lambda indices, depth: (np.asarray(indices)[..., None] == np.arange(depth)).astype(np.float32), None,
       default_name="one_hot")


def one_hot(indices: TensorLike, depth: int, name: Optional[str] = None) -> Tensor:
    """float32 one-hot encoding on a new last axis (out-of-range indices give all zeros)."""
    return make("OneHot", [as_tensor(indices)], name=name, depth=int(depth))
