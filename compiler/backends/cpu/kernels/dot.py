"""``red_Dot``: the sum of a product over all elements in one pass (``lowerings.fuse_sum_of_products``:
``ReduceSum(Mul(a, b))`` where only the sum reads the product), each product rounded to the operands'
dtype and summed in float64 as ``red_SumF`` sums it, in bands over the kernel workers. Record:
``lowerings.DOT_SUM`` (``DOT``)."""
import numpy as np
from numba import njit, prange

from ..lowerings import DOT_SUM
from .base import JIT, PJIT

DOT = DOT_SUM.at     # module names: unique over kernels/ (library.SOURCE imports them all)


@njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc"})
def _dot_run(A, ao, B, bo, n, S, so):
    """S[so] = the float64 sum of A[ao + j] * B[bo + j], j < n, in any order."""
    acc = 0.0
    for j in range(n):
        acc += A[np.uint64(ao + j)] * B[np.uint64(bo + j)]
    S[np.uint64(so)] = acc


@njit(**JIT)
def _dot_total(S, so, T, Y, yo):
    """Y[yo] = S[so] + ... + S[so + T - 1], in order."""
    total = 0.0
    for t in range(T):
        total += S[np.uint64(so + t)]
    Y[np.uint64(yo)] = total


@njit(**PJIT)
def red_Dot(X0, X1, Y, WS, M, E, p):
    """Y[y_off] = sum of X0[a_off + j] * X1[b_off + j], j < n, from T partial sums (float64, at
    ws_off in WS) over the T workers. Floats move through WS and helpers only: inlined into its
    parallel native wrapper, a float summed or returned in this body read 0 (Numba 0.68: the
    dispatcher itself summed right)."""
    n = M[p + DOT.n]
    T = M[p + DOT.workers]
    w = M[p + DOT.ws_off]
    if T == 1:
        _dot_run(X0, M[p + DOT.a_off], X1, M[p + DOT.b_off], n, WS, w)
    else:
        for u in prange(T):
            t = np.int64(u)
            lo, hi = t * n // T, (t + 1) * n // T
            _dot_run(X0, M[p + DOT.a_off] + lo, X1, M[p + DOT.b_off] + lo, hi - lo, WS, w + t)
    _dot_total(WS, w, T, Y, M[p + DOT.y_off])
