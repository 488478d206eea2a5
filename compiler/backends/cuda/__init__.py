"""The Numba CUDA backend (``sg.Session(target="cuda")``), built on the cpu backend's lowering.

- ``profile.py``: the cuda ``LoweringProfile`` (the cpu ``Lowering`` with no thread shares, no
  phases, its own call rewrites and kernel choices);
- ``kernels/``: the launcher registry (``kernels/__init__.py``: the contract) and the device
  kernels, one module per family, reading the cpu record specs by field name;
- ``executable.py``: ``CudaExecutable``: per shape signature the cpu host plan (``plan_host``:
  shapes, memory plan, offsets, record table), one device arena per dtype, ``M`` and ``E`` on the
  device, feeds copied in, fetches out; ``memory.py``: counted device allocations and the
  session's device-resident variables; ``driver.py``: what the target needs, checked at once.

Nothing here imports ``numba.cuda`` until a cuda Session is made.
"""
from __future__ import annotations

from ..base import Backend


class CudaBackend(Backend):
    """Compiles Schedules into ``CudaExecutable``s; made only where the target can run."""

    def __init__(self, target: str = "cuda"):
        from .driver import quiet_small_grids, require
        require()
        quiet_small_grids()
        from .executable import CudaExecutable
        self.executable = CudaExecutable
        super().__init__(target)


__all__ = ["CudaBackend"]
