"""Convolutions (N-d, NC[D]HW): the forward op and its two backward ops, each one OpDef.

Op types; every one has the attributes ``stride``, ``padding``, ``dilation`` (tuples of d ints,
d = 1, 2 or 3 spatial dims) and ``groups`` (an int):

- ``Conv(input, weight)``: PyTorch's ``conv{d}d`` without bias (a cross-correlation); input
  (N, C, *S), weight (O, C/groups, *K), output (N, O, *out) with
  ``out = floor((S + 2p - dil (K - 1) - 1) / stride) + 1``.
- ``ConvBackpropInput(grad_out, weight, input_like)``: the adjoint of ``Conv`` in its input (a
  transposed convolution), shaped like ``input_like``, which only supplies that run-time shape.
- ``ConvBackpropFilter(input, grad_out, weight_like)``: the adjoint of ``Conv`` in its weight,
  shaped like ``weight_like`` (shape only).

The three are closed under differentiation. With ``<a, b>`` the sum of products,
``<dy, Conv(x, w)> = <ConvBackpropInput(dy, w), x> = <ConvBackpropFilter(x, dy), w>``; so both
backward ops are bilinear and their gradients for an incoming ``gg`` are
``d ConvBackpropInput / d grad_out = Conv(gg, w)``, ``d/d weight = ConvBackpropFilter(gg, grad_out)``,
``d ConvBackpropFilter / d input = ConvBackpropInput(grad_out, gg)``, ``d/d grad_out = Conv(x, gg)``.

The builders add the bias as a separate broadcast ``Add`` of the bias reshaped to (O, 1, ...), so
its gradient is the existing sum-to rule and the conv ops stay bias-free (one kernel less per
backend). The NumPy references are im2col GEMMs: one strided window view copied once into
(groups, C/groups * prod(K), N * prod(out)) columns, one batched ``matmul`` over groups; the input
gradient is one GEMM into columns folded back with one strided ``+=`` per kernel offset.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import dtypes
from ..shapes import fmt
from ..tensor import Tensor
from .array import expand_dims, getitem, reshape
from .core import TensorLike, as_tensor, builder, def_op, make, operands
from .math import add

IntOrTuple = Union[int, Sequence[int]]
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


# -- sizes (shared by shape inference and the run-time references) ----------------------------

def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """PyTorch's output size along one spatial dim."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _check_attrs(stride, padding, dilation, groups) -> None:
    n = len(stride)
    if not (len(padding) == len(dilation) == n and n in (1, 2, 3)):
        raise ValueError(f"stride {stride}, padding {padding} and dilation {dilation} must be tuples of "
                         f"1, 2 or 3 ints, one per spatial dim")
    if any(s < 1 for s in stride):
        raise ValueError(f"stride must be positive, got {stride}")
    if any(d < 1 for d in dilation):
        raise ValueError(f"dilation must be positive, got {dilation}")
    if any(p < 0 for p in padding):
        raise ValueError(f"padding must be non-negative, got {padding}")
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")


def _output_shape(xshape, wshape, stride, padding, dilation, groups, xdesc: str, wdesc: str):
    """Output shape of ``Conv`` for (possibly partly unknown) input and weight shapes; raises
    ``ValueError`` naming both when they do not fit. ``None`` dims stay unknown."""
    d = len(stride)
    for shape, desc in ((xshape, xdesc), (wshape, wdesc)):
        if shape is not None and len(shape) != d + 2:
            raise ValueError(f"{desc} has rank {len(shape)}, but a {d}-d convolution needs rank {d + 2}")
    xshape = (None,) * (d + 2) if xshape is None else tuple(xshape)
    wshape = (None,) * (d + 2) if wshape is None else tuple(wshape)
    (n, c), spatial = xshape[:2], xshape[2:]
    (o, cg), kernel = wshape[:2], wshape[2:]
    if o is not None and o % groups:
        raise ValueError(f"{wdesc} has {o} output channels, which is not divisible by groups={groups}")
    if c is not None and cg is not None and c != cg * groups:
        raise ValueError(f"{xdesc} has {c} channels, but {wdesc} expects {cg * groups} "
                         f"(weight.shape[1] = {cg} x groups = {groups})")
    if c is not None and c % groups:
        raise ValueError(f"{xdesc} has {c} channels, which is not divisible by groups={groups}")
    if any(k is not None and k < 1 for k in kernel):
        raise ValueError(f"{wdesc} has a non-positive kernel size")
    out = []
    for i, (size, k, s, p, dil) in enumerate(zip(spatial, kernel, stride, padding, dilation)):
        if size is None or k is None:
            out.append(None)
            continue
        m = _out_size(size, k, s, p, dil)
        if m < 1:
            raise ValueError(f"input of spatial size {size} with kernel {k} and dilation {dil} gives output "
                             f"size {m} (spatial dim {i}, padding {p}, stride {s}; {xdesc}, {wdesc})")
        out.append(m)
    return (n, o) + tuple(out)


def _desc(role: str, t: Tensor) -> str:
    return f"{role} '{t.name}' of shape {fmt(t.shape)}"


def _check_dtypes(*tensors: Tuple[str, Tensor]) -> np.dtype:
    (role0, first) = tensors[0]
    if not dtypes.is_floating(first.dtype):
        raise TypeError(f"convolution needs floating point tensors, got {role0} '{first.name}' of dtype "
                        f"{first.dtype.name}")
    for role, t in tensors[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"{role0} '{first.name}' has dtype {first.dtype.name} but {role} '{t.name}' has "
                            f"dtype {t.dtype.name}; use sg.cast")
    return first.dtype


def _merge(a, b):
    """The more precise of two compatible static shapes (``a`` wins where both are known)."""
    if a is None:
        return b
    if b is None:
        return a
    return tuple(x if x is not None else y for x, y in zip(a, b))


# -- shape inference ------------------------------------------------------------------------------

def _conv_infer(x, w, stride, padding, dilation, groups):
    dt = _check_dtypes(("input", x), ("weight", w))
    _check_attrs(stride, padding, dilation, groups)
    return _output_shape(x.shape, w.shape, stride, padding, dilation, groups, _desc("input", x),
                         _desc("weight", w)), dt


def _check_backprop(named, x_role: str, w_role: str, stride, padding, dilation, groups) -> np.dtype:
    """Checks shared by both backward ops: dtypes, attributes, and ``grad_out`` against the forward
    output shape of the tensors in roles ``x_role`` and ``w_role``. ``named`` maps each role to its
    tensor, in the op's input order; returns the dtype."""
    dt = _check_dtypes(*named.items())
    _check_attrs(stride, padding, dilation, groups)
    x, w, dy = named[x_role], named[w_role], named["grad_out"]
    expected = _output_shape(x.shape, w.shape, stride, padding, dilation, groups, _desc(x_role, x),
                             _desc(w_role, w))
    if dy.shape is not None and (len(dy.shape) != len(expected) or any(
            a is not None and b is not None and a != b for a, b in zip(dy.shape, expected))):
        raise ValueError(f"{_desc('grad_out', dy)} does not match the convolution output shape "
                         f"{fmt(expected)} of {x_role} '{x.name}' and {w_role} '{w.name}'")
    return dt


def _dim(t: Tensor, i: int, scale=lambda v: v):
    """Static dim ``i`` of ``t`` passed through ``scale``, or None where unknown."""
    return None if t.shape is None or t.shape[i] is None else scale(t.shape[i])


def _backprop_input_infer(dy, w, x_like, stride, padding, dilation, groups):
    dt = _check_backprop({"grad_out": dy, "weight": w, "input_like": x_like}, "input_like", "weight",
                         stride, padding, dilation, groups)
    known = (_dim(dy, 0), _dim(w, 1, lambda c: c * groups)) + (None,) * len(stride)
    return _merge(x_like.shape, known), dt


def _backprop_filter_infer(x, dy, w_like, stride, padding, dilation, groups):
    dt = _check_backprop({"input": x, "grad_out": dy, "weight_like": w_like}, "input", "weight_like",
                         stride, padding, dilation, groups)
    known = (_dim(dy, 1), _dim(x, 1, lambda c: c // groups)) + (None,) * len(stride)
    return _merge(w_like.shape, known), dt


# -- NumPy references (im2col GEMMs) ------------------------------------------------------------------

def _pad(x: np.ndarray, padding) -> np.ndarray:
    if not any(padding):
        return x
    out = np.zeros(x.shape[:2] + tuple(s + 2 * p for s, p in zip(x.shape[2:], padding)), x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(p, p + s) for s, p in zip(x.shape[2:], padding))] = x
    return out


def _columns(x: np.ndarray, kernel, out, stride, padding, dilation, groups) -> np.ndarray:
    """The receptive fields of padded ``x`` as a (groups, C/groups * prod(K), N * prod(out)) array."""
    xp = _pad(x, padding)
    n, c = xp.shape[:2]
    cg, d = c // groups, len(kernel)
    st = xp.strides
    windows = as_strided(xp, (n, groups, cg) + tuple(out) + tuple(kernel),
                         (st[0], st[1] * cg, st[1]) + tuple(st[2 + i] * stride[i] for i in range(d))
                         + tuple(st[2 + i] * dilation[i] for i in range(d)), writeable=False)
    perm = (1, 2) + tuple(range(3 + d, 3 + 2 * d)) + (0,) + tuple(range(3, 3 + d))
    return windows.transpose(perm).reshape(groups, cg * math.prod(kernel), n * math.prod(out))


def _grad_out_matrix(dy: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, *out) as (groups, O/groups, N * prod(out))."""
    n, o = dy.shape[:2]
    p = math.prod(dy.shape[2:])
    return dy.reshape(n, groups, o // groups, p).transpose(1, 2, 0, 3).reshape(groups, o // groups, n * p)


def _checked_out(xshape, wshape, stride, padding, dilation, groups, dy=None):
    out = _output_shape(xshape, wshape, stride, padding, dilation, groups, f"input of shape {tuple(xshape)}",
                        f"weight of shape {tuple(wshape)}")
    if dy is not None and dy.shape != out:
        raise ValueError(f"grad_out of shape {dy.shape} does not match the convolution output shape {out}")
    return out


def _conv_reference(x, w, stride, padding, dilation, groups):
    n, o, *out = _checked_out(x.shape, w.shape, stride, padding, dilation, groups)
    cols = _columns(x, w.shape[2:], out, stride, padding, dilation, groups)
    y = np.matmul(w.reshape(groups, o // groups, cols.shape[1]), cols)       # (G, O/G, N*P)
    y = y.reshape(o, n, math.prod(out)).transpose(1, 0, 2)
    return np.ascontiguousarray(y).reshape((n, o) + tuple(out))


def _backprop_input_reference(dy, w, x_like, stride, padding, dilation, groups):
    _checked_out(x_like.shape, w.shape, stride, padding, dilation, groups, dy)
    (n, c), spatial, kernel, out = x_like.shape[:2], x_like.shape[2:], w.shape[2:], dy.shape[2:]
    cg, d = c // groups, len(kernel)
    wm = w.reshape(groups, w.shape[0] // groups, cg * math.prod(kernel))
    cols = np.matmul(wm.transpose(0, 2, 1), _grad_out_matrix(dy, groups))   # (G, Cg*K, N*P)
    cols = cols.reshape((groups, cg) + kernel + (n,) + out)
    cols = cols.transpose(tuple(range(2, 2 + d)) + (2 + d, 0, 1) + tuple(range(3 + d, 3 + 2 * d)))
    padded = tuple(s + 2 * p for s, p in zip(spatial, padding))
    dxp = np.zeros((n, groups, cg) + padded, dy.dtype)
    for offset in np.ndindex(*kernel):             # one strided += per kernel offset
        window = tuple(slice(k * dil, k * dil + s * (m - 1) + 1, s)
                       for k, dil, s, m in zip(offset, dilation, stride, out))
        dxp[(slice(None),) * 3 + window] += cols[offset]
    dxp = dxp.reshape((n, c) + padded)
    if not any(padding):
        return dxp
    crop = tuple(slice(p, p + s) for s, p in zip(spatial, padding))
    return np.ascontiguousarray(dxp[(slice(None), slice(None)) + crop])


def _backprop_filter_reference(x, dy, w_like, stride, padding, dilation, groups):
    _checked_out(x.shape, w_like.shape, stride, padding, dilation, groups, dy)
    cols = _columns(x, w_like.shape[2:], dy.shape[2:], stride, padding, dilation, groups)
    dw = np.matmul(_grad_out_matrix(dy, groups), cols.transpose(0, 2, 1))    # (G, O/G, Cg*K)
    return dw.reshape(w_like.shape)


# -- gradient rules (graph ops, so they differentiate again) ----------------------------------------

def _conv_grad(op, g):
    x, w = op.inputs
    return [lambda: conv_backprop_input(g, w, x, **op.attrs),
            lambda: conv_backprop_filter(x, g, w, **op.attrs)]


def _backprop_input_grad(op, gg):
    dy, w, _ = op.inputs
    return [lambda: make("Conv", [gg, w], **op.attrs),
            lambda: conv_backprop_filter(gg, dy, w, **op.attrs), None]


def _backprop_filter_grad(op, gg):
    x, dy, _ = op.inputs
    return [lambda: conv_backprop_input(dy, gg, x, **op.attrs),
            lambda: make("Conv", [x, gg], **op.attrs), None]


def_op("Conv", _conv_infer, _conv_reference, _conv_grad, default_name="conv")
def_op("ConvBackpropInput", _backprop_input_infer, _backprop_input_reference, _backprop_input_grad,
       default_name="conv_backprop_input", value_inputs=(0, 1))
def_op("ConvBackpropFilter", _backprop_filter_infer, _backprop_filter_reference, _backprop_filter_grad,
       default_name="conv_backprop_filter", value_inputs=(0, 1))


def conv_backprop_input(grad_out: Tensor, weight: Tensor, input_like: Tensor, stride, padding, dilation,
                        groups: int, name: Optional[str] = None) -> Tensor:
    """The gradient of ``Conv`` for its input (a transposed convolution), shaped like ``input_like``."""
    return make("ConvBackpropInput", [grad_out, weight, input_like], name=name, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def conv_backprop_filter(input: Tensor, grad_out: Tensor, weight_like: Tensor, stride, padding, dilation,
                         groups: int, name: Optional[str] = None) -> Tensor:
    """The gradient of ``Conv`` for its weight, shaped like ``weight_like``."""
    return make("ConvBackpropFilter", [input, grad_out, weight_like], name=name, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


# -- public builders -----------------------------------------------------------------------------

def _int(v, what: str, fn: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {what} must be an int or a tuple of ints, got {v!r}")
    return int(v)


def _ints(value, d: int, what: str, fn: str) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) != d:
            raise ValueError(f"{fn}: {what} must be an int or a tuple of {d} ints, got {tuple(value)}")
        return tuple(_int(v, what, fn) for v in value)
    return (_int(value, what, fn),) * d


def _padding(padding, d: int, w: Tensor, dilation, stride, fn: str) -> Tuple[int, ...]:
    """Ints, or PyTorch's ``"valid"`` (no padding) / ``"same"`` (stride 1, even total padding only)."""
    if not isinstance(padding, str):
        return _ints(padding, d, "padding", fn)
    if padding == "valid":
        return (0,) * d
    if padding != "same":
        raise ValueError(f"{fn}: padding must be an int, a tuple of {d} ints, 'valid' or 'same', got {padding!r}")
    if any(s != 1 for s in stride):
        raise ValueError(f"{fn}: padding='same' needs stride 1, got stride {stride}")
    kernel = (None,) * d if w.shape is None else w.shape[2:]
    if len(kernel) != d or None in kernel:
        raise ValueError(f"{fn}: padding='same' needs the kernel size of weight '{w.name}' (shape "
                         f"{fmt(w.shape)}) to be known when the graph is built")
    total = [dil * (k - 1) for dil, k in zip(dilation, kernel)]
    if any(t % 2 for t in total):
        raise ValueError(f"{fn}: padding='same' with kernel {tuple(kernel)} and dilation {dilation} needs "
                         f"uneven padding, which is not supported; pad explicitly")
    return tuple(t // 2 for t in total)


def _conv_nd(d: int, input, weight, bias, stride, padding, dilation, groups, name):
    fn = f"conv{d}d"
    values = [v for v in (input, weight, bias) if v is not None]
    tensors = [v for v in values if isinstance(v, Tensor)]
    if tensors and dtypes.is_floating(tensors[0].dtype) and all(t.dtype == tensors[0].dtype for t in tensors):
        values = operands(*values, op_name=fn)     # arrays and lists take the tensors' dtype
    else:
        values = [as_tensor(v) for v in values]    # _check_dtypes names any mismatch
    x, w, b = (list(values) + [None])[:3]
    _check_dtypes(*(("input", x), ("weight", w)) + ((("bias", b),) if b is not None else ()))
    if x.ndim is not None and x.ndim not in (d + 1, d + 2):
        raise ValueError(f"{fn}: expected a {d + 1}-d (unbatched C, {_SPATIAL[d]}) or {d + 2}-d (batched N, "
                         f"C, {_SPATIAL[d]}) input, got input '{x.name}' of shape {fmt(x.shape)}")
    if w.ndim is not None and w.ndim != d + 2:
        raise ValueError(f"{fn}: weight '{w.name}' of shape {fmt(w.shape)} must have rank {d + 2} "
                         f"(out_channels, in_channels/groups, {_SPATIAL[d]})")
    out_channels = None if w.shape is None else w.shape[0]
    if b is not None and b.shape is not None and (len(b.shape) != 1 or (
            None not in (b.shape[0], out_channels) and b.shape[0] != out_channels)):
        raise ValueError(f"{fn}: bias '{b.name}' of shape {fmt(b.shape)} must be 1-d with one entry per output "
                         f"channel of weight '{w.name}' (shape {fmt(w.shape)})")
    stride = _ints(stride, d, "stride", fn)
    dilation = _ints(dilation, d, "dilation", fn)
    attrs = dict(stride=stride, padding=_padding(padding, d, w, dilation, stride, fn), dilation=dilation,
                 groups=_int(groups, "groups", fn))
    unbatched = x.ndim == d + 1
    if unbatched:
        x = expand_dims(x, 0)
    steps = 1 + (b is not None) + unbatched          # the last op built gets the user's name
    y = make("Conv", [x, w], name=(name if steps == 1 else None) or fn, **attrs)
    if b is not None:
        y = add(y, reshape(b, (-1,) + (1,) * d), name=(name if steps == 2 else None) or f"{fn}_bias")
    if unbatched:
        y = getitem(y, 0, name=name or f"{fn}_unbatched")
    return y


@builder("conv1d")
def conv1d(input: TensorLike, weight: TensorLike, bias: Optional[TensorLike] = None, stride: IntOrTuple = 1,
           padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1, groups: int = 1,
           name: Optional[str] = None) -> Tensor:
    """1-d convolution as ``torch.nn.functional.conv1d``: input (N, C, L) or (C, L), weight
    (out_channels, C/groups, k), optional bias (out_channels,)."""
    return _conv_nd(1, input, weight, bias, stride, padding, dilation, groups, name)


@builder("conv2d")
def conv2d(input: TensorLike, weight: TensorLike, bias: Optional[TensorLike] = None, stride: IntOrTuple = 1,
           padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1, groups: int = 1,
           name: Optional[str] = None) -> Tensor:
    """2-d convolution as ``torch.nn.functional.conv2d``: input (N, C, H, W) or (C, H, W), weight
    (out_channels, C/groups, kh, kw), optional bias (out_channels,)."""
    return _conv_nd(2, input, weight, bias, stride, padding, dilation, groups, name)


@builder("conv3d")
def conv3d(input: TensorLike, weight: TensorLike, bias: Optional[TensorLike] = None, stride: IntOrTuple = 1,
           padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1, groups: int = 1,
           name: Optional[str] = None) -> Tensor:
    """3-d convolution as ``torch.nn.functional.conv3d``: input (N, C, D, H, W) or (C, D, H, W), weight
    (out_channels, C/groups, kd, kh, kw), optional bias (out_channels,)."""
    return _conv_nd(3, input, weight, bias, stride, padding, dilation, groups, name)
