"""Compile the cuda conv and pool kernels to PTX for a real GPU (sm_90) with NVVM alone, no device
needed: the simulator runs the kernels as Python and never types them for the GPU target.

Run as a script without ``NUMBA_ENABLE_CUDASIM`` (``test_cuda_conv_pool.py`` does): prints
``ok <kernel>`` per kernel, exits 0; exits 3 (a skip) where the CUDA libraries are not found.
NVRTC, which numba-cuda asks for the supported architectures and its own paths, is not needed to
make PTX: where it is missing, those two questions are answered here."""
import sys

from numba import cuda, types as T

from compiler.backends.cuda.kernels import conv, pool

SKIP = 3


def _without_nvrtc() -> None:
    import numba.cuda.cuda_paths as paths
    import numba.cuda.cudadrv.nvrtc as nvrtc
    try:
        nvrtc.get_supported_ccs()
    except Exception:  # noqa: BLE001 - any failure to load NVRTC
        paths._get_nvrtc_path = lambda: None
        nvrtc.get_supported_ccs = lambda: ((9, 0),)


def _signatures():
    i64, M = T.int64, T.Array(T.int64, 1, "C")
    f = T.float32
    A = T.Array(f, 1, "C")
    gemm = (A, A, A, M, i64, i64, i64, f)
    yield "conv_fwd", conv._fwd, gemm
    yield "conv_bpi", conv._bpi, gemm
    yield "conv_bpf", conv._bpf, gemm
    yield "conv_bpf (sum of slices)", conv._bpf_sum, (A, A, M, i64, i64, f)
    yield "conv_bpf (bias gradient)", conv._bias_grad, (A, A, M, i64, f)
    yield "pool_max", pool._pool_max, (A, A, M, M, i64, f)
    yield "pool_max (int32)", pool._pool_max, (T.Array(T.int32, 1, "C"),) * 2 + (M, M, i64, T.int32)
    yield "pool_avg", pool._pool_avg, (A, A, M, i64)
    yield "pool_avg_grad", pool._pool_avg_grad, (A, A, M, i64)
    yield "pool_max_grad", pool._pool_max_grad, (A, M, A, M, i64)
    yield "pool_max_gather", pool._pool_max_gather, (A, M, A, M, i64, f)


def main() -> int:
    if cuda.config.ENABLE_CUDASIM:
        print("the simulator is on: run without NUMBA_ENABLE_CUDASIM")
        return SKIP
    _without_nvrtc()
    try:
        from numba.cuda.cudadrv.libs import get_libdevice
        from numba.cuda.cudadrv.nvvm import NVVM
        NVVM()
        if get_libdevice() is None:
            raise OSError("libdevice not found")
    except Exception as exc:  # noqa: BLE001 - no CUDA toolkit here
        print(f"NVVM or libdevice not found: {exc}")
        return SKIP
    from numba.core.errors import NumbaError
    for i, (name, kernel, sig) in enumerate(_signatures()):
        try:
            cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        except NumbaError:      # typing or lowering: the kernels' fault
            raise
        except Exception as exc:  # noqa: BLE001 - the toolchain's (the first kernel shows it)
            if i:
                raise
            print(f"cannot make PTX here: {exc!r}")
            return SKIP
        print("ok", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
