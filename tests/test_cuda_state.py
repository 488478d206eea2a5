"""The cuda target's device-resident variables and their sync protocol (compiler/state.py):
host writes reach the device before the next step, host reads see what the device assigned;
and the target's errors when CUDA is missing."""
import numpy as np
import pytest

import staticgraph as sg
import cuda_helpers  # (skips the module without numba-cuda)
from cuda_helpers import fast_simulator_switching  # noqa: F401  (autouse)


def _counter():
    v = sg.Variable(np.array([1.0, 2.0, 3.0], np.float32), name="v")
    step = sg.assign_add(v, sg.constant(np.ones(3, np.float32)))
    return v, step


def test_device_assigns_are_seen_by_host_reads_and_other_plans(tmp_path):
    v, step = _counter()
    doubled = v * 2.0
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(step)
        sess.run(step)                                              # device: [3, 4, 5]; host storage stale
        np.testing.assert_array_equal(sess.run(v), [3, 4, 5])      # fetching the variable
        np.testing.assert_array_equal(sess.run(doubled), [6, 8, 10])   # another plan reads the device copy
        np.testing.assert_array_equal(sess.get_variable_value(v), [3, 4, 5])
        saved = sg.train.Saver([v]).save(sess, tmp_path / "ckpt")  # Saver.save pulls the device values
        np.testing.assert_array_equal(np.load(saved)["v"], [3, 4, 5])


def test_host_writes_invalidate_the_device_copy(tmp_path):
    v, step = _counter()
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(step)                                              # [2, 3, 4] on the device
        saved = sg.train.Saver([v]).save(sess, tmp_path / "ckpt")
        sess.set_variable_value(v, np.array([10, 20, 30], np.float32))
        assert sess.run(step) is None
        np.testing.assert_array_equal(sess.run(v), [11, 21, 31])    # the step read the host write
        sg.train.Saver([v]).restore(sess, saved)                    # a host write of the checkpoint
        sess.run(step)
        np.testing.assert_array_equal(sess.run(v), [3, 4, 5])
        sess.run(sg.global_variables_initializer())                 # initializers write again
        np.testing.assert_array_equal(sess.run(v), [1, 2, 3])


def test_a_new_variable_relays_out_storage_keeping_device_values():
    v, step = _counter()
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(step)                                              # [2, 3, 4] only on the device
        w = sg.Variable(np.full(2, 7.0, np.float32), name="w")      # a new slot: storage re-laid out
        sess.run(w.initializer)
        np.testing.assert_array_equal(sess.run([v, w])[0], [2, 3, 4])
        sess.run(step)
        np.testing.assert_array_equal(sess.get_variable_value(v), [3, 4, 5])
        np.testing.assert_array_equal(sess.get_variable_value(w), [7, 7])


def test_uninitialized_variable_is_named():
    v, step = _counter()
    with sg.Session(target="cuda") as sess:
        with pytest.raises(sg.errors.FailedPreconditionError, match="uninitialized variable 'v'"):
            sess.run(step)


# -- what the target needs ----------------------------------------------------------------------

def test_no_numba_cuda_is_a_clear_error_at_session_creation(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "numba.cuda", None)       # import numba.cuda now fails
    from compiler.backends.cuda.driver import CudaUnavailableError
    with pytest.raises(CudaUnavailableError, match=r"numba-cuda is not installed.*pip install -e \"\.\[cuda\]\""):
        sg.Session(target="cuda")


@pytest.mark.parametrize("driver_error,devices,expected", [
    ("CUDA driver library cannot be found", 1, r"no CUDA driver could be loaded \(CUDA driver library cannot"),
    (None, 0, r"no CUDA device was found"),
])
def test_no_driver_or_no_device_is_a_clear_error(monkeypatch, driver_error, devices, expected):
    from compiler.backends.cuda import driver
    monkeypatch.setattr(driver, "simulated", lambda: False)
    monkeypatch.setattr(driver, "_driver_error", lambda: driver_error)
    monkeypatch.setattr(driver, "_device_count", lambda: devices)
    with pytest.raises(driver.CudaUnavailableError, match=expected + r".*pip install -e \"\.\[cuda\]\""):
        sg.Session(target="cuda")


def test_import_staticgraph_never_imports_numba_cuda():
    import subprocess
    import sys
    code = ("import sys, staticgraph as sg; x = sg.placeholder(sg.float32, (2,)); "
            "sg.Session(target='reference').run(x * 2.0, {x: [1.0, 2.0]}); "
            "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_gpu_benchmark_refuses_without_a_gpu():
    import os
    import subprocess
    import sys
    import ctypes
    from helpers import ROOT
    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("this machine has a CUDA driver: benchmarks/gpu.py would run, not refuse")
    except OSError:
        pass
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "needs an NVIDIA GPU: no CUDA driver could be loaded" in proc.stderr and "Nothing was measured" in proc.stderr


@cuda_helpers.simulator_only
def test_simulator_shared_arrays_are_one_per_block_under_fast_thread_switching():
    """kernels/common.py makes the simulator's shared-array look-up atomic: every thread of a
    block gets the one array, however the threads interleave (tests/test_threads.py switches
    threads every 10 us; a tree reduction lost partial sums before)."""
    import sys
    import threading
    import compiler.backends.cuda.kernels.common  # noqa: F401  (the lock)
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    def trial() -> int:
        """How many arrays 32 threads got from one call site of one block."""
        shared, got = FakeCUDAShared(0), []
        barrier = threading.Barrier(32)

        def grab():
            barrier.wait()
            got.append(id(shared.array(8, np.float64)))
        threads = [threading.Thread(target=grab) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(set(got))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        counts = [trial() for _ in range(100)]     # unlocked: ~1 trial in 20 gave two arrays (2 runs in 3 failed)
    finally:
        sys.setswitchinterval(old)
    assert counts == [1] * 100
