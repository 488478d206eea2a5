"""What keeps large graphs linear from build to first step (issue 29), pinned by what the code does,
not by the clock (benchmarks/graph_scale.py times it): one storage re-layout per initializer run,
one threading-layer probe per process, no full collection inside a compile or ``sg.gradients``,
kernel calls compared by identity. The memory planner: tests/test_memory_planner.py."""
import gc
import importlib
import threading

import numba
import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import threads
from compiler.backends.cpu.lowering import Call
from compiler import gc_pause
from compiler.gc_pause import gc_paused


def test_initializer_lays_out_the_storage_once():
    rng = np.random.default_rng(0)
    shapes = [(3,), (2, 5), (), (7, 1, 2)]
    dtypes = [np.float32, np.float64, np.int32]
    values = [rng.standard_normal(shapes[i % 4]).astype(dtypes[i % 3]) for i in range(240)]
    variables = [sg.Variable(v, trainable=v.dtype.kind == "f", dtype=v.dtype) for v in values]
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        assert sess._state.values.layout_version == 1      # one re-layout for 240 new variables
        for var, value in zip(variables, values):
            got = sess.run(var)
            assert got.dtype == value.dtype and np.array_equal(got, value)
        sess.run(variables[5].assign(values[5] * 2))           # known variables: no re-layout
        assert sess._state.values.layout_version == 1
        np.testing.assert_array_equal(sess.run(variables[5]), values[5] * 2)


def test_threading_layer_is_probed_once_per_process(monkeypatch):
    tries = []

    def failing_import(name, *args):
        tries.append(name)
        raise ImportError(name)
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "2")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "default")
    monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
    monkeypatch.setattr(importlib, "import_module", failing_import)
    threads._threadsafe_pool_loads.cache_clear()
    try:
        assert [threads.kernel_threads() for _ in range(50)] == [1] * 50   # no thread-safe layer
        assert tries == ["numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"]
    finally:
        threads._threadsafe_pool_loads.cache_clear()        # the real answer, asked again later


def test_gc_paused_nests_across_threads_and_keeps_a_users_choice():
    saved = gc.get_threshold()
    gc.set_threshold(500, 7, 9)                 # the user's thresholds
    try:
        entered, release = threading.Event(), threading.Event()

        def other():
            with gc_paused():
                entered.set()
                release.wait(10)
        with gc_paused():
            assert gc.get_threshold() == (500, 7, gc_pause.NO_FULL)
            worker = threading.Thread(target=other)
            worker.start()
            assert entered.wait(10)
        assert gc.get_threshold()[2] == gc_pause.NO_FULL    # the other thread's build still runs
        release.set()
        worker.join(10)
        assert gc.get_threshold() == (500, 7, 9)
        gc.disable()
        with gc_paused():
            pass
        assert not gc.isenabled() and gc.get_threshold() == (500, 7, 9)   # disabled by the user: stays so
    finally:
        gc.enable()
        gc.set_threshold(*saved)


def _collections(build):
    """``build()``'s result, asserting that the collections inside it were young ones only, with
    full collections held off (and that there were some: the build allocates)."""
    inside = []

    def watch(phase, info):
        if phase == "start" and gc_pause._DEPTH[0]:
            inside.append((info["generation"], gc.get_threshold()[2]))
    saved = gc.get_threshold()
    gc.set_threshold(5, 2, 2)           # collections every few allocations, full ones included
    gc.callbacks.append(watch)
    try:
        out = build()
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*saved)
    assert inside, "no collection inside the build: was it paused at all?"
    assert all(gen < 2 and third == gc_pause.NO_FULL for gen, third in inside), inside
    return out


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_no_full_collection_while_compiling_or_differentiating(target):
    x0 = sg.placeholder(sg.float32, (4,))
    x = x0
    for _ in range(300):
        x = sg.sin(x) * 1.0001 + 0.1
    y = sg.reduce_sum(x)
    sess = sg.Session(target=target)
    (g,) = _collections(lambda: sg.gradients(y, [x0]))
    plan = _collections(lambda: sess.compile([y, g], [x0]))
    value = np.linspace(0, 1, 4, dtype=np.float32)
    with sg.Session(target="reference") as ref:
        want = ref.run([y, g], {x0: value})
    got = plan(value)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_kernel_calls_compare_by_identity():
    a = Call("ew_Add", ("x", "y", "z"), list, 3, None)
    b = Call("ew_Add", ("x", "y", "z"), list, 3, None)
    assert a != b and a == a and len({a, b}) == 2
    calls = [a, b]
    calls.remove(b)
    assert calls[0] is a
