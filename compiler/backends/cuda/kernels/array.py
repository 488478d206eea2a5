"""``fill`` and ``onehot`` (records ``lowerings.ARRAY_FILL``, ``ARRAY_ONEHOT``; the cpu kernels'
semantics: ``cpu/kernels/array.py``), one thread per output element."""
from __future__ import annotations

from numba import cuda

from ...cpu.lowerings import ARRAY_FILL, ARRAY_ONEHOT
from . import launches
from .common import TPB, blocks

FILL = ARRAY_FILL.at
HOT = ARRAY_ONEHOT.at


@cuda.jit
def fill(Y, M, E, p):
    n = M[p + FILL.n]
    off = M[p + FILL.y_off]
    v = M[p + FILL.value]
    i = cuda.grid(1)
    while i < n:
        Y[off + i] = v
        i += cuda.gridsize(1)


@cuda.jit
def onehot(X, Y, M, E, p):
    n = M[p + HOT.n]
    depth = M[p + HOT.depth]
    xo = M[p + HOT.x_off]
    yo = M[p + HOT.y_off]
    i = cuda.grid(1)
    while i < n * depth:
        Y[yo + i] = 1.0 if X[xo + i // depth] == i % depth else 0.0
        i += cuda.gridsize(1)


@launches("fill")
def _fill(arrays, M, E, p, rec, stream):
    n = ARRAY_FILL.unpack(rec)["n"]
    if n:
        fill[blocks(n), TPB, stream](*arrays, M, E, p)


@launches("onehot")
def _onehot(arrays, M, E, p, rec, stream):
    r = ARRAY_ONEHOT.unpack(rec)
    if r["n"] * r["depth"]:
        onehot[blocks(r["n"] * r["depth"]), TPB, stream](*arrays, M, E, p)
