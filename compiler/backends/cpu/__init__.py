"""The Numba CPU backend (``sg.Session(target="cpu")``, the default).

- ``kernels.py``: the kernel registry (one lowering per op type) — add new op types there;
- ``library.py``: the generic Numba kernels (templates -> one cached source file);
- ``lowering.py``: Schedule -> kernel calls over buffers; ``codegen.py``: the plan source;
- ``executable.py``: shape signatures, memory layouts, running a step;
- ``compiler/memory.py``: buffer liveness and placement.
"""
from .executable import STATS, CpuBackend, CpuExecutable
from .kernels import LOWERINGS, lowers

__all__ = ["CpuBackend", "CpuExecutable", "LOWERINGS", "lowers", "STATS"]
