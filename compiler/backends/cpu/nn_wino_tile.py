"""Single-tile Winograd CPU kernels: 2-d convolutions whose (padded) input plane is one Winograd tile.

LeNet's second conv reads 8x8 planes with a 5x5 filter and writes 4x4 planes: the whole plane is
the input tile of F(4x4, 5x5), a = m + r - 1 = 8 along each axis. With one tile per plane the
transforms are fixed linear maps of whole planes, so every stage is one GEMM over a chunk of
samples (``A2 = a_h a_w``, ``M2 = m_h m_w``, ``R2 = r_h r_w``; KB = B_h^T (x) B_w^T, KA = A_h^T (x)
A_w^T, KG = G_h (x) G_w, Kronecker products of the 1-d matrices of ``matrices``)::

    U  (A2 x C O) = KG @ W^T                          the filters, once per call
    V  (A2 x n C) = KB @ X^T                           X: the chunk's (zero-padded) planes, (n C x A2)
    Mx[xi] (n x O) = V[xi] (n x C) @ U[xi] (C x O)    A2 GEMMs
    Y  (n O x M2) = Mx^T @ KA^T                        straight into Y's (N, O, OH, OW) rows

The kernels use (c, o) order U for the forward and (o, c) order for the gradients:

- ``tile_fwd``: the four stages above (W copied to (C, O, R2) first, so U's GEMMs run NN); a fused
  bias (``nn_conv.fuse_bias``) is added to Y's rows;
- ``tile_bpi``: dM (A2 x n O) = KA^T @ dY^T, dV[xi] (n x C) = dM[xi] @ U[xi], dX planes = dV^T @ KB;
- ``tile_bpf``: V and dM as above, dU[xi] (O x C) += dM[xi]^T @ V[xi] over the worker's chunks, the
  workers' dU summed, dW (O C x R2) = dU^T @ KG; a fused bias gradient (``nn_conv.fuse_bias_grad``)
  sums dY's planes per worker (``_bias_sums``).

Each worker takes a contiguous share of the samples and runs it in chunks of ``nb`` samples (V and
Mx ~``CHUNK_ELEMENTS``, cache-sized), every GEMM on one BLAS thread (an idle multi-threaded OpenBLAS
spins against the workers: a first version computing U on two BLAS threads before the workers made
the whole LeNet step 10x slower, every later kernel included). U's columns and dW's rows are split
over the workers too. ``applies`` takes a conv only where the multiply-adds (transforms included) are
at most ``MAX_COST`` of im2col's: LeNet's conv2 (4x4 outputs, 5x5 filter, 32 -> 64 channels) 0.40;
the demo's 3x3 convs on 4x4 planes 0.78 (kept on im2col). The 1-d matrices use the points 0, 1, -1,
2, -2, 1/2, -1/2 (a <= 8); float32 results are within a few 1e-6 of the float64 sums, like
F(4x4, 3x3)'s (``nn_winograd``, whose tile layout serves wide planes: tried on LeNet's conv2 with a
5x5 variant of its matrices, its per-row transforms and scalar filter transform made the forward
1.5x and the gradients 1.6x slower than im2col).

Measured (plan profiles, same minutes, two workers), LeNet's conv2 im2col -> tile kernels: batch 64
forward 0.69 -> 0.39 ms, input gradient 0.61 -> 0.35, filter gradient 0.52 -> 0.41 (the step 3.37 ->
2.60 ms); batch 256: 2.74 -> 1.05, 2.40 -> 1.25, 2.56 -> 1.16 (the step 13.3 -> 8.9 ms).

Record: ``nn_conv.ConvRecord``'s, with the chunk size at q + 22 and each worker's region at q + 26
(``geometry``). Workspace: KB, KA, KG, U, W's copy, the workers' bias sums, then per worker V, Mx
(or dM), the padded planes and its partial dU (regions on 16-element boundaries).
"""
from __future__ import annotations

import math
import os
from typing import List

import numpy as np

from . import threads

POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
MAX_A = len(POINTS) + 1          # the largest tile side the points serve
MAX_COST = 0.6                   # at most this share of im2col's multiply-adds
CHUNK_ELEMENTS = 1 << 18         # V and Mx of a chunk hold about this many elements
ALIGN = 16


def matrices(m: int, r: int):
    """B^T (a x a), G (a x r), A^T (m x a) of the 1-d Winograd F(m, r), a = m + r - 1, from the
    first a - 1 of ``POINTS`` and the point at infinity (Toom-Cook): A^T and G evaluate the output
    and filter polynomials, B^T solves A^T [(G g) * (B^T d)] = the correlation of d and g."""
    a = m + r - 1
    pts = POINTS[:a - 1]
    AT, G = np.zeros((m, a)), np.zeros((a, r))
    for j, p in enumerate(pts):
        AT[:, j] = [p ** i for i in range(m)]
        f = math.prod(p - q for k, q in enumerate(pts) if k != j)
        G[j] = [p ** k / f for k in range(r)]
    AT[m - 1, a - 1] = G[a - 1, r - 1] = 1.0
    Q = np.einsum("ij,jk->ikj", AT, G).reshape(m * r, a)         # rows (i, k): A^T[i, j] G[j, k]
    want = np.array([[1.0 if t == i + k else 0.0 for t in range(a)] for i in range(m) for k in range(r)])
    BT = np.linalg.lstsq(Q, want, rcond=None)[0]
    assert np.abs(Q @ BT - want).max() < 1e-12, (m, r)
    return BT, G, AT


def _table():
    """Every F(m, r) with a <= MAX_A flattened into one float64 array, and where each starts."""
    flat, at = [], np.full((MAX_A + 1, MAX_A + 1), -1, np.int64)
    for m in range(1, MAX_A + 1):
        for r in range(1, MAX_A + 2 - m):
            at[m, r] = sum(len(x) for x in flat)
            flat.append(np.concatenate([x.ravel() for x in matrices(m, r)]))
    return np.concatenate(flat), at


_FLAT, _AT = _table()

SOURCE = '''

# ---- single-tile Winograd (compiler/backends/cpu/nn_wino_tile.py) ----

_TILE_FLAT = np.array(__FLAT__, dtype=np.float64)
_TILE_AT = np.array(__AT__, dtype=np.int64).reshape(__SIDE__, __SIDE__)


@njit(**_JIT)
def _tile_ld(n):
    """n rounded up to whole 64-byte lines of float32 (``ALIGN`` elements): where regions start."""
    return (n + __ALIGN__ - 1) // __ALIGN__ * __ALIGN__


@njit(**_JIT)
def _tile_dims(M, q):
    """N, C, H, W, O, KH, KW, OH, OW, pad_h, pad_w, chunk samples, workers, region."""
    return (M[q], M[q + 1], M[q + 3], M[q + 4], M[q + 5], M[q + 7], M[q + 8], M[q + 10], M[q + 11],
            M[q + 16], M[q + 17], M[q + 22], M[q + 25], M[q + 26])


@njit(**_JIT)
def _tile_layout(M, q, so):
    """Offsets of KB, KA, KG, U, W's copy, the workers' bias sums (O * M2 each) and worker 0's
    region (worker t's: + t * region)."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    kb = so
    ka = kb + A2 * A2
    kg = ka + OH * OW * A2
    uo = _tile_ld(kg + A2 * KH * KW)
    wp = _tile_ld(uo + A2 * O * C)
    bs = _tile_ld(wp + C * O * KH * KW)
    r0 = _tile_ld(bs + T * O * OH * OW)
    return kb, ka, kg, uo, wp, bs, r0


@njit(**_JIT)
def _tile_region(M, q, r0, t):
    """Worker t's V, Mx, padded planes and partial dU."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    vo = r0 + t * size
    mo = _tile_ld(vo + A2 * nb * C)
    xp = _tile_ld(mo + A2 * nb * O)
    du = _tile_ld(xp + nb * C * A2)
    return vo, mo, xp, du


@njit(**_JIT)
def _tile_mats(WS, kb, ka, kg, mh, rh, mw, rw):
    """KB = B_h^T (x) B_w^T, KA = A_h^T (x) A_w^T, KG = G_h (x) G_w into WS (its dtype)."""
    ah = mh + rh - 1
    aw = mw + rw - 1
    bh = _TILE_AT[mh, rh]
    bw = _TILE_AT[mw, rw]
    gh, gw = bh + ah * ah, bw + aw * aw
    th, tw = gh + ah * rh, gw + aw * rw
    for i in range(ah):
        for j in range(aw):
            for k in range(ah):
                for l in range(aw):
                    WS[kb + (i * aw + j) * ah * aw + k * aw + l] = _TILE_FLAT[bh + i * ah + k] * _TILE_FLAT[bw + j * aw + l]
            for k in range(rh):
                for l in range(rw):
                    WS[kg + (i * aw + j) * rh * rw + k * rw + l] = _TILE_FLAT[gh + i * rh + k] * _TILE_FLAT[gw + j * rw + l]
    for i in range(mh):
        for j in range(mw):
            for k in range(ah):
                for l in range(aw):
                    WS[ka + (i * mw + j) * ah * aw + k * aw + l] = _TILE_FLAT[th + i * ah + k] * _TILE_FLAT[tw + j * aw + l]


@njit(**_JIT)
def _tile_planes(X, xo, WS, xp, M, q, n0, n, back):
    """Between the chunk's planes of X (samples [n0, n0 + n)) and zero-padded (a_h x a_w) planes at
    xp: padded (back: False), or the padded planes' inside into X (back: True)."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    ah, aw = OH + KH - 1, OW + KW - 1
    for s in range(n * C):
        xb = xo + (n0 * C + s) * H * Wd
        pb = xp + s * ah * aw
        if not back:
            for i in range(ah * aw):
                WS[np.uint64(pb + i)] = 0
        for h in range(H):
            for w in range(Wd):
                if back:
                    X[np.uint64(xb + h * Wd + w)] = WS[np.uint64(pb + (h + ph) * aw + w + pw)]
                else:
                    WS[np.uint64(pb + (h + ph) * aw + w + pw)] = X[np.uint64(xb + h * Wd + w)]


@njit(**_JIT)
def _tile_in(X, xo, WS, kb, vo, xp, M, q, n0, n):
    """V (A2 x n C) = KB @ the chunk's planes^T (read in place without padding)."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    if ph == 0 and pw == 0:
        _gemm(NT, TR, A2, n * C, A2, 1.0, WS, kb, A2, X, xo + n0 * C * A2, A2, 0.0, WS, vo, n * C)
    else:
        _tile_planes(X, xo, WS, xp, M, q, n0, n, OFF)
        _gemm(NT, TR, A2, n * C, A2, 1.0, WS, kb, A2, WS, xp, A2, 0.0, WS, vo, n * C)


@njit(**_JIT)
def _tile_grad_in(DY, dyo, WS, ka, mo, M, q, n0, n):
    """dM (A2 x n O) = KA^T @ the chunk's output-gradient planes^T."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    M2 = OH * OW
    _gemm(TR, TR, A2, n * O, M2, 1.0, WS, ka, A2, DY, dyo + n0 * O * M2, M2, 0.0, WS, mo, n * O)


@njit(**_JIT)
def _tile_fwd_share(X, xo, Wt, wo, Y, yo, WS, so, M, q, t):
    """Worker t's samples in chunks: V, the A2 GEMMs, Y's rows, the fused bias."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    vo, mo, xp, du = _tile_region(M, q, r0, t)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    M2 = OH * OW
    for n0 in range(t * N // T, (t + 1) * N // T, nb):
        n = min(nb, (t + 1) * N // T - n0)
        _tile_in(X, xo, WS, kb, vo, xp, M, q, n0, n)
        for xi in range(A2):
            _gemm(NT, NT, n, O, C, 1.0, WS, vo + xi * n * C, C, WS, uo + xi * C * O, O, 0.0, WS, mo + xi * n * O, O)
        _gemm(TR, TR, n * O, M2, A2, 1.0, WS, mo, n * O, WS, ka, A2, 0.0, Y, yo + n0 * O * M2, M2)
        if M[q + 27]:
            _conv_bias(Y, yo, Wt, M[q + 28], n0, n, O, M2)


@njit(**_JIT)
def _tile_u(Wt, wo, WS, M, q, so, t, forward):
    """Worker t's band of the C O columns of U = KG @ W^T: (c, o) order for the forward (W's rows
    copied to (C, O, R2) first), else (o, c), W read as it is."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    R2 = KH * KW
    lo, hi = t * C * O // T, (t + 1) * C * O // T
    if forward:
        for j in range(lo, hi):
            c, o = j // O, j % O
            for k in range(R2):
                WS[np.uint64(wp + j * R2 + k)] = Wt[np.uint64(wo + (o * C + c) * R2 + k)]
        _gemm(NT, TR, (OH + KH - 1) * (OW + KW - 1), hi - lo, R2, 1.0, WS, kg, R2, WS, wp + lo * R2, R2, 0.0,
              WS, uo + lo, C * O)
    else:
        _gemm(NT, TR, (OH + KH - 1) * (OW + KW - 1), hi - lo, R2, 1.0, WS, kg, R2, Wt, wo + lo * R2, R2, 0.0,
              WS, uo + lo, C * O)


@njit(**_PJIT)
def _tile_start(Wt, wo, WS, M, q, so, forward):
    """What a call does before its chunks: KB, KA, KG, then (wo >= 0) U in column bands over the workers."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    _tile_mats(WS, kb, ka, kg, OH, KH, OW, KW)
    if wo >= 0 and T == 1:
        _tile_u(Wt, wo, WS, M, q, so, ZERO, forward)
    elif wo >= 0:
        for u in prange(T):
            _tile_u(Wt, wo, WS, M, q, so, np.int64(u), forward)


@njit(**_PJIT)
def tile_fwd(X, Wt, Y, WS, M, E, p):
    """Y = Conv(X, W) for a plane that is one Winograd tile (see nn_wino_tile.py). With T > 1 workers
    every GEMM of the call runs on one BLAS thread (idle OpenBLAS threads spin against the
    workers); with one, the call never enters the threading layer (``threads.py``: a forked child)
    and its GEMMs run on BLAS's own threads, as the conv family's."""
    xo, wo, yo, so = M[p], M[p + 1], M[p + 2], M[p + 3]
    q = p + 4
    if M[q] == 0:
        return
    if M[q + 25] == 1:
        _tile_start(Wt, wo, WS, M, q, so, ON)
        _tile_fwd_share(X, xo, Wt, wo, Y, yo, WS, so, M, q, ZERO)
        return
    nt = _blas_at_most(ONE)
    _tile_start(Wt, wo, WS, M, q, so, ON)
    for u in prange(M[q + 25]):
        _tile_fwd_share(X, xo, Wt, wo, Y, yo, WS, so, M, q, np.int64(u))
    _blas_restore(ONE, nt)


@njit(**_JIT)
def _tile_bpi_share(DY, dyo, DX, dxo, WS, so, M, q, t):
    """Worker t's samples in chunks: dM, the A2 GEMMs, the planes into dX."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    vo, mo, xp, du = _tile_region(M, q, r0, t)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    for n0 in range(t * N // T, (t + 1) * N // T, nb):
        n = min(nb, (t + 1) * N // T - n0)
        _tile_grad_in(DY, dyo, WS, ka, mo, M, q, n0, n)
        for xi in range(A2):
            _gemm(NT, NT, n, C, O, 1.0, WS, mo + xi * n * O, O, WS, uo + xi * O * C, C, 0.0, WS, vo + xi * n * C, C)
        if ph == 0 and pw == 0:
            _gemm(TR, NT, n * C, A2, A2, 1.0, WS, vo, n * C, WS, kb, A2, 0.0, DX, dxo + n0 * C * A2, A2)
        else:
            _gemm(TR, NT, n * C, A2, A2, 1.0, WS, vo, n * C, WS, kb, A2, 0.0, WS, xp, A2)
            _tile_planes(DX, dxo, WS, xp, M, q, n0, n, ON)


@njit(**_PJIT)
def tile_bpi(DY, Wt, DX, WS, M, E, p):
    """DX = ConvBackpropInput(DY, W) for a plane that is one Winograd tile: tile_fwd's adjoint. The
    same dispatch as tile_fwd's, on purpose not shared: a helper calling either share loop links
    (and compiles) both into each kernel."""
    dyo, wo, dxo, so = M[p], M[p + 1], M[p + 2], M[p + 3]
    q = p + 4
    if M[q] == 0:
        return
    if M[q + 25] == 1:
        _tile_start(Wt, wo, WS, M, q, so, OFF)
        _tile_bpi_share(DY, dyo, DX, dxo, WS, so, M, q, ZERO)
        return
    nt = _blas_at_most(ONE)
    _tile_start(Wt, wo, WS, M, q, so, OFF)
    for u in prange(M[q + 25]):
        _tile_bpi_share(DY, dyo, DX, dxo, WS, so, M, q, np.int64(u))
    _blas_restore(ONE, nt)


@njit(**_JIT)
def _tile_bpf_share(X, xo, DY, dyo, WS, so, M, q, t, bias):
    """Worker t's samples in chunks: V, dM, dU[xi] += dM[xi]^T @ V[xi] into its region (its first
    chunk writes, GEMM's beta; a worker with no samples zeroes it), and its sums of dY's planes
    where the bias gradient is fused."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    vo, mo, xp, du = _tile_region(M, q, r0, t)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    M2 = OH * OW
    lo, hi = t * N // T, (t + 1) * N // T
    bs += t * O * M2
    if lo == hi:
        for i in range(A2 * O * C):
            WS[np.uint64(du + i)] = 0
    if bias:
        for i in range(O * M2):
            WS[np.uint64(bs + i)] = 0
    for n0 in range(lo, hi, nb):
        n = min(nb, hi - n0)
        _tile_in(X, xo, WS, kb, vo, xp, M, q, n0, n)
        _tile_grad_in(DY, dyo, WS, ka, mo, M, q, n0, n)
        for xi in range(A2):
            _gemm(TR, NT, O, C, n, 1.0, WS, mo + xi * n * O, O, WS, vo + xi * n * C, C, 0.0 if n0 == lo else 1.0,
                  WS, du + xi * O * C, C)
        if bias:
            _bias_sums(DY, dyo, WS, bs, n0, n, O, M2)


@njit(**_JIT)
def _tile_dw(DW, dwo, WS, M, q, so, t):
    """Worker t's band of dW's O C rows: the workers' partial dU summed into worker 0's, then
    dW = dU^T @ KG."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, so)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    R2 = KH * KW
    lo, hi = t * C * O // T, (t + 1) * C * O // T
    du0 = _tile_region(M, q, r0, ZERO)[3]
    for s in range(1, T):
        du = _tile_region(M, q, r0, s)[3]
        for xi in range(A2):
            for j in range(lo, hi):
                WS[np.uint64(du0 + xi * O * C + j)] += WS[np.uint64(du + xi * O * C + j)]
    _gemm(TR, NT, hi - lo, R2, A2, 1.0, WS, du0 + lo, O * C, WS, kg, R2, 0.0, DW, dwo + lo * R2, R2)


@njit(**_PJIT)
def tile_bpf(X, DY, DW, WS, BG, M, E, p):
    """DW = ConvBackpropFilter(X, DY) for a plane that is one Winograd tile (and the fused bias
    gradient into BG, as ``conv_bpf``)."""
    xo, dyo, dwo, so = M[p], M[p + 1], M[p + 2], M[p + 3]
    q = p + 4
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    bias = M[q + 27] != 0
    bs = _tile_layout(M, q, so)[5]
    _tile_start(DW, np.int64(-1), WS, M, q, so, OFF)        # the matrices only
    if T == 1:
        _tile_bpf_share(X, xo, DY, dyo, WS, so, M, q, ZERO, bias)
        _tile_dw(DW, dwo, WS, M, q, so, ZERO)
    else:
        nt = _blas_at_most(ONE)
        for u in prange(T):
            _tile_bpf_share(X, xo, DY, dyo, WS, so, M, q, np.int64(u), bias)
        for u in prange(T):
            _tile_dw(DW, dwo, WS, M, q, so, np.int64(u))
        _blas_restore(ONE, nt)
    if bias:
        _bias_grad(BG, M[q + 28], WS, bs, T, O, OH * OW)
'''


SOURCE = (SOURCE.replace("__FLAT__", repr([float(v) for v in _FLAT])).replace("__AT__", repr(_AT.ravel().tolist()))
          .replace("__SIDE__", str(MAX_A + 1)).replace("__ALIGN__", str(ALIGN)))


# -- lowering side ---------------------------------------------------------------------------------

def _ld(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def applies(attrs: dict, xshape, wshape, yshape, dtype) -> bool:
    """A 2-d conv whose padded input plane is one tile of a <= ``MAX_A`` along each axis (so stride 1,
    dilation 1), one group, static channels, plane and filter shapes, float32 or float64, where
    the transforms and GEMMs take at most ``MAX_COST`` of im2col's multiply-adds.
    ``STATICGRAPH_WINOGRAD=0`` turns it off (with ``nn_winograd``)."""
    if os.environ.get("STATICGRAPH_WINOGRAD", "1") == "0":
        return False
    shapes = [tuple(s) if s is not None else None for s in (xshape, wshape, yshape)]
    if any(s is None or len(s) != 4 or None in s[1:] for s in shapes) or None in shapes[1]:
        return False
    (_, c, h, w), (o, cg, kh, kw), (_, _, oh, ow) = shapes
    if attrs["groups"] != 1 or any(s != 1 for s in attrs["stride"]) or any(d != 1 for d in attrs["dilation"]):
        return False
    ah, aw = oh + kh - 1, ow + kw - 1
    if np.dtype(dtype) not in (np.float32, np.float64) or min(c, o, oh, ow) < 1 or max(ah, aw) > MAX_A:
        return False
    a2, m2 = ah * aw, oh * ow
    tile = c * a2 * a2 + a2 * c * o + o * a2 * m2
    return tile <= MAX_COST * m2 * kh * kw * c * o


def geometry(attrs: dict, xshape, wshape, yshape) -> List[int]:
    """``nn_conv._geometry`` with this family's chunk samples (q + 22) and worker region (q + 26)."""
    from .nn_conv import _geometry
    g = _geometry(attrs, xshape, wshape, yshape)
    n, c = xshape[:2]
    o, _, kh, kw = wshape
    oh, ow = yshape[2:]
    a2 = (oh + kh - 1) * (ow + kw - 1)
    workers = max(1, min(threads.kernel_threads(), n))
    nb = max(1, min(-(-n // workers), CHUNK_ELEMENTS // (a2 * (c + o))))
    g[22], g[25] = nb, workers
    g[26] = _ld(a2 * nb * c) + _ld(a2 * nb * o) + _ld(nb * c * a2) + _ld(a2 * o * c)
    return g


def workspace_size(attrs: dict, xshape, wshape, yshape) -> int:
    """KB, KA, KG, U, W's copy, the workers' bias sums, then their regions (``_tile_layout``; each
    of its five alignments may skip up to ALIGN - 1 elements)."""
    g = geometry(attrs, xshape, wshape, yshape)
    o, c, kh, kw = wshape
    oh, ow = yshape[2:]
    a2, r2, workers = (oh + kh - 1) * (ow + kw - 1), kh * kw, g[25]
    head = a2 * a2 + oh * ow * a2 + a2 * r2 + a2 * o * c + c * o * r2 + workers * o * oh * ow
    return head + 5 * ALIGN + workers * g[26]
