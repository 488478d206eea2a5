"""The cpu backend across processes: disk-cache hits, hash-seed independent keys, NUMBA_DISABLE_JIT."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import json, numpy as np, staticgraph as sg
from compiler.backends.cpu.executable import STATS
from compiler.cache import STATS as CACHE_STATS
x = sg.placeholder(sg.float32, (None, 3), name="x")
w = sg.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 6, name="w")
loss = sg.reduce_sum(sg.tanh(x @ w) * 2.0 + sg.sigmoid(x[:, :2]))
train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
xv = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
results = {}
for target in ("cpu", "reference"):
    with sg.Session(target=target) as s:
        s.run(w.initializer)
        plan = s.compile([loss, train], [x])
        results[target] = [float(plan(xv)[0]) for _ in range(3)] + s.get_variable_value(w).ravel().tolist()
        if target == "cpu":
            exe = plan._exe
            info = {"key": exe.key, "base_key": exe.base.key, "jitted": exe.jitted}
print(json.dumps({**info, "stats": STATS, "cache": CACHE_STATS.snapshot(), **results}))
'''


def run_script(cache_dir, **env):
    full = {**os.environ, "STATICGRAPH_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT), **env}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=full, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compiled_plan_is_a_disk_cache_hit_in_a_second_process(tmp_path):
    env = dict(STATICGRAPH_JIT="sync", STATICGRAPH_JIT_AFTER="0")
    first = run_script(tmp_path, **env)
    second = run_script(tmp_path, **env)
    assert first["jitted"] and second["jitted"]
    compiled = first["stats"]["kernel_compiles"] + first["stats"]["kernel_compiles_in_workers"]
    assert compiled >= 1
    assert second["stats"]["kernel_compiles"] == second["stats"]["kernel_compiles_in_workers"] == 0, \
        second["stats"]                                                        # nothing recompiled
    # every wrapper the first process compiled (here or in its workers) or loaded, the second loads
    assert second["stats"]["kernel_loads"] == first["stats"]["kernel_compiles"] + first["stats"]["kernel_loads"]
    assert second["cache"].get("hits", 0) >= 1 and second["cache"].get("misses", 0) == 0
    assert first["key"] == second["key"]
    for r in (first, second):
        assert abs(max(abs(a - b) for a, b in zip(r["cpu"], r["reference"]))) < 1e-4


def test_plan_key_does_not_depend_on_the_hash_seed():
    # the suite's kernel cache (tests/conftest.py): what the keys are does not depend on whether
    # the kernels behind them are compiled or loaded, so a warm cache need not compile them again
    cache = os.environ["STATICGRAPH_CACHE_DIR"]
    a = run_script(cache, STATICGRAPH_JIT="off", PYTHONHASHSEED="1")
    b = run_script(cache, STATICGRAPH_JIT="off", PYTHONHASHSEED="2")
    assert a["base_key"] == b["base_key"]
    assert a["cpu"] == b["cpu"]


def test_numba_disable_jit_runs_the_same_generated_plans_as_python(tmp_path):
    r = run_script(tmp_path, NUMBA_DISABLE_JIT="1", STATICGRAPH_JIT="sync", STATICGRAPH_JIT_AFTER="0")
    assert r["jitted"]                      # the fused tier's generated module, run as Python
    assert r["stats"]["kernel_compiles"] == 0 and r["stats"]["kernel_loads"] == 0
    assert max(abs(a - b) for a, b in zip(r["cpu"], r["reference"])) < 1e-4


GEMM_SCRIPT = r'''
import json, numpy as np, staticgraph as sg
import compiler.backends.cpu.nn_conv as nc
nc.IMPLICIT_MIN_CHANNELS, nc.IMPLICIT_MAX_WASTE = 1, 100.0      # the implicit GEMM conv path
rng = np.random.default_rng(SEED)
x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
a, b = rng.standard_normal((30, 40)), rng.standard_normal((40, 20))
X, W = sg.placeholder(sg.float64, x.shape), sg.placeholder(sg.float64, w.shape)
A, B = sg.placeholder(sg.float64, a.shape), sg.placeholder(sg.float64, b.shape)
y = sg.nn.conv2d(X, W, padding=1)
fetches = [y, *sg.gradients(sg.reduce_sum(y * y), [X, W]), A @ B, sg.gradients(sg.reduce_sum(sg.square(A @ B)), [A])[0]]
feed = {X: x, W: w, A: a, B: b}
cpu, ref = sg.Session().run(fetches, feed), sg.Session(target="reference").run(fetches, feed)
print(json.dumps([float(np.abs(u - v).max() / np.abs(v).max()) for u, v in zip(cpu, ref)]))
'''


def test_numba_disable_jit_runs_blas_gemms_and_implicit_convs_as_python(tmp_path, rng):
    """The kernels' GEMM (``_gemm``: leading dimensions, alpha, beta) has a NumPy fallback."""
    env = {**os.environ, "STATICGRAPH_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "NUMBA_DISABLE_JIT": "1"}
    script = GEMM_SCRIPT.replace("SEED", str(int(rng.integers(2 ** 31))))
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(errors) == 5 and max(errors) < 1e-12, errors
