"""The Numba CPU backend (``sg.Session(target="cpu")``, the default).

- ``lowerings.py``: the lowering registry (one lowering per op type) and the core ops' lowerings;
  the nn op families keep theirs in ``nn_conv.py``, ``nn_pool.py``, ``nn_softmax.py``,
  ``nn_conv_pool.py``, ``nn_winograd.py``, ``nn_wino_tile.py`` (choice of algorithm, records,
  workspace sizes);
- ``kernels/``: the hand-written Numba kernels, one module per family (plain Python under
  ``NUMBA_DISABLE_JIT=1``); ``library.py``: the facts they share and the one generated module
  (elementwise kernels from the op table, reductions, Winograd transforms);
- ``call_rewrites.py``: the ordered pipeline of call rewrites (fusions over lowered calls);
- ``lowering.py``: Schedule -> kernel calls over buffers; ``codegen.py``: the readable plan source;
- ``native.py``: the native step (one compiled loop calling kernel wrappers through C function
  pointers), the wrappers' cache, and ``precompile.py``, the parallel compile worker;
- ``executable.py``: shape signatures, memory layouts, warm-up, running and profiling a step;
- ``blas.py``: the BLAS the kernels call and its thread count;
- ``compiler/memory.py``: buffer liveness and placement.
"""
from .executable import STATS, CpuBackend, CpuExecutable
from .lowerings import LOWERINGS, lowers
from . import call_rewrites  # noqa: F401,E402  (imports every family: their lowerings register)

__all__ = ["CpuBackend", "CpuExecutable", "LOWERINGS", "lowers", "STATS"]
