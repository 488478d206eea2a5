"""The BLAS the compiled kernels call, and its thread count.

The kernels' GEMMs (``library._gemm``, via Numba's ``numba_xxgemm``, as Numba's ``np.dot``) call
SciPy's BLAS (``scipy.linalg.cython_blas``), a different library
from NumPy's in the wheels: limiting NumPy's threads does not reach it, and it is loaded only
when the first kernel is. ``STATICGRAPH_BLAS_THREADS=N`` sets its thread count when the kernel
library loads (default: BLAS's own choice, best on an idle machine). On a busy machine with few
cores, BLAS threads that wait for a descheduled partner make small GEMMs several times slower:
1 avoids that, and ``auto`` runs only mid-size GEMMs (2^18 to 2^27 multiply-adds) on one thread
(``library.BLAS_SMALL``; the matmul kernel switches the count around each such call).
"""
from __future__ import annotations

import os
from typing import Optional


def _setting() -> str:
    return os.environ.get("STATICGRAPH_BLAS_THREADS", "").strip()


def auto() -> bool:
    """``STATICGRAPH_BLAS_THREADS=auto``: the matmul kernel runs mid-size GEMMs on one thread."""
    return _setting() == "auto"


def kernel_blas_threads() -> Optional[int]:
    """``STATICGRAPH_BLAS_THREADS`` as an int (None: unset or "auto", BLAS decides the count)."""
    value = _setting()
    if not value or value == "auto":
        return None
    n = int(value) if value.lstrip("-").isdigit() else 0
    if n < 1:
        raise ValueError(f"STATICGRAPH_BLAS_THREADS={value!r}: expected a positive integer or 'auto'")
    return n


def set_kernel_blas_threads(n: int) -> list:
    """Set the threads of the BLAS libraries SciPy loads (the ones kernels call); return their paths."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library if nothing has yet)
    import threadpoolctl
    done = []
    for lib in threadpoolctl.ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and "scipy.libs" in lib.filepath.replace(os.sep, "/"):
            lib.set_num_threads(n)
            done.append(lib.filepath)
    return done


def apply_env() -> None:
    """Apply ``STATICGRAPH_BLAS_THREADS`` (called when the kernel library loads)."""
    n = kernel_blas_threads()
    if n is not None:
        set_kernel_blas_threads(n)
