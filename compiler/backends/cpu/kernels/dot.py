"""``red_Dot``: the sum of a product over all elements in one pass (``lowerings.fuse_sum_of_products``:
``ReduceSum(Mul(a, b))`` where only the sum reads the product), each product rounded to the operands'
dtype and summed in float64 as ``red_SumF`` sums it. It runs in phases (``lowerings.PHASES``): the
partial sums of the record's parts in shares on the kernel workers (``dot_parts``), then their sum
in order (``dot_total``). The parts depend on the run's length only, so the sum is the same for
every worker count. Records: ``lowerings.DOT_SUM`` (``DOT``), its shares' ``DOT_SUM_SHARE``."""
import numpy as np
from numba import njit

from ..lowerings import DOT_SUM, DOT_SUM_SHARE
from .base import HELPER, JIT

DOT = DOT_SUM.at     # module names: unique over kernels/ (library.SOURCE imports them all)
DOTS = DOT_SUM_SHARE.at


@njit(fastmath={"reassoc"}, **HELPER)
def _dot_run(A, ao, B, bo, n, S, so):
    """S[so] = the float64 sum of A[ao + j] * B[bo + j], j < n, in any order."""
    acc = 0.0
    for j in range(n):
        acc += A[np.uint64(ao + j)] * B[np.uint64(bo + j)]
    S[np.uint64(so)] = acc


@njit(**HELPER)
def _dot_total(S, so, T, Y, yo):
    """Y[yo] = S[so] + ... + S[so + T - 1], in order."""
    total = 0.0
    for t in range(T):
        total += S[np.uint64(so + t)]
    Y[np.uint64(yo)] = total


@njit(**JIT)
def dot_parts(X0, X1, WS, M, E, p):
    """Share t of G (the record's ``shares``): the float64 partial sums of parts [t P / G, (t + 1) P / G)
    of the P parts (equal runs of the n products) into WS at ws_off + part."""
    n, P, G, t = M[p + DOTS.n], M[p + DOTS.parts], M[p + DOTS.shares], M[p + DOTS.share]
    w = M[p + DOTS.ws_off]
    for j in range(t * P // G, (t + 1) * P // G):
        lo, hi = j * n // P, (j + 1) * n // P
        _dot_run(X0, M[p + DOTS.a_off] + lo, X1, M[p + DOTS.b_off] + lo, hi - lo, WS, w + j)


@njit(**JIT)
def dot_total(WS, Y, M, E, p):
    """Y[y_off] = the sum of the P partial sums at ws_off, in order."""
    _dot_total(WS, M[p + DOT.ws_off], M[p + DOT.parts], Y, M[p + DOT.y_off])
