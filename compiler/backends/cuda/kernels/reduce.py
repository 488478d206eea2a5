"""The reductions ``red_SumF``, ``red_SumI``, ``red_Mean``, ``red_Max``, ``red_ArgMax`` (record
``lowerings.REDUCE``: kept dims, reduced dims, offsets, the reduced count) and ``red_Dot``
(``lowerings.DOT_SUM``), as tree reductions in shared memory.

One block per kept position (grid-stride over them): thread t reduces the reduced elements t,
t + B, t + 2B... (row-major over the reduced dims) in order, then the block combines its B
partials pairwise in a fixed tree. The order depends only on the block size, never on timing:
the same inputs give the same bits every run. Sums accumulate in float64 (floats) or int64
(ints), as on cpu; max and argmax keep NaN (the first NaN's index for argmax) and, on ties, the
first index, as NumPy does."""
from __future__ import annotations

import math

from numba import cuda, float64, int64

from ...cpu.lowerings import DOT_SUM, REDUCE
from . import launches
from .common import MAX_BLOCKS, RED_TPB, tree_sum

RED = REDUCE.at
DOT = DOT_SUM.at
SUM, MEAN, MAX, ARGMAX = 0, 1, 2, 3


@cuda.jit(device=True)
def _takes(va, ia, vb, ib):
    """(vb, ib) replaces (va, ia) as the max so far: larger, NaN, or equal at an earlier index."""
    if ib < 0:
        return False
    if ia < 0:
        return True
    if va != va or vb != vb:
        return vb != vb and (va == va or ib < ia)
    return vb > va or (vb == va and ib < ia)


def _reduction(kind: int, acc):
    """A reduction kernel of ``kind`` accumulating in numba type ``acc``."""
    @cuda.jit
    def reduce(X, Y, M, E, p):
        sv = cuda.shared.array(RED_TPB, acc)
        si = cuda.shared.array(RED_TPB, int64)
        t = cuda.threadIdx.x
        kout = 1
        for d in range(M[p + RED.nk]):
            kout *= M[p + RED.kshape + d]
        count = M[p + RED.count]
        nr = M[p + RED.nr]
        q = cuda.blockIdx.x
        while q < kout:
            xb = M[p + RED.x_off]
            r = q
            for d in range(M[p + RED.nk] - 1, -1, -1):
                sz = M[p + RED.kshape + d]
                xb += (r % sz) * M[p + RED.kstride + d]
                r //= sz
            v = acc(0)
            idx = -1
            j = t
            while j < count:
                o = xb
                r = j
                for d in range(nr - 1, -1, -1):
                    sz = M[p + RED.rshape + d]
                    o += (r % sz) * M[p + RED.rstride + d]
                    r //= sz
                x = acc(X[o])
                if kind <= MEAN:
                    v += x
                elif _takes(v, idx, x, j):
                    v = x
                    idx = j
                j += RED_TPB
            sv[t] = v
            si[t] = idx
            cuda.syncthreads()
            s = RED_TPB // 2
            while s > 0:
                if t < s:
                    if kind <= MEAN:
                        sv[t] += sv[t + s]
                    elif _takes(sv[t], si[t], sv[t + s], si[t + s]):
                        sv[t] = sv[t + s]
                        si[t] = si[t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                yo = M[p + RED.y_off] + q
                if kind == SUM or kind == MAX:
                    Y[yo] = sv[0]
                elif kind == MEAN:
                    Y[yo] = sv[0] / count if count else math.nan
                else:
                    Y[yo] = si[0]
            cuda.syncthreads()
            q += cuda.gridDim.x
    return reduce


KERNELS = {(name, ints): _reduction(kind, int64 if ints else float64)
           for name, kind in (("red_SumF", SUM), ("red_SumI", SUM), ("red_Mean", MEAN), ("red_Max", MAX),
                              ("red_ArgMax", ARGMAX)) for ints in (False, True)}


def _launcher(name):
    def launch(arrays, M, E, p, rec, stream):
        r = REDUCE.unpack(rec)
        kout = 1
        for d in range(r["nk"]):
            kout *= r["kshape"][d]
        if kout:
            ints = arrays[0].dtype.kind in "iub"
            KERNELS[(name, ints)][min(kout, MAX_BLOCKS), RED_TPB, stream](*arrays, M, E, p)
    return launch


for _name in sorted({name for name, _ in KERNELS}):
    launches(_name)(_launcher(_name))


@cuda.jit
def red_Dot(X0, X1, Y, WS, M, E, p):
    """Y[y_off] = the sum of the n products X0[a_off + j] * X1[b_off + j] (float64, one block)."""
    sv = cuda.shared.array(RED_TPB, float64)
    t = cuda.threadIdx.x
    n = M[p + DOT.n]
    ao = M[p + DOT.a_off]
    bo = M[p + DOT.b_off]
    v = float64(0)
    j = t
    while j < n:
        v += float64(X0[ao + j]) * float64(X1[bo + j])
        j += RED_TPB
    sv[t] = v
    tree_sum(sv, t, RED_TPB)
    if t == 0:
        Y[M[p + DOT.y_off]] = sv[0]


@launches("red_Dot")
def _dot(arrays, M, E, p, rec, stream):
    red_Dot[1, RED_TPB, stream](*arrays, M, E, p)
