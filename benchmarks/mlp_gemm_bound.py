"""How fast can the mlp workload be with a given BLAS? Its step's eight GEMMs alone, timed in one
process against PyTorch's whole mlp step (``torch_impl.build_mlp``), interleaved, medians of many runs.

    python benchmarks/mlp_gemm_bound.py                      # NumPy's own BLAS (OpenBLAS) vs PyTorch
    python benchmarks/mlp_gemm_bound.py --mkl PATH/libmkl_rt.so.3    # and MKL's cblas_sgemm

The GEMMs: X @ W^T for the three layers (784-256-256-10, batch 128), the input gradients of the
last two layers and the weight gradients of all three: exactly the products of a training step
(staticgraph's step runs these plus ~0.1 ms of elementwise work). Their time over PyTorch's step is
a lower bound of the ``sg / torch`` ratio any kernel library on that BLAS can reach. For MKL, run
with ``MKL_THREADING_LAYER=GNU`` (the GNU OpenMP that Numba's threading layer also uses). Measured on
the Intel machine kind (2026-12-01): NumPy's OpenBLAS 855 us, PyTorch's step 1173 us (0.73); MKL 681
against OpenBLAS 851 us in one process.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

import numpy as np

F32 = np.float32


def _operands(rng):
    shapes = dict(X=(128, 784), W1=(256, 784), W2=(256, 256), W3=(10, 256), D3=(128, 10), D2=(128, 256),
                  D1=(128, 256))
    ops = {k: rng.random(s, dtype=F32) for k, s in shapes.items()}
    outs = dict(H1=(128, 256), H2=(128, 256), O=(128, 10), E3=(128, 256), E2=(128, 256), G1=(256, 784),
                G2=(256, 256), G3=(10, 256))
    ops.update({k: np.empty(s, F32) for k, s in outs.items()})
    return ops


# (A, transpose A, B, transpose B, C): C = op(A) @ op(B), the step's eight products
PRODUCTS = [("X", 0, "W1", 1, "H1"), ("H1", 0, "W2", 1, "H2"), ("H2", 0, "W3", 1, "O"),
            ("D3", 0, "W3", 0, "E3"), ("D2", 0, "W2", 0, "E2"),
            ("D3", 1, "H2", 0, "G3"), ("D2", 1, "H1", 0, "G2"), ("D1", 1, "X", 0, "G1")]


def numpy_gemms(ops):
    def run():
        for a, ta, b, tb, c in PRODUCTS:
            np.matmul(ops[a].T if ta else ops[a], ops[b].T if tb else ops[b], out=ops[c])
    return run


def mkl_gemms(ops, path: str):
    lib = ctypes.CDLL(path)
    sgemm = lib.cblas_sgemm
    sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    calls = []
    for a, ta, b, tb, c in PRODUCTS:
        A, B, C = ops[a], ops[b], ops[c]
        m, k = (A.shape[1], A.shape[0]) if ta else A.shape
        n = B.shape[0] if tb else B.shape[1]
        calls.append((101, 112 if ta else 111, 112 if tb else 111, m, n, k, 1.0, A.ctypes.data, A.shape[1],
                      B.ctypes.data, B.shape[1], 0.0, C.ctypes.data, n))

    def run():
        for args in calls:
            sgemm(*args)
    return run


def median_seconds(fn, n=200, rounds=9) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n)
    return sorted(times)[len(times) // 2]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mkl", help="path of MKL's libmkl_rt.so: time its cblas_sgemm too")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    ops = _operands(np.random.default_rng(0))
    runs = {"NumPy GEMMs": numpy_gemms(ops)}
    if args.mkl:
        runs["MKL GEMMs"] = mkl_gemms(ops, args.mkl)
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_impl
        runs["PyTorch step"] = torch_impl.build_mlp()[0]
    except ImportError:
        print("PyTorch not importable: GEMMs only")
    results = {name: [] for name in runs}
    for _ in range(args.rounds):            # interleaved rounds
        for name, fn in runs.items():
            results[name].append(median_seconds(fn))
    print(f"command: python {' '.join(sys.argv)}   OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    med = {name: float(np.median(v)) for name, v in results.items()}
    for name, t in med.items():
        extra = f"  ({t / med['PyTorch step']:.2f} of PyTorch's step)" if "PyTorch step" in med and name != "PyTorch step" else ""
        print(f"{name}: {t * 1e6:.1f} us{extra}")


if __name__ == "__main__":
    main()
