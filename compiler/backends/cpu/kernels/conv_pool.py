"""A convolution fused with the max pooling that reads it, forward and backward (``nn_conv_pool.fuse_pool``).

The algorithms and the record are described in ``nn_conv_pool.py`` (the lowering side)."""
import numpy as np
from numba import njit

from ..records import CONV_POOL_BPF, CONV_POOL_BPF_SHARE, CONV_POOL_FWD, CONV_POOL_FWD_SHARE
from .base import HELPER, JIT, NT, OFF, ON, ONE, TR, ZERO
from .gemm import _copy_transposed, _gemm
from .conv import _bias_grad, _bias_sums, _bpf_reduce, _conv_bias, _conv_cols, _conv_dims, _conv_offsets, _conv_pointwise, _group_cols
from .pool import _pool_last_2x2, _pool_last_3x3, _pool_lowest, _pool_max_full, _pool_unpool

FW = CONV_POOL_FWD.at     # conv_pool_fwd's record: the conv's, then the pooling's (records.py)
BW = CONV_POOL_BPF.at     # conv_pool_bpf's
FS, BS = CONV_POOL_FWD_SHARE.at, CONV_POOL_BPF_SHARE.at     # ... and their shares' (the share's index)


@njit(**HELPER)
def _conv_pool_sample(X, xo, Wt, wo, WS, so, wt, ys, M, q, n, last):
    """Sample n's columns at so and its conv output at ys: Y^T (P, O) = cols^T @ W^T (W^T at wt)
    where ``last`` (channels-last pooling), else Y (O, P) = W @ cols."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    Og = O // G
    direct = _conv_pointwise(M, q)
    if not direct:      # one sample, straight (``_chunk_cols``'s one path these kernels take)
        _conv_cols(X, xo, WS, so, M, q, n, ONE, OFF, ONE)
    for g in range(G):
        t_, to = _group_cols(X, xo, WS, so, n, C, g, R, P, P, direct)
        if last:
            _gemm(TR, NT, P, Og, R, 1.0, t_, to, P, WS, wt + g * Og, O, 0.0, WS, ys + g * Og, O)
        else:
            _gemm(NT, NT, Og, P, R, 1.0, Wt, wo + g * Og * R, R, t_, to, P, 0.0, WS, ys + g * Og * P, P)


@njit(**JIT)
def conv_pool_wt(Wt, WS, M, E, p):
    """W^T (R, O) after the workers' regions: the first phase of ``conv_pool_fwd_<k1>x<k2>``."""
    q = p
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    _copy_transposed(Wt, M[q + FW.w_off], O, R, R, WS, M[q + FW.ws_off] + M[q + FW.T] * M[q + FW.region])


@njit(**HELPER)
def _conv_pool_share(M, p):
    """A forward share's record start, index t, workers T, its region so, W^T's place wt, its conv
    output's place ys (after the sample's columns) and the pooled dims."""
    q = p
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + FW.T], M[q + FW.region]
    t = M[q + FS.share]
    so = M[q + FW.ws_off] + t * size
    return (q, t, T, so, M[q + FW.ws_off] + T * size, so + G * R * P, M[q + FW.pool_out], M[q + FW.pool_out + 1],
            M[q + FW.pool_out + 2])


@njit(**HELPER)
def _conv_pool_last(M, q):
    """What the channels-last pooling reads of a forward record: the conv output's rows OH, OW, the
    pooling's strides s0-s2 and dilations d1, d2, whether a bias is fused, and its offset bo."""
    hasb = M[q + FW.has_bias] != 0
    return (M[q + FW.OH], M[q + FW.OW], M[q + FW.pool_stride], M[q + FW.pool_stride + 1], M[q + FW.pool_stride + 2],
            M[q + FW.pool_dilation + 1], M[q + FW.pool_dilation + 2], hasb, M[q + FW.bias_off] if hasb else M[q + FW.w_off])


# One kernel per window of ``nn_pool.FAST_WINDOWS``, so that each compiles its own unrolled loop
# alone. They differ only in that loop: passed as an argument, a function made the wrapper
# uncacheable (Numba: "uses dynamic globals").

@njit(**JIT)
def conv_pool_fwd_2x2(X, Wt, V, I, WS, M, E, p):
    """Share t of V, I = MaxPool(Conv(X, W)) (values, indices) of 2x2 windows: per sample t,
    t + T, ... in the worker's region, the output Y^T (P, O) = cols^T @ W^T, then
    ``_pool_last_2x2`` pools it with the channels innermost, adding the bias to each value it
    reads (phases: ``conv_pool_wt``, then these shares on the kernel workers)."""
    q, t, T, so, wt, ys, o0, o1, o2 = _conv_pool_share(M, p)
    n1, n2, s0, s1, s2, d1, d2, hasb, bo = _conv_pool_last(M, q)
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    step = O * o0 * o1 * o2      # a sample's pooled elements
    for n in range(t, N if t < T else 0, T):
        _conv_pool_sample(X, M[q + FW.x_off], Wt, M[q + FW.w_off], WS, so, wt, ys, M, q, n, ON)
        _pool_last_2x2(WS, ys, O, n1, n2, V, I, M[q + FW.y_off] + n * step, M[q + FW.i_off] + n * step,
                       o0, o1, o2, s0, s1, s2, d1, d2, Wt, bo, hasb)


@njit(**JIT)
def conv_pool_fwd_3x3(X, Wt, V, I, WS, M, E, p):
    """``conv_pool_fwd_2x2`` of 3x3 windows (``_pool_last_3x3``)."""
    q, t, T, so, wt, ys, o0, o1, o2 = _conv_pool_share(M, p)
    n1, n2, s0, s1, s2, d1, d2, hasb, bo = _conv_pool_last(M, q)
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    step = O * o0 * o1 * o2
    for n in range(t, N if t < T else 0, T):
        _conv_pool_sample(X, M[q + FW.x_off], Wt, M[q + FW.w_off], WS, so, wt, ys, M, q, n, ON)
        _pool_last_3x3(WS, ys, O, n1, n2, V, I, M[q + FW.y_off] + n * step, M[q + FW.i_off] + n * step,
                       o0, o1, o2, s0, s1, s2, d1, d2, Wt, bo, hasb)


@njit(**JIT)
def conv_pool_fwd_planar(X, Wt, V, I, WS, M, E, p):
    """Share t of ``conv_pool_fwd_<k1>x<k2>`` for other windows: per sample Y (O, P) = W @ cols, the bias
    added in place, then ``_pool_max_full`` (``pool_max_full``'s loops: these windows have no
    unrolled rows loop, since ``nn_pool.channels_last`` takes every window that has one)."""
    q, t, T, so, wt, ys, o0, o1, o2 = _conv_pool_share(M, p)
    if t >= T:
        return
    xo, wo, vo, io = M[q + FW.x_off], M[q + FW.w_off], M[q + FW.y_off], M[q + FW.i_off]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    oplane = o0 * o1 * o2
    low = _pool_lowest(V)
    for n in range(t, N, T):
        _conv_pool_sample(X, xo, Wt, wo, WS, so, so, ys, M, q, n, OFF)
        if M[q + FW.has_bias] != 0:
            _conv_bias(WS, ys, Wt, M[q + FW.bias_off], ZERO, ONE, O, P)
        _pool_max_full(WS, V, I, ys, vo + n * O * oplane, io + n * O * oplane, O, M[q + FW.OH], M[q + FW.OW],
                       o0, o1, o2, M[q + FW.pool_kernel], M[q + FW.pool_kernel + 1], M[q + FW.pool_kernel + 2],
                       M[q + FW.pool_stride], M[q + FW.pool_stride + 1], M[q + FW.pool_stride + 2],
                       M[q + FW.pool_dilation], M[q + FW.pool_dilation + 1], M[q + FW.pool_dilation + 2], P,
                       oplane, low)


@njit(**HELPER)
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
    oplane = M[q + BW.pool_plane]
    if bs >= 0:
        for i in range(O * oplane):
            WS[np.uint64(bs + i)] = 0
    for n in range(t, N, T):
        if not direct:
            _conv_cols(X, xo, WS, so, M, q, n, ONE, OFF, ONE)
        # MaxPoolGrad of the sample, as (P, O)
        _pool_unpool(Gp, go + n * O * oplane, I, io + n * O * oplane, WS, ds, O, P, oplane, ONE, O)
        for g in range(G):
            t_, to = _group_cols(X, xo, WS, so, n, C, g, R, P, P, direct)
            _gemm(NT, NT, R, Og, P, 1.0, t_, to, P, WS, ds + g * Og, O, 0.0 if n == t else 1.0,
                  WS, acc + g * R * Og, Og)
        if bs >= 0:
            _bias_sums(Gp, go + n * O * oplane, WS, bs, ZERO, ONE, O, oplane)


@njit(**HELPER)
def _pool_bpf_layout(M, q):
    """Where the workers' partial filter gradients and bias sums start (``conv_bpf``'s layout)."""
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + BW.T], M[q + BW.region]
    parts = M[q + BW.ws_off] + T * size
    return parts, parts + T * O * R


@njit(**JIT)
def conv_pool_bpf(X, Gp, I, WS, M, E, p):
    """Share t of DW = ConvBackpropFilter(X, MaxPoolGrad(Gp, I)) without the pooling gradient in
    memory: the worker's partial filter gradient (and bias sums) over samples t, t + T, ...
    (phases: these shares on the kernel workers, then ``conv_pool_bpf_reduce``)."""
    xo, go, dwo, so, q = _conv_offsets(M, p)
    t = M[q + BS.share]
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T, size = M[q + BW.T], M[q + BW.region]
    if t >= T:
        return
    parts, sums = _pool_bpf_layout(M, q)
    oplane = M[q + BW.pool_plane]
    bs = sums + t * O * oplane if M[q + BW.has_bias] != 0 else -1
    if N == 0:      # one worker: no samples, zero sums
        for i in range(O * R):
            WS[np.uint64(parts + i)] = 0
        for i in range(O * oplane if bs >= 0 else 0):
            WS[np.uint64(bs + i)] = 0
        return
    _pool_bpf_samples(X, xo, Gp, go, I, M[q + BW.i_off], WS, parts + t * O * R, so + t * size, bs, M, q, t, T)


@njit(**JIT)
def conv_pool_bpf_reduce(DW, WS, BG, M, E, p):
    """DW = the workers' partial filter gradients summed, and the fused bias gradient into BG."""
    q = p
    N, C, O, G, nb, R, P = _conv_dims(M, q)
    T = M[q + BW.T]
    parts, sums = _pool_bpf_layout(M, q)
    _bpf_reduce(DW, M[q + BW.y_off], WS, parts, T, O, G, R, ON)
    if M[q + BW.has_bias] != 0:
        _bias_grad(BG, M[q + BW.bias_off], WS, sums, T, O, M[q + BW.pool_plane])
