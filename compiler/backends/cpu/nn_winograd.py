"""Winograd F(2x2, 3x3) CPU kernels for 2-d 3x3 convolutions (stride 1, dilation 1, one group).

Each 2x2 output tile is computed from a 4x4 input tile in a transformed space where the 3x3
correlation becomes 16 elementwise products, summed over channels by 16 GEMMs (2.25x fewer
multiplies than im2col's)::

    Y tile = A^T [ (G g G^T) (.) (B^T d B) ] A

with B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]],
A^T = [[1,1,1,0],[0,1,-1,-1]] (cross-correlation, as Conv computes). Tile (ty, tx) of sample n reads
input rows 2ty - pad_h .. +3 and columns 2tx - pad_w .. +3 (zeros outside the input). Tiles are
processed in blocks of whole tile rows ((n, ty) pairs, ``BLOCK_TILES`` tiles at most) so a block's
transformed tiles stay in cache across its 16 GEMMs:

- ``wino_fwd``: U[xi] (O x C) = G g G^T; per block V[xi] (C x tb) = B^T d B, Mx[xi] = U[xi] @ V[xi],
  Y tile = A^T Mx A (cropped at odd edges);
- ``wino_bpi`` (the exact adjoint): dM[xi] = A dY A^T (dY zero past the edge), dV[xi] = U[xi]^T @ dM[xi],
  dX += B dV B^T over the overlapping 4x4 tiles (cropped to the input);
- ``wino_bpf``: dU[xi] = sum over blocks of dM[xi] @ V[xi]^T, then dW = G^T dU G.

A block's tile columns are (tile row, tx) with tx in [0, TW]: one spare column per tile row
(tx = TW; 1/TW more GEMM work) makes the transforms long unit- or 2-strided runs over the whole
block, one store stream per loop (LLVM vectorises a loop over one buffer only when it needs few
runtime alias checks); spare output-gradient columns are zero, so dU and dX ignore them. Transforms
are adds (and halvings for the weights). Workspace: U (16 O C), the block's V / dV (16 C tb),
Mx / dM (16 O tb) and ``ROW_BUFFERS`` runs of tb for the transforms.

Measured (2 shared cores, conv_block: 32x64x32x32, 64 -> 64): GEMMs ~15 ms per kernel, transforms
~6-7 ms; blocks of 256 tiles were ~15% slower than 512, 1024 ~8% (V, Mx of 2 MB each: L3).

Record (``WINO_SIZE`` ints): 4 element offsets (the kernel's 2 inputs, output, workspace), then
N, C, H, W, O, OH, OW, pad_h, pad_w, the tile rows per block, the workers T and each one's
workspace region (``threads.py``: worker t runs the blocks of samples [t N / T, (t + 1) N / T)).
"""
from __future__ import annotations

import os

import numpy as np

from . import threads

WINO_SIZE = 4 + 12
MIN_CHANNELS = 16       # input and output channels at least this: the 16 GEMMs pay for the transforms
MIN_WIDTH = 8           # output planes at least this wide (a tile row: W/2 tiles + 1 spare; not measured
                        # below conv_block's 32: the demo's 4x4 planes keep im2col, and its compiles)
BLOCK_TILES = 512       # tiles per block (whole tile rows, at least one; measured: 256 - 1024 on conv_block)
# The kernels' GEMMs run on this many BLAS threads at most: 16 GEMMs per block synchronise OpenBLAS's
# threads hundreds of times a call, and on a busy machine each wait for a descheduled worker costs
# ms (measured on conv_block under load: 2 threads 0.5-2 s per kernel, 1 thread 26-38 ms).
BLAS_THREADS = 1
ROW_BUFFERS = 40        # the transforms' buffers: this many runs of a block's tile columns

_SOURCE = '''

# ---- Winograd F(2x2, 3x3) (nn_winograd.py) ----

@njit(**_JIT)
def _wino_dims(M, q):
    """N, C, H, W, O, OH, OW, pad_h, pad_w, tile rows per block, TH, TW, padded row width."""
    OH = M[q + 5]
    OW = M[q + 6]
    TH = (OH + 1) // 2
    TW = (OW + 1) // 2
    return M[q], M[q + 1], M[q + 2], M[q + 3], M[q + 4], OH, OW, M[q + 7], M[q + 8], M[q + 9], TH, TW, 2 * TW + 2


@njit(**_JIT)
def _g3(a, b, c):
    """G (a, b, c): the 4 weight-transform values of 3 taps."""
    return a, 0.5 * (a + b + c), 0.5 * (a - b + c), c


@njit(**_JIT)
def _gt4(a, b, c, d):
    """G^T (a, b, c, d): the 3 tap gradients of 4 transformed values."""
    return a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d


@njit(**_JIT)
def _wino_weights(Wt, wo, WS, uo, O, C):
    """U[xi] (O x C) at uo = G g G^T of each 3x3 filter g = W[o, c]."""
    S = O * C
    for o in range(O):
        for c in range(C):
            g = wo + (o * C + c) * 9
            s00, s10, s20, s30 = _g3(Wt[g], Wt[g + 3], Wt[g + 6])
            s01, s11, s21, s31 = _g3(Wt[g + 1], Wt[g + 4], Wt[g + 7])
            s02, s12, s22, s32 = _g3(Wt[g + 2], Wt[g + 5], Wt[g + 8])
            u = uo + o * C + c
            WS[u], WS[u + S], WS[u + 2 * S], WS[u + 3 * S] = _g3(s00, s01, s02)
            WS[u + 4 * S], WS[u + 5 * S], WS[u + 6 * S], WS[u + 7 * S] = _g3(s10, s11, s12)
            WS[u + 8 * S], WS[u + 9 * S], WS[u + 10 * S], WS[u + 11 * S] = _g3(s20, s21, s22)
            WS[u + 12 * S], WS[u + 13 * S], WS[u + 14 * S], WS[u + 15 * S] = _g3(s30, s31, s32)


@njit(**_JIT)
def _wino_filter_back(DW, dwo, WS, uo, O, C):
    """dW[o, c] = G^T dU G of the 4x4 matrices dU[xi] (O x C) at uo."""
    S = O * C
    for o in range(O):
        for c in range(C):
            u = uo + o * C + c
            r00, r10, r20 = _gt4(WS[u], WS[u + 4 * S], WS[u + 8 * S], WS[u + 12 * S])
            r01, r11, r21 = _gt4(WS[u + S], WS[u + 5 * S], WS[u + 9 * S], WS[u + 13 * S])
            r02, r12, r22 = _gt4(WS[u + 2 * S], WS[u + 6 * S], WS[u + 10 * S], WS[u + 14 * S])
            r03, r13, r23 = _gt4(WS[u + 3 * S], WS[u + 7 * S], WS[u + 11 * S], WS[u + 15 * S])
            g = dwo + (o * C + c) * 9
            DW[g], DW[g + 1], DW[g + 2] = _gt4(r00, r01, r02, r03)
            DW[g + 3], DW[g + 4], DW[g + 5] = _gt4(r10, r11, r12, r13)
            DW[g + 6], DW[g + 7], DW[g + 8] = _gt4(r20, r21, r22, r23)


# Loops over runs of a block's tile columns; one store stream each (LLVM vectorises a loop over a
# buffer only when few runtime alias checks are needed), unit or constant strides.

@njit(**_JIT)
def _wr_cp(A, d, a, n, sa):
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + sa * k)]


@njit(**_JIT)
def _wr_neg(A, d, a, n, sa):
    for k in range(n):
        A[np.uint64(d + k)] = -A[np.uint64(a + sa * k)]


@njit(**_JIT)
def _wr_add(A, d, a, b, n, sa):
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + sa * k)] + A[np.uint64(b + sa * k)]


@njit(**_JIT)
def _wr_sub(A, d, a, b, n, sa):
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + sa * k)] - A[np.uint64(b + sa * k)]


@njit(**_JIT)
def _wr_add3(A, d, a, b, c, n):
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + k)] + A[np.uint64(b + k)] + A[np.uint64(c + k)]


@njit(**_JIT)
def _wr_sub3(A, d, a, b, c, n):
    """a - b - c."""
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + k)] - A[np.uint64(b + k)] - A[np.uint64(c + k)]


@njit(**_JIT)
def _wr_mix3(A, d, a, b, c, n):
    """a - b + c."""
    for k in range(n):
        A[np.uint64(d + k)] = A[np.uint64(a + k)] - A[np.uint64(b + k)] + A[np.uint64(c + k)]


@njit(**_JIT)
def _wr_ilv(A, d, e, o, n):
    """Interleave: d[2k] = e[k], d[2k + 1] = o[k]."""
    for k in range(n):
        A[np.uint64(d + 2 * k)] = A[np.uint64(e + k)]
        A[np.uint64(d + 2 * k + 1)] = A[np.uint64(o + k)]


@njit(**_JIT)
def _wino_tiles_in(X, xo, WS, vo, bo, M, q, r0, nr):
    """V[xi] (C x tb) at vo = B^T d B of the input tiles of tile rows [r0, r0 + nr); a block's
    tile columns are (tile row, tx) with tx in [0, TW] (tx = TW: a spare column, ignored).
    Per channel: 4 planes of zero-padded input rows (row i of each tile row's tiles; 2 TW + 2 wide)
    at bo, their row combinations B^T d split into even / odd columns, then the column ones."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    Wh = TW + 1
    tb = nr * Wh
    S = tb + 2
    te = bo + 8 * tb          # TE_i at te + 2 i S, TO_i at te + (2 i + 1) S
    for c in range(C):
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            xb = xo + (n * C + c) * H * Wd
            for i in range(4):
                h = 2 * ty - ph + i
                rw = bo + i * 2 * tb + (r - r0) * Wp
                if h < 0 or h >= H:
                    for x in range(Wp):
                        WS[np.uint64(rw + x)] = 0
                    continue
                for x in range(pw):
                    WS[np.uint64(rw + x)] = 0
                xr = xb + h * Wd
                for x in range(Wd):
                    WS[np.uint64(rw + pw + x)] = X[np.uint64(xr + x)]
                for x in range(pw + Wd, Wp):
                    WS[np.uint64(rw + x)] = 0
        R0 = bo
        R1 = bo + 2 * tb
        R2 = bo + 4 * tb
        R3 = bo + 6 * tb
        for par in range(2):
            t = te + par * S
            _wr_sub(WS, t, R0 + par, R2 + par, tb, 2)
            _wr_add(WS, t + 2 * S, R1 + par, R2 + par, tb, 2)
            _wr_sub(WS, t + 4 * S, R2 + par, R1 + par, tb, 2)
            _wr_sub(WS, t + 6 * S, R1 + par, R3 + par, tb, 2)
        for i in range(4):
            e = te + 2 * i * S
            o = e + S
            WS[np.uint64(e + tb)] = 0
            WS[np.uint64(o + tb)] = 0
            v = vo + (4 * i * C + c) * tb
            _wr_sub(WS, v, e, e + 1, tb, 1)
            _wr_add(WS, v + C * tb, o, e + 1, tb, 1)
            _wr_sub(WS, v + 2 * C * tb, e + 1, o, tb, 1)
            _wr_sub(WS, v + 3 * C * tb, o, o + 1, tb, 1)


@njit(**_JIT)
def _wino_tiles_out(Y, yo, WS, mo, bo, M, q, r0, nr):
    """Output tiles A^T Mx A of tile rows [r0, r0 + nr) from Mx[xi] (O x tb) at mo: per output
    channel the column combinations, the row ones as even / odd output columns, two interleaved
    planes of output rows, then the rows cropped to OH x OW."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    Wh = TW + 1
    tb = nr * Wh
    L = O * tb
    ab = bo + 4 * tb          # A_j, B_j at ab + j tb, ab + (4 + j) tb; then even / odd rows
    ev = ab + 8 * tb
    for o in range(O):
        m = mo + o * tb
        for j in range(4):
            _wr_add3(WS, ab + j * tb, m + j * L, m + (4 + j) * L, m + (8 + j) * L, tb)
            _wr_sub3(WS, ab + (4 + j) * tb, m + (4 + j) * L, m + (8 + j) * L, m + (12 + j) * L, tb)
        for i in range(2):
            a = ab + 4 * i * tb
            _wr_add3(WS, ev + 2 * i * tb, a, a + tb, a + 2 * tb, tb)
            _wr_sub3(WS, ev + (2 * i + 1) * tb, a + tb, a + 2 * tb, a + 3 * tb, tb)
            _wr_ilv(WS, bo + 2 * i * tb, ev + 2 * i * tb, ev + (2 * i + 1) * tb, tb)
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            for i in range(min(2, OH - 2 * ty)):
                yr = yo + ((n * O + o) * OH + 2 * ty + i) * OW
                rw = bo + 2 * i * tb + (r - r0) * Wp
                for x in range(OW):
                    Y[np.uint64(yr + x)] = WS[np.uint64(rw + x)]


@njit(**_JIT)
def _wino_grad_tiles(DY, dyo, WS, mo, bo, M, q, r0, nr):
    """dM[xi] (O x tb) at mo = A g A^T of the 2x2 output-gradient tiles g of tile rows
    [r0, r0 + nr) (zeros past OH x OW, so the spare columns are zero): per output channel two
    planes of output rows, their row combinations A g as even / odd columns, then the column ones."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    Wh = TW + 1
    tb = nr * Wh
    L = O * tb
    g = bo + 4 * tb           # even / odd columns of the 4 rows of A g: g + (2 i + par) tb
    for o in range(O):
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            for i in range(2):
                rw = bo + i * 2 * tb + (r - r0) * Wp
                if 2 * ty + i >= OH:
                    for x in range(Wp):
                        WS[np.uint64(rw + x)] = 0
                    continue
                yr = dyo + ((n * O + o) * OH + 2 * ty + i) * OW
                for x in range(OW):
                    WS[np.uint64(rw + x)] = DY[np.uint64(yr + x)]
                for x in range(OW, Wp):
                    WS[np.uint64(rw + x)] = 0
        G0 = bo
        G1 = bo + 2 * tb
        for par in range(2):
            _wr_cp(WS, g + par * tb, G0 + par, tb, 2)
            _wr_add(WS, g + (2 + par) * tb, G0 + par, G1 + par, tb, 2)
            _wr_sub(WS, g + (4 + par) * tb, G0 + par, G1 + par, tb, 2)
            _wr_neg(WS, g + (6 + par) * tb, G1 + par, tb, 2)
        m = mo + o * tb
        for i in range(4):
            e = g + 2 * i * tb
            od = e + tb
            d = m + 4 * i * L
            _wr_cp(WS, d, e, tb, 1)
            _wr_add(WS, d + L, e, od, tb, 1)
            _wr_sub(WS, d + 2 * L, e, od, tb, 1)
            _wr_neg(WS, d + 3 * L, od, tb, 1)


@njit(**_JIT)
def _wino_scatter(DX, dxo, WS, vo, bo, M, q, r0, nr):
    """dX from dV[xi] (C x tb) at vo for tile rows [r0, r0 + nr) (spare columns zero): each tile's
    B dV B^T added into the 4x4 input window it came from. Per channel: the column combinations
    of the 4 rows as even / odd padded columns, summed over the overlapping tiles; the row
    combinations; 4 interleaved planes; then the rows go to dX, stored into the rows no earlier
    tile row touched (tile rows run in order), else added."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    Wh = TW + 1
    tb = nr * Wh
    S = tb + 2
    L = C * tb
    x0 = max(0, pw)
    x1 = min(Wp, Wd + pw)
    pq = bo + 8 * tb          # per row i: P at pq + 4 i S, Q (shifted by one) + S, E + 2 S, O + 3 S
    rr = pq + 16 * S          # row combinations: R1 even / odd, R2 even / odd
    for c in range(C):
        v = vo + c * tb
        for i in range(4):
            vi = v + 4 * i * L
            P = pq + 4 * i * S
            Q = P + S
            E = P + 2 * S
            Od = P + 3 * S
            _wr_mix3(WS, P, vi + L, vi + 2 * L, vi + 3 * L, tb)
            WS[np.uint64(Q)] = 0
            _wr_mix3(WS, Q + 1, vi + L, vi, vi + 2 * L, tb)
            _wr_add(WS, E, vi, Q, tb, 1)
            WS[np.uint64(Od)] = WS[np.uint64(P)]
            _wr_sub(WS, Od + 1, P + 1, vi + 3 * L, tb - 1, 1)
        for par in range(2):
            h0 = pq + (2 + par) * S
            _wr_mix3(WS, rr + par * S, h0 + 4 * S, h0 + 8 * S, h0 + 12 * S, tb)
            _wr_mix3(WS, rr + (2 + par) * S, h0 + 4 * S, h0, h0 + 8 * S, tb)
        _wr_ilv(WS, bo, pq + 2 * S, pq + 3 * S, tb)
        _wr_ilv(WS, bo + 2 * tb, rr, rr + S, tb)
        _wr_ilv(WS, bo + 4 * tb, rr + 2 * S, rr + 3 * S, tb)
        _wr_ilv(WS, bo + 6 * tb, pq + 14 * S, pq + 15 * S, tb)
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            xb = dxo + (n * C + c) * H * Wd - pw
            for i in range(4):
                h = 2 * ty + i - ph
                if h < 0 or h >= H:
                    continue
                xr = xb + h * Wd
                ti = bo + 2 * i * tb + (r - r0) * Wp
                if i == 3:
                    for x in range(x0, x1):
                        DX[np.uint64(xr + x)] = -WS[np.uint64(ti + x)]
                elif i < 2 and ty > 0:
                    for x in range(x0, x1):
                        DX[np.uint64(xr + x)] += WS[np.uint64(ti + x)]
                else:
                    for x in range(x0, x1):
                        DX[np.uint64(xr + x)] = WS[np.uint64(ti + x)]


@njit(**_JIT)
def _wino_layout(M, p):
    """Element offsets of the record's operands and of the workspace regions: U, then worker 0's
    V, M and rows (worker t's: + t * the record's region size)."""
    q = p + 4
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    uo = M[p + 3]
    vo = uo + 16 * O * C
    mo = vo + 16 * C * rb * (TW + 1)
    bo = mo + 16 * O * rb * (TW + 1)
    return M[p], M[p + 1], M[p + 2], q, uo, vo, mo, bo


@njit(**_JIT)
def _wino_rows(A, ao, B, bo_, Z, zo, WS, M, p, direction, t, T):
    """Worker t of T: the tile rows of samples [t N / T, (t + 1) N / T) in blocks, in the worker's
    regions; direction 0 (forward: A = X, Z = Y), 1 (input gradient: A = dY, Z = dX; a sample's
    tile rows run in order on one worker, as the scatter needs) or 2 (filter gradient: A = X,
    B = dY; dU summed over the worker's blocks in U's place (worker 0) or its own dU region)."""
    _, _, _, q, uo, vo, mo, bo = _wino_layout(M, p)
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    shift = t * M[q + 11]
    vo += shift
    mo += shift
    bo += shift
    du = uo if direction != 2 or t == 0 else uo + 16 * O * C + T * M[q + 11] + (t - 1) * 16 * O * C
    lo = (t * N) // T * TH
    hi = ((t + 1) * N) // T * TH
    for r0 in range(lo, hi, rb):
        nr = min(rb, hi - r0)
        tb = nr * (TW + 1)
        if direction != 1:
            _wino_tiles_in(A, ao, WS, vo, bo, M, q, r0, nr)
        if direction == 1:
            _wino_grad_tiles(A, ao, WS, mo, bo, M, q, r0, nr)
        elif direction == 2:
            _wino_grad_tiles(B, bo_, WS, mo, bo, M, q, r0, nr)
        for xi in range(16):
            u, v, m = du + xi * O * C, vo + xi * C * tb, mo + xi * O * tb
            if direction == 0:
                _gemm(0, 0, O, tb, C, 1.0, WS, u, C, WS, v, tb, 0.0, WS, m, tb)
            elif direction == 1:
                _gemm(1, 0, C, tb, O, 1.0, WS, u, C, WS, m, tb, 0.0, WS, v, tb)
            else:
                _gemm(0, 1, O, C, tb, 1.0, WS, m, tb, WS, v, tb, 0.0 if r0 == lo else 1.0, WS, u, C)
        if direction == 0:
            _wino_tiles_out(Z, zo, WS, mo, bo, M, q, r0, nr)
        elif direction == 1:
            _wino_scatter(Z, zo, WS, vo, bo, M, q, r0, nr)


@njit(**_PJIT)
def _wino_blocks(A, ao, B, bo_, Z, zo, WS, M, p, direction):
    """The block loop of the three kernels over the record's workers (``_wino_rows``), their GEMMs
    on at most ``__THREADS__`` BLAS threads; the filter gradient's partial dU summed into U after."""
    q = p + 4
    T = M[q + 10]
    nt = _blas_at_most(__THREADS__)
    if T == 1:
        _wino_rows(A, ao, B, bo_, Z, zo, WS, M, p, direction, np.int64(0), np.int64(1))
    else:
        for u in prange(T):
            t = np.int64(u)     # prange's index is unsigned: callees typed for int64 are reused
            _wino_rows(A, ao, B, bo_, Z, zo, WS, M, p, direction, t, T)
        if direction == 2:
            uo = M[p + 3]
            n = 16 * M[q + 4] * M[q + 1]
            parts = uo + n + T * M[q + 11]
            for t in range(1, T):
                for i in range(n):
                    WS[uo + i] += WS[parts + (t - 1) * n + i]
    _blas_restore(__THREADS__, nt)


@njit(**_JIT)
def wino_fwd(X, Wt, Y, WS, M, E, p):
    """Y (N, O, OH, OW) = Conv(X, W) for a 3x3 filter, stride 1, by Winograd F(2x2, 3x3)."""
    xo, wo, yo, q, uo, vo, mo, bo = _wino_layout(M, p)
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    if N * TH * TW == 0:
        return
    _wino_weights(Wt, wo, WS, uo, O, C)
    _wino_blocks(X, xo, X, xo, Y, yo, WS, M, p, 0)


@njit(**_JIT)
def wino_bpi(DY, Wt, DX, WS, M, E, p):
    """DX (N, C, H, W) = ConvBackpropInput(DY, W) for a 3x3 filter, stride 1: the adjoint of wino_fwd."""
    dyo, wo, dxo, q, uo, vo, mo, bo = _wino_layout(M, p)
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    if N * TH * TW == 0:
        for i in range(N * C * H * Wd):
            DX[dxo + i] = 0
        return
    _wino_weights(Wt, wo, WS, uo, O, C)
    _wino_blocks(DY, dyo, DY, dyo, DX, dxo, WS, M, p, 1)


@njit(**_JIT)
def wino_bpf(X, DY, DW, WS, M, E, p):
    """DW (O, C, 3, 3) = ConvBackpropFilter(X, DY) for a 3x3 filter, stride 1: dU[xi] summed over
    tile blocks (GEMM's beta), then G^T dU G."""
    xo, dyo, dwo, q, uo, vo, mo, bo = _wino_layout(M, p)
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    if N * TH * TW == 0:
        for i in range(O * C * 9):
            DW[dwo + i] = 0
        return
    _wino_blocks(X, xo, DY, dyo, X, xo, WS, M, p, 2)
    _wino_filter_back(DW, dwo, WS, uo, O, C)
'''


SOURCE = _SOURCE.replace("__THREADS__", str(BLAS_THREADS))


# -- lowering side ---------------------------------------------------------------------------------

def applies(attrs: dict, wshape, dtype, xshape=None) -> bool:
    """Winograd F(2x2, 3x3) serves this conv: 2-d, a static 3x3 filter of at least ``MIN_CHANNELS``
    input and output channels, stride 1, dilation 1, one group, float32 or float64 (any padding),
    and (given the input's static shape ``xshape``) an output at least ``MIN_WIDTH`` wide: narrow
    planes waste the spare tile column and the GEMMs get short. ``STATICGRAPH_WINOGRAD=0`` turns it off."""
    if os.environ.get("STATICGRAPH_WINOGRAD", "1") == "0":      # off: the generic conv kernels (A/B timing)
        return False
    wshape = tuple(wshape) if wshape is not None else ()
    if len(wshape) != 4 or any(d is None for d in wshape) or tuple(wshape[2:]) != (3, 3):
        return False
    if attrs["groups"] != 1 or any(s != 1 for s in attrs["stride"]) or any(d != 1 for d in attrs["dilation"]):
        return False
    if xshape is not None and (len(xshape) != 4 or xshape[3] is None or xshape[3] + 2 * attrs["padding"][1] - 2 < MIN_WIDTH):
        return False
    return np.dtype(dtype) in (np.float32, np.float64) and min(wshape[:2]) >= MIN_CHANNELS


def _rows_per_block(n: int, oh: int, ow: int) -> int:
    """Tile rows per block: ``BLOCK_TILES`` tiles at most, at least one row, at most all rows."""
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    return max(1, min(n * th, BLOCK_TILES // (tw + 1)))


def _geometry(attrs: dict, xshape, wshape, yshape) -> list:
    """N, C, H, W, O, OH, OW, pad_h, pad_w, tile rows per block (the kernels' ``_wino_dims``), the
    workers T (``threads.py``; at most one per sample) and each one's region: V, M and rows."""
    n, c, h, w = xshape
    oh, ow = yshape[2:]
    rb = _rows_per_block(n, oh, ow)
    tb = rb * ((ow + 1) // 2 + 1)
    workers = max(1, min(threads.kernel_threads(), n))
    return [n, c, h, w, wshape[0], oh, ow, *attrs["padding"], rb, workers,
            16 * (c + wshape[0]) * tb + ROW_BUFFERS * (tb + 2)]


def workspace_size(attrs: dict, xshape, wshape, yshape) -> int:
    """U (16 O C), each worker's block V (16 C tb), Mx (16 O tb) and row buffers (tb: a block's tile
    columns), then the other workers' partial dU (16 O C each)."""
    g = _geometry(attrs, xshape, wshape, yshape)
    workers, region = g[-2:]
    return 16 * g[4] * g[1] * workers + workers * region


def lower(b, op, kernel: str, inputs, shapes_of, attrs: dict) -> None:
    """One Winograd kernel call (``wino_fwd``, ``wino_bpi`` or ``wino_bpf``); ``shapes_of(env)``:
    the shapes of the convolution's input, weight and (forward) output."""
    out = op.outputs[0]
    ws = b.workspace(inputs[0].dtype, lambda env: (workspace_size(attrs, *shapes_of(env)),), "winograd tiles")

    def record(env):
        offs = [env.off(inputs[0]), env.off(inputs[1]), env.off(b.write_key(out)), env.off(ws)]
        return offs + _geometry(attrs, *shapes_of(env))
    b.call(kernel, list(inputs), out, record, WINO_SIZE, extra=[ws])


