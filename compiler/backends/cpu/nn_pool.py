"""CPU kernels of the pool op family (MaxPool, MaxPoolGrad, MaxPoolGather, AvgPool, AvgPoolGrad): templates and lowerings.

One generic kernel per op type, for 1-3 spatial axes: a pooling over ``k`` axes is run as a 3-D one
whose first ``3 - k`` axes have size 1 (kernel 1, stride 1, no padding); all leading axes are one
flat axis of planes. Semantics are the reference's (``staticgraph/ops/pool.py``, PyTorch's): flat
per-plane indices, the first maximum wins, NaN propagates (the window's last NaN), padding acts as
the dtype's lowest value, a window with no input element yields that value and its would-be first
index; ``ceil_mode`` windows are clipped; the backward ops skip out-of-plane indices.

Fast path of ``pool_max`` (``_pool_max_rows_<k1>x<k2>``, one per window in ``FAST_WINDOWS``): every
window inside the input, ``k0 == 1``, no dilation and ``stride == kernel`` along the last axis (e.g.
LeNet's 3x3 / stride 3): the window is unrolled, the best value and its index stay in registers and a
row of windows is the innermost, vectorized loop (stride-``k2`` reads). Each plane is first scanned for
NaN (vectorized): without NaN, "strictly greater wins" starting from the window's first element is
exactly the general path's rule; a plane with a NaN runs the general path.

Channels-last loops (``_pool_last_<k1>x<k2>``, one per window in ``FAST_WINDOWS``, any stride and
dilation; ``conv_pool_fwd`` pools its conv output with them, which its GEMM writes channels-last):
per window and channel, the window unrolled with the best value and index in registers, the
channels innermost (unit-stride loads: vectorized however short the planes' rows; LeNet's rows of
8 windows kept the row path above scalar, LLVM's vector loop needs ~32 iterations). NaN is
handled inline (a NaN is taken), so they need no scan.

Records (int64, at ``M[p]``):

- window ops (``pool_max``, ``pool_avg``, ``pool_avg_grad``): ``WINDOW_SIZE`` ints: x_off, y_off,
  y2_off, planes, in[3], out[3], kernel[3], stride[3], padding[3], dilation[3], count_include_pad;
- plane ops (``pool_max_grad``, ``pool_max_gather``): ``PLANE_SIZE`` ints: a_off, idx_off, y_off,
  planes, in-plane size, out-plane size.
"""
from __future__ import annotations

import math
from typing import List, Sequence

from .lowerings import lowers

WINDOW_SIZE = 23
PLANE_SIZE = 6
FAST_WINDOWS = ((2, 2), (3, 3))   # (k1, k2) of the unrolled max-pool kernels (each adds ~5 s to
                                   # pool_max's first compile: 1-d windows take the full path)


def max_pool_path(rec: Sequence[int]) -> str:
    """The loop ``pool_max`` runs for window record ``rec`` on NaN-free planes: "rows <k1>x<k2>" (the
    unrolled fast path), "full" (every window inside the input) or "general"."""
    n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2 = rec[4:22]
    if not windows_inside((n0, n1, n2), (o0, o1, o2), (k0, k1, k2), (s0, s1, s2), (q0, q1, q2), (d0, d1, d2)):
        return "general"
    if k0 == 1 and d1 == 1 and d2 == 1 and s2 == k2 and (k1, k2) in FAST_WINDOWS:
        return f"rows {k1}x{k2}"
    return "full"


def channels_last(kernel: Sequence[int]) -> bool:
    """Whether ``conv_pool_fwd`` pools windows of this kernel (1-3 dims) channels-last
    (``_pool_last_fast``: k0 == 1 and (k1, k2) one of ``FAST_WINDOWS``)."""
    k0, k1, k2 = _as3(kernel, len(kernel), 1)
    return k0 == 1 and (k1, k2) in FAST_WINDOWS


def windows_inside(n, o, k, s, q, d) -> bool:
    """No padding and every window inside the input, per axis: input n, output o, kernel k, stride s,
    padding q, dilation d (``pool_max``'s "inside" paths)."""
    return not any(q) and all((oi - 1) * si + (ki - 1) * di < ni for ni, oi, ki, si, di in zip(n, o, k, s, d))


def _as3(values, k: int, fill: int) -> List[int]:
    """A k-tuple as 3 ints, leading axes of size ``fill``."""
    return [fill] * (3 - k) + [int(v) for v in values]


def _window_record(env, attrs: dict, x, y, offsets, k: int, include: bool = False) -> List[int]:
    """The record of a window kernel over the planes of ``x`` (input-shaped) and ``y`` (pooled-shaped);
    ``offsets``: the kernel's three buffer offsets."""
    sx, sy = env.shape(x), env.shape(y)
    dilation = attrs.get("dilation", (1,) * k)
    return ([*offsets, math.prod(sx[:-k]),
             *_as3(sx[-k:], k, 1), *_as3(sy[-k:], k, 1), *_as3(attrs["kernel_size"], k, 1),
             *_as3(attrs["stride"], k, 1), *_as3(attrs["padding"], k, 0), *_as3(dilation, k, 1),
             int(include)])


def _plane_record(env, a, idx, y, a_like, spatial_dims: int) -> List[int]:
    """The record of a plane kernel: ``a_like`` has the input planes, ``idx`` the output planes."""
    sa, si = env.shape(a_like), env.shape(idx)
    return [env.off(a), env.off(idx), env.off(y), math.prod(si[:-spatial_dims]),
            math.prod(sa[-spatial_dims:]), math.prod(si[-spatial_dims:])]


def _share(rec: List[int], planes_at: int, sizes: Sequence[int], t: int, g: int) -> List[int]:
    """Share t of g of a record over ``rec[planes_at]`` planes: planes [t P / g, (t + 1) P / g), each
    of the record's first offsets moved by that many planes of its buffer (``sizes``: elements per plane)."""
    planes = rec[planes_at]
    lo, hi = t * planes // g, (t + 1) * planes // g
    return [o + lo * n for o, n in zip(rec, sizes)] + rec[len(sizes):planes_at] + [hi - lo] + rec[planes_at + 1:]


def _window_split(env, attrs: dict, x, y, offsets, k: int, sizes: str, t: int, g: int, include: bool = False):
    """Share t of g of a window kernel's record; ``sizes``: per offset, "x" or "y" (the buffer's planes
    are ``x``-shaped or ``y``-shaped) or "-" (unused)."""
    rec = _window_record(env, attrs, x, y, offsets, k, include)
    px, py = math.prod(env.shape(x)[-k:]), math.prod(env.shape(y)[-k:])
    return _share(rec, 3, [px if s == "x" else py if s == "y" else 0 for s in sizes], t, g)


def _work(*keys):
    return lambda env: sum(math.prod(env.shape(k)) for k in keys)


# Each pooling call is split into shares of its planes (``Lowering.split_call``), which the step
# loop runs on the kernel workers: the kernels stay serial (a ``prange`` inside them cost 15-20 s of
# compile for pool_max); shares write disjoint planes.

@lowers("MaxPool")
def _max_pool(op, b):
    x = op.inputs[0]
    values, indices = op.outputs
    k = len(op.attrs["kernel_size"])
    b.split_call("pool_max", [x], values,
                 lambda env, t, g: _window_split(env, op.attrs, x, values, [
                     env.off(x), env.off(b.write_key(values)), env.off(b.write_key(indices))], k, "xyy", t, g),
                 WINDOW_SIZE, _work(x), extra=[indices])


@lowers("AvgPool")
def _avg_pool(op, b):
    x, y = op.inputs[0], op.outputs[0]
    k = len(op.attrs["kernel_size"])
    b.split_call("pool_avg", [x], y,
                 lambda env, t, g: _window_split(env, op.attrs, x, y, [env.off(x), env.off(b.write_key(y)), 0], k,
                                                 "xy-", t, g, op.attrs["count_include_pad"]),
                 WINDOW_SIZE, _work(x))


@lowers("AvgPoolGrad")
def _avg_pool_grad(op, b):
    g_, like = op.inputs
    y = op.outputs[0]
    k = len(op.attrs["kernel_size"])
    b.split_call("pool_avg_grad", [g_], y,   # reads g at x_off, writes the input-shaped y at y_off
                 lambda env, t, g: _window_split(env, op.attrs, like, g_, [env.off(g_), env.off(b.write_key(y)), 0],
                                                 k, "yx-", t, g, op.attrs["count_include_pad"]),
                 WINDOW_SIZE, _work(like))


def _plane_split(env, a, idx, y, a_like, spatial_dims: int, sizes: str, t: int, g: int) -> List[int]:
    """Share t of g of a plane kernel's record; ``sizes`` as in ``_window_split`` ("i": input planes,
    "o": output planes)."""
    rec = _plane_record(env, a, idx, y, a_like, spatial_dims)
    return _share(rec, 3, [rec[4] if s == "i" else rec[5] for s in sizes], t, g)


@lowers("MaxPoolGrad")
def _max_pool_grad(op, b):
    g_, idx, like = op.inputs
    y = op.outputs[0]
    dims = op.attrs["spatial_dims"]
    b.split_call("pool_max_grad", [g_, idx], y,
                 lambda env, t, g: _plane_split(env, g_, idx, b.write_key(y), like, dims, "ooi", t, g),
                 PLANE_SIZE, _work(like))


@lowers("MaxPoolGather")
def _max_pool_gather(op, b):
    a, idx = op.inputs
    y = op.outputs[0]
    dims = op.attrs["spatial_dims"]
    b.split_call("pool_max_gather", [a, idx], y,
                 lambda env, t, g: _plane_split(env, a, idx, b.write_key(y), a, dims, "ioo", t, g),
                 PLANE_SIZE, _work(idx))
