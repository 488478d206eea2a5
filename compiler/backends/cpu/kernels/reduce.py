"""The reductions ``red_SumF``, ``red_SumI``, ``red_Mean``, ``red_Max`` and ``red_ArgMax``: X reduced
over its reduced dims into contiguous Y. Record: ``lowerings.REDUCE`` (``RED``): the kept dims
(``nk``, ``kshape``, ``kstride``, coalesced), the reduced dims (``nr >= 1``, ``rshape``, ``rstride``),
the offsets and the reduced element count.

Each kernel walks the kept positions q (``_kept_base``) and, for each, the reduced runs t
(``_run_base``), reducing the last reduced dim's run of ``ni`` elements at stride ``si`` in its
inner loop. Sums accumulate in float64 (floats) or int64 (ints); a contiguous run is summed by
``_sum_run``, reassociated so it vectorizes (only ``reassoc``: NaN and inf propagate as in
order). Two shortcuts of sums (``lowerings.sum_path``): nothing reduced (a copy, or nothing when
the plan placed Y on X's buffer) and leading rows summed into a contiguous row (bias gradients:
row by row into Y, as NumPy does)."""
import numpy as np
from numba import njit

from ..lowerings import REDUCE
from .base import HELPER, JIT, OFF, ON, ZERO, _unravel

RED = REDUCE.at     # module names: unique over kernels/ (library.SOURCE imports them all)


@njit(fastmath={"reassoc"}, **HELPER)
def _sum_run(X, o, n, acc):
    """acc + X[o] + ... + X[o + n - 1], in any order."""
    for j in range(n):
        acc += X[np.uint64(o + j)]
    return acc


@njit(**HELPER)
def _counts(M, p):
    """(kept positions, reduced runs per position, run length, run stride) of the record at p."""
    kout = 1
    for d in range(M[p + RED.nk]):
        kout *= M[p + RED.kshape + d]
    nr = M[p + RED.nr]
    rout = 1
    for d in range(nr - 1):
        rout *= M[p + RED.rshape + d]
    return kout, rout, M[p + RED.rshape + nr - 1], M[p + RED.rstride + nr - 1]


@njit(inline="always", **HELPER)
def _kept_base(M, p, q):
    """X's offset of kept position q (row-major over the kept dims)."""
    return _unravel(M, M[p + RED.x_off], q, p + RED.kshape, p + RED.kstride, M[p + RED.nk])


@njit(inline="always", **HELPER)
def _run_base(M, p, t, xb):
    """X's offset of reduced run t from kept base xb (row-major over the reduced dims but the last)."""
    return _unravel(M, xb, t, p + RED.rshape, p + RED.rstride, M[p + RED.nr] - 1)


@njit(**HELPER)
def _sum_shortcut(X, Y, M, p, rows):
    """The sums' shortcuts: nothing reduced (a copy, or nothing in place) or, with ``rows``, leading
    rows summed into a contiguous row. True when one ran."""
    if M[p + RED.nk] != 1 or M[p + RED.kstride] != 1:
        return False
    xo, yo = M[p + RED.x_off], M[p + RED.y_off]
    if M[p + RED.count] == 1:
        if xo != yo or X.ctypes.data != Y.ctypes.data:
            for j in range(M[p + RED.kshape]):
                Y[np.uint64(yo + j)] = X[np.uint64(xo + j)]
        return True
    if not rows or M[p + RED.nr] != 1:
        return False
    K = M[p + RED.kshape]
    si = M[p + RED.rstride]
    for k in range(K):
        Y[np.uint64(yo + k)] = 0
    for i in range(M[p + RED.rshape]):
        xr = xo + i * si
        for k in range(K):
            Y[np.uint64(yo + k)] += X[np.uint64(xr + k)]
    return True


@njit(**HELPER)
def _sums(X, Y, M, p, zero, mean):
    """Y[q] = the sum of q's reduced elements accumulated from ``zero`` (its type: the accumulator's),
    over their count when ``mean``. One loop nest (a helper per q is not inlined: 2x slower)."""
    if _sum_shortcut(X, Y, M, p, not mean):
        return
    kout, rout, ni, si = _counts(M, p)
    yo = M[p + RED.y_off]
    count = M[p + RED.count]
    for q in range(kout):
        xb = _kept_base(M, p, q)
        acc = zero
        for t in range(rout):
            xc = _run_base(M, p, t, xb)
            if si == 1:
                acc = _sum_run(X, xc, ni, acc)
            else:
                for j in range(ni):
                    acc += X[np.uint64(xc + j * si)]
        if mean:
            Y[np.uint64(yo + q)] = acc / count
        else:
            Y[np.uint64(yo + q)] = acc


@njit(**JIT)
def red_SumF(X, Y, M, E, p):
    """Sums of floats, accumulated in float64."""
    _sums(X, Y, M, p, 0.0, OFF)


@njit(**JIT)
def red_SumI(X, Y, M, E, p):
    """Sums of integers (and booleans), accumulated in int64."""
    _sums(X, Y, M, p, ZERO, OFF)


@njit(**JIT)
def red_Mean(X, Y, M, E, p):
    """Means: float64 sums over the count, rounded once on store."""
    _sums(X, Y, M, p, 0.0, ON)


@njit(**JIT)
def red_Max(X, Y, M, E, p):
    """Maxima; NaN if any reduced element is NaN (NumPy's ``max``). The lowering refuses empty reductions."""
    kout, rout, ni, si = _counts(M, p)
    yo = M[p + RED.y_off]
    for q in range(kout):
        xb = _kept_base(M, p, q)
        acc = X[xb]
        nan = False
        for t in range(rout):
            xc = _run_base(M, p, t, xb)
            for j in range(ni):
                v = X[np.uint64(xc + j * si)]
                if v != v:
                    nan = True
                    acc = v
                elif not nan and v > acc:
                    acc = v
        Y[yo + q] = acc


@njit(**JIT)
def red_ArgMax(X, Y, M, E, p):
    """Index of the first maximum in the reduced elements' row-major order; of the first NaN if any
    (NumPy's ``argmax``)."""
    kout, rout, ni, si = _counts(M, p)
    yo = M[p + RED.y_off]
    for q in range(kout):
        xb = _kept_base(M, p, q)
        acc = X[xb]
        best = 0
        k = 0
        nan = acc != acc
        for t in range(rout):
            xc = _run_base(M, p, t, xb)
            for j in range(ni):
                v = X[np.uint64(xc + j * si)]
                if not nan and (v != v or v > acc):
                    acc = v
                    best = k
                    nan = v != v
                k += 1
        Y[yo + q] = best
