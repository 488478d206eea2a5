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

from .kernels import lowers

WINDOW_SIZE = 23
PLANE_SIZE = 6
FAST_WINDOWS = ((2, 2), (3, 3))   # (k1, k2) of the unrolled max-pool kernels (each adds ~5 s to
                                   # pool_max's first compile: 1-d windows take the full path)

SOURCE = '''

# ---- pool family (compiler/backends/cpu/nn_pool.py) ----
from numba import types as _pool_types
from numba.extending import overload as _pool_overload


def _pool_lowest(a):
    """The padding value of max pooling: -inf, or the integer dtype's minimum."""


@_pool_overload(_pool_lowest)
def _pool_lowest_impl(a):
    if isinstance(a.dtype, _pool_types.Float):
        return lambda a: -np.inf
    low = np.iinfo(np.dtype(str(a.dtype))).min
    return lambda a: low


@njit(**_JIT)
def _pool_span(o, s, q, k, d, n):
    """Window ``o`` of one axis: its first position at or after 0 (stepping over the left padding by
    ``d``) and how many of its elements lie in [0, n)."""
    lo = o * s - q
    hi = min(lo + (k - 1) * d + 1, n)
    if lo < 0:
        lo += (-lo + d - 1) // d * d
    if hi <= lo:
        return lo, 0
    return lo, (hi - lo if d == 1 else (hi - lo + d - 1) // d)


@njit(**_JIT)
def _pool_window(M, p):
    """A window record's geometry: planes; input n0-n2; output o0-o2; kernel k0-k2; stride s0-s2;
    padding q0-q2; dilation d0-d2 (record positions p + 3 to p + 21)."""
    return (M[p + 3],
            M[p + 4], M[p + 5], M[p + 6], M[p + 7], M[p + 8], M[p + 9],
            M[p + 10], M[p + 11], M[p + 12], M[p + 13], M[p + 14], M[p + 15],
            M[p + 16], M[p + 17], M[p + 18], M[p + 19], M[p + 20], M[p + 21])


@njit(**_JIT)
def _pool_max_full(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                   d0, d1, d2, plane, oplane, low):
    """``pool_max`` when every window lies inside the input (no padding, no clipped ceil_mode
    window): one output row at a time, window offsets outermost and the row's windows innermost,
    the running maxima and indices kept in the output row itself (no allocation). Same visiting
    order per window as the general path, so the same first-maximum and NaN semantics."""
    for c in range(planes):
        xb = xo + c * plane
        for a in range(o0):
            for b in range(o1):
                r0 = (a * s0 * n1 + b * s1) * n2
                ob = c * oplane + (a * o1 + b) * o2
                for e in range(o2):
                    V[np.uint64(vo + ob + e)] = low
                    I[np.uint64(io + ob + e)] = r0 + e * s2
                for t0 in range(k0):
                    for t1 in range(k1):
                        for t2 in range(k2):
                            r = r0 + (t0 * d0 * n1 + t1 * d1) * n2 + t2 * d2
                            for e in range(o2):
                                j = r + e * s2
                                v = X[np.uint64(xb + j)]
                                best = V[np.uint64(vo + ob + e)]
                                take = (v > best) | (v != v)     # branch-free: selects, no jumps
                                V[np.uint64(vo + ob + e)] = v if take else best
                                I[np.uint64(io + ob + e)] = j if take else I[np.uint64(io + ob + e)]


{rows}
{channels_last}
@njit(**_JIT)
def _pool_last_fast(k0, k1, k2):
    """Whether ``_pool_last`` has an unrolled loop for this window."""
{last_fast}
    return False


@njit(**_JIT)
def _pool_last(Y, yo, O, n1, n2, V, I, vo, io, o0, o1, o2, k1, k2, s0, s1, s2, d1, d2, B, bo, hasb):
    """Max pooling of the channels-last planes (n0, n1, n2, O) at yo (``_pool_last_fast`` windows,
    every one inside) into V, I (O, o0, o1, o2), per channel o of value + B[bo + o] where ``hasb``."""
{last_dispatch}


@njit(**_JIT)
def _pool_has_nan(X, o, n):
    """Whether X[o:o + n] holds a NaN (a vectorized count; folded away for integer dtypes)."""
    bad = 0
    for j in range(n):
        v = X[np.uint64(o + j)]
        bad += v != v
    return bad != 0


@njit(**_JIT)
def _pool_max_inside(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                     d0, d1, d2, plane, oplane, low):
    """``pool_max`` when every window lies inside the input: an unrolled row path where the window
    has one (``FAST_WINDOWS``), else ``_pool_max_full``."""
    if k0 == 1 and d1 == 1 and d2 == 1 and s2 == k2:
{fast}
    _pool_max_full(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                   d0, d1, d2, plane, oplane, low)


@njit(**_JIT)
def pool_max(X, V, I, M, E, p):
    """Max pooling with PyTorch's indices (record: see nn_pool.py)."""
    xo = M[p]
    vo = M[p + 1]
    io = M[p + 2]
    planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2 = _pool_window(M, p)
    plane = n0 * n1 * n2
    oplane = o0 * o1 * o2
    low = _pool_lowest(V)
    if (q0 == 0 and q1 == 0 and q2 == 0 and (o0 - 1) * s0 + (k0 - 1) * d0 < n0
            and (o1 - 1) * s1 + (k1 - 1) * d1 < n1 and (o2 - 1) * s2 + (k2 - 1) * d2 < n2):
        _pool_max_inside(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                         d0, d1, d2, plane, oplane, low)
        return
    for c in range(planes):
        xb = xo + c * plane
        yb = c * oplane
        for a in range(o0):
            lo0, c0 = _pool_span(a, s0, q0, k0, d0, n0)
            for b in range(o1):
                lo1, c1 = _pool_span(b, s1, q1, k1, d1, n1)
                ob = yb + (a * o1 + b) * o2
                for e in range(o2):
                    lo2, c2 = _pool_span(e, s2, q2, k2, d2, n2)
                    best = low
                    where = (lo0 * n1 + lo1) * n2 + lo2
                    for t0 in range(c0):
                        for t1 in range(c1):
                            r = ((lo0 + t0 * d0) * n1 + lo1 + t1 * d1) * n2 + lo2
                            for t2 in range(c2):
                                v = X[np.uint64(xb + r + t2 * d2)]
                                take = (v > best) | (v != v)     # branch-free: selects, no jumps
                                best = v if take else best
                                where = r + t2 * d2 if take else where
                    V[np.uint64(vo + ob + e)] = best
                    I[np.uint64(io + ob + e)] = where


@njit(**_JIT)
def _pool_avg_run(X, G, Y, M, p, grad):
    """Average pooling (``grad`` False: X -> Y) or its transpose (True: G -> X-shaped Y, zeroed first)."""
    xo = M[p]
    yo = M[p + 1]
    planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, _, _, _ = _pool_window(M, p)
    include = M[p + 22] != 0
    plane = n0 * n1 * n2
    oplane = o0 * o1 * o2
    if grad:
        for j in range(planes * plane):
            Y[np.uint64(yo + j)] = 0
    for c in range(planes):
        xb = xo + c * plane
        yb = yo + c * plane
        ob = c * oplane
        for a in range(o0):
            st0 = a * s0 - q0
            en0 = min(st0 + k0, n0 + q0)
            lo0 = max(st0, 0)
            hi0 = min(en0, n0)
            for b in range(o1):
                st1 = b * s1 - q1
                en1 = min(st1 + k1, n1 + q1)
                lo1 = max(st1, 0)
                hi1 = min(en1, n1)
                for e in range(o2):
                    st2 = e * s2 - q2
                    en2 = min(st2 + k2, n2 + q2)
                    lo2 = max(st2, 0)
                    hi2 = min(en2, n2)
                    if include:
                        div = (en0 - st0) * (en1 - st1) * (en2 - st2)
                    else:
                        div = (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2)
                    div = max(div, 1)
                    o = ob + (a * o1 + b) * o2 + e
                    if grad:
                        g = G[np.uint64(xo + o)] / div
                        for i0 in range(lo0, hi0):
                            for i1 in range(lo1, hi1):
                                r = yb + (i0 * n1 + i1) * n2
                                for i2 in range(lo2, hi2):
                                    Y[np.uint64(r + i2)] += g
                    else:
                        acc = 0.0
                        for i0 in range(lo0, hi0):
                            for i1 in range(lo1, hi1):
                                r = xb + (i0 * n1 + i1) * n2
                                for i2 in range(lo2, hi2):
                                    acc += X[np.uint64(r + i2)]
                        Y[np.uint64(yo + o)] = acc / div


@njit(**_JIT)
def pool_avg(X, Y, M, E, p):
    """Average pooling (record: see nn_pool.py)."""
    _pool_avg_run(X, X, Y, M, p, False)


@njit(**_JIT)
def pool_avg_grad(G, Y, M, E, p):
    """The transpose of average pooling: Y (input-shaped) = sum of G / divisor over the windows."""
    _pool_avg_run(G, G, Y, M, p, True)


@njit(**_JIT)
def pool_max_grad(G, I, Y, M, E, p):
    """Y = zeros, then G added at the per-plane indices I (out-of-plane ones skipped)."""
    _pool_unpool(G, M[p], I, M[p + 1], Y, M[p + 2], M[p + 3], M[p + 4], M[p + 5], M[p + 4], ONE)


@njit(**_JIT)
def _pool_unpool(G, go, I, io, Y, yo, planes, pin, pout, cs, js):
    """Y[yo:] (planes * pin elements) = zeros, then G's planes (of pout) added at their indices I:
    plane c's element idx at yo + c * cs + idx * js (planes of pin: cs = pin, js = 1; transposed,
    (pin, planes): cs = 1, js = planes)."""
    for j in range(planes * pin):
        Y[np.uint64(yo + j)] = 0
    for c in range(planes):
        for j in range(pout):
            idx = I[np.uint64(io + c * pout + j)]
            if idx >= 0 and idx < pin:
                Y[np.uint64(yo + c * cs + idx * js)] += G[np.uint64(go + c * pout + j)]


@njit(**_JIT)
def pool_max_gather(A, I, Y, M, E, p):
    """Y = the planes of A read at the indices I (0 where an index is out of the plane)."""
    ao = M[p]
    io = M[p + 1]
    yo = M[p + 2]
    planes = M[p + 3]
    pin = M[p + 4]
    pout = M[p + 5]
    for c in range(planes):
        for j in range(pout):
            idx = I[io + c * pout + j]
            if idx >= 0 and idx < pin:
                Y[yo + c * pout + j] = A[ao + c * pin + idx]
            else:
                Y[yo + c * pout + j] = 0
'''


_ROWS_TEMPLATE = """
@njit(**_JIT)
def _pool_max_rows_K1xK2(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low):
    \"\"\"``pool_max`` of K1xK2 windows, stride K2 along the last axis (see nn_pool.py): per window the
    best value and index in registers, a row of windows innermost (vectorized); a plane holding a NaN
    goes through ``_pool_max_full``.\"\"\"
    for c in range(planes):
        xb = xo + c * plane
        if _pool_has_nan(X, xb, plane):
            _pool_max_full(X, V, I, xb, vo + c * oplane, io + c * oplane, ONE, n1, n2, o0, o1, o2, ONE,
                           np.int64(K1), np.int64(K2), s0, s1, np.int64(K2), ONE, ONE, ONE, plane, oplane, low)
            continue
        for a in range(o0):
            for b in range(o1):
                r0 = (a * s0 * n1 + b * s1) * n2
                r = xb + r0
                ob = c * oplane + (a * o1 + b) * o2
                for e in range(o2):
                    best = X[np.uint64(r + K2 * e)]
                    where = r0 + K2 * e
                    for t1 in range(K1):
                        for t2 in range(K2):
                            v = X[np.uint64(r + K2 * e + t1 * n2 + t2)]
                            take = v > best
                            best = v if take else best
                            where = r0 + K2 * e + t1 * n2 + t2 if take else where
                    V[np.uint64(vo + ob + e)] = best
                    I[np.uint64(io + ob + e)] = where

"""

_DISPATCH_TEMPLATE = """\
        if k1 == K1 and k2 == K2:
            _pool_max_rows_K1xK2(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low)
            return"""

_LAST_TEMPLATE = """
@njit(**_JIT)
def _pool_last_K1xK2(Y, yo, O, n1, n2, V, I, vo, io, o0, o1, o2, s0, s1, s2, d1, d2, B, bo, hasb):
    \"\"\"``_pool_last`` of K1xK2 windows: per window, channels innermost (unit-stride loads,
    vectorized) with the best value and index in registers and the general path's rule (the
    first maximum; a NaN is taken, so the last NaN wins).\"\"\"
    P = o0 * o1 * o2
    for a in range(o0):
        for b in range(o1):
            for e in range(o2):
                r0 = (a * s0 * n1 + b * s1) * n2 + e * s2
                j = (a * o1 + b) * o2 + e
                for o in range(O):
                    bias = B[np.uint64(bo + o)]
                    best = Y[np.uint64(yo + r0 * O + o)]
                    if hasb:
                        best = best + bias
                    where = r0
                    for t1 in range(K1):
                        for t2 in range(K2):
                            r = r0 + t1 * d1 * n2 + t2 * d2
                            v = Y[np.uint64(yo + r * O + o)]
                            if hasb:
                                v = v + bias
                            take = (v > best) | (v != v)
                            best = v if take else best
                            where = r if take else where
                    V[np.uint64(vo + o * P + j)] = best
                    I[np.uint64(io + o * P + j)] = where
"""

_LAST_FAST_TEMPLATE = """\
    if k0 == 1 and k1 == K1 and k2 == K2:
        return True"""

_LAST_DISPATCH_TEMPLATE = """\
    if k1 == K1 and k2 == K2:
        _pool_last_K1xK2(Y, yo, O, n1, n2, V, I, vo, io, o0, o1, o2, s0, s1, s2, d1, d2, B, bo, hasb)"""


def _instantiate(template: str, k1: int, k2: int) -> str:
    return template.replace("K1", str(k1)).replace("K2", str(k2))


SOURCE = SOURCE.replace("{rows}", "".join(_instantiate(_ROWS_TEMPLATE, *w) for w in FAST_WINDOWS)).replace(
    "{fast}", "\n".join(_instantiate(_DISPATCH_TEMPLATE, *w) for w in FAST_WINDOWS)).replace(
    "{channels_last}", "".join(_instantiate(_LAST_TEMPLATE, *w) for w in FAST_WINDOWS)).replace(
    "{last_fast}", "\n".join(_instantiate(_LAST_FAST_TEMPLATE, *w) for w in FAST_WINDOWS)).replace(
    "{last_dispatch}", "\n".join(_instantiate(_LAST_DISPATCH_TEMPLATE, *w) for w in FAST_WINDOWS))


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
