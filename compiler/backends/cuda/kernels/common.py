"""What the cuda kernel modules share: launch sizes, and the scalar helpers of the elementwise
expressions: the cpu kernels' own (``cpu/kernels/base.py``: NaN propagates through
maximum/minimum/relu, integer powers by squaring), compiled as device functions from the same
source (``on_device``)."""
from __future__ import annotations

import math
import sys
import threading
import traceback

import numpy as np
from numba import config, cuda

from ...cpu.kernels import base as _base

SIMULATED = bool(config.ENABLE_CUDASIM)
# threads per block, and the most blocks a grid-stride kernel launches: the simulator runs every
# thread as a Python thread (~3 ms each a launch), so it gets few of both and the grid-stride
# loops do the rest (which the tests then exercise)
TPB = 8 if SIMULATED else 256
MAX_BLOCKS = 2 if SIMULATED else 4096
RED_TPB = 8 if SIMULATED else 256       # a tree reduction's block (a power of two)
TILE = 4 if SIMULATED else 16           # the tiled GEMM's square tile


def _lock_simulator_shared_memory() -> None:
    """The simulator's ``cuda.shared.array`` looks its block's array up and creates it if missing
    without a lock (numba-cuda 0.30, ``simulator/kernelapi.FakeCUDAShared.array``): with fast
    thread switching (``sys.setswitchinterval(1e-5)``, tests/test_threads.py) two threads of one
    block can create two arrays, and a tree reduction then loses partial sums. This makes the
    look-up atomic (keyed by the caller's file and line, as there). Simulator only: a GPU's shared
    memory is the block's by construction."""
    from numba.core import types
    from numba.np import numpy_support
    from numba.cuda.simulator import kernelapi
    original = kernelapi.FakeCUDAShared.array
    if getattr(original, "locked_by_staticgraph", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:
            return original(self, shape, dtype, alignment)
        caller = tuple(traceback.extract_stack(sys._getframe(1), limit=1)[0][0:2])
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res
    array.locked_by_staticgraph = True
    kernelapi.FakeCUDAShared.array = array


if SIMULATED:
    _lock_simulator_shared_memory()


def blocks(n: int) -> int:
    """Blocks of ``TPB`` threads for a grid-stride loop over ``n`` elements (at least 1)."""
    return max(1, min(-(-int(n) // TPB), MAX_BLOCKS))


@cuda.jit(device=True, inline="always")
def tree_sum(part, t, width):
    """``part[0]`` = the sum of ``part[:width]`` (shared memory; ``width`` a power of two), added in
    a fixed tree order: the same bits every run. Every thread ``t`` of the block calls it."""
    cuda.syncthreads()
    half = width // 2
    while half > 0:
        if t < half:
            part[t] += part[t + half]
        cuda.syncthreads()
        half //= 2


def on_device(helper, **options):
    """A cpu kernel helper (``@njit``) compiled as a device function from the same Python source:
    the scalar and index helpers the two backends share are written once, in the cpu kernels."""
    return cuda.jit(device=True, **options)(helper.py_func)


# the elementwise expressions' scalar helpers (``library.ELEMENTWISE``), the cpu's own; ``_sigmoid``
# below differs only in spelling (``math`` on a GPU, where NumPy's scalar functions do not exist)
_sign, _relu, _maximum, _minimum, _ipow = (on_device(f) for f in (_base._sign, _base._relu, _base._maximum,
                                                                   _base._minimum, _base._ipow))


@cuda.jit(device=True)
def _sigmoid(x):
    y = -x
    m = y if y > 0.0 else 0.0
    return math.exp(-(m + math.log1p(math.exp(-abs(y)))))


@cuda.jit(device=True)
def _power(a, b):
    return a ** b
