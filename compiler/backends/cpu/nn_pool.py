"""CPU kernels of the pool op family (MaxPool, MaxPoolGrad, MaxPoolGather, AvgPool, AvgPoolGrad): templates and lowerings.

One generic kernel per op type, for 1-3 spatial axes: a pooling over ``k`` axes is run as a 3-D one
whose first ``3 - k`` axes have size 1 (kernel 1, stride 1, no padding); all leading axes are one
flat axis of planes. Semantics are the reference's (``staticgraph/ops/pool.py``, PyTorch's): flat
per-plane indices, the first maximum wins, NaN propagates (the window's last NaN), padding acts as
the dtype's lowest value, a window with no input element yields that value and its would-be first
index; ``ceil_mode`` windows are clipped; the backward ops skip out-of-plane indices.

Fast path of ``pool_max`` (``_pool_max_rows_<k1>x<k2>``, one per window in ``FAST_WINDOWS``): every
window inside the input, ``k0 == 1``, no dilation and ``stride == kernel`` along the last axis (e.g.
LeNet's 3x3 / stride 3): the window is unrolled, the best value and its index stay in registers and a
row of windows is the innermost, vectorized loop (stride-``k2`` reads). Each plane is first scanned for
NaN (vectorized): without NaN, "strictly greater wins" starting from the window's first element is
exactly the general path's rule; a plane with a NaN runs the full path (``_pool_max_full``).

One kernel per path (``max_pool_kernel``): a MaxPool whose spatial sizes are static runs the kernel
of its path (``PATH_KERNELS``: ``pool_max_rows_2x2``, ``pool_max_rows_3x3``, ``pool_max_full``,
``pool_max_padded``), so a plan compiles that path's loops alone; ``pool_max`` (every path, chosen
per call) remains for spatial sizes known only at run time. All read the same record.

Channels-last loops (``_pool_last_<k1>x<k2>``, one per window in ``FAST_WINDOWS``, any stride and
dilation; ``conv_pool_fwd_<k1>x<k2>`` pools its conv output with them, which its GEMM writes channels-last):
per window and channel, the window unrolled with the best value and index in registers, the
channels innermost (unit-stride loads: vectorized however short the planes' rows; LeNet's rows of
8 windows kept the row path above scalar, LLVM's vector loop needs ~32 iterations). NaN is
handled inline (a NaN is taken), so they need no scan.

Records (``records.RecordSpec``, at ``M[p]``): ``POOL_WINDOW`` for the window ops (``pool_max``,
``pool_avg``, ``pool_avg_grad``), ``POOL_PLANE`` for the plane ops (``pool_max_grad``,
``pool_max_gather``). Each call is split into shares of its ``planes`` (``_share``).
"""
from __future__ import annotations

import math
from typing import List, Sequence

from .lowerings import lowers
from .records import RecordSpec

# x_off: the read buffer, y_off / y2_off: the written ones (pool_max: values / indices); planes: the
# count of the leading flat axis; per spatial axis (3, leading ones of size 1): input and output sizes,
# kernel, stride, padding, dilation; count_include_pad: AvgPool's divisor counts the padding
POOL_WINDOW = RecordSpec("pool_window", "x_off y_off y2_off planes input*3 output*3 kernel*3 stride*3 padding*3 "
                                        "dilation*3 count_include_pad")
# a_off: the read planes (pool_max_grad: the gradient, pool_max_gather: the input), idx_off: the
# indices, y_off: the output; in_plane / out_plane: elements per input-shaped / pooled-shaped plane
POOL_PLANE = RecordSpec("pool_plane", "a_off idx_off y_off planes in_plane out_plane")

FAST_WINDOWS = ((2, 2), (3, 3))   # (k1, k2) of the unrolled max-pool loops (``pool_max_rows_<k1>x<k2>``;
                                   # 1-d windows take the full path)


def max_pool_path(rec: Sequence[int]) -> str:
    """The loop ``pool_max`` runs for window record ``rec`` (``POOL_WINDOW``) on NaN-free planes:
    "rows <k1>x<k2>" (the unrolled fast path), "full" (every window inside the input) or "general"."""
    f = POOL_WINDOW.unpack(rec)
    return window_path(f["input"], f["output"], f["kernel"], f["stride"], f["padding"], f["dilation"])


def window_path(n, o, k, s, q, d) -> str:
    """``max_pool_path`` of a window's geometry, per axis (3 each): input n, output o, kernel k,
    stride s, padding q, dilation d."""
    if not windows_inside(n, o, k, s, q, d):
        return "general"
    if k[0] == 1 and d[1] == 1 and d[2] == 1 and s[2] == k[2] and (k[1], k[2]) in FAST_WINDOWS:
        return f"rows {k[1]}x{k[2]}"
    return "full"


# the kernel that runs one path alone (kernels/pool.py; one record, ``POOL_WINDOW``, for all)
PATH_KERNELS = {**{f"rows {k1}x{k2}": f"pool_max_rows_{k1}x{k2}" for k1, k2 in FAST_WINDOWS},
                "full": "pool_max_full", "general": "pool_max_padded"}
MAX_POOL_KERNELS = ("pool_max",) + tuple(PATH_KERNELS.values())     # every kernel of a MaxPool call


def max_pool_kernel(op) -> str:
    """The kernel of MaxPool ``op``: where its spatial sizes are static, the one of its path (each
    path's loops compile alone: a wrapper of all of them took ~4 CPU-s), else ``pool_max``, which
    chooses the path per call."""
    x, y = op.inputs[0], op.outputs[0]
    k = len(op.attrs["kernel_size"])
    if x.shape is None or y.shape is None or None in tuple(x.shape)[-k:] + tuple(y.shape)[-k:]:
        return "pool_max"
    axes = lambda v, fill=1: _as3(v, k, fill)      # noqa: E731
    return PATH_KERNELS[window_path(axes(tuple(x.shape)[-k:]), axes(tuple(y.shape)[-k:]),
                                    axes(op.attrs["kernel_size"]), axes(op.attrs["stride"]),
                                    axes(op.attrs["padding"], 0), axes(op.attrs.get("dilation", (1,) * k)))]


def channels_last(kernel: Sequence[int]) -> bool:
    """Whether the fused conv + pool forward pools windows of this kernel (1-3 dims) channels-last
    (``conv_pool_fwd_<k1>x<k2>``: k0 == 1 and (k1, k2) one of ``FAST_WINDOWS``)."""
    k0, k1, k2 = _as3(kernel, len(kernel), 1)
    return k0 == 1 and (k1, k2) in FAST_WINDOWS


def windows_inside(n, o, k, s, q, d) -> bool:
    """No padding and every window inside the input, per axis: input n, output o, kernel k, stride s,
    padding q, dilation d (``pool_max``'s "inside" paths)."""
    return not any(q) and all((oi - 1) * si + (ki - 1) * di < ni for ni, oi, ki, si, di in zip(n, o, k, s, d))


def _as3(values, k: int, fill: int) -> List[int]:
    """A k-tuple as 3 ints, leading axes of size ``fill``."""
    return [fill] * (3 - k) + [int(v) for v in values]


def _share(spec: RecordSpec, fields: dict, plane_sizes: dict, t: int, g: int) -> List[int]:
    """Share t of g of a record of ``spec`` over its ``planes``: planes [t P / g, (t + 1) P / g), each
    offset field of ``plane_sizes`` moved by that many planes of its buffer (``plane_sizes[field]``:
    elements per plane). Shares write disjoint planes."""
    planes = fields["planes"]
    lo, hi = t * planes // g, (t + 1) * planes // g
    moved = {f: fields[f] + lo * n for f, n in plane_sizes.items()}
    return spec.pack({**fields, **moved, "planes": hi - lo})


def _window_split(env, attrs: dict, x, y, k: int, t: int, g: int, include: bool = False, **buffers) -> List[int]:
    """Share t of g of a window kernel's record over the planes of ``x`` (input-shaped) and ``y``
    (pooled-shaped); ``buffers``: {offset field: (offset, "input" or "output": its planes' shape)},
    offset fields not given are 0 (unused by the kernel)."""
    sx, sy = env.shape(x), env.shape(y)
    axes = lambda v, fill=1: _as3(v, k, fill)      # noqa: E731
    fields = dict(x_off=0, y_off=0, y2_off=0, planes=math.prod(sx[:-k]), input=axes(sx[-k:]), output=axes(sy[-k:]),
                  kernel=axes(attrs["kernel_size"]), stride=axes(attrs["stride"]), padding=axes(attrs["padding"], 0),
                  dilation=axes(attrs.get("dilation", (1,) * k)), count_include_pad=int(include))
    fields.update({f: off for f, (off, _) in buffers.items()})
    sizes = {f: math.prod(fields[plane]) for f, (_, plane) in buffers.items()}
    return _share(POOL_WINDOW, fields, sizes, t, g)


def _work(*keys):
    return lambda env: sum(math.prod(env.shape(k)) for k in keys)


# Each pooling call is split into shares of its planes (``Lowering.split_call``), which the step
# loop runs on the kernel workers: the kernels stay serial (a ``prange`` inside them cost 15-20 s of
# compile for pool_max); shares write disjoint planes.

@lowers("MaxPool")
def _max_pool(op, b):
    x = op.inputs[0]
    values, indices = op.outputs
    k = len(op.attrs["kernel_size"])
    kernel = max_pool_kernel(op)
    b.split_call(kernel if b.supports(kernel) else "pool_max", [x], values,    # a target without path kernels
                 lambda env, t, g: _window_split(env, op.attrs, x, values, k, t, g, x_off=(env.off(x), "input"),
                                                 y_off=(env.off(b.write_key(values)), "output"),
                                                 y2_off=(env.off(b.write_key(indices)), "output")),
                 POOL_WINDOW.size, _work(x), extra=[indices])


@lowers("AvgPool")
def _avg_pool(op, b):
    x, y = op.inputs[0], op.outputs[0]
    k = len(op.attrs["kernel_size"])
    b.split_call("pool_avg", [x], y,
                 lambda env, t, g: _window_split(env, op.attrs, x, y, k, t, g, op.attrs["count_include_pad"],
                                                 x_off=(env.off(x), "input"), y_off=(env.off(b.write_key(y)), "output")),
                 POOL_WINDOW.size, _work(x))


@lowers("AvgPoolGrad")
def _avg_pool_grad(op, b):
    g_, like = op.inputs
    y = op.outputs[0]
    k = len(op.attrs["kernel_size"])
    b.split_call("pool_avg_grad", [g_], y,   # reads g at x_off, writes the input-shaped y at y_off
                 lambda env, t, g: _window_split(env, op.attrs, like, g_, k, t, g, op.attrs["count_include_pad"],
                                                 x_off=(env.off(g_), "output"), y_off=(env.off(b.write_key(y)), "input")),
                 POOL_WINDOW.size, _work(like))


def _plane_split(env, a, idx, y, a_like, spatial_dims: int, a_plane: str, t: int, g: int) -> List[int]:
    """Share t of g of a plane kernel's record: ``a_like`` has the input planes, ``idx`` the output
    planes; ``a_plane``: "in_plane" or "out_plane", the planes of ``a`` (``y`` has the other)."""
    sa, si = env.shape(a_like), env.shape(idx)
    fields = dict(a_off=env.off(a), idx_off=env.off(idx), y_off=env.off(y), planes=math.prod(si[:-spatial_dims]),
                  in_plane=math.prod(sa[-spatial_dims:]), out_plane=math.prod(si[-spatial_dims:]))
    y_plane = "in_plane" if a_plane == "out_plane" else "out_plane"
    sizes = {"a_off": fields[a_plane], "idx_off": fields["out_plane"], "y_off": fields[y_plane]}
    return _share(POOL_PLANE, fields, sizes, t, g)


@lowers("MaxPoolGrad")
def _max_pool_grad(op, b):
    g_, idx, like = op.inputs
    y = op.outputs[0]
    dims = op.attrs["spatial_dims"]
    b.split_call("pool_max_grad", [g_, idx], y,
                 lambda env, t, g: _plane_split(env, g_, idx, b.write_key(y), like, dims, "out_plane", t, g),
                 POOL_PLANE.size, _work(like))


@lowers("MaxPoolGather")
def _max_pool_gather(op, b):
    a, idx = op.inputs
    y = op.outputs[0]
    dims = op.attrs["spatial_dims"]
    b.split_call("pool_max_gather", [a, idx], y,
                 lambda env, t, g: _plane_split(env, a, idx, b.write_key(y), a, dims, "in_plane", t, g),
                 POOL_PLANE.size, _work(idx))
