"""``softmax_rows``, ``nll_loss``, ``nll_loss_grad`` (records ``nn_softmax.SOFTMAX_ROWS`` and
``SOFTMAX_NLL``; semantics of ``cpu/kernels/softmax.py``: rows max-shifted and accumulated in
float64, a NaN stays in its row; labels range-checked in C order before anything is written,
the first bad one reported in ``E`` as on cpu, code ``nn_softmax.LABEL_ERROR``).

Softmax: one thread per row (rows of (outer, n, inner) along n). The NLL pair: one block,
whose thread 0 checks the labels in order first (the first bad label is the one reported)."""
from __future__ import annotations

import math

from numba import cuda, float64, int32

from ...cpu.nn_softmax import LABEL_ERROR, SOFTMAX_NLL, SOFTMAX_ROWS
from . import launches
from .common import TPB, blocks

ROWS = SOFTMAX_ROWS.at
NLL = SOFTMAX_NLL.at


@cuda.jit
def softmax_rows(X, Y, M, E, p):
    outer = M[p + ROWS.outer]
    n = M[p + ROWS.n]
    inner = M[p + ROWS.inner]
    log = M[p + ROWS.log]
    row = cuda.grid(1)
    while row < outer * inner:
        b = (row // inner) * n * inner + row % inner
        xo = M[p + ROWS.x_off] + b
        yo = M[p + ROWS.y_off] + b
        m = -math.inf
        for j in range(n):
            v = float64(X[xo + j * inner])
            if v > m or v != v:
                m = v
                if v != v:
                    break
        s = float64(0)
        for j in range(n):
            s += math.exp(float64(X[xo + j * inner]) - m)
        if log:
            ls = math.log(s)
            for j in range(n):
                Y[yo + j * inner] = (float64(X[xo + j * inner]) - m) - ls
        else:
            for j in range(n):
                Y[yo + j * inner] = math.exp(float64(X[xo + j * inner]) - m) / s
        row += cuda.gridsize(1)


@launches("softmax_rows")
def _softmax(arrays, M, E, p, rec, stream):
    r = SOFTMAX_ROWS.unpack(rec)
    if r["outer"] * r["inner"] * r["n"]:
        softmax_rows[blocks(r["outer"] * r["inner"]), TPB, stream](*arrays, M, E, p)


@cuda.jit(device=True)
def _labels_ok(L, M, E, p, ok):
    """Thread 0 checks the labels in C order (the first bad one into E); every thread then reads ok[0]."""
    if cuda.threadIdx.x == 0:
        ok[0] = 1
        count = M[p + NLL.outer] * M[p + NLL.inner]
        for q in range(count):
            v = L[M[p + NLL.labels_off] + q]
            if v < 0 or v >= M[p + NLL.n_classes]:
                E[0] = LABEL_ERROR
                E[1] = p
                E[2] = v
                E[3] = q
                ok[0] = 0
                break
    cuda.syncthreads()
    return ok[0] == 1


@cuda.jit
def nll_loss(P, L, Y, M, E, p):
    """Y[o, i] = -P[o, L[o, i], i]."""
    ok = cuda.shared.array(1, int32)
    if not _labels_ok(L, M, E, p, ok):
        return
    c, inner = M[p + NLL.n_classes], M[p + NLL.inner]
    q = cuda.threadIdx.x
    while q < M[p + NLL.outer] * inner:
        Y[M[p + NLL.y_off] + q] = -P[M[p + NLL.src_off] + ((q // inner) * c + L[M[p + NLL.labels_off] + q]) * inner
                                     + q % inner]
        q += cuda.blockDim.x


@cuda.jit
def nll_loss_grad(G, L, Y, M, E, p):
    """Y = 0; Y[o, L[o, i], i] = -G[o, i]."""
    ok = cuda.shared.array(1, int32)
    if not _labels_ok(L, M, E, p, ok):
        return
    c, inner, outer = M[p + NLL.n_classes], M[p + NLL.inner], M[p + NLL.outer]
    yo = M[p + NLL.y_off]
    k = cuda.threadIdx.x
    while k < outer * c * inner:
        Y[yo + k] = 0
        k += cuda.blockDim.x
    cuda.syncthreads()
    q = cuda.threadIdx.x
    while q < outer * inner:
        Y[yo + ((q // inner) * c + L[M[p + NLL.labels_off] + q]) * inner + q % inner] = -G[M[p + NLL.src_off] + q]
        q += cuda.blockDim.x


@launches("nll_loss")
def _nll(arrays, M, E, p, rec, stream):
    nll_loss[1, TPB, stream](*arrays, M, E, p)


@launches("nll_loss_grad")
def _nll_grad(arrays, M, E, p, rec, stream):
    nll_loss_grad[1, TPB, stream](*arrays, M, E, p)
