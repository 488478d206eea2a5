"""Collective ops on the cpu backend: ``Allreduce`` as a host call between two native calls.

The step stays one code table; an ``Allreduce`` call is a *host call* (``Lowering.host_call``):
the native step runs the table up to it (one Python->native call), mpi4py's ``Allreduce`` then
combines the flat buffer in place in the arena (no copy on the Python side), and the next native
call runs the rest (``native.NativeStep``). ``DistributedOptimizer`` packs each dtype's gradients
into one buffer, so a step is at most one more native call per dtype; the packing itself copies
nothing (``lowerings._fusion_buffer_pieces``: the gradients are computed into the buffer, and the
parts after the allreduce are pieces of it).

Why not call MPI from inside the native loop (``numba-mpi``): the kernel wrappers are cached on
disk and loaded by address into every process, and an MPI function's address differs per
process; the per-step cost of splitting is one more Python->native call (a few microseconds),
small next to any allreduce of gradients. A CUDA backend lowers the same op to its own
collective (NCCL) on its device buffer.
"""
from __future__ import annotations

import numpy as np

from staticgraph.ops.collective import allreduce

from .lowerings import lowers
from .records import RecordSpec

ALLREDUCE = RecordSpec("allreduce", "x_off y_off n")


@lowers("Allreduce")
def _allreduce(op, b):
    x, y = op.inputs[0], op.outputs[0]
    key = b.write_key(y)

    def record(env):
        return ALLREDUCE.pack(dict(x_off=env.off(x), y_off=env.off(key), n=int(np.prod(env.shape(x), dtype=np.int64))))

    def run(X, Y, M, E, p, kind=op.attrs["op"], parts=op.attrs["parts"], who=op):
        R = ALLREDUCE.at
        n, xo, yo = int(M[p + R.n]), int(M[p + R.x_off]), int(M[p + R.y_off])
        out, src = Y[yo:yo + n], X[xo:xo + n]
        if out.ctypes.data != src.ctypes.data:     # else in place: the planner put the output on the input
            out[...] = src
        allreduce(out, kind, parts, who)
    b.host_call("allreduce", [x], y, record, ALLREDUCE.size, run, inplace=[x])
