"""Helpers of the cuda target's tests (tests/test_cuda_*.py): skipped where numba-cuda is missing."""
import sys

import numpy as np
import pytest

import staticgraph as sg

pytest.importorskip("numba.cuda", reason="the cuda target's tests need numba-cuda (pip install -e '.[cuda]')")

from numba import config  # noqa: E402

SIMULATED = bool(config.ENABLE_CUDASIM)     # False under STATICGRAPH_TEST_REAL_CUDA=1 (tests/conftest.py)
simulator_only = pytest.mark.skipif(not SIMULATED, reason="checks what the CUDA simulator does")


@pytest.fixture(autouse=True)
def fast_simulator_switching():
    """Autouse where a test module imports it: on the simulator, the GIL changes hands every 0.1 ms
    instead of Python's default 5 ms. The simulator runs a block's threads while the launching
    thread polls them in a busy loop, so most hand-overs between them waited out the whole switch
    interval (the kernels and their results are the same; only the waits get shorter)."""
    if not SIMULATED:
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, 1e-4))
    yield
    sys.setswitchinterval(old)


def small_blocks(monkeypatch) -> None:
    """On the simulator (every GPU thread a Python thread, its cost that of the threads launched),
    the conv and pool kernels get blocks of at most 64 threads instead of 256 and 128: the kernels
    are generic over these sizes, which the simulator reads at run time (a GPU compiles them in, so
    they stay as they are there). Smaller chunks also take pool_max_grad's planes through several
    chunks."""
    if SIMULATED:
        from compiler.backends.cuda.kernels import conv, pool
        monkeypatch.setattr(conv, "TILE", 8)
        monkeypatch.setattr(conv, "BIAS_THREADS", 32)
        monkeypatch.setattr(pool, "THREADS", 32)
        monkeypatch.setattr(pool, "POOL_THREADS", 32)


def run_both(fetches, feed_dict=None, setup=None):
    """``fetches`` run once on the cuda target and on the reference backend: ``(cuda, reference)``
    (``setup(sess)`` first, e.g. the variables' initializer)."""
    out = {}
    for target in ("cuda", "reference"):
        with sg.Session(target=target) as sess:
            if setup is not None:
                setup(sess)
            out[target] = sess.run(fetches, feed_dict)
    return out["cuda"], out["reference"]


def tolerance(dtype) -> dict:
    """float32: rtol 1e-4 (the issue's bar); float64 tighter; integers and bools exact."""
    kind = np.dtype(dtype)
    if kind == np.float32:
        return dict(rtol=1e-4, atol=1e-5)
    if kind == np.float64:
        return dict(rtol=1e-10, atol=1e-12)
    return dict(rtol=0, atol=0)


def assert_all_close(got, want) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (i, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, err_msg=f"fetch {i}", **tolerance(b.dtype))
