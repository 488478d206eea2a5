"""``python -m staticgraph cache warm``: the kernel library (staticgraph/warm.py) compiled ahead of
time, and the exit policy's dispatch (tests/test_cpu_exit_handoff.py runs the real hand-off)."""
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import executable, native
from compiler.backends.cpu.executable import base_wrapper_keys
from compiler.schedule import schedule
from staticgraph import warm

ROOT = Path(__file__).resolve().parent.parent


def _env(cache_dir, **extra):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "STATICGRAPH_CACHE_DIR": str(cache_dir), **extra}


def cli(*args, cache_dir):
    return subprocess.run([sys.executable, "-m", "staticgraph", "cache", *args], capture_output=True, text=True,
                          env=_env(cache_dir), cwd=ROOT, timeout=600)


ADD_MUL = r'''
import json, numpy as np, staticgraph as sg
from compiler.backends.cpu import native
from compiler.cache import STATS
a, b = sg.placeholder(sg.float32, (None, 4), name="a"), sg.placeholder(sg.float32, (None, 4), name="b")
with sg.Session() as s:
    out = s.compile([a + b, a * b], [a, b])(np.ones((2, 4), np.float32), np.full((2, 4), 2, np.float32))
print(json.dumps({"out": [o.tolist() for o in out], "stats": native.STATS, "cache": STATS.snapshot()}))
'''


def test_warm_fills_a_fresh_cache_that_a_plan_then_loads_without_compiling(tmp_path):
    cache_dir = tmp_path / "cache"
    proc = cli("warm", "--only", "ew_Add,ew_Mul", "--jobs", "2", cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"cache folder: {cache_dir}" in proc.stdout
    # Add and Mul share one kernel (their family's, library.EW_FAMILIES): one wrapper for float32
    assert "compiled 1, already cached 0, failed 0" in proc.stdout
    assert "compiling kernels" in proc.stderr and "1/1" in proc.stderr            # the tqdm bar
    listing = cli("warm", "--only", "ew_Add,ew_Mul", "--list", cache_dir=cache_dir).stdout.splitlines()
    assert len(listing) == 1 and all(line.endswith("cached") for line in listing), listing
    out = subprocess.run([sys.executable, "-c", ADD_MUL], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env=_env(cache_dir, STATICGRAPH_WARMUP="wait"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["out"] == [[[3.0] * 4] * 2, [[2.0] * 4] * 2]
    assert result["stats"]["kernel_compiles"] == result["stats"]["kernel_compiles_in_workers"] == 0
    assert result["stats"]["kernel_loads"] == 1
    assert result["cache"]["compiles"] == 0                  # nor the step loop
    again = cli("warm", "--only", "ew_Add,ew_Mul", cache_dir=cache_dir)
    assert again.returncode == 0 and "compiled 0, already cached 1, failed 0" in again.stdout


def test_warm_refuses_unknown_plans_and_kernels(tmp_path):
    proc = cli("warm", "--plans", "convnet,resnet", cache_dir=tmp_path)
    assert proc.returncode == 1 and "unknown plans ['resnet']" in proc.stderr
    proc = cli("warm", "--only", "no_such_kernel", "--list", cache_dir=tmp_path)
    assert proc.returncode == 1 and "no kernel of the plans" in proc.stderr
    assert cli("warm", "--jobs", "0", cache_dir=tmp_path).returncode == 1


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return module


@pytest.mark.parametrize("example, model, shape", [("train_convnet", "DigitsNet", (1, 8, 8)),
                                                   ("lenet_module", "Net", (1, 28, 28))])
def test_the_library_covers_the_demo_and_lecture_plans(example, model, shape):
    """The examples' own models (not warm.py's copies), trained as the demo does: every wrapper
    their plans run is in the library (lowering only, nothing compiled)."""
    net = getattr(_example(example), model)()
    keys = {k for fetches, feeds in warm._training(net, shape, sg.train.AdamOptimizer(1e-3))
            for k in base_wrapper_keys(schedule([f for f in fetches if isinstance(f, sg.Tensor)],
                                                [f for f in fetches if not isinstance(f, sg.Tensor)], feeds))}
    library = set(warm.library_keys())
    assert keys and keys <= library, sorted(keys - library)
    assert all(dtypes and set(dtypes) <= {"float32", "int64", "bool"} for _, dtypes, _ in library)


class _Alive(threading.Thread):
    def is_alive(self):
        return True


@pytest.mark.parametrize("mode, handed_off, joined", [("detach", True, False), ("wait", False, True),
                                                       ("detach", False, True)])
def test_exit_policy(mode, handed_off, joined, monkeypatch):
    """detach: hand off and return; wait, or a hand-off that could not start: join the builds."""
    calls = []
    monkeypatch.setenv("STATICGRAPH_EXIT_COMPILES", mode)
    monkeypatch.setattr(executable, "_THREADS", [_Alive()])
    monkeypatch.setattr(executable, "_hand_off_compiles", lambda: calls.append("hand off") or handed_off)
    monkeypatch.setattr(executable, "_join_compiles", lambda: calls.append("join"))
    executable._at_exit()
    assert calls == (["hand off"] if mode == "detach" else []) + (["join"] if joined else [])


def test_no_build_running_means_nothing_at_exit(monkeypatch, capsys):
    monkeypatch.setattr(executable, "_THREADS", [])
    monkeypatch.setattr(native, "compile_detached", lambda sources: pytest.fail("nothing to hand off"))
    executable._at_exit()
    assert capsys.readouterr().err == ""


def test_bad_exit_mode_fails_at_the_run_that_starts_a_build(monkeypatch):
    monkeypatch.setenv("STATICGRAPH_WARMUP", "reference")
    monkeypatch.setenv("STATICGRAPH_EXIT_COMPILES", "never")
    monkeypatch.setattr(native, "all_at_hand", lambda prog: False)
    monkeypatch.setattr(native, "all_loaded", lambda prog: False)
    x = sg.placeholder(sg.float32, (2,), name="x")
    with sg.Session() as sess:
        plan = sess.compile(x * 3.0, [x])
        np.testing.assert_array_equal(plan(np.ones(2, np.float32)), [3, 3])     # first run: no build
        with pytest.raises(ValueError, match="STATICGRAPH_EXIT_COMPILES='never'"):
            plan(np.ones(2, np.float32))
