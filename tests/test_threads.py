"""Threads (API.md §1, TF1 semantics): the default graph and a graph's name-scope / control-dependency
stacks belong to the calling thread; a thread that never entered a graph sees the process-wide
default graph; several threads may add ops to one graph and run sessions at once."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.session import TARGETS


def available_targets():
    out = []
    for t in TARGETS:
        try:
            sg.Session(sg.Graph(), target=t).close()
        except NotImplementedError:
            continue
        out.append(t)
    return out


@pytest.fixture(autouse=True)
def fast_switching():
    """Switch threads every few microseconds so that builders really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(n, fn):
    """Run ``fn(i)`` in ``n`` threads started together; re-raise the first failure; return results."""
    barrier = threading.Barrier(n)

    def task(i):
        barrier.wait()
        return fn(i)
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(task, i) for i in range(n)]
        return [f.result() for f in futures]


def build_train_and_check(tag, seed, target, rounds=3):
    """In a private default graph: a linear model, its gradient, and a few runs, checked by NumPy."""
    rng = np.random.default_rng(seed)
    g = sg.Graph()
    w0 = rng.standard_normal((3, 2))
    xs = rng.standard_normal((5, 3))
    with g.as_default():
        assert sg.get_default_graph() is g
        with sg.name_scope(tag):
            x = sg.placeholder(sg.float64, (None, 3), name="x")
            w = sg.Variable(w0, dtype=sg.float64, name="w")
            loss = sg.reduce_sum(sg.matmul(x, w) ** 2.0)
            (gw,) = sg.gradients(loss, [w])
            step = sg.assign_sub(w, gw * 0.01)
        assert sg.get_default_graph() is g
    names = [op.name for op in g.get_operations()]
    assert all(n.startswith(tag + "/") for n in names), names
    assert all(op.graph is g for op in g.get_operations())
    w_np = w0.copy()
    with sg.Session(g, target=target) as sess:
        sess.run(w.initializer)
        for _ in range(rounds):
            got_loss, got_grad = sess.run([loss, gw], {x: xs})
            want_grad = 2.0 * xs.T @ (xs @ w_np)
            np.testing.assert_allclose(got_loss, np.sum((xs @ w_np) ** 2), rtol=1e-12)
            # a sum of terms that may cancel: the bound scales with the terms, not with the result
            terms = 2.0 * np.abs(xs.T) @ np.abs(xs @ w_np)
            assert np.all(np.abs(got_grad - want_grad) <= 1e-12 * terms), (got_grad, want_grad)
            sess.run(step, {x: xs})
            w_np = w_np - 0.01 * want_grad
        np.testing.assert_allclose(sess.run(w), w_np, rtol=1e-12)
    return g


@pytest.mark.parametrize("target", available_targets())
def test_threads_build_differentiate_and_run_their_own_graphs(target, rng):
    global_graph = sg.get_default_graph()
    seeds = rng.integers(2 ** 31, size=6)

    def worker(i):
        if i == 0:   # this thread never enters a graph: it builds into the process-wide default
            for r in range(10):
                assert sg.get_default_graph() is global_graph
                with sg.name_scope("global"):
                    c = sg.constant(float(r), name=f"c{r}")
                assert c.graph is global_graph and c.op.name == f"global/c{r}"
            return []
        return [build_train_and_check(f"t{i}", int(seeds[i]) + k, target) for k in range(6)]

    results = run_threads(6, worker)
    graphs = [g for res in results for g in res]
    assert len(set(map(id, graphs))) == len(graphs) and global_graph not in graphs
    assert [op.name for op in global_graph.get_operations()] == [f"global/c{r}" for r in range(10)]
    assert sg.get_default_graph() is global_graph


def test_a_thread_outside_any_graph_sees_the_process_wide_default():
    global_graph = sg.get_default_graph()
    seen = []
    private = sg.Graph()
    with private.as_default():
        t = threading.Thread(target=lambda: seen.append(sg.get_default_graph()))
        t.start()
        t.join()
        assert sg.get_default_graph() is private
    assert seen == [global_graph]


def test_name_scopes_and_control_dependencies_do_not_leak_across_threads():
    g = sg.get_default_graph()
    a = sg.constant(1.0, name="a")
    inside, outside = threading.Event(), threading.Event()
    built = {}

    def thread_b():
        with sg.name_scope("threadB"), sg.control_dependencies([a]):
            inside.set()
            outside.wait(5)
            built["b"] = sg.constant(2.0, name="mine")

    t = threading.Thread(target=thread_b)
    t.start()
    assert inside.wait(5)
    mine = sg.constant(3.0, name="mine")        # built while thread B is inside its scopes
    outside.set()
    t.join()
    assert mine.op.name == "mine" and mine.op.control_inputs == ()
    assert built["b"].op.name == "threadB/mine" and built["b"].op.control_inputs == (a.op,)
    assert built["b"].graph is g


def test_as_default_pops_its_own_graph_and_refuses_out_of_order_exits():
    global_graph = sg.get_default_graph()
    g1, g2 = sg.Graph(), sg.Graph()
    ctx1, ctx2 = g1.as_default(), g2.as_default()
    ctx1.__enter__()
    ctx2.__enter__()
    with pytest.raises(RuntimeError, match="exited out of order"):
        ctx1.__exit__(None, None, None)
    assert sg.get_default_graph() is g2         # g1 was dropped, g2 is still the innermost
    ctx2.__exit__(None, None, None)
    assert sg.get_default_graph() is global_graph


def test_other_threads_default_stacks_are_untouched_by_exits_here():
    g_main, g_other = sg.Graph(), sg.Graph()
    entered, leave = threading.Event(), threading.Event()
    seen = []

    def other():
        with g_other.as_default():
            entered.set()
            leave.wait(5)
            seen.append(sg.get_default_graph())
        seen.append(sg.get_default_graph())

    t = threading.Thread(target=other)
    with g_main.as_default():
        t.start()
        assert entered.wait(5)
    leave.set()                                  # main left its graph while the other is inside
    t.join()
    assert seen == [g_other, sg.get_default_graph()]


def test_many_threads_adding_ops_to_one_graph_get_unique_names_and_ids():
    g = sg.Graph()
    per_thread = 300

    def add(i):
        with g.as_default():
            return [sg.constant(float(k), name="c").op for k in range(per_thread)]

    ops = [op for batch in run_threads(8, add) for op in batch]
    all_ops = g.get_operations()
    assert len(all_ops) == 8 * per_thread
    assert [op.id for op in all_ops] == list(range(len(all_ops)))
    names = [op.name for op in all_ops]
    assert len(set(names)) == len(names)
    assert set(names) == {"c"} | {f"c_{k}" for k in range(1, 8 * per_thread)}
    assert all(g.get_operation_by_name(op.name) is op for op in ops)


@pytest.mark.parametrize("target", available_targets())
def test_sessions_in_different_threads_run_one_graph_at_once(target, rng):
    x = sg.placeholder(sg.float64, (None,), name="x")
    acc = sg.Variable(np.zeros(4), dtype=sg.float64, trainable=False, name="acc")
    y = sg.reduce_sum(x * 2.0) + sg.reduce_sum(acc)
    bump = sg.assign_add(acc, sg.reduce_sum(x))
    g = sg.get_default_graph()
    g.finalize()
    data = [rng.standard_normal(int(rng.integers(1, 9))) for _ in range(6)]

    def worker(i):
        total = np.zeros(4)
        with sg.Session(g, target=target) as sess:
            sess.run(acc.initializer)
            for _ in range(25):
                np.testing.assert_allclose(sess.run(y, {x: data[i]}), 2 * data[i].sum() + total.sum(),
                                           rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(sess.run(y, {"x": data[i]}), 2 * data[i].sum() + total.sum(),
                                           rtol=1e-12, atol=1e-12)
                sess.run(bump, {x: data[i]})
                total += data[i].sum()
            return sess.run(acc)

    for i, final in enumerate(run_threads(6, worker)):
        np.testing.assert_allclose(final, np.full(4, 25 * data[i].sum()), rtol=1e-12)
