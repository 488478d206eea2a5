"""Winograd F(4x4, 3x3) CPU kernels for 2-d 3x3 convolutions (stride 1, dilation 1, one group).

Each m x m output tile (m = ``TILE``) is computed from an a x a input tile (a = m + 2) in a
transformed space where the 3x3 correlation becomes a^2 elementwise products, summed over channels
by a^2 GEMMs (F(4x4, 3x3): 36 GEMMs for 16 outputs, 4x fewer multiplies than im2col's 9 per output;
F(2x2, 3x3): 16 for 4, 2.25x fewer)::

    Y tile = A^T [ (G g G^T) (.) (B^T d B) ] A

with the matrices of ``MATRICES`` (Lavin & Gray's points 0, +-1, +-2; cross-correlation, as Conv
computes). Tile (ty, tx) of sample n reads input rows m ty - pad_h .. + a - 1 and the same columns
(zeros outside the input). Tiles are processed in blocks of whole tile rows ((n, ty) pairs,
``BLOCK_TILES`` tiles at most) so a block's transformed tiles stay in cache across its GEMMs:

- ``wino_fwd``: U[xi] (O x C) = G g G^T; per block V[xi] (C x tb) = B^T d B, Mx[xi] = U[xi] @ V[xi],
  Y tile = A^T Mx A (cropped at the edges);
- ``wino_bpi`` (the exact adjoint): dM[xi] = A dY A^T (dY zero past the edge), dV[xi] = U[xi]^T @ dM[xi],
  dX += B dV B^T over the overlapping a x a windows (cropped to the input);
- ``wino_bpf``: dU[xi] = sum over blocks of dM[xi] @ V[xi]^T, then dW = G^T dU G. V[xi]^T is
  copied out first (``library._copy_transposed``): both operands of that GEMM hold the tiles along
  their rows, and OpenBLAS ran it 1.8x slower than the NN GEMM on the copy (64 x 144 blocks: 14.9
  against 8.4 + 2.8 us for the copy).
- ``wino_bwd`` (``fuse_backward``: a plan that asks for both gradients of one conv): the two above
  in one pass over the blocks. Each block's dM is transformed once, then per xi dU += dM @ V^T and
  dV = U^T @ dM (into V[xi]'s place, its copy used), then the scatter; every worker sums its dU
  beside U. conv_block (plan profile, same minutes): 6.8 + 7.3 ms -> 12.3 ms.

Layout: a block's tile columns are (tile row, tx) with tx in [0, TW] (tx = TW: one spare column per
tile row, zero in every output gradient, so dU and dX ignore it); padded rows are m (TW + 1) wide, so
column m tx + j of a padded row is element tx + j // m of its phase j % m. Each transform is two
passes of linear combinations over runs of a block's tile columns (one ``_lcK`` call per
transformed row or column: one store stream and K unit- or m-strided load streams, which LLVM
vectorises), generated from the matrices (``_pass``); their coefficients are read from the
workspace (written by ``_wino_consts`` in the array's dtype, so float32 stays float32); output
rows are interleaved from m phase runs (``_ilv``). The weight transforms are scalar, in float64.

Measured (kernels called directly, 2 shared cores, conv_block: 32x64x32x32, 64 -> 64, float32):
F(4x4, 3x3) against the F(2x2, 3x3) it replaced, interleaved runs, two workers: forward 8.7-13.1 vs
11.5-15.9 ms, input gradient 10.1-15.5 vs 13.0-18.0, filter gradient 9.0-15.0 vs 11.6-17.3 (~20%
faster; the machine's speed drifts between runs). One worker, forward: GEMMs 11.1 ms (61 GFLOP/s,
NumPy's own speed for these shapes), input transform 3.6, output transform 2.2 (F(2x2): GEMMs ~16,
transforms ~7.4). The input / output copies of short rows (32 wide) and the phase splits dominate
the transforms; blocks of 256 tiles beat 128 and 512 (V and Mx then ~2.3 MB each per worker).
Later, on an Intel Xeon (2 MB L2 per core), conv_block plan medians by tiles per block (9 per tile
row, 72 per sample): 108: 24.5-25.1 ms, 126: 25.8-26.2, 144: 22.7-23.0, 162: 23.8-24.3, 180: 24.3-24.5,
216: 23.3-23.9, 252: 25.9-26.4; rows starting on 64-byte lines (``_wino_ld``) were worth ~2% more
at 144 and nothing at 252. Hence ``BLOCK_TILES`` 192 with blocks of whole samples where one fits
(conv_block: 144 tiles, V ~1.3 MB per worker): 25.3-25.9 -> 23.2-23.5 ms a step.
The copied-out V^T (above) then took the filter gradient from ~1.3x the forward's time to ~1.07x.

Each call runs in phases (``lowerings.PHASES``, registered at the end of this module): the
coefficients and U (``wino_prep``; ``wino_consts`` for the filter gradient), then G shares of the
block loop that the step loop runs on its workers (share t < T: the blocks of samples
[t N / T, (t + 1) N / T), in worker t's region), then, for the filter gradient, the workers' partial
dU summed in worker order and dW = G^T dU G (``wino_bpf_sum``, ``wino_bwd_sum``). No kernel holds a
``prange`` (``threads.py``).

Record (``records.WINO``, read as ``WG``): 4 element offsets (the kernel's 2 inputs, output, workspace), then
N, C, H, W, O, OH, OW, pad_h, pad_w, the tile rows per block, the workers T (at most the
lowering's shares) and each one's workspace region; a share's record (``WINO_SHARE``) adds its
index and the step loop's group flag.
Workspace: the coefficients (``NK``), U (a^2 O C), each worker's region (V: a^2 C rows, Mx / dM:
a^2 O rows, rows of tb tiles at a stride of ``_wino_ld(tb)``; the transforms' planes and runs),
then the other workers' partial dU (``wino_bwd``: every worker's); U and each region start on a
64-byte line. ``wino_bwd``'s record (``WINO_BWD``) is ``wino_bpf``'s (X, dY, dX) followed by W's and dW's
offsets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List

import numpy as np

from . import threads
from .lowering import Call
from .records import WINO, WINO_BWD
from .lowerings import Phase, runs_in_phases

# B^T (a x a), G (a x 3), A^T (m x a) of F(m x m, 3 x 3)
MATRICES = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)),
}
TILE = 4                # m: the output tile side
MIN_CHANNELS = 16       # input and output channels at least this: the GEMMs pay for the transforms
MIN_WIDTH = 8           # output planes at least this wide (the demo's 4x4 planes keep im2col, and its compiles)
ALIGN = 16              # elements: V's and M's rows, the runs and the workers' regions start on 64-byte lines
BLOCK_TILES = 192       # tiles per block at most (whole tile rows, at least one; measured on conv_block, see the module doc)
# The kernels' GEMMs run on this many BLAS threads at most: many GEMMs per block synchronise OpenBLAS's
# threads hundreds of times a call, and on a busy machine each wait for a descheduled worker costs
# ms (measured on conv_block under load: 2 threads 0.5-2 s per kernel, 1 thread 26-38 ms).
BLAS_THREADS = 1

_BT, _G, _AT = MATRICES[TILE]
_M, _A = TILE, TILE + 2
_OV = _A - _M                                  # columns (rows) a tile shares with the next one
_COEFS = sorted({float(v) for v in np.concatenate([_BT.ravel(), _AT.ravel(), [1.0]]) if v != 0})
_KI = {v: i for i, v in enumerate(_COEFS)}
NK = -(-len(_COEFS) // 16) * 16                # the coefficients' slots at the workspace's start


def _runs() -> int:
    """Runs (of tb + 2) the transforms use beyond their planes (the scatter's: phases, shifts, rows)."""
    return 2 * _A * _M + _OV


def _pass(mat, dst, src, extra=None, ind=12) -> str:
    """Lines dst(i) = sum_j mat[i, j] src(j) (+ extra(i)) over runs of tb, one ``_lcK`` call per row i
    of ``mat``; coefficients from the workspace (at ko)."""
    lines = []
    for i in range(mat.shape[0]):
        terms = [(src(j), f"ko + {_KI[float(mat[i, j])]}") for j in range(mat.shape[1]) if mat[i, j] != 0]
        terms += extra(i) if extra else []
        args = ", ".join(f"{s}, {k}" for s, k in terms)
        lines.append(" " * ind + f"_lc{len(terms)}(WS, {dst(i)}, tb, {args})")
    return "\n".join(lines)


def _lc_source(k: int) -> str:
    args = ", ".join(f"a{j}, k{j}" for j in range(k))
    loads = "".join(f"    c{j} = A[np.uint64(k{j})]\n" for j in range(k))
    expr = " + ".join(f"c{j} * A[np.uint64(a{j} + i)]" for j in range(k))
    return f'''
@njit(**_HELPER)
def _lc{k}(A, d, n, {args}):
    """A[d + i] = sum of c_j A[a_j + i] (i < n; c_j = A[k_j])."""
{loads}    for i in range(n):
        A[np.uint64(d + i)] = {expr}
'''


def _ilv_source() -> str:
    ilv = "".join(f"        Z[np.uint64(d + {_M} * i + {p})] = A[np.uint64(s + {p} * S + i)]\n" for p in range(_M))
    dil = "".join(f"        Z[np.uint64(d + {p} * S + i)] = A[np.uint64(s + {_M} * i + {p})]\n" for p in range(_M))
    return f'''
@njit(**_HELPER)
def _ilv(Z, d, A, s, S, n):
    """Z[d + m i + p] = A[s + p S + i] (i < n, p < m): m phase runs interleaved into a plane. Called
    with Z = A (the workspace): as two arguments LLVM vectorises the loop (3x faster, measured)."""
    for i in range(n):
{ilv}

@njit(**_HELPER)
def _dil(Z, d, A, s, S, n):
    """Z[d + p S + i] = A[s + m i + p] (i < n, p < m): a plane split into m phase runs (Z = A, as in ``_ilv``)."""
    for i in range(n):
{dil}'''


def _lin(coefs, names) -> str:
    """A scalar linear combination (float64 literals) of ``names``."""
    return " + ".join(f"({c!r}) * {v}" for c, v in zip(coefs, names) if c != 0) or "0.0"


def _weights_source() -> str:
    """U[xi] = G g G^T and dW = G^T dU G per (o, c): straight-line scalar code from G."""
    a, G = _A, _G
    fwd = "".join(f"            g{j}{k} = Wt[g + {3 * j + k}]\n" for j in range(3) for k in range(3))
    fwd += "".join(f"            t{i}{k} = {_lin(G[i], [f'g{j}{k}' for j in range(3)])}\n" for i in range(a) for k in range(3))
    fwd += "".join(f"            WS[u + {i * a + l} * S] = {_lin(G[l], [f't{i}{k}' for k in range(3)])}\n"
                   for i in range(a) for l in range(a))
    back = "".join(f"            r{j}{l} = {_lin(G[:, j], [f'WS[u + {i * a + l} * S]' for i in range(a)])}\n"
                   for j in range(3) for l in range(a))
    back += "".join(f"            DW[g + {3 * j + k}] = {_lin(G[:, k], [f'r{j}{l}' for l in range(a)])}\n"
                    for j in range(3) for k in range(3))
    return f'''
@njit(**_HELPER)
def _wino_weights(Wt, wo, WS, uo, O, C):
    """U[xi] (O x C) at uo = G g G^T of each 3x3 filter g = W[o, c]."""
    S = O * C
    for o in range(O):
        for c in range(C):
            g = wo + (o * C + c) * 9
            u = uo + o * C + c
{fwd}

@njit(**_HELPER)
def _wino_filter_back(DW, dwo, WS, uo, O, C):
    """dW[o, c] = G^T dU G of the matrices dU[xi] (O x C) at uo."""
    S = O * C
    for o in range(O):
        for c in range(C):
            u = uo + o * C + c
            g = dwo + (o * C + c) * 9
{back}

@njit(**_HELPER)
def _wino_consts(WS, ko):
    """The transforms' coefficients at ko, in the workspace's dtype."""
''' + "".join(f"    WS[ko + {i}] = {v!r}\n" for i, v in enumerate(_COEFS))


_TEMPLATE = '''

# ---- Winograd F(__M__x__M__, 3x3) (nn_winograd.py) ----

@njit(**_HELPER)
def _wino_ld(n):
    """n rounded up to whole 64-byte lines of float32 (``ALIGN`` elements): the row stride of V
    and M, the runs' spacing and the regions' starts, so that every row starts on a line."""
    return (n + __ALIGN__ - 1) // __ALIGN__ * __ALIGN__


@njit(**_HELPER)
def _wino_dims(M, q):
    """N, C, H, W, O, OH, OW, pad_h, pad_w, tile rows per block, TH, TW, padded row width of the
    record at q."""
    OH = M[q + WG.OH]
    OW = M[q + WG.OW]
    TH = (OH + __M__ - 1) // __M__
    TW = (OW + __M__ - 1) // __M__
    return (M[q + WG.N], M[q + WG.C], M[q + WG.H], M[q + WG.W], M[q + WG.O], OH, OW, M[q + WG.pad_h],
            M[q + WG.pad_w], M[q + WG.rows], TH, TW, __M__ * (TW + 1))


@njit(**_HELPER)
def _wino_tiles_in(X, xo, WS, vo, bo, ko, M, q, r0, nr):
    """V[xi] (C x tb) at vo = B^T d B of the input tiles of tile rows [r0, r0 + nr). Per channel:
    a planes of zero-padded input rows (row i of each tile row's tiles) at bo, their row
    combinations B^T d as m phase runs each (m-strided), then the column ones (phase j % m,
    shifted by j // m tiles)."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    tb = nr * (TW + 1)
    ld = _wino_ld(tb)
    S = _wino_ld(tb + 2)
    pl = nr * Wp
    R = bo + _wino_ld(__A__ * pl)       # row combination i, phase p at R + (i m + p) S; plane i's phases at D
    D = R + __A__ * __M__ * S
    L = C * ld
    for c in range(C):
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            xb = xo + (n * C + c) * H * Wd
            for i in range(__A__):
                h = __M__ * ty - ph + i
                rw = bo + i * pl + (r - r0) * Wp
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
        for i in range(__A__):
            _dil(WS, D + i * __M__ * S, WS, bo + i * pl, S, tb)
        for p in range(__M__):
__IN_ROWS__
        for i in range(__A__ * __M__):
            WS[np.uint64(R + i * S + tb)] = 0
        for u in range(__A__):
            v = vo + c * ld + u * __A__ * L
__IN_COLS__


@njit(**_HELPER)
def _wino_tiles_out(Y, yo, WS, mo, bo, ko, M, q, r0, nr):
    """Output tiles A^T Mx A of tile rows [r0, r0 + nr) from Mx[xi] (O x tb) at mo: per output
    channel the row combinations (Z), the column ones as m phase runs per output row,
    interleaved into planes of output rows, then the rows cropped to OH x OW."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    tb = nr * (TW + 1)
    ld = _wino_ld(tb)
    S = _wino_ld(tb + 2)
    pl = nr * Wp
    R = bo + _wino_ld(__M__ * pl)       # Z[i][j] at R + (i a + j) S; phase p of output row i at R + (m a + i m + p) S
    L = O * ld
    for o in range(O):
        mx = mo + o * ld
        for u in range(__A__):
__OUT_ROWS__
        for u in range(__M__):
__OUT_COLS__
            _ilv(WS, bo + u * pl, WS, R + (__M__ * __A__ + u * __M__) * S, S, tb)
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            for i in range(min(__M__, OH - __M__ * ty)):
                yr = yo + ((n * O + o) * OH + __M__ * ty + i) * OW
                rw = bo + i * pl + (r - r0) * Wp
                for x in range(OW):
                    Y[np.uint64(yr + x)] = WS[np.uint64(rw + x)]


@njit(**_HELPER)
def _wino_grad_tiles(DY, dyo, WS, mo, bo, ko, M, q, r0, nr):
    """dM[xi] (O x tb) at mo = A g A^T of the m x m output-gradient tiles g of tile rows
    [r0, r0 + nr) (zeros past OH x OW, so the spare columns are zero): per output channel m
    planes of output rows, their row combinations A g as m phase runs, then the column ones."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    tb = nr * (TW + 1)
    ld = _wino_ld(tb)
    S = _wino_ld(tb + 2)
    pl = nr * Wp
    R = bo + _wino_ld(__M__ * pl)       # row combination i, phase p at R + (i m + p) S; plane i's phases at D
    D = R + __A__ * __M__ * S
    L = O * ld
    for o in range(O):
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            for i in range(__M__):
                rw = bo + i * pl + (r - r0) * Wp
                if __M__ * ty + i >= OH:
                    for x in range(Wp):
                        WS[np.uint64(rw + x)] = 0
                    continue
                yr = dyo + ((n * O + o) * OH + __M__ * ty + i) * OW
                for x in range(OW):
                    WS[np.uint64(rw + x)] = DY[np.uint64(yr + x)]
                for x in range(OW, Wp):
                    WS[np.uint64(rw + x)] = 0
        for i in range(__M__):
            _dil(WS, D + i * __M__ * S, WS, bo + i * pl, S, tb)
        for p in range(__M__):
__G_ROWS__
        mx = mo + o * ld
        for u in range(__A__):
__G_COLS__


@njit(**_HELPER)
def _wino_scatter(DX, dxo, WS, vo, bo, ko, M, q, r0, nr):
    """dX from dV[xi] (C x tb) at vo for tile rows [r0, r0 + nr) (spare columns zero): each tile's
    B dV B^T added into the a x a window it came from. Per channel and transformed row: the column
    combinations as m phase runs, the last __OV__ columns shifted by one tile and added to the first
    phases (overlapping tiles); the row combinations; a interleaved planes; then the rows go to dX,
    stored into the rows no earlier tile row touched (a sample's tile rows run in order), else added."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    tb = nr * (TW + 1)
    ld = _wino_ld(tb)
    S = _wino_ld(tb + 2)
    pl = nr * Wp
    R = bo + _wino_ld(__A__ * pl)       # phase p of row i at R + (i m + p) S; shifted runs at H0; rows at Q
    H0 = R + __A__ * __M__ * S
    Q = H0 + __OV__ * S
    L = C * ld
    x1 = min(Wp, Wd + pw)
    for c in range(C):
        for u in range(__A__):
            vu = vo + c * ld + u * __A__ * L
__S_SHIFT__
            for t in range(__OV__):
                WS[np.uint64(H0 + t * S)] = 0
__S_COLS__
        for p in range(__M__):
__S_ROWS__
        for i in range(__A__):
            _ilv(WS, bo + i * pl, WS, Q + i * __M__ * S, S, tb)
        for r in range(r0, r0 + nr):
            n = r // TH
            ty = r % TH
            xb = dxo + (n * C + c) * H * Wd - pw
            for i in range(__A__):
                h = __M__ * ty + i - ph
                if h < 0 or h >= H:
                    continue
                xr = xb + h * Wd
                ti = bo + i * pl + (r - r0) * Wp
                if i < __OV__ and ty > 0:
                    for x in range(pw, x1):
                        DX[np.uint64(xr + x)] += WS[np.uint64(ti + x)]
                else:
                    for x in range(pw, x1):
                        DX[np.uint64(xr + x)] = WS[np.uint64(ti + x)]


@njit(**_HELPER)
def _wino_layout(M, p):
    """Element offsets of the record's operands and of the workspace regions: the coefficients,
    U, then worker 0's V, M, (the filter gradient's V[xi]^T,) planes and runs (worker t's: + t *
    the record's region size)."""
    q = p       # the record's start, which its geometry's readers take
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    ko = M[p + WG.ws_off]
    uo = ko + __NK__
    vo = uo + _wino_ld(__AA__ * O * C)
    mo = vo + __AA__ * C * _wino_ld(rb * (TW + 1))
    bo = mo + __AA__ * O * _wino_ld(rb * (TW + 1)) + _wino_ld(rb * (TW + 1) * C)     # after M: V[xi]^T (bpf)
    return M[p + WG.a_off], M[p + WG.b_off], M[p + WG.z_off], q, ko, uo, vo, mo, bo


@njit(**_HELPER)
def _wino_parts(M, q, uo):
    """Where the workers' partial dU start: after U and the T workers' regions."""
    return uo + _wino_ld(__AA__ * M[q + WG.O] * M[q + WG.C]) + M[q + WG.T] * M[q + WG.region]


@njit(**_HELPER)
def _wino_rows(A, ao, B, bo_, Z, zo, WS, M, p, direction, t, T):
    """Worker t of T: the tile rows of samples [t N / T, (t + 1) N / T) in blocks, in the worker's
    regions; direction 0 (forward: A = X, Z = Y), 1 (input gradient: A = dY, Z = dX; a sample's
    tile rows run in order on one worker, as the scatter needs), 2 (filter gradient: A = X,
    B = dY; dU summed over the worker's blocks in U's place (worker 0) or its own dU region) or 3
    (both gradients, ``wino_bwd``: A = X, B = dY, Z = dX; U kept, every worker's dU in its own
    region; each block's dM serves both GEMMs)."""
    _, _, _, q, ko, uo, vo, mo, bo = _wino_layout(M, p)
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, q)
    shift = t * M[q + WG.region]
    vo += shift
    mo += shift
    bo += shift
    parts = _wino_parts(M, q, uo)
    du = uo
    if direction == 2 and t > 0:
        du = parts + (t - 1) * __AA__ * O * C
    elif direction == 3:
        du = parts + t * __AA__ * O * C
    lo = (t * N) // T * TH
    hi = ((t + 1) * N) // T * TH
    vt = mo + __AA__ * O * _wino_ld(rb * (TW + 1))
    for r0 in range(lo, hi, rb):
        nr = min(rb, hi - r0)
        tb = nr * (TW + 1)
        ld = _wino_ld(tb)
        if direction != 1:
            _wino_tiles_in(A, ao, WS, vo, bo, ko, M, q, r0, nr)
        if direction == 1:
            _wino_grad_tiles(A, ao, WS, mo, bo, ko, M, q, r0, nr)
        elif direction >= 2:
            _wino_grad_tiles(B, bo_, WS, mo, bo, ko, M, q, r0, nr)
        for xi in range(__AA__):
            u, v, m = du + xi * O * C, vo + xi * C * ld, mo + xi * O * ld
            if direction == 0:
                _gemm(NT, NT, O, tb, C, 1.0, WS, u, C, WS, v, ld, 0.0, WS, m, ld)
            elif direction == 1:
                _gemm(TR, NT, C, tb, O, 1.0, WS, u, C, WS, m, ld, 0.0, WS, v, ld)
            else:       # dU += dM @ V^T with V^T copied out: OpenBLAS runs the NN GEMM ~1.8x faster than NT
                _copy_transposed(WS, v, C, tb, ld, WS, vt)
                _gemm(NT, NT, O, C, tb, 1.0, WS, m, ld, WS, vt, C, 0.0 if r0 == lo else 1.0, WS, u, C)
                if direction == 3:      # then dV = U^T @ dM in V[xi]'s place (its copy is used)
                    _gemm(TR, NT, C, tb, O, 1.0, WS, uo + xi * O * C, C, WS, m, ld, 0.0, WS, v, ld)
        if direction == 0:
            _wino_tiles_out(Z, zo, WS, mo, bo, ko, M, q, r0, nr)
        elif direction != 2:
            _wino_scatter(Z, zo, WS, vo, bo, ko, M, q, r0, nr)


@njit(**_HELPER)
def _wino_empty(M, p):
    """The record's conv has no output tile: its kernels only zero their outputs."""
    N, C, H, Wd, O, OH, OW, ph, pw, rb, TH, TW, Wp = _wino_dims(M, p)
    return N * TH * TW == 0


@njit(**_HELPER)
def _wino_zero(Z, zo, n):
    for i in range(n):
        Z[zo + i] = 0


@njit(**_HELPER)
def _wino_share(A, ao, B, bo_, Z, zo, WS, M, p, direction, t):
    """Share t of a kernel's block loop (``_wino_rows``): worker t's samples, nothing at or past the
    record's T; its GEMMs on at most __THREADS__ BLAS threads (one while the shares run at once)."""
    T = M[p + WG.T]
    if t < T and not _wino_empty(M, p):
        nt = _blas_at_most(np.int64(__THREADS__))
        _wino_rows(A, ao, B, bo_, Z, zo, WS, M, p, direction, t, T)
        _blas_restore(np.int64(__THREADS__), nt)


@njit(**_HELPER)
def _wino_sum_parts(WS, acc, first, n, T):
    """WS[acc:acc + n] += the T - 1 partial sums of n elements at first, in worker order."""
    for t in range(T - 1):
        for i in range(n):
            WS[acc + i] += WS[first + t * n + i]


@njit(**_HELPER)
def _wino_prep(Wt, wo, WS, M, p):
    """The coefficients and U = G g G^T (W at wo) into the workspace."""
    xo, _, yo, q, ko, uo, vo, mo, bo = _wino_layout(M, p)
    _wino_consts(WS, ko)
    _wino_weights(Wt, wo, WS, uo, M[q + WG.O], M[q + WG.C])


@njit(**_JIT)
def wino_prep(Wt, WS, M, E, p):
    """The first phase of wino_fwd and wino_bpi: the coefficients and U."""
    _wino_prep(Wt, M[p + WG.b_off], WS, M, p)


@njit(**_JIT)
def wino_bwd_prep(Wt, WS, M, E, p):
    """The first phase of wino_bwd: the coefficients and U (W's offset after the geometry)."""
    _wino_prep(Wt, M[p + WG_BWD.w_off], WS, M, p)


@njit(**_JIT)
def wino_consts(WS, M, E, p):
    """The first phase of wino_bpf: the coefficients."""
    _wino_consts(WS, M[p + WG.ws_off])


@njit(**_JIT)
def wino_fwd(X, Y, WS, M, E, p):
    """Share t (after the record) of Y (N, O, OH, OW) = Conv(X, W) for a 3x3 filter, stride 1, by
    Winograd F(__M__x__M__, 3x3). Phases: ``wino_prep``, these shares."""
    _wino_share(X, M[p + WG.a_off], X, M[p + WG.a_off], Y, M[p + WG.z_off], WS, M, p, 0, M[p + WG_SHARE.share])


@njit(**_JIT)
def wino_bpi(DY, DX, WS, M, E, p):
    """Share t of DX (N, C, H, W) = ConvBackpropInput(DY, W) for a 3x3 filter, stride 1: the adjoint
    of wino_fwd. Phases: ``wino_prep``, these shares."""
    t = M[p + WG_SHARE.share]
    if _wino_empty(M, p):
        if t == 0:
            _wino_zero(DX, M[p + WG.z_off], M[p + WG.N] * M[p + WG.C] * M[p + WG.H] * M[p + WG.W])
        return
    _wino_share(DY, M[p + WG.a_off], DY, M[p + WG.a_off], DX, M[p + WG.z_off], WS, M, p, 1, t)


@njit(**_JIT)
def wino_bpf(X, DY, WS, M, E, p):
    """Share t of DW (O, C, 3, 3) = ConvBackpropFilter(X, dY) for a 3x3 filter, stride 1: worker t's
    partial dU[xi], summed over its tile blocks (GEMM's beta). Phases: ``wino_consts``, these shares,
    ``wino_bpf_sum``."""
    _wino_share(X, M[p + WG.a_off], DY, M[p + WG.b_off], X, M[p + WG.a_off], WS, M, p, 2, M[p + WG_SHARE.share])


@njit(**_JIT)
def wino_bpf_sum(DW, WS, M, E, p):
    """The last phase of wino_bpf: the workers' partial dU summed into U's place in worker order,
    then dW = G^T dU G."""
    xo, dyo, dwo, q, ko, uo, vo, mo, bo = _wino_layout(M, p)
    O, C, T = M[q + WG.O], M[q + WG.C], M[q + WG.T]
    if _wino_empty(M, p):
        _wino_zero(DW, dwo, O * C * 9)
        return
    _wino_sum_parts(WS, uo, _wino_parts(M, q, uo), __AA__ * O * C, T)
    _wino_filter_back(DW, dwo, WS, uo, O, C)


@njit(**_JIT)
def wino_bwd(X, DY, DX, WS, M, E, p):
    """Share t of DX and DW of one conv at once (``fuse_backward``): wino_bpi's and wino_bpf's blocks
    in one pass, each block's output-gradient transform dM computed once for both GEMMs; every
    worker's partial dU in its own region. Record: wino_bpf's (X, dY, dX, workspace offsets and the
    geometry), then W's and dW's offsets, then the share. Phases: ``wino_bwd_prep``, these shares,
    ``wino_bwd_sum``."""
    t = M[p + WG_BWD_SHARE.share]
    if _wino_empty(M, p):
        if t == 0:
            _wino_zero(DX, M[p + WG.z_off], M[p + WG.N] * M[p + WG.C] * M[p + WG.H] * M[p + WG.W])
        return
    _wino_share(X, M[p + WG.a_off], DY, M[p + WG.b_off], DX, M[p + WG.z_off], WS, M, p, 3, t)


@njit(**_JIT)
def wino_bwd_sum(DW, WS, M, E, p):
    """The last phase of wino_bwd: the workers' partial dU summed into worker 0's in worker order,
    then dW = G^T dU G."""
    xo, dyo, dxo, q, ko, uo, vo, mo, bo = _wino_layout(M, p)
    O, C, T = M[q + WG.O], M[q + WG.C], M[q + WG.T]
    parts = _wino_parts(M, q, uo)
    if _wino_empty(M, p):
        _wino_zero(DW, M[p + WG_BWD.dw_off], O * C * 9)
        return
    _wino_sum_parts(WS, parts, parts + __AA__ * O * C, __AA__ * O * C, T)
    _wino_filter_back(DW, M[p + WG_BWD.dw_off], WS, parts, O, C)
'''


# the records' field offsets, bound in the generated module (``library.SOURCE``)
_RECORDS = '''
from compiler.backends.cpu.records import WINO, WINO_BWD, WINO_BWD_SHARE, WINO_SHARE
WG = WINO.at                        # the Winograd record's fields (records.WINO)
WG_SHARE = WINO_SHARE.at            # ... and a share's (its index)
WG_BWD = WINO_BWD.at                # wino_bwd's: then W's and dW's offsets
WG_BWD_SHARE = WINO_BWD_SHARE.at    # ... and its share's
'''


def _source() -> str:
    """The kernels' source: the template with the transforms' passes generated from ``MATRICES``."""
    m, a, BT, AT = _M, _A, _BT, _AT
    passes = {
        # forward input: rows (m-strided from the planes), then columns (phase j % m, shifted j // m)
        "__IN_ROWS__": _pass(BT, lambda i: f"R + ({i} * {m} + p) * S", lambda j: f"D + ({j} * {m} + p) * S"),
        "__IN_COLS__": _pass(BT, lambda j: f"v + {j} * L", lambda jj: f"R + (u * {m} + {jj % m}) * S + {jj // m}"),
        # forward output: Z[i][u] = sum AT[i, i'] Mx[i' a + u]; phase p of row u = sum AT[p, j] Z[u][j]
        "__OUT_ROWS__": _pass(AT, lambda i: f"R + ({i} * {a} + u) * S", lambda i2: f"mx + ({i2} * {a} + u) * L"),
        "__OUT_COLS__": _pass(AT, lambda p: f"R + ({m * a} + u * {m} + {p}) * S", lambda j: f"R + (u * {a} + {j}) * S"),
        # output gradient: rows A g (m-strided), then columns
        "__G_ROWS__": _pass(AT.T, lambda i: f"R + ({i} * {m} + p) * S", lambda i: f"D + ({i} * {m} + p) * S"),
        "__G_COLS__": _pass(AT.T, lambda j: f"mx + (u * {a} + {j}) * L", lambda p: f"R + (u * {m} + {p}) * S"),
        # input gradient: columns (the last ones shifted by a tile), then rows
        "__S_SHIFT__": _pass(BT.T[m:], lambda t: f"H0 + {t} * S + 1", lambda j: f"vu + {j} * L"),
        "__S_COLS__": _pass(BT.T[:m], lambda p: f"R + (u * {m} + {p}) * S", lambda j: f"vu + {j} * L",
                            extra=lambda p: [(f"H0 + {p} * S", f"ko + {_KI[1.0]}")] if p < _OV else []),
        "__S_ROWS__": _pass(BT.T, lambda i: f"Q + ({i} * {m} + p) * S", lambda i2: f"R + ({i2} * {m} + p) * S"),
    }
    src = _TEMPLATE
    for key, text in passes.items():
        src = src.replace(key, text)
    for key, value in (("__M__", m), ("__A__", a), ("__AA__", a * a), ("__OV__", _OV), ("__NK__", NK),
                       ("__THREADS__", BLAS_THREADS), ("__ALIGN__", ALIGN)):
        src = src.replace(key, str(value))
    widths = sorted({int(line.split("_lc")[1].split("(")[0]) for line in src.splitlines() if "_lc" in line and "(WS" in line})
    return _RECORDS + "".join(_lc_source(k) for k in widths) + _ilv_source() + _weights_source() + src


SOURCE = _source()


# -- lowering side ---------------------------------------------------------------------------------

def applies(attrs: dict, wshape, dtype, xshape=None) -> bool:
    """Winograd serves this conv: 2-d, a static 3x3 filter of at least ``MIN_CHANNELS``
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


def _tiles(size: int) -> int:
    return -(-size // TILE)


def _ld(n: int) -> int:
    """The kernels' ``_wino_ld``."""
    return -(-n // ALIGN) * ALIGN


def _rows_per_block(n: int, oh: int, ow: int) -> int:
    """Tile rows per block: ``BLOCK_TILES`` tiles at most, at least one row, at most all rows;
    whole samples where one fits (equal blocks, none straddling two samples)."""
    rows = max(1, min(n * _tiles(oh), BLOCK_TILES // (_tiles(ow) + 1)))
    return rows // _tiles(oh) * _tiles(oh) if rows >= _tiles(oh) else rows


def _geometry(attrs: dict, xshape, wshape, yshape, shares: int) -> dict:
    """``records.WINO``'s geometry fields: N, C, H, W, O, OH, OW, pad_h, pad_w, tile rows per block
    (the kernels' ``_wino_dims``), the workers T (``threads.py``; at most one per sample, and at
    most the lowering's ``shares``: share t runs worker t) and each one's region: V, M, planes and
    runs."""
    n, c, h, w = xshape
    oh, ow = yshape[2:]
    rb = _rows_per_block(n, oh, ow)
    tb = rb * (_tiles(ow) + 1)
    workers = max(1, min(threads.kernel_threads(), shares, n))
    region = _ld(_A * _A * (c + wshape[0]) * _ld(tb) + _ld(tb * c) + _ld(_A * TILE * tb) + _runs() * _ld(tb + 2))
    pad_h, pad_w = attrs["padding"]
    return dict(N=n, C=c, H=h, W=w, O=wshape[0], OH=oh, OW=ow, pad_h=pad_h, pad_w=pad_w, rows=rb, T=workers,
                region=region)


def workspace_size(attrs: dict, xshape, wshape, yshape, shares: int, both: bool = False) -> int:
    """The coefficients, U (a^2 O C), each worker's region, then the other workers' partial dU
    (``both``, ``wino_bwd``: every worker's)."""
    g = _geometry(attrs, xshape, wshape, yshape, shares)
    u = _A * _A * g["O"] * g["C"]
    return NK + _ld(u) + g["T"] * g["region"] + (g["T"] - 1 + both) * u


def lower(b, op, kernel: str, inputs, shapes_of, attrs: dict) -> None:
    """One Winograd kernel call (``wino_fwd``, ``wino_bpi`` or ``wino_bpf``); ``shapes_of(env)``:
    the shapes of the convolution's input, weight and (forward) output."""
    out = op.outputs[0]
    g = threads.shares()
    ws = b.workspace(inputs[0].dtype, lambda env: (workspace_size(attrs, *shapes_of(env), g),), "winograd tiles")
    record = WinoRecord(attrs, shapes_of, g, (*inputs, b.write_key(out), ws))
    b.call(kernel, list(inputs), out, record, WINO.size, extra=[ws])


@dataclass(frozen=True, eq=False)
class WinoRecord:
    """The record function of a Winograd call: the offsets of ``keys`` (two inputs, the output, the
    workspace), the geometry (``shapes_of(env)``: the convolution's input, weight and output
    shapes), then the offsets of ``tail`` (``wino_bwd``: W and dW)."""
    attrs: dict
    shapes_of: Callable
    shares: int         # the lowering's threads.shares(): its calls' share count
    keys: tuple
    tail: tuple = ()

    def __call__(self, env) -> List[int]:
        offsets = dict(zip(("a_off", "b_off", "z_off", "ws_off", "w_off", "dw_off"),
                           [env.off(k) for k in self.keys + self.tail]))
        geometry = _geometry(self.attrs, *self.shapes_of(env), self.shares)
        return (WINO_BWD if self.tail else WINO).pack({**offsets, **geometry})


def _after(prog, key, start: int, end: int) -> bool:
    """A call in prog.calls[start:end] writes ``key`` (one of its non-input arguments)."""
    root = prog.root(key)
    return any(root in {prog.root(k) for k in c.args[len(c.inputs):]} for c in prog.calls[start:end])


def fuse_backward(lowering) -> None:
    """A ``wino_bpi`` and a ``wino_bpf`` of one conv (the same output gradient dY and input X,
    equal attributes and weight shapes) become one ``wino_bwd`` call at the earlier one's place,
    where no call between them writes the later one's inputs: both kernels transform dY's tiles,
    block by block; fused, each block's transform serves both GEMMs while it is in cache."""
    prog = lowering.prog
    bpfs = {}
    for call in prog.calls:
        if call.kernel == "wino_bpf":
            bpfs.setdefault(prog.root(call.args[1]), []).append(call)
    for bpi in [c for c in prog.calls if c.kernel == "wino_bpi"]:
        dy_, w_, x_like = bpi.op.inputs
        for bpf in bpfs.get(prog.root(bpi.args[0]), []):
            x, _, w_like = bpf.op.inputs
            if bpf not in prog.calls or x is not x_like or bpf.op.attrs != bpi.op.attrs or w_.shape != w_like.shape:
                continue
            i, j = sorted((prog.calls.index(bpi), prog.calls.index(bpf)))
            later = prog.calls[j]
            if any(_after(prog, k, i + 1, j) for k in later.inputs):
                continue
            dy, w, dx = bpi.args[:3]
            dw = bpf.args[2]
            shapes_of = lambda env, x=x, w=w_, dy=dy_: (env.shape(x), env.shape(w), env.shape(dy))   # noqa: E731
            attrs = bpi.op.attrs
            g = threads.shares()
            ws = lowering.workspace(x.dtype, lambda env, s=shapes_of, a=attrs, g=g: (workspace_size(a, *s(env), g, True),),
                                    "winograd tiles (both gradients)")
            xk = bpf.args[0]
            record = WinoRecord(attrs, shapes_of, g, (xk, dy, dx, ws), (w, dw))
            fused = Call("wino_bwd", (xk, dy, w, dx, dw, ws), record, WINO_BWD.size, bpi.op, n_in=3)
            prog.calls[i] = fused
            del prog.calls[j]
            break


def _workers(rec: list) -> int:
    """The workers T of a Winograd record (``_geometry``)."""
    return rec[WINO.at.T]


# The kernels run in phases (``lowerings.PHASES``): the coefficients and U, then the samples' shares
# on the kernel workers (their partial dU in their regions), then the filter gradient's sum of the
# partial dU and dW = G^T dU G. args: wino_fwd / wino_bpi (X or dY, W, Y or dX, WS); wino_bpf
# (X, dY, dW, WS); wino_bwd (X, dY, W, dX, dW, WS)
runs_in_phases("wino_fwd", _workers, Phase("wino_prep", (1, 3), 1, False), Phase("wino_fwd", (0, 2, 3), 1, True))
runs_in_phases("wino_bpi", _workers, Phase("wino_prep", (1, 3), 1, False), Phase("wino_bpi", (0, 2, 3), 1, True))
runs_in_phases("wino_bpf", _workers, Phase("wino_consts", (3,), 0, False), Phase("wino_bpf", (0, 1, 3), 2, True),
               Phase("wino_bpf_sum", (2, 3), 0, False))
runs_in_phases("wino_bwd", _workers, Phase("wino_bwd_prep", (2, 5), 1, False),
               Phase("wino_bwd", (0, 1, 3, 5), 2, True), Phase("wino_bwd_sum", (4, 5), 0, False))
