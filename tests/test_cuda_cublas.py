"""The cuBLAS path of ``mm_blas`` (``cuda/kernels/cublas.py``), checked without a GPU: a stand-in
for ``nvmath.bindings.cublas`` computes column-major GEMMs exactly as cuBLAS defines them, so the
row-major to column-major mapping (operand order, transposes, leading dimensions, offsets) is
what is tested; on the simulator the real choice is the tiled kernel, named by explain()."""
import sys
import types

import numpy as np
import pytest

import staticgraph as sg
from cuda_helpers import assert_all_close, fast_simulator_switching, run_both, simulator_only  # noqa: F401


class FakeCublas(types.ModuleType):
    """cublasSgemm/Dgemm semantics over (array, offset) 'pointers'; host scalars by address."""

    class Operation:
        N, T = 0, 1

    class PointerMode:
        HOST, DEVICE = 0, 1

    def __init__(self, scalars):
        super().__init__("nvmath.bindings.cublas")
        self.scalars, self.calls = scalars, 0

    def set_stream(self, handle, stream):
        pass

    def _gemm(self, handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        self.calls += 1

        def mat(ptr, rows, cols, ld):
            arr, off = ptr
            return np.array([[arr[off + i + j * ld] for j in range(cols)] for i in range(rows)], np.float64)
        opa = mat(a, k, m, lda).T if transa else mat(a, m, k, lda)
        opb = mat(b, n, k, ldb).T if transb else mat(b, k, n, ldb)
        out = self.scalars[alpha] * (opa @ opb)
        if self.scalars[beta]:
            out += self.scalars[beta] * mat(c, m, n, ldc)
        arr, off = c
        for i in range(m):
            for j in range(n):
                arr[off + i + j * ldc] = out[i, j]

    sgemm = dgemm = _gemm


@pytest.fixture
def fake_cublas(monkeypatch):
    from compiler.backends.cuda.kernels import cublas
    scalars = {v.ctypes.data: 1.0 for v in cublas._ONE.values()}
    scalars.update({v.ctypes.data: 0.0 for v in cublas._ZERO.values()})
    fake = FakeCublas(scalars)
    bindings = types.ModuleType("nvmath.bindings")
    bindings.cublas = fake
    monkeypatch.setitem(sys.modules, "nvmath", types.ModuleType("nvmath"))
    monkeypatch.setitem(sys.modules, "nvmath.bindings", bindings)
    monkeypatch.setitem(sys.modules, "nvmath.bindings.cublas", fake)
    monkeypatch.setattr(cublas, "_pointer", lambda array, offset: (array, int(offset)))
    monkeypatch.setattr(cublas, "_stream_pointer", lambda stream: 0)
    monkeypatch.setitem(cublas._STATE, "handle", 1)
    monkeypatch.setitem(cublas._STATE, "decided", True)
    monkeypatch.setitem(cublas._STATE, "why", None)
    return fake


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_row_major_gemm_through_column_major_cublas(fake_cublas, rng, ta, tb):
    from compiler.backends.cuda.kernels import cublas
    a = rng.normal(size=(7, 5) if ta else (5, 7))
    b = rng.normal(size=(3, 7) if tb else (7, 3))
    A, B = np.concatenate([[9.0] * 3, a.ravel()]), np.concatenate([[9.0] * 2, b.ravel()])
    Y = np.full(1 + 5 * 3, 9.0)
    cublas.gemm(A, B, Y, 3, 2, 1, 5, 7, 3, ta, tb, stream=None)
    np.testing.assert_allclose(Y[1:].reshape(5, 3), (a.T if ta else a) @ (b.T if tb else b), rtol=1e-12)
    assert Y[0] == 9.0


@simulator_only      # the stand-in reads operands element by element: host arrays only
def test_plans_use_cublas_for_unbatched_float_gemms(fake_cublas, rng):
    x = sg.placeholder(sg.float32, (None, 5), name="x")
    w = sg.placeholder(sg.float32, (5, 3), name="w")
    batched = sg.placeholder(sg.float32, (2, 4, 5), name="batched")
    y = sg.matmul(x, w)
    outs = [y, sg.matmul(batched, w)] + sg.gradients(sg.reduce_sum(sg.tanh(y)), [x, w])
    feeds = {x: rng.normal(size=(4, 5)).astype(np.float32), w: rng.normal(size=(5, 3)).astype(np.float32),
             batched: rng.normal(size=(2, 4, 5)).astype(np.float32)}
    got, want = run_both(outs, feeds)
    assert_all_close(got, want)
    assert fake_cublas.calls == 3       # y and both gradients; the batched GEMM runs the tiled kernel
    with sg.Session(target="cuda") as sess:
        assert "cuBLAS (nvmath-python) for float GEMMs without batch dims" in sess.compile(y, [x, w]).explain()


@simulator_only
def test_the_simulator_chooses_the_tiled_kernel():
    from compiler.backends.cuda.kernels import cublas, gemm
    assert cublas.choose() == "the CUDA simulator has no cuBLAS"
    assert gemm.engine().startswith("tiled shared-memory GEMM kernel")
