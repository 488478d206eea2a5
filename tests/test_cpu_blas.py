"""STATICGRAPH_BLAS_THREADS: the thread count of the BLAS the compiled kernels call (SciPy's)."""
import pytest
import threadpoolctl

from compiler.backends.cpu import blas


def _scipy_blas_threads():
    return [lib.num_threads for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if lib.user_api == "blas" and "scipy.libs" in lib.filepath]


def test_sets_only_the_kernels_blas_and_env_parsing(monkeypatch):
    before = _scipy_blas_threads()
    numpy_libs = {lib.filepath: lib.num_threads for lib in threadpoolctl.ThreadpoolController().lib_controllers
                  if "scipy.libs" not in lib.filepath}
    try:
        monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", "1")
        blas.apply_env()
        after = _scipy_blas_threads()
        assert after and all(n == 1 for n in after)
        for lib in threadpoolctl.ThreadpoolController().lib_controllers:   # NumPy's BLAS untouched
            if lib.filepath in numpy_libs:
                assert lib.num_threads == numpy_libs[lib.filepath]
    finally:
        if before:
            blas.set_kernel_blas_threads(before[0])
    monkeypatch.delenv("STATICGRAPH_BLAS_THREADS")
    assert blas.kernel_blas_threads() is None
    monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", "auto")
    assert blas.kernel_blas_threads() is None
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("STATICGRAPH_BLAS_THREADS", bad)
        with pytest.raises(ValueError, match=f"STATICGRAPH_BLAS_THREADS='{bad}': expected a positive integer or 'auto'"):
            blas.kernel_blas_threads()
