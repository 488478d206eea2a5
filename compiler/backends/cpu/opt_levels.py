"""LLVM optimization levels of the kernel compiles: helpers at O2, entry points at Numba's level.

What a plan runs is an *entry point*'s machine code: a kernel wrapper (``native.wrapper_source``,
its function named ``wrapper``) or the step loop (``run``). Numba builds it from the entry's
final module, the entry plus every helper it calls linked in, optimized again as a whole at
Numba's level (``NUMBA_OPT``, 3 by default): that pass inlines the helpers and vectorizes across
the calls. A helper's own optimization, before it is linked anywhere, only shapes the IR that
final pass starts from, and the helper's standalone code, which no plan calls. So inside the
compile blocks of the kernel wrappers (``kernel_compiles``) every library other than the entry
is optimized at ``HELPER_LEVEL`` (at most Numba's level): LLVM's O3 over each helper and its
callees, once per helper and again in every helper that links it, was about a third of a cold
compile (docs/performance.md), and the entry's final pass makes the step's code the same.

Numba reads ``numba.core.config.OPT`` whenever it builds a pass pipeline, always under its
global compiler lock, so the level is switched around the two optimization methods of its code
libraries (installed once, acting only on the thread inside ``kernel_compiles``); compiles
elsewhere in the process (the user's own ``@njit`` functions) are untouched.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Iterator

HELPER_LEVEL = 2
ENTRY_NAMES = frozenset({"wrapper", "run"})      # the functions native.py compiles as entry points
_STATE = threading.local()
_INSTALLED: list = []
_INSTALL_LOCK = threading.Lock()


@contextlib.contextmanager
def kernel_compiles() -> Iterator[None]:
    """Compile helpers at ``HELPER_LEVEL`` and entry points at Numba's level in this block (this
    thread only; blocks nest)."""
    _install()
    depth = getattr(_STATE, "depth", 0)
    _STATE.depth = depth + 1
    try:
        yield
    finally:
        _STATE.depth = depth


def level_for(name: str, numba_level: int) -> int:
    """The optimization level of the code library ``name`` compiled inside ``kernel_compiles``."""
    return numba_level if name in ENTRY_NAMES else min(numba_level, HELPER_LEVEL)


def _install() -> None:
    """Wrap Numba's per-function and final-module optimization of its CPU code libraries (once)."""
    if _INSTALLED:
        return
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from numba.core import codegen
        for method in ("_optimize_functions", "_optimize_final_module"):
            setattr(codegen.CPUCodeLibrary, method, _at_library_level(getattr(codegen.CPUCodeLibrary, method)))
        _INSTALLED.append(True)


def _at_library_level(optimize):
    @functools.wraps(optimize)
    def run(library, *args, **kwargs):
        from numba.core import config
        numba_level = config.OPT
        if not getattr(_STATE, "depth", 0):
            return optimize(library, *args, **kwargs)
        level = level_for(library.name, int(numba_level))
        if level == int(numba_level):
            return optimize(library, *args, **kwargs)
        config.OPT = type(numba_level)(level)
        try:
            return optimize(library, *args, **kwargs)
        finally:
            config.OPT = numba_level
    return run
