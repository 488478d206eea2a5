"""The softmax family's kernels (Softmax, LogSoftmax, NllLoss, NllLossGrad).

Semantics and records are described in ``nn_softmax.py`` (the lowering side)."""
import numpy as np
from numba import njit

from .base import JIT


@njit(**JIT)
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
    """Record: outer, n, inner, x_off, y_off, log. The rows run along the middle axis."""
    outer = M[p]
    n = M[p + 1]
    inner = M[p + 2]
    xo = M[p + 3]
    yo = M[p + 4]
    log = M[p + 5]
    for o in range(outer):
        for i in range(inner):
            b = o * n * inner + i
            _sm_row(X, Y, xo + b, yo + b, n, inner, log)


@njit(**JIT)
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


@njit(**JIT)
def nll_loss(P, L, Y, M, E, p):
    """Y[o, i] = -P[o, L[o, i], i]. Record: outer, n_classes, inner, p_off, l_off, y_off."""
    outer = M[p]
    c = M[p + 1]
    inner = M[p + 2]
    po = M[p + 3]
    lo = M[p + 4]
    yo = M[p + 5]
    if not _labels_ok(L, lo, outer * inner, c, E, p):
        return
    for o in range(outer):
        for i in range(inner):
            q = o * inner + i
            Y[yo + q] = -P[po + (o * c + L[lo + q]) * inner + i]


@njit(**JIT)
def nll_loss_grad(G, L, Y, M, E, p):
    """Y = 0; Y[o, L[o, i], i] = -G[o, i]. Record: outer, n_classes, inner,
    g_off, l_off, y_off."""
    outer = M[p]
    c = M[p + 1]
    inner = M[p + 2]
    go = M[p + 3]
    lo = M[p + 4]
    yo = M[p + 5]
    if not _labels_ok(L, lo, outer * inner, c, E, p):
        return
    for k in range(outer * c * inner):
        Y[yo + k] = 0
    for o in range(outer):
        for i in range(inner):
            q = o * inner + i
            Y[yo + (o * c + L[lo + q]) * inner + i] = -G[go + q]
