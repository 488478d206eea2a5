"""Single-tile Winograd kernels: 2-d convolutions whose (padded) input plane is one Winograd tile.

The stages, the workspace and the record are described in ``nn_wino_tile.py`` (the lowering side)."""
import numpy as np
from numba import njit

from ..tile_matrices import ALIGN, table

from .base import HELPER, JIT, NT, OFF, ON, TR, ZERO
from .gemm import _gemm
from .conv import CS, CV, _conv_offsets, _bias_grad, _bias_sums, _conv_bias



_TILE_FLAT, _TILE_AT = table()     # every F(m, r): frozen into the kernels as constant arrays


@njit(**HELPER)
def _tile_ld(n):
    """n rounded up to whole 64-byte lines of float32 (``ALIGN`` elements): where regions start."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


@njit(**HELPER)
def _tile_dims(M, q):
    """N, C, H, W, O, KH, KW, OH, OW, pad_h, pad_w, chunk samples, workers, region."""
    return (M[q + CV.N], M[q + CV.C], M[q + CV.H], M[q + CV.W], M[q + CV.O], M[q + CV.KH], M[q + CV.KW], M[q + CV.OH], M[q + CV.OW],
            M[q + CV.ph], M[q + CV.pw], M[q + CV.nb], M[q + CV.T], M[q + CV.region])


@njit(**HELPER)
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


@njit(**HELPER)
def _tile_region(M, q, r0, t):
    """Worker t's V, Mx, padded planes and partial dU."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    vo = r0 + t * size
    mo = _tile_ld(vo + A2 * nb * C)
    xp = _tile_ld(mo + A2 * nb * O)
    du = _tile_ld(xp + nb * C * A2)
    return vo, mo, xp, du


@njit(**HELPER)
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


@njit(**HELPER)
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


@njit(**HELPER)
def _tile_in(X, xo, WS, kb, vo, xp, M, q, n0, n):
    """V (A2 x n C) = KB @ the chunk's planes^T (read in place without padding)."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    if ph == 0 and pw == 0:
        _gemm(NT, TR, A2, n * C, A2, 1.0, WS, kb, A2, X, xo + n0 * C * A2, A2, 0.0, WS, vo, n * C)
    else:
        _tile_planes(X, xo, WS, xp, M, q, n0, n, OFF)
        _gemm(NT, TR, A2, n * C, A2, 1.0, WS, kb, A2, WS, xp, A2, 0.0, WS, vo, n * C)


@njit(**HELPER)
def _tile_grad_in(DY, dyo, WS, ka, mo, M, q, n0, n):
    """dM (A2 x n O) = KA^T @ the chunk's output-gradient planes^T."""
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    A2 = (OH + KH - 1) * (OW + KW - 1)
    M2 = OH * OW
    _gemm(TR, TR, A2, n * O, M2, 1.0, WS, ka, A2, DY, dyo + n0 * O * M2, M2, 0.0, WS, mo, n * O)


@njit(**HELPER)
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
        if M[q + CV.has_bias]:
            _conv_bias(Y, yo, Wt, M[q + CV.bias_off], n0, n, O, M2)


@njit(**HELPER)
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


@njit(**JIT)
def tile_prep(WS, M, E, p):
    """The transform matrices KB, KA, KG into the workspace: the first phase of every tile kernel."""
    q = p
    N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
    kb, ka, kg, uo, wp, bs, r0 = _tile_layout(M, q, M[q + CV.ws_off])
    _tile_mats(WS, kb, ka, kg, OH, KH, OW, KW)


@njit(**JIT)
def tile_fwd_u(Wt, WS, M, E, p):
    """Share t of U = KG @ W^T for the forward ((c, o) order; W copied to (C, O, R2) first)."""
    t = M[p + CS.share]
    if t < M[p + CV.T]:
        _tile_u(Wt, M[p + CV.w_off], WS, M, p, M[p + CV.ws_off], t, ON)


@njit(**JIT)
def tile_bpi_u(Wt, WS, M, E, p):
    """Share t of U = KG @ W^T for the input gradient ((o, c) order)."""
    t = M[p + CS.share]
    if t < M[p + CV.T]:
        _tile_u(Wt, M[p + CV.w_off], WS, M, p, M[p + CV.ws_off], t, OFF)


@njit(**JIT)
def tile_fwd(X, Wt, Y, WS, M, E, p):
    """Share t of Y = Conv(X, W): its contiguous share of the samples, in chunks (phases:
    ``tile_prep``, ``tile_fwd_u``, then these shares on the kernel workers, every GEMM on one BLAS
    thread while they run at once, on BLAS's own threads when they run one after another)."""
    xo, wo, yo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    if t < M[q + CV.T]:
        _tile_fwd_share(X, xo, Wt, wo, Y, yo, WS, so, M, q, t)


@njit(**HELPER)
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


@njit(**JIT)
def tile_bpi(DY, Wt, DX, WS, M, E, p):
    """Share t of dX = ConvBackpropInput(dY, W) (phases: ``tile_prep``, ``tile_bpi_u``, these)."""
    dyo, wo, dxo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    if t < M[q + CV.T]:
        _tile_bpi_share(DY, dyo, DX, dxo, WS, so, M, q, t)


@njit(**HELPER)
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


@njit(**HELPER)
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


@njit(**JIT)
def tile_bpf(X, DY, WS, M, E, p):
    """Share t of dW = ConvBackpropFilter(X, dY): its partial dU (and bias sums, where the bias
    gradient is fused) over its samples (phases: ``tile_prep``, these, ``tile_bpf_dw``)."""
    xo, dyo, dwo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    if t < M[q + CV.T]:
        _tile_bpf_share(X, xo, DY, dyo, WS, so, M, q, t, M[q + CV.has_bias] != 0)


@njit(**JIT)
def tile_bpf_dw(DW, WS, BG, M, E, p):
    """Share t of dW: its band of the workers' summed dU, times KG; share 0 also sums the fused
    bias gradient into BG."""
    q = p
    t = M[q + CS.share]
    T = M[q + CV.T]
    if t >= T:
        return
    so = M[q + CV.ws_off]
    _tile_dw(DW, M[q + CV.y_off], WS, M, q, so, t)
    if t == 0 and M[q + CV.has_bias] != 0:
        N, C, H, Wd, O, KH, KW, OH, OW, ph, pw, nb, T, size = _tile_dims(M, q)
        _bias_grad(BG, M[q + CV.bias_off], WS, _tile_layout(M, q, so)[5], T, O, OH * OW)
