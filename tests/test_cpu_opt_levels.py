"""The kernel compiles' optimization levels (``opt_levels``) and the helpers' Numba options."""
import importlib
import pkgutil

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import cfunc, njit, types  # noqa: E402
from numba.core import codegen, config  # noqa: E402

from compiler.backends.cpu import kernels, opt_levels  # noqa: E402
from compiler.backends.cpu.kernels.base import HELPER  # noqa: E402


def _levels_seen(monkeypatch):
    """Record (library name, NUMBA_OPT in force) each time Numba builds a module pipeline."""
    with opt_levels.kernel_compiles():
        pass        # installs the level switch first, so the spies below sit outside it
    seen, names = [], []
    final = codegen.CPUCodeLibrary._optimize_final_module
    pipeline = codegen.CPUCodegen._module_pass_manager

    def spy_final(library, *args, **kwargs):
        names.append(library.name)
        try:
            return final(library, *args, **kwargs)
        finally:
            names.pop()

    def spy_pipeline(cg, **kwargs):
        seen.append((names[-1] if names else None, int(config.OPT)))
        return pipeline(cg, **kwargs)
    monkeypatch.setattr(codegen.CPUCodeLibrary, "_optimize_final_module", spy_final)
    monkeypatch.setattr(codegen.CPUCodegen, "_module_pass_manager", spy_pipeline)
    return seen


_ENTRY_SOURCE = """
@njit(**OPTIONS)
def _probe(x):
    return x * scale + 1.0


def wrapper(x):
    return _probe(x)
"""


def _compile_entry(scale: float) -> float:
    """A fresh helper and an entry named ``wrapper`` (top-level names, as in a wrapper module)
    that calls it, compiled as a cfunc; the entry's result at 2.0."""
    names = {"njit": njit, "OPTIONS": dict(HELPER, cache=False), "scale": scale}
    exec(_ENTRY_SOURCE, names)
    compiled = cfunc(types.float64(types.float64))(names["wrapper"])
    compiled.address        # finalized here, inside the caller's block
    return compiled.ctypes(2.0)


def test_helpers_optimize_at_the_helper_level_and_entries_at_numbas(monkeypatch):
    seen = _levels_seen(monkeypatch)
    with opt_levels.kernel_compiles():
        assert _compile_entry(3.0) == 7.0
    numba_level = int(config.OPT)
    helper = {level for name, level in seen if name == "_probe"}
    entry = {level for name, level in seen if name == "wrapper"}
    assert helper == {min(numba_level, opt_levels.HELPER_LEVEL)}
    assert entry == {numba_level}
    assert int(config.OPT) == numba_level           # restored


def test_outside_the_block_numbas_level_is_untouched(monkeypatch):
    seen = _levels_seen(monkeypatch)
    assert _compile_entry(5.0) == 11.0
    assert seen and {level for _, level in seen} == {int(config.OPT)}


def test_level_for():
    assert opt_levels.level_for("wrapper", 3) == 3 and opt_levels.level_for("run", 3) == 3
    assert opt_levels.level_for("_gemm", 3) == opt_levels.HELPER_LEVEL
    assert opt_levels.level_for("_gemm", 0) == 0          # NUMBA_OPT=0 (debugging) stays 0


def _kernel_functions():
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for name, value in vars(module).items():
            if hasattr(value, "targetoptions") and getattr(value, "py_func", None) is not None \
                    and value.py_func.__module__ == module.__name__:
                yield name, value


def test_helpers_have_no_python_entry_and_kernels_keep_theirs():
    """A helper (leading underscore) is only called from kernels: no CPython or C entry to build; a
    kernel keeps its Python entry (tests call kernels directly)."""
    found = dict(_kernel_functions())
    helpers = {n for n in found if n.startswith("_")}
    assert len(helpers) > 40 and len(found) - len(helpers) > 30
    for name, dispatcher in found.items():
        options = dispatcher.targetoptions
        is_helper = bool(options.get("no_cpython_wrapper")) and bool(options.get("no_cfunc_wrapper"))
        assert is_helper == name.startswith("_"), name


def test_a_helper_runs_from_an_njit_caller():
    from compiler.backends.cpu.kernels import base

    @njit
    def call(a, b):
        return base._maximum(a, b), base._relu(a)
    assert call(np.float32(-2.0), np.float32(1.5)) == (1.5, 0.0)
