"""A convolution fused with the max pooling that reads it, forward and backward (``nn_conv_pool.fuse_pool``).

The algorithms and the record are described in ``nn_conv_pool.py`` (the lowering side)."""
import numpy as np
from numba import njit, prange

from .base import JIT, NT, OFF, ON, ONE, PJIT, TR, ZERO
from .gemm import _blas_at_most, _blas_restore, _copy_transposed, _gemm
from .conv import _bias_grad, _bias_sums, _bpf_reduce, _chunk_cols, _conv_bias, _conv_dims, _conv_offsets, _conv_pointwise, _group_cols
from .pool import _pool_last, _pool_last_fast, _pool_lowest, _pool_max_inside, _pool_unpool


@njit(**JIT)
def _conv_pool_samples(X, xo, Wt, wo, V, vo, I, io, WS, so, wt, M, q, t, T):
    """Samples t, t + T, ...: the sample's columns at so, its conv output after them, then its O
    planes max-pooled into V and I. Windows with an unrolled channels-last loop
    (``_pool_last_fast``): the output is Y^T (P, O) = cols^T @ W^T (W^T at wt) and the pooling
    adds the bias to each value it reads; else Y (O, P) = W @ cols, the bias added in place,
    then ``_pool_max_inside``."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    ys = so + G * R * P
    u = q + 31
    o0, o1, o2 = M[u], M[u + 1], M[u + 2]
    oplane = o0 * o1 * o2
    low = _pool_lowest(V)
    last = _pool_last_fast(M[u + 3], M[u + 4], M[u + 5])
    hasb = M[q + 27] != 0
    bo = M[q + 28] if hasb else wo
    for n in range(t, N, T):
        _chunk_cols(X, xo, WS, so, so, M, q, n, ONE, OFF, direct, False)
        for g in range(G):
            t_, to = _group_cols(X, xo, WS, so, n, C, g, R, P, P, direct)
            if last:
                _gemm(TR, NT, P, Og, R, 1.0, t_, to, P, WS, wt + g * Og, O, 0.0, WS, ys + g * Og, O)
            else:
                _gemm(NT, NT, Og, P, R, 1.0, Wt, wo + g * Og * R, R, t_, to, P, 0.0, WS, ys + g * Og * P, P)
        if last:
            _pool_last(WS, ys, O, M[q + 10], M[q + 11], V, I, vo + n * O * oplane, io + n * O * oplane,
                       o0, o1, o2, M[u + 4], M[u + 5], M[u + 6], M[u + 7], M[u + 8], M[u + 10], M[u + 11],
                       Wt, bo, hasb)
            continue
        if hasb:
            _conv_bias(WS, ys, Wt, bo, ZERO, ONE, O, P)
        _pool_max_inside(WS, V, I, ys, vo + n * O * oplane, io + n * O * oplane, O, M[q + 10], M[q + 11],
                         o0, o1, o2, M[u + 3], M[u + 4], M[u + 5], M[u + 6], M[u + 7], M[u + 8],
                         M[u + 9], M[u + 10], M[u + 11], P, oplane, low)


@njit(**PJIT)
def conv_pool_fwd(X, Wt, V, I, WS, M, E, p):
    """V, I = MaxPool(Conv(X, W)) (values, indices), one sample at a time over the record's workers
    (W^T after the workers' regions, for the channels-last windows)."""
    xo, wo, vo, so, q = _conv_offsets(M, p)
    io = M[q + 30]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + 25], M[q + 26]
    wt = so + T * size
    pq = q + 31        # the pooling's record: pooled dims, then its kernel at pq + 3
    if _pool_last_fast(M[pq + 3], M[pq + 4], M[pq + 5]):
        _copy_transposed(Wt, wo, O, R, R, WS, wt)      # W^T (R, O)
    if T == 1:
        _conv_pool_samples(X, xo, Wt, wo, V, vo, I, io, WS, so, wt, M, q, np.int64(0), np.int64(1))
        return
    nt = _blas_at_most(ONE)
    for u in prange(T):
        t = np.int64(u)     # prange's index is unsigned: callees typed for int64 are reused
        _conv_pool_samples(X, xo, Wt, wo, V, vo, I, io, WS, so + t * size, wt, M, q, t, T)
    _blas_restore(ONE, nt)


@njit(**JIT)
def _pool_bpf_samples(X, xo, Gp, go, I, io, WS, acc, so, bs, M, q, t, T):
    """Samples t, t + T, ... of the filter gradient summed into WS at acc as (R, O/G) blocks (the
    first sample writes them); the sample's output gradient rebuilt after its columns at so,
    transposed (P, O), so that dW^T = cols @ dY^T reads both operands as they are (OpenBLAS, one
    thread, LeNet's conv1 sample: 7.4 us against 11.3 for either orientation reading dY as (O, P),
    whose GEMMs read one operand transposed); with bs >= 0 its *pooled*
    gradient planes summed into the bias accumulators at bs (``_bias_sums``): each pooled gradient
    lands on one conv output position, so a channel's sum is the same (up to rounding) over 1/9 of
    the values for LeNet's 3x3 windows."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    ds = so + G * R * P
    oplane = M[q + 31]
    if bs >= 0:
        for i in range(O * oplane):
            WS[np.uint64(bs + i)] = 0
    for n in range(t, N, T):
        _chunk_cols(X, xo, WS, so, so, M, q, n, ONE, OFF, direct, False)
        # MaxPoolGrad of the sample, as (P, O)
        _pool_unpool(Gp, go + n * O * oplane, I, io + n * O * oplane, WS, ds, O, P, oplane, ONE, O)
        for g in range(G):
            t_, to = _group_cols(X, xo, WS, so, n, C, g, R, P, P, direct)
            _gemm(NT, NT, R, Og, P, 1.0, t_, to, P, WS, ds + g * Og, O, 0.0 if n == t else 1.0,
                  WS, acc + g * R * Og, Og)
        if bs >= 0:
            _bias_sums(Gp, go + n * O * oplane, WS, bs, ZERO, ONE, O, oplane)


@njit(**PJIT)
def _pool_bpf_workers(X, xo, Gp, go, I, io, WS, so, parts, sums, M, q):
    """``_pool_bpf_samples`` over the record's T > 1 workers (regions as in ``_bpf_workers``). The
    same dispatch as ``_bpf_workers``, on purpose not shared: a helper calling either chunk loop
    links (and compiles) both into each kernel (see ``conv_bpi``)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + 25], M[q + 26]
    nt = _blas_at_most(ONE)
    for u in prange(T):
        t = np.int64(u)     # prange's index is unsigned: callees typed for int64 are reused
        bs = sums + t * O * M[q + 31] if sums >= 0 else -1
        _pool_bpf_samples(X, xo, Gp, go, I, io, WS, parts + t * O * R, so + t * size, bs, M, q, t, T)
    _blas_restore(ONE, nt)


@njit(**JIT)
def conv_pool_bpf(X, Gp, I, DW, WS, BG, M, E, p):
    """DW = ConvBackpropFilter(X, MaxPoolGrad(Gp, I)) without the pooling gradient in memory (and
    the fused bias gradient into BG, as ``conv_bpf``)."""
    xo, go, dwo, so, q = _conv_offsets(M, p)
    io = M[q + 30]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + 25], M[q + 26]
    parts = so + T * size          # the workers' partial filter gradients (``conv_bpf``'s workspace layout)
    sums = parts + T * O * R
    oplane = M[q + 31]
    bias = M[q + 27] != 0
    if N == 0:
        for i in range(O * R):
            DW[dwo + i] = 0
        if bias:
            for i in range(O * oplane):
                WS[sums + i] = 0
    else:
        if T == 1:
            _pool_bpf_samples(X, xo, Gp, go, I, io, WS, parts, so, sums if bias else -1, M, q, np.int64(0), np.int64(1))
        else:
            _pool_bpf_workers(X, xo, Gp, go, I, io, WS, so, parts, sums if bias else -1, M, q)
        _bpf_reduce(DW, dwo, WS, parts, T, O, G, R, ON)
    if bias:
        _bias_grad(BG, M[q + 28], WS, sums, T if N else 1, O, oplane)
