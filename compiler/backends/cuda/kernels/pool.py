"""The pool family's CUDA kernels (MaxPool, AvgPool and their gradients) over the cpu lowering's
records ``nn_pool.POOL_WINDOW`` (``pool_max``, ``pool_avg``, ``pool_avg_grad``) and
``nn_pool.POOL_PLANE`` (``pool_max_grad``, ``pool_max_gather``).

Semantics are the cpu kernels' (``cpu/kernels/pool.py``, PyTorch's): a pooling over k axes is the
3-d one with leading axes of size 1, all leading tensor axes one flat axis of planes; flat
per-plane indices; the first maximum wins, a NaN is taken (the window's last NaN); padding acts as
the dtype's lowest value and a window with no input element yields it and its would-be first
index; ``ceil_mode`` windows are clipped (avg: the divisor counts the clipped window, or only
valid elements without ``count_include_pad``).

- ``pool_max``, ``pool_avg``, ``pool_max_gather``: one thread per output element;
- ``pool_avg_grad``: one thread per input element, summing over the windows that contain it (in
  output order, as the cpu kernel adds them);
- ``pool_max_grad``: one block per plane. The indices say where each gradient goes, not which
  windows contain an element (``POOL_PLANE`` has no window), so the block zeroes its plane, then
  takes the plane's outputs ``POOL_THREADS`` at a time: the first thread of the chunk holding an
  index adds the chunk's gradients for that index, in output order (no atomics: the same result
  every run). Out-of-plane indices are skipped, as on the cpu.

No kernel of this family reports data errors (the cpu ones report none either).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...cpu.kernels import pool as _cpu_pool
from ...cpu.nn_pool import POOL_PLANE, POOL_WINDOW
from . import launches
from .common import on_device

WIN = POOL_WINDOW.at        # record field offsets (numba freezes the namedtuples as constants)
PLANE = POOL_PLANE.at
THREADS = 128               # threads per block of the one-thread-per-element kernels
POOL_THREADS = 128          # pool_max_grad: threads per plane's block, outputs per chunk
# the kernel names of max pooling over a POOL_WINDOW record (x_off; values at y_off, indices at
# y2_off): a lowering that picks among several names for one record lists them all here
MAX_POOL_NAMES = ("pool_max",)


@cuda.jit(device=True, inline="always")
def _window(M, p):
    """A window record's geometry: input n0-n2; output o0-o2; kernel k0-k2; stride s0-s2;
    padding q0-q2; dilation d0-d2."""
    return (M[p + WIN.input], M[p + WIN.input + 1], M[p + WIN.input + 2],
            M[p + WIN.output], M[p + WIN.output + 1], M[p + WIN.output + 2],
            M[p + WIN.kernel], M[p + WIN.kernel + 1], M[p + WIN.kernel + 2],
            M[p + WIN.stride], M[p + WIN.stride + 1], M[p + WIN.stride + 2],
            M[p + WIN.padding], M[p + WIN.padding + 1], M[p + WIN.padding + 2],
            M[p + WIN.dilation], M[p + WIN.dilation + 1], M[p + WIN.dilation + 2])


@cuda.jit(device=True, inline="always")
def _split3(v, b, c):
    """v as (i, j, k) in an (*, b, c) grid."""
    return v // (b * c), v // c % b, v % c


# a max-pool window's first in-range position and length on one axis: the cpu kernels' own
_span = on_device(_cpu_pool._pool_span, inline="always")


@cuda.jit(device=True, inline="always")
def _avg_span(o, s, q, k, n):
    """Avg-pool window ``o`` of one axis: its valid range [lo, hi) and its size clipped to the
    padded input (the cpu's ``_pool_avg_run``)."""
    st = o * s - q
    en = min(st + k, n + q)
    return max(st, 0), min(en, n), en - st


@cuda.jit
def _pool_max(X, V, I, M, p, low):
    """V, I = the max and its flat per-plane index of output element e's window (``low``: the
    dtype's lowest value, the padding)."""
    e = cuda.grid(1)
    n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2 = _window(M, p)
    oplane = o0 * o1 * o2
    if e >= M[p + WIN.planes] * oplane:
        return
    a, b, c = _split3(e % oplane, o1, o2)
    lo0, c0 = _span(a, s0, q0, k0, d0, n0)
    lo1, c1 = _span(b, s1, q1, k1, d1, n1)
    lo2, c2 = _span(c, s2, q2, k2, d2, n2)
    xb = M[p + WIN.x_off] + e // oplane * (n0 * n1 * n2)
    best = low
    where = (lo0 * n1 + lo1) * n2 + lo2
    for t0 in range(c0):
        for t1 in range(c1):
            r = ((lo0 + t0 * d0) * n1 + lo1 + t1 * d1) * n2 + lo2
            for t2 in range(c2):
                v = X[xb + r + t2 * d2]
                if v > best or v != v:
                    best = v
                    where = r + t2 * d2
    V[M[p + WIN.y_off] + e] = best
    I[M[p + WIN.y2_off] + e] = where


@cuda.jit
def _pool_avg(X, Y, M, p):
    """Y = the mean of output element e's window."""
    e = cuda.grid(1)
    n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, _, _, _ = _window(M, p)
    oplane = o0 * o1 * o2
    if e >= M[p + WIN.planes] * oplane:
        return
    a, b, c = _split3(e % oplane, o1, o2)
    lo0, hi0, w0 = _avg_span(a, s0, q0, k0, n0)
    lo1, hi1, w1 = _avg_span(b, s1, q1, k1, n1)
    lo2, hi2, w2 = _avg_span(c, s2, q2, k2, n2)
    div = w0 * w1 * w2 if M[p + WIN.count_include_pad] != 0 else (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2)
    xb = M[p + WIN.x_off] + e // oplane * (n0 * n1 * n2)
    acc = 0.0
    for i0 in range(lo0, hi0):
        for i1 in range(lo1, hi1):
            r = xb + (i0 * n1 + i1) * n2
            for i2 in range(lo2, hi2):
                acc += X[r + i2]
    Y[M[p + WIN.y_off] + e] = acc / max(div, 1)


@cuda.jit(device=True, inline="always")
def _covering(i, s, q, k, n_out):
    """The outputs [lo, hi) of one axis whose window [o * s - q, o * s - q + k) contains input i."""
    lo = 0 if i + q - k < 0 else (i + q - k) // s + 1
    return lo, min(n_out, (i + q) // s + 1)


@cuda.jit
def _pool_avg_grad(G, Y, M, p):
    """Y (input-shaped) at element e = the sum of G / divisor over the windows that contain e."""
    e = cuda.grid(1)
    n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, _, _, _ = _window(M, p)
    plane = n0 * n1 * n2
    if e >= M[p + WIN.planes] * plane:
        return
    include = M[p + WIN.count_include_pad] != 0
    i0, i1, i2 = _split3(e % plane, n1, n2)
    a0, b0 = _covering(i0, s0, q0, k0, o0)
    a1, b1 = _covering(i1, s1, q1, k1, o1)
    a2, b2 = _covering(i2, s2, q2, k2, o2)
    gb = M[p + WIN.x_off] + e // plane * (o0 * o1 * o2)
    acc = 0.0
    for a in range(a0, b0):
        lo0, hi0, w0 = _avg_span(a, s0, q0, k0, n0)
        for b in range(a1, b1):
            lo1, hi1, w1 = _avg_span(b, s1, q1, k1, n1)
            for c in range(a2, b2):
                lo2, hi2, w2 = _avg_span(c, s2, q2, k2, n2)
                div = w0 * w1 * w2 if include else (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2)
                acc += G[gb + (a * o1 + b) * o2 + c] / max(div, 1)
    Y[M[p + WIN.y_off] + e] = acc


@cuda.jit
def _pool_max_grad(G, I, Y, M, p):
    """Plane (block) c of Y = zeros, then G's plane added at the indices I (see the module doc)."""
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    pin, pout = M[p + PLANE.in_plane], M[p + PLANE.out_plane]
    yb = M[p + PLANE.y_off] + c * pin
    gb = M[p + PLANE.a_off] + c * pout
    ib = M[p + PLANE.idx_off] + c * pout
    for j in range(t, pin, POOL_THREADS):
        Y[yb + j] = 0
    where = cuda.shared.array(POOL_THREADS, dtype=np.int64)
    for j0 in range(0, pout, POOL_THREADS):
        cuda.syncthreads()      # the plane zeroed, the last chunk's writes and reads of ``where`` done
        idx = I[ib + j0 + t] if j0 + t < pout else -1
        where[t] = idx if 0 <= idx < pin else -1
        cuda.syncthreads()
        idx = where[t]
        first = idx >= 0
        for u in range(t):
            if where[u] == idx:
                first = False
        if first:
            acc = G[gb + j0 + t]
            for u in range(t + 1, min(POOL_THREADS, pout - j0)):
                if where[u] == idx:
                    acc += G[gb + j0 + u]
            Y[yb + idx] += acc


@cuda.jit
def _pool_max_gather(A, I, Y, M, p, zero):
    """Y at output element e = A's plane read at index I (``zero`` where it is out of the plane)."""
    e = cuda.grid(1)
    pin, pout = M[p + PLANE.in_plane], M[p + PLANE.out_plane]
    if e >= M[p + PLANE.planes] * pout:
        return
    idx = I[M[p + PLANE.idx_off] + e]
    ok = 0 <= idx < pin
    Y[M[p + PLANE.y_off] + e] = A[M[p + PLANE.a_off] + e // pout * pin + idx] if ok else zero


# -- launchers ---------------------------------------------------------------------------------------

def _lowest(dtype: np.dtype):
    """Max pooling's padding value in ``dtype``: -inf, or the integer dtype's minimum."""
    return dtype.type(-np.inf if dtype.kind == "f" else np.iinfo(dtype).min)


def _per_element(kernel, n: int, args, stream) -> None:
    """``kernel`` with one thread per element of ``n``."""
    if n > 0:
        kernel[int(-(-n // THREADS)), THREADS, stream](*args)


def _outputs(rec) -> int:
    f = POOL_WINDOW.unpack(rec)
    return f["planes"] * int(np.prod(f["output"]))


@launches(*MAX_POOL_NAMES)
def pool_max(arrays, M, E, p, rec, stream) -> None:
    """Max pooling: arrays (X, values, indices)."""
    X, V, I = arrays[:3]
    _per_element(_pool_max, _outputs(rec), (X, V, I, M, p, _lowest(V.dtype)), stream)


@launches("pool_avg")
def pool_avg(arrays, M, E, p, rec, stream) -> None:
    """Average pooling: arrays (X, Y)."""
    X, Y = arrays[:2]
    _per_element(_pool_avg, _outputs(rec), (X, Y, M, p), stream)


@launches("pool_avg_grad")
def pool_avg_grad(arrays, M, E, p, rec, stream) -> None:
    """The transpose of average pooling: arrays (G, Y input-shaped)."""
    G, Y = arrays[:2]
    f = POOL_WINDOW.unpack(rec)
    _per_element(_pool_avg_grad, f["planes"] * int(np.prod(f["input"])), (G, Y, M, p), stream)


@launches("pool_max_grad")
def pool_max_grad(arrays, M, E, p, rec, stream) -> None:
    """Y = zeros plus G at the indices: arrays (G, indices, Y)."""
    G, I, Y = arrays[:3]
    f = POOL_PLANE.unpack(rec)
    if f["planes"] > 0 and f["in_plane"] > 0:
        _pool_max_grad[int(f["planes"]), POOL_THREADS, stream](G, I, Y, M, p)


@launches("pool_max_gather")
def pool_max_gather(arrays, M, E, p, rec, stream) -> None:
    """Y = A's planes read at the indices: arrays (A, indices, Y)."""
    A, I, Y = arrays[:3]
    f = POOL_PLANE.unpack(rec)
    _per_element(_pool_max_gather, f["planes"] * f["out_plane"], (A, I, Y, M, p, Y.dtype.type(0)), stream)
