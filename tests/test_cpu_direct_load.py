"""Cached kernel wrappers and the step loop loaded straight from their Numba files
(compiler/backends/cpu/cached_code.py), without a dispatcher: a warm start in a new process takes
that path (``native.STATS``), answers as the plan compiled here does, never unpickles a file its
entry's ``numba.json`` does not vouch for, and leaves whatever it does not understand to Numba.

The plans use the session's test cache: a run here compiles what it lacks (or loads it), then
each warm start runs in a subprocess (the loaders' state is per process)."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import cache
from compiler.backends.cpu import cached_code, native
from compiler.cache import PlanCache

ROOT = Path(__file__).resolve().parent.parent
SEED = 2026_12_08

PLAN = r'''
import json, sys, numpy as np, staticgraph as sg
from compiler.backends.cpu import library, native

def build():
    """Matmul (GEMM), bias broadcast, relu, exp, a row reduction, on odd sizes."""
    rng = np.random.default_rng(SEED)
    x = sg.placeholder(sg.float64, (None, 7), name="x")
    w = sg.constant(rng.normal(size=(7, 5)), dtype=sg.float64)
    b = sg.constant(rng.normal(size=(5,)), dtype=sg.float64)
    h = sg.relu(sg.matmul(x, w) + b)
    y = sg.reduce_sum(sg.exp(-h) * h, axis=1) + sg.reduce_max(h, axis=1)
    xs = [rng.normal(size=(n, 7)) for n in (1, 3, 13)]
    with sg.Session() as s:
        plan = s.compile(y, [x])
        global WARMING
        WARMING = plan._exe.warming_up      # a warm start builds at once (native.all_at_hand)
        plan.wait()
        outs = [plan(v) for v in xs]
        keys = native.wrapper_keys(plan._exe.base.prog)
    ref = []
    for v in xs:
        hv = np.maximum(v @ rng_w(SEED)[0] + rng_w(SEED)[1], 0)
        ref.append((np.exp(-hv) * hv).sum(1) + hv.max(1))
    return outs, ref, keys

def rng_w(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(7, 5)), rng.normal(size=(5,))

if __name__ == "__main__":
    outs, ref, keys = build()
    print(json.dumps({"outs": [o.tolist() for o in outs], "ref": [r.tolist() for r in ref],
                      "wrappers": len(set(keys)), "stats": native.STATS,
                      "registries": "numba.np.arraymath" in sys.modules,
                      "kernel_modules": sorted(m for m in sys.modules if m.startswith("compiler.backends.cpu.kernels.")),
                      "library_made": library._source.cache_info().currsize, "warming_up": WARMING}))
'''.replace("SEED", str(SEED))


def _warm_start(tmp_path, direct=True):
    """The plan run by a new process on the session's cache; its JSON report."""
    script = tmp_path / "plan_run.py"
    script.write_text(PLAN if direct else PLAN.replace("import library, native\n", "import library, native\nnative.DIRECT_LOADS = False\n", 1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "STATICGRAPH_COMPILE_WORKERS": "0", "STATICGRAPH_WARMUP": "reference"}     # a user's default
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.fixture(scope="module")
def here():
    """The plan compiled (or loaded) in this process: its outputs and wrapper sources."""
    namespace = {"__name__": "plan_here"}
    exec(PLAN, namespace)
    outs, ref, keys = namespace["build"]()
    native._save_parts()        # the wrappers' parts memo, as this process would write it at exit
    for got, want in zip(outs, ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    return outs, list(dict.fromkeys(native.wrapper_source(*k) for k in keys))


def _entry(source):
    return PlanCache().path_of(native._entry_key("wrapper", source))


def _same(report, outs):
    assert len(report["outs"]) == len(outs)
    for got, want in zip(report["outs"], outs):
        np.testing.assert_array_equal(np.array(got), want)      # the same machine code: the same bits


def test_a_warm_start_loads_every_wrapper_and_the_step_loop_directly(here, tmp_path):
    outs, sources = here
    report, _ = _warm_start(tmp_path)
    stats = report["stats"]
    assert report["wrappers"] == len(sources) >= 3
    assert stats["kernel_direct_loads"] == stats["kernel_loads"] == len(sources)
    assert stats["kernel_compiles"] == 0 and stats["step_loop_direct_loads"] == 1
    assert not report["registries"]           # the CPU target was never refreshed for a compile
    # no kernel module decorated but the step loop's own imports, no library source generated
    assert report["kernel_modules"] == ["compiler.backends.cpu.kernels.base", "compiler.backends.cpu.kernels.gemm"]
    assert report["library_made"] == 0
    assert not report["warming_up"]      # all on disk: built at once, its first run already native
    _same(report, outs)
    numba_path, _ = _warm_start(tmp_path, direct=False)    # Numba's own path: loads, none direct
    assert numba_path["stats"]["kernel_loads"] == len(sources) and numba_path["stats"]["kernel_direct_loads"] == 0
    _same(numba_path, outs)


class _Touch:
    """Unpickling this creates ``path``: evidence that a file was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_tampered_data_file_is_never_unpickled_and_the_wrapper_compiles_again(here, tmp_path):
    outs, sources = here
    entry = _entry(sources[0])
    data = sorted((entry / "__pycache__").glob("*.nbc"))
    assert len(data) == 1
    marker = tmp_path / "unpickled"
    data[0].write_bytes(pickle.dumps(_Touch(marker)))           # recorded in numba.json with another hash
    report, stderr = _warm_start(tmp_path)
    assert not marker.exists()
    assert "does not match its hash" in stderr and str(data[0]) in stderr
    stats = report["stats"]
    assert stats["kernel_compiles"] == 1 and stats["kernel_direct_loads"] == len(sources) - 1
    _same(report, outs)
    assert cache.read_vouched(data[0]) is not None             # compiled again and recorded
    again, _ = _warm_start(tmp_path)
    assert again["stats"]["kernel_direct_loads"] == len(sources)


def test_an_index_the_loader_does_not_take_is_left_to_numba(here, tmp_path):
    """An index with a second overload (another signature's, as a cfunc never has): Numba's path
    loads the wrapper's own overload from it, the direct loader declines."""
    outs, sources = here
    entry = _entry(sources[-1])
    index = next((entry / "__pycache__").glob("*.nbi"))
    blob = index.read_bytes()
    with open(index, "rb") as f:
        version = pickle.load(f)
        stamp, overloads = pickle.loads(f.read())
    (key, name), = overloads.items()
    overloads[(("another",),) + key[1:]] = name
    index.write_bytes(pickle.dumps(version, protocol=-1) + pickle.dumps((stamp, overloads), protocol=-1))
    PlanCache().seal(entry)                                    # vouched for: only its shape is new
    try:
        report, _ = _warm_start(tmp_path)
        stats = report["stats"]
        assert stats["kernel_compiles"] == 0 and stats["kernel_loads"] == len(sources)
        assert stats["kernel_direct_loads"] == len(sources) - 1
        _same(report, outs)
    finally:
        index.write_bytes(blob)
        PlanCache().seal(entry)


def test_the_loader_refuses_another_numba_version_or_source(here):
    _, sources = here
    entry = _entry(sources[0])
    stamp = bytes.fromhex(native.hashlib.sha256(sources[0].encode()).hexdigest())
    with pytest.raises(cached_code.Unsupported, match="another source"):
        cached_code.load_wrapper(entry, sources[0], b"\0" * 32)
    index = next((entry / "__pycache__").glob("*.nbi"))
    blob = index.read_bytes()
    with open(index, "rb") as f:
        pickle.load(f)
        rest = f.read()
    index.write_bytes(pickle.dumps("0.0.0", protocol=-1) + rest)
    PlanCache().seal(entry)
    try:
        with pytest.raises(cached_code.Unsupported, match="another Numba version"):
            cached_code.load_wrapper(entry, sources[0], stamp)
    finally:
        index.write_bytes(blob)
        PlanCache().seal(entry)


def test_code_using_a_symbol_nobody_registered_is_left_to_numba():
    """MCJIT ends the process on an unresolved symbol: the loader lists the object code's undefined
    symbols and looks each up before linking."""
    from llvmlite import binding as ll
    from numba.core.registry import cpu_target
    codegen = cpu_target.target_context.codegen()
    module = ll.parse_assembly(
        "declare double @exp(double)\n"                     # the C library's: resolved
        "declare i64 @sg_test_symbol_nobody_defines(i64)\n"
        "@_numba_hashsecret_test_unregistered = external global i64\n"
        "define double @f(double %x, i64 %n) {\n"
        "  %e = call double @exp(double %x)\n"
        "  %k = call i64 @sg_test_symbol_nobody_defines(i64 %n)\n"
        "  %h = load i64, i64* @_numba_hashsecret_test_unregistered\n"
        "  %s = add i64 %k, %h\n"
        "  %d = sitofp i64 %s to double\n"
        "  %r = fadd double %e, %d\n"
        "  ret double %r\n}\n")
    obj = codegen._tm.emit_object(module)
    defined, undefined = cached_code._symbols(obj)
    assert defined == ["f"]
    assert set(undefined) == {"exp", "sg_test_symbol_nobody_defines", "_numba_hashsecret_test_unregistered"}
    assert sorted(cached_code._unresolved(undefined, codegen._engine)) == ["_numba_hashsecret_test_unregistered",
                                                                      "sg_test_symbol_nobody_defines"]
    with pytest.raises(cached_code.Unsupported, match="ELF64"):
        cached_code._symbols(b"\xcf\xfa\xed\xfe" + obj[4:])     # a Mach-O magic
