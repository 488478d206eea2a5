"""How the kernel compiles build their helpers: at O2, as link-only code; entry points at Numba's level.

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

A helper library is also *link-only* there (``_link_only``): Numba finalizes every library
by emitting its machine code, helpers included, though a helper has no CPython or C entry (the
kernels' ``HELPER`` options) and its code is only ever linked into an entry's module as LLVM IR.
That emission was about a twelfth of a cold compile (LeNet's wrappers: 2.0 of 26 s). A link-only
library keeps its optimized module and is never handed to the JIT engine; Numba's cache stores it
as that module's bitcode (its ``bitcode`` kind, which Numba reads back as it reads any), not as
object code. Read back inside ``kernel_compiles`` it stays link-only; elsewhere Numba finalizes
it as usual.

Numba reads ``numba.core.config.OPT`` whenever it builds a pass pipeline, always under its
global compiler lock, so the level is switched around the two optimization methods of its code
libraries, and finalization around its finalize method (installed once, acting only on the
thread inside ``kernel_compiles``); compiles elsewhere in the process (the user's own ``@njit``
functions) are untouched.
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
    """Wrap Numba's per-function and final-module optimization, finalization and object-code
    serialization of its CPU code libraries (once)."""
    if _INSTALLED:
        return
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from numba.core import codegen
        lib = codegen.CPUCodeLibrary
        for method in ("_optimize_functions", "_optimize_final_module"):
            setattr(lib, method, _at_library_level(getattr(lib, method)))
        lib._finalize_final_module = _unless_link_only(lib._finalize_final_module)
        lib.serialize_using_object_code = _bitcode_if_link_only(lib.serialize_using_object_code)
        codegen.JITCPUCodegen.set_env = _env_if_defined(codegen.JITCPUCodegen.set_env)
        _INSTALLED.append(True)


def _link_only(library) -> bool:
    """Whether ``library`` is finalized link-only: a helper (not an entry point) compiled inside
    ``kernel_compiles`` whose module defines no CPython or C wrapper (nothing calls it but
    other compiled code, which links its IR)."""
    if not getattr(_STATE, "depth", 0) or library.name in ENTRY_NAMES or not library.name.startswith("_"):
        return False
    return not any(not fn.is_declaration and fn.name.startswith(_WRAPPER_PREFIXES)
                   for fn in library._final_module.functions)


_WRAPPER_PREFIXES = ("_ZN7cpython", "cfunc.")     # Numba's CPython and C wrapper symbols


def _unless_link_only(finalize):
    @functools.wraps(finalize)
    def run(library):
        if not _link_only(library):
            return finalize(library)
        library._finalize_dynamic_globals()      # Numba's own checks, without the JIT engine
        library._verify_declare_only_symbols()
        library._sg_link_only = True
        library._finalized = True
    return run


def _env_if_defined(set_env):
    @functools.wraps(set_env)
    def run(codegen, env_name, env):
        # a link-only library's environment variable is in no module of the JIT engine (its
        # address 0): the entries that link the library define their own copy, set when they load
        if codegen._engine.get_global_value_address(env_name):
            set_env(codegen, env_name, env)
    return run


def _bitcode_if_link_only(serialize):
    @functools.wraps(serialize)
    def run(library):
        if not getattr(library, "_sg_link_only", False):
            return serialize(library)
        return library.name, "bitcode", library._get_module_for_linking().as_bitcode()
    return run


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
