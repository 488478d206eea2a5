"""GEMMs: ``mm_blas`` and ``mm_loops`` (record ``lowerings.MATMUL_BATCHED``: batch dims with each
operand's matrix strides, offsets, m k n, transpose flags) and ``mm_update``
(``lowerings.MATMUL_UPDATE``: y -= s * op(a) @ op(b), the write-back of an SGD step), as one
tiled shared-memory kernel: each block computes a TILE x TILE block of y, staging TILE x TILE
tiles of op(a) and op(b) in shared memory. Floats accumulate in the output's dtype (as cuBLAS
does), integers in int64.

On a real GPU, ``mm_blas``'s float GEMMs without batch dims go to cuBLAS where ``cublas.choose()``
found it usable (nvmath-python); everything else, and every GEMM on the simulator, runs this
kernel. ``engine()`` says which, for ``plan.explain()``."""
from __future__ import annotations

import numpy as np
from numba import cuda, float32, float64, int64

from ...cpu.kernels import matmul as _cpu_matmul
from ...cpu.lowerings import MATMUL_BATCHED, MATMUL_UPDATE
from . import cublas, launches
from .common import MAX_BLOCKS, TILE, on_device

_mm_offsets = on_device(_cpu_matmul._mm_offsets, inline="always")   # batch z's operand offsets, the cpu's own

MM = MATMUL_BATCHED.at
UP = MATMUL_UPDATE.at
TILED = f"tiled shared-memory GEMM kernel ({TILE}x{TILE} tiles)"


def engine() -> str:
    """Which GEMM runs ``mm_blas`` (deciding once per process, see ``cublas.choose``)."""
    why = cublas.choose()
    if why is None:
        return f"cuBLAS (nvmath-python) for float GEMMs without batch dims; {TILED} for the rest"
    return f"{TILED} ({why})"


@cuda.jit(device=True)
def _a(A, ao, i, l, m, k, ta):
    """op(a)[i, l] of the m x k operand (stored k x m when ta)."""
    return A[ao + l * m + i] if ta else A[ao + i * k + l]


@cuda.jit(device=True)
def _b(B, bo, l, j, k, n, tb):
    """op(b)[l, j] of the k x n operand (stored n x k when tb)."""
    return B[bo + j * k + l] if tb else B[bo + l * n + j]


def _kernels(acc):
    """The batched GEMM and the update GEMM accumulating in numba type ``acc``."""
    @cuda.jit(device=True)
    def tile(A, B, ao, bo, m, k, n, ta, tb, As, Bs):
        """This thread's element of op(a) @ op(b) (0 outside the matrix)."""
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        s = acc(0)
        for t0 in range(0, k, TILE):
            l = t0 + tx
            As[ty, tx] = _a(A, ao, row, l, m, k, ta) if row < m and l < k else 0
            l = t0 + ty
            Bs[ty, tx] = _b(B, bo, l, col, k, n, tb) if l < k and col < n else 0
            cuda.syncthreads()
            for q in range(TILE):
                s += As[ty, q] * Bs[q, tx]
            cuda.syncthreads()
        return s

    @cuda.jit
    def mm(A, B, Y, M, E, p):
        As = cuda.shared.array((TILE, TILE), acc)
        Bs = cuda.shared.array((TILE, TILE), acc)
        m, k, n = M[p + MM.m], M[p + MM.k], M[p + MM.n]
        ta, tb = M[p + MM.ta], M[p + MM.tb]
        row = cuda.blockIdx.y * TILE + cuda.threadIdx.y
        col = cuda.blockIdx.x * TILE + cuda.threadIdx.x
        count = 1
        for d in range(M[p + MM.nb]):
            count *= M[p + MM.batch + d]
        z = cuda.blockIdx.z
        while z < count:
            ao, bo, yo = _mm_offsets(M, p, z)
            s = tile(A, B, ao, bo, m, k, n, ta, tb, As, Bs)
            if row < m and col < n:
                Y[yo + row * n + col] = s
            z += cuda.gridDim.z

    @cuda.jit
    def update(A, B, S, Y, M, E, p):
        As = cuda.shared.array((TILE, TILE), acc)
        Bs = cuda.shared.array((TILE, TILE), acc)
        m, k, n = M[p + UP.m], M[p + UP.k], M[p + UP.n]
        s = tile(A, B, M[p + UP.a_off], M[p + UP.b_off], m, k, n, M[p + UP.ta], M[p + UP.tb], As, Bs)
        row = cuda.blockIdx.y * TILE + cuda.threadIdx.y
        col = cuda.blockIdx.x * TILE + cuda.threadIdx.x
        if row < m and col < n:
            yo = M[p + UP.y_off] + row * n + col
            Y[yo] = Y[yo] - S[M[p + UP.s_off]] * s
    return mm, update


KERNELS = {name: _kernels(t) for name, t in (("float32", float32), ("float64", float64), ("int", int64))}


def _for(array):
    return KERNELS.get(array.dtype.name, KERNELS["int"])


def _grid(m: int, n: int, batches: int = 1) -> tuple:
    return (max(1, -(-n // TILE)), max(1, -(-m // TILE)), max(1, min(batches, MAX_BLOCKS)))


@launches("mm_blas", "mm_loops")
def _mm(arrays, M, E, p, rec, stream):
    r = MATMUL_BATCHED.unpack(rec)
    batches = 1
    for d in range(r["nb"]):
        batches *= r["batch"][d]
    if not r["m"] * r["n"] * batches:
        return
    if (r["nb"] == 0 and r["k"] and cublas.in_use() and arrays[2].dtype in (np.float32, np.float64)
            and arrays[0].dtype == arrays[2].dtype == arrays[1].dtype):
        cublas.gemm(*arrays, r["a_off"], r["b_off"], r["y_off"], r["m"], r["k"], r["n"], r["ta"], r["tb"], stream)
        return
    _for(arrays[2])[0][_grid(r["m"], r["n"], batches), (TILE, TILE), stream](*arrays, M, E, p)


@launches("mm_update")
def _mm_update(arrays, M, E, p, rec, stream):
    r = MATMUL_UPDATE.unpack(rec)
    if r["m"] * r["n"]:
        _for(arrays[3])[1][_grid(r["m"], r["n"]), (TILE, TILE), stream](*arrays, M, E, p)
