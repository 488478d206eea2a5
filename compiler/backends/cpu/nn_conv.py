"""CPU kernels of the conv op family (Conv, ConvBackpropInput, ConvBackpropFilter): templates and lowerings.

One generic 3-d implementation serves 1-d, 2-d and 3-d convolutions: a d-d op is seen as 3-d
with leading spatial dims of size 1 (kernel 1, stride 1, no padding). Samples are processed in
chunks of ``nb``; each chunk's receptive fields are copied once (im2col) into the workspace as
per-group (C/G * prod(K), nb * prod(out)) column matrices, then

- ``conv_fwd``: Y[g] = W[g] @ cols[g], one GEMM per group (straight into Y when nb == 1);
- ``conv_bpf``: dW[g] += dY[g] @ cols[g]^T (the first chunk writes dW, later ones add);
- ``conv_bpi``: cols[g] = W[g]^T @ dY[g], then col2im scatter-adds the columns into dX (each
  (sample, channel) plane zeroed just before, while it is in cache).

A pointwise conv (1x1(x1) kernel, stride 1, no padding) with at least ``POINTWISE_POSITIONS`` outputs
per sample runs one sample per chunk and its GEMMs read X / write dX in place: no im2col, no col2im.

Measured and left out (2-core machine shared with other jobs): ``prange`` over (channel, sample)
planes in im2col/col2im made them 2-4x slower under load (an OpenMP team waits for its slowest
thread, and OpenBLAS's idle threads spin); one GEMM per sample (nb = 1) is slower than chunks; a
stride-1 ``conv_bpi`` as the forward conv of dY with the flipped filter was no faster than col2im.

Record (``CONV_SIZE`` ints): 4 element offsets (the kernel's 2 inputs, output, workspace), then
N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride[3], padding[3], dilation[3], groups, nb.
"""
from __future__ import annotations

import math
from typing import List

from .kernels import lowers

CONV_SIZE = 4 + 23
CHUNK_ELEMENTS = 1 << 22      # the im2col columns of one chunk of samples hold at most this many elements
POINTWISE_POSITIONS = 256     # a pointwise conv with this many outputs per sample skips im2col

SOURCE = '''

@njit(**_JIT)
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


@njit(**_JIT)
def _conv_cols(X, xo, T, to, M, q, n0, m, scatter):
    """im2col of samples [n0, n0 + m) of X (N, C, D, H, W) at xo into T at to, as rows
    (c, kd, kh, kw) by columns (sample, od, oh, ow); with scatter, the reverse: X's planes of these
    samples = col2im(T) (each channel's planes zeroed just before its rows are added)."""
    C = M[q + 1]
    D = M[q + 2]
    H = M[q + 3]
    Wd = M[q + 4]
    KD = M[q + 6]
    KH = M[q + 7]
    KW = M[q + 8]
    OD = M[q + 9]
    OH = M[q + 10]
    OW = M[q + 11]
    sd = M[q + 12]
    sh = M[q + 13]
    sw = M[q + 14]
    P = OD * OH * OW
    cols = m * P
    plane = D * H * Wd
    for c in range(C):
        if scatter:
            for s in range(m):
                xb = xo + ((n0 + s) * C + c) * plane
                for i in range(plane):
                    X[np.uint64(xb + i)] = 0
        for kd in range(KD):
            lod, hid, ofd = _conv_range(OD, kd, sd, M[q + 15], M[q + 18], D)
            for kh in range(KH):
                loh, hih, ofh = _conv_range(OH, kh, sh, M[q + 16], M[q + 19], H)
                for kw in range(KW):
                    low, hiw, ofw = _conv_range(OW, kw, sw, M[q + 17], M[q + 20], Wd)
                    row = to + (((c * KD + kd) * KH + kh) * KW + kw) * cols
                    for s in range(m):
                        xb = xo + ((n0 + s) * C + c) * plane
                        tb = row + s * P
                        for od in range(OD):
                            for oh in range(OH):
                                t = tb + (od * OH + oh) * OW
                                if od < lod or od >= hid or oh < loh or oh >= hih:
                                    if not scatter:
                                        for ow in range(OW):
                                            T[np.uint64(t + ow)] = 0
                                    continue
                                xr = xb + ((od * sd + ofd) * H + oh * sh + ofh) * Wd + ofw
                                if scatter:
                                    for ow in range(low, hiw):
                                        X[np.uint64(xr + ow * sw)] += T[np.uint64(t + ow)]
                                else:
                                    for ow in range(low):
                                        T[np.uint64(t + ow)] = 0
                                    if sw == 1:
                                        for ow in range(low, hiw):
                                            T[np.uint64(t + ow)] = X[np.uint64(xr + ow)]
                                    else:
                                        for ow in range(low, hiw):
                                            T[np.uint64(t + ow)] = X[np.uint64(xr + ow * sw)]
                                    for ow in range(hiw, OW):
                                        T[np.uint64(t + ow)] = 0


@njit(**_JIT)
def _conv_rows(A, ao, B, bo, M, q, n0, m, to_rows):
    """Between (N, O, P) at ao and the chunk layout (O, m, P) at bo: to_rows copies samples
    [n0, n0 + m) of A into B, else B's chunk back into A."""
    O = M[q + 5]
    P = M[q + 9] * M[q + 10] * M[q + 11]
    for s in range(m):
        for o in range(O):
            a = ao + ((n0 + s) * O + o) * P
            b = bo + (o * m + s) * P
            if to_rows:
                for i in range(P):
                    B[np.uint64(b + i)] = A[np.uint64(a + i)]
            else:
                for i in range(P):
                    A[np.uint64(a + i)] = B[np.uint64(b + i)]


@njit(**_JIT)
def _group_cols(T, to, WS, so, n0, C, g, R, P, cols, own):
    """Group g's (R, cols) column matrix: with ``own`` (a pointwise conv, one sample n0) the
    sample's own planes of T at to, read or written in place; else the im2col workspace at so."""
    if own:
        t0 = to + (n0 * C + g * R) * P
        return T[t0:t0 + R * P].reshape((R, P))
    return WS[so + g * R * cols:so + (g + 1) * R * cols].reshape((R, cols))


@njit(**_JIT)
def _conv_dims(M, q):
    """N, C, O, G, nb, R = C/G * prod(K), P = prod(out)."""
    G = M[q + 21]
    R = M[q + 1] // G * M[q + 6] * M[q + 7] * M[q + 8]
    return M[q], M[q + 1], M[q + 5], G, M[q + 22], R, M[q + 9] * M[q + 10] * M[q + 11]


@njit(**_JIT)
def _conv_pointwise(M, q):
    """A 1x1(x1) kernel, stride 1, no padding: a sample's columns are its input planes as they are."""
    return (M[q + 6] == 1 and M[q + 7] == 1 and M[q + 8] == 1 and M[q + 12] == 1 and M[q + 13] == 1
            and M[q + 14] == 1 and M[q + 15] == 0 and M[q + 16] == 0 and M[q + 17] == 0)


@njit(**_JIT)
def conv_fwd(X, Wt, Y, WS, M, E, p):
    """Y (N, O, *out) = Conv(X, W); WS: im2col columns, then the chunk's output rows. A pointwise
    conv with one sample per chunk reads X in place."""
    xo = M[p]
    wo = M[p + 1]
    yo = M[p + 2]
    so = M[p + 3]
    q = p + 4
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    if R == 0:
        for i in range(N * O * P):
            Y[yo + i] = 0
        return
    direct = _conv_pointwise(M, q)
    ro = so + G * R * nb * P
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        if m > 1 or not direct:
            _conv_cols(X, xo, WS, so, M, q, n0, m, False)
        for g in range(G):
            w = Wt[wo + g * Og * R:wo + (g + 1) * Og * R].reshape((Og, R))
            t = _group_cols(X, xo, WS, so, n0, C, g, R, P, cols, m == 1 and direct)
            if m == 1:
                y0 = yo + (n0 * O + g * Og) * P
                np.dot(w, t, Y[y0:y0 + Og * cols].reshape((Og, cols)))
            else:
                y0 = ro + g * Og * cols
                np.dot(w, t, WS[y0:y0 + Og * cols].reshape((Og, cols)))
        if m > 1:
            _conv_rows(Y, yo, WS, ro, M, q, n0, m, False)


@njit(**_JIT)
def conv_bpf(X, DY, DW, WS, M, E, p):
    """DW (O, C/G, *K) = ConvBackpropFilter(X, DY); WS: columns, chunk rows of DY, a GEMM result."""
    xo = M[p]
    dyo = M[p + 1]
    dwo = M[p + 2]
    so = M[p + 3]
    q = p + 4
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    if R == 0:
        return
    if N == 0:
        for i in range(O * R):
            DW[dwo + i] = 0
        return
    direct = _conv_pointwise(M, q)
    ro = so + G * R * nb * P
    tmp = ro + O * nb * P
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        if m > 1 or not direct:
            _conv_cols(X, xo, WS, so, M, q, n0, m, False)
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, M, q, n0, m, True)
        for g in range(G):
            t = _group_cols(X, xo, WS, so, n0, C, g, R, P, cols, m == 1 and direct)
            if m == 1:
                d0 = dyo + (n0 * O + g * Og) * P
                d = DY[d0:d0 + Og * cols].reshape((Og, cols))
            else:
                d = WS[ro + g * Og * cols:ro + (g + 1) * Og * cols].reshape((Og, cols))
            dw = DW[dwo + g * Og * R:dwo + (g + 1) * Og * R]
            if n0 == 0:
                np.dot(d, t.T, dw.reshape((Og, R)))
            else:
                acc = WS[tmp:tmp + Og * R]
                np.dot(d, t.T, acc.reshape((Og, R)))
                for i in range(Og * R):
                    dw[i] += acc[i]


@njit(**_JIT)
def conv_bpi(DY, Wt, DX, WS, M, E, p):
    """DX (N, C, *S) = ConvBackpropInput(DY, W); WS: columns, then chunk rows of DY. A pointwise
    conv with one sample per chunk writes DX in place (no col2im)."""
    dyo = M[p]
    wo = M[p + 1]
    dxo = M[p + 2]
    so = M[p + 3]
    q = p + 4
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    if R == 0 or Og == 0:
        for i in range(N * C * M[q + 2] * M[q + 3] * M[q + 4]):
            DX[dxo + i] = 0
        return
    direct = _conv_pointwise(M, q)
    ro = so + G * R * nb * P
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, M, q, n0, m, True)
        for g in range(G):
            w = Wt[wo + g * Og * R:wo + (g + 1) * Og * R].reshape((Og, R))
            t = _group_cols(DX, dxo, WS, so, n0, C, g, R, P, cols, m == 1 and direct)
            if m == 1:
                d0 = dyo + (n0 * O + g * Og) * P
                d = DY[d0:d0 + Og * cols].reshape((Og, cols))
            else:
                d = WS[ro + g * Og * cols:ro + (g + 1) * Og * cols].reshape((Og, cols))
            np.dot(w.T, d, t)
        if m > 1 or not direct:
            _conv_cols(DX, dxo, WS, so, M, q, n0, m, True)
'''


# -- lowerings ------------------------------------------------------------------------------------

def _as3(values, fill: int) -> list:
    """A d-tuple (d <= 3) as 3 ints, leading dims filled with ``fill``."""
    return [fill] * (3 - len(values)) + list(values)


def _pointwise(attrs: dict, kernel) -> bool:
    """A 1x1(x1) kernel, stride 1, no padding (the kernels' ``_conv_pointwise``)."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in attrs["stride"]) and not any(attrs["padding"])


def _chunk(n: int, cols_per_sample: int, pointwise: bool = False, positions: int = 0) -> int:
    """Samples per chunk: as many as fit ``CHUNK_ELEMENTS`` columns (fewer, larger GEMMs), at least
    one; a pointwise conv with at least ``POINTWISE_POSITIONS`` outputs per sample runs one sample
    per chunk, its GEMMs reading and writing the operands in place (no im2col, no row copies)."""
    if pointwise and positions >= POINTWISE_POSITIONS:
        return 1
    return max(1, min(n, CHUNK_ELEMENTS // max(1, cols_per_sample)))


def _geometry(attrs: dict, xshape, wshape, yshape) -> List[int]:
    """N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride, padding, dilation, groups, nb."""
    n, c = xshape[:2]
    rows = c * math.prod(wshape[2:])
    positions = math.prod(yshape[2:])
    nb = _chunk(n, rows * positions, _pointwise(attrs, wshape[2:]), positions)
    return ([n, c] + _as3(xshape[2:], 1) + [wshape[0]] + _as3(wshape[2:], 1) + _as3(yshape[2:], 1)
            + _as3(attrs["stride"], 1) + _as3(attrs["padding"], 0) + _as3(attrs["dilation"], 1)
            + [attrs["groups"], nb])


def _workspace_size(attrs: dict, xshape, wshape, yshape) -> int:
    """Columns (C * prod(K) rows by nb * prod(out)), the chunk's output rows (O by nb * prod(out))
    and one GEMM result (O/G by C/G * prod(K), for the filter gradient)."""
    nb, positions = _geometry(attrs, xshape, wshape, yshape)[-1], math.prod(yshape[2:])
    rows, groups = xshape[1] * math.prod(wshape[2:]), attrs["groups"]
    return (rows + wshape[0]) * nb * positions + (wshape[0] // groups) * (rows // groups)


def _lower(b, op, kernel: str, inputs, shapes_of, attrs: dict) -> None:
    """One conv kernel call. ``shapes_of(env)``: the shapes of the convolution's input, weight and
    (forward) output."""
    out = op.outputs[0]
    ws = b.workspace(inputs[0].dtype, lambda env: (_workspace_size(attrs, *shapes_of(env)),), "im2col columns")

    def record(env):
        offs = [env.off(inputs[0]), env.off(inputs[1]), env.off(b.write_key(out)), env.off(ws)]
        return offs + _geometry(attrs, *shapes_of(env))
    b.call(kernel, list(inputs), out, record, CONV_SIZE, extra=[ws])


@lowers("Conv")
def _conv(op, b):
    x, w = op.inputs
    y = op.outputs[0]
    _lower(b, op, "conv_fwd", [x, w], lambda env: (env.shape(x), env.shape(w), env.shape(y)), op.attrs)


@lowers("ConvBackpropInput")
def _conv_backprop_input(op, b):
    dy, w, x_like = op.inputs
    _lower(b, op, "conv_bpi", [dy, w], lambda env: (env.shape(x_like), env.shape(w), env.shape(dy)), op.attrs)


@lowers("ConvBackpropFilter")
def _conv_backprop_filter(op, b):
    x, dy, w_like = op.inputs
    _lower(b, op, "conv_bpf", [x, dy], lambda env: (env.shape(x), env.shape(w_like), env.shape(dy)), op.attrs)
