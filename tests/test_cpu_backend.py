"""The Numba cpu backend: kernel registry, plans, memory planning, tiers, threads, errors."""
import threading
import tracemalloc

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends import cpu
from compiler.backends.cpu import LOWERINGS
from compiler.backends.cpu.executable import STATS
from staticgraph.opdef import registered_types


def ref_run(fetches, feeds=None, init=True, steps=1):
    with sg.Session(target="reference") as sess:
        if init:
            sess.run(sg.global_variables_initializer())
        for _ in range(steps):
            out = sess.run(fetches, feeds)
        return out


@pytest.fixture
def fused(monkeypatch):
    """Plans run their fused tier from the first run."""
    monkeypatch.setenv("STATICGRAPH_JIT", "sync")
    monkeypatch.setenv("STATICGRAPH_JIT_AFTER", "0")


def test_every_registered_op_type_has_a_cpu_kernel():
    missing = [t for t in registered_types() if t not in LOWERINGS]
    assert not missing, f"op types without a cpu kernel: {missing}"


def test_missing_kernel_is_a_clear_compile_time_error(monkeypatch):
    monkeypatch.delitem(LOWERINGS, "Sin")
    x = sg.placeholder(sg.float32, (3,))
    y = sg.sin(x, name="my_sine")
    with sg.Session() as sess:
        with pytest.raises(NotImplementedError, match=r"no kernel for op type 'Sin'.*my_sine.*test_cpu_backend.py:\d+"):
            sess.compile(y, [x])


def test_default_target_is_the_compiled_cpu_backend():
    x = sg.placeholder(sg.float32, (None,))
    with sg.Session() as sess:
        plan = sess.compile(x * 2.0, [x])
        assert isinstance(plan._exe, cpu.CpuExecutable)
        np.testing.assert_array_equal(plan(np.arange(3, dtype=np.float32)), [0, 2, 4])
        assert "step(" in plan._exe.source and "# Mul 'multiply' at" in plan._exe.source


def _mlp(rng, batch=None):
    x = sg.placeholder(sg.float32, (batch, 6), name="x")
    labels = sg.placeholder(sg.int64, (batch,), name="labels")
    w1 = sg.Variable(rng.normal(size=(6, 5)).astype(np.float32) * 0.5, name="w1")
    b1 = sg.Variable(np.zeros(5, np.float32), name="b1")
    w2 = sg.Variable(rng.normal(size=(5, 3)).astype(np.float32) * 0.5, name="w2")
    h = sg.relu(x @ w1 + b1)
    logits = h @ w2
    m = sg.reduce_max(logits, axis=1, keepdims=True)
    z = logits - sg.stop_gradient(m)
    logp = z - sg.log(sg.reduce_sum(sg.exp(z), axis=1, keepdims=True))
    loss = -sg.reduce_mean(sg.reduce_sum(sg.one_hot(labels, 3) * logp, axis=1))
    train = sg.train.GradientDescentOptimizer(0.3).minimize(loss)
    return x, labels, loss, train, (w1, b1, w2)


def _batch(rng, n):
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, size=n).astype(np.int64)


@pytest.mark.parametrize("tier", ["base", "fused"])
def test_training_steps_match_the_reference(rng, tier, monkeypatch):
    if tier == "fused":
        monkeypatch.setenv("STATICGRAPH_JIT", "sync")
        monkeypatch.setenv("STATICGRAPH_JIT_AFTER", "0")
    x, labels, loss, train, ws = _mlp(rng)
    batches = [_batch(rng, n) for n in (4, 7, 4)]
    results = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            out = [sess.run([loss, train], {x: bx, labels: by})[0] for bx, by in batches]
            results[target] = (out, [sess.get_variable_value(w) for w in ws])
            if target == "cpu":
                plan = sess._plans[next(iter(sess._plans))]
                assert plan._exe.jitted == (tier == "fused")
    np.testing.assert_allclose(results["cpu"][0], results["reference"][0], rtol=2e-5, atol=1e-6)
    for a, b in zip(results["cpu"][1], results["reference"][1]):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_new_batch_size_replans_buffers_without_recompiling(rng, fused):
    x, labels, loss, train, _ = _mlp(rng)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile([loss, train], [x, labels])
        plan(*_batch(rng, 3))
        exe = plan._exe
        assert exe.jitted
        compiles = STATS["kernel_compiles"] + STATS["kernel_loads"]
        layouts = STATS["layouts"]
        for n in (8, 5, 8, 3):
            plan(*_batch(rng, n))
        assert STATS["kernel_compiles"] + STATS["kernel_loads"] == compiles   # nothing recompiled
        assert STATS["layouts"] - layouts == 2                        # one buffer plan per new batch size
        assert len(exe.tier.layouts) == 3


def test_fused_groups_are_generated_loops(rng, fused):
    a = sg.placeholder(sg.float32, (None, 4))
    b = sg.placeholder(sg.float32, (4,))
    y = sg.tanh(a * 2.0 + b) * sg.exp(-a) - sg.sqrt(sg.abs(b) + 1.0)
    av, bv = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    with sg.Session() as sess:
        plan = sess.compile(y, [a, b])
        out = plan(av, bv)
        assert plan._exe.tier.prog.fused, plan.explain()
        assert "fused groups" in plan.explain() and "fused_0" in plan._exe.source
    np.testing.assert_allclose(out, ref_run(y, {a: av, b: bv}, init=False), rtol=2e-6, atol=1e-6)


def test_a_fused_group_of_more_operands_than_any_library_kernel(rng, fused):
    """Three inputs and three outputs: a loop over six operands, whose record (``library.ew_spec(6)``,
    ``EW6``) no library kernel reads; the plan module and the group's wrapper bind it themselves."""
    a, b, c = (sg.placeholder(sg.float32, shape) for shape in ((None, 5), (5,), (None, 1)))
    u = sg.exp(a) * b
    v = u - c * 2.0
    w = sg.tanh(v) + a
    values = [rng.normal(size=s).astype(np.float32) for s in ((3, 5), (5,), (3, 1))]
    with sg.Session() as sess:
        plan = sess.compile([u, v, w], [a, b, c])
        out = plan(*values)
        (group,) = [op for _, _, op in plan._exe.tier.prog.fused]
        assert len(group.inputs) + len(group.outputs) == 6, plan.explain()
        assert "EW6 = ew_spec(6).at" in plan._exe.source
    for got, want in zip(out, ref_run([u, v, w], dict(zip((a, b, c), values)), init=False)):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_fusion_falls_back_when_runtime_shapes_differ_from_the_loop_shape(rng, fused):
    a = sg.placeholder(sg.float32, (None,))
    b = sg.placeholder(sg.float32, (None,))
    e = sg.exp(a)              # shape of a: differs from the loop shape when a is broadcast
    y = e + b
    with sg.Session() as sess:
        plan = sess.compile([y, e], [a, b])
        for na, nb in [(3, 3), (1, 4)]:
            av, bv = rng.normal(size=na).astype(np.float32), rng.normal(size=nb).astype(np.float32)
            out_y, out_e = plan(av, bv)
            # the kernels round exp(a) + b once, NumPy twice: within a few ulps of the terms (they may cancel)
            np.testing.assert_allclose(out_y, np.exp(av) + bv, rtol=0, atol=4e-7 * float(np.max(np.exp(av)) + np.max(np.abs(bv))))
            assert out_e.shape == (na,)


def test_memory_plan_reuses_buffers_without_overlap(rng):
    x = sg.placeholder(sg.float32, (None, 64))
    y = x
    for i in range(12):
        y = sg.tanh(y * 1.01 + float(i)) if i % 2 else sg.exp(-y) @ sg.constant(np.eye(64, dtype=np.float32))
    loss = sg.reduce_sum(y)
    with sg.Session() as sess:
        plan = sess.compile(loss, [x])
        xv = rng.normal(size=(32, 64)).astype(np.float32)
        out = plan(xv)
        lay = next(iter(plan._exe.tier.layouts.values()))
        arena = lay.arena
        arena.check()                                                   # no live buffers overlap
        temps = [iv for iv in arena.intervals if iv[3] >= 0]
        assert len(arena.inplace) > 0                                    # elementwise ops in place
        total = sum(n for (_, _, n, s, e, ks) in temps for _ in ks)
        assert arena.sizes[np.dtype("float32")] < total                  # memory is reused
    np.testing.assert_allclose(out, ref_run(loss, {x: xv}, init=False), rtol=1e-4)


def test_no_allocation_inside_a_step_after_the_first(rng):
    x = sg.placeholder(sg.float32, (256, 256))
    y = sg.reduce_sum(sg.tanh(x @ x) * sg.exp(x) + sg.sigmoid(x))
    with sg.Session() as sess:
        plan = sess.compile(y, [x])
        xv = rng.normal(size=(256, 256)).astype(np.float32) * 0.1
        plan(xv)
        arrays = dict(next(iter(plan._exe.tier.layouts.values())).arrays)
        tracemalloc.start()
        for _ in range(3):
            plan(xv)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 64 * 1024, peak       # one 256x256 float32 temporary alone is 256 KiB
        now = next(iter(plan._exe.tier.layouts.values())).arrays
        assert all(now[k] is v for k, v in arrays.items())


def test_fetched_variable_returns_the_old_value_and_assigns_land_together():
    a = sg.Variable(np.float32(1.0), name="a")
    b = sg.Variable(np.float32(2.0), name="b")
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        old = sess.run([a, b, sg.group(a.assign(b), b.assign(a))])
        assert old[:2] == [1.0, 2.0]
        assert sess.run([a, b]) == [2.0, 1.0]                           # swapped: reads saw old values
        got = sess.run([a, a.assign_add(10.0)])
        assert got[0] == 2.0 and sess.run(a) == 12.0


def test_kernel_error_names_the_op_and_nothing_lands():
    v = sg.Variable(np.int64(5), name="v", trainable=False)
    e = sg.placeholder(sg.int64, (None,))
    p = sg.pow(sg.constant(np.array([2, 3], np.int64)), e, name="int_power")
    step = sg.group(v.assign(sg.reduce_sum(p)))
    with sg.Session() as sess:
        sess.run(v.initializer)
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"int_power.*negative integer powers"):
            sess.run(step, {e: np.array([1, -1], np.int64)})
        assert sess.run(v) == 5
        sess.run(step, {e: np.array([2, 3], np.int64)})
        assert sess.run(v) == 4 + 27


def test_runtime_shape_errors_name_the_op():
    a = sg.placeholder(sg.float32, (None, None))
    b = sg.placeholder(sg.float32, (None, None))
    y = sg.matmul(a, b, name="the_product")
    with sg.Session() as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"the_product.*\(2, 3\).*\(2, 2\)"):
            sess.run(y, {a: np.zeros((2, 3), np.float32), b: np.zeros((2, 2), np.float32)})


def test_threads_get_their_own_results_and_assigns_land_atomically(rng):
    x = sg.placeholder(sg.float32, (None, 3))
    counter = sg.Variable(np.float32(0.0), name="counter")
    w = sg.Variable(rng.normal(size=(3, 2)).astype(np.float32))
    y = sg.tanh(x @ w) * 2.0
    step = [y, counter.assign_add(1.0)]
    errors, per_thread, n_threads = [], 25, 4
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        wv = sess.get_variable_value(w)

        def worker(k):
            try:
                r = np.random.default_rng(k)
                for _ in range(per_thread):
                    xv = r.normal(size=(k + 1, 3)).astype(np.float32)
                    out = sess.run(step, {x: xv})[0]
                    np.testing.assert_allclose(out, np.tanh(xv @ wv) * 2.0, rtol=1e-5, atol=1e-6)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert sess.run(counter) == n_threads * per_thread


def test_explain_lists_passes_kernels_buffers_and_peak(rng):
    x = sg.placeholder(sg.float32, (None, 4))
    w = sg.Variable(np.ones((4, 2), np.float32))
    loss = sg.reduce_mean(sg.square(x @ w - 1.0))
    train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile([loss, train], [x])
        plan(np.ones((3, 4), np.float32))
        text = plan.explain()
    for needle in ("passes", "cse", "mm_blas", "MatMul", "buffers for feed shapes ((3, 4),)", "peak",
                   "bytes", "compile:", "Assign"):
        assert needle in text, (needle, text)


def test_step_sees_variables_set_outside_runs():
    v = sg.Variable(np.zeros(3, np.float32))
    y = v * 2.0
    with sg.Session() as sess:
        sess.run(v.initializer)
        plan = sess.compile(y)
        np.testing.assert_array_equal(plan(), [0, 0, 0])
        sess.set_variable_value(v, [1, 2, 3])
        np.testing.assert_array_equal(plan(), [2, 4, 6])
        w = sg.Variable(np.ones(2, np.float64))     # a new variable re-lays out storage
        sess.run(w.initializer)
        np.testing.assert_array_equal(plan(), [2, 4, 6])
        np.testing.assert_array_equal(sess.run(w), [1, 1])


def test_random_ops_match_the_reference_stream():
    r = sg.random_normal((4,), seed=7) + sg.random_uniform((4,), seed=3)
    with sg.Session() as s1, sg.Session(target="reference") as s2:
        for _ in range(3):
            np.testing.assert_array_equal(s1.run(r), s2.run(r))


def test_a_lowering_can_use_a_workspace_buffer(monkeypatch, rng):
    """The registry API for new kernels: a scratch buffer sized from concrete shapes."""
    from compiler.backends.cpu.lowerings import _elementwise

    def neg_via_workspace(op, b):
        x, out = op.inputs[0], op.outputs[0]
        ws = b.workspace(x.dtype, lambda env: env.shape(x), why="negated copy")
        b.ew("Neg", ws, [x], inplace=False)
        b.ew("Copy", out, [ws], inplace=False)
    monkeypatch.setitem(LOWERINGS, "Neg", neg_via_workspace)
    x = sg.placeholder(sg.float32, (None, 3))
    y = -x * 2.0
    xv = rng.normal(size=(5, 3)).astype(np.float32)
    with sg.Session() as sess:
        plan = sess.compile(y, [x])
        np.testing.assert_array_equal(plan(xv), -xv * 2.0)
        lay = next(iter(plan._exe.tier.layouts.values()))
        lay.arena.check()
        assert any("negated copy" in repr(k) for iv in lay.arena.intervals for k in iv[5])
    assert _elementwise is LOWERINGS["Add"]
