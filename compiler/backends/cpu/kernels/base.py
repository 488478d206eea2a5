"""What every kernel module shares: Numba options, typed constants, the scalar helpers of the
elementwise expressions (``library.ELEMENTWISE``), and what the generated elementwise loops
(``library.loop_kernel``) call: their row buffer and the helpers that walk their record."""
import numpy as np
from numba import config as _config, njit

from ..library import EW_LOOP, EW_OPERAND, ROW_CHUNK


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


if _config.DISABLE_JIT:      # kernels run as Python
    def row_buffer(like):
        return np.empty(ROW_CHUNK, like.dtype)
else:
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def row_buffer(typingctx, like):
        """A 1-d array of ``ROW_CHUNK`` elements of ``like``'s dtype on the calling kernel's stack
        (its entry block): the elementwise loops' row buffer (``library.loop_kernel``). Unlike
        ``np.empty`` it needs no allocation, no reference counting and no Numba runtime code,
        about a sixth of an elementwise wrapper's compile; LLVM also knows that it aliases no
        operand, so loops reading it need no overlap check. Valid while the kernel runs."""
        if not isinstance(like, _types.Array):
            return None
        out = _types.Array(like.dtype, 1, "C")

        def codegen(context, builder, sig, args):
            from numba.np.arrayobj import make_array, populate_array     # not at import: a warm start loads no kernel
            ty = context.get_data_type(like.dtype)
            data = _cgutils.alloca_once(builder, ty, size=ROW_CHUNK)
            data.align = 64
            size = context.get_abi_sizeof(ty)
            intp = context.get_value_type(_types.intp)
            ary = make_array(out)(context, builder)
            populate_array(ary, data=data, shape=[intp(ROW_CHUNK)], strides=[intp(size)], itemsize=intp(size),
                           meminfo=None)
            return ary._getvalue()
        return out(like), codegen


# the elementwise loops' record (``library.ew_spec``): the loop's fields (EWL), then per operand its
# offset and strides (EWO), operand j's from EWL_SIZE + j * EWO_SIZE on
EWL, EWO = EW_LOOP.at, EW_OPERAND.at
EWL_SIZE, EWO_SIZE = EW_LOOP.size, EW_OPERAND.size


@njit(**HELPER)
def _ew_rows(M, p):
    """The rows of the elementwise loop at p: the product of its dims but the last two."""
    rows = 1
    for d in range(M[p + EWL.nd] - 2):
        rows *= M[p + EWL.shape + d]
    return rows


@njit(inline="always", **HELPER)
def _unravel(M, b, q, shape, strides, n):
    """The element offset of position q, row-major over n dims (their sizes at M[shape:], their
    strides at M[strides:]), from offset b: how the reductions walk their record's dims
    (``_ew_bases`` walks every operand of a loop at once). Inlined by Numba: LLVM left it a call,
    which doubled a reduction over many short rows."""
    for d in range(n - 1, -1, -1):
        sz = M[shape + d]
        b += (q % sz) * M[strides + d]
        q //= sz
    return b


@njit(**HELPER)
def _ew_bases(M, p, q, B, n):
    """B[j] = operand j's element offset at row q (row-major over the dims but the last two), for
    the n operands: one call per row, each dim's index taken once for all of them."""
    for j in range(n):
        B[j] = M[p + EWL_SIZE + j * EWO_SIZE + EWO.off]
    for d in range(M[p + EWL.nd] - 3, -1, -1):
        sz = M[p + EWL.shape + d]
        i = q % sz
        q //= sz
        for j in range(n):
            B[j] += i * M[p + EWL_SIZE + j * EWO_SIZE + EWO.strides + d]


@njit(**HELPER)
def _ew_same_view(M, p, j):
    """Whether operand j (input 0: after the outputs) has operand 0's offset and strides."""
    a, b = p + EWL_SIZE, p + EWL_SIZE + j * EWO_SIZE
    if M[a + EWO.off] != M[b + EWO.off]:
        return False
    for d in range(M[p + EWL.nd]):
        if M[a + EWO.strides + d] != M[b + EWO.strides + d]:
            return False
    return True


@njit(**HELPER)
def _spread(X, c, T, n, t):
    """T[:n] = X[c], unless T holds it already (spread from t == c); returns c."""
    if t != c:
        v = X[c]
        for j in range(n):
            T[j] = v
    return c
