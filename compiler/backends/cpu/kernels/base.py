"""What every kernel module shares: Numba options, typed constants and the scalar helpers of the
elementwise expressions (``library.ELEMENTWISE``)."""
import numpy as np
from numba import njit


JIT = dict(cache=True, error_model="numpy", nogil=True)
# A helper (a name with a leading underscore) is only ever called from other kernels, whose
# wrappers link its code: Numba then builds no CPython or C-callable entry for it (a Python call
# of a helper is not supported; call it from an ``@njit`` function). Those entries were about a
# tenth of a cold compile: each is code Numba generates, optimizes and emits once per helper.
HELPER = dict(JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)
PHELPER = dict(HELPER, parallel=True)  # a helper with a ``prange`` over worker threads (gemm._gemm_par, see threads.py)
# Constant arguments of the kernels' helper calls: NumPy scalars are typed int64 / bool, where a
# bare 0, 1, True or False is a literal type that Numba compiles (and links) one more
# specialisation of the callee for.
NT, TR = np.int64(0), np.int64(1)       # GEMM operands as they are / transposed
ZERO, ONE = np.int64(0), np.int64(1)
OFF, ON = np.bool_(False), np.bool_(True)


@njit(**HELPER)
def _sign(a):
    if a > 0:
        return 1
    if a < 0:
        return -1
    return a


@njit(**HELPER)
def _relu(a):
    return a if (a > 0 or a != a) else 0


@njit(**HELPER)
def _maximum(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@njit(**HELPER)
def _minimum(a, b):
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@njit(**HELPER)
def _sigmoid(x):
    y = -x
    m = y if y > 0.0 else 0.0
    return np.exp(-(m + np.log1p(np.exp(-abs(y)))))


@njit(**HELPER)
def _ipow(a, b):
    if b < 0:
        return 0
    r = 1
    while b:
        if b & 1:
            r = r * a
        a = a * a
        b >>= 1
    return r
