"""The cpu backend's hand-written Numba kernels, one module per kernel family.

Every kernel has the signature ``kernel(*arrays, M, E, p)`` (see ``library.py``): flat 1-d
buffers (inputs, then outputs, then workspaces), the plan's int64 record table ``M`` (the
kernel's record starts at ``M[p]``) and the error slots ``E``. Public names are kernels a plan
calls; names with a leading underscore are helpers, shared between the families of this package.
Kernels are ordinary Python functions under ``NUMBA_DISABLE_JIT=1``; compiled, they are
``@njit(cache=True)``, and Numba keeps their files under the plan cache: importing this package
first points Numba there (``compiler.cache``'s kernel locator, in a folder keyed by the sources
and ``library.config_text``) and makes the BLAS the kernels call visible to the JIT linker.

What is generated stays generated, in the kernel library's one generated module
(``library.SOURCE``): the elementwise kernels (from ``library.ELEMENTWISE``, the op table) and the
Winograd F(4x4, 3x3) transforms (unrolled from their matrices). That module
imports every kernel below by name.

Modules: ``base`` (options, typed constants, scalar helpers), ``gemm`` (BLAS GEMM on flat
buffers, BLAS thread control, GEMMs split over workers), ``array`` (fill, one-hot), ``matmul``,
``dot``, ``reduce`` (sums, means, maxima, argmax), ``conv``, ``pool``, ``conv_pool``, ``softmax``, ``wino_tile``.
"""
from compiler import cache as _cache

from .. import blas as _blas, library as _library


def _prepare() -> None:
    """Before any kernel is decorated: the cache folder's key, Numba's locator, the BLAS symbols."""
    _cache.set_kernel_config(_library.config_text())
    _cache.install_kernel_cache_locator()
    if _blas.KERNEL_BLAS is not None:     # the kernels call its symbols by name
        import llvmlite.binding
        llvmlite.binding.load_library_permanently(_blas.KERNEL_BLAS.path)


_prepare()
