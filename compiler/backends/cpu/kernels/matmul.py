"""Batched matrix products (``mm_blas``: BLAS GEMMs, small products as loops; ``mm_loops``: loops
only, any dtype) and the SGD write-back of a dense layer's weight as one GEMM (``mm_update``).

Records: ``lowerings.MATMUL_BATCHED`` (``MM``: mm_blas, mm_loops) and ``lowerings.MATMUL_UPDATE``
(``MMU``: mm_update). Transposed operands go to GEMM as transpose flags, never copied."""
import numpy as np
from numba import njit

from ..library import BLAS_AUTO, BLAS_SMALL, BLAS_TINY, MM_LOOPS_UP_TO
from ..lowerings import MATMUL_BATCHED, MATMUL_UPDATE
from .base import HELPER, JIT
from .gemm import _KERNEL_BLAS_THREADS, _blas_at_most, _blas_restore, _gemm_par

# STATICGRAPH_BLAS_THREADS=auto: mid-size GEMMs run on one BLAS thread (see library.BLAS_SMALL)
_AUTO = BLAS_AUTO and _KERNEL_BLAS_THREADS is not None
MM = MATMUL_BATCHED.at     # module names: unique over kernels/ (library.SOURCE imports them all)
MMU = MATMUL_UPDATE.at


@njit(**HELPER)
def _mm_offsets(M, p, q):
    """Element offsets of batch q's A, B and Y (the record at p)."""
    nb = M[p + MM.nb]
    r = q
    ao = M[p + MM.a_off]
    bo = M[p + MM.b_off]
    yo = M[p + MM.y_off]
    for d in range(nb - 1, -1, -1):
        sz = M[p + MM.batch + d]
        i = r % sz
        r //= sz
        ao += i * M[p + MM.a_stride + d]
        bo += i * M[p + MM.b_stride + d]
        yo += i * M[p + MM.y_stride + d]
    return ao, bo, yo


@njit(**HELPER)
def _mm_batches(M, p):
    """The batch count and m, k, n, ta, tb, workers of the record at p."""
    outer = 1
    for d in range(M[p + MM.nb]):
        outer *= M[p + MM.batch + d]
    return outer, M[p + MM.m], M[p + MM.k], M[p + MM.n], M[p + MM.ta], M[p + MM.tb], M[p + MM.workers]


@njit(**HELPER)
def _mm_loops(A, ao, B, bo, Y, yo, m, k, n, ta, tb):
    """Y[yo:] (m x n) = op(A) @ op(B) as plain loops, accumulating in the result's type (a BLAS
    call costs more than a tiny product; integer dtypes have no BLAS)."""
    for i in range(m):
        for j in range(n):
            acc = 0
            for t in range(k):
                av = A[ao + (t * m + i if ta else i * k + t)]
                bv = B[bo + (j * k + t if tb else t * n + j)]
                acc += av * bv
            Y[yo + i * n + j] = acc


@njit(**HELPER)
def _mm_empty(Y, yo, m, n, k):
    """Whether batch's product is empty; a product over k == 0 is written as zeros."""
    if m == 0 or n == 0:
        return True
    if k == 0:
        for i in range(m * n):
            Y[yo + i] = 0
        return True
    return False


@njit(**JIT)
def mm_blas(A, B, Y, M, E, p):
    """Batched float matrix product: GEMMs (split over the workers from ``PAR_GEMM`` multiply-adds),
    products of at most ``MM_LOOPS_UP_TO`` multiply-adds as loops."""
    outer, m, k, n, ta, tb, T = _mm_batches(M, p)
    lim = 1 if BLAS_TINY < m * n * k < BLAS_SMALL else 1 << 30     # mid-size: one thread
    nt = _blas_at_most(lim) if _AUTO else 0
    for q in range(outer):
        ao, bo, yo = _mm_offsets(M, p, q)
        if _mm_empty(Y, yo, m, n, k):
            continue
        if m * n * k <= MM_LOOPS_UP_TO:
            _mm_loops(A, ao, B, bo, Y, yo, m, k, n, ta, tb)
        else:
            _gemm_par(T, ta, tb, m, n, k, 1.0, A, ao, m if ta else k, B, bo, k if tb else n, 0.0, Y, yo, n)
    if _AUTO:
        _blas_restore(lim, nt)


@njit(**JIT)
def mm_loops(A, B, Y, M, E, p):
    """Batched matrix product as loops (integer dtypes, and where no BLAS applies)."""
    outer, m, k, n, ta, tb, T = _mm_batches(M, p)
    for q in range(outer):
        ao, bo, yo = _mm_offsets(M, p, q)
        if not _mm_empty(Y, yo, m, n, k):
            _mm_loops(A, ao, B, bo, Y, yo, m, k, n, ta, tb)


@njit(**JIT)
def mm_update(A, B, S, Y, M, E, p):
    """Y -= S[s] * op(A) @ op(B) in place: the write-back of an SGD step on a dense layer's weight
    (``lowering._gemm_updates``), one GEMM into the variable."""
    m = M[p + MMU.m]
    k = M[p + MMU.k]
    n = M[p + MMU.n]
    ta = M[p + MMU.ta]
    tb = M[p + MMU.tb]
    # alpha as float64, like every other GEMM's: a float32 S made a second compile of _gemm_par and _gemm
    alpha = np.float64(-S[M[p + MMU.s_off]])
    _gemm_par(M[p + MMU.workers], ta, tb, m, n, k, alpha, A, M[p + MMU.a_off], m if ta else k,
              B, M[p + MMU.b_off], k if tb else n, 1.0, Y, M[p + MMU.y_off], n)
