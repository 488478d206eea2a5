"""The native step (compiler/backends/cpu/native.py): one compiled loop over a code table of
kernel-wrapper calls; wrappers are shared per (kernel, dtypes), so compile work does not grow
with the graph."""
import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import native


def _chain(n, w):
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    y = x
    for i in range(n):
        y = sg.tanh(y * w + 0.01 * (i % 5))
    loss = sg.reduce_sum(y)
    return x, loss, sg.gradients(loss, [w])[0]


def test_wrapper_count_does_not_grow_with_the_graph(rng):
    xv = rng.normal(size=(4, 3)).astype(np.float32)
    wrappers = {}
    for n in (10, 300):
        g = sg.Graph()
        with g.as_default():
            w = sg.Variable(rng.uniform(0.5, 1.0, size=3).astype(np.float32), name="w")
            x, loss, grad = _chain(n, w)
            with sg.Session() as sess:
                sess.run(w.initializer)
                plan = sess.compile([loss, grad], [x])
                step = plan._exe.base.native
                got = plan(xv)
                calls = len(plan._exe.base.prog.all_calls)
                assert step.C.size > 3 * calls                       # one row per call
                assert len(step.F) == len(step.kernels) == len(set(step.F.tolist()))
                wrappers[n] = sorted(title for title, _ in step.kernels)
            with sg.Session(target="reference") as ref:
                ref.run(w.initializer)
                want = ref.run([loss, grad], {x: xv})
        np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-3, atol=1e-5)
        assert calls > (2 * n if n > 10 else 0)
    assert wrappers[10] == wrappers[300]                              # same kernels, 30x the calls


def test_plans_share_wrappers_loaded_once_per_process(rng):
    x = sg.placeholder(sg.float64, (None,), name="x")
    with sg.Session() as sess:
        first = sess.compile(sg.exp(x) + x, [x])
        before = dict(native.STATS)
        second = sess.compile(sg.exp(x + x) + x, [x])
        assert native.STATS["kernel_compiles"] == before["kernel_compiles"]
        assert native.STATS["kernel_loads"] == before["kernel_loads"]
        assert native.all_loaded(second._exe.base.prog)
        shared = set(first._exe.base.native.F.tolist()) & set(second._exe.base.native.F.tolist())
        assert len(shared) >= 2                                      # exp and add wrappers
        xv = rng.normal(size=5)
        np.testing.assert_allclose(second(xv), np.exp(xv + xv) + xv, rtol=1e-12)


def test_buffer_table_points_at_the_layout_arrays(rng):
    x = sg.placeholder(sg.float32, (None, 2), name="x")
    w = sg.Variable(np.ones((2, 2), np.float32), name="w")
    with sg.Session() as sess:
        sess.run(w.initializer)
        plan = sess.compile(x @ w, [x])
        for n in (3, 5):
            plan(rng.normal(size=(n, 2)).astype(np.float32))
        for lay in plan._exe.base.layouts.values():
            assert lay.B.tolist() == [v for a in lay.args for v in (a.ctypes.data, a.size)]


def test_missing_wrappers_compile_in_worker_processes(monkeypatch, tmp_path):
    """precompile() fills the disk cache from parallel worker processes; this process only loads,
    each wrapper as it lands. The test's own empty cache folder (wrappers and workers read STATICGRAPH_CACHE_DIR when
    they need it) makes the wrappers missing whatever the suite's cache holds (a kept one too), and
    dtypes no other test uses keep them from being loaded in this process already."""
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STATICGRAPH_COMPILE_WORKERS", "2")
    keys = [(k, ("int16", "int16", "int16"), "") for k in ("ew_Add", "ew_Sub", "ew_Maximum", "ew_Minimum")]
    sources = [native.wrapper_source(*k) for k in keys]
    assert not any(native._compiled_on_disk(s) for s in sources)
    before = dict(native.STATS)
    assert native.precompile(sources) == 4
    assert all(native._compiled_on_disk(s) for s in sources)
    assert native.STATS["kernel_loads"] - before["kernel_loads"] == 4      # loaded as they landed
    assert native.STATS["kernel_compiles"] == before["kernel_compiles"]
    loaded = dict(native.STATS)
    assert [native.wrapper_address(s) for s in sources] == [native._WRAPPERS[native.hashlib.sha256(
        s.encode()).hexdigest()][1] for s in sources]
    assert native.STATS == loaded                                          # no load, no compile: held
    assert native.precompile(sources) == 0                   # loaded now: nothing to do


def test_work_order_keeps_a_family_in_one_worker_and_lets_every_worker_take_everything():
    """Compile workers pull from one queue: each worker's order holds every item once, its own share
    (a whole family: the convolution kernels link the same helpers) first, heaviest first; a worker
    without a family of its own starts on the heaviest items."""
    def src(kernel):
        return f"from sg_kernels_x import {kernel} as _dispatcher\n"
    sources = [src(k) for k in ("ew_Add", "conv_fwd", "ew_Mul", "tile_fwd", "pool_max", "red_Sum")]
    orders = native.work_order(sources, 2)
    assert all(sorted(order) == list(range(6)) for order in orders)
    assert sorted(sorted(order[:3]) for order in orders) == [[0, 2, 5], [1, 3, 4]]
    conv_first = next(order for order in orders if order[0] in (1, 3))
    assert conv_first[:3] == [1, 3, 4]                      # conv, then tile, then pool: heaviest first
    weights = [native._weight(s) for s in sources]
    assert all(weights[a] >= weights[b] for order in orders for a, b in zip(order[:2], order[1:3]))
    assert native._weight(src("conv_pool_fwd_3x3")) > native._weight(src("ew_binary")) > native._weight(src("red_SumF"))
    assert native._weight(src("a_kernel_nobody_listed")) == 5
    third = native.work_order(sources, 3)[2]
    assert sorted(third) == list(range(6)) and set(third[:2]) == {1, 3}


def test_a_compile_worker_drains_the_queue_skipping_claimed_items(monkeypatch, tmp_path):
    """``precompile.drain``: items claimed by another worker (renamed) are left to it; the rest are
    compiled to the cache and deleted; the folder stays while a claimed item is in flight."""
    from compiler.backends.cpu import precompile
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    sources = [native.wrapper_source(k, ("int8", "int8", "int8")) for k in ("ew_Add", "ew_Sub")]   # dtypes no
    queue = tmp_path / "queue"                                                                    # other test uses
    queue.mkdir()
    for i, text in enumerate(sources):
        (queue / f"{i}.todo").write_text(text)
    (queue / "1.todo").rename(queue / "1.todo.4242")                 # another worker's
    precompile.drain(str(queue), [1, 0])
    assert native._compiled_on_disk(sources[0]) and not native._compiled_on_disk(sources[1])
    assert sorted(p.name for p in queue.iterdir()) == ["1.todo.4242"]
    (queue / "1.todo.4242").unlink()
    precompile.drain(str(queue), [0, 1])                             # nothing left: the folder goes
    assert not queue.exists()


def test_profile_times_every_call_and_runs_real_steps(rng):
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    w = sg.Variable(np.ones((3, 2), np.float32), name="w")
    loss = sg.reduce_sum(sg.relu(x) @ w)          # x > 0: d loss / d w is constant
    train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
    xv = np.abs(rng.normal(size=(4, 3))).astype(np.float32)
    with sg.Session() as sess:
        sess.run(w.initializer)
        plan = sess.compile([train, loss], [x])
        text = plan.profile(xv, runs=3, top=100)
        rows = plan._exe.profile(sess._state, [xv], runs=2)
        calls = plan._exe.base.prog.all_calls          # a split call's shares: one row (the group)
        assert len(rows) == len([c for c in calls if c.leads])
        assert all(r[0] > 0 for r in rows) and {"MatMul", "Relu"} <= {r[1] for r in rows}
        assert f"{len(rows)} kernel calls" in text and "MatMul 'matmul'" in text and "test_cpu_native.py" in text
        # 1 run before each profile + 3 + 2 profiled steps = 7 SGD steps of d(loss)/dw = sum of x rows
        np.testing.assert_allclose(sess.run(w), 1 - 7 * 0.1 * xv.sum(0)[:, None] * np.ones((1, 2)), rtol=1e-5, atol=1e-5)
    with sg.Session(target="reference") as ref:
        with pytest.raises(NotImplementedError, match="profile.*reference"):
            ref.compile(loss, [x]).profile(xv)


def test_wrapper_holds_the_kernel_body_with_its_returns_reporting_E():
    """The wrapper is one function: the kernel's parameters bound from the buffer table, its body
    written out (no ``inline="always"``, whose IR copy cost most of a small wrapper's compile), a
    bare ``return`` returning E[0], the library globals it reads imported."""
    text = '''
def kernel(X0, Y0, M, E, p):
    """Doc."""
    n = M[p]
    for i in range(n):
        if X0[i] < 0:
            E[0] = 1
            return
        Y0[i] = _relu(X0[i])
'''
    params, body, names = native._kernel_body(text)
    assert params == ["X0", "Y0", "M", "E", "p"]
    assert "Doc." not in body and "return E[0]" in body and "_relu" in names
    src = native.wrapper_source("ew_PowInt", ["int64", "int64", "int64"])
    assert "inline" not in src and "return E[0]" in src
    assert "    p = _R[0]" in src and "def wrapper(_B, _R):" in src

