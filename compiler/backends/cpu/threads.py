"""Worker threads of the step loop's call groups and of the kernels that still split their own work.

The conv family, both Winograd families, ``red_Dot``, pooling and large elementwise calls are split
at lowering into shares (``Lowering.split_call``, and ``lowerings.PHASES`` for kernels with several
steps): the step loop runs a group's shares on T workers, each with its own region of the kernel's
workspace and its GEMMs on one BLAS thread, so the im2col copies, transforms and GEMMs of both
halves run at once instead of one core copying while BLAS splits each small GEMM; the kernels
themselves are serial (a ``prange`` body costs Numba several optimisations of everything it
calls). Only large GEMMs (``gemm._gemm_par``: matmuls, the SGD write-back ``mm_update``, implicit
convs) still split with a ``prange(T)`` inside the kernel. T is part of each record, written at
plan entry (``kernel_threads()``, at most the lowering's ``shares()`` where shares do the work);
with T = 1 the shares run one after another and never touch the threading layer.

T is 1 when ``STATICGRAPH_KERNEL_THREADS=1``, when Numba has no thread-safe threading layer
(OpenMP or TBB: plans may run in several Python threads at once, and Numba's ``workqueue`` layer
aborts on concurrent launches), and in a process forked from this one: GNU OpenMP cannot run in a
forked child (Numba terminates it), so a child drops the layouts it inherited and plans again
with one worker.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
import weakref

_FORKED = [False]
_LOWERED_SHARES: contextvars.ContextVar = contextvars.ContextVar("staticgraph_lowered_shares", default=None)
_EXECUTABLES: "weakref.WeakSet" = weakref.WeakSet()


def _setting() -> int:
    """``STATICGRAPH_KERNEL_THREADS`` as a positive int, 0 when unset."""
    value = os.environ.get("STATICGRAPH_KERNEL_THREADS", "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"STATICGRAPH_KERNEL_THREADS={value!r}: expected a positive integer")
    return int(value)


def _threadsafe_layer() -> bool:
    """Numba will pick a thread-safe threading layer (TBB or OpenMP), without launching it."""
    import numba
    layer = numba.config.THREADING_LAYER
    if layer in ("tbb", "omp", "safe", "threadsafe"):     # Numba raises at launch if it has none of them
        return True
    if layer == "workqueue":
        return False
    return _threadsafe_pool_loads()


@functools.lru_cache(maxsize=None)
def _threadsafe_pool_loads() -> bool:
    """Numba's TBB or OpenMP pool imports ("default" / "forksafe" pick the first that loads).
    Asked once per process: a failing import is not cached by Python, and a plan asks per record."""
    for pool in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{pool}")
            return True
        except (ImportError, OSError):
            continue
    return False


def kernel_threads() -> int:
    """Workers a parallel kernel may use (see the module doc): ``STATICGRAPH_KERNEL_THREADS``, else
    Numba's thread count (``NUMBA_NUM_THREADS``: the machine's cores); never more than the shares a
    program was lowered with (``lowered_shares``; else ``shares()``). A record's T workers are run
    by the lowering's G share calls, share t doing worker t's part: with T > G
    (``NUMBA_NUM_THREADS`` above the core count, more than ``MAX_SHARES`` cores, a setting above it
    or raised after the lowering) the parts past the last share would never run."""
    if _FORKED[0]:
        return 1
    import numba
    explicit = _setting()
    most = _LOWERED_SHARES.get() or shares()
    if numba.config.DISABLE_JIT:      # kernels run as Python: workers run one after another
        return min(explicit or 1, most)
    n = min(explicit or numba.config.NUMBA_NUM_THREADS, most)
    return n if n == 1 or _threadsafe_layer() else 1


MAX_SHARES = 16


def shares() -> int:
    """How many calls a splittable kernel call becomes at lowering (``Lowering.split_call``):
    ``STATICGRAPH_KERNEL_THREADS``, else the machine's cores, at most ``MAX_SHARES``. Answered
    without importing Numba (lowering runs before the warm-up is over); whether a layout runs the
    shares on the workers is ``kernel_threads()``'s call, at plan entry."""
    return max(1, min(MAX_SHARES, _setting() or os.cpu_count() or 1))


@contextlib.contextmanager
def lowered_shares(g: int):
    """Within: ``kernel_threads()`` is at most ``g``, the share count of the program whose records
    and workspaces are being sized (``Program.shares``; per context, so plans laid out in several
    threads at once each see their own)."""
    token = _LOWERED_SHARES.set(g)
    try:
        yield
    finally:
        _LOWERED_SHARES.reset(token)


def track(executable) -> None:
    """Remember a compiled executable, so that a forked child can drop its layouts."""
    _EXECUTABLES.add(executable)


def _after_fork_in_child() -> None:
    _FORKED[0] = True
    for exe in list(_EXECUTABLES):
        exe.drop_layouts()


os.register_at_fork(after_in_child=_after_fork_in_child)
