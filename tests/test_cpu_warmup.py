"""Warm-up: while a plan's kernels compile in a thread (started by its second run, or wait()), its
runs go to the reference interpreter."""
import threading

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import executable, native
from staticgraph.errors import InternalError


@pytest.fixture
def held_build(monkeypatch):
    """Plans warm up, and their background build waits for ``release.set()``."""
    monkeypatch.setenv("STATICGRAPH_WARMUP", "reference")
    monkeypatch.setattr(native, "all_at_hand", lambda prog: False)
    monkeypatch.setattr(native, "all_loaded", lambda prog: False)
    release = threading.Event()
    original = executable.Tier.build

    def build(self):
        assert release.wait(60), "test never released the build"
        return original(self)
    monkeypatch.setattr(executable.Tier, "build", build)
    return release


def _model(rng):
    x = sg.placeholder(sg.float32, (None, 4), name="x")
    w = sg.Variable(rng.normal(size=(4, 3)).astype(np.float32), name="w")
    loss = sg.reduce_mean(sg.tanh(x @ w) ** 2)
    train = sg.train.GradientDescentOptimizer(0.5).minimize(loss)
    return x, w, loss, train


def test_runs_use_the_reference_until_the_kernels_are_ready_then_switch(rng, held_build):
    x, w, loss, train = _model(rng)
    batches = [rng.normal(size=(n, 4)).astype(np.float32) for n in (5, 3, 5, 7)]
    with sg.Session(target="reference") as ref:
        ref.run(w.initializer)
        expected = [ref.run([loss, train], {x: b})[0] for b in batches]
        w_expected = ref.run(w)
    with sg.Session() as sess:
        sess.run(w.initializer)     # warms up too: the initializer runs on the reference
        plan = sess.compile([loss, train], [x])
        exe = plan._exe
        got = [plan(batches[0])[0]]
        assert exe.tiers.build_thread is None      # a plan's first run does not share the CPU with the build
        got.append(plan(batches[1])[0])
        assert exe.tiers.build_thread is not None  # the second starts it
        assert exe.warming_up and exe.tiers.warmup_runs == 2
        assert "reference interpreter" in plan.explain()
        held_build.set()
        plan.wait()
        assert not exe.warming_up
        got += [plan(b)[0] for b in batches[2:]]
        assert exe.tiers.warmup_runs == 2 and exe.base.ready
        assert "base tier" in plan.explain()
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        np.testing.assert_allclose(sess.run(w), w_expected, rtol=1e-5, atol=1e-6)


def test_warm_up_fetches_are_owned_copies(rng, held_build):
    v = sg.Variable(np.arange(3, dtype=np.float32), name="v")
    bump = sg.assign_add(v, np.ones(3, np.float32))
    with sg.Session() as sess:
        sess.run(v.initializer)
        plan = sess.compile([v, bump], [])
        before, _ = plan()
        before2, _ = plan()
        assert plan._exe.warming_up
        np.testing.assert_array_equal(before, [0, 1, 2])      # not changed by the assign that followed
        np.testing.assert_array_equal(before2, [1, 2, 3])
        held_build.set()
        plan.wait()
        np.testing.assert_array_equal(plan()[0], [2, 3, 4])
        np.testing.assert_array_equal(sess.run(v), [3, 4, 5])


def test_a_failed_background_build_is_raised_by_the_next_run(rng, monkeypatch):
    monkeypatch.setenv("STATICGRAPH_WARMUP", "reference")
    monkeypatch.setattr(native, "all_at_hand", lambda prog: False)
    monkeypatch.setattr(native, "all_loaded", lambda prog: False)

    def broken(self):
        raise RuntimeError("numba exploded")
    monkeypatch.setattr(executable.Tier, "build", broken)
    x = sg.placeholder(sg.float32, (2,), name="x")
    with sg.Session() as sess:
        plan = sess.compile(x * 3.0, [x])
        for _ in range(2):       # warm-up runs; the second starts the build
            np.testing.assert_array_equal(plan(np.ones(2, np.float32)), [3, 3])
        plan._exe.tiers.build_thread.join()
        with pytest.raises(InternalError, match="building the cpu plan failed.*numba exploded"):
            plan(np.ones(2, np.float32))


def test_wait_mode_builds_before_compile_returns(rng, monkeypatch):
    monkeypatch.setenv("STATICGRAPH_WARMUP", "wait")
    monkeypatch.setattr(native, "all_at_hand", lambda prog: False)
    monkeypatch.setattr(native, "all_loaded", lambda prog: False)
    x = sg.placeholder(sg.float32, (2,), name="x")
    with sg.Session() as sess:
        plan = sess.compile(x * 3.0, [x])
        assert plan._exe.base.ready and not plan._exe.warming_up
        np.testing.assert_array_equal(plan(np.ones(2, np.float32)), [3, 3])


def test_bad_warmup_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("STATICGRAPH_WARMUP", "eventually")
    x = sg.placeholder(sg.float32, (2,), name="x")
    with sg.Session() as sess:
        with pytest.raises(ValueError, match="STATICGRAPH_WARMUP='eventually'"):
            sess.compile(x * 3.0, [x])


def test_a_process_forked_mid_build_stays_on_the_interpreter_and_says_so(rng, held_build):
    """The child of a fork during the build has no build thread (and maybe Numba's compiler lock
    held by it): its runs stay on the reference interpreter, and wait() warns instead of
    returning as if the kernels were ready."""
    import os
    import warnings
    x, w, loss, train = _model(rng)
    batch = rng.normal(size=(5, 4)).astype(np.float32)
    with sg.Session(target="reference") as ref:
        ref.run(w.initializer)
        expected = ref.run(loss, {x: batch})
    with sg.Session() as sess:
        sess.run(w.initializer)
        plan = sess.compile(loss, [x])
        plan(batch)
        plan(batch)                                  # the build thread starts (held)
        exe = plan._exe
        pid = os.fork()
        if pid == 0:                                 # the child: never back into pytest
            code = 3
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    plan.wait()
                    value = plan(batch)
                said = [str(m.message) for m in caught if "was forked while cpu plan" in str(m.message)]
                code = 0 if (len(said) == 1 and exe.warming_up and np.isclose(value, expected, rtol=1e-5)) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        held_build.set()
        plan.wait()                                  # the parent builds as usual
        assert not exe.warming_up
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_initializer_warms_up_even_in_wait_mode_and_compiles_nothing(rng, monkeypatch):
    """A plan that only moves data (constants into variables) has no kernel worth compiling: it runs
    on the reference interpreter even under STATICGRAPH_WARMUP=wait; a plan that computes builds."""
    monkeypatch.setenv("STATICGRAPH_WARMUP", "wait")
    monkeypatch.setattr(native, "all_at_hand", lambda prog: False)
    monkeypatch.setattr(native, "all_loaded", lambda prog: False)
    builds = []
    original = executable.Tier.build

    def build(self):
        builds.append(self)
        return original(self)
    monkeypatch.setattr(executable.Tier, "build", build)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, 4), name="x")
    w = sg.Variable(w0, name="w")
    loss = sg.reduce_sum(sg.tanh(x @ w))
    with sg.Session() as sess:
        init = sess.compile([sg.global_variables_initializer()], [])
        assert executable.only_moves_data(init._exe.tiers.original)
        init()
        assert builds == [] and init._exe.warming_up and init._exe.tiers.build_thread is None
        assert "reference interpreter" in init.explain()
        np.testing.assert_array_equal(sess.run(w), w0)
        plan = sess.compile([loss], [x])
        assert not executable.only_moves_data(plan._exe.tiers.original)
        assert len(builds) == 1 and plan._exe.base.ready and not plan._exe.warming_up
        b = rng.normal(size=(5, 4)).astype(np.float32)
        np.testing.assert_allclose(plan(b)[0], np.tanh(b @ w0).sum(), rtol=1e-5)
