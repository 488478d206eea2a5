"""Session semantics (API.md §6, §7): fetch structures, feeds, pruning, state and the
one-run rule for variables, control dependencies, compiled plans, lifetime."""
import collections

import numpy as np
import pytest

import staticgraph as sg
from helpers import session


Pair = collections.namedtuple("Pair", ["first", "second"])


def check(out, expected, dtype=None):
    expected = np.asarray(expected)
    dtype = expected.dtype if dtype is None else np.dtype(dtype)
    assert isinstance(out, np.ndarray), type(out)
    assert out.shape == expected.shape and out.dtype == dtype, (out.shape, out.dtype, expected.shape, dtype)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


# -- fetch structures -----------------------------------------------------------------------------------

def test_fetch_structures(target, rng):
    a = rng.normal(size=(2, 3)).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, 3))
    s, m = x.sum(), x * 2.0
    noop = sg.group(s)
    with session(target) as sess:
        single = sess.run(s, {x: a})
        check(single, a.sum())
        lst = sess.run([s, m], {x: a})
        assert isinstance(lst, list) and len(lst) == 2
        check(lst[0], a.sum())
        check(lst[1], a * 2)
        tup = sess.run((m, s), {x: a})
        assert isinstance(tup, tuple) and len(tup) == 2
        check(tup[0], a * 2)
        d = sess.run({"sum": s, "double": m}, {x: a})
        assert isinstance(d, dict) and set(d) == {"sum", "double"}
        check(d["sum"], a.sum())
        check(d["double"], a * 2)
        nt = sess.run(Pair(first=s, second=m), {x: a})
        assert type(nt) is Pair
        check(nt.first, a.sum())
        check(nt.second, a * 2)
        nested = sess.run({"a": [s, (m, {"inner": s})], "b": Pair(m, [s]), "op": noop, "empty": []}, {x: a})
        check(nested["a"][0], a.sum())
        assert isinstance(nested["a"][1], tuple)
        check(nested["a"][1][0], a * 2)
        check(nested["a"][1][1]["inner"], a.sum())
        assert type(nested["b"]) is Pair and isinstance(nested["b"].second, list)
        check(nested["b"].first, a * 2)
        check(nested["b"].second[0], a.sum())
        assert nested["op"] is None
        assert nested["empty"] == []
        od = sess.run(collections.OrderedDict([("z", s), ("a", m)]), {x: a})
        assert isinstance(od, collections.OrderedDict) and list(od) == ["z", "a"]


def test_fetched_arrays_are_freed_with_the_result(target):
    """Nothing of the session or plan keeps a returned array alive: dropping the result frees it at
    once, without the garbage collector (a reference cycle in the fetch packing once kept each
    step's fetches until a collection, so every step allocated its large fetches afresh)."""
    import gc
    import weakref
    x = sg.placeholder(sg.float32, (None, 3))
    m = x * 2.0
    with session(target) as sess:
        plan = sess.compile({"a": [m, (x.sum(), m)]}, [x])
        gc.disable()
        try:
            for run in (lambda a: sess.run({"a": [m, (x.sum(), m)]}, {x: a}), plan):
                out = run(np.ones((4, 3), np.float32))
                refs = [weakref.ref(out["a"][0]), weakref.ref(out["a"][1][1])]
                del out
                assert [r() for r in refs] == [None, None]
        finally:
            gc.enable()


def test_fetch_ops_give_none(target):
    v = sg.Variable(np.float32(1.0))
    init = sg.global_variables_initializer()
    with session(target) as sess:
        assert sess.run(init) is None
        assert sess.run([init, v.assign(3.0)][1:]) == [None]
        assert sess.run(sg.group(v.assign_add(1.0))) is None
        out = sess.run([v, sg.assign(v, 10.0), v * 2])
        assert out[1] is None
        check(out[0], np.float32(4.0))
        check(out[2], np.float32(8.0))


def test_fetch_same_tensor_twice_and_constants_only(target):
    c = sg.constant([1.0, 2.0])
    with session(target) as sess:
        a, b = sess.run([c, c])
        check(a, np.array([1.0, 2.0], np.float32))
        check(b, np.array([1.0, 2.0], np.float32))
        a[0] = 100.0
        assert b[0] == 1.0    # each fetched array is the caller's own


def test_fetched_arrays_do_not_alias_state(target):
    v = sg.Variable(np.zeros(3, np.float32))
    x = sg.placeholder(sg.float32, (3,))
    with session(target) as sess:
        sess.run(v.initializer)
        got = sess.run(v)
        got[:] = 5.0
        check(sess.run(v), np.zeros(3, np.float32))
        fed = np.ones(3, np.float32)
        out = sess.run(sg.identity(x), {x: fed})
        out[:] = 7.0
        check(fed, np.ones(3, np.float32))
        sess.run(v.assign(x), {x: fed})
        fed[:] = 9.0       # changing the fed array after the run does not change the variable
        check(sess.run(v), np.ones(3, np.float32))


# -- feeds ---------------------------------------------------------------------------------------------------

def test_feed_values_are_converted_same_kind(target):
    x = sg.placeholder(sg.float32, (None,))
    i = sg.placeholder(sg.int64, ())
    y = x * 2.0
    with session(target) as sess:
        check(sess.run(y, {x: np.array([1.5, 2.5], np.float64)}), np.array([3.0, 5.0], np.float32))
        check(sess.run(y, {x: [1.0, 2.0, 3.0]}), np.array([2.0, 4.0, 6.0], np.float32))
        check(sess.run(y, {x: np.array([1, 2], np.int32)}), np.array([2.0, 4.0], np.float32))
        check(sess.run(i + 1, {i: 4}), np.int64(5))
        check(sess.run(i + 1, {i: np.int32(4)}), np.int64(5))


def test_feed_interior_tensor_overrides_and_prunes(target, rng):
    a = rng.normal(size=(3,)).astype(np.float32)
    h_val = rng.normal(size=(3,)).astype(np.float32)
    x = sg.placeholder(sg.float32, (3,), name="x")
    h = sg.exp(x)
    y = h * 2.0 + 1.0
    with session(target) as sess:
        check(sess.run(y, {x: a}), np.exp(a) * 2 + 1)
        # x is upstream of the fed h: it is not needed and need not be fed
        check(sess.run(y, {h: h_val}), h_val * 2 + 1)
        check(sess.run([y, h], {h: h_val})[1], h_val)
        # fetching the fed tensor itself returns the fed value
        check(sess.run(h, {h: h_val}), h_val)


def test_feed_overrides_variable_and_constant(target):
    v = sg.Variable(np.ones(2, np.float32), name="v")
    c = sg.constant(3.0)
    y = v * c
    with session(target) as sess:
        # v was never initialized: feeding it means it is not read
        check(sess.run(y, {v: np.array([2.0, 4.0], np.float32)}), np.array([6.0, 12.0], np.float32))
        check(sess.run(y, {v: np.array([1.0, 1.0], np.float32), c: 0.5}), np.array([0.5, 0.5], np.float32))


def test_pruning(target, rng):
    x = sg.placeholder(sg.float32, (2,), name="needed")
    unused = sg.placeholder(sg.float32, (2,), name="unused")
    never = sg.Variable(np.zeros(2, np.float32), name="never_initialized")
    counter = sg.Variable(np.float32(0.0), name="counter")
    _ = counter.assign_add(1.0)   # not fetched: must not run
    _ = unused * never
    y = x + 1.0
    a = rng.normal(size=(2,)).astype(np.float32)
    with session(target) as sess:
        sess.run(counter.initializer)
        for _ in range(3):
            check(sess.run(y, {x: a}), a + 1)
        check(sess.run(counter), np.float32(0.0))


def test_unneeded_feed_is_allowed(target):
    x = sg.placeholder(sg.float32, (2,))
    unused = sg.placeholder(sg.float32, (2,))
    with session(target) as sess:
        check(sess.run(x * 3.0, {x: [1.0, 2.0], unused: [0.0, 0.0]}), np.array([3.0, 6.0], np.float32))


def test_unknown_rank_placeholder_takes_any_shape(target, rng):
    x = sg.placeholder(sg.float64)
    y = x * 2.0
    with session(target) as sess:
        for shape in [(), (3,), (2, 1, 4)]:
            a = rng.normal(size=shape)
            check(sess.run(y, {x: a}), a * 2)


# -- variables and the one-run rule ----------------------------------------------------------------------------

def test_variable_persists_and_sessions_are_independent(target):
    v = sg.Variable(np.float32(1.0))
    inc = v.assign_add(1.0)
    with session(target) as s1, session(target) as s2:
        s1.run(v.initializer)
        s2.run(v.initializer)
        for _ in range(3):
            s1.run(inc)
        check(s1.run(v), np.float32(4.0))
        check(s2.run(v), np.float32(1.0))
        s1.run(v.initializer)      # re-initializing resets
        check(s1.run(v), np.float32(1.0))


def test_old_value_reads(target):
    v = sg.Variable(np.array([1.0, 2.0], np.float32), name="v")
    step = v.assign(v + 1.0)
    with session(target) as sess:
        sess.run(v.initializer)
        old, = sess.run([v], {})
        res = sess.run([step, v, v * 10.0])
        assert res[0] is None
        check(res[1], old)                       # the read sees the value from before the run
        check(res[2], old * 10)
        check(sess.run(v), old + 1)              # the assign landed when the run finished
        res = sess.run([v, step])
        check(res[0], old + 1)
        check(sess.run(v), old + 2)


def test_swap_in_one_run(target, rng):
    a0 = rng.normal(size=(3,)).astype(np.float32)
    b0 = rng.normal(size=(3,)).astype(np.float32)
    a = sg.Variable(a0, name="a")
    b = sg.Variable(b0, name="b")
    swap = sg.group(a.assign(b), b.assign(a))
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        assert sess.run(swap) is None
        check(sess.run(a), b0)
        check(sess.run(b), a0)
        sess.run(swap)
        check(sess.run(a), a0)
        check(sess.run(b), b0)


def test_simultaneous_assigns_see_old_state(target):
    # a step is a pure function of the old state: fibonacci with x <- y, y <- x + y
    x = sg.Variable(np.int64(0), trainable=False)
    y = sg.Variable(np.int64(1), trainable=False)
    step = sg.group(sg.assign(x, y), sg.assign(y, x + y))
    fib = [0, 1]
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        for _ in range(10):
            xs, _ = sess.run([x, step])
            assert int(xs) == fib[-2]
            fib.append(fib[-1] + fib[-2])
        check(sess.run(y), np.int64(fib[-1]))


def test_assign_add_sub_and_functions(target, rng):
    v0 = rng.normal(size=(2, 3)).astype(np.float32)
    d = rng.normal(size=(3,)).astype(np.float32)
    v = sg.Variable(v0)
    x = sg.placeholder(sg.float32, (3,))
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(v.assign_add(x), {x: d})                     # broadcasting value
        check(sess.run(v), v0 + d)
        sess.run(sg.assign_sub(v, x), {x: d})
        check(sess.run(v), v0 + d - d)
        sess.run(v.assign_sub(0.5))
        check(sess.run(v), v0 + d - d - np.float32(0.5))
        sess.run(sg.assign_add(v, v))                        # reads old v
        check(sess.run(v), 2 * (v0 + d - d - np.float32(0.5)))
        sess.run(sg.assign(v, 0.0))                          # scalar broadcast
        check(sess.run(v), np.zeros((2, 3), np.float32))
        sess.run(v.assign(np.ones((2, 3))))                  # float64 array, same kind
        check(sess.run(v), np.ones((2, 3), np.float32))


def test_assign_ops_are_operations():
    v = sg.Variable(np.zeros(2, np.float32))
    for op in (v.assign(1.0), v.assign_add(1.0), v.assign_sub(1.0), sg.assign(v, 1.0),
               sg.assign_add(v, 1.0), sg.assign_sub(v, 1.0)):
        assert isinstance(op, sg.Operation)
        assert op.type == "Assign"


def test_double_assign_in_one_run_raises(target):
    v = sg.Variable(np.float32(0.0), name="twice")
    with session(target) as sess:
        sess.run(v.initializer)
        with pytest.raises(ValueError, match="twice"):
            sess.run([v.assign(1.0), v.assign(2.0)])
        with pytest.raises(ValueError, match="twice"):
            sess.run(sg.group(v.assign_add(1.0), v.assign_sub(1.0)))
        with pytest.raises(ValueError, match=rf"variable '{v.op.name}' is assigned twice .*Assign"):
            sess.compile([v.assign(1.0), v.initializer])
        check(sess.run(v), np.float32(0.0))   # nothing was applied


def test_control_dependencies_run_their_inputs(target):
    counter = sg.Variable(np.float32(0.0), name="counter")
    x = sg.placeholder(sg.float32, ())
    inc = counter.assign_add(1.0)
    with sg.control_dependencies([inc]):
        y = x * 2.0
        reads = counter + 0.0
    z = x * 3.0                                 # outside the block: no dependency
    with session(target) as sess:
        sess.run(counter.initializer)
        check(sess.run(y, {x: 1.5}), np.float32(3.0))
        check(sess.run(counter), np.float32(1.0))
        sess.run(z, {x: 1.5})
        check(sess.run(counter), np.float32(1.0))
        # a read inside the block still sees the value from before the run
        check(sess.run(reads), np.float32(1.0))
        check(sess.run(counter), np.float32(2.0))


def test_control_dependencies_on_tensors_and_nested(target):
    a = sg.Variable(np.float32(0.0), name="a")
    b = sg.Variable(np.float32(0.0), name="b")
    x = sg.placeholder(sg.float32, ())
    side = sg.identity(x)
    with sg.control_dependencies([a.assign_add(1.0)]):
        with sg.control_dependencies([b.assign_add(2.0)]):
            y = sg.constant(1.0) * 5.0
    with sg.control_dependencies([side]):
        w = sg.constant(2.0) + 0.0
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        check(sess.run(y), np.float32(5.0))
        check(sess.run(a), np.float32(1.0))
        check(sess.run(b), np.float32(2.0))
        with pytest.raises(sg.errors.InvalidArgumentError, match=x.op.name):
            sess.run(w)                     # w depends on `side`, which needs x
        check(sess.run(w, {x: 0.0}), np.float32(2.0))


def test_group_runs_all_inputs(target):
    vs = [sg.Variable(np.float32(i), name=f"v{i}") for i in range(3)]
    g1 = sg.group(*[v.assign_add(10.0) for v in vs])
    g2 = sg.group([v.assign_sub(1.0) for v in vs])
    g3 = sg.group(g1)
    empty = sg.group()
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(g1)
        assert [float(sess.run(v)) for v in vs] == [10.0, 11.0, 12.0]
        sess.run(g2)
        assert [float(sess.run(v)) for v in vs] == [9.0, 10.0, 11.0]
        sess.run(g3)
        assert [float(sess.run(v)) for v in vs] == [19.0, 20.0, 21.0]
        assert sess.run(empty) is None


def test_uninitialized_variables_only_where_read(target):
    a = sg.Variable(np.float32(1.0), name="a")
    b = sg.Variable(np.float32(2.0), name="b")
    with session(target) as sess:
        sess.run(sg.variables_initializer([a]))
        check(sess.run(a), np.float32(1.0))
        with pytest.raises(sg.errors.FailedPreconditionError, match="'b'"):
            sess.run(a + b)
        sess.run(sg.variables_initializer([b]))
        check(sess.run(a + b), np.float32(3.0))


def test_global_and_trainable_variables():
    a = sg.Variable(np.float32(1.0), name="a")
    b = sg.Variable(np.arange(3), trainable=False, name="b")
    c = sg.Variable(np.zeros(2, np.float32), name="c", trainable=True)
    d = sg.Variable(np.zeros(2, np.float32), name="d", trainable=False)
    assert sg.global_variables() == [a, b, c, d]
    assert sg.trainable_variables() == [a, c]
    assert all(isinstance(v, sg.Variable) for v in sg.global_variables())
    other = sg.Graph()
    with other.as_default():
        e = sg.Variable(np.float32(0.0), name="e")
        assert sg.global_variables() == [e]
        assert sg.trainable_variables() == [e]
    assert sg.global_variables() == [a, b, c, d]
    init = sg.variables_initializer([a, c])
    assert isinstance(init, sg.Operation)


def test_global_variables_initializer_initializes_all(target, rng):
    vals = [rng.normal(size=s).astype(np.float32) for s in [(), (3,), (2, 2)]]
    vs = [sg.Variable(v) for v in vals]
    iv = sg.Variable(np.array([4, 5]), trainable=False)
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        for v, val in zip(vs, vals):
            check(sess.run(v), val)
        check(sess.run(iv), np.array([4, 5]))


def test_variable_initialized_from_another_variable_tensor(target):
    a = sg.Variable(np.array([1.0, 2.0], np.float32), name="a")
    b = sg.Variable(a * 2.0, name="b")
    with session(target) as sess:
        sess.run(a.initializer)
        sess.run(b.initializer)
        check(sess.run(b), np.array([2.0, 4.0], np.float32))


# -- compiled plans ----------------------------------------------------------------------------------------------

def test_compile_plan_positional_feeds_several_batch_sizes(target, rng):
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    y = sg.placeholder(sg.float32, (None,), name="y")
    w = sg.constant(rng.normal(size=(3,)).astype(np.float32))
    pred = x @ w
    loss = ((pred - y) ** 2).mean()
    with session(target) as sess:
        plan = sess.compile([pred, {"loss": loss}], [x, y])
        for n in (1, 4, 17, 4):
            a = rng.normal(size=(n, 3)).astype(np.float32)
            t = rng.normal(size=(n,)).astype(np.float32)
            p, d = plan(a, t)
            e = a @ w_value(sess, w)
            np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(d["loss"], np.mean((e - t) ** 2), rtol=1e-5, atol=1e-5)
        # feeds are positional in the order given to compile
        plan2 = sess.compile(loss, (y, x))
        a = rng.normal(size=(5, 3)).astype(np.float32)
        t = rng.normal(size=(5,)).astype(np.float32)
        np.testing.assert_allclose(plan2(t, a), plan(a, t)[1]["loss"], rtol=1e-6)
        with pytest.raises(TypeError, match=r"this plan takes 2 feeds \(.*\), got 1"):
            plan(a)


def w_value(sess, w):
    return sess.run(w)


def test_plan_with_state_and_ops(target):
    v = sg.Variable(np.float32(0.0))
    x = sg.placeholder(sg.float32, ())
    with session(target) as sess:
        sess.run(v.initializer)
        plan = sess.compile([v, v.assign_add(x)], [x])
        outs = [plan(float(i)) for i in range(1, 5)]
        assert [o[1] for o in outs] == [None] * 4
        assert [float(o[0]) for o in outs] == [0.0, 1.0, 3.0, 6.0]
        check(sess.run(v), np.float32(10.0))
        noarg = sess.compile(v * 2.0)
        check(noarg(), np.float32(20.0))


def test_plan_explain_is_multiline_str():
    x = sg.placeholder(sg.float32, (None, 3), name="inp")
    y = sg.relu(x @ np.ones((3, 2), np.float32)).sum()
    with sg.Session() as sess:
        text = sess.compile(y, [x]).explain()
    assert isinstance(text, str)
    assert text.count("\n") >= 2
    assert "inp" in text


def test_run_reuses_across_batch_sizes(target, rng):
    x = sg.placeholder(sg.float32, (None, 2))
    y = (x * x).sum(axis=1)
    with session(target) as sess:
        for n in (1, 3, 8, 3):
            a = rng.normal(size=(n, 2)).astype(np.float32)
            np.testing.assert_allclose(sess.run(y, {x: a}), (a * a).sum(axis=1), rtol=1e-5)


# -- lifetime ----------------------------------------------------------------------------------------------------

def test_close_then_run_raises(target):
    c = sg.constant(1.0)
    sess = session(target)
    check(sess.run(c), np.float32(1.0))
    sess.close()
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(c)
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(c * 2.0)
    with pytest.raises(RuntimeError, match="closed"):
        sess.compile(c)


def test_context_manager_closes(target):
    c = sg.constant(1.0)
    with session(target) as sess:
        assert isinstance(sess, sg.Session)
        sess.run(c)
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(c)


def test_session_on_explicit_graph(target):
    g = sg.Graph()
    with g.as_default():
        x = sg.placeholder(sg.float32, (2,))
        y = x + 1.0
    sg.constant(5.0)   # default graph, unrelated
    with session(target, graph=g) as sess:
        assert sess.graph is g
        check(sess.run(y, {x: [1.0, 2.0]}), np.array([2.0, 3.0], np.float32))


def test_session_default_graph_is_captured_at_creation(target):
    g = sg.Graph()
    with g.as_default():
        c = sg.constant(2.0)
        sess = session(target)
    with sess:
        assert sess.graph is g
        check(sess.run(c), np.float32(2.0))


def test_feeding_one_output_of_a_multi_output_op(target):
    # split_like has two outputs: feeding one must override it even though the op still runs
    from staticgraph.ops import split_like
    x = sg.constant(np.arange(6.0, dtype=np.float32))
    a, b = split_like(x, [sg.constant(np.zeros(2, np.float32)), sg.constant(np.zeros(4, np.float32))], 0)
    fed = np.array([9.0, 8.0], np.float32)
    with session(target) as sess:
        out = sess.run([a, b * 1.0, a * 2.0], {a: fed})
    check(out[0], fed)
    check(out[1], np.arange(2.0, 6.0, dtype=np.float32))
    check(out[2], fed * 2)


def test_plan_refuses_to_run_after_its_session_closed():
    x = sg.placeholder(sg.float32, (None,))
    sess = sg.Session()
    plan = sess.compile(x * 2.0, [x])
    np.testing.assert_array_equal(plan(np.ones(3, np.float32)), np.full(3, 2.0, np.float32))
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        plan(np.ones(3, np.float32))


def test_fetch_structures_of_same_named_namedtuple_types_are_kept_apart():
    import collections
    A = collections.namedtuple("P", ["a"])
    B = collections.namedtuple("P", ["a"])
    c = sg.constant(1.0)
    with sg.Session() as sess:
        assert type(sess.run(A(c))) is A
        assert type(sess.run(B(c))) is B


def test_feeding_by_name_matches_feeding_by_tensor(target, rng):
    with sg.name_scope("inputs"):
        x = sg.placeholder(sg.float32, (None, 3), name="x")
    b = sg.placeholder(sg.float32, (), name="b")
    y = sg.reduce_sum(x, axis=1) * b
    a, bv = rng.standard_normal((int(rng.integers(1, 6)), 3)).astype(np.float32), np.float32(rng.standard_normal())
    expected = a.sum(axis=1) * bv
    with session(target) as sess:
        for feeds in ({x: a, b: bv}, {"inputs/x": a, "b:0": bv}, {"inputs/x:0": a, b: bv}):
            check(sess.run(y, feeds), expected)
        with pytest.raises(KeyError, match="no operation named 'inputs/nope'"):
            sess.run(y, {"inputs/nope": a, b: bv})


def test_feeding_by_name_does_not_scan_the_graph(monkeypatch):
    """A name key costs a dict lookup, not a walk over the graph's ops (was 1.8 ms per run on 20k ops)."""
    x = sg.placeholder(sg.float32, (), name="x")
    y = x + 1.0
    graph = sg.get_default_graph()

    class NoScan(list):
        def __iter__(self):
            raise AssertionError("feeding by name walked over the graph's ops")

    with sg.Session() as sess:
        check(sess.run(y, {x: np.float32(2.0)}), np.float32(3.0))
        monkeypatch.setattr(graph, "_ops", NoScan(graph._ops))
        check(sess.run(y, {"x": np.float32(2.0)}), np.float32(3.0))
        check(sess.run(y, {"x:0": np.float32(4.0)}), np.float32(5.0))
