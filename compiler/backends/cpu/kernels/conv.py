"""The conv family's kernels (Conv, ConvBackpropInput, ConvBackpropFilter): im2col chunks and implicit GEMMs.

The algorithms, the workspace and the record are described in ``nn_conv.py`` (the lowering side)."""
import numpy as np
from numba import njit

from ..records import CONV, CONV_SHARE
from .base import HELPER, JIT, NT, OFF, ON, ONE, TR, ZERO
from .gemm import _gemm, _gemm_par

CV = CONV.at     # the conv record's field offsets (records.CONV)
CS = CONV_SHARE.at     # ... and a share's (its index)


@njit(**HELPER)
def _conv_range(n_out, k, s, pad, dil, size):
    """lo, hi, off: the outputs o in [lo, hi) read input o * s + off inside [0, size)."""
    off = k * dil - pad
    lo = 0
    if off < 0:
        lo = (-off + s - 1) // s
    hi = 0
    if size - off > 0:
        hi = (size - off - 1) // s + 1
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi, off


@njit(**HELPER)
def _conv_cols(X, xo, T, to, M, q, n0, m, scatter, u):
    """im2col of samples [n0, n0 + m) into T at to, as rows (c, kd, kh, kw) by m * P columns; with
    scatter, the reverse: X's planes of these samples = col2im(T) (each channel's planes zeroed just
    before its rows are added). u == 1: X is (N, C, D, H, W) at xo and the columns are (sample, od,
    oh, ow); u == m (batch-minor): X is the chunk as (C, D, H, W, m) at xo and the columns are (od,
    oh, ow, sample), so each position moves u contiguous values (runs of OW * u at stride 1)."""
    C = M[q + CV.C]
    D = M[q + CV.D]
    H = M[q + CV.H]
    Wd = M[q + CV.W]
    KD = M[q + CV.KD]
    KH = M[q + CV.KH]
    KW = M[q + CV.KW]
    OD = M[q + CV.OD]
    OH = M[q + CV.OH]
    OW = M[q + CV.OW]
    sd = M[q + CV.sd]
    sh = M[q + CV.sh]
    sw = M[q + CV.sw]
    P = OD * OH * OW
    cols = m * P
    plane = D * H * Wd
    if u == 1 and not scatter and sw == 1 and M[q + CV.pd] == 0 and M[q + CV.ph] == 0 and M[q + CV.pw] == 0:
        _conv_cols_inside(X, xo, T, to, n0, m, C, D, H, Wd, KD, KH, KW, OD, OH, OW, sd, sh, M[q + CV.dd], M[q + CV.dh],
                          M[q + CV.dw])
        return
    ms = m if u == 1 else 1
    for c in range(C):
        if scatter:
            for s in range(ms):
                xb = xo + ((n0 + s) * C + c) * plane if u == 1 else xo + c * plane * u
                for i in range(plane * u):
                    X[np.uint64(xb + i)] = 0
        for kd in range(KD):
            lod, hid, ofd = _conv_range(OD, kd, sd, M[q + CV.pd], M[q + CV.dd], D)
            for kh in range(KH):
                loh, hih, ofh = _conv_range(OH, kh, sh, M[q + CV.ph], M[q + CV.dh], H)
                for kw in range(KW):
                    low, hiw, ofw = _conv_range(OW, kw, sw, M[q + CV.pw], M[q + CV.dw], Wd)
                    row = to + (((c * KD + kd) * KH + kh) * KW + kw) * cols
                    for s in range(ms):
                        xb = xo + ((n0 + s) * C + c) * plane if u == 1 else xo + c * plane * u
                        _conv_tap(X, xb, T, row + s * P, OD, OH, OW, H, Wd, sd, sh, sw, lod, hid, loh, hih,
                                  low, hiw, ofd, ofh, ofw, scatter, u)


@njit(**HELPER)
def _conv_cols_inside(X, xo, T, to, n0, m, C, D, H, Wd, KD, KH, KW, OD, OH, OW, sd, sh, dd, dh, dw):
    """``_conv_cols`` of sample-major columns when every tap of every output lies inside the input
    (no padding) and the last axis has stride 1: each column row is OD * OH runs of OW values copied
    as they are, with no range bookkeeping per row (LeNet's conv1, 24-value runs: 4.7 -> 2.9 us a
    sample, measured in the fused kernel). Dims, strides and dilations as ``_conv_cols`` reads them."""
    P = OD * OH * OW
    plane = D * H * Wd
    for c in range(C):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    row = to + (((c * KD + kd) * KH + kh) * KW + kw) * m * P
                    for s in range(m):
                        xb = xo + ((n0 + s) * C + c) * plane + kw * dw
                        for od in range(OD):
                            for oh in range(OH):
                                xr = xb + ((od * sd + kd * dd) * H + oh * sh + kh * dh) * Wd
                                t = row + s * P + (od * OH + oh) * OW
                                for i in range(OW):
                                    T[np.uint64(t + i)] = X[np.uint64(xr + i)]


@njit(**HELPER)
def _conv_tap(X, xb, T, t0, OD, OH, OW, H, Wd, sd, sh, sw, lod, hid, loh, hih, low, hiw, ofd, ofh, ofw,
              scatter, u):
    """One tap's column row of one sample (or chunk) of ``_conv_cols``: output positions [lo, hi)
    along each axis read the input (the others are zero columns). A helper of its own, with the
    stride-1 rows in their own loops: inside ``_conv_cols``'s nest LLVM kept the short rows
    (LeNet's 24) scalar: 6.6 -> 3.4 us per conv1 sample, measured."""
    n = OW * u
    for od in range(OD):
        for oh in range(OH):
            t = t0 + (od * OH + oh) * n
            if od < lod or od >= hid or oh < loh or oh >= hih:
                if not scatter:
                    for i in range(n):
                        T[np.uint64(t + i)] = 0
                continue
            xr = xb + (((od * sd + ofd) * H + oh * sh + ofh) * Wd + ofw) * u
            if sw != 1:
                for ow in range(low, hiw):
                    for i in range(u):
                        if scatter:
                            X[np.uint64(xr + ow * sw * u + i)] += T[np.uint64(t + ow * u + i)]
                        else:
                            T[np.uint64(t + ow * u + i)] = X[np.uint64(xr + ow * sw * u + i)]
            elif scatter:
                for i in range(low * u, hiw * u):
                    X[np.uint64(xr + i)] += T[np.uint64(t + i)]
            else:
                for i in range(low * u, hiw * u):
                    T[np.uint64(t + i)] = X[np.uint64(xr + i)]
            if not scatter:
                for i in range(low * u):
                    T[np.uint64(t + i)] = 0
                for i in range(hiw * u, n):
                    T[np.uint64(t + i)] = 0


@njit(**HELPER)
def _conv_rows(A, ao, B, bo, O, P, n0, m, to_rows, minor):
    """Between samples [n0, n0 + m) of A (N, O, P) at ao and the chunk layout at bo: (O, m, P), or
    (O, P, m) with minor. to_rows copies A's samples into B, else B's chunk back into A. Into the
    batch-minor layout the samples are the inner loop (contiguous stores, strided loads): 2-3x
    faster than contiguous loads with stores m apart (measured on LeNet's conv2 chunks)."""
    if minor and to_rows:
        for o in range(O):
            a = ao + (n0 * O + o) * P
            for i in range(P):
                b = bo + (o * P + i) * m
                for s in range(m):
                    B[np.uint64(b + s)] = A[np.uint64(a + s * O * P + i)]
        return
    ss = 1 if minor else P
    si = m if minor else 1
    for s in range(m):
        for o in range(O):
            a = ao + ((n0 + s) * O + o) * P
            b = bo + o * m * P + s * ss
            if to_rows:
                for i in range(P):
                    B[np.uint64(b + i * si)] = A[np.uint64(a + i)]
            else:
                for i in range(P):
                    A[np.uint64(a + i)] = B[np.uint64(b + i * si)]


@njit(**HELPER)
def _chunk_cols(X, xo, WS, so, xt, M, q, n0, m, minor, direct, scatter):
    """im2col (with scatter: col2im) between samples [n0, n0 + m) of X and the columns at so:
    batch-minor through the chunk transposed to (C, *in, m) at xt, or straight; nothing for a
    pointwise conv of one sample (its GEMMs use X's planes in place)."""
    C = M[q + CV.C]
    plane = M[q + CV.D] * M[q + CV.H] * M[q + CV.W]
    if minor:
        if not scatter:
            _conv_rows(X, xo, WS, xt, C, plane, n0, m, ON, ON)
        _conv_cols(WS, xt, WS, so, M, q, n0, m, scatter, m)
        if scatter:
            _conv_rows(X, xo, WS, xt, C, plane, n0, m, OFF, ON)
    elif m > 1 or not direct:
        _conv_cols(X, xo, WS, so, M, q, n0, m, scatter, ONE)


@njit(**HELPER)
def _conv_bias(Y, yo, Bv, bo, n0, m, O, P):
    """Y's planes of samples [n0, n0 + m) += the per-channel bias Bv[bo:bo + O] (a fused bias add)."""
    for s in range(m):
        for o in range(O):
            v = Bv[np.uint64(bo + o)]
            base = yo + ((n0 + s) * O + o) * P
            for i in range(P):
                Y[np.uint64(base + i)] += v


@njit(**HELPER)
def _group_cols(T, to, WS, so, n0, C, g, R, P, cols, own):
    """Group g's (R, cols) column matrix as (array, element offset): with ``own`` (a pointwise conv,
    one sample n0) the sample's own planes of T at to, read or written in place; else the im2col
    workspace at so."""
    if own:
        return T, to + (n0 * C + g * R) * P
    return WS, so + g * R * cols


@njit(**HELPER)
def _conv_offsets(M, p):
    """A conv record's element offsets (the kernel's 2 inputs, output, workspace) and the record's
    start, from which its fields are read (``records.CONV``)."""
    return M[p + CV.x_off], M[p + CV.w_off], M[p + CV.y_off], M[p + CV.ws_off], p


@njit(**HELPER)
def _conv_dims(M, q):
    """N, C, O, G, nb, R = C/G * prod(K), P = prod(out)."""
    G = M[q + CV.groups]
    R = M[q + CV.C] // G * M[q + CV.KD] * M[q + CV.KH] * M[q + CV.KW]
    return M[q + CV.N], M[q + CV.C], M[q + CV.O], G, M[q + CV.nb], R, M[q + CV.OD] * M[q + CV.OH] * M[q + CV.OW]


@njit(**HELPER)
def _chunk_regions(so, O, G, nb, R, P):
    """A worker's im2col workspace from so: the chunk's columns (G * R * nb * P), then its rows of Y
    or dY at ro (O * nb * P), then its transposed input at xt."""
    ro = so + G * R * nb * P
    return ro, ro + O * nb * P


@njit(**HELPER)
def _cols_at(M, q, so, first):
    """Where the im2col columns of a chunk go (``first``: the elements of the batch's columns
    before it, n0 * G * R * P): the worker's workspace at so, or (``keep_columns``) their place
    among the whole batch's columns at M[q + CV.kept], which the forward writes and the filter
    gradient reads."""
    return so if M[q + CV.kept] < 0 else M[q + CV.kept] + first


@njit(**HELPER)
def _conv_pointwise(M, q):
    """A 1x1(x1) kernel, stride 1, no padding: a sample's columns are its input planes as they are."""
    return (M[q + CV.KD] == 1 and M[q + CV.KH] == 1 and M[q + CV.KW] == 1 and M[q + CV.sd] == 1 and M[q + CV.sh] == 1
            and M[q + CV.sw] == 1 and M[q + CV.pd] == 0 and M[q + CV.ph] == 0 and M[q + CV.pw] == 0)


@njit(**HELPER)
def _grid_dims(M, q):
    """The padded grid of an implicit conv: Dp, Hp, Wp and the largest tap offset in it."""
    Dp = M[q + CV.D] + 2 * M[q + CV.pd]
    Hp = M[q + CV.H] + 2 * M[q + CV.ph]
    Wp = M[q + CV.W] + 2 * M[q + CV.pw]
    offmax = ((M[q + CV.KD] - 1) * M[q + CV.dd] * Hp + (M[q + CV.KH] - 1) * M[q + CV.dh]) * Wp + (M[q + CV.KW] - 1) * M[q + CV.dw]
    return Dp, Hp, Wp, offmax


@njit(**HELPER)
def _tap_offset(M, q, t, Hp, Wp):
    """Grid offset of kernel tap t (kd, kh, kw): a valid output at grid column j reads column j + offset."""
    KH = M[q + CV.KH]
    KW = M[q + CV.KW]
    return ((t // (KH * KW)) * M[q + CV.dd] * Hp + (t // KW) % KH * M[q + CV.dh]) * Wp + (t % KW) * M[q + CV.dw]


@njit(**HELPER)
def _conv_taps(Wt, wo, T, to, O, C, K, to_taps):
    """Between W (O, C, K taps) at wo and the per-tap matrices (K, O, C) at to (to_taps: W -> T)."""
    for o in range(O):
        for c in range(C):
            for t in range(K):
                if to_taps:
                    T[to + (t * O + o) * C + c] = Wt[wo + (o * C + c) * K + t]
                else:
                    Wt[wo + (o * C + c) * K + t] = T[to + (t * O + o) * C + c]


@njit(**HELPER)
def _grid(A, ao, T, to, ld, front, rows, n0, m, e0, e1, e2, p0, p1, p2, g0, g1, g2, put):
    """Between samples [n0, n0 + m) of A (N, rows, e0, e1, e2) and the grid layout at to: row r
    (stride ld) holds, after ``front`` elements, each sample's g0 x g1 x g2 plane with A's plane
    placed at (p0, p1, p2). put: T = A's planes, zeros elsewhere in the row; else A = T's region."""
    S = g0 * g1 * g2
    plane = e0 * e1 * e2
    for r in range(rows):
        base = to + r * ld
        if put:
            for i in range(front):
                T[np.uint64(base + i)] = 0
            for i in range(front + m * S, ld):
                T[np.uint64(base + i)] = 0
        for s in range(m):
            a0 = ao + ((n0 + s) * rows + r) * plane
            t0 = base + front + s * S
            for d in range(g0):
                for h in range(g1):
                    t = t0 + (d * g1 + h) * g2
                    inside = p0 <= d < p0 + e0 and p1 <= h < p1 + e1
                    a = a0 + ((d - p0) * e1 + h - p1) * e2
                    if put:
                        if not inside:
                            for w in range(g2):
                                T[np.uint64(t + w)] = 0
                            continue
                        for w in range(p2):
                            T[np.uint64(t + w)] = 0
                        for w in range(e2):
                            T[np.uint64(t + p2 + w)] = A[np.uint64(a + w)]
                        for w in range(p2 + e2, g2):
                            T[np.uint64(t + w)] = 0
                    elif inside:
                        for w in range(e2):
                            A[np.uint64(a + w)] = T[np.uint64(t + p2 + w)]


@njit(**HELPER)
def _implicit(M, q):
    """Taps K, grid Dp, Hp, Wp, plane S, largest tap offset, region size and column block of an
    implicit conv (regions: per-tap weights K*O*C, then two grids of ``big`` elements)."""
    C = M[q + CV.C]
    O = M[q + CV.O]
    K = M[q + CV.KD] * M[q + CV.KH] * M[q + CV.KW]
    Dp, Hp, Wp, offmax = _grid_dims(M, q)
    S = Dp * Hp * Wp
    big = max(C, O) * (M[q + CV.nb] * S + offmax)
    return K, Hp, Wp, S, offmax, big, M[q + CV.block]


@njit(**HELPER)
def _conv_implicit_taps(A, ao, Z, zo, Wt, wo, WS, so, M, q, back):
    """The forward conv (``back`` False: Z = Y from A = X) or its input gradient (True: Z = dX
    from A = dY) as sums over kernel taps t of GEMMs with the per-tap weights W_t (O x C), column
    block by column block (the block of Z's grid stays in cache across taps):

    - forward: Ygrid = sum_t W_t @ Xgrid[:, offset_t:] (X placed at the padding);
    - input gradient: DXgrid = sum_t W_t^T @ DYgrid[:, -offset_t:] (dY at the grid's origin after
      offmax zeros in front; zeros at every position that is not an output)."""
    N, C, O = M[q + CV.N], M[q + CV.C], M[q + CV.O]
    K, Hp, Wp, S, offmax, big, LB = _implicit(M, q)
    Dp = M[q + CV.D] + 2 * M[q + CV.pd]
    wt = so
    ga = so + K * O * C
    za = ga + big
    x_side = (C, M[q + CV.D], M[q + CV.H], M[q + CV.W], M[q + CV.pd], M[q + CV.ph], M[q + CV.pw])    # rows, extents, place
    y_side = (O, M[q + CV.OD], M[q + CV.OH], M[q + CV.OW], 0, 0, 0)
    src, dst = (y_side, x_side) if back else (x_side, y_side)
    front = offmax if back else 0
    _conv_taps(Wt, wo, WS, wt, O, C, K, True)
    for n0 in range(0, N, M[q + CV.nb]):
        m = min(M[q + CV.nb], N - n0)
        L = m * S
        ld = L + offmax
        _grid(A, ao, WS, ga, ld, front, src[0], n0, m, src[1], src[2], src[3], src[4], src[5], src[6],
              Dp, Hp, Wp, True)
        for j0 in range(0, L, LB):
            lb = min(LB, L - j0)
            for t in range(K):
                off = _tap_offset(M, q, t, Hp, Wp)
                _gemm_par(M[q + CV.T], TR if back else NT, NT, dst[0], lb, src[0], 1.0, WS, wt + t * O * C, C, WS,
                      ga + j0 + (offmax - off if back else off), ld, 0.0 if t == 0 else 1.0, WS, za + j0, L)
        _grid(Z, zo, WS, za, L, ZERO, dst[0], n0, m, dst[1], dst[2], dst[3], dst[4], dst[5], dst[6], Dp, Hp, Wp, OFF)


@njit(**HELPER)
def _conv_bpf_implicit(X, DY, DW, WS, xo, dyo, dwo, so, M, q):
    """DW_t = sum over columns of (the output-gradient grid) @ (the input grid shifted by t's
    offset)^T, accumulated over column blocks and chunks (GEMM's beta), then put back as (O, C, K)."""
    N, C, O = M[q + CV.N], M[q + CV.C], M[q + CV.O]
    K, Hp, Wp, S, offmax, big, LB = _implicit(M, q)
    dwt = so
    xa = so + K * O * C
    ga = xa + big
    for n0 in range(0, N, M[q + CV.nb]):
        m = min(M[q + CV.nb], N - n0)
        L = m * S
        ld = L + offmax
        _grid(X, xo, WS, xa, ld, ZERO, C, n0, m, M[q + CV.D], M[q + CV.H], M[q + CV.W], M[q + CV.pd], M[q + CV.ph], M[q + CV.pw],
              M[q + CV.D] + 2 * M[q + CV.pd], Hp, Wp, True)
        _grid(DY, dyo, WS, ga, L, ZERO, O, n0, m, M[q + CV.OD], M[q + CV.OH], M[q + CV.OW], ZERO, ZERO, ZERO,
              M[q + CV.D] + 2 * M[q + CV.pd], Hp, Wp, True)
        for j0 in range(0, L, LB):
            lb = min(LB, L - j0)
            for t in range(K):
                off = _tap_offset(M, q, t, Hp, Wp)
                _gemm_par(M[q + CV.T], NT, TR, O, C, lb, 1.0, WS, ga + j0, L, WS, xa + j0 + off, ld,
                      0.0 if n0 == 0 and j0 == 0 else 1.0, WS, dwt + t * O * C, C)
    _conv_taps(DW, dwo, WS, dwt, O, C, K, False)


@njit(**HELPER)
def _fwd_chunks(X, xo, Wt, wo, Y, yo, WS, so, M, q, t, T):
    """Chunks t, t + T, ... of an im2col forward conv, in the worker's workspace at so: columns,
    then the chunk's output rows (a pointwise conv with one sample per chunk reads X in place)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    ro, xt = _chunk_regions(so, O, G, nb, R, P)
    for n0 in range(t * nb, N, T * nb):
        m = min(nb, N - n0)
        cols = m * P
        minor = M[q + CV.minor] != 0 and m > 1
        co = _cols_at(M, q, so, n0 * G * R * P)
        _chunk_cols(X, xo, WS, co, xt, M, q, n0, m, minor, direct, False)
        for g in range(G):
            t_, to = _group_cols(X, xo, WS, co, n0, C, g, R, P, cols, m == 1 and direct)
            if m == 1:
                _gemm(NT, NT, Og, cols, R, 1.0, Wt, wo + g * Og * R, R, t_, to, cols, 0.0, Y, yo + (n0 * O + g * Og) * P, cols)
            else:
                _gemm(NT, NT, Og, cols, R, 1.0, Wt, wo + g * Og * R, R, t_, to, cols, 0.0, WS, ro + g * Og * cols, cols)
        if m > 1:
            _conv_rows(Y, yo, WS, ro, O, P, n0, m, OFF, minor)
        if M[q + CV.has_bias]:      # + the per-channel bias at M[q + CV.bias_off] of Wt's array (a fused Add)
            _conv_bias(Y, yo, Wt, M[q + CV.bias_off], n0, m, O, P)


@njit(**HELPER)
def _bias_sums(DY, dyo, WS, bs, n0, m, O, P):
    """WS[bs:bs + O * P] += the (O, P) planes of dY's samples [n0, n0 + m): every element its own
    accumulator, so the loop vectorizes (``_bias_grad`` sums the planes' positions at the end)."""
    for s in range(m):
        base = dyo + (n0 + s) * O * P
        for i in range(O * P):
            WS[np.uint64(bs + i)] += DY[np.uint64(base + i)]


@njit(**HELPER)
def _bias_grad(BG, bgo, WS, bs, parts, O, P):
    """BG[bgo + o] = the sum of ``parts`` (O, P) accumulators at bs, bs + O * P, ... over parts and
    positions (float64)."""
    for o in range(O):
        acc = 0.0
        for t in range(parts):
            base = bs + t * O * P + o * P
            for i in range(P):
                acc += WS[np.uint64(base + i)]
        BG[np.uint64(bgo + o)] = acc


@njit(**HELPER)
def _bpf_chunks(X, xo, DY, dyo, WS, acc, so, bs, M, q, t, T):
    """Chunks t, t + T, ... of an im2col filter gradient, summed into WS at acc (per group g a block
    of O/G * R at acc + g * R * O/G; the worker's first chunk writes it, later ones add: GEMM's
    beta); workspace at so: columns, chunk rows of DY. Where R >= O/G the block is dW^T = cols @
    dY^T: OpenBLAS runs it 4-40% faster than dW = dY @ cols^T on such shapes (LeNet's conv2, R 800
    and O 64: 383 against 505 us a chunk), and 3-56% slower where O/G > R (measured, one thread);
    ``_bpf_reduce`` puts the workers' sums into DW. With bs >= 0 (a fused bias gradient), the
    worker's sums of dY's (O, P) planes go to WS[bs:bs + O * P], each chunk's while it is in cache."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    ro, xt = _chunk_regions(so, O, G, nb, R, P)
    if bs >= 0:
        for i in range(O * P):
            WS[np.uint64(bs + i)] = 0
    for n0 in range(t * nb, N, T * nb):
        m = min(nb, N - n0)
        cols = m * P
        minor = M[q + CV.minor] != 0 and m > 1
        co = _cols_at(M, q, so, n0 * G * R * P)
        if M[q + CV.kept] < 0:      # else the forward's columns, kept (``keep_columns``)
            _chunk_cols(X, xo, WS, co, xt, M, q, n0, m, minor, direct, False)
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, O, P, n0, m, ON, minor)
        for g in range(G):
            t_, to = _group_cols(X, xo, WS, co, n0, C, g, R, P, cols, m == 1 and direct)
            d, do = (DY, dyo + (n0 * O + g * Og) * P) if m == 1 else (WS, ro + g * Og * cols)
            _bpf_gemm(d, do, t_, to, Og, R, cols, 0.0 if n0 == t * nb else 1.0, WS, acc + g * R * Og)
        if bs >= 0:
            _bias_sums(DY, dyo, WS, bs, n0, m, O, P)


@njit(**HELPER)
def _bpi_chunks(DY, dyo, Wt, wo, DX, dxo, WS, so, M, q, t, T):
    """Chunks t, t + T, ... of an im2col input gradient (workspace at so: columns, chunk rows of
    DY); a pointwise conv with one sample per chunk writes DX in place (no col2im)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    ro, xt = _chunk_regions(so, O, G, nb, R, P)
    for n0 in range(t * nb, N, T * nb):
        m = min(nb, N - n0)
        cols = m * P
        minor = M[q + CV.minor] != 0 and m > 1
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, O, P, n0, m, ON, minor)
        for g in range(G):
            t_, to = _group_cols(DX, dxo, WS, so, n0, C, g, R, P, cols, m == 1 and direct)
            d, do = (DY, dyo + (n0 * O + g * Og) * P) if m == 1 else (WS, ro + g * Og * cols)
            _gemm(TR, NT, R, cols, Og, 1.0, Wt, wo + g * Og * R, R, d, do, cols, 0.0, t_, to, cols)
        _chunk_cols(DX, dxo, WS, so, xt, M, q, n0, m, minor, direct, True)


@njit(**JIT)
def conv_fwd(X, Wt, Y, WS, M, E, p):
    """Share t of Y (N, O, *out) = Conv(X, W): im2col chunks t, t + T, ... in the worker's region;
    an implicit-GEMM conv (its GEMMs split over the workers themselves) and an empty kernel run
    whole in share 0 (``nn_conv``'s phases: these shares, on the kernel workers where the record's T
    is 2 or more and the conv is not implicit)."""
    xo, wo, yo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + CV.T], M[q + CV.region]
    if R == 0 or M[q + CV.block]:
        if t != 0:
            return
        if R == 0:
            for i in range(N * O * P):
                Y[yo + i] = 0
        else:
            _conv_implicit_taps(X, xo, Y, yo, Wt, wo, WS, so, M, q, False)
        if M[q + CV.has_bias]:
            _conv_bias(Y, yo, Wt, M[q + CV.bias_off], ZERO, N, O, P)
        return
    if t < T:
        _fwd_chunks(X, xo, Wt, wo, Y, yo, WS, so + t * size, M, q, t, T)


@njit(**HELPER)
def _bpf_gemm(D, do, Cm, co, Og, R, K, beta, WS, acc):
    """A filter-gradient block at acc (+= with beta 1): dY (Og x K at do) @ cols^T (cols R x K at
    co), stored as dW^T (R, Og) where R >= Og, else as dW (Og, R): see ``_bpf_chunks``."""
    if R >= Og:
        _gemm(NT, TR, R, Og, K, 1.0, Cm, co, K, D, do, K, beta, WS, acc, Og)
    else:
        _gemm(NT, TR, Og, R, K, 1.0, D, do, K, Cm, co, K, beta, WS, acc, R)


@njit(**HELPER)
def _bpf_reduce(DW, dwo, WS, parts, T, O, G, R, transposed):
    """DW (O, R) = the sum of the T workers' partial filter gradients at parts (worker t's at
    parts + t * O * R; per group an (R, O/G) block if ``transposed``, else (O/G, R): see
    ``_bpf_chunks``): summed into worker 0's, then copied (transposed in 8 x 8 tiles)."""
    n = O * R
    for t in range(1, T):
        for i in range(n):
            WS[np.uint64(parts + i)] += WS[np.uint64(parts + t * n + i)]
    Og = O // G
    if not transposed:
        for i in range(n):
            DW[np.uint64(dwo + i)] = WS[np.uint64(parts + i)]
        return
    for g in range(G):
        a = parts + g * R * Og
        d = dwo + g * Og * R
        for o0 in range(0, Og, 8):
            for r0 in range(0, R, 8):
                for o in range(o0, min(o0 + 8, Og)):
                    for r in range(r0, min(r0 + 8, R)):
                        DW[np.uint64(d + o * R + r)] = WS[np.uint64(a + r * Og + o)]


@njit(**HELPER)
def _bpf_layout(M, q):
    """Where the workers' partial (transposed) filter gradients and bias sums start, after the
    workers' regions (an implicit conv: one region)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    regions = 1 if M[q + CV.block] else M[q + CV.T]
    parts = M[q + CV.ws_off] + regions * M[q + CV.region]
    return parts, parts + regions * O * R


@njit(**HELPER)
def _bpf_whole(X, DY, DW, WS, BG, M, q):
    """A filter gradient that is not split over workers: no samples or an empty kernel (zeros), or
    an implicit conv (its GEMMs split over the workers themselves); and its fused bias gradient."""
    xo, dyo, dwo, so = M[q + CV.x_off], M[q + CV.w_off], M[q + CV.y_off], M[q + CV.ws_off]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    sums = _bpf_layout(M, q)[1]
    if N == 0:
        for i in range(O * R):
            DW[dwo + i] = 0
    elif R != 0:
        _conv_bpf_implicit(X, DY, DW, WS, xo, dyo, dwo, so, M, q)
    if M[q + CV.has_bias] != 0:
        for i in range(O * P):
            WS[sums + i] = 0
        _bias_sums(DY, dyo, WS, sums, ZERO, N, O, P)
        _bias_grad(BG, M[q + CV.bias_off], WS, sums, ONE, O, P)


@njit(**HELPER)
def _bpf_split(M, q):
    """Whether the filter gradient runs as the workers' partial sums (im2col, samples, taps)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    return R != 0 and N != 0 and M[q + CV.block] == 0


@njit(**JIT)
def conv_bpf(X, DY, DW, WS, BG, M, E, p):
    """Share t of DW (O, C/G, *K) = ConvBackpropFilter(X, DY): on the im2col path, worker t's
    partial (transposed) filter gradient over chunks t, t + T, ... (and, with a fused bias gradient
    (``fuse_bias_grad``), its sums of dY's planes); else share 0 computes the whole gradient
    (``_bpf_whole``). Phases: these shares, then ``conv_bpf_reduce``."""
    xo, dyo, dwo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    if not _bpf_split(M, q):
        if t == 0:
            _bpf_whole(X, DY, DW, WS, BG, M, q)
        return
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + CV.T], M[q + CV.region]
    if t >= T:
        return
    parts, sums = _bpf_layout(M, q)
    bs = sums + t * O * P if M[q + CV.has_bias] != 0 else -1
    _bpf_chunks(X, xo, DY, dyo, WS, parts + t * O * R, so + t * size, bs, M, q, t, T)


@njit(**JIT)
def conv_bpf_reduce(DW, WS, BG, M, E, p):
    """DW = the sum of the workers' partial filter gradients, and the fused bias gradient (the
    im2col path; else ``conv_bpf``'s share 0 wrote them)."""
    q = p
    if not _bpf_split(M, q):
        return
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T = M[q + CV.T]
    parts, sums = _bpf_layout(M, q)
    _bpf_reduce(DW, M[q + CV.y_off], WS, parts, T, O, G, R, R >= O // G)
    if M[q + CV.has_bias] != 0:
        _bias_grad(BG, M[q + CV.bias_off], WS, sums, T, O, P)


@njit(**JIT)
def conv_bpi(DY, Wt, DX, WS, M, E, p):
    """Share t of DX (N, C, *S) = ConvBackpropInput(DY, W): im2col chunks t, t + T, ... (each
    chunk's col2im writes only its own samples of DX); an implicit-GEMM conv and an empty kernel
    run whole in share 0 (as ``conv_fwd``)."""
    dyo, wo, dxo, so, q = _conv_offsets(M, p)
    t = M[q + CS.share]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + CV.T], M[q + CV.region]
    if R == 0 or O // G == 0 or M[q + CV.block]:
        if t != 0:
            return
        if M[q + CV.block] and R != 0 and O // G != 0:
            _conv_implicit_taps(DY, dyo, DX, dxo, Wt, wo, WS, so, M, q, True)
            return
        for i in range(N * C * M[q + CV.D] * M[q + CV.H] * M[q + CV.W]):
            DX[dxo + i] = 0
        return
    if t < T:
        _bpi_chunks(DY, dyo, Wt, wo, DX, dxo, WS, so + t * size, M, q, t, T)
