"""Max and average pooling over the last 1-3 (spatial) axes, PyTorch semantics: forward and backward ops.

Op types (one generic N-d op per kind; ``k = len(kernel_size)`` spatial axes; the input is
``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; attributes are tuples of ``k`` ints):

- ``MaxPool(x; kernel_size, stride, padding, dilation, ceil_mode)`` -> ``(values, indices)``:
  ``indices`` (int64) index the flattened spatial plane of the unpadded input (PyTorch's
  convention); padding acts as -inf; NaN wins (the last NaN of a window, as PyTorch).
- ``MaxPoolGrad(grad, indices, input_like; spatial_dims)``: scatter-add of ``grad`` at ``indices``
  into zeros shaped like ``input_like`` (shape only). Linear in ``grad``.
- ``MaxPoolGather(a, indices; spatial_dims)``: ``a``'s planes read at ``indices``; the
  gradient of ``MaxPoolGrad`` in ``grad``, and its gradient is ``MaxPoolGrad`` again.
- ``AvgPool(x; kernel_size, stride, padding, ceil_mode, count_include_pad)``: window means.
- ``AvgPoolGrad(grad, input_like; same attributes)``: the transpose of ``AvgPool``; its
  gradient in ``grad`` is ``AvgPool``.

Output sizes follow PyTorch's ``pooling_output_shape``: with ``ceil_mode`` a last window is kept
only if it starts inside the input or the left padding, and it is clipped to the padded input
(the ``avg_pool`` divisor counts the clipped window, or only valid elements with
``count_include_pad=False``). Padding must be at most half the effective kernel
``(k - 1) * dilation + 1`` (PyTorch's documented rule; its max_pool2d-with-indices/3d paths check
``k // 2`` instead and its avg_pool3d also wants the unpadded input at least the kernel: those
stricter PyTorch-only rejections are not copied). An output size below 1 is an error.

The reference implementations loop over the kernel offsets only (strided views of the padded
input), never over pixels.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .. import dtypes
from ..shapes import compatible, fmt
from ..tensor import Tensor
from .core import TensorLike, as_tensor, builder, def_op, make

IntOrTuple = Union[int, Sequence[int]]
_LAYOUT = {1: "L", 2: "H, W", 3: "D, H, W"}


# -- sizes and checks shared by inference and the reference implementations ---------------------

def _check_window(kernel_size, stride, padding, dilation) -> None:
    """Positive kernel/stride/dilation, padding in [0, effective kernel // 2] (PyTorch's rule)."""
    for what, values in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if any(v <= 0 for v in values):
            raise ValueError(f"{what} must be positive, got {values}")
    if any(p < 0 for p in padding):
        raise ValueError(f"padding must be non-negative, got {padding}")
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel_size, dilation))
    if any(p > e // 2 for p, e in zip(padding, effective)):
        raise ValueError(f"padding {padding} should be at most half of the effective kernel size {effective} "
                         f"(kernel_size {kernel_size}, dilation {dilation})")


def _out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape`` for one axis."""
    out = (n + 2 * p - (k - 1) * d - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:   # the last window would start in the right padding
        out -= 1
    return out


def _out_spatial(x_name: str, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Output spatial sizes (None where the input size is unknown); ValueError naming ``x`` when empty."""
    k = len(kernel_size)
    spatial = tuple(x_shape[-k:])
    if any(n == 0 for n in spatial):
        raise ValueError(f"input '{x_name}' of shape {fmt(tuple(x_shape))} has an empty spatial axis")
    outs = tuple(None if n is None else _out_size(n, *w, ceil_mode)
                 for n, w in zip(spatial, zip(kernel_size, stride, padding, dilation)))
    if any(o is not None and o < 1 for o in outs):
        effective = tuple((kk - 1) * d + 1 for kk, d in zip(kernel_size, dilation))
        raise ValueError(f"input '{x_name}' of shape {fmt(tuple(x_shape))}: spatial size "
                         f"{fmt(spatial)} with padding {padding} is smaller than the effective kernel size "
                         f"{effective} (output size would be {outs})")
    return outs


def _check_rank(x_name: str, x_shape, k: int) -> None:
    if len(x_shape) not in (k + 1, k + 2):
        raise ValueError(f"expected a {k + 1}-D (C, {_LAYOUT[k]}) or {k + 2}-D (N, C, {_LAYOUT[k]}) input, "
                         f"got '{x_name}' of shape {fmt(tuple(x_shape))}")


def _pool_shape(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode):
    """Static output shape of a pooling of ``x`` (validates the window and ``x``)."""
    _check_window(kernel_size, stride, padding, dilation)
    if x.shape is None:
        return None
    k = len(kernel_size)
    _check_rank(x.name, x.shape, k)
    outs = _out_spatial(x.name, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return tuple(x.shape[:-k]) + outs


def _starts(n_out: int, s: int, p: int) -> np.ndarray:
    return np.arange(n_out, dtype=np.int64) * s - p


def _padded(x: np.ndarray, kernel_size, stride, padding, dilation, outs, fill) -> np.ndarray:
    """``x`` padded by ``padding`` on both sides, and on the right far enough for every window."""
    k = len(kernel_size)
    widths = [(0, 0)] * (x.ndim - k)
    for n, kk, s, p, d, o in zip(x.shape[-k:], kernel_size, stride, padding, dilation, outs):
        need = (o - 1) * s + (kk - 1) * d + 1
        widths.append((p, max(0, need - n - p)))
    if not any(w for pair in widths for w in pair):
        return x
    return np.pad(x, widths, constant_values=fill)


def _window_slices(offset, stride, dilation, outs) -> tuple:
    """Index of the elements at kernel ``offset`` of every window, in the padded input."""
    return (Ellipsis,) + tuple(slice(j * d, j * d + (o - 1) * s + 1, s)
                               for j, s, d, o in zip(offset, stride, dilation, outs))


def _flat(per_axis: Sequence[np.ndarray], spatial: Sequence[int]) -> np.ndarray:
    """Flat (row-major) plane index from per-axis positions, broadcast over the output grid."""
    k = len(per_axis)
    total = np.zeros((1,) * k, dtype=np.int64)
    stride = 1
    for axis in reversed(range(k)):
        shape = [1] * k
        shape[axis] = -1
        total = total + per_axis[axis].reshape(shape) * stride
        stride *= spatial[axis]
    return total


def _run_checks(x: np.ndarray, kernel_size, stride, padding, dilation, ceil_mode):
    _check_rank("input", x.shape, len(kernel_size))
    return _out_spatial("input", x.shape, kernel_size, stride, padding, dilation, ceil_mode)


# -- max pooling -----------------------------------------------------------------------------------------

def _max_pool_infer(x, kernel_size, stride, padding, dilation, ceil_mode):
    if not (dtypes.is_floating(x.dtype) or dtypes.is_integer(x.dtype)):
        raise TypeError(f"max pooling takes a real (integer or floating) tensor, got '{x.name}' of dtype "
                        f"{x.dtype.name}")
    shape = _pool_shape(x, kernel_size, stride, padding, dilation, ceil_mode)
    return [(shape, x.dtype), (shape, dtypes.int64)]


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _max_pool_reference(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max over the stacked window elements with PyTorch's index rules: the first maximum in window
    order wins, NaN propagates (the index of a window's last NaN), and where nothing beats the padding
    value the index is the window's first in-bounds element."""
    outs = _run_checks(x, kernel_size, stride, padding, dilation, ceil_mode)
    k = len(kernel_size)
    spatial = x.shape[-k:]
    fill = _lowest(x.dtype)
    xp = _padded(x, kernel_size, stride, padding, dilation, outs, fill)
    offsets = list(itertools.product(*(range(kk) for kk in kernel_size)))
    windows = np.stack([xp[_window_slices(offset, stride, dilation, outs)] for offset in offsets])
    best = windows.max(axis=0)
    which = np.zeros(best.shape, dtype=np.int32)      # offsets before the first maximum: its number
    pending = np.ones(best.shape, dtype=bool)
    for window in windows:
        pending &= window != best
        which += pending
    if x.dtype.kind == "f":
        nan = np.isnan(best)
        if nan.any():
            for number, window in enumerate(windows):
                np.copyto(which, number, where=nan & np.isnan(window))
    np.copyto(which, -1, where=best == fill)             # -1: the window's first in-bounds element
    starts = [_starts(o, s, p) for o, s, p in zip(outs, stride, padding)]
    first = [np.where(st < 0, st + (-st + d - 1) // d * d, st) for st, d in zip(starts, dilation)]
    plane_strides = [math.prod(spatial[i + 1:]) for i in range(k)]
    offset_flat = np.array([sum(j * d * ps for j, d, ps in zip(offset, dilation, plane_strides))
                            for offset in offsets] + [0], dtype=np.int64)
    indices = np.where(which >= 0, _flat(starts, spatial) + offset_flat[which], _flat(first, spatial))
    return best, indices.astype(np.int64, copy=False)


def _max_pool_grad(op, g, g_indices=None):
    x, indices = op.inputs[0], op.outputs[1]
    return [lambda: max_pool_grad(g, indices, x, len(op.attrs["kernel_size"]))]


def _planes(a: np.ndarray, spatial_dims: int) -> np.ndarray:
    """``a`` as (leading elements, flattened plane)."""
    lead = a.shape[:a.ndim - spatial_dims]
    return a.reshape(math.prod(lead), math.prod(a.shape[a.ndim - spatial_dims:]))


def _valid(indices: np.ndarray, plane: int) -> Optional[np.ndarray]:
    """Mask of in-plane indices, or None when all are (out-of-plane ones only come from windows
    with no input element, whose value is the padding)."""
    if indices.size == 0 or (indices.min() >= 0 and indices.max() < plane):
        return None
    return (indices >= 0) & (indices < plane)


def _check_like(grad_shape, indices_shape, like_shape, spatial_dims):
    if tuple(grad_shape) != tuple(indices_shape) or len(like_shape) != len(indices_shape) \
            or tuple(like_shape[:-spatial_dims]) != tuple(indices_shape[:-spatial_dims]):
        raise ValueError(f"grad {grad_shape} and indices {indices_shape} do not match the input {like_shape}")


def _max_pool_grad_reference(grad, indices, like, spatial_dims):
    _check_like(grad.shape, indices.shape, like.shape, spatial_dims)
    out = np.zeros(like.shape, dtype=grad.dtype)
    o2, i2, g2 = _planes(out, spatial_dims), _planes(indices, spatial_dims), _planes(grad, spatial_dims)
    flat = i2 + np.arange(o2.shape[0], dtype=np.int64)[:, None] * o2.shape[1]
    mask = _valid(i2, o2.shape[1])
    if mask is None:
        np.add.at(o2.reshape(-1), flat.reshape(-1), g2.reshape(-1))
    else:
        np.add.at(o2.reshape(-1), flat[mask], g2[mask])
    return out


def _max_pool_gather_reference(a, indices, spatial_dims):
    if a.ndim != indices.ndim or a.shape[:-spatial_dims] != indices.shape[:-spatial_dims]:
        raise ValueError(f"indices {indices.shape} do not match the input {a.shape}")
    a2, i2 = _planes(a, spatial_dims), _planes(indices, spatial_dims)
    mask = _valid(i2, a2.shape[1])
    if mask is None:
        return np.take_along_axis(a2, i2, axis=1).reshape(indices.shape)
    out = np.take_along_axis(a2, np.where(mask, i2, 0), axis=1)
    return np.where(mask, out, np.zeros((), a.dtype)).reshape(indices.shape)


def _max_pool_grad_infer(grad, indices, like, spatial_dims):
    if indices.dtype != dtypes.int64:
        raise TypeError(f"indices '{indices.name}' must be int64, got {indices.dtype.name}")
    if not dtypes.is_floating(grad.dtype):
        raise TypeError(f"gradient '{grad.name}' must be floating, got {grad.dtype.name}")
    if not compatible(grad.shape, indices.shape):
        raise ValueError(f"gradient '{grad.name}' of shape {fmt(grad.shape)} does not match indices "
                         f"'{indices.name}' of shape {fmt(indices.shape)}")
    if grad.shape is not None and like.shape is not None and len(grad.shape) == len(like.shape):
        if not compatible(grad.shape[:-spatial_dims], like.shape[:-spatial_dims]):
            raise ValueError(f"gradient '{grad.name}' of shape {fmt(grad.shape)} does not match the input "
                             f"'{like.name}' of shape {fmt(like.shape)}")
    return like.shape, grad.dtype


def _max_pool_gather_infer(a, indices, spatial_dims):
    if indices.dtype != dtypes.int64:
        raise TypeError(f"indices '{indices.name}' must be int64, got {indices.dtype.name}")
    if a.shape is not None and indices.shape is not None and \
            (len(a.shape) != len(indices.shape)
             or not compatible(a.shape[:-spatial_dims], indices.shape[:-spatial_dims])):
        raise ValueError(f"indices '{indices.name}' of shape {fmt(indices.shape)} do not match '{a.name}' "
                         f"of shape {fmt(a.shape)}")
    return indices.shape, a.dtype


def_op("MaxPool", _max_pool_infer, _max_pool_reference, _max_pool_grad, default_name="max_pool")
def_op("MaxPoolGrad", _max_pool_grad_infer, _max_pool_grad_reference,
       lambda op, g: [max_pool_gather(g, op.inputs[1], op.attrs["spatial_dims"]), None, None],
       default_name="max_pool_grad", value_inputs=(0, 1))
def_op("MaxPoolGather", _max_pool_gather_infer, _max_pool_gather_reference,
       lambda op, g: [max_pool_grad(g, op.inputs[1], op.inputs[0], op.attrs["spatial_dims"]), None],
       default_name="max_pool_gather")


def max_pool_grad(grad: Tensor, indices: Tensor, input_like: Tensor, spatial_dims: int,
                  name: Optional[str] = None) -> Tensor:
    """Zeros shaped like ``input_like`` plus ``grad`` added at the per-plane ``indices`` of a max pool
    over the last ``spatial_dims`` axes."""
    return make("MaxPoolGrad", [grad, indices, input_like], name=name, spatial_dims=int(spatial_dims))


def max_pool_gather(a: Tensor, indices: Tensor, spatial_dims: int, name: Optional[str] = None) -> Tensor:
    """The planes (last ``spatial_dims`` axes) of ``a`` read at the per-plane ``indices``."""
    return make("MaxPoolGather", [a, indices], name=name, spatial_dims=int(spatial_dims))


# -- average pooling ---------------------------------------------------------------------------------------

def _avg_window(kernel_size, stride, padding):
    return kernel_size, stride, padding, (1,) * len(kernel_size)


def _check_avg_dtype(x, what="input"):
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"average pooling takes a floating point {what}, got '{x.name}' of dtype {x.dtype.name}; "
                        f"cast it first")


def _avg_pool_infer(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    _check_avg_dtype(x)
    return _pool_shape(x, *_avg_window(kernel_size, stride, padding), ceil_mode), x.dtype


def _divisor(spatial, outs, kernel_size, stride, padding, count_include_pad, dtype) -> np.ndarray:
    """PyTorch's avg_pool divisor per output position: the window clipped to the padded input, or
    (``count_include_pad=False``) only its input elements. Separable: a product of per-axis counts."""
    total = np.ones((1,) * len(outs), dtype=np.int64)
    for axis, (n, o, kk, s, p) in enumerate(zip(spatial, outs, kernel_size, stride, padding)):
        start = _starts(o, s, p)
        end = np.minimum(start + kk, n + p)
        count = end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        shape = [1] * len(outs)
        shape[axis] = -1
        total = total * count.reshape(shape)
    return np.maximum(total, 1).astype(dtype)


def _avg_pool_reference(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    attrs = _avg_window(kernel_size, stride, padding)
    outs = _run_checks(x, *attrs, ceil_mode)
    k = len(kernel_size)
    xp = _padded(x, *attrs, outs, 0)
    total = np.zeros(x.shape[:-k] + outs, dtype=x.dtype)
    for offset in itertools.product(*(range(kk) for kk in kernel_size)):
        total += xp[_window_slices(offset, stride, attrs[3], outs)]
    total /= _divisor(x.shape[-k:], outs, kernel_size, stride, padding, count_include_pad, x.dtype)
    return total


def _avg_pool_grad_reference(grad, like, kernel_size, stride, padding, ceil_mode, count_include_pad):
    attrs = _avg_window(kernel_size, stride, padding)
    outs = _run_checks(like, *attrs, ceil_mode)
    k = len(kernel_size)
    if grad.shape != like.shape[:-k] + outs:
        raise ValueError(f"grad {grad.shape} does not match the pooled shape {like.shape[:-k] + outs}")
    scaled = grad / _divisor(like.shape[-k:], outs, kernel_size, stride, padding, count_include_pad, grad.dtype)
    buf = _padded(np.zeros(like.shape, dtype=grad.dtype), *attrs, outs, 0)
    for offset in itertools.product(*(range(kk) for kk in kernel_size)):
        buf[_window_slices(offset, stride, attrs[3], outs)] += scaled
    crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, like.shape[-k:]))
    return np.ascontiguousarray(buf[crop])


def _avg_pool_grad_infer(grad, like, kernel_size, stride, padding, ceil_mode, count_include_pad):
    _check_avg_dtype(grad, "gradient")
    pooled = _pool_shape(like, *_avg_window(kernel_size, stride, padding), ceil_mode)
    if not compatible(grad.shape, pooled):
        raise ValueError(f"gradient '{grad.name}' of shape {fmt(grad.shape)} does not match the pooled shape "
                         f"{fmt(pooled)} of '{like.name}' {fmt(like.shape)}")
    return like.shape, grad.dtype


def _avg_pool_grad(op, g):
    x = op.inputs[0]
    return [lambda: make("AvgPoolGrad", [g, x], **op.attrs)]


def_op("AvgPool", _avg_pool_infer, _avg_pool_reference, _avg_pool_grad, default_name="avg_pool")
def_op("AvgPoolGrad", _avg_pool_grad_infer, _avg_pool_grad_reference,
       lambda op, g: [make("AvgPool", [g], **op.attrs), None], default_name="avg_pool_grad", value_inputs=(0,))


# -- public builders -----------------------------------------------------------------------------------------

def _ints(value: IntOrTuple, k: int, what: str, fn: str) -> Tuple[int, ...]:
    """An int or a tuple of 1 or ``k`` ints as a ``k``-tuple (PyTorch's ``_single/_pair/_triple``)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{fn}: {what} must be an int or a tuple of ints, got {value!r}")
    if len(items) == 1:
        items = items * k
    if len(items) != k:
        raise ValueError(f"{fn}: {what} must be an int or a tuple of {k} ints, got {value!r}")
    return tuple(int(v) for v in items)


def _window(k: int, fn: str, kernel_size, stride, padding, dilation=1):
    kernel = _ints(kernel_size, k, "kernel_size", fn)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else _ints(stride, k, "stride", fn)
    return dict(kernel_size=kernel, stride=stride, padding=_ints(padding, k, "padding", fn),
                dilation=_ints(dilation, k, "dilation", fn))


def _max_pool(k: int, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, name):
    fn = f"max_pool{k}d"
    x = as_tensor(input)
    window = _window(k, fn, kernel_size, stride, padding, dilation)
    values, indices = make("MaxPool", [x], name=name or fn, ceil_mode=bool(ceil_mode), **window)
    return (values, indices) if return_indices else values


def _avg_pool(k: int, input, kernel_size, stride, padding, ceil_mode, count_include_pad, name):
    fn = f"avg_pool{k}d"
    x = as_tensor(input)
    window = _window(k, fn, kernel_size, stride, padding)
    del window["dilation"]
    return make("AvgPool", [x], name=name or fn, ceil_mode=bool(ceil_mode),
                count_include_pad=bool(count_include_pad), **window)


@builder("max_pool1d")
def max_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, name: Optional[str] = None):
    """1-D max pooling of an (N, C, L) or (C, L) tensor (PyTorch's ``F.max_pool1d``); with
    ``return_indices`` a tuple ``(values, int64 indices into the flattened input plane)``."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, name)


@builder("max_pool2d")
def max_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, name: Optional[str] = None):
    """2-D max pooling of an (N, C, H, W) or (C, H, W) tensor (PyTorch's ``F.max_pool2d``); with
    ``return_indices`` a tuple ``(values, int64 indices into the flattened input plane)``."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, name)


@builder("max_pool3d")
def max_pool3d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, name: Optional[str] = None):
    """3-D max pooling of an (N, C, D, H, W) or (C, D, H, W) tensor (PyTorch's ``F.max_pool3d``); with
    ``return_indices`` a tuple ``(values, int64 indices into the flattened input volume)``."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, name)


@builder("avg_pool1d")
def avg_pool1d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               name: Optional[str] = None) -> Tensor:
    """1-D average pooling of an (N, C, L) or (C, L) floating tensor (PyTorch's ``F.avg_pool1d``)."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, name)


@builder("avg_pool2d")
def avg_pool2d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               name: Optional[str] = None) -> Tensor:
    """2-D average pooling of an (N, C, H, W) or (C, H, W) floating tensor (PyTorch's ``F.avg_pool2d``)."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, name)


@builder("avg_pool3d")
def avg_pool3d(input: TensorLike, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               name: Optional[str] = None) -> Tensor:
    """3-D average pooling of an (N, C, D, H, W) or (C, D, H, W) floating tensor (PyTorch's
    ``F.avg_pool3d``)."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, name)
