"""CPU kernels of the conv op family (Conv, ConvBackpropInput, ConvBackpropFilter): templates and lowerings.

One generic 3-d implementation serves 1-d, 2-d and 3-d convolutions: a d-d op is seen as 3-d
with leading spatial dims of size 1 (kernel 1, stride 1, no padding). Samples are processed in
chunks of ``nb``; each chunk's receptive fields are copied once (im2col) into the workspace as
per-group (C/G * prod(K), nb * prod(out)) column matrices, then

- ``conv_fwd``: Y[g] = W[g] @ cols[g], one GEMM per group (straight into Y when nb == 1);
- ``conv_bpf``: dW[g] += dY[g] @ cols[g]^T (the first chunk writes dW, later ones add);
- ``conv_bpi``: cols[g] = W[g]^T @ dY[g], then col2im scatter-adds the columns into dX (each
  (sample, channel) plane zeroed just before, while it is in cache).

*Batch-minor* im2col (``minor()``: output rows shorter than ``MINOR_ROW``, several samples per chunk):
the chunk is first transposed to (C, *in, m) and the columns are ordered (*out, sample), so each
column row is built from runs of OW * m contiguous values instead of OW; the chunk's output rows
come back through the same transpose. LeNet's conv2 (8x8 -> 4x4): each of its kernels ~1.5x faster.

A pointwise conv (1x1(x1) kernel, stride 1, no padding) with at least ``POINTWISE_POSITIONS`` outputs
per sample runs one sample per chunk and its GEMMs read X / write dX in place: no im2col, no col2im.
So do sample-major convs with at least ``SAMPLE_COLUMNS`` column elements per sample (``_one_sample``):
their GEMMs write Y and read dY in place, and a sample's columns stay in L2.

An *implicit GEMM* conv (``implicit()``: stride 1, one group, enough channels, little padding) copies
no receptive fields. A chunk's samples are laid out once as a zero-padded grid, one row per channel
(C, nb * Dp * Hp * Wp); an output at grid column j reads input column j + offset(tap) for each of
the K kernel taps, so

- ``conv_fwd``: Ygrid = sum over taps of W_t (O x C) @ Xgrid[:, offset_t:], then Y = Ygrid's outputs;
- ``conv_bpi``: DXgrid = sum over taps of W_t^T @ DYgrid[:, -offset_t:] (DYgrid: zeros at non-output
  columns and in a front margin), then dX = DXgrid's inside;
- ``conv_bpf``: DW_t = DYgrid @ Xgrid[:, offset_t:]^T, summed over chunks;

GEMMs of one block of columns at a time (``BLOCK_ELEMENTS`` outputs, kept in cache across taps).
The grid's non-output columns cost extra GEMM work, hence ``IMPLICIT_MAX_WASTE``.

Measured and left out (2-core machine shared with other jobs): ``prange`` over (channel, sample)
planes in im2col/col2im made them 2-4x slower under load (an OpenMP team waits for its slowest
thread, and OpenBLAS's idle threads spin); one GEMM per sample (nb = 1) is slower than chunks; a
stride-1 ``conv_bpi`` as the forward conv of dY with the flipped filter was no faster than col2im.

Record (``CONV_SIZE`` ints): 4 element offsets (the kernel's 2 inputs, output, workspace), then
N, C, D, H, W, O, KD, KH, KW, OD, OH, OW, stride[3], padding[3], dilation[3], groups, nb, block
(an implicit conv's column block; 0: im2col), batch-minor (0/1), workers T and the workspace of
each (``threads.py``: im2col chunks t, t + T, ... run on worker t), then (forward only) whether a
per-channel bias is added and its offset in the weight's array (``fuse_bias``: a conv followed by
the Add of a bias vector runs as one kernel), then where the whole batch's columns are kept (-1:
not kept; ``keep_columns``: the forward writes them there, its filter gradient reads them). GEMMs go through the library's ``_gemm`` (leading
dimensions, alpha, beta).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Dict, List

from . import nn_wino_tile, nn_winograd, threads
from .lowerings import Phase, lowers, runs_in_phases
from .records import CONV

CONV_SIZE = CONV.size
CHUNK_ELEMENTS = 1 << 19      # the im2col columns of one chunk of samples hold at most this many elements (2 MB in
                              # float32: cache-sized; LeNet b256 ~70 -> ~52 ms, b64 ~18 -> ~13 ms against 1 << 22)
POINTWISE_POSITIONS = 256     # a pointwise conv with this many outputs per sample skips im2col
IMPLICIT_MIN_CHANNELS = 16    # implicit GEMM convs: at least this many input and output channels
IMPLICIT_MAX_WASTE = 1.5      # ... and a padded grid at most this many times the output positions
BLOCK_ELEMENTS = 1 << 19      # an implicit conv's GEMMs write output blocks of about this many elements
MINOR_ROW = 16                # im2col output rows shorter than this run batch-minor (see the module doc)
SAMPLE_COLUMNS = 1 << 13      # sample-major convs with this many column elements per sample: one sample per chunk

# -- lowerings ------------------------------------------------------------------------------------

def _as3(values, fill: int) -> list:
    """A d-tuple (d <= 3) as 3 ints, leading dims filled with ``fill``."""
    return [fill] * (3 - len(values)) + list(values)


def _pointwise(attrs: dict, kernel) -> bool:
    """A 1x1(x1) kernel, stride 1, no padding (the kernels' ``_conv_pointwise``)."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in attrs["stride"]) and not any(attrs["padding"])


def _one_sample(attrs: dict, wshape, yshape, cols_per_sample: int) -> bool:
    """Run one sample per chunk: its GEMMs then read and write the operands' planes in place (no
    chunk row copies; a pointwise conv copies no columns either). For a pointwise conv with at
    least ``POINTWISE_POSITIONS`` outputs per sample, and for a sample-major one (output rows of
    at least ``MINOR_ROW``) with at least ``SAMPLE_COLUMNS`` column elements per sample (measured:
    LeNet's conv1, 25 x 576 per sample, forward and filter gradient ~1.3x faster than 36-sample
    chunks, its columns staying in L2)."""
    positions = math.prod(yshape[2:])
    if _pointwise(attrs, wshape[2:]):
        return positions >= POINTWISE_POSITIONS
    return yshape[-1] >= MINOR_ROW and cols_per_sample >= SAMPLE_COLUMNS


def _chunk(n: int, cols_per_sample: int, workers: int, one_sample: bool = False) -> int:
    """Samples per chunk: one (``one_sample``), else chunks of about equal size whose columns fit
    ``CHUNK_ELEMENTS`` (fewer, larger GEMMs), at least one sample, and at least one chunk per
    worker where there are enough samples."""
    if one_sample:
        return 1
    most = max(1, min(n, CHUNK_ELEMENTS // max(1, cols_per_sample)))
    chunks = max(1, min(n, workers), -(-n // most))
    chunks = -(-chunks // workers) * workers if chunks > workers else chunks      # a multiple of the workers
    return max(1, -(-n // chunks))


def implicit(attrs: dict, xshape, wshape, yshape) -> bool:
    """Run as implicit GEMMs: stride 1, one group, a kernel of more than one tap, at least
    ``IMPLICIT_MIN_CHANNELS`` input and output channels, and a padded input grid at most
    ``IMPLICIT_MAX_WASTE`` times the output (the GEMMs also compute the grid's non-output columns)."""
    if attrs["groups"] != 1 or any(s != 1 for s in attrs["stride"]) or math.prod(wshape[2:]) == 1:
        return False
    if min(xshape[1], wshape[0]) < IMPLICIT_MIN_CHANNELS:
        return False
    grid = math.prod(n + 2 * q for n, q in zip(xshape[2:], attrs["padding"]))
    return grid <= IMPLICIT_MAX_WASTE * max(1, math.prod(yshape[2:]))


def _implicit_chunk(n: int, per_sample: int) -> int:
    """Samples per chunk of an implicit conv: chunks of about equal size, each grid at most
    ``CHUNK_ELEMENTS`` elements."""
    most = max(1, CHUNK_ELEMENTS // max(1, per_sample))
    chunks = max(1, -(-n // most))
    return max(1, -(-n // chunks))


def minor(yshape, nb: int) -> bool:
    """Run im2col batch-minor: chunks of several samples whose output rows are shorter than
    ``MINOR_ROW`` (per-row overhead would dominate a copy of a few elements)."""
    return nb > 1 and yshape[-1] < MINOR_ROW


def _geometry(attrs: dict, xshape, wshape, yshape) -> Dict[str, int]:
    """The conv record's geometry fields (``records.CONV`` from ``N`` to ``region``, and no fused
    bias): dims, stride, padding, dilation, groups, samples per chunk, the column block of an
    implicit conv (0: im2col), whether im2col runs batch-minor, the workers T and each one's
    workspace region."""
    n, c = xshape[:2]
    o, taps = wshape[0], math.prod(wshape[2:])
    positions = math.prod(yshape[2:])
    grid = _as3([d + 2 * q for d, q in zip(xshape[2:], attrs["padding"])], 1)
    if implicit(attrs, xshape, wshape, yshape):
        nb, block = _implicit_chunk(n, max(c, o) * math.prod(grid)), max(256, BLOCK_ELEMENTS // max(c, o))
        workers = threads.kernel_threads()      # each GEMM split over them (_gemm_par)
    else:
        workers = threads.kernel_threads()
        per_sample = c * taps * positions
        nb, block = _chunk(n, per_sample, workers, _one_sample(attrs, wshape, yshape, per_sample)), 0
        workers = max(1, min(workers, -(-n // nb)))
    batch_minor = int(not block and minor(yshape, nb))
    g = dict(zip(("N", "C", "D", "H", "W", "O", "KD", "KH", "KW", "OD", "OH", "OW", "sd", "sh", "sw", "pd", "ph",
                  "pw", "dd", "dh", "dw"),
                 [n, c] + _as3(xshape[2:], 1) + [o] + _as3(wshape[2:], 1) + _as3(yshape[2:], 1)
                 + _as3(attrs["stride"], 1) + _as3(attrs["padding"], 0) + _as3(attrs["dilation"], 1)))
    g.update(groups=attrs["groups"], nb=nb, block=block, minor=batch_minor, T=workers, has_bias=0, bias_off=0)
    if block:     # the per-tap weights and two grids (the kernels' _grid_dims and _implicit)
        offmax = ((g["KD"] - 1) * g["dd"] * grid[1] + (g["KH"] - 1) * g["dh"]) * grid[2] + (g["KW"] - 1) * g["dw"]
        g["region"] = taps * o * c + 2 * max(c, o) * (nb * math.prod(grid) + offmax)
    else:         # a worker's columns (C * prod(K) rows by nb * prod(out)), chunk output rows, transposed chunk
        g["region"] = (c * taps + o) * nb * positions + batch_minor * c * nb * math.prod(xshape[2:])
    return g


def _workspace_size(attrs: dict, xshape, wshape, yshape, kernel: str) -> int:
    """Each im2col worker's region, and (``conv_bpf``) each one's partial filter gradient and (O, P)
    bias sums (``fuse_bias_grad``); an implicit conv's one region (its workers split each GEMM)."""
    g = _geometry(attrs, xshape, wshape, yshape)
    regions, size = (1 if g["block"] else g["T"]), g["region"]
    if kernel != "conv_bpf":
        return regions * size
    partial = wshape[0] * (xshape[1] // attrs["groups"]) * math.prod(wshape[2:])
    return regions * size + regions * partial + g["T"] * wshape[0] * math.prod(yshape[2:])   # + bias sums


def _lower(b, op, kernel: str, inputs, shapes_of, attrs: dict) -> None:
    """One conv kernel call (im2col ``conv_*`` or single-tile Winograd ``tile_*``, whose record is
    the same but for its ``geometry``). ``shapes_of(env)``: the shapes of the convolution's input,
    weight and (forward) output."""
    if kernel.startswith("tile_"):
        geometry, why = nn_wino_tile.geometry, "winograd planes"
        size = lambda env: (nn_wino_tile.workspace_size(attrs, *shapes_of(env)),)     # noqa: E731
    else:
        geometry, why = None, "im2col columns"
        size = lambda env: (_workspace_size(attrs, *shapes_of(env), kernel),)         # noqa: E731
    ws = b.workspace(inputs[0].dtype, size, why)
    out = op.outputs[0]
    extra = [ws, out] if kernel in FILTER_GRADIENTS else [ws]     # its BG: a fused bias gradient's buffer
    record = ConvRecord(attrs, shapes_of, *inputs, b.write_key(out), ws, geometry=geometry)
    b.call(kernel, list(inputs), out, record, CONV_SIZE, extra=extra)


FORWARDS = ("conv_fwd", "tile_fwd")               # kernels whose record takes a fused bias (``fuse_bias``)
FILTER_GRADIENTS = ("conv_bpf", "tile_bpf")       # ... and a fused bias gradient (``fuse_bias_grad``)


@dataclass(frozen=True, eq=False)
class ConvRecord:
    """The record function of a conv kernel call: offsets of its inputs ``a``, ``w``, output
    ``out`` and workspace ``ws``, then the geometry (``shapes_of(env)``: the convolution's input,
    weight and output shapes); ``bias``: a forward conv's fused bias, or the buffer of a filter
    gradient's fused bias gradient; ``keep``: ``ws`` starts with the whole batch's im2col columns
    (``keep_columns``), the workspace proper after them; ``geometry``: the kernel family's
    (default ``_geometry``). Call rewrites ``replace`` its fields."""
    attrs: dict
    shapes_of: Callable
    a: object
    w: object
    out: object
    ws: object
    bias: object = None
    keep: bool = False
    geometry: Callable = None

    def __call__(self, env) -> List[int]:
        return CONV.pack(self.fields(env))

    def fields(self, env) -> Dict[str, int]:
        """The record as ``{field: value}`` (``records.CONV``)."""
        g = (self.geometry or _geometry)(self.attrs, *self.shapes_of(env))
        if self.bias is not None:
            g.update(has_bias=1, bias_off=env.off(self.bias))
        ws = env.off(self.ws)
        kept = _kept(g) if self.keep else 0
        return dict(g, x_off=env.off(self.a), w_off=env.off(self.w), y_off=env.off(self.out), ws_off=ws + kept,
                    kept=ws if kept else -1)


def _kept(g: Dict[str, int]) -> int:
    """Elements of the whole batch's im2col columns (N * C * prod(kernel) * prod(out)) where
    ``keep_columns`` keeps them for the geometry ``g`` (``_geometry``): an im2col conv whose
    workers run one chunk each (their columns are written once a step either way); else 0. With
    more chunks than workers a worker's chunks reuse its cache-sized region, and kept columns cost
    a write and a read of memory per chunk (measured, LeNet's conv2 at batch 256, 4 chunks a
    worker: a step 5% slower; at batch 64, one chunk a worker: 7% faster)."""
    if g["block"] or -(-g["N"] // max(1, g["nb"])) > g["T"]:
        return 0
    return math.prod(g[k] for k in ("N", "C", "KD", "KH", "KW", "OD", "OH", "OW"))


def _lower_conv(b, op, kind: str, inputs, conv_shapes) -> None:
    """A conv op's kernel call (``kind``: "fwd", "bpi" or "bpf"): single-tile Winograd where it
    applies, else Winograd F(4x4, 3x3), else im2col. ``conv_shapes``: the convolution's input,
    weight and output tensors, whose static shapes choose and whose run-time shapes size it."""
    x, w, y = conv_shapes
    shapes_of = lambda env: (env.shape(x), env.shape(w), env.shape(y))     # noqa: E731
    if b.supports(f"tile_{kind}") and nn_wino_tile.applies(op.attrs, x.shape, w.shape, y.shape, inputs[0].dtype):
        return _lower(b, op, f"tile_{kind}", inputs, shapes_of, op.attrs)
    if b.supports(f"wino_{kind}") and nn_winograd.applies(op.attrs, w.shape, inputs[0].dtype, x.shape):
        return nn_winograd.lower(b, op, f"wino_{kind}", inputs, shapes_of, op.attrs)
    _lower(b, op, f"conv_{kind}", inputs, shapes_of, op.attrs)


@lowers("Conv")
def _conv(op, b):
    x, w = op.inputs
    _lower_conv(b, op, "fwd", [x, w], (x, w, op.outputs[0]))


@lowers("ConvBackpropInput")
def _conv_backprop_input(op, b):
    dy, w, x_like = op.inputs
    _lower_conv(b, op, "bpi", [dy, w], (x_like, w, dy))


@lowers("ConvBackpropFilter")
def _conv_backprop_filter(op, b):
    x, dy, w_like = op.inputs
    _lower_conv(b, op, "bpf", [x, dy], (x, w_like, dy))


def _channel_vector(bias_shape, y_shape) -> bool:
    """A bias of static shape ``bias_shape`` adds one value per channel of a conv output of static
    shape ``y_shape`` (N, O, *spatial): (O, 1, ..., 1), possibly with leading 1s."""
    if bias_shape is None or y_shape is None or len(bias_shape) > len(y_shape) or y_shape[1] is None:
        return False
    full = (1,) * (len(y_shape) - len(bias_shape)) + tuple(bias_shape)
    return full[0] == 1 and full[1] == y_shape[1] and all(d == 1 for d in full[2:])


def fuse_bias(lowering) -> None:
    """``Add(conv(x, w), bias)`` with a per-channel bias vector that lives in the weight's array
    (a layer's variables), where nothing else reads the conv's output: the conv kernel adds the
    bias to each chunk of its output while it is in cache and writes the Add's output; the Add's
    call (a pass over the whole output) is dropped. Reads see old values as before: the bias is a
    variable, and the write-back runs after every main call."""
    prog = lowering.prog
    readers, viewed = lowering._readers()
    assigned = {value for _, value, _, _ in prog.assigns}      # read by the write-back
    adds = {}
    for call in prog.calls:
        if call.kernel == "ew_Add" and call.inplace:     # plain views of both inputs (``Lowering.ew``)
            for i in (0, 1):
                adds.setdefault(call.args[i], []).append((call, call.args[1 - i]))
    for conv in [c for c in prog.calls if c.kernel in FORWARDS]:
        w, y = conv.args[1], conv.args[2]
        if readers.get(y, 0) != 1 or y in viewed or y in assigned or len(adds.get(y, ())) != 1:
            continue
        add, bias = adds[y][0]
        if (bias is y or not _channel_vector(getattr(bias, "shape", None), getattr(y, "shape", None))
                or prog.space(bias) != "S" or prog.array_name(bias) != prog.array_name(w)):
            continue
        x, out, ws = conv.args[0], add.args[-1], conv.args[3]
        conv.record = replace(conv.record, out=out, bias=bias)      # the geometry still y's
        conv.args = (x, w, out, ws)
        prog.calls.remove(add)


def fuse_bias_grad(lowering) -> None:
    """``SumToLike(dy, bias)`` of a per-channel bias (a conv layer's bias gradient) where ``dy`` is
    also a ``conv_bpf``'s output gradient: the filter-gradient kernel sums each chunk of dy while
    it is in cache (``_bias_sums``) and writes the bias gradient; the reduction's call (a pass over
    all of dy, from memory at large batches) is dropped. Only where no call before the conv's reads
    the bias gradient (the write moves to the conv's call)."""
    prog = lowering.prog
    sums = {}
    for call in prog.calls:
        if call.kernel == "red_SumF":
            sums.setdefault(call.args[0], []).append(call)
    for conv in list(prog.calls):
        if conv.kernel not in FILTER_GRADIENTS or conv.args[4] is not conv.args[2]:     # not fused yet
            continue
        x, dy, dw, ws = conv.args[:4]
        for red in sums.get(dy, ()):
            bg = red.args[-1]
            if red not in prog.calls or not _channel_vector(getattr(bg, "shape", None), getattr(dy, "shape", None)):
                continue
            if any(bg in c.inputs for c in prog.calls[:prog.calls.index(conv)]):
                continue
            conv.record = replace(conv.record, bias=bg)
            conv.args = (x, dy, dw, ws, bg)
            prog.calls.remove(red)
            break


def _same_columns(fwd, bpf) -> bool:
    """A forward conv op and a filter-gradient op build the same im2col columns (the same input is
    checked by the caller): equal attributes and static weight shapes, on the im2col path (not
    implicit), in chunks of several samples. Not one sample per chunk (``_one_sample``): a sample's
    columns stay in L2 and building them again costs less than keeping them (LeNet's conv1, b64,
    kept: fused forward 0.61 -> 0.72 ms, filter gradient 0.58 -> 0.48; so ``fuse_pool``'s kernels
    never keep columns)."""
    x, w = fwd.inputs
    y = fwd.outputs[0]
    shapes = [x.shape, w.shape, y.shape]
    if fwd.attrs != bpf.attrs or any(s is None or None in tuple(s)[1:] for s in shapes):
        return False
    if w.shape != bpf.inputs[2].shape:
        return False
    xs, ws, ys = (1, *x.shape[1:]), tuple(w.shape), (1, *y.shape[1:])
    if implicit(fwd.attrs, xs, ws, ys) or not math.prod(ws):
        return False
    per_sample = xs[1] // fwd.attrs["groups"] * math.prod(ws[2:]) * math.prod(ys[2:])
    return not _one_sample(fwd.attrs, ws, ys, per_sample)


def keep_columns(lowering) -> None:
    """An im2col ``conv_bpf`` of the same input and geometry as an earlier ``conv_fwd`` reads the
    forward's columns instead of building them again: the forward writes each chunk's columns to
    its place among the whole batch's, at the start of a workspace both calls share (live from the
    forward to the filter gradient), and the filter gradient skips its im2col. The columns depend
    on the input alone, not on the weight. Whether the columns are kept is decided per layout
    (``_kept``: not where a worker runs several chunks); the shared workspace stays live
    from the forward to the filter gradient either way. After ``fuse_bias`` and ``fuse_bias_grad``
    (whose records it marks); ``fuse_pool`` after it fuses one-sample convs only, never these."""
    prog = lowering.prog
    fwds = {}
    for call in prog.calls:
        if call.kernel == "conv_fwd":
            fwds.setdefault(prog.root(call.args[0]), []).append(call)
    order = {id(c): i for i, c in enumerate(prog.calls)}
    for bpf in [c for c in prog.calls if c.kernel == "conv_bpf"]:
        pending = fwds.get(prog.root(bpf.args[0]), [])
        fwd = next((f for f in pending if order[id(f)] < order[id(bpf)] and _same_columns(f.op, bpf.op)), None)
        if fwd is None:
            continue
        pending.remove(fwd)
        ws, own = fwd.args[3], bpf.args[3]
        shapes_of, attrs = fwd.record.shapes_of, fwd.record.attrs
        ws.shape_fn = lambda env, f=ws.shape_fn, g=own.shape_fn, s=shapes_of, attrs=attrs: (
            _kept(_geometry(attrs, *s(env))) + max(f(env)[0], g(env)[0]),)
        ws.why = "im2col columns of the batch (kept for the filter gradient), workspace"
        fwd.record = replace(fwd.record, keep=True)
        bpf.record = replace(bpf.record, ws=ws, keep=True)
        bpf.args = bpf.args[:3] + (ws,) + bpf.args[4:]


def _workers(rec: list) -> int:
    """The workers an im2col conv's chunks run on (``records.CONV``'s T); an implicit conv runs
    whole in share 0, outside the workers (its GEMMs split over them themselves)."""
    return rec[CONV.at.T] if not rec[CONV.at.block] else 1


# The kernels run in phases (``lowerings.PHASES``): shares of the chunks on the kernel workers; the
# filter gradient's partial sums, then their sum (and the fused bias gradient).
# args: conv_fwd (X, W, Y, WS), conv_bpi (dY, W, dX, WS), conv_bpf (X, dY, dW, WS, BG)
runs_in_phases("conv_fwd", _workers, Phase("conv_fwd", (0, 1, 2, 3), 2, True))
runs_in_phases("conv_bpi", _workers, Phase("conv_bpi", (0, 1, 2, 3), 2, True))
runs_in_phases("conv_bpf", _workers, Phase("conv_bpf", (0, 1, 2, 3, 4), 2, True),
               Phase("conv_bpf_reduce", (2, 3, 4), 0, False))
