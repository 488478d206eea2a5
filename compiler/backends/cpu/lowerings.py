"""The CPU kernel registry: one lowering per op type, keyed by ``OpDef.type``.

A lowering is ``fn(op, b: Lowering) -> None``, registered with ``@lowers("Type", ...)``.
It runs once per plan (never per batch size) and describes the op with the
builder's few verbs:

- ``b.ew(name, out, inputs)``: an elementwise kernel ``ew_<name>`` of the generic
  library (``library.ELEMENTWISE``) over broadcast inputs; ``in_views=``/``out_view=``
  take ``env -> View`` callables for strided operands (transpose, slicing...), which
  only a kernel with a strided loop takes (``library.EW_STRIDED``: ``StridedCopy``);
- ``b.call(kernel, inputs, out, record, size)``: any library kernel; ``record(env)``
  returns the kernel's int64 record (concrete shapes, offsets, strides), computed at
  plan entry for each shape signature from ``env.shape(t)`` / ``env.view(t)``;
- ``b.alias(out, src)``: ``out`` is ``src``'s buffer with another shape (no kernel);
- ``b.const(out, fn)``: a value computed at plan entry, ``fn(env) -> ndarray``;
- ``b.host(out, fn)``: a value computed on the host before each step,
  ``fn(state, env) -> ndarray`` (random ops, so they match the reference exactly);
- ``b.variable(out, var_op)`` / ``b.assign(var_op, value, mode)``: session state.

Errors: shape problems are caught at plan entry (``infer`` on concrete shapes,
or ``b.check(fn)`` with ``fn(env)`` raising ``ValueError``); data-dependent
problems set an error code in the kernel (``library.ERRORS``).

Adding a kernel for a new op type ("Conv2D", say), in two places:

1. The Numba kernel, in a module of ``kernels/`` (listed in ``library.KERNEL_FILES``): an
   ``@njit(**JIT)`` function ``conv2d(X, W, Y, M, E, p)``: flat 1-D buffers (inputs, then
   outputs), the int64 table ``M`` (your record starts at ``M[p]``) and the error slots ``E``.
   It reads its record by field name, ``M[p + CONV.x_off]`` with ``CONV = CONV2D.at`` (the spec
   below; never a literal position: ``tests/test_cpu_records.py``). It must not allocate
   (write into ``Y``; reshape slices of the flat buffers to get N-d views, e.g.
   ``X[o:o + n * c * h * w].reshape((n, c, h, w))``; ``_gemm(...)`` for GEMMs). On bad
   data set ``E[0] = code; E[1] = p; return`` with ``code`` a new entry of ``library.ERRORS``.
2. The record's spec (``records.RecordSpec``) and the lowering, here or in the family's
   ``nn_<family>.py``::

       CONV2D = RecordSpec("conv2d", "x_off w_off y_off n c h w k r s stride padding")
       @lowers("Conv2D")
       def _conv2d(op, b):
           x, w = op.inputs
           y = op.outputs[0]
           def record(env):          # concrete shapes + element offsets, per shape signature
               (n, c, h, wd), (k, _, r, s) = env.shape(x), env.shape(w)
               return CONV2D.pack(dict(x_off=env.off(x), w_off=env.off(w), y_off=env.off(b.write_key(y)),
                                       n=n, c=c, h=h, w=wd, k=k, r=r, s=s, stride=op.attrs["stride"],
                                       padding=op.attrs["padding"]))    # every field, by name
           b.call("conv2d", [x, w], y, record, CONV2D.size)

   ``env.shape(t)`` is the concrete shape, ``env.off(t)`` the element offset of ``t``'s
   contiguous buffer in its flat array, ``env.view(t)`` both as a ``View``; attrs are on
   ``op.attrs``. Which flat array a tensor lives in (arena or variable storage, by dtype) is
   decided by the plan; the generated step passes it. Shape errors found only at run time:
   ``b.check(lambda env: ...)`` raising ``ValueError`` (reported naming the op). Scratch
   space (im2col): ``ws = b.workspace(x.dtype, lambda env: (rows, cols))`` and
   ``b.call("conv2d", [x, w], y, record, CONV2D.size, extra=[ws])``: the kernel gets it after the
   output (``conv2d(X, W, Y, WS, M, E, p)``; ``env.off(ws)`` in the record); its memory is
   reused by other buffers outside the call. Several outputs: ``extra=op.outputs[1:]``.
3. ``tests/test_cpu_backend.py::test_every_registered_op_type_has_a_cpu_kernel`` fails until
   every registered op type has a lowering; the op's forward/gradient tests then run on cpu.
"""
from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Sequence

import numpy as np

from staticgraph.graph import Operation
from staticgraph.tensor import Tensor

from . import threads
from .library import EW_LOOP, EW_OPERAND, MAXR, ew_spec
from .records import RecordSpec

LOWERINGS: Dict[str, Callable] = {}


def lowers(*types: str):
    """Register a lowering for op ``types``."""
    def deco(fn):
        for t in types:
            LOWERINGS[t] = fn
        return fn
    return deco


class Phase(NamedTuple):
    """One step of a kernel call that runs in phases (``PHASES``): ``kernel`` over the call's
    arguments at ``args`` (the first ``n_in`` of them inputs), once or, with ``shared``, as one
    share per worker (share t reads its index at the record's ``share`` field)."""
    kernel: str
    args: tuple
    n_in: int
    shared: bool


# kernel -> (its worker count from its record, its phases). A call of such a kernel
# becomes its phases after the call rewrites (which see the one call): the work a kernel would
# split with a ``prange`` runs as a group of share calls of the step loop instead, so the kernel
# itself stays serial (a ``prange`` body costs Numba several optimisations of everything it calls)
PHASES: Dict[str, tuple] = {}


def runs_in_phases(kernel: str, workers: Callable[[list], int], *phases: Phase) -> None:
    """Register the phases of calls of ``kernel`` (see ``PHASES``); ``workers(record)``: how many
    workers its shared phases use (below 2: the shares run one after another)."""
    PHASES[kernel] = (workers, phases)


def origin(op: Operation) -> Operation:
    """The user-graph op that ``op`` stands for (passes copy ops and record ``origin``)."""
    return getattr(op, "origin", None) or op


# -- views and records -----------------------------------------------------------------------

class View(NamedTuple):
    """A strided window of a flat buffer, in elements."""
    off: int
    shape: tuple
    strides: tuple


def c_strides(shape) -> tuple:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return tuple(reversed(out))


def contiguous(off: int, shape) -> View:
    return View(off, tuple(shape), c_strides(shape))


def broadcast_view(v: View, shape) -> View:
    """``v`` seen with the (broadcast) ``shape``: leading and size-1 dims get stride 0."""
    lead = len(shape) - len(v.shape)
    strides = [0] * lead + [0 if d == 1 and shape[lead + i] != 1 else s
                            for i, (d, s) in enumerate(zip(v.shape, v.strides))]
    return View(v.off, tuple(shape), tuple(strides))


def _coalesce(shape, strides_list):
    """Drop size-1 dims and merge dims that are contiguous in every operand."""
    if any(d == 0 for d in shape):
        return [0], [[0] for _ in strides_list]
    dims = [i for i, d in enumerate(shape) if d != 1]
    shp = [shape[i] for i in dims]
    sts = [[s[i] for i in dims] for s in strides_list]
    i = len(shp) - 2
    while i >= 0:
        if all(s[i] == s[i + 1] * shp[i + 1] for s in sts):
            shp[i] *= shp[i + 1]
            del shp[i + 1]
            for s in sts:
                s[i] = s[i + 1]
                del s[i + 1]
        i -= 1
    return shp, sts


def _pad(values, n=MAXR):
    return list(values) + [0] * (n - len(values))


def ew_record(out: View, ins: Sequence[View], more_outs: Sequence[View] = (), op: int = 0) -> List[int]:
    """The record of an elementwise kernel (``library.ew_spec``, read by ``library.loop_kernel``):
    outputs, then inputs; ``op``: the op's code in its family (``library.ew_op_code``)."""
    views = [out] + list(more_outs) + [broadcast_view(v, out.shape) for v in ins]
    shape, strides = _coalesce(out.shape, [v.strides for v in views])
    while len(shape) < 2:
        shape.insert(0, 1)
        for s in strides:
            s.insert(0, 0)
    if shape[-1] <= 1:      # an inner dim never stepped along (a scalar, an empty loop): unit strides
        for s in strides:   # then hold for every operand, as the unit-stride loops need (loop_kernel)
            s[-1] = 1
    if len(shape) > MAXR:
        raise ValueError(f"the cpu backend handles at most {MAXR} non-trivial dimensions, got shape {out.shape}")
    fields = dict(op=op, nd=len(shape), shape=_pad(shape))
    for j, (v, s) in enumerate(zip(views, strides)):
        fields.update({f"off{j}": v.off, f"strides{j}": _pad(s)})
    return ew_spec(len(views)).pack(fields)


EW_SIZE = {k: ew_spec(k + 1).size for k in range(1, 4)}     # an ``ew_<name>`` record of k inputs


def loop_elements(rec: List[int]) -> int:
    """The elements an elementwise record's loop runs over."""
    return int(np.prod(rec[EW_LOOP.at.shape:EW_LOOP.at.shape + rec[EW_LOOP.at.nd]], dtype=np.int64))


def ew_share(rec: List[int], t: int, g: int) -> List[int]:
    """Share t of g of an elementwise record: its outermost loop dim of at least g (else its longest)
    cut to [t n / g, (t + 1) n / g), every operand's offset moved by that many steps of its stride
    (0 for a broadcast). Outer first keeps the vectorised inner rows whole (splitting an MLP's
    (128, 256) rows in half made its step ~15% slower)."""
    n_operands = (len(rec) - EW_LOOP.size) // EW_OPERAND.size
    spec = ew_spec(n_operands)
    fields = spec.unpack(rec)
    shape = fields["shape"]
    d = next((i for i in range(fields["nd"]) if shape[i] >= g), max(range(fields["nd"]), key=lambda i: shape[i]))
    lo, hi = t * shape[d] // g, (t + 1) * shape[d] // g
    for j in range(n_operands):
        fields[f"off{j}"] += lo * fields[f"strides{j}"][d]
    fields["shape"] = shape[:d] + [hi - lo] + shape[d + 1:]
    return spec.pack(fields)


def loop_record_size(n_operands: int) -> int:
    return ew_spec(n_operands).size


# the reductions' record (kernels/reduce.py): kept dims, reduced dims (nr >= 1), offsets, the reduced count
REDUCE = RecordSpec("reduce", f"nk kshape*{MAXR} kstride*{MAXR} nr rshape*{MAXR} rstride*{MAXR} x_off y_off count")


def reduce_record(x: View, axes, y_off: int) -> List[int]:
    """The record of a reduction of view ``x`` over ``axes`` into contiguous output at ``y_off``."""
    keep = [i for i in range(len(x.shape)) if i not in axes]
    ks, kx = _coalesce([x.shape[i] for i in keep], [[x.strides[i] for i in keep]])
    if any(x.shape[i] == 0 for i in keep):
        ks, kx = [0], [[0]]
    rs, rx = _coalesce([x.shape[i] for i in axes], [[x.strides[i] for i in axes]])
    if not rs:
        rs, rx = [1], [[0]]
    count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    if len(ks) > MAXR or len(rs) > MAXR:
        raise ValueError(f"the cpu backend reduces at most {MAXR} non-trivial dimensions (shape {x.shape})")
    return REDUCE.pack(dict(nk=len(ks), kshape=_pad(ks), kstride=_pad(kx[0]), nr=len(rs), rshape=_pad(rs),
                            rstride=_pad(rx[0]), x_off=x.off, y_off=y_off, count=count))


def sum_path(rec: Sequence[int]) -> str:
    """The loop a ``red_Sum*``/``red_Mean`` kernel runs for record ``rec`` (see ``kernels/reduce.py``):
    "copy" (nothing reduced), "rows" (leading rows summed into a contiguous row; sums only),
    "runs" (contiguous runs, vectorized) or "strided"."""
    r = REDUCE.unpack(rec)
    if r["count"] == 1 and r["nk"] == 1 and r["kstride"][0] == 1:
        return "copy"
    if r["nk"] == 1 and r["nr"] == 1 and r["kstride"][0] == 1:
        return "rows"
    return "runs" if r["rstride"][r["nr"] - 1] == 1 else "strided"


# -- the builder's environment at plan entry ---------------------------------------------------

class Env:
    """Concrete shapes and buffer offsets of one shape signature (filled by the executable)."""

    def __init__(self, shapes: dict, offsets: dict):
        self.shapes = shapes
        self.offsets = offsets

    def shape(self, key) -> tuple:
        return self.shapes[key]

    def off(self, key) -> int:
        return self.offsets[key]

    def view(self, key) -> View:
        return contiguous(self.offsets[key], self.shapes[key])


# -- elementwise --------------------------------------------------------------------------------

_SAME_NAME = ["Neg", "Abs", "Sign", "Square", "Relu", "Sqrt", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid",
              "Add", "Sub", "Mul", "Div", "Maximum", "Minimum", "Less", "LessEqual", "Greater", "GreaterEqual",
              "Equal", "NotEqual", "Where"]


@lowers(*_SAME_NAME)
def _elementwise(op, b):
    b.ew(op.type, op.outputs[0], op.inputs)


@lowers("Pow")
def _pow(op, b):
    b.ew("PowInt" if op.inputs[0].dtype.kind in "iu" else "Pow", op.outputs[0], op.inputs)


@lowers("Cast")
def _cast(op, b):
    b.ew("CastBool" if op.attrs["dtype"].kind == "b" else "Copy", op.outputs[0], op.inputs)


@lowers("Identity", "StopGradient", "Reshape", "ExpandDims", "ReshapeLike", "CheckNumerics")
def _alias(op, b):
    b.alias(op.outputs[0], op.inputs[0])


@lowers("Transpose")
def _transpose(op, b):
    x, perm = op.inputs[0], op.attrs["perm"]

    def src(env):
        v = env.view(x)
        p = perm if perm is not None else tuple(reversed(range(len(v.shape))))
        return View(v.off, tuple(v.shape[i] for i in p), tuple(v.strides[i] for i in p))
    b.ew("StridedCopy", op.outputs[0], [x], in_views=[src], inplace=False)


@lowers("BroadcastLike")
def _broadcast_like(op, b):
    b.ew("Copy", op.outputs[0], [op.inputs[0]], inplace=False)


def index_view(v: View, spec) -> View:
    """The strided view of ``v`` selected by a basic-index ``spec`` (see ops/array.py)."""
    consumed = sum(1 for s in spec if s[0] in ("int", "slice"))
    if not any(s[0] == "ellipsis" for s in spec):
        spec = spec + (("ellipsis",),)
    off, shape, strides, dim = v.off, [], [], 0
    for s in spec:
        if s[0] == "ellipsis":
            for _ in range(len(v.shape) - consumed):
                shape.append(v.shape[dim])
                strides.append(v.strides[dim])
                dim += 1
        elif s[0] == "new":
            shape.append(1)
            strides.append(0)
        elif s[0] == "int":
            i = s[1] + v.shape[dim] if s[1] < 0 else s[1]
            if not 0 <= i < v.shape[dim]:
                raise IndexError(f"index {s[1]} is out of bounds for axis {dim} with size {v.shape[dim]}")
            off += i * v.strides[dim]
            dim += 1
        else:
            start, stop, step = slice(*s[1:]).indices(v.shape[dim])
            n = len(range(start, stop, step))
            if n:
                off += start * v.strides[dim]
            shape.append(n)
            strides.append(v.strides[dim] * step)
            dim += 1
    return View(off, tuple(shape), tuple(strides))


@lowers("GetItem")
def _getitem(op, b):
    x, spec = op.inputs[0], op.attrs["spec"]
    b.ew("StridedCopy", op.outputs[0], [x], in_views=[lambda env: index_view(env.view(x), spec)], inplace=False)


@lowers("ScatterLike")
def _scatter_like(op, b):
    g, out, spec = op.inputs[0], op.outputs[0], op.attrs["spec"]
    b.fill(out, 0)
    b.ew("StridedCopy", out, [g], out_view=lambda env: index_view(env.view(b.write_key(out)), spec), inplace=False)


@lowers("Concat")
def _concat(op, b):
    out, axis = op.outputs[0], op.attrs["axis"]
    placed = _fusion_buffer_pieces(op, b) if axis == 0 else set()
    for i, x in enumerate(op.inputs):
        if i in placed:
            continue
        def part(env, i=i):
            v = env.view(b.write_key(out))
            start = sum(env.shape(t)[axis] for t in op.inputs[:i])
            return View(v.off + start * v.strides[axis], env.shape(op.inputs[i]), v.strides)
        b.ew("StridedCopy", out, [x], out_view=part, inplace=False)


def _fusion_buffer_pieces(op, b) -> set:
    """A Concat that an Allreduce reads (sg.distributed's fusion buffer): the inputs whose own
    buffers become pieces of its output, so the kernels that compute them (the gradients) write
    straight into the fusion buffer and no copy packs it. An input qualifies when its buffer is a
    plain arena tensor that a kernel writes (not a variable, feed, constant or host value, not an
    alias, fetched or fed), once among the inputs. Returns their positions."""
    prog, out = b.prog, op.outputs[0]
    if out in b.prog.feed_index or not any(o.type == "Allreduce" and o.inputs[0] is out for o in prog.schedule.ops):
        return set()
    b.write_key(out)        # the buffer's dtype, though perhaps no kernel writes it as a whole
    fetched = set(prog.schedule.fetches)
    placed, roots = set(), set()
    for i, x in enumerate(op.inputs):
        root = prog.root(x)
        if (not isinstance(root, Tensor) or root in roots or root in prog.alias or root in prog.feed_index
                or root in prog.consts or root in prog.hosts or root in fetched or x in fetched):
            continue
        roots.add(root)
        placed.add(i)
        b.alias(root, out, shift=lambda env, i=i: sum(int(np.prod(env.shape(t), dtype=np.int64))
                                                      for t in op.inputs[:i]))
    return placed


@lowers("SplitLike")
def _split_like(op, b):
    a, axis = op.inputs[0], op.attrs["axis"]
    if axis == 0 and a.op.type == "Allreduce" and not any(t in b.prog.feed_index for t in op.outputs):
        # the parts of a fusion buffer (sg.distributed): each a piece of it, no copy
        for j, out in enumerate(op.outputs):
            b.alias(out, a, shift=lambda env, j=j: sum(int(np.prod(env.shape(t), dtype=np.int64))
                                                       for t in op.inputs[1:1 + j]))
        return
    for j, out in enumerate(op.outputs):
        def part(env, j=j):
            v = env.view(a)
            start = sum(env.shape(t)[axis] for t in op.inputs[1:1 + j])
            return View(v.off + start * v.strides[axis], env.shape(op.outputs[j]), v.strides)
        b.ew("StridedCopy", out, [a], in_views=[part], inplace=False)


# -- reductions ---------------------------------------------------------------------------------

def _reduce(b, kernel, x, out, axes_of, inplace: bool = False):
    """A reduction kernel call; ``inplace``: the plan may place ``out`` on ``x``'s buffer when their run-time
    shapes are equal (nothing reduced: the kernel then does nothing, see ``kernels/reduce.py``)."""
    def record(env):
        v = env.view(x)
        return reduce_record(v, axes_of(env), env.off(b.write_key(out)))
    b.call(kernel, [x], out, record, REDUCE.size, inplace=[x] if inplace else ())


def _all_axes(x):
    return lambda env: tuple(range(len(env.shape(x))))


@lowers("ReduceSum", "ReduceMean", "ReduceMax")
def _reduction(op, b):
    x, out, axes = op.inputs[0], op.outputs[0], op.attrs["axes"]
    axes_of = _all_axes(x) if axes is None else (lambda env: tuple(axes))
    if op.type == "ReduceMax":
        def nonempty(env):
            if any(env.shape(x)[a] == 0 for a in axes_of(env)):
                raise ValueError("zero-size array to reduction operation maximum which has no identity")
        b.check(nonempty)
        kernel = "red_Max"
    elif op.type == "ReduceMean":
        kernel = "red_Mean"
    else:
        kernel = "red_SumF" if x.dtype.kind == "f" else "red_SumI"
    _reduce(b, kernel, x, out, axes_of)


def fuse_sum_of_products(lowering) -> None:
    """``ReduceSum(Mul(a, b))`` over all axes where only the sum reads the product (a squared-error
    loss, ``sum(y * y)``): one ``red_Dot`` pass at the product's place instead of writing the
    product and reading it back (conv_block's loss: Mul 0.47 + ReduceSum 0.32 ms, 8 MB each way).
    Only for operands of one static shape (or one operand twice), each a buffer of its own
    (contiguous, not a view), so the kernel reads both as flat runs of the product's size."""
    prog = lowering.prog
    readers, viewed = lowering._readers()
    assigned = {value for _, value, _, _ in prog.assigns}
    sums = {c.args[0]: c for c in prog.calls if c.kernel == "red_SumF" and c.op.type == "ReduceSum"
            and c.op.attrs.get("axes") is None}
    for mul in [c for c in prog.calls if c.kernel == "ew_Mul" and len(c.args) == 3]:
        a, b, y = mul.args
        red = sums.get(y)
        if red is None or readers.get(y, 0) != 1 or prog.root(y) in viewed or y in assigned:
            continue
        shapes = [getattr(k, "shape", None) for k in (a, b, y)]
        if a is not b and (None in shapes or None in tuple(shapes[0]) or len({tuple(s) for s in shapes}) != 1):
            continue
        if any(k in prog.alias or not hasattr(k, "shape") for k in (a, b)):
            continue
        out = red.args[-1]
        ws = lowering.workspace(np.float64, lambda env: (DOT_PARTS,), "partial sums")
        record = lambda env, a=a, b=b, out=out, ws=ws, g=threads.shares(): _dot_record(env, a, b, out, ws, g)   # noqa: E731
        prog.calls[prog.calls.index(mul)] = type(mul)("red_Dot", (a, b, out, ws), record, DOT_SUM.size, red.op, n_in=2)
        prog.calls.remove(red)


DOT_PARTS = threads.MAX_SHARES      # runs of at least DOT_SHARE products are summed in this many parts
DOT_SHARE = 1 << 16
# the n products of a at a_off and b at b_off summed into y at y_off over ``parts`` float64 partial
# sums at ws_off (DOT_PARTS from DOT_SHARE products, else 1: the same parts, so the same sum, for
# every worker count), computed by ``shares`` share calls (the lowering's G), on ``workers`` at once
DOT_SUM = RecordSpec("dot_sum", "n parts shares a_off b_off y_off workers ws_off")
# a share of red_Dot's partial sums (``PHASES``): the record, the share's index, the group flag
DOT_SUM_SHARE = DOT_SUM.extend("dot_sum_share", "share group")


def _dot_record(env, a, b, out, ws, shares: int) -> List[int]:
    n = int(np.prod(env.shape(a), dtype=np.int64))
    parts = DOT_PARTS if n >= DOT_SHARE else 1
    workers = min(threads.kernel_threads(), shares, parts)
    return DOT_SUM.pack(dict(n=n, parts=parts, shares=shares, a_off=env.off(a), b_off=env.off(b), y_off=env.off(out),
                             workers=max(1, workers), ws_off=env.off(ws)))


# red_Dot (a, b, y, ws) runs in phases: the partial sums, shared over the workers, then their sum in order
runs_in_phases("red_Dot", lambda rec: rec[DOT_SUM.at.workers], Phase("dot_parts", (0, 1, 3), 2, True),
               Phase("dot_total", (3, 2), 1, False))


@lowers("ArgMax")
def _argmax(op, b):
    x, out, axis = op.inputs[0], op.outputs[0], op.attrs["axis"]
    axes_of = _all_axes(x) if axis is None else (lambda env: (axis,))

    def nonempty(env):
        if any(env.shape(x)[a] == 0 for a in axes_of(env)):
            raise ValueError("attempt to get argmax of an empty sequence")
    b.check(nonempty)
    _reduce(b, "red_ArgMax", x, out, axes_of)


@lowers("SumToLike")
def _sum_to_like(op, b):
    a, ref = op.inputs
    out = op.outputs[0]

    def axes_of(env):
        sa, sr = env.shape(a), env.shape(ref)
        lead = len(sa) - len(sr)
        return tuple(range(lead)) + tuple(i + lead for i, d in enumerate(sr) if d == 1 and sa[i + lead] != 1)
    # with a None batch dim the passes cannot tell whether anything is reduced (a bias Add's gradient
    # w.r.t. its batched operand): when nothing is, the output may share the input's buffer
    _reduce(b, "red_SumF" if a.dtype.kind == "f" else "red_SumI", a, out, axes_of, inplace=True)


# -- matmul -------------------------------------------------------------------------------------

def _swap_last(shape) -> tuple:
    return tuple(shape[:-2]) + (shape[-1], shape[-2])


# mm_blas / mm_loops: nb batch dims (sizes in batch; the element strides of a's, b's and y's matrices
# along them); a (m x k) at a_off, b (k x n) at b_off, y (m x n) at y_off; ta / tb: a / b read
# transposed (BLAS transpose flags); workers: those a large GEMM is split over
MATMUL_BATCHED = RecordSpec("matmul_batched", f"nb batch*{MAXR} a_stride*{MAXR} b_stride*{MAXR} y_stride*{MAXR} "
                                              "a_off b_off y_off m k n ta tb workers")
# mm_update: y -= s[s_off] * op(a) @ op(b), one GEMM of MATMUL_BATCHED's fields without batch dims
MATMUL_UPDATE = RecordSpec("matmul_update", "a_off b_off s_off y_off m k n ta tb workers")


def mm_fields(env, a, b_, out, ta: bool = False, tb: bool = False) -> dict:
    """The fields of ``MATMUL_BATCHED``: ``a``/``b_`` are contiguous; ``ta``/``tb`` read an operand
    (rank >= 2) as its transpose in the last two axes; the workers: ``threads.kernel_threads()``."""
    sa, sb = env.shape(a), env.shape(b_)
    a2 = (1,) + sa if len(sa) == 1 else (_swap_last(sa) if ta else sa)
    b2 = sb + (1,) if len(sb) == 1 else (_swap_last(sb) if tb else sb)
    m, k, n = a2[-2], a2[-1], b2[-1]
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    abs_ = broadcast_view(contiguous(0, a2[:-2]), batch).strides if batch else ()
    bbs = broadcast_view(contiguous(0, b2[:-2]), batch).strides if batch else ()
    if len(batch) > MAXR:
        raise ValueError(f"matmul with more than {MAXR} batch dimensions")
    return dict(nb=len(batch), batch=_pad(batch), a_stride=_pad([s * m * k for s in abs_]),
                b_stride=_pad([s * k * n for s in bbs]), y_stride=_pad([s * m * n for s in c_strides(batch)]),
                a_off=env.off(a), b_off=env.off(b_), y_off=env.off(out), m=m, k=k, n=n, ta=int(ta), tb=int(tb),
                workers=threads.kernel_threads())


def mm_record(env, a, b_, out, ta: bool = False, tb: bool = False) -> List[int]:
    """The record of ``mm_*`` (``MATMUL_BATCHED``, fields of ``mm_fields``)."""
    return MATMUL_BATCHED.pack(mm_fields(env, a, b_, out, ta, tb))


def mm_update_record(env, a, b_, s, out, ta: bool, tb: bool) -> List[int]:
    """The record of ``mm_update`` (``MATMUL_UPDATE``): out -= s * op(a) @ op(b_), matrices."""
    f = dict(mm_fields(env, a, b_, out, ta, tb), s_off=env.off(s))
    return MATMUL_UPDATE.pack({name: f[name] for name in MATMUL_UPDATE.at._fields})


@lowers("MatMul", "TransposedMatMul")
def _matmul(op, b):
    """BLAS GEMM for floats (transposed operands by flag, no copy), plain loops for integers."""
    a, b_ = op.inputs
    out = op.outputs[0]
    ta, tb = bool(op.attrs.get("transpose_a", False)), bool(op.attrs.get("transpose_b", False))
    kernel = "mm_blas" if a.dtype.kind == "f" else "mm_loops"
    b.call(kernel, [a, b_], out, lambda env: mm_record(env, a, b_, b.write_key(out), ta, tb),
           MATMUL_BATCHED.size)


# -- fills, constants, one_hot, random -------------------------------------------------------------

ARRAY_FILL = RecordSpec("array_fill", "n y_off value")              # fill: y[y_off:y_off + n] = value
ARRAY_ONEHOT = RecordSpec("array_onehot", "n x_off y_off depth")    # onehot: n indices at x_off -> (n, depth)


@lowers("Const")
def _const(op, b):
    value = op.attrs["value"]
    b.const(op.outputs[0], lambda env: value)


@lowers("Fill")
def _fill(op, b):
    a = op.attrs
    b.const(op.outputs[0], lambda env: np.full(a["shape"], a["value"], a["dtype"]))


@lowers("FillLike")
def _fill_like(op, b):
    x, a = op.inputs[0], op.attrs
    b.const(op.outputs[0], lambda env: np.full(env.shape(x), a["value"], a["dtype"]))


@lowers("ReducedCount")
def _reduced_count(op, b):
    x, a = op.inputs[0], op.attrs

    def count(env):
        shape = env.shape(x)
        dims = shape if a["axes"] is None else [shape[i] for i in a["axes"]]
        return np.asarray(int(np.prod(dims, dtype=np.int64)), dtype=a["dtype"])
    b.const(op.outputs[0], count)


@lowers("OneHot")
def _one_hot(op, b):
    x, out = op.inputs[0], op.outputs[0]
    depth = op.attrs["depth"]
    b.call("onehot", [x], out, lambda env: ARRAY_ONEHOT.pack(dict(
        n=int(np.prod(env.shape(x), dtype=np.int64)), x_off=env.off(x), y_off=env.off(b.write_key(out)), depth=depth)),
        ARRAY_ONEHOT.size)


@lowers("RandomNormal", "RandomUniform")
def _random(op, b):
    a, src = op.attrs, origin(op)
    draw = "normal" if op.type == "RandomNormal" else "uniform"

    def value(state, env):
        return getattr(state.rng(src), draw)(a["a"], a["b"], size=a["shape"]).astype(a["dtype"])
    b.host(op.outputs[0], value)


# -- state ------------------------------------------------------------------------------------------

@lowers("Variable")
def _variable(op, b):
    b.variable(op.outputs[0], origin(op))


@lowers("Assign")
def _assign(op, b):
    b.assign(origin(op.inputs[0].op), op.inputs[1], op.attrs["mode"], op)


@lowers("FusedElementwise")
def _fused(op, b):
    """A fused group: one loop kernel generated into the plan module (see ``fused.py``)."""
    b.fused(op)


@lowers("NoOp")
def _noop(op, b):
    pass


@lowers("Placeholder")
def _placeholder(op, b):   # scheduled only when fed (schedule() rejects unfed placeholders)
    pass
