"""Default sessions (TF1): sess.as_default(), `with Session()`, InteractiveSession,
get_default_session, Tensor.eval and Operation.run; per thread."""
import threading

import numpy as np
import pytest

import staticgraph as sg
from helpers import session


def model(rng):
    a = rng.normal(size=(3, 5)).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, 5))
    v = sg.Variable(a)
    y = sg.reduce_sum(x * v, axis=1)
    return a, x, v, y


def assert_row_sums(got, a, b):
    """A float32 sum of products can cancel: compare with the float64 sum, to float32 rounding of
    the terms' magnitudes (not of the possibly tiny result)."""
    terms = a.astype(np.float64) * b
    np.testing.assert_allclose(got, terms.sum(axis=1), rtol=0, atol=1e-6 * np.abs(terms).sum(axis=1).max())


def test_no_default_session_says_how_to_get_one(rng):
    a, x, v, y = model(rng)
    assert sg.get_default_session() is None
    with pytest.raises(ValueError, match=r"Cannot evaluate tensor '.*' using `eval\(\)`: no default session "
                                         r"is registered\. Use `with sess.as_default\(\):`.*InteractiveSession"
                                         r".*`eval\(session=sess\)`"):
        y.eval({x: a})
    with pytest.raises(ValueError, match=r"Cannot run operation 'init' using `run\(\)`: no default session"
                                         r".*`run\(session=sess\)`"):
        sg.global_variables_initializer().run()


def test_as_default_evaluates_and_does_not_close(target, rng):
    a, x, v, y = model(rng)
    b = rng.normal(size=(3, 5)).astype(np.float32)
    sess = session(target)
    with sess.as_default() as entered:
        assert entered is sess and sg.get_default_session() is sess
        sg.global_variables_initializer().run()
        assert_row_sums(y.eval(feed_dict={x: b}), a, b)
        np.testing.assert_array_equal(v.eval(), a)
    assert sg.get_default_session() is None
    assert_row_sums(sess.run(y, {x: b}), a, b)   # still open
    sess.close()


def test_operation_run_with_feed(target, rng):
    a = rng.normal(size=(4,)).astype(np.float32)
    v = sg.Variable(np.zeros(4, np.float32))
    p = sg.placeholder(sg.float32, (4,))
    step = v.assign_add(p * 2.0)
    with session(target) as sess:
        v.initializer.run()
        assert step.run(feed_dict={p: a}) is None
        step.run({p: a}, session=sess)
        np.testing.assert_allclose(v.eval(), 4 * a, rtol=1e-6)


def test_with_session_makes_it_and_its_graph_default_then_closes():
    g = sg.Graph()
    with g.as_default():
        c = sg.constant([1.0, 2.0])
    with sg.Session(graph=g) as sess:
        assert sg.get_default_session() is sess and sg.get_default_graph() is g
        d = c * 3.0                                   # built into the session's graph
        assert d.graph is g
        np.testing.assert_array_equal(d.eval(), [3.0, 6.0])
    assert sg.get_default_session() is None and sg.get_default_graph() is not g
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(d)


def test_nesting_and_explicit_session(rng):
    a, x, v, y = model(rng)
    with sg.Session() as s1, sg.Session() as s2:
        assert sg.get_default_session() is s2
        s1.run(v.initializer)
        with pytest.raises(sg.errors.FailedPreconditionError, match="uninitialized variable 'Variable'"):
            v.eval()                                  # the default (s2) has not initialized it
        np.testing.assert_array_equal(v.eval(session=s1), a)
        with s1.as_default():
            assert sg.get_default_session() is s1
            np.testing.assert_array_equal(v.eval(), a)
        assert sg.get_default_session() is s2
    assert sg.get_default_session() is None


def test_session_of_another_graph_is_rejected():
    c = sg.constant(1.0)
    other = sg.Graph()
    with sg.Session(graph=other) as sess:
        with pytest.raises(ValueError, match=r"Cannot use the default session to evaluate tensor 'const:0': "
                                             r"the tensor's graph is different from the session's graph"):
            c.eval()
        with pytest.raises(ValueError, match=r"Cannot use the given session to run operation 'group'"):
            sg.group(c).run(session=sess)


def test_interactive_session_is_default_until_closed(rng):
    a, x, v, y = model(rng)
    sess = sg.InteractiveSession()
    try:
        assert sg.get_default_session() is sess
        sg.global_variables_initializer().run()
        np.testing.assert_allclose(y.eval({x: a}), (a * a).sum(axis=1), rtol=1e-5)
    finally:
        sess.close()
    assert sg.get_default_session() is None
    sess.close()                                      # closing twice is harmless
    with pytest.raises(ValueError, match="no default session"):
        v.eval()


def test_interactive_session_installs_its_graph():
    g = sg.Graph()
    sess = sg.InteractiveSession(graph=g, target="reference")
    try:
        assert sg.get_default_graph() is g
        t = sg.constant(2.0) + 1.0
        assert t.graph is g and t.eval() == 3.0
    finally:
        sess.close()
    assert sg.get_default_graph() is not g


def test_default_session_is_per_thread():
    c = sg.constant(5.0)
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        seen["before"] = sg.get_default_session()
        with sg.Session(graph=c.graph).as_default() as mine:
            seen["mine"] = mine
            seen["value"] = c.eval()
            inside.set()
            release.wait(30)
            seen["still"] = sg.get_default_session()

    with sg.Session() as main:
        t = threading.Thread(target=worker)
        t.start()
        assert inside.wait(30)
        assert sg.get_default_session() is main       # the worker's default does not leak here
        release.set()
        t.join(30)
    assert seen["before"] is None                      # main's default is not the worker's
    assert seen["still"] is seen["mine"] and seen["mine"] is not main
    assert seen["value"] == 5.0
