"""Graph passes (compiler/passes): each pass alone on hand-built graphs (what it must rewrite and
what it must leave alone), then whole optimisations checked by running the schedule before and
after on the reference interpreter (fetches and variable updates must agree)."""
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.reference import ReferenceExecutable
from compiler.passes import PASS_NAMES, Program, optimize, origin
from compiler.passes.cse import canonical, cse
from compiler.passes.dce import dce
from compiler.passes.fold import MAX_ELEMENTS, constant_folding
from compiler.passes.fusion import fusion
from compiler.passes.simplify import simplify
from compiler.schedule import schedule
from compiler.state import SessionState
from staticgraph.ops.core import make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- helpers ---------------------------------------------------------------------------------------

def program(fetches, targets=(), feeds=()):
    return Program.from_schedule(schedule(list(fetches), list(targets), list(feeds)))


def types(ops):
    return Counter(op.type for op in ops)


def fresh_state(graph=None):
    """A SessionState with every global variable of the graph initialised (reference run)."""
    state = SessionState()
    graph = graph or sg.get_default_graph()
    if sg.global_variables(graph):
        init = sg.variables_initializer(sg.global_variables(graph))
        run_schedule(schedule([], [init], []), state, [])
    return state


def copy_state(state):
    new = SessionState()
    new.values = {k: v.copy() for k, v in state.values.items()}
    return new


def run_schedule(sched, state, feed_values):
    return ReferenceExecutable(sched).run(state, list(feed_values))


def check_same(fetches, targets=(), feeds=(), feed_values=(), steps=1, rtol=1e-12, atol=1e-12, **kw):
    """Run the schedule and its optimisation side by side from equal states; compare everything."""
    sched = schedule(list(fetches), list(targets), list(feeds))
    opt = optimize(sched, **kw)
    base = fresh_state()
    s1, s2 = copy_state(base), copy_state(base)
    for step in range(steps):
        values = feed_values(step) if callable(feed_values) else feed_values
        a = run_schedule(sched, s1, values)
        b = run_schedule(opt.schedule, s2, values)
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_allclose(y, x, rtol=rtol, atol=atol)
        assert sorted(op.name for op in s1.values) == sorted(op.name for op in s2.values)
        for var in s1.values:
            np.testing.assert_allclose(s2.values[var], s1.values[var], rtol=rtol, atol=atol)
    return opt


def text(sched):
    """Everything about a schedule's program that must be reproducible, as text."""
    index = {op: i for i, op in enumerate(sched.ops)}
    ref = lambda t: (index.get(t.op, t.op.name), t.value_index)  # noqa: E731
    lines = [repr((op.id, op.type, op.name, [ref(t) for t in op.inputs],
                   [index.get(c, c.name) for c in op.control_inputs], canonical(op.attrs),
                   [(t.shape, t.dtype.str) for t in op.outputs])) for op in sched.ops]
    lines.append(repr([ref(t) for t in sched.fetches] + [ref(t) for t in sched.feeds]))
    return "\n".join(lines)


def assert_topological(sched):
    done = {t for t in sched.feeds}
    done.update(t for op in sched.ops for t in op.inputs if t.op not in sched.ops)
    for op in sched.ops:
        for t in op.inputs:
            assert t in done, f"'{op.name}' reads '{t.name}' before it is computed"
        done.update(op.outputs)


def mlp_adam(dtype, hidden=8, classes=3, features=4, seed=0):
    """A ReLU MLP with a softmax cross-entropy written with existing ops, trained by Adam."""
    r = np.random.default_rng(seed)
    x = sg.placeholder(dtype, [None, features], name="x")
    y = sg.placeholder(dtype, [None, classes], name="y")
    w1 = sg.Variable(r.normal(size=(features, hidden)), dtype=dtype, name="w1")
    b1 = sg.Variable(np.zeros(hidden), dtype=dtype, name="b1")
    w2 = sg.Variable(r.normal(size=(hidden, classes)), dtype=dtype, name="w2")
    b2 = sg.Variable(np.zeros(classes), dtype=dtype, name="b2")
    logits = sg.relu(x @ w1 + b1) @ w2 + b2
    z = logits - sg.stop_gradient(sg.reduce_max(logits, axis=1, keepdims=True))
    log_softmax = z - sg.log(sg.reduce_sum(sg.exp(z), axis=1, keepdims=True))
    loss = sg.reduce_mean(-sg.reduce_sum(y * log_softmax, axis=1))
    train = sg.train.AdamOptimizer(0.05).minimize(loss)
    return x, y, loss, train


def batches(rng, dtype, n=7, features=4, classes=3):
    def make_batch(step):
        return [rng.normal(size=(n + step, features)).astype(dtype),
                np.eye(classes, dtype=dtype)[rng.integers(0, classes, n + step)]]
    return make_batch


def lecture_dag(dtype=sg.float64):
    """Lecture 4.1's DAG (x1 = w1@x0; x2 = x0 + w2@x1; x3 = w1@(x1+x2); q = norm(x3)) and its gradients."""
    r = np.random.default_rng(1)
    w1 = sg.Variable(r.normal(size=(5, 5)), dtype=dtype, name="w1")
    w2 = sg.Variable(r.normal(size=(5, 5)), dtype=dtype, name="w2")
    x0 = sg.Variable(r.normal(size=(5, 1)), dtype=dtype, name="x0")
    x1 = sg.matmul(w1, x0)
    x2 = x0 + sg.matmul(w2, x1)
    q = sg.norm(sg.matmul(w1, x1 + x2))
    return [q] + sg.gradients(q, [w1, w2, x0])


# -- the copy --------------------------------------------------------------------------------------

def test_copy_is_private_and_keeps_provenance():
    x = sg.placeholder(sg.float32, [None, 3], name="x")
    v = sg.Variable(np.ones(3, np.float32), name="v")
    y = sg.identity(x * 2.0 + v, name="y")
    step = sg.assign(v, v + 1.0, name="step")
    g = sg.get_default_graph()
    before = [(op.name, op.type, tuple(op.inputs)) for op in g.get_operations()]
    sched = schedule([y], [step], [x])
    opt = optimize(sched)
    assert [(op.name, op.type, tuple(op.inputs)) for op in g.get_operations()] == before
    for op in opt.schedule.ops:
        assert op.graph is not g
        assert origin(op).graph is g or op.origin is None
    assert [op.id for op in opt.schedule.ops] == sorted(op.id for op in opt.schedule.ops)
    prog = Program.from_schedule(sched)
    assert [op.name for op in prog.ops] == [op.name for op in sched.ops]
    assert all(origin(c) is o for c, o in zip(prog.ops, sched.ops))
    assert all(c.defined_at == o.defined_at and c.grad_of is o.grad_of for c, o in zip(prog.ops, sched.ops))
    (feed,) = opt.schedule.feeds
    assert origin(feed.op) is x.op and feed.shape == (None, 3)
    (target,) = opt.schedule.targets
    assert origin(target) is step and origin(target.inputs[0].op) is v.op
    assert origin(x.op) is x.op       # user ops are their own origin


# -- constant folding ------------------------------------------------------------------------------

def test_fold_evaluates_constant_chains(rng):
    x = sg.placeholder(sg.float64, [None, 2])
    c = sg.exp(sg.constant(np.array([0.5, -1.0]), sg.float64) * 2.0) + 1.0
    y = x * c
    prog = program([y], feeds=[x])
    assert constant_folding(prog) == 3
    dce(prog)
    assert types(prog.ops) == Counter({"Const": 1, "Mul": 1})
    (mul,) = [op for op in prog.ops if op.type == "Mul"]
    folded = mul.inputs[1].op
    assert folded.type == "Const" and folded.origin is None
    np.testing.assert_allclose(folded.attrs["value"], np.exp(np.array([0.5, -1.0]) * 2.0) + 1.0, rtol=1e-15)
    xv = rng.normal(size=(3, 2))
    check_same([y], feeds=[x], feed_values=[xv], disabled=["cse", "simplify", "fusion"])


def test_fold_caps_big_results_but_not_same_size_ones():
    big = sg.zeros((70, 70), sg.float64) + 1.0                      # 4900 elements from scalars
    same = sg.constant(np.arange(5000.0), sg.float64) * 2.0         # no larger than its input
    small = sg.ones((64, 64), sg.float64) * 3.0                     # exactly at the cap
    prog = program([big, same, small])
    constant_folding(prog)
    assert MAX_ELEMENTS == 4096
    assert prog.fetches[0].op.type == "Add"
    assert prog.fetches[1].op.type == "Const"
    np.testing.assert_array_equal(prog.fetches[1].op.attrs["value"], np.arange(5000.0) * 2.0)
    assert prog.fetches[2].op.type == "Const" and not prog.fetches[2].op.attrs["value"].flags.writeable


def test_fold_never_touches_random_or_fed_constants():
    r = sg.random_normal([3], seed=4, dtype=sg.float64) * 2.0
    c = sg.constant(2.0, sg.float64)
    y = c * 3.0
    prog = program([r, y], feeds=[c])
    assert constant_folding(prog) == 0
    assert types(prog.ops)["RandomNormal"] == 1 and types(prog.ops)["Mul"] == 2
    opt = check_same([r, y], feeds=[c], feed_values=[np.float64(5.0)], steps=2)
    out = run_schedule(opt.schedule, SessionState(), [np.float64(5.0)])
    assert out[1] == 15.0


def test_fold_uses_static_shape_of_shape_only_inputs():
    w = sg.Variable(np.ones((3, 4)), dtype=sg.float64, name="w")
    b = sg.ops.broadcast_like(sg.constant(2.0, sg.float64), w)   # reads only w's (static) shape
    prog = program([b])
    assert constant_folding(prog) == 1
    dce(prog)
    assert [op.type for op in prog.ops] == ["Const"]
    np.testing.assert_array_equal(prog.fetches[0].op.attrs["value"], np.full((3, 4), 2.0))


# -- common subexpressions ---------------------------------------------------------------------------

def test_cse_merges_duplicate_scalars_and_ops(rng):
    x = sg.placeholder(sg.float64, [None, 3])
    y = x * 2.0 + x * 2.0 + sg.reduce_sum(x, axis=0) + sg.reduce_sum(x, axis=0)
    prog = program([y], feeds=[x])
    n = len(prog.ops)
    merged = cse(prog)
    assert merged == 3 and len(prog.ops) == n - 3
    assert types(prog.ops) == Counter({"Const": 1, "Mul": 1, "ReduceSum": 1, "Add": 3})
    first_add = [op for op in prog.ops if op.type == "Add"][0]
    assert first_add.inputs[0] is first_add.inputs[1]
    check_same([y], feeds=[x], feed_values=[rng.normal(size=(4, 3))], disabled=["fusion"])


def test_cse_keeps_values_that_differ_in_bits_dtype_shape_or_attrs():
    consts = [sg.constant(0.0, sg.float64), sg.constant(-0.0, sg.float64), sg.constant(1, sg.int64),
              sg.constant(True), sg.constant(np.ones(2)), sg.constant(np.ones((1, 2))),
              sg.constant(1.0, sg.float32), sg.constant(1.0, sg.float64)]
    nans = [sg.constant(np.nan, sg.float64), sg.constant(np.nan, sg.float64)]
    x = sg.placeholder(sg.float64, [2, 3])
    sums = [sg.reduce_sum(x, axis=0), sg.reduce_sum(x, axis=1), sg.reduce_sum(x, axis=1, keepdims=True)]
    prog = program(consts + nans + sums, feeds=[x])
    assert cse(prog) == 1                                          # only the two identical NaNs
    assert prog.fetches[-4] is prog.fetches[-5]
    assert len({id(t) for t in prog.fetches}) == len(prog.fetches) - 1


def test_cse_commutes_only_commutative_ops():
    a, b = sg.placeholder(sg.float64, [3]), sg.placeholder(sg.float64, [3])
    outs = [a + b, b + a, a * b, b * a, a - b, b - a, sg.maximum(a, b), sg.maximum(b, a)]
    prog = program(outs, feeds=[a, b])
    assert cse(prog) == 3
    f = prog.fetches
    assert f[0] is f[1] and f[2] is f[3] and f[6] is f[7] and f[4] is not f[5]


def test_cse_never_merges_state_random_or_assigns():
    v = sg.Variable(np.zeros(2), dtype=sg.float64)
    r1 = sg.random_normal([2], seed=1, dtype=sg.float64)
    r2 = sg.random_normal([2], seed=1, dtype=sg.float64)
    a1 = sg.assign_add(v, r1)
    prog = program([r1, r2, v + 1.0, v + 1.0], [a1])
    assert cse(prog) == 2                                   # the second 1.0 and the second add
    assert prog.fetches[2] is prog.fetches[3] and prog.fetches[0] is not prog.fetches[1]
    assert types(prog.ops)["RandomNormal"] == 2 and types(prog.ops)["Assign"] == 1


# -- algebraic simplification ------------------------------------------------------------------------

@pytest.mark.parametrize("build", [lambda x: x * 1.0, lambda x: 1.0 * x, lambda x: x + 0.0,
                                   lambda x: 0.0 + x, lambda x: x - 0.0, lambda x: x / 1.0,
                                   lambda x: x * np.ones((1, 3)), lambda x: sg.identity(x),
                                   lambda x: sg.stop_gradient(x), lambda x: -(-x),
                                   lambda x: make("Cast", [x], dtype=x.dtype)],
                         ids=["x*1", "1*x", "x+0", "0+x", "x-0", "x/1", "x*ones_row", "identity",
                              "stop_gradient", "neg_neg", "cast_same"])
def test_simplify_removes_neutral_ops(build, rng):
    x = sg.placeholder(sg.float64, [None, 3])
    y = sg.exp(build(x))
    prog = program([y], feeds=[x])
    assert simplify(prog) >= 1
    dce(prog)
    assert [op.type for op in prog.ops] == ["Exp"] and prog.ops[0].inputs[0] is prog.feeds[0]
    check_same([y], feeds=[x], feed_values=[rng.normal(size=(4, 3))], rtol=0, atol=0)


@pytest.mark.parametrize("build", [lambda x: x * np.ones((2, 1, 3)),
                                   lambda x: 0.0 - x, lambda x: 1.0 / x, lambda x: x * 2.0,
                                   lambda x: x * np.array([1.0, 2.0, 1.0]), lambda x: x + np.zeros((2, 3)),
                                   lambda x: make("Cast", [x], dtype=np.dtype("float32"))],
                         ids=["broadcasts_up", "0-x", "1/x", "x*2", "mixed",
                              "zeros_over_unknown_dim", "real_cast"])
def test_simplify_leaves_ops_that_change_values_or_shapes(build, rng):
    x = sg.placeholder(sg.float64, [None, 3])
    y = build(x)
    prog = program([y], feeds=[x])
    assert simplify(prog) == 0
    check_same([y], feeds=[x], feed_values=[rng.normal(size=(2, 3))], rtol=0, atol=0)


def test_simplify_does_not_drop_a_broadcast_of_a_fed_unknown_dim(rng):
    # x*1 with x (None,) and 1 of shape (3,): x may be fed with shape (1,), then the result is (3,)
    x = sg.placeholder(sg.float64, [None])
    y = x * np.ones(3)
    prog = program([y], feeds=[x])
    assert simplify(prog) == 0
    check_same([y], feeds=[x], feed_values=[np.array([2.0])])


def test_simplify_composes_transposes(rng):
    x = sg.placeholder(sg.float64, [2, 3, 4])
    back = sg.transpose(sg.transpose(x, (1, 2, 0)), (2, 0, 1))        # the identity
    other = sg.transpose(sg.transpose(x, (1, 2, 0)), (1, 0, 2))
    rev = sg.transpose(sg.transpose(x))                                 # None perms: reverse twice
    prog = program([back, other, rev], feeds=[x])
    simplify(prog)
    dce(prog)
    assert prog.fetches[0] is prog.feeds[0] and prog.fetches[2] is prog.feeds[0]
    (t,) = [op for op in prog.ops if op.type == "Transpose"]
    assert t.inputs[0] is prog.feeds[0] and t.attrs["perm"] == (2, 1, 0)
    xv = rng.normal(size=(2, 3, 4))
    opt = check_same([back, other, rev], feeds=[x], feed_values=[xv], rtol=0, atol=0)
    np.testing.assert_array_equal(run_schedule(opt.schedule, SessionState(), [xv])[1],
                                  np.transpose(np.transpose(xv, (1, 2, 0)), (1, 0, 2)))


def test_simplify_collapses_reshape_chains(rng):
    x = sg.placeholder(sg.float64, [None, 6])
    y = sg.reshape(sg.reshape(sg.reshape(x, (-1, 3, 2)), (-1,)), (-1, 4))
    same = sg.reshape(sg.placeholder(sg.float64, [2, 6], name="p"), (2, 6))
    prog = program([y, same], feeds=[x, same.op.inputs[0]])
    simplify(prog)
    dce(prog)
    (r,) = [op for op in prog.ops if op.type == "Reshape"]
    assert r.inputs[0] is prog.feeds[0] and r.attrs["shape"] == (-1, 4) and r.outputs[0].shape == (None, 4)
    assert prog.fetches[1] is prog.feeds[1]
    check_same([y, same], feeds=[x, same.op.inputs[0]],
               feed_values=[rng.normal(size=(2, 6)), rng.normal(size=(2, 6))], rtol=0, atol=0)


def test_simplify_broadcast_then_reduce_only_where_provably_identity(rng):
    x = sg.placeholder(sg.float64, [None, 3], name="x")
    other = sg.placeholder(sg.float64, [None, 3], name="other")
    ops = sg.ops
    same_known = ops.sum_to_like(ops.broadcast_like(sg.constant(np.ones((2, 3))) * 5.0, sg.zeros((2, 3))),
                                 sg.zeros((2, 3)))
    provable = ops.sum_to_like(ops.broadcast_like(x, sg.relu(x) * 2.0), sg.exp(x))       # one source
    unknown = ops.sum_to_like(ops.broadcast_like(x, other), x)                          # may broadcast
    row = sg.placeholder(sg.float64, [3], name="row")
    copies = ops.sum_to_like(ops.broadcast_like(row, sg.zeros((4, 3))), row)            # 4 * row
    fetches = [same_known, provable, unknown, copies]
    prog = program(fetches, feeds=[x, other, row])
    simplify(prog)
    assert prog.fetches[1] is prog.feeds[0]
    assert prog.fetches[2].op.type == "SumToLike" and prog.fetches[3].op.type == "SumToLike"
    xv, ov, rv = rng.normal(size=(1, 3)), rng.normal(size=(5, 3)), rng.normal(size=3)
    opt = check_same(fetches, feeds=[x, other, row], feed_values=[xv, ov, rv])
    out = run_schedule(opt.schedule, SessionState(), [xv, ov, rv])
    np.testing.assert_allclose(out[1], xv, rtol=0)
    np.testing.assert_allclose(out[2], 5 * xv, rtol=1e-15)     # x (1, 3) broadcast to (5, 3), summed back
    np.testing.assert_allclose(out[3], 4 * rv, rtol=1e-15)


def test_simplify_drops_a_broadcast_one_times_x_in_one_sweep(rng):
    """The gradient of reduce_sum(y * y) starts with ones broadcast like y times y: past the
    folding cap, unbroadcasting gives Mul(1, y), which the same sweep reduces to y."""
    n = int(np.sqrt(MAX_ELEMENTS)) + 2           # the broadcast is too large to fold
    x = sg.placeholder(sg.float64, [n, n], name="x")
    y = sg.exp(x)
    ones = sg.ops.broadcast_like(sg.constant(1.0, dtype=sg.float64), y)
    scaled = sg.ops.broadcast_like(sg.constant(2.0, dtype=sg.float64), y) * y       # not neutral: kept
    prog = program([ones * y, scaled], feeds=[x])
    constant_folding(prog)
    simplify(prog)
    assert prog.fetches[0].op.type == "Exp"          # ones * y is y itself
    assert prog.fetches[1].op.type == "Mul"
    assert "BroadcastLike" not in [t.op.type for t in prog.fetches[1].op.inputs]
    xv = rng.normal(size=(n, n))
    check_same([ones * y, scaled], feeds=[x], feed_values=[xv])


# -- dead code -------------------------------------------------------------------------------------------

def test_dce_keeps_assigns_random_ops_and_targets():
    v = sg.Variable(np.zeros(2), dtype=sg.float64)
    r = sg.random_normal([2], seed=3, dtype=sg.float64)
    dead = sg.exp(r)
    step = sg.assign(v, v + 1.0)
    noop = sg.group(step)
    prog = program([dead, v * 2.0], [noop])
    prog.fetches = prog.fetches[1:]
    assert dce(prog) == 1
    assert types(prog.ops) == Counter({"RandomNormal": 1, "Variable": 1, "Const": 2, "Add": 1, "Mul": 1,
                                       "Assign": 1, "NoOp": 1})


def test_dce_after_simplify_drops_unused_constants_and_reads(rng):
    x = sg.placeholder(sg.float64, [3])
    w = sg.Variable(np.ones(3), dtype=sg.float64)
    y = x * 1.0 + sg.ops.sum_to_like(x, w)                    # w: only its (known) shape
    prog = program([y], feeds=[x])
    simplify(prog)
    assert dce(prog) == 2
    assert types(prog.ops) == Counter({"Add": 1})


# -- fusion ---------------------------------------------------------------------------------------------

def fused_ops(sched):
    return [op for op in sched.ops if op.type == "FusedElementwise"]


def test_fusion_of_a_chain_inlines_scalars(rng):
    x = sg.placeholder(sg.float64, [None, 3])
    y = sg.exp(sg.sin(x) * 2.0) + sg.constant(np.ones(3), sg.float64)
    opt = check_same([y], feeds=[x], feed_values=[rng.normal(size=(5, 3))])
    (f,) = fused_ops(opt.schedule)
    prog = f.attrs["program"]
    assert [ins[0] for ins in prog] == ["Sin", "Mul", "Exp", "Add"]
    assert prog[1][1] == (("v", 0), ("c", 2.0, "float64"))
    assert prog[3][1] == (("v", 2), ("in", 1)) and f.inputs[1].shape == (3,)
    assert f.attrs["outputs"] == (3,) and f.outputs[0].shape == (None, 3)
    assert types(opt.schedule.ops) == Counter({"FusedElementwise": 1, "Const": 1})


def test_fusion_pass_alone_counts_groups_and_keeps_unfused_ops():
    x = sg.placeholder(sg.float64, [None, 4])
    a = sg.exp(x) * 3.0
    s = sg.reduce_sum(a, axis=1, keepdims=True)
    y = sg.tanh(a - s) + 1.0
    prog = program([y, s], feeds=[x])
    before = types(prog.ops)
    assert before == Counter({"Exp": 1, "Const": 2, "Mul": 1, "ReduceSum": 1, "Sub": 1, "Tanh": 1, "Add": 1})
    assert fusion(prog) == 2
    assert types(prog.ops) == Counter({"FusedElementwise": 2, "ReduceSum": 1})
    first, red, second = prog.ops
    assert [i[0] for i in first.attrs["program"]] == ["Exp", "Mul"] and red.inputs[0] is first.outputs[0]
    assert [i[0] for i in second.attrs["program"]] == ["Sub", "Tanh", "Add"]
    assert second.inputs == (first.outputs[0], red.outputs[0]) and prog.fetches[0] is second.outputs[0]


def test_fused_unknown_dims_may_differ_at_run_time_and_stay_correct():
    # both instructions are statically (?,), but exp(x) is (1,) and the sum (5,) at run time
    x, y = sg.placeholder(sg.float64, [None]), sg.placeholder(sg.float64, [None])
    e = sg.exp(x)
    z = sg.sin(e + y)
    opt = check_same([e, z], feeds=[x, y], feed_values=[np.array([0.3]), np.arange(5.0)])
    assert len(fused_ops(opt.schedule)) == 1
    e_val, z_val = run_schedule(opt.schedule, SessionState(), [np.array([0.3]), np.arange(5.0)])
    assert e_val.shape == (1,) and z_val.shape == (5,)


def test_fusion_is_convex():
    # PyTensor's example: add(sin(exp(x)), sum(exp(x))) cannot fuse all three
    x = sg.placeholder(sg.float64, [4])
    e = sg.exp(x)
    y = sg.sin(e) + sg.reduce_sum(e)
    opt = optimize(schedule([y], [], [x]))
    (f,) = fused_ops(opt.schedule)
    assert [ins[0] for ins in f.attrs["program"]] == ["Sin", "Add"]
    assert types(opt.schedule.ops) == Counter({"Exp": 1, "ReduceSum": 1, "FusedElementwise": 1})
    assert_topological(opt.schedule)


def test_fusion_across_a_matmul_is_not_convex(rng):
    x = sg.placeholder(sg.float64, [3, 3])
    w = sg.Variable(rng.normal(size=(3, 3)), dtype=sg.float64)
    a = sg.exp(x)
    y = sg.tanh(a) + a @ w
    opt = check_same([y], feeds=[x], feed_values=[rng.normal(size=(3, 3))])
    (f,) = fused_ops(opt.schedule)
    assert [ins[0] for ins in f.attrs["program"]] == ["Tanh", "Add"]
    assert types(opt.schedule.ops)["Exp"] == 1


def test_fusion_needs_equal_static_shapes_and_two_ops(rng):
    x = sg.placeholder(sg.float64, [None, 3])
    row = sg.placeholder(sg.float64, [3])
    y = x * sg.exp(row)              # exp: (3,), mul: (?, 3): different loops
    z = sg.sqrt(sg.abs(row))         # a same-shaped pair fuses
    opt = check_same([y, z], feeds=[x, row], feed_values=[rng.normal(size=(2, 3)), rng.normal(size=3)])
    (f,) = fused_ops(opt.schedule)
    assert [ins[0] for ins in f.attrs["program"]] == ["Abs", "Sqrt"]
    assert types(opt.schedule.ops) == Counter({"Exp": 1, "Mul": 1, "FusedElementwise": 1})


def test_fusion_with_several_outputs_and_bool_instructions(rng):
    x = sg.placeholder(sg.float64, [5])
    a = sg.exp(x)
    mask = a > 1.5
    b = sg.where(mask, a * 2.0, -a)
    opt = check_same([a, b, mask], feeds=[x], feed_values=[rng.normal(size=5)])
    (f,) = fused_ops(opt.schedule)
    dtypes = [ins[3] for ins in f.attrs["program"]]
    assert "bool" in dtypes and len(f.outputs) == 3
    assert [t.op for t in opt.schedule.fetches] == [f, f, f]


def test_fusion_dissolves_groups_that_would_form_a_cycle(rng):
    # a->d and c->b fuse by shape, but a -> M1 -> b and c -> M2 -> d: fusing both is a cycle
    x, y = sg.placeholder(sg.float64, [3, 3]), sg.placeholder(sg.float64, [3, 3])
    w = sg.Variable(rng.normal(size=(3, 3)), dtype=sg.float64)
    a, c = sg.exp(x), sg.sin(y)
    b = c + a @ w
    d = a * (c @ w)
    values = [rng.normal(size=(3, 3)), rng.normal(size=(3, 3))]
    opt = check_same([b, d], feeds=[x, y], feed_values=values)
    assert len(fused_ops(opt.schedule)) == 1
    assert_topological(opt.schedule)


def test_fused_op_declaration_checks_its_program():
    x = sg.placeholder(sg.float64, [None, 2])
    good = make("FusedElementwise", [x], program=(("Exp", (("in", 0),), (), "float64"),
                                                  ("Mul", (("v", 0), ("c", 3.0, "float64")), (), "float64")),
                outputs=(1, 0))
    assert [t.shape for t in good] == [(None, 2), (None, 2)]
    with pytest.raises(ValueError, match=r"bad argument \('v', 0\)"):
        make("FusedElementwise", [x], program=(("Exp", (("v", 0),), (), "float64"),), outputs=(0,))
    with pytest.raises(ValueError, match="'MatMul', which is not fusable"):
        make("FusedElementwise", [x, x], program=(("MatMul", (("in", 0), ("in", 1)), (), "float64"),),
             outputs=(0,))
    with pytest.raises(ValueError, match=r"outputs \[3\] are not instruction indices"):
        make("FusedElementwise", [x], program=(("Exp", (("in", 0),), (), "float64"),), outputs=(3,))


# -- whole optimisations ----------------------------------------------------------------------------------

UNARY = [sg.exp, sg.tanh, sg.sigmoid, sg.sin, sg.square, sg.abs, sg.relu, sg.negative, sg.identity,
         sg.stop_gradient, lambda t: sg.sqrt(sg.abs(t) + 1.0), lambda t: sg.log(sg.square(t) + 1.0)]
BINARY = [sg.add, sg.subtract, sg.multiply, sg.maximum, sg.minimum,
          lambda a, b: sg.where(a > b, a, b * 0.5), lambda a, b: a / (b * b + 1.0)]


def random_graph(r, n_ops):
    """Random DAG over a (None, 3) and a (3,) placeholder with scalars, reductions, matmuls, reshapes."""
    x = sg.placeholder(sg.float64, [None, 3], name="x")
    row = sg.placeholder(sg.float64, [3], name="row")
    w = sg.Variable(r.normal(size=(3, 3)) * 0.5, dtype=sg.float64, name="w")
    pool = [x, row, x @ w]
    for _ in range(n_ops):
        a = pool[r.integers(len(pool))]
        kind = r.integers(10)
        if kind < 4:
            out = UNARY[r.integers(len(UNARY))](a)
        elif kind < 7:
            b = pool[r.integers(len(pool))] if r.random() < 0.7 else float(r.choice([0.0, 1.0, 2.0, -0.5]))
            out = BINARY[r.integers(len(BINARY))](a, b) if r.random() < 0.5 else BINARY[r.integers(len(BINARY))](b, a)
        elif kind == 7:
            out = a @ w if a.shape[-1] == 3 else a
        elif kind == 8:
            out = sg.reduce_sum(a, axis=-1, keepdims=True) * 0.3 + a
        else:
            out = sg.reshape(sg.transpose(sg.transpose(a)), (-1, 3)) if a.ndim == 2 else a * 1.0
        pool.append(out)
    loss = sum(sg.reduce_sum(sg.square(t)) for t in pool[-3:] + [pool[2]])
    return [x, row], pool[-3:], loss, w


@pytest.mark.parametrize("seed_offset", range(4))
def test_random_graphs_with_gradients_match(rng, seed_offset):
    r = np.random.default_rng(rng.integers(2 ** 32) + seed_offset)
    feeds, outs, loss, w = random_graph(r, 14)
    grads = [g for g in sg.gradients(loss, [w] + feeds) if g is not None]
    step = sg.assign_sub(w, 0.01 * grads[0])
    values = lambda s: [r.normal(size=(2 + s, 3)), r.normal(size=3)]  # noqa: E731
    opt = check_same(outs + [loss] + grads, [step], feeds, values, steps=2, rtol=1e-10, atol=1e-12)
    assert_topological(opt.schedule)


def test_mlp_adam_step_float64_matches_and_shrinks(rng):
    x, y, loss, train = mlp_adam(sg.float64)
    user = [(op.name, op.type, op.inputs) for op in sg.get_default_graph().get_operations()]
    opt = check_same([loss], [train], [x, y], batches(rng, np.float64), steps=4, rtol=1e-11, atol=1e-13)
    names = [row[0] for row in opt.report]
    assert names == ["constant_folding", "cse", "simplify", "cse", "dce", "fusion"]
    before, after = opt.report[0][1], opt.report[-1][2]
    assert after < before * 0.6 and opt.fused_groups >= 6
    assert len([op for op in opt.schedule.ops if op.type == "Assign"]) == len(sg.global_variables())
    assert_topological(opt.schedule)
    after = [(op.name, op.type, op.inputs) for op in sg.get_default_graph().get_operations()]
    assert after[:len(user)] == user and [t for _, t, _ in after[len(user):]] == ["NoOp"]   # + check's init
    lines = opt.explain().splitlines()
    assert lines[0] == "passes:" and lines[-1].split()[:4] == ["fusion", str(opt.report[-1][1]), "->",
                                                               str(opt.report[-1][2])]


def test_mlp_adam_step_float32_matches_loosely(rng):
    x, y, loss, train = mlp_adam(sg.float32)
    check_same([loss], [train], [x, y], batches(rng, np.float32), steps=3, rtol=2e-4, atol=1e-5)


def test_lecture_dag_and_gradients_match():
    outs = lecture_dag()
    opt = check_same(outs, rtol=1e-12, atol=1e-14)
    assert opt.report[-1][2] < opt.report[0][1]


def test_reads_see_old_values_and_assigns_land_together():
    a = sg.Variable(np.array([1.0, 2.0]), dtype=sg.float64, name="a")
    b = sg.Variable(np.array([10.0, 20.0]), dtype=sg.float64, name="b")
    swap = sg.group(sg.assign(a, b * 1.0), sg.assign(b, sg.identity(a)))
    read = a * 1.0 + b
    opt = check_same([read], [swap], steps=3)
    state = fresh_state()
    out = run_schedule(opt.schedule, state, [])
    np.testing.assert_array_equal(out[0], [11.0, 22.0])
    np.testing.assert_array_equal(state.values[a.op], [10.0, 20.0])
    np.testing.assert_array_equal(state.values[b.op], [1.0, 2.0])


def test_random_ops_draw_the_same_stream_after_optimisation():
    r = sg.random_normal([4], seed=11, dtype=sg.float64)
    y = sg.identity(r) * 1.0
    check_same([y, r], steps=3, rtol=0, atol=0)


def test_none_batch_graph_runs_with_several_batch_sizes(rng):
    x = sg.placeholder(sg.float64, [None, None])
    y = sg.reduce_sum(sg.tanh(x * 2.0) * sg.exp(x) + 1.0, axis=1, keepdims=True) - x
    opt = check_same([y], feeds=[x], feed_values=lambda s: [rng.normal(size=(1 + 3 * s, 2 + s))], steps=3)
    assert len(fused_ops(opt.schedule)) == 1


def test_fetches_and_feeds_correspond_in_order(rng):
    x = sg.placeholder(sg.float64, [2], name="x")
    h = sg.exp(x, name="h")
    y = sg.identity(h * 1.0)
    opt = check_same([y, h, x], feeds=[x, h], feed_values=[rng.normal(size=2), rng.normal(size=2)])
    sched = opt.schedule
    assert [origin(t.op).name for t in sched.feeds] == ["x", "h"]
    assert sched.fetches[0] is sched.feeds[1] and sched.fetches[2] is sched.feeds[0]


def test_optimisation_is_deterministic_in_process():
    x, y, loss, train = mlp_adam(sg.float64)
    sched = schedule([loss], [train], [x, y])
    assert text(optimize(sched).schedule) == text(optimize(sched).schedule)


def test_optimisation_is_deterministic_across_hash_seeds():
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            "import staticgraph as sg; import test_passes as t; from compiler.schedule import schedule;"
            "from compiler.passes import optimize;"
            "x, y, loss, train = t.mlp_adam(sg.float64); outs = t.lecture_dag();"
            "s = optimize(schedule([loss] + outs, [train], [x, y])).schedule;"
            "print(hashlib.sha256(t.text(s).encode()).hexdigest())")
    digests = set()
    for seed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        env.pop("STATICGRAPH_DISABLE_PASSES", None)
        out = subprocess.run([sys.executable, "-c", code, ROOT, os.path.join(ROOT, "tests")], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# -- switching passes off ------------------------------------------------------------------------------------

def test_passes_switch_off_by_name_and_environment(monkeypatch, rng):
    x, y, loss, train = mlp_adam(sg.float64)
    sched = schedule([loss], [train], [x, y])
    monkeypatch.delenv("STATICGRAPH_DISABLE_PASSES", raising=False)
    no_fusion = optimize(sched, disabled=["fusion"])
    assert "fusion" not in [r[0] for r in no_fusion.report] and no_fusion.fused_groups == 0
    monkeypatch.setenv("STATICGRAPH_DISABLE_PASSES", " cse, fusion")
    opt = optimize(sched, disabled=("simplify",))
    assert [r[0] for r in opt.report] == ["constant_folding", "dce"]
    monkeypatch.setenv("STATICGRAPH_DISABLE_PASSES", "all")
    nothing = optimize(sched)
    assert nothing.report == [] and [op.name for op in nothing.schedule.ops] == [op.name for op in sched.ops]
    check_same([loss], [train], [x, y], batches(rng, np.float64), steps=2)
    monkeypatch.setenv("STATICGRAPH_DISABLE_PASSES", "cse,fusoin")
    with pytest.raises(ValueError, match=r"unknown pass 'fusoin' in \$STATICGRAPH_DISABLE_PASSES; the passes "
                                         r"are constant_folding, cse, simplify, dce, fusion"):
        optimize(sched)
    monkeypatch.delenv("STATICGRAPH_DISABLE_PASSES")
    with pytest.raises(ValueError, match="unknown pass 'folding' in disabled="):
        optimize(sched, disabled=["folding"])
    assert PASS_NAMES == ("constant_folding", "cse", "simplify", "dce", "fusion")


@pytest.mark.parametrize("name", PASS_NAMES)
def test_each_pass_alone_keeps_results(name, rng):
    x, y, loss, train = mlp_adam(sg.float64)
    others = [n for n in PASS_NAMES if n != name]
    opt = check_same([loss], [train], [x, y], batches(rng, np.float64), steps=2, rtol=1e-11, atol=1e-13,
                     disabled=others)
    assert [r[0] for r in opt.report] == [name]



def test_control_dependencies_targets_and_fed_variables_are_kept(rng):
    v = sg.Variable(np.array([1.0, 2.0]), dtype=sg.float64, name="v")
    u = sg.Variable(np.array([5.0, 6.0]), dtype=sg.float64, name="u")
    bump = sg.assign_add(v, np.ones(2))
    with sg.control_dependencies([bump]):
        y = v * 1.0                                   # pinned: dropping it would drop the assign
    target = sg.identity(u * 1.0).op                  # an op fetched as a target is kept as is
    set_u = sg.assign(u, u * 2.0)
    opt = check_same([y], [target, set_u], [u], [np.array([7.0, 8.0])], steps=2)
    assert [op.type for op in opt.schedule.ops if op.control_inputs] == ["Const", "Mul"]  # both built in the block
    assert origin(opt.schedule.targets[0]) is target and opt.schedule.targets[0].type == "Identity"
    state = fresh_state()
    run_schedule(opt.schedule, state, [np.array([7.0, 8.0])])
    np.testing.assert_array_equal(state.values[v.op], [2.0, 3.0])
    np.testing.assert_array_equal(state.values[u.op], [14.0, 16.0])   # the fed u is what is read


def test_reoptimising_keeps_user_origins(rng):
    x, y, loss, train = mlp_adam(sg.float64)
    once = optimize(schedule([loss], [train], [x, y])).schedule
    twice = optimize(once).schedule
    assert len(twice.ops) == len(once.ops)
    user = set(sg.get_default_graph().get_operations())
    assert all(origin(op) in user for op in twice.ops if op.type == "Variable")
    assert {origin(op.inputs[0].op) for op in twice.assigns} == {v.op for v in sg.global_variables()}


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_bias_gradients_through_conv_and_pool_backward_ops_drop_the_identity_reduction(rng, pool):
    """The gradient of ``conv(x) + bias`` in the conv output is ``SumToLike(g, conv)``; with a None
    batch only the shape sources of the pool/conv backward ops (shaped like their ``*_like``
    input) prove it reduces nothing. The bias's own SumToLike stays."""
    x = sg.placeholder(sg.float64, (None, 2, 7, 7))
    conv = sg.nn.Conv2d(2, 3, 3, dtype=sg.float64)
    conv2 = sg.nn.Conv2d(3, 2, 2, dtype=sg.float64)
    pooling = sg.nn.functional.max_pool2d if pool == "max" else sg.nn.functional.avg_pool2d
    y = conv2(sg.tanh(pooling(conv(x), kernel_size=2)))
    loss = sg.reduce_sum(sg.square(y))
    grads = sg.gradients(loss, [conv.bias, conv.weight, conv2.bias, x])
    opt = check_same(grads, feeds=[x], feed_values=lambda s: [rng.normal(size=(2 + s, 2, 7, 7))], steps=2)
    sums = [op for op in opt.schedule.ops if op.type == "SumToLike"]
    assert len(sums) == 2, [op.name for op in sums]             # one per bias: the real reductions
    assert all(tuple(op.outputs[0].shape) in ((3, 1, 1), (2, 1, 1)) for op in sums)
