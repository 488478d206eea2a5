"""A convolution fused with the max pooling that reads it (``fuse_pool``), forward and backward.

LeNet's first layer at batch 256 writes a 19 MB conv output that only a max pooling reads, and its
backward writes a 19 MB pooling gradient that only the conv's filter gradient reads: four passes
over memory that cost more than the convolution's arithmetic (``plan.profile()``, b256: conv 4.7 ms,
MaxPool 3.0, MaxPoolGrad 3.2, filter gradient 5.9). Where a conv runs one sample per chunk
(``nn_conv._one_sample``: a sample's columns and output fit in L2), the fused kernels keep each
sample's (O, P) output in the worker's workspace:

- ``conv_pool_fwd_<k1>x<k2>`` / ``conv_pool_fwd_planar`` (``fwd_kernel``): columns, GEMM into the workspace, then max pooling of the sample's planes into
  the pooled values V and indices I. For the windows of ``nn_pool.FAST_WINDOWS`` (any stride and
  dilation) the GEMM writes the output channels-last, Y^T = cols^T @ W^T, and ``_pool_last_<k1>x<k2>`` pools
  it with the channels innermost (unit-stride loads, vectorized; LeNet's rows of 8 windows kept the
  planar row loop scalar), adding the fused bias to each value it reads: LeNet's conv1 sample 18 ->
  ~13 us (GEMM 7.1 -> 7.4, bias pass 1.7 and pooling 9.3 -> 6.9, measured standalone); plan
  profile, LeNet b64: 0.84 -> 0.62 ms. Other windows: Y = W @ cols, the bias added in place, then
  ``_pool_max_full`` (``pool_max_full``'s loops). Both follow ``pool_max``'s first-maximum and
  NaN rules. The conv output is never written.
- ``conv_pool_bpf``: the sample's output gradient is rebuilt in the workspace from the pooled
  gradient and I (``_pool_unpool``: ``pool_max_grad``'s own loop, for that sample, written
  transposed), then the filter gradient's GEMM reads it there; the fused bias gradient sums the
  pooled gradient itself (the same sums up to rounding, over 1/k of the values). The pooling
  gradient is never written.

Applies to im2col convs with one sample per chunk whose output is read only by a max pooling over
all its spatial dims with every window inside the input (no padding, no clipped ``ceil_mode``
window); the backward half where the pooling gradient is read only by that filter gradient (not
by the input gradient). The kernels split samples over workers like ``conv_fwd``/``conv_bpf``
(the same record and workspace), so they reuse the conv family's helpers.

They are kernels of their own, not modes of ``conv_fwd``/``conv_bpf``: measured in the same minutes
(fresh cache, float32), ``conv_fwd`` with the pooling as a record-flagged mode (and an int64
indices argument) compiled in 81 s against 50 s without, and ``conv_bpf`` in 42 s against ~27: a
``prange`` body's compile grows with everything it calls, so every conv would pay that for a path
only LeNet-like layers take. As separate kernels only plans that fuse compile them (conv_pool_fwd
37.5 s, conv_pool_bpf 10 s).

Record: the conv kernel's (``nn_conv.ConvRecord``: 4 offsets, geometry, fused bias, kept columns:
always -1 here, ``keep_columns`` skips one-sample convs), then
(forward) the indices' offset, the pooled dims o0-o2, kernel, stride and dilation (3 each);
(backward) the indices' offset and the pooled plane size.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

from . import nn_conv, nn_pool
from .lowerings import Env, Phase, runs_in_phases
from .records import CONV, CONV_POOL_BPF, CONV_POOL_FWD, RecordSpec

FWD_SIZE = CONV_POOL_FWD.size
BPF_SIZE = CONV_POOL_BPF.size

# the channels-last forward kernels, one per window of ``nn_pool.FAST_WINDOWS`` (each compiles its own
# unrolled pooling loop alone), and the planar one of the other windows
LAST_KERNELS = tuple(f"conv_pool_fwd_{k1}x{k2}" for k1, k2 in nn_pool.FAST_WINDOWS)
FWD_KERNELS = LAST_KERNELS + ("conv_pool_fwd_planar",)


def fwd_kernel(kernel_size) -> str:
    """The forward kernel of a pooling window (1-3 dims): ``conv_pool_fwd_<k1>x<k2>`` where it has
    an unrolled channels-last loop (``nn_pool.channels_last``), else ``conv_pool_fwd_planar``."""
    if not nn_pool.channels_last(kernel_size):
        return "conv_pool_fwd_planar"
    k1, k2 = nn_pool._as3(kernel_size, len(kernel_size), 1)[1:]
    return f"conv_pool_fwd_{k1}x{k2}"


def _static(shape) -> bool:
    return shape is not None and None not in tuple(shape)[1:]


def _one_sample_im2col(conv_op, x, w, y) -> bool:
    """A conv call that runs im2col one sample per chunk at any batch size (static shapes but the
    batch; ``x``, ``w``, ``y``: the convolution's input, weight and output tensors)."""
    if not (_static(x.shape) and _static(w.shape) and _static(y.shape)):
        return False
    xs, ws, ys = (1, *x.shape[1:]), tuple(w.shape), (1, *y.shape[1:])
    if nn_conv.implicit(conv_op.attrs, xs, ws, ys) or not math.prod(ws[1:]) or not ws[0]:
        return False
    per_sample = xs[1] // conv_op.attrs["groups"] * math.prod(ws[2:]) * math.prod(ys[2:])
    return nn_conv._one_sample(conv_op.attrs, ws, ys, per_sample)


def _windows_inside(pool_op) -> bool:
    """A max pooling over all its input's spatial dims, no padding, every window inside the input."""
    (y,), pooled = pool_op.inputs, pool_op.outputs[0]
    attrs, k = pool_op.attrs, len(pool_op.attrs["kernel_size"])
    if k != len(y.shape) - 2 or not _static(y.shape) or not _static(pooled.shape):
        return False
    return nn_pool.windows_inside(y.shape[2:], pooled.shape[2:], attrs["kernel_size"], attrs["stride"],
                                  attrs["padding"], attrs.get("dilation", (1,) * k))


def _only_readers(prog, readers, viewed, key, calls) -> bool:
    """``calls`` are all that read ``key`` (no fetch, view or write-back reads it)."""
    assigned = {value for _, value, _, _ in prog.assigns}
    return readers.get(key, 0) == len(calls) and key not in viewed and key not in assigned


def _with_tail(spec: RecordSpec, conv_record: nn_conv.ConvRecord, tail: Callable[[Env], dict]) -> Callable[[Env], list]:
    """The record function of a fused kernel: the conv's record and the pooling's fields (``spec``)."""
    return lambda env: spec.pack(dict(conv_record.fields(env), **tail(env)))


def _pool_tail(pool_op, pooled, indices) -> Callable[[Env], dict]:
    """The forward record's tail (``records.CONV_POOL_FWD``): the indices' offset, then the pooled
    dims, the pooling's kernel, stride, dilation."""
    k = len(pool_op.attrs["kernel_size"])
    dilation = pool_op.attrs.get("dilation", (1,) * k)
    fixed = dict(pool_kernel=nn_pool._as3(pool_op.attrs["kernel_size"], k, 1),
                 pool_stride=nn_pool._as3(pool_op.attrs["stride"], k, 1), pool_dilation=nn_pool._as3(dilation, k, 1))
    return lambda env: dict(fixed, i_off=env.off(indices), pool_out=nn_pool._as3(env.shape(pooled)[2:], k, 1))


def _shares_of(prog, kernels: Sequence[str], arg: int) -> dict:
    """{args[arg] key: the calls of one of ``kernels`` (the shares of one op) that have it there}."""
    found = {}
    for call in prog.calls:
        if call.kernel in kernels:
            found.setdefault(call.args[arg], []).append(call)
    return {k: v for k, v in found.items() if len({c.op for c in v}) == 1}


def fuse_pool(lowering) -> None:
    """A one-sample im2col ``conv_fwd`` whose output only a max pooling reads becomes one
    ``conv_pool_fwd_*`` call (the pooling's calls are dropped); a one-sample im2col ``conv_bpf``
    whose output gradient only it reads, written by a ``pool_max_grad``, becomes ``conv_pool_bpf``
    (the pooling gradient's calls are dropped). After ``fuse_bias`` and ``fuse_bias_grad``,
    whose fused forms both kernels keep."""
    prog = lowering.prog
    readers, viewed = lowering._readers()
    pools = _shares_of(prog, nn_pool.MAX_POOL_KERNELS, 0)
    for conv in [c for c in prog.calls if c.kernel == "conv_fwd"]:
        x, w, y, ws = conv.args
        shares = pools.get(y)
        if not shares or not _only_readers(prog, readers, viewed, y, shares):
            continue
        pool_op, (values, indices) = shares[0].op, shares[0].args[1:3]
        if not (_one_sample_im2col(conv.op, *conv.op.inputs, conv.op.outputs[0]) and _windows_inside(pool_op)):
            continue
        conv.record = _with_tail(CONV_POOL_FWD, replace(conv.record, out=values), _pool_tail(pool_op, values, indices))
        conv.kernel = fwd_kernel(pool_op.attrs["kernel_size"])
        conv.size, conv.n_in, conv.args = FWD_SIZE, 2, (x, w, values, indices, ws)
        ws.shape_fn = lambda env, f=ws.shape_fn, w=w: (f(env)[0] + math.prod(env.shape(w)),)    # + W^T
        ws.why += ", W^T"
        for share in shares:
            prog.calls.remove(share)
    grads = _shares_of(prog, ("pool_max_grad",), 2)
    for conv in [c for c in prog.calls if c.kernel == "conv_bpf"]:
        x, dy, dw, ws, bg = conv.args
        shares = grads.get(dy)
        if not shares or not _only_readers(prog, readers, viewed, dy, [conv]):
            continue
        g, idx = shares[0].args[:2]
        x_, dy_, w_ = conv.op.inputs
        if shares[0].op.attrs["spatial_dims"] != len(dy_.shape) - 2 or not _one_sample_im2col(conv.op, x_, w_, dy_):
            continue
        conv.record = _with_tail(CONV_POOL_BPF, replace(conv.record, w=g),
                                 lambda env, idx=idx, g=g: dict(i_off=env.off(idx), pool_plane=math.prod(env.shape(g)[2:])))
        conv.kernel, conv.size, conv.n_in, conv.args = "conv_pool_bpf", BPF_SIZE, 3, (x, g, idx, dw, ws, bg)
        for share in shares:
            prog.calls.remove(share)



def _workers(rec: list) -> int:
    """The workers of a conv-family record (``records.CONV``'s T)."""
    return rec[CONV.at.T]


# The kernels run in phases (``lowerings.PHASES``): conv_pool_fwd_<k1>x<k2> (X, W, V, I, WS): W^T (channels-last
# windows), then the samples' shares on the kernel workers; conv_pool_bpf (X, Gp, I, dW, WS, BG): the workers' partial
# filter gradients, then their sum (and the fused bias gradient)
for _name in LAST_KERNELS:
    runs_in_phases(_name, _workers, Phase("conv_pool_wt", (1, 4), 1, False), Phase(_name, (0, 1, 2, 3, 4), 2, True))
runs_in_phases("conv_pool_fwd_planar", _workers, Phase("conv_pool_fwd_planar", (0, 1, 2, 3, 4), 2, True))
runs_in_phases("conv_pool_bpf", _workers, Phase("conv_pool_bpf", (0, 1, 2, 4), 3, True),
               Phase("conv_pool_bpf_reduce", (3, 4, 5), 0, False))
