"""The BLAS the compiled kernels call, and its thread count.

The kernels' GEMMs (``library._gemm``) call NumPy's own OpenBLAS when NumPy bundles one with
CBLAS symbols (the wheels' ``scipy-openblas64``: ``scipy_cblas_sgemm64_``...; ``kernel_blas()``):
the same library as ``np.matmul``, measured 5-25% faster here on MLP- and conv-shaped GEMMs than
SciPy's, and ``threadpoolctl`` limits on NumPy reach the kernels too. Otherwise they call Numba's
``numba_xxgemm`` (SciPy's BLAS, ``scipy.linalg.cython_blas``, as Numba's ``np.dot`` does).

``STATICGRAPH_BLAS_THREADS=N`` sets the kernels' BLAS thread count when the kernel library loads
(default: BLAS's own choice, best on an idle machine). On a busy machine with few cores, BLAS
threads that wait for a descheduled partner make small GEMMs several times slower: 1 avoids
that, and ``auto`` runs only mid-size GEMMs (2^18 to 2^27 multiply-adds) on one thread
(``library.BLAS_SMALL``; the matmul kernel switches the count around each such call).

Known and left as is (issue 27): the count is process-wide (OpenBLAS has no per-thread one), and
the step loop's call groups and ``auto`` change it around GEMMs; sessions running at once in
several threads may therefore run a GEMM with the count another one set. OpenBLAS then splits
the sum differently: results differ from a serial run in the last bits (~1e-7 in float32), never
more, and a single session is unaffected (its runs are serialised).
"""
from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class KernelBlas:
    """A BLAS library the kernels call by symbol name (``path`` is loaded into LLVM's symbol
    space first): ``gemm`` maps "s"/"d" to CBLAS GEMM symbols with 64-bit integers (None: the
    kernels use ``numba_xxgemm``); the thread-count getter and setter symbols."""
    path: str
    gemm: Optional[tuple]
    get_threads: str
    set_threads: str


def _bundled(package: str, pattern: str) -> list:
    """Shared libraries a wheel bundles in ``<site-packages>/<package>.libs``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    libs = os.path.join(os.path.dirname(list(spec.submodule_search_locations)[0]), f"{package}.libs")
    return sorted(glob.glob(os.path.join(libs, pattern)))


def _exports(path: str, *symbols: str) -> bool:
    try:
        lib = ctypes.CDLL(path)
        return all(hasattr(lib, s) for s in symbols)
    except OSError:
        return False


def kernel_blas() -> Optional[KernelBlas]:
    """NumPy's bundled ILP64 OpenBLAS (CBLAS GEMMs and thread symbols), else SciPy's bundled
    OpenBLAS (thread symbols only: GEMMs through ``numba_xxgemm``), else None."""
    for path in _bundled("numpy", "libscipy_openblas64_*.so*"):
        names = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", "scipy_openblas_get_num_threads64_",
                 "scipy_openblas_set_num_threads64_")
        if _exports(path, *names):
            return KernelBlas(path, names[:2], names[2], names[3])
    for path in _bundled("scipy", "libscipy_openblas*.so*"):
        names = ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads")
        if _exports(path, *names):
            return KernelBlas(path, None, *names)
    return None


KERNEL_BLAS = kernel_blas()


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


def kernel_blas_paths() -> list:
    """Paths of the BLAS libraries the kernels' GEMMs run in (loaded: SciPy's is loaded here)."""
    if KERNEL_BLAS is not None and KERNEL_BLAS.gemm is not None:
        return [KERNEL_BLAS.path]
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library if nothing has yet)
    import threadpoolctl
    return [lib.filepath for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if lib.user_api == "blas" and "scipy.libs" in lib.filepath.replace(os.sep, "/")]


def set_kernel_blas_threads(n: int) -> list:
    """Set the threads of the BLAS the kernels call; return its paths."""
    import threadpoolctl
    paths = {os.path.realpath(p) for p in kernel_blas_paths()}
    done = []
    for lib in threadpoolctl.ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and os.path.realpath(lib.filepath) in paths:
            lib.set_num_threads(n)
            done.append(lib.filepath)
    return done


def apply_env() -> None:
    """Apply ``STATICGRAPH_BLAS_THREADS`` (called when the kernel library loads)."""
    n = kernel_blas_threads()
    if n is not None:
        set_kernel_blas_threads(n)
