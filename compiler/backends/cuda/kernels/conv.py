"""The conv family's CUDA kernels (``conv_fwd``, ``conv_bpi``, ``conv_bpf``): implicit GEMMs over
the cpu lowering's record ``records.CONV`` (``cpu/nn_conv.py`` describes it).

A d-d conv (d <= 3) is the 3-d one with leading spatial dims of size 1, as on the cpu. Each kernel
is one GEMM per group, whose operands are never built in memory: a block of ``TILE`` x ``TILE``
threads computes one tile of the product, loading ``TILE``-deep slices of both operands into
shared memory element by element from the conv's arrays (the receptive-field element of an
output position and kernel tap, or 0 where it falls in the padding):

- ``conv_fwd``: Y[n, o, pos] = sum over r = (c, tap) of W[o, r] * X(n, c, pos + tap), plus the
  fused per-channel bias (``fuse_bias``: the record's ``has_bias``, in the weight's array);
- ``conv_bpi``: dX[n, c, x] = sum over (o, tap) of W[o, c, tap] * dY(n, o, y) over the outputs y
  whose window reads x at that tap (0 where x is no tap of any output: strides);
- ``conv_bpf``: dW[o, r] = sum over (n, pos) of dY[n, o, pos] * X(n, c, pos + tap). The reduction
  over the batch is split into ``slices`` contiguous ranges (enough blocks to fill the device),
  each block writing its partial tile to the workspace, then summed slice by slice in a fixed
  order (``_bpf_sum``); the fused bias gradient (``fuse_bias_grad``) is one block per channel, a
  shared-memory tree over the batch and positions (``_bias_grad``).

Every output element is summed by one thread in a fixed order: the same result every run (no
atomics). The record's cpu-only fields (chunk size ``nb``, implicit ``block``, ``minor``, workers
``T``) are not read, nor ``kept`` (``keep_columns``: these kernels build no columns, so kept
columns are neither written nor needed; the records stay valid with it). Trailing ints after the
record (a cpu share's index) are ignored.
"""
from __future__ import annotations

from typing import Dict

from numba import cuda

from ...cpu.records import CONV
from . import launches
from .common import tree_sum

CV = CONV.at          # the conv record's field offsets (numba freezes the namedtuple as constants)
TILE = 16             # a block computes a TILE x TILE tile of its GEMM, one element a thread
TARGET_BLOCKS = 512   # conv_bpf: split the batch reduction until about this many blocks run
SLICE_DEPTH = 256     # ... into slices of at least this many (sample, position) columns
MAX_GRID_Z = 65535    # CUDA's limit on gridDim.z (groups x slices)
SUM_THREADS = 128     # threads per block of conv_bpf's sum of slices
BIAS_THREADS = 128    # threads of a fused bias gradient's block (one block per channel; a power of 2)


# -- the record's geometry, read once per thread -------------------------------------------------

@cuda.jit(device=True, inline="always")
def _geometry(M, p):
    """The record's offsets and dims: x, w, y offsets; N, C, D, H, W; O; kernel, output dims;
    stride, padding, dilation; groups."""
    return (M[p + CV.x_off], M[p + CV.w_off], M[p + CV.y_off],
            M[p + CV.N], M[p + CV.C], M[p + CV.D], M[p + CV.H], M[p + CV.W], M[p + CV.O],
            M[p + CV.KD], M[p + CV.KH], M[p + CV.KW], M[p + CV.OD], M[p + CV.OH], M[p + CV.OW],
            M[p + CV.sd], M[p + CV.sh], M[p + CV.sw], M[p + CV.pd], M[p + CV.ph], M[p + CV.pw],
            M[p + CV.dd], M[p + CV.dh], M[p + CV.dw], M[p + CV.groups])


@cuda.jit(device=True, inline="always")
def _split3(v, b, c):
    """v as (i, j, k) in an (*, b, c) grid."""
    return v // (b * c), v // c % b, v % c


@cuda.jit(device=True, inline="always")
def _input_at(X, geo, n, c, t, pos, zero):
    """X(n, c) at output position ``pos``'s receptive field, kernel tap ``t``; ``zero`` in the
    padding (X: the flat input array, its (N, C, D, H, W) at the record's x_off)."""
    xo, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    kd, kh, kw = _split3(t, KH, KW)
    od, oh, ow = _split3(pos, OH, OW)
    i = od * sd - pd + kd * dd
    j = oh * sh - ph + kh * dh
    k = ow * sw - pw + kw * dw
    if i < 0 or i >= D or j < 0 or j >= H or k < 0 or k >= W:
        return zero
    return X[xo + (((n * C + c) * D + i) * H + j) * W + k]


@cuda.jit(device=True, inline="always")
def _source(x, k, s, pad, dil, n_out):
    """The output index along one axis whose window reads input ``x`` at kernel index ``k``, or -1."""
    v = x + pad - k * dil
    if v < 0 or v % s != 0 or v // s >= n_out:
        return -1
    return v // s


# -- the three GEMMs: (rows, cols, depth), operand elements, the output element ------------------
# Operand functions take (A0, A1, geo, g, i, k, zero): the kernel's two inputs in the cpu order, the
# geometry, the group g, the element (row i, depth k of the left operand; depth i, column k of the
# right one) of group g's GEMM, and 0 in the arrays' dtype.

@cuda.jit(device=True, inline="always")
def _fwd_dims(geo):
    """conv_fwd: O/G output channels by N * prod(out) positions, over C/G * prod(kernel)."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    return O // G, N * OD * OH * OW, C // G * KD * KH * KW


@cuda.jit(device=True, inline="always")
def _fwd_a(X, Wt, geo, g, i, k, zero):
    """W[g * O/G + i, k] (W: (O, C/G * prod(kernel)) at w_off)."""
    _, wo, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    return Wt[wo + (g * (O // G) + i) * (C // G * KD * KH * KW) + k]


@cuda.jit(device=True, inline="always")
def _fwd_b(X, Wt, geo, g, k, j, zero):
    """Column j = (sample, position), row k = (channel of group g, tap): the receptive-field element."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    K, P = KD * KH * KW, OD * OH * OW
    return _input_at(X, geo, j // P, g * (C // G) + k // K, k % K, j % P, zero)


@cuda.jit(device=True, inline="always")
def _fwd_put(Y, Wt, geo, g, s, zo, i, j, acc, has_bias, bias_off):
    """Y[n, g * O/G + i, pos] = acc (+ the fused bias, at bias_off of the weight's array)."""
    _, _, yo, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    P = OD * OH * OW
    o = g * (O // G) + i
    if has_bias:
        acc += Wt[bias_off + o]
    Y[yo + (j // P * O + o) * P + j % P] = acc


@cuda.jit(device=True, inline="always")
def _bpi_dims(geo):
    """conv_bpi: C/G input channels by N * prod(in) positions, over O/G * prod(kernel)."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    return C // G, N * D * H * W, O // G * KD * KH * KW


@cuda.jit(device=True, inline="always")
def _bpi_a(DY, Wt, geo, g, i, k, zero):
    """W[g * O/G + o, i, tap] for depth k = (o, tap) (W: (O, C/G, prod(kernel)) at w_off)."""
    _, wo, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    K = KD * KH * KW
    return Wt[wo + ((g * (O // G) + k // K) * (C // G) + i) * K + k % K]


@cuda.jit(device=True, inline="always")
def _bpi_b(DY, Wt, geo, g, k, j, zero):
    """dY(n, g * O/G + o, y) for depth k = (o, tap) and column j = (n, x): y the output whose window
    reads input x at that tap, 0 where there is none (dY: (N, O, *out) at x_off)."""
    dyo, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    K, S = KD * KH * KW, D * H * W
    kd, kh, kw = _split3(k % K, KH, KW)
    xd, xh, xw = _split3(j % S, H, W)
    a = _source(xd, kd, sd, pd, dd, OD)
    b = _source(xh, kh, sh, ph, dh, OH)
    c = _source(xw, kw, sw, pw, dw, OW)
    if a < 0 or b < 0 or c < 0:
        return zero
    return DY[dyo + (((j // S * O + g * (O // G) + k // K) * OD + a) * OH + b) * OW + c]


@cuda.jit(device=True, inline="always")
def _bpi_put(DX, Wt, geo, g, s, zo, i, j, acc, has_bias, bias_off):
    """dX[n, g * C/G + i, x] = acc (dX: (N, C, *in) at y_off)."""
    _, _, dxo, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    S = D * H * W
    DX[dxo + (j // S * C + g * (C // G) + i) * S + j % S] = acc


@cuda.jit(device=True, inline="always")
def _bpf_dims(geo):
    """conv_bpf: O/G output channels by C/G * prod(kernel), over N * prod(out)."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    return O // G, C // G * KD * KH * KW, N * OD * OH * OW


@cuda.jit(device=True, inline="always")
def _bpf_a(X, DY, geo, g, i, k, zero):
    """dY[n, g * O/G + i, pos] for depth k = (n, pos) (dY: (N, O, *out) at w_off)."""
    _, dyo, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    P = OD * OH * OW
    return DY[dyo + (k // P * O + g * (O // G) + i) * P + k % P]


@cuda.jit(device=True, inline="always")
def _bpf_b(X, DY, geo, g, k, j, zero):
    """The receptive-field element of depth k = (n, pos) and column j = (channel of group g, tap)."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    K, P = KD * KH * KW, OD * OH * OW
    return _input_at(X, geo, k // P, g * (C // G) + j // K, j % K, k % P, zero)


@cuda.jit(device=True, inline="always")
def _bpf_put(Z, DY, geo, g, s, zo, i, j, acc, has_bias, bias_off):
    """Slice s's partial dW[g * O/G + i, j] at zo (slices of O * C/G * prod(kernel) elements: the
    workspace, or dW itself when there is one slice)."""
    _, _, _, N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G = geo
    R = C // G * KD * KH * KW
    Z[zo + (s * O + g * (O // G) + i) * R + j] = acc


def _tiled_gemm(dims, a_at, b_at, put):
    """A kernel ``(A0, A1, Z, M, p, zo, slices, zero)``: block (x, y, z) computes the TILE x TILE
    tile (rows y * TILE.., columns x * TILE..) of group z // slices's GEMM over depth slice
    z % slices (``dims(geo)``: rows, columns, depth; ``a_at`` / ``b_at``: the operands' elements;
    ``put``: stores an output element). ``zero``: 0 in the output's dtype (the accumulator's type)."""
    @cuda.jit
    def kernel(A0, A1, Z, M, p, zo, slices, zero):
        geo = _geometry(M, p)
        rows, cols, depth = dims(geo)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        i = cuda.blockIdx.y * TILE + ty
        j = cuda.blockIdx.x * TILE + tx
        g = cuda.blockIdx.z // slices
        s = cuda.blockIdx.z % slices
        lo, hi = depth * s // slices, depth * (s + 1) // slices
        sa = cuda.shared.array((TILE, TILE), dtype=Z.dtype)
        sb = cuda.shared.array((TILE, TILE), dtype=Z.dtype)
        acc = zero
        for k0 in range(lo, hi, TILE):
            sa[ty, tx] = a_at(A0, A1, geo, g, i, k0 + tx, zero) if i < rows and k0 + tx < hi else zero
            sb[ty, tx] = b_at(A0, A1, geo, g, k0 + ty, j, zero) if j < cols and k0 + ty < hi else zero
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        if i < rows and j < cols:
            put(Z, A1, geo, g, s, zo, i, j, acc, M[p + CV.has_bias] != 0, M[p + CV.bias_off])
    return kernel


_fwd = _tiled_gemm(_fwd_dims, _fwd_a, _fwd_b, _fwd_put)
_bpi = _tiled_gemm(_bpi_dims, _bpi_a, _bpi_b, _bpi_put)
_bpf = _tiled_gemm(_bpf_dims, _bpf_a, _bpf_b, _bpf_put)


@cuda.jit
def _bpf_sum(WS, DW, M, p, slices, zero):
    """dW = the sum of the slices' partial filter gradients at ws_off, slice by slice (fixed order)."""
    e = cuda.grid(1)
    n = M[p + CV.O] * (M[p + CV.C] // M[p + CV.groups]) * M[p + CV.KD] * M[p + CV.KH] * M[p + CV.KW]
    if e >= n:
        return
    acc = zero
    for s in range(slices):
        acc += WS[M[p + CV.ws_off] + s * n + e]
    DW[M[p + CV.y_off] + e] = acc


@cuda.jit
def _bias_grad(DY, BG, M, p, zero):
    """BG[bias_off + o] = the sum of dY's channel o over samples and positions (block o): each
    thread sums a fixed stride of them, then a shared-memory tree (the same order every run)."""
    o = cuda.blockIdx.x
    t = cuda.threadIdx.x
    O = M[p + CV.O]
    P = M[p + CV.OD] * M[p + CV.OH] * M[p + CV.OW]
    dyo = M[p + CV.w_off]
    acc = zero
    for k in range(t, M[p + CV.N] * P, BIAS_THREADS):
        acc += DY[dyo + (k // P * O + o) * P + k % P]
    part = cuda.shared.array(BIAS_THREADS, dtype=BG.dtype)
    part[t] = acc
    tree_sum(part, t, BIAS_THREADS)
    if t == 0:
        BG[M[p + CV.bias_off] + o] = part[0]


# -- launchers ---------------------------------------------------------------------------------------

def _tiles(n: int) -> int:
    """Tiles covering n (a Python int: launch configurations take no NumPy ints)."""
    return int(-(-n // TILE))


def _zero(a):
    """0 in ``a``'s dtype (the kernels' accumulator type)."""
    return a.dtype.type(0)


def _launch_gemm(kernel, rows: int, cols: int, groups: int, slices: int, args, stream) -> None:
    if rows and cols and groups:
        kernel[(_tiles(cols), _tiles(rows), int(groups * slices)), (TILE, TILE), stream](*args)


@launches("conv_fwd")
def conv_fwd(arrays, M, E, p, rec, stream) -> None:
    """Y = Conv(X, W) (+ the fused bias): arrays (X, W, Y, workspace), the workspace unused."""
    X, Wt, Y = arrays[:3]
    f = CONV.unpack(rec)
    rows, cols = f["O"] // f["groups"], f["N"] * f["OD"] * f["OH"] * f["OW"]
    _launch_gemm(_fwd, rows, cols, f["groups"], 1, (X, Wt, Y, M, p, 0, 1, _zero(Y)), stream)


@launches("conv_bpi")
def conv_bpi(arrays, M, E, p, rec, stream) -> None:
    """dX = ConvBackpropInput(dY, W): arrays (dY, W, dX, workspace), the workspace unused."""
    DY, Wt, DX = arrays[:3]
    f = CONV.unpack(rec)
    rows, cols = f["C"] // f["groups"], f["N"] * f["D"] * f["H"] * f["W"]
    _launch_gemm(_bpi, rows, cols, f["groups"], 1, (DY, Wt, DX, M, p, 0, 1, _zero(DX)), stream)


def bpf_room(f: Dict[str, int]) -> int:
    """Elements of conv_bpf's workspace from ``ws_off`` (record fields ``f``): what the cpu
    lowering allots (``nn_conv._workspace_size``: the workers' regions, partial filter gradients
    and bias sums)."""
    regions = 1 if f["block"] else f["T"]
    filters = f["O"] * (f["C"] // f["groups"]) * f["KD"] * f["KH"] * f["KW"]
    return regions * (f["region"] + filters) + f["T"] * f["O"] * f["OD"] * f["OH"] * f["OW"]


def bpf_slices(f: Dict[str, int]) -> int:
    """Depth slices of conv_bpf's batch reduction: enough for about ``TARGET_BLOCKS`` blocks, each of
    at least ``SLICE_DEPTH`` columns, as many partial filter gradients as ``bpf_room`` holds."""
    G = f["groups"]
    rows, cols = f["O"] // G, f["C"] // G * f["KD"] * f["KH"] * f["KW"]
    depth = f["N"] * f["OD"] * f["OH"] * f["OW"]
    if not rows or not cols:
        return 1
    want = -(-TARGET_BLOCKS // (G * _tiles(rows) * _tiles(cols)))
    want = min(want, depth // SLICE_DEPTH, MAX_GRID_Z // G, bpf_room(f) // (G * rows * cols))
    return max(1, want)


@launches("conv_bpf")
def conv_bpf(arrays, M, E, p, rec, stream) -> None:
    """dW = ConvBackpropFilter(X, dY), and the fused bias gradient: arrays (X, dY, dW, workspace,
    bias gradient (dW itself when none is fused)). The whole gradient (no cpu reduce phase)."""
    X, DY, DW, WS, BG = arrays[:5]
    f = CONV.unpack(rec)
    G = f["groups"]
    rows, cols = f["O"] // G, f["C"] // G * f["KD"] * f["KH"] * f["KW"]
    slices = bpf_slices(f)
    if slices == 1:
        _launch_gemm(_bpf, rows, cols, G, 1, (X, DY, DW, M, p, f["y_off"], 1, _zero(DW)), stream)
    else:
        _launch_gemm(_bpf, rows, cols, G, slices, (X, DY, WS, M, p, f["ws_off"], slices, _zero(WS)), stream)
        n = f["O"] * cols
        _bpf_sum[int(-(-n // SUM_THREADS)), SUM_THREADS, stream](WS, DW, M, p, slices, _zero(DW))
    if f["has_bias"] and f["O"]:
        _bias_grad[int(f["O"]), BIAS_THREADS, stream](DY, BG, M, p, _zero(BG))
