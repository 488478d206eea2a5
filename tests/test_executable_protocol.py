"""One executable protocol for every backend (compiler/backends/base.py): ``run`` lands the assigns
itself under the session lock and returns arrays the caller owns; ``Plan`` calls the tier policy's
``wait``/``jit`` and ``profile`` as methods."""
import threading

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.base import Backend, Executable, Tiers
from compiler.backends.cpu.executable import CpuTiers
from compiler.backends.reference import ReferenceExecutable

try:
    import numba.cuda  # noqa: F401  (the cuda target runs on the simulator: tests/conftest.py)
    TARGETS = ["reference", "cpu", "cuda"]
except ImportError:
    TARGETS = ["reference", "cpu"]


def _bump_model():
    v = sg.Variable(np.arange(3, dtype=np.float32), name="v")
    return v, sg.assign_add(v, np.ones(3, np.float32))


@pytest.mark.parametrize("target", TARGETS)
def test_run_lands_the_assigns_and_returns_owned_fetches(target):
    v, bump = _bump_model()
    x = sg.placeholder(sg.float32, (3,), name="x")
    with sg.Session(target=target) as sess:
        sess.run(v.initializer)
        exe = sess.compile([v, x, bump], [x])._exe
        assert isinstance(exe, Executable) and isinstance(exe.tiers, Tiers)
        fed = np.full(3, 7, np.float32)
        got = exe.run(sess._state, [fed])         # called directly: nobody else lands anything
        assert isinstance(got, list) and len(got) == 2
        stored = sess._state.read(v.op)
        np.testing.assert_array_equal(got[0], [0, 1, 2])       # the read saw the value before the run
        np.testing.assert_array_equal(stored, [1, 2, 3])       # the assign landed, once
        assert not np.shares_memory(got[0], stored) and not np.shares_memory(got[1], fed)
        got[0][...] = -1
        np.testing.assert_array_equal(sess.run(v), [1, 2, 3])


@pytest.mark.parametrize("target", TARGETS)
def test_a_run_holds_the_session_lock_from_its_reads_to_its_assigns(target):
    """A write made while the lock is held is seen by a run started meanwhile: its reads wait
    too, not only its assigns (no lost update)."""
    v, bump = _bump_model()
    with sg.Session(target=target) as sess:
        sess.run(v.initializer)
        plan = sess.compile([v, bump], [])
        plan()                                   # plan the layout (cpu) before timing anything
        state, got = sess._state, []
        with state.lock:
            runner = threading.Thread(target=lambda: got.append(plan._exe.run(state, [])))
            runner.start()
            runner.join(0.3)
            assert runner.is_alive()             # waits for the lock
            state.values[v.op] = np.full(3, 10, np.float32)
        runner.join(60)
        assert not runner.is_alive()
        np.testing.assert_array_equal(got[0][0], [10, 10, 10])
        np.testing.assert_array_equal(sess.run(v), [11, 11, 11])


def test_tier_policies():
    v, bump = _bump_model()
    with sg.Session(target="reference") as ref, sg.Session() as cpu:
        assert type(ref.compile(bump)._exe.tiers) is Tiers
        plan = ref.compile(v)
        assert plan.wait() is plan and plan.jit() is plan       # one tier, always ready: no-ops
        assert isinstance(cpu.compile(bump)._exe.tiers, CpuTiers)


class _CountingTiers(Tiers):
    def __init__(self):
        self.calls = []

    def wait(self) -> None:
        self.calls.append("wait")

    def jit(self) -> None:
        self.calls.append("jit")


class _Recording(ReferenceExecutable):
    """A backend written against the protocol alone."""
    target = "recording"

    def __init__(self, sched):
        super().__init__(sched)
        self.tiers = _CountingTiers()


class _RecordingBackend(Backend):
    executable = _Recording


def test_plan_uses_the_protocol_of_any_backend():
    v, bump = _bump_model()
    with sg.Session(target="reference") as sess:
        sess._backend = _RecordingBackend()
        sess.run(v.initializer)
        plan = sess.compile([v, bump])
        assert plan.wait().jit() is plan
        assert plan._exe.tiers.calls == ["wait", "jit"]
        for expected in ([0, 1, 2], [1, 2, 3]):
            np.testing.assert_array_equal(plan()[0], expected)
        np.testing.assert_array_equal(sess.run(v), [2, 3, 4])
        with pytest.raises(NotImplementedError, match="profile.*'recording'"):
            plan.profile()


def test_an_executable_must_implement_run_and_explain():
    class Half(Executable):
        def explain(self) -> str:
            return ""
    with pytest.raises(TypeError, match="run"):
        Half()
