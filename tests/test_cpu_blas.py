"""The BLAS the compiled kernels call (``blas.KERNEL_BLAS``: NumPy's bundled OpenBLAS when it
exports CBLAS GEMMs, else SciPy's) and ``STATICGRAPH_BLAS_THREADS``, its thread count."""
import os

import numpy as np
import pytest
import threadpoolctl

from compiler.backends.cpu import blas, library


def _threads() -> dict:
    return {os.path.realpath(lib.filepath): lib.num_threads for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if lib.user_api == "blas"}


def test_sets_only_the_kernels_blas_and_env_parsing(monkeypatch):
    kernel = {os.path.realpath(p) for p in blas.kernel_blas_paths()}
    assert kernel
    before = _threads()
    try:
        monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", "1")
        blas.apply_env()
        after = _threads()
        for path, n in after.items():
            assert n == (1 if path in kernel else before[path]), path     # the others untouched
    finally:
        blas.set_kernel_blas_threads(max(before[p] for p in kernel))
    monkeypatch.delenv("STATICGRAPH_BLAS_THREADS")
    assert blas.kernel_blas_threads() is None
    monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", "auto")
    assert blas.kernel_blas_threads() is None
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", bad)
        with pytest.raises(ValueError, match=f"STATICGRAPH_BLAS_THREADS='{bad}': expected a positive integer or 'auto'"):
            blas.kernel_blas_threads()


def test_the_kernels_call_numpys_blas_when_it_exports_cblas():
    found = blas.kernel_blas()
    numpy_blas = [lib.filepath for lib in threadpoolctl.ThreadpoolController().lib_controllers
                  if lib.user_api == "blas" and "numpy.libs" in lib.filepath.replace(os.sep, "/")]
    from compiler.backends.cpu.kernels import gemm
    if found is None or found.gemm is None:
        assert gemm._CBLAS is None
        return
    assert numpy_blas and os.path.realpath(found.path) in {os.path.realpath(p) for p in numpy_blas}
    assert gemm._CBLAS == found.gemm
    assert repr(found.gemm) in library.config_text() and repr(found.gemm) in library.SOURCE     # in the keys


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_with_leading_dimensions_offsets_alpha_and_beta(rng, dtype):
    """``library._gemm`` on blocks of flat buffers, every transpose combination, against NumPy
    (called from an ``@njit`` function: helpers have no Python entry, ``kernels.base.HELPER``)."""
    from numba import njit
    helper = library.load()._gemm

    @njit
    def gemm(*args):
        helper(*args)
    m, n, k = (int(v) for v in rng.integers(1, 40, 3))
    for ta in (0, 1):
        for tb in (0, 1):
            lda, ldb, ldc = (m if ta else k) + 3, (k if tb else n) + 2, n + 5
            A = rng.standard_normal(7 + lda * (k if ta else m)).astype(dtype)
            B = rng.standard_normal(4 + ldb * (n if tb else k)).astype(dtype)
            C = rng.standard_normal(2 + ldc * m).astype(dtype)
            a = A[7:].reshape(-1, lda)[:, :(m if ta else k)]
            b = B[4:].reshape(-1, ldb)[:, :(k if tb else n)]
            want = C.copy()
            c = want[2:].reshape(m, ldc)[:, :n]
            c[...] = -0.5 * ((a.T if ta else a) @ (b.T if tb else b)) + 2.0 * c
            gemm(ta, tb, m, n, k, -0.5, A, 7, lda, B, 4, ldb, 2.0, C, 2, ldc)
            np.testing.assert_allclose(C, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
