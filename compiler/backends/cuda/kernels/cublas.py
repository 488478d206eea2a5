"""cuBLAS through NVIDIA's Python bindings (``nvmath.bindings.cublas``), for the float GEMMs of
``mm_blas`` on a real GPU.

``choose()`` decides once per process, before any plan runs a step: cuBLAS where nvmath-python
imports, a handle can be created and a self-check (a small GEMM of every transpose case, against
the tiled kernel) agrees; otherwise the tiled shared-memory kernel, with the reason kept for
``plan.explain()``. Never on the simulator (it has no cuBLAS). Row-major operands are handed to
column-major cuBLAS as their transposes: y^T = op(b)^T op(a)^T, so no copy is made.

Untested on hardware (no GPU was lent while this was written): the self-check is what stands
between a binding mistake and a wrong GEMM."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .common import SIMULATED

_STATE = {"handle": None, "why": None, "decided": False}
_ONE = {np.dtype(np.float32): np.ones(1, np.float32), np.dtype(np.float64): np.ones(1, np.float64)}
_ZERO = {dt: np.zeros(1, dt) for dt in _ONE}


def choose() -> Optional[str]:
    """Decide (once) whether ``mm_blas`` uses cuBLAS; None if it does, else why not."""
    if not _STATE["decided"]:
        _STATE["decided"] = True
        _STATE["why"] = _try()
    return _STATE["why"]


def in_use() -> bool:
    return _STATE["decided"] and _STATE["why"] is None


def _try() -> Optional[str]:
    if SIMULATED:
        return "the CUDA simulator has no cuBLAS"
    try:
        from nvmath.bindings import cublas
        _STATE["handle"] = cublas.create()
        cublas.set_pointer_mode(_STATE["handle"], cublas.PointerMode.HOST)
    except Exception as exc:  # noqa: BLE001 - ImportError, a missing library, no device: say which
        return f"cuBLAS unavailable ({type(exc).__name__}: {exc})"
    try:
        return _self_check()
    except Exception as exc:  # noqa: BLE001 - a binding mistake must not take GEMMs down
        return f"cuBLAS self-check failed ({type(exc).__name__}: {exc})"


def _pointer(array, offset: int) -> int:
    return int(array.device_ctypes_pointer.value or 0) + int(offset) * array.dtype.itemsize


def _stream_pointer(stream) -> int:
    h = stream.handle
    h = getattr(h, "value", h)
    return int(h or 0)


def gemm(A, B, Y, a_off: int, b_off: int, y_off: int, m: int, k: int, n: int, ta: int, tb: int, stream) -> None:
    """Y[y_off] (m x n, row-major) = op(A[a_off]) (m x k) @ op(B[b_off]) (k x n), on ``stream``."""
    from nvmath.bindings import cublas
    handle, dt = _STATE["handle"], Y.dtype
    cublas.set_stream(handle, _stream_pointer(stream))
    fn = cublas.sgemm if dt == np.float32 else cublas.dgemm
    op = cublas.Operation
    # column-major: y^T (n x m, ld n) = op(b)^T (n x k) @ op(a)^T (k x m)
    fn(handle, op.T if tb else op.N, op.T if ta else op.N, n, m, k, _ONE[dt].ctypes.data,
       _pointer(B, b_off), k if tb else n, _pointer(A, a_off), m if ta else k, _ZERO[dt].ctypes.data,
       _pointer(Y, y_off), n)


def _self_check() -> Optional[str]:
    """A 13x7 @ 7x5 GEMM at offsets, each transpose case, against NumPy; None when all agree."""
    from numba import cuda
    rng = np.random.default_rng(0)
    stream = cuda.stream()
    for dt in (np.float32, np.float64):
        for ta in (0, 1):
            for tb in (0, 1):
                a = rng.standard_normal((7, 13) if ta else (13, 7)).astype(dt)
                b = rng.standard_normal((5, 7) if tb else (7, 5)).astype(dt)
                A = cuda.to_device(np.concatenate([np.zeros(3, dt), a.ravel()]))
                B = cuda.to_device(np.concatenate([np.zeros(2, dt), b.ravel()]))
                Y = cuda.to_device(np.zeros(1 + 13 * 5, dt))
                gemm(A, B, Y, 3, 2, 1, 13, 7, 5, ta, tb, stream)
                stream.synchronize()
                want = (a.T if ta else a) @ (b.T if tb else b)
                got = Y.copy_to_host()[1:].reshape(13, 5)
                if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
                    return f"cuBLAS self-check disagreed with NumPy ({np.dtype(dt).name}, ta={ta}, tb={tb})"
    return None
