"""The cuda backend's kernel registry: one launcher per kernel name of the shared lowering.

The cuda backend runs the program that the cpu backend's lowering builds (``cpu/lowering.py``:
calls of named kernels over flat per-(space, dtype) buffers, each with its int64 record in the
table ``M``), so both backends share every record spec (``cpu/records.py``) and the memory plan.
Here each kernel name gets a *launcher*, registered with ``@launches("name", ...)``::

    launch(arrays, M, E, p, rec, stream) -> None

- ``arrays``: the call's flat device arrays in the cpu kernel's order (inputs, the output,
  then extra outputs and workspaces): ``Call.args`` mapped to the plan's device buffers;
- ``M``: the plan's record table on the device (written once per shape signature); the
  kernel's record starts at ``M[p]`` and device code reads it by field name, ``M[p + CV.field]``
  with ``CV = SPEC.at``, exactly as the cpu kernels do;
- ``E``: the device error slots (int64[4]); a kernel that meets bad data sets ``E[0] = code``
  (``cpu/library.ERRORS``) and ``E[1] = p``; the executable reads them after the step;
- ``rec``: the host copy of the record (``M[p:p + size]``), for the launch configuration only
  (grid sizes); ``SPEC.unpack(rec)`` reads it by name;
- ``stream``: the stream every launch of the step goes to (a CUDA graph captures it).

A launcher never allocates device memory (workspaces come from the plan's arena) and never
synchronizes: the step stays one sequence of launches that a CUDA graph can capture.

Every module of this package is imported by ``load_all()`` (a new module registers by being
here). Under the cuda lowering profile (``cuda/profile.py``) calls are never split into shares
or phases, so the conv and pool families see their cpu records whole: ``conv_fwd`` and
``conv_bpi`` get ``(X or dY, W, Y or dX, WS)`` and ``conv_bpf`` ``(X, dY, dW, WS, BG)`` (BG is dW
itself: no bias fusion on cuda) with the ``records.CONV`` record (``has_bias`` 0, ``kept`` -1;
``T``, ``nb``, ``block``, ``region`` are the cpu's chunking, free to ignore; WS is sized by
``nn_conv._workspace_size``); the pool kernels get ``nn_pool.POOL_WINDOW`` / ``POOL_PLANE``
records of the whole work (share 0 of 1) followed by one int, the step loop's group flag.

This package imports numba.cuda; only the cuda backend imports it, so ``import staticgraph``
never needs CUDA.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict

LAUNCHERS: Dict[str, Callable] = {}



def launches(*names: str):
    """Register the decorated launcher for kernel ``names``."""
    def deco(fn):
        for name in names:
            if name in LAUNCHERS:
                raise ValueError(f"cuda kernel {name!r} has two launchers")
            LAUNCHERS[name] = fn
        return fn
    return deco


_LOADED = []


def load_all() -> Dict[str, Callable]:
    """Import every kernel module of this package (their launchers register), once; the registry."""
    if not _LOADED:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _LOADED.append(True)
    return LAUNCHERS
