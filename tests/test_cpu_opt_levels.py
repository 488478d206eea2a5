"""How the kernel compiles build helpers (``opt_levels``: optimization levels, link-only
libraries) and the helpers' Numba options."""
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

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


def _compile_entry(scale: float, helper: list = None) -> float:
    """A fresh helper and an entry named ``wrapper`` (top-level names, as in a wrapper module)
    that calls it, compiled as a cfunc; the entry's result at 2.0 (the helper's dispatcher
    appended to ``helper``)."""
    names = {"njit": njit, "OPTIONS": dict(HELPER, cache=False), "scale": scale}
    exec(_ENTRY_SOURCE, names)
    compiled = cfunc(types.float64(types.float64))(names["wrapper"])
    compiled.address        # finalized here, inside the caller's block
    if helper is not None:
        helper.append(names["_probe"])
    return compiled.ctypes(2.0)


def _library_of(dispatcher):
    (result,) = dispatcher.overloads.values()
    return result.library, result.fndesc


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


def test_inside_the_block_helpers_are_link_only():
    """A helper compiled for an entry inside the block gets no machine code (its symbol is not in
    the JIT engine) and serializes as bitcode; the entry, which links its IR, computes right."""
    helper = []
    with opt_levels.kernel_compiles():
        assert _compile_entry(0.5, helper) == 2.0
    library, fndesc = _library_of(helper[0])
    assert getattr(library, "_sg_link_only", False)
    assert not library.codegen._engine.is_symbol_defined(fndesc.mangled_name)
    name, kind, data = library.serialize_using_object_code()
    assert kind == "bitcode" and name == library.name and data[:2] == b"BC"


def test_outside_the_block_helpers_get_machine_code():
    helper = []
    assert _compile_entry(0.25, helper) == 1.5
    library, fndesc = _library_of(helper[0])
    assert not getattr(library, "_sg_link_only", False)
    assert library.codegen._engine.is_symbol_defined(fndesc.mangled_name)


_TWO_PLANS = r'''
import json, sys, numpy as np, staticgraph as sg
from numba.core import codegen
kinds = []
unserialize = codegen.CPUCodeLibrary._unserialize.__func__
codegen.CPUCodeLibrary._unserialize = classmethod(
    lambda cls, cg, state: kinds.append([state[0], state[1]]) or unserialize(cls, cg, state))
x = sg.placeholder(sg.float64, (None, 3), name="x")
w = sg.Variable(np.arange(6.0).reshape(3, 2) / 6, dtype=sg.float64, name="w")
y = x @ w
fetches = [y]
if sys.argv[1] == "train":      # the SGD write-back GEMM (mm_update) calls the helpers the matmul did
    loss = sg.reduce_sum(y * y)
    fetches = [loss, sg.train.GradientDescentOptimizer(0.1).minimize(loss)]
xv = np.linspace(-1, 1, 12).reshape(4, 3)
out = {}
for target in ("cpu", "reference"):
    with sg.Session(target=target) as s:
        s.run(w.initializer)
        plan = s.compile(fetches, [x])
        out[target] = [np.asarray(plan(xv)[0]).ravel().tolist() for _ in range(2)]
        out[target].append(s.get_variable_value(w).ravel().tolist())
print(json.dumps({"kinds": kinds, **out}))
'''


def _run_plans(cache_dir, mode: str) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "STATICGRAPH_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(root),
           "STATICGRAPH_COMPILE_WORKERS": "0", "STATICGRAPH_WARMUP": "wait"}     # compiled in this process
    out = subprocess.run([sys.executable, "-c", _TWO_PLANS, mode], cwd=root, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_link_only_helper_cached_by_one_process_is_linked_by_the_next(tmp_path):
    """The first process compiles the matmul's GEMM helpers (link-only, cached as bitcode); the
    second compiles the SGD write-back kernel, which links ``_gemm_par`` read back from that cache."""
    _run_plans(tmp_path, "forward")
    second = _run_plans(tmp_path, "train")
    assert ["_gemm_par", "bitcode"] in second["kinds"]
    np.testing.assert_allclose(np.concatenate([np.ravel(v) for v in second["cpu"]]),
                               np.concatenate([np.ravel(v) for v in second["reference"]]), rtol=1e-12)


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
