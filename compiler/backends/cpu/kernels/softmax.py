"""The softmax family's kernels (Softmax, LogSoftmax, NllLoss, NllLossGrad).

Semantics are described in ``nn_softmax.py`` (the lowering side), which defines the records:
``SOFTMAX_ROWS`` (``ROWS``) and ``SOFTMAX_NLL`` (``NLL``)."""
import numpy as np
from numba import njit

from ..nn_softmax import SOFTMAX_NLL, SOFTMAX_ROWS
from .base import HELPER, JIT

ROWS = SOFTMAX_ROWS.at     # module names: unique over kernels/ (library.SOURCE imports them all)
NLL = SOFTMAX_NLL.at


@njit(**HELPER)
def _sm_row(X, Y, xo, yo, n, st, log):
    """Softmax (log=0) or log-softmax (log=1) of the n elements X[xo + j*st] into Y[yo + j*st]."""
    m = -np.inf
    for j in range(n):
        v = np.float64(X[xo + j * st])
        if v > m or v != v:
            m = v
            if v != v:
                break
    s = 0.0
    for j in range(n):
        s += np.exp(np.float64(X[xo + j * st]) - m)
    if log:
        ls = np.log(s)
        for j in range(n):
            Y[yo + j * st] = (np.float64(X[xo + j * st]) - m) - ls
    else:
        for j in range(n):
            Y[yo + j * st] = np.exp(np.float64(X[xo + j * st]) - m) / s


@njit(**JIT)
def softmax_rows(X, Y, M, E, p):
    """Softmax or log-softmax of x (outer, n, inner): the rows run along the middle axis."""
    outer = M[p + ROWS.outer]
    n = M[p + ROWS.n]
    inner = M[p + ROWS.inner]
    xo = M[p + ROWS.x_off]
    yo = M[p + ROWS.y_off]
    log = M[p + ROWS.log]
    for o in range(outer):
        for i in range(inner):
            b = o * n * inner + i
            _sm_row(X, Y, xo + b, yo + b, n, inner, log)


@njit(**HELPER)
def _labels_ok(L, lo, count, n_classes, E, p):
    """False (and E = code, p, label, flat position) at the first label outside [0, n_classes)."""
    for q in range(count):
        v = L[lo + q]
        if v < 0 or v >= n_classes:
            E[0] = 30
            E[1] = p
            E[2] = v
            E[3] = q
            return False
    return True


@njit(**HELPER)
def _nll_record(M, p):
    """outer, n_classes, inner and the offsets of the source, labels and output."""
    return (M[p + NLL.outer], M[p + NLL.n_classes], M[p + NLL.inner], M[p + NLL.src_off], M[p + NLL.labels_off],
            M[p + NLL.y_off])


@njit(**JIT)
def nll_loss(P, L, Y, M, E, p):
    """Y[o, i] = -P[o, L[o, i], i]."""
    outer, c, inner, po, lo, yo = _nll_record(M, p)
    if not _labels_ok(L, lo, outer * inner, c, E, p):
        return
    for o in range(outer):
        for i in range(inner):
            q = o * inner + i
            Y[yo + q] = -P[po + (o * c + L[lo + q]) * inner + i]


@njit(**JIT)
def nll_loss_grad(G, L, Y, M, E, p):
    """Y = 0; Y[o, L[o, i], i] = -G[o, i]."""
    outer, c, inner, go, lo, yo = _nll_record(M, p)
    if not _labels_ok(L, lo, outer * inner, c, E, p):
        return
    for k in range(outer * c * inner):
        Y[yo + k] = 0
    for o in range(outer):
        for i in range(inner):
            q = o * inner + i
            Y[yo + (o * c + L[lo + q]) * inner + i] = -G[go + q]
