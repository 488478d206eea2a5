"""The Numba CPU backend (``sg.Session(target="cpu")``, the default).

- ``kernels.py``: the kernel registry (one lowering per op type) — add new op types there;
- ``library.py``: the generic Numba kernels (templates -> one cached source file); the nn op
  families keep theirs in ``nn_conv.py``, ``nn_pool.py``, ``nn_softmax.py``;
- ``lowering.py``: Schedule -> kernel calls over buffers; ``codegen.py``: the readable plan source;
- ``native.py``: the native step (one compiled loop calling kernel wrappers through C function
  pointers), the wrappers' cache, and ``precompile.py``, the parallel compile worker;
- ``executable.py``: shape signatures, memory layouts, warm-up, running and profiling a step;
- ``blas.py``: the thread count of the BLAS the kernels call;
- ``compiler/memory.py``: buffer liveness and placement.
"""
from .executable import STATS, CpuBackend, CpuExecutable
from .kernels import LOWERINGS, lowers

__all__ = ["CpuBackend", "CpuExecutable", "LOWERINGS", "lowers", "STATS"]
