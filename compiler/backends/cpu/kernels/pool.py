"""The pool family's kernels (MaxPool, AvgPool and their gradients).

The algorithms are described in ``nn_pool.py`` (the lowering side), which defines the records:
``POOL_WINDOW`` (``WIN``: pool_max, pool_avg, pool_avg_grad) and ``POOL_PLANE`` (``PLANE``: pool_max_grad,
pool_max_gather)."""
import numpy as np
from numba import njit, types
from numba.extending import overload

from ..nn_pool import POOL_PLANE, POOL_WINDOW
from .base import HELPER, JIT, ONE

WIN = POOL_WINDOW.at     # module names: unique over kernels/ (library.SOURCE imports them all)
PLANE = POOL_PLANE.at


def _pool_lowest(a):
    """The padding value of max pooling: -inf, or the integer dtype's minimum (this body serves
    ``NUMBA_DISABLE_JIT=1``; compiled code takes the overload below)."""
    return -np.inf if a.dtype.kind == "f" else np.iinfo(a.dtype).min


@overload(_pool_lowest)
def _pool_lowest_impl(a):
    if isinstance(a.dtype, types.Float):
        return lambda a: -np.inf
    low = np.iinfo(np.dtype(str(a.dtype))).min
    return lambda a: low


@njit(**HELPER)
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


@njit(**HELPER)
def _pool_window(M, p):
    """A window record's geometry: planes; input n0-n2; output o0-o2; kernel k0-k2; stride s0-s2;
    padding q0-q2; dilation d0-d2."""
    return (M[p + WIN.planes],
            M[p + WIN.input], M[p + WIN.input + 1], M[p + WIN.input + 2],
            M[p + WIN.output], M[p + WIN.output + 1], M[p + WIN.output + 2],
            M[p + WIN.kernel], M[p + WIN.kernel + 1], M[p + WIN.kernel + 2],
            M[p + WIN.stride], M[p + WIN.stride + 1], M[p + WIN.stride + 2],
            M[p + WIN.padding], M[p + WIN.padding + 1], M[p + WIN.padding + 2],
            M[p + WIN.dilation], M[p + WIN.dilation + 1], M[p + WIN.dilation + 2])


@njit(**HELPER)
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


def _unrolled_max_rows(K1, K2):
    """``_pool_max_rows`` unrolled for K1 x K2 windows (K1, K2: constants of the closure)."""
    @njit(**HELPER)
    def rows(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low):
        """``pool_max`` of K1xK2 windows, stride K2 along the last axis (see nn_pool.py): per window the
        best value and index in registers, a row of windows innermost (vectorized); a plane holding a NaN
        goes through ``_pool_max_full``."""
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
    return rows


def _unrolled_last(K1, K2):
    """The channels-last max pooling loop of K1 x K2 windows (K1, K2: constants of the closure)."""
    @njit(**HELPER)
    def last(Y, yo, O, n1, n2, V, I, vo, io, o0, o1, o2, s0, s1, s2, d1, d2, B, bo, hasb):
        """Max pooling of the channels-last planes (n0, n1, n2, O) at yo (every K1xK2 window
        inside) into V, I (O, o0, o1, o2), per channel o of value + B[bo + o] where ``hasb``: per window, channels innermost (unit-stride loads,
        vectorized) with the best value and index in registers and the general path's rule (the
        first maximum; a NaN is taken, so the last NaN wins)."""
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
    return last


# the windows of nn_pool.FAST_WINDOWS
_pool_max_rows_2x2 = _unrolled_max_rows(2, 2)
_pool_max_rows_3x3 = _unrolled_max_rows(3, 3)
_pool_last_2x2 = _unrolled_last(2, 2)
_pool_last_3x3 = _unrolled_last(3, 3)


@njit(**HELPER)
def _pool_has_nan(X, o, n):
    """Whether X[o:o + n] holds a NaN (a vectorized count; folded away for integer dtypes)."""
    bad = 0
    for j in range(n):
        v = X[np.uint64(o + j)]
        bad += v != v
    return bad != 0


@njit(**HELPER)
def _pool_max_inside(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                     d0, d1, d2, plane, oplane, low):
    """``pool_max`` when every window lies inside the input: an unrolled row path where the window
    has one (``FAST_WINDOWS``), else ``_pool_max_full``."""
    if k0 == 1 and d1 == 1 and d2 == 1 and s2 == k2:
        if k1 == 2 and k2 == 2:
            _pool_max_rows_2x2(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low)
            return
        if k1 == 3 and k2 == 3:
            _pool_max_rows_3x3(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low)
            return
    _pool_max_full(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                   d0, d1, d2, plane, oplane, low)


@njit(**HELPER)
def _pool_max_geometry(V, M, p):
    """``pool_max``'s record: offsets xo, vo, io; then ``_pool_window``'s geometry; the elements per
    input and output plane, and the padding value ``low`` of V's dtype."""
    planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2 = _pool_window(M, p)
    return (M[p + WIN.x_off], M[p + WIN.y_off], M[p + WIN.y2_off], planes, n0, n1, n2, o0, o1, o2, k0, k1, k2,
            s0, s1, s2, q0, q1, q2, d0, d1, d2, n0 * n1 * n2, o0 * o1 * o2, _pool_lowest(V))


@njit(**HELPER)
def _pool_max_padded(X, V, I, xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2,
                     d0, d1, d2, plane, oplane, low):
    """``pool_max``'s general loops: any padding, clipped ``ceil_mode`` windows, empty windows."""
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


@njit(**JIT)
def pool_max(X, V, I, M, E, p):
    """Max pooling with PyTorch's indices (values at y_off, indices at y2_off), its loop chosen per
    call: the kernel of windows whose spatial sizes are known only at run time. Static ones run
    the kernel of their path (``nn_pool.max_pool_kernel``), which compiles that loop alone."""
    xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2, plane, oplane, low = \
        _pool_max_geometry(V, M, p)
    if (q0 == 0 and q1 == 0 and q2 == 0 and (o0 - 1) * s0 + (k0 - 1) * d0 < n0
            and (o1 - 1) * s1 + (k1 - 1) * d1 < n1 and (o2 - 1) * s2 + (k2 - 1) * d2 < n2):
        _pool_max_inside(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2,
                         d0, d1, d2, plane, oplane, low)
        return
    _pool_max_padded(X, V, I, xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2,
                     d0, d1, d2, plane, oplane, low)


@njit(**JIT)
def pool_max_padded(X, V, I, M, E, p):
    """``pool_max``'s "general" path alone (``nn_pool.max_pool_path``)."""
    xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2, plane, oplane, low = \
        _pool_max_geometry(V, M, p)
    _pool_max_padded(X, V, I, xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2,
                     d0, d1, d2, plane, oplane, low)


@njit(**JIT)
def pool_max_full(X, V, I, M, E, p):
    """``pool_max``'s "full" path alone: every window inside the input."""
    xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2, plane, oplane, low = \
        _pool_max_geometry(V, M, p)
    _pool_max_full(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, d0, d1, d2,
                   plane, oplane, low)


@njit(**JIT)
def pool_max_rows_2x2(X, V, I, M, E, p):
    """``pool_max``'s "rows 2x2" path alone."""
    xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2, plane, oplane, low = \
        _pool_max_geometry(V, M, p)
    _pool_max_rows_2x2(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low)


@njit(**JIT)
def pool_max_rows_3x3(X, V, I, M, E, p):
    """``pool_max``'s "rows 3x3" path alone."""
    xo, vo, io, planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, d0, d1, d2, plane, oplane, low = \
        _pool_max_geometry(V, M, p)
    _pool_max_rows_3x3(X, V, I, xo, vo, io, planes, n1, n2, o0, o1, o2, s0, s1, plane, oplane, low)


@njit(**HELPER)
def _pool_avg_run(X, G, Y, M, p, grad):
    """Average pooling (``grad`` False: X -> Y) or its transpose (True: G -> X-shaped Y, zeroed first)."""
    xo = M[p + WIN.x_off]
    yo = M[p + WIN.y_off]
    planes, n0, n1, n2, o0, o1, o2, k0, k1, k2, s0, s1, s2, q0, q1, q2, _, _, _ = _pool_window(M, p)
    include = M[p + WIN.count_include_pad] != 0
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


@njit(**JIT)
def pool_avg(X, Y, M, E, p):
    """Average pooling."""
    _pool_avg_run(X, X, Y, M, p, False)


@njit(**JIT)
def pool_avg_grad(G, Y, M, E, p):
    """The transpose of average pooling: Y (input-shaped) = sum of G / divisor over the windows."""
    _pool_avg_run(G, G, Y, M, p, True)


@njit(**JIT)
def pool_max_grad(G, I, Y, M, E, p):
    """Y = zeros, then G added at the per-plane indices I (out-of-plane ones skipped)."""
    pin = M[p + PLANE.in_plane]
    _pool_unpool(G, M[p + PLANE.a_off], I, M[p + PLANE.idx_off], Y, M[p + PLANE.y_off], M[p + PLANE.planes], pin,
                 M[p + PLANE.out_plane], pin, ONE)


@njit(**HELPER)
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


@njit(**JIT)
def pool_max_gather(A, I, Y, M, E, p):
    """Y = the planes of A read at the indices I (0 where an index is out of the plane)."""
    ao = M[p + PLANE.a_off]
    io = M[p + PLANE.idx_off]
    yo = M[p + PLANE.y_off]
    planes = M[p + PLANE.planes]
    pin = M[p + PLANE.in_plane]
    pout = M[p + PLANE.out_plane]
    for c in range(planes):
        for j in range(pout):
            idx = I[io + c * pout + j]
            if idx >= 0 and idx < pin:
                Y[yo + c * pout + j] = A[ao + c * pin + idx]
            else:
                Y[yo + c * pout + j] = 0
