"""Kernel workers (compiler/backends/cpu/threads.py): the worker count, large GEMMs split over
workers (``_gemm_par``: bands of rows or of columns, transposed operands, batches, the SGD
write-back GEMM), pooling calls split into shares of planes that the step loop runs on the workers
(``Lowering.split_call``), against NumPy and the reference backend for 1-3 workers; and a forked
child, which must run its inherited plans on one worker (GNU OpenMP cannot run in a forked child)."""
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import nn_pool, threads
from helpers import run_cpu_and_reference

ROOT = Path(__file__).resolve().parent.parent


def test_worker_count_setting(monkeypatch):
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "3")
    assert threads.kernel_threads() == 3
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "workqueue")     # not thread-safe: one worker
    assert threads.kernel_threads() == 1
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "omp")
    assert threads.kernel_threads() == 3
    monkeypatch.setattr(threads, "_FORKED", [True])
    assert threads.kernel_threads() == 1
    monkeypatch.setattr(threads, "_FORKED", [False])
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(threads.MAX_SHARES + 5))   # never more than the shares
    assert threads.kernel_threads() == threads.shares() == threads.MAX_SHARES
    monkeypatch.delenv("STATICGRAPH_KERNEL_THREADS")
    assert threads.kernel_threads() == min(numba.config.NUMBA_NUM_THREADS, threads.shares())
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", bad)
        with pytest.raises(ValueError, match=f"STATICGRAPH_KERNEL_THREADS='{bad}': expected a positive integer"):
            threads.kernel_threads()


# (batch dims, m, k, n): every product has at least library.PAR_GEMM (2^18) multiply-adds, so
# the GEMMs split; m >= n splits rows, m < n columns (not multiples of 16: a short last band)
MATMULS = [((), 301, 37, 41), ((), 19, 61, 307), ((2,), 67, 45, 70), ((), 130, 40, 130)]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, m, k, n", MATMULS)
def test_split_gemms_match_numpy_and_reference(batch, m, k, n, dtype, workers, rng, monkeypatch):
    """y = a @ b and its gradients (dy @ b^T, a^T @ dy: both transpose flags) on 1-3 workers."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    a = rng.standard_normal(batch + (m, k)).astype(dtype)
    b = rng.standard_normal(batch + (k, n)).astype(dtype)
    dy = rng.standard_normal(batch + (m, n)).astype(dtype)
    A, B = sg.placeholder(dtype, a.shape), sg.placeholder(dtype, b.shape)
    y = sg.matmul(A, B)
    ga, gb = sg.gradients(y, [A, B], grad_ys=dy)
    with sg.Session() as sess:
        plan = sess.compile([y, ga, gb], [A, B])
        records = plan._exe.base.prog.calls
        assert sorted(c.kernel for c in records) == ["mm_blas"] * 3
        cpu = plan(a, b)
    _, ref = run_cpu_and_reference([y, ga, gb], {A: a, B: b})
    want = [a.astype(np.float64) @ b, dy.astype(np.float64) @ np.swapaxes(b, -1, -2),
            np.swapaxes(a, -1, -2).astype(np.float64) @ dy]
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    for got, r, w in zip(cpu, ref, want):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, w, rtol=rtol, atol=rtol * np.abs(w).max())
        np.testing.assert_allclose(got, r, rtol=rtol, atol=rtol * np.abs(w).max())


@pytest.mark.parametrize("workers", [1, 3])
def test_sgd_write_back_gemm_split_over_workers(workers, rng, monkeypatch):
    """A dense layer's SGD step (W -= lr * x^T dy as one split GEMM into the variable), two steps
    against the reference backend."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    x = rng.standard_normal((64, 101))
    w0 = rng.standard_normal((101, 53))
    got = {}
    for target in ("cpu", "reference"):
        sg.reset_default_graph()
        X = sg.placeholder(sg.float64, x.shape)
        W = sg.Variable(w0, dtype=sg.float64)
        loss = sg.reduce_sum(sg.square(sg.matmul(X, W)))
        train = sg.train.GradientDescentOptimizer(1e-4).minimize(loss)
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            if target == "cpu":
                plan = sess.compile([train, loss], [X])
                assert "mm_update" in [c.kernel for c in plan._exe.base.prog.writeback]
            losses = [sess.run([train, loss], {X: x})[1] for _ in range(2)]
            got[target] = losses + [sess.run(W)]
    for a, b in zip(got["cpu"], got["reference"]):
        np.testing.assert_allclose(a, b, rtol=1e-11)


POOLS = [  # input shape, pooling (planes not a multiple of the shares; one plane: empty shares), max's kernel
    ((5, 7, 47, 43), dict(kernel_size=3, stride=2, padding=1), "pool_max_padded"),
    ((1, 1, 30, 31), dict(kernel_size=2), "pool_max_rows_2x2"), ((3, 4, 9, 8, 7), dict(kernel_size=2, stride=1), "pool_max_full"),
]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("shape, kw, max_kernel", POOLS, ids=["2d-pad", "one-plane", "3d"])
def test_pooling_shares_on_workers_match_the_reference(shape, kw, max_kernel, workers, rng, monkeypatch):
    """Max and average pooling and their gradients as ``workers`` shares of their planes, run as a
    worker group by the step loop (every size: ``GROUP_WORK`` = 0) or one after the other (1 worker)."""
    from compiler.backends.cpu import lowering
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(lowering, "GROUP_WORK", 0)
    pool = sg.nn.max_pool3d if len(shape) == 5 else sg.nn.max_pool2d
    avg = sg.nn.avg_pool3d if len(shape) == 5 else sg.nn.avg_pool2d
    x = sg.placeholder(sg.float64, shape)
    y, a = pool(x, **kw), avg(x, **kw)
    gx, = sg.gradients(sg.reduce_sum(y * y) + sg.reduce_sum(a * a * a), [x])
    xv = rng.standard_normal(shape)
    cpu, ref = run_cpu_and_reference([y, a, gx], {x: xv})
    for got, want in zip(cpu, ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with sg.Session() as sess:
        plan = sess.compile([y, a, gx], [x])
        plan(xv)
        calls = [c for c in plan._exe.base.prog.calls if c.kernel.startswith("pool")]
        lay = next(iter(plan._exe.tier.layouts.values()))
        timed = [r[3] for r in plan._exe.profile(sess._state, [xv], runs=1) if r[3].startswith("pool")]
    assert sorted(timed) == sorted(["pool_avg", "pool_avg_grad", max_kernel, "pool_max_grad"])     # a group: one row
    assert sorted({c.kernel for c in calls}) == sorted(["pool_avg", "pool_avg_grad", max_kernel, "pool_max_grad"])
    assert all(c.share == ((i % workers, workers) if workers > 1 else ()) for i, c in enumerate(calls))
    flags = [int(lay.M[c.pos + c.size - 1]) for c in calls if c.leads]
    assert flags == [int(workers > 1)] * 4


def test_small_pools_run_their_shares_one_after_the_other(rng, monkeypatch):
    """Below ``GROUP_WORK`` elements the layout leaves a group's flag 0: no worker launch."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "2")
    x = sg.placeholder(sg.float32, (2, 3, 8, 8))
    y = sg.nn.max_pool2d(x, 2)
    with sg.Session() as sess:
        plan = sess.compile([y], [x])
        xv = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
        np.testing.assert_array_equal(plan(xv)[0], xv.reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))
        (c0, c1) = [c for c in plan._exe.base.prog.calls if c.kernel == "pool_max_rows_2x2"]
        lay = next(iter(plan._exe.tier.layouts.values()))
        assert "[share 2/2]" in plan.explain()
    assert (c0.share, c1.share) == ((0, 2), (1, 2)) and lay.M[c0.pos + c0.size - 1] == 0


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_elementwise_shares_on_workers_match_numpy(workers, rng, monkeypatch):
    """Elementwise calls on unknown-batch shapes split along their longest loop dim (broadcast
    operands, an in-place chain, a column broadcast whose split dim is the outer one), run as
    worker groups (every size: ``EW_GROUP_WORK`` = 0) or one after the other."""
    from compiler.backends.cpu import lowering
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(lowering, "EW_GROUP_WORK", 0)
    x = sg.placeholder(sg.float64, (None, 7, 33))
    col = sg.placeholder(sg.float64, (None, 1, 1))
    row = sg.placeholder(sg.float64, (33,))
    y = sg.tanh(sg.relu(x * 2.0 + row) - col)
    z = sg.maximum(x, col) / (1.0 + sg.exp(-x))
    xv, cv, rv = rng.standard_normal((5, 7, 33)), rng.standard_normal((5, 1, 1)), rng.standard_normal(33)
    with sg.Session() as sess:
        plan = sess.compile([y, z], [x, col, row])
        got = plan(xv, cv, rv)
        calls = [c for c in plan._exe.base.prog.calls if c.kernel.startswith("ew_")]
        lay = next(iter(plan._exe.tier.layouts.values()))
    np.testing.assert_allclose(got[0], np.tanh(np.maximum(xv * 2.0 + rv, 0) - cv), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got[1], np.maximum(xv, cv) / (1.0 + np.exp(-xv)), rtol=1e-13, atol=1e-13)
    assert calls and all(c.share == ((i % workers, workers) if workers > 1 else ()) for i, c in enumerate(calls))
    assert {int(lay.M[c.pos + c.size - 1]) for c in calls if c.leads} == {int(workers > 1)}
    assert len({c.index for c in calls}) == len(calls) // workers       # a group's shares are one time


def test_small_static_elementwise_calls_stay_whole(monkeypatch):
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "2")
    x = sg.placeholder(sg.float32, (5, 5))
    with sg.Session() as sess:
        plan = sess.compile([sg.exp(x) + x], [x])
    assert [c.share for c in plan._exe.base.prog.calls] == [(), ()]


FORK_SCRIPT = r'''
import os, numpy as np, staticgraph as sg
rng = np.random.default_rng(%d)
x = rng.standard_normal((6, 3, 12, 12)); w = rng.standard_normal((8, 3, 5, 5))
X = sg.placeholder(sg.float64, x.shape); W = sg.placeholder(sg.float64, w.shape)
y = sg.nn.conv2d(X, W)
gx, gw = sg.gradients(sg.reduce_sum(sg.square(y)), [X, W])
P = sg.placeholder(sg.float64, (4, 8, 90, 90))          # a max pool big enough for its worker group
pv = rng.standard_normal(P.shape)
pooled = sg.nn.max_pool2d(P, 3)
gp, = sg.gradients(sg.reduce_sum(sg.square(pooled)), [P])
x2 = rng.standard_normal((4, 32, 8, 8)); w2 = rng.standard_normal((64, 32, 5, 5))     # single-tile Winograd
X2 = sg.placeholder(sg.float64, x2.shape); W2 = sg.placeholder(sg.float64, w2.shape)
y2 = sg.nn.conv2d(X2, W2)
g2 = sg.gradients(sg.reduce_sum(y2 * y2), [X2, W2])
sess = sg.Session()
plan = sess.compile([y, gx, gw, pooled, gp, y2, *g2], [X, W, P, X2, W2])
parent = plan(x, w, pv, x2, w2)   # im2col chunks, tile kernels and the pool group on 2 workers: the parent uses the threading layer
kernels = {c.kernel for c in plan._exe.base.prog.calls}
assert {"conv_fwd", "tile_fwd", "tile_bpi", "tile_bpf"} <= kernels, kernels
lay = next(iter(plan._exe.tier.layouts.values()))
flags = [int(lay.M[c.pos + c.size - 1]) for c in plan._exe.base.prog.calls if c.share and c.leads]
assert len(flags) >= 2 and all(f == 1 for f in flags), flags      # every group (convs, tile phases, pooling) on the workers
pid = os.fork()
if pid == 0:
    child = plan(x, w, pv, x2, w2)    # the inherited plan, planned again on one worker
    # one worker sums in another order than two (chunks, partial filter gradients): rounding of the
    # largest terms, so the tolerance scales with each output's magnitude
    ok = all(np.allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(b).max())) for a, b in zip(child, parent))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
'''


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_runs_inherited_plans_on_one_worker(tmp_path, rng):
    env = {**os.environ, "STATICGRAPH_KERNEL_THREADS": "2", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT % int(rng.integers(1 << 30))], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "child 0" in out.stdout, out.stdout + out.stderr[-2000:]


MORE_THREADS_THAN_SHARES = r'''
import numba, numpy as np, staticgraph as sg
from compiler.backends.cpu import threads
assert threads.kernel_threads() <= threads.shares() < numba.config.NUMBA_NUM_THREADS
rng = np.random.default_rng(%d)
x = rng.standard_normal((64, 3, 12, 12)); w = rng.standard_normal((8, 3, 3, 3))
X = sg.placeholder(sg.float64, (None, 3, 12, 12)); W = sg.placeholder(sg.float64, w.shape)
y = sg.nn.conv2d(X, W, stride=2)
fetches = [y] + sg.gradients(sg.reduce_sum(sg.square(y)), [X, W])
got = sg.Session().compile(fetches, [X, W])(x, w)
want = sg.Session(target="reference").run(fetches, {X: x, W: w})
print("max error", max(float(np.abs(a - b).max()) for a, b in zip(got, want)))
'''


def test_more_numba_threads_than_shares_still_runs_every_part(rng):
    """NUMBA_NUM_THREADS above the shares a call is split into (more than the cores, or more than
    MAX_SHARES cores): a record's workers are capped at the shares, each share doing one worker's
    chunks; with more workers than shares the last workers' chunks never ran (wrong convs, silently)."""
    env = {k: v for k, v in os.environ.items() if k != "STATICGRAPH_KERNEL_THREADS"}
    env.update(PYTHONPATH=str(ROOT), STATICGRAPH_WINOGRAD="0",
               NUMBA_NUM_THREADS=str(2 * min(os.cpu_count() or 1, threads.MAX_SHARES) + 1))
    out = subprocess.run([sys.executable, "-c", MORE_THREADS_THAN_SHARES % int(rng.integers(1 << 30))], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split("max error")[1]) < 1e-9, out.stdout


def test_workers_raised_after_lowering_keep_to_the_lowered_shares(rng, monkeypatch):
    """A plan lowered for 2 shares, laid out for a new batch size after STATICGRAPH_KERNEL_THREADS
    went up to 3: its im2col conv records keep T at most 2 (``threads.lowered_shares``), so no
    chunk belongs to a worker without a share call, and the results match the reference."""
    from compiler.backends.cpu.records import CONV
    monkeypatch.setenv("STATICGRAPH_WINOGRAD", "0")
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "2")
    X, W = sg.placeholder(sg.float64, (None, 3, 12, 12)), sg.placeholder(sg.float64, (8, 3, 3, 3))
    y = sg.nn.conv2d(X, W, stride=2)
    fetches = [y] + sg.gradients(sg.reduce_sum(sg.square(y)), [X, W])
    w = rng.standard_normal((8, 3, 3, 3))
    with sg.Session() as sess:
        plan = sess.compile(fetches, [X, W])
        plan(rng.standard_normal((4, 3, 12, 12)), w)
        monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "3")
        x = rng.standard_normal((64, 3, 12, 12))
        got = plan(x, w)
        prog = plan._exe.tier.prog
        lay = plan._exe.tier.layouts[((64, 3, 12, 12), (8, 3, 3, 3))]
        convs = [c for c in prog.all_calls if c.kernel.startswith("conv_")]
        assert convs and prog.shares == 2
        assert all(CONV.unpack(lay.M[c.pos:c.pos + CONV.size])["T"] <= 2 for c in convs)
    want = sg.Session(target="reference").run(fetches, {X: x, W: w})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())
