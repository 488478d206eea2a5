"""CPU kernels of the conv op family (Conv, ConvBackpropInput, ConvBackpropFilter): templates and lowerings.

One generic 3-d implementation serves 1-d, 2-d and 3-d convolutions: a d-d op is seen as 3-d
with leading spatial dims of size 1 (kernel 1, stride 1, no padding). Samples are processed in
chunks of ``nb``; each chunk's receptive fields are copied once (im2col) into the workspace as
per-group (C/G * prod(K), nb * prod(out)) column matrices, then

- ``conv_fwd``: Y[g] = W[g] @ cols[g], one GEMM per group (straight into Y when nb == 1);
- ``conv_bpf``: dW[g] += dY[g] @ cols[g]^T (the first chunk writes dW, later ones add);
- ``conv_bpi``: cols[g] = W[g]^T @ dY[g], then col2im scatter-adds the columns into dX.

Record (``CONV_SIZE`` ints): 4 element offsets (the kernel's 2 inputs, output, workspace), then
N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride[3], padding[3], dilation[3], groups, nb.
"""
from __future__ import annotations

import math
from typing import List

from .kernels import lowers

CONV_SIZE = 4 + 23
CHUNK_ELEMENTS = 1 << 22      # the im2col columns of one chunk of samples hold at most this many elements

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
    (c, kd, kh, kw) by columns (sample, od, oh, ow); with scatter, the reverse: X += col2im(T)."""
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
    for c in range(C):
        for kd in range(KD):
            lod, hid, ofd = _conv_range(OD, kd, sd, M[q + 15], M[q + 18], D)
            for kh in range(KH):
                loh, hih, ofh = _conv_range(OH, kh, sh, M[q + 16], M[q + 19], H)
                for kw in range(KW):
                    low, hiw, ofw = _conv_range(OW, kw, sw, M[q + 17], M[q + 20], Wd)
                    row = to + (((c * KD + kd) * KH + kh) * KW + kw) * cols
                    for s in range(m):
                        xb = xo + ((n0 + s) * C + c) * D * H * Wd
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
                    B[b + i] = A[a + i]
            else:
                for i in range(P):
                    A[a + i] = B[b + i]


@njit(**_JIT)
def _conv_dims(M, q):
    """N, C, O, G, nb, R = C/G * prod(K), P = prod(out)."""
    G = M[q + 21]
    R = M[q + 1] // G * M[q + 6] * M[q + 7] * M[q + 8]
    return M[q], M[q + 1], M[q + 5], G, M[q + 22], R, M[q + 9] * M[q + 10] * M[q + 11]


@njit(**_JIT)
def conv_fwd(X, Wt, Y, WS, M, E, p):
    """Y (N, O, *out) = Conv(X, W); WS: im2col columns, then the chunk's output rows."""
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
    ro = so + G * R * nb * P
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        _conv_cols(X, xo, WS, so, M, q, n0, m, False)
        for g in range(G):
            w = Wt[wo + g * Og * R:wo + (g + 1) * Og * R].reshape((Og, R))
            t = WS[so + g * R * cols:so + (g + 1) * R * cols].reshape((R, cols))
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
    ro = so + G * R * nb * P
    tmp = ro + O * nb * P
    if N == 0:
        for i in range(O * R):
            DW[dwo + i] = 0
        return
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        _conv_cols(X, xo, WS, so, M, q, n0, m, False)
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, M, q, n0, m, True)
        for g in range(G):
            t = WS[so + g * R * cols:so + (g + 1) * R * cols].reshape((R, cols))
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
    """DX (N, C, *S) = ConvBackpropInput(DY, W); WS: columns, then chunk rows of DY."""
    dyo = M[p]
    wo = M[p + 1]
    dxo = M[p + 2]
    so = M[p + 3]
    q = p + 4
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    for i in range(N * C * M[q + 2] * M[q + 3] * M[q + 4]):
        DX[dxo + i] = 0
    if R == 0 or Og == 0:
        return
    ro = so + G * R * nb * P
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = m * P
        if m > 1:
            _conv_rows(DY, dyo, WS, ro, M, q, n0, m, True)
        for g in range(G):
            w = Wt[wo + g * Og * R:wo + (g + 1) * Og * R].reshape((Og, R))
            t = WS[so + g * R * cols:so + (g + 1) * R * cols].reshape((R, cols))
            if m == 1:
                d0 = dyo + (n0 * O + g * Og) * P
                d = DY[d0:d0 + Og * cols].reshape((Og, cols))
            else:
                d = WS[ro + g * Og * cols:ro + (g + 1) * Og * cols].reshape((Og, cols))
            np.dot(w.T, d, t)
        _conv_cols(DX, dxo, WS, so, M, q, n0, m, True)
'''


# -- lowerings ------------------------------------------------------------------------------------

def _as3(values, fill: int) -> list:
    """A d-tuple (d <= 3) as 3 ints, leading dims filled with ``fill``."""
    return [fill] * (3 - len(values)) + list(values)


def _chunk(n: int, cols_per_sample: int) -> int:
    """Samples per chunk: as many as fit ``CHUNK_ELEMENTS`` columns (fewer, larger GEMMs), at least one."""
    return max(1, min(n, CHUNK_ELEMENTS // max(1, cols_per_sample)))


def _geometry(op, xshape, wshape, yshape) -> List[int]:
    """N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride, padding, dilation, groups, nb."""
    a = op.attrs
    groups = a["groups"]
    n, c = xshape[:2]
    rows = c * math.prod(wshape[2:])
    nb = _chunk(n, rows * math.prod(yshape[2:]))
    return ([n, c] + _as3(xshape[2:], 1) + [wshape[0]] + _as3(wshape[2:], 1) + _as3(yshape[2:], 1)
            + _as3(a["stride"], 1) + _as3(a["padding"], 0) + _as3(a["dilation"], 1) + [groups, nb])


def _workspace_size(op, xshape, wshape, yshape) -> int:
    """Columns (C * prod(K) rows by nb * prod(out)), the chunk's output rows (O by nb * prod(out))
    and one GEMM result (O/G by C/G * prod(K), for the filter gradient)."""
    nb, positions = _geometry(op, xshape, wshape, yshape)[-1], math.prod(yshape[2:])
    rows, groups = xshape[1] * math.prod(wshape[2:]), op.attrs["groups"]
    return (rows + wshape[0]) * nb * positions + (wshape[0] // groups) * (rows // groups)


def _lower(b, op, kernel: str, inputs, x_of, w_of, y_of) -> None:
    """One conv kernel call: ``x_of``/``w_of``/``y_of`` are the tensors whose shapes are the
    convolution's input, weight and (forward) output."""
    out = op.outputs[0]

    def shapes(env):
        return env.shape(x_of), env.shape(w_of), env.shape(y_of)
    ws = b.workspace(inputs[0].dtype, lambda env: (_workspace_size(op, *shapes(env)),), "im2col columns")

    def record(env):
        offs = [env.off(inputs[0]), env.off(inputs[1]), env.off(b.write_key(out)), env.off(ws)]
        return offs + _geometry(op, *shapes(env))
    b.call(kernel, list(inputs), out, record, CONV_SIZE, extra=[ws])


@lowers("Conv")
def _conv(op, b):
    x, w = op.inputs
    _lower(b, op, "conv_fwd", [x, w], x, w, op.outputs[0])


@lowers("ConvBackpropInput")
def _conv_backprop_input(op, b):
    dy, w, x_like = op.inputs
    _lower(b, op, "conv_bpi", [dy, w], x_like, w, dy)


@lowers("ConvBackpropFilter")
def _conv_backprop_filter(op, b):
    x, dy, w_like = op.inputs
    _lower(b, op, "conv_bpf", [x, dy], x, w_like, dy)
