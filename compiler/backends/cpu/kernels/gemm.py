"""GEMM on row-major matrices at element offsets of flat float buffers, by NumPy's OpenBLAS (its
CBLAS symbols, found by ``blas.py``) or Numba's ``numba_xxgemm``; the BLAS's thread count; GEMMs
split over the kernel workers (``_gemm_par``).

The symbols are looked up when this module is imported (``library.load`` makes the BLAS visible
first); they are part of the kernel library's key (``library.config_text``), since Numba's cache
does not see module globals."""
import numpy as np
from numba import config as _config, njit, prange, types

from .. import blas
from ..library import PAR_GEMM
from .base import HELPER, ONE, PHELPER

_CBLAS = blas.KERNEL_BLAS.gemm if blas.KERNEL_BLAS is not None else None     # (sgemm, dgemm) symbols, or None
# the getter and setter symbols of the kernels' BLAS threads (None: unknown)
_KERNEL_BLAS_THREADS = (blas.KERNEL_BLAS.get_threads, blas.KERNEL_BLAS.set_threads) if blas.KERNEL_BLAS is not None else None

if _config.DISABLE_JIT:      # kernels run as Python: the same GEMM through NumPy
    def _xgemm(ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc):
        from numpy.lib.stride_tricks import as_strided

        def mat(X, o, rows, cols, ld, t):
            v = as_strided(X[o:], (cols, rows) if t else (rows, cols), (ld * X.itemsize, X.itemsize))
            return v.T if t else v
        c = as_strided(C[co:], (m, n), (ldc * C.itemsize, C.itemsize), writeable=True)
        r = alpha * (mat(A, ao, m, k, lda, ta) @ mat(B, bo, k, n, ldb, tb))
        c[...] = r if beta == 0 else r + beta * c
        return 0
else:
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _xgemm(typingctx, ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc):
        """BLAS GEMM on row-major matrices at element offsets of flat float arrays: NumPy's
        OpenBLAS by its CBLAS symbols ``_CBLAS`` (see blas.py), else Numba's ``numba_xxgemm``
        (SciPy's BLAS, as ``np.dot`` uses); returns BLAS's status (0 from CBLAS)."""
        if not all(isinstance(a, _types.Array) for a in (A, B, C)) or C.dtype not in (_types.float32, _types.float64)                 or A.dtype != C.dtype or B.dtype != C.dtype:
            return None
        sig = _types.int32(ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc)

        def codegen(context, builder, sig, args):
            st = sig.args
            intp = context.get_value_type(_types.intp)
            char = _ir.IntType(8)
            vp = _cgutils.voidptr_t

            def num(i):
                return context.cast(builder, args[i], st[i], _types.intp)

            def ptr(i, j):
                data = context.make_array(st[i])(context, builder, args[i]).data
                return builder.bitcast(builder.gep(data, [num(j)]), vp)

            def slot(i):
                v = context.cast(builder, args[i], st[i], C.dtype)
                return builder.bitcast(_cgutils.alloca_once_value(builder, v), vp)

            def trans(i):
                flag = builder.icmp_signed("!=", num(i), _ir.Constant(intp, 0))
                return builder.select(flag, _ir.Constant(char, ord("t")), _ir.Constant(char, ord("n")))
            if _CBLAS is not None:     # NumPy's OpenBLAS: row-major CBLAS, 64-bit integers
                i32 = _ir.IntType(32)
                real = context.get_value_type(C.dtype)

                def cblas_trans(i):
                    flag = builder.icmp_signed("!=", num(i), _ir.Constant(intp, 0))
                    return builder.select(flag, _ir.Constant(i32, 112), _ir.Constant(i32, 111))

                def value(i):
                    return context.cast(builder, args[i], st[i], C.dtype)
                fnty = _ir.FunctionType(_ir.VoidType(), [i32, i32, i32, intp, intp, intp, real, vp, intp,
                                                         vp, intp, real, vp, intp])
                fn = _cgutils.get_or_insert_function(builder.module, fnty,
                                                     _CBLAS[0 if C.dtype == _types.float32 else 1])
                builder.call(fn, [_ir.Constant(i32, 101), cblas_trans(0), cblas_trans(1), num(2), num(3), num(4),
                                  value(5), ptr(6, 7), num(8), ptr(9, 10), num(11), value(12), ptr(13, 14),
                                  num(15)])
                return _ir.Constant(_ir.IntType(32), 0)
            fnty = _ir.FunctionType(_ir.IntType(32), [char, char, char, intp, intp, intp, vp, vp, intp,
                                                      vp, intp, vp, vp, intp])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
            kind = _ir.Constant(char, ord("s" if C.dtype == _types.float32 else "d"))
            # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
            return builder.call(fn, [kind, trans(1), trans(0), num(3), num(2), num(4), slot(5), ptr(9, 10),
                                     num(11), ptr(6, 7), num(8), slot(12), ptr(13, 14), num(15)])
        return sig, codegen


@njit(**HELPER)
def _gemm(ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc):
    """C[co:] (m x n, row stride ldc) = alpha * op(A) @ op(B) + beta * C, row-major operands at
    element offsets of flat float arrays: op(A) is m x k (stored k x m with row stride lda when
    ``ta``, else m x k), op(B) k x n likewise. beta == 0 never reads C."""
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            for j in range(n):
                C[co + i * ldc + j] = 0 if beta == 0 else beta * C[co + i * ldc + j]
        return
    _xgemm(ta, tb, m, n, k, alpha, A, ao, max(lda, 1), B, bo, max(ldb, 1), beta, C, co, max(ldc, 1))


@njit(**HELPER)
def _copy_transposed(A, ao, rows, cols, lda, B, bo):
    """B[bo:] (cols x rows, contiguous) = the transpose of the rows x cols matrix at A[ao:] (row
    stride lda): before a GEMM whose operand OpenBLAS would otherwise read transposed (slower)."""
    for j in range(cols):
        for i in range(rows):
            B[np.uint64(bo + j * rows + i)] = A[np.uint64(ao + i * lda + j)]


if _config.DISABLE_JIT or _KERNEL_BLAS_THREADS is None:   # kernels run as Python, or no control: leave them alone
    def _blas_get_threads():
        return 1

    def _blas_set_threads(n):
        pass
else:
    _blas_get_threads = types.ExternalFunction(_KERNEL_BLAS_THREADS[0], types.intc())
    _blas_set_threads = types.ExternalFunction(_KERNEL_BLAS_THREADS[1], types.void(types.intc))


@njit(**HELPER)
def _blas_at_most(n):
    """Run the kernels' GEMMs on at most n BLAS threads; return the count to restore (``_blas_restore``)."""
    nt = _blas_get_threads()
    if nt > n:
        _blas_set_threads(n)
    return nt


@njit(**HELPER)
def _blas_restore(n, nt):
    """Undo ``_blas_at_most(n)`` that returned nt."""
    if nt > n:
        _blas_set_threads(nt)


@njit(**PHELPER)
def _gemm_par(T, ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc):
    """``_gemm`` split over T workers of one BLAS thread each (``threads.py``) from PAR_GEMM multiply-adds:
    bands of C's rows when m >= n, else bands of its columns (multiples of 16)."""
    if T == 1 or m * n * k < PAR_GEMM:
        _gemm(ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc)
        return
    rows = m >= n
    size = m if rows else n
    step = (size + T - 1) // T
    if not rows:
        step = (step + 15) // 16 * 16
    nt = _blas_at_most(ONE)
    for u in prange(T):
        t = np.int64(u)     # prange's index is unsigned: callees typed for int64 are reused
        lo = min(size, t * step)
        hi = min(size, lo + step)
        if rows:
            _gemm(ta, tb, hi - lo, n, k, alpha, A, ao + (lo if ta else lo * lda), lda, B, bo, ldb,
                  beta, C, co + lo * ldc, ldc)
        else:
            _gemm(ta, tb, m, hi - lo, k, alpha, A, ao, lda, B, bo + (lo * ldb if tb else lo), ldb,
                  beta, C, co + lo, ldc)
    _blas_restore(ONE, nt)
