"""Structural properties of the reverse-mode pass (compiler/autodiff.py): which ops it adds,
how they are marked, that it scales to deep graphs, and that its results are ordinary tensors."""
import sys

import numpy as np
import pytest

import staticgraph as sg


def _ops():
    return sg.get_default_graph().get_operations()


def _added_by(fn):
    """Run ``fn`` and return (its result, the ops it added to the default graph)."""
    n0 = len(_ops())
    out = fn()
    return out, _ops()[n0:]


def _ancestors(tensors, since):
    """Ops with id >= ``since`` that some tensor of ``tensors`` depends on (control inputs included)."""
    seen, stack = set(), [t.op for t in tensors if t is not None]
    while stack:
        op = stack.pop()
        if op in seen or op.id < since:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _between(xs, ys):
    """Forward ops on some path from ``xs`` to ``ys`` (computed independently of the pass)."""
    ops = _ops()
    desc = {x.op for x in xs}
    for op in ops:
        if any(t.op in desc for t in op.inputs):
            desc.add(op)
    anc = _ancestors(ys, 0)
    return desc & anc


# -- only ops between xs and ys are differentiated -----------------------------------------------

def _count_for(branch_len: int, dead_len: int) -> int:
    sg.reset_default_graph()
    x = sg.placeholder(sg.float64, (4,))
    w = sg.placeholder(sg.float64, (4,))
    big = w
    for _ in range(branch_len):          # a branch that y depends on, but not through x
        big = sg.sin(big) * 1.5 + 0.1
    dead = x
    for _ in range(dead_len):            # a branch that depends on x, but that y does not use
        dead = sg.exp(dead) * 0.5
    y = (sg.tanh(x) * big).sum() + big.sum()
    _, added = _added_by(lambda: sg.gradients(y, x))
    return len(added)


def test_unrelated_branches_add_no_gradient_ops():
    base = _count_for(0, 0)
    assert base > 0
    assert _count_for(200, 0) == base
    assert _count_for(0, 200) == base
    assert _count_for(150, 150) == base


def test_gradient_ops_only_for_ops_between_xs_and_ys():
    x = sg.placeholder(sg.float64, (3,))
    w = sg.placeholder(sg.float64, (3,))
    side = sg.exp(w) * sg.cos(w)                    # y depends on it, not through x
    unused = sg.log(x * x + 1.0)                    # depends on x, y does not use it
    h = sg.sigmoid(x) * side
    y = (h * h).sum() + side.sum()
    between = _between([x], [y])
    assert {op.type for op in between} >= {"Sigmoid", "Mul", "ReduceSum", "Add"}
    assert side.op not in between and unused.op not in between
    (g,), added = _added_by(lambda: sg.gradients(y, x))
    assert added
    for op in added:
        assert op.grad_of in between or op.grad_of is x.op, (op.name, op.grad_of.name)
    assert not any(op.grad_of in (side.op, unused.op, w.op) for op in added)


def test_none_result_adds_no_ops():
    x = sg.placeholder(sg.float64, (3,))
    other = sg.placeholder(sg.float64, (3,))
    h = sg.exp(x) * 2.0
    y = (sg.stop_gradient(h) * other).sum() + sg.cast(sg.argmax(h), sg.float64)
    res, added = _added_by(lambda: sg.gradients(y, x))
    assert res == [None] and added == []
    res, added = _added_by(lambda: sg.gradients(y, x, stop_gradients=[h]))
    assert res == [None] and added == []
    z = (h * 3.0).sum()
    res, added = _added_by(lambda: sg.gradients(z, x, stop_gradients=[h]))
    assert res == [None] and added == []


DEAD_OP_CASES = [
    ("add-broadcast", lambda a, b: a + b, [(3, 4), (4,)]),
    ("mul-div", lambda a, b: a * b / (b * b + 1.0), [(3, 1), (1, 4)]),
    ("unary", lambda a, b: sg.tanh(a) * sg.exp(b) + sg.sigmoid(a * b), [(2, 3), (2, 3)]),
    ("pow", lambda a, b: (a * a + 1.0) ** b, [(3,), (3,)]),
    ("matmul-1d-1d", lambda a, b: sg.matmul(a, b) ** 2, [(4,), (4,)]),
    ("matmul-1d-2d", lambda a, b: sg.tanh(a @ b), [(3,), (3, 2)]),
    ("matmul-batched", lambda a, b: sg.tanh(a @ b), [(2, 2, 3), (3,)]),
    ("reductions", lambda a, b: sg.reduce_mean(a * b, 0) + sg.reduce_max(a, 1, keepdims=True).sum(),
     [(3, 4), (4,)]),
    ("shape-ops", lambda a, b: sg.concat([sg.reshape(a, (-1,)), b[1:]], 0) ** 2, [(2, 3), (4,)]),
    ("stack-transpose", lambda a, b: sg.transpose(sg.stack([a, b], 1)) * a[0], [(3,), (3,)]),
    ("where-relu", lambda a, b: sg.where(a > b, sg.relu(a) * b, b * b), [(2, 3), (3,)]),
    ("unknown-shapes", lambda a, b: sg.reduce_mean(a * b, 0) * sg.reduce_sum(a), [(None, 3), (None,)]),
]


@pytest.mark.parametrize("build, shapes", [pytest.param(b, s, id=i) for i, b, s in DEAD_OP_CASES])
@pytest.mark.parametrize("wrt", ["both", "first", "second"])
def test_no_dead_gradient_ops(build, shapes, wrt):
    """Every op the pass adds is needed by one of the returned gradients, at first and second order."""
    xs = [sg.placeholder(sg.float64, s) for s in shapes]
    sub = {"both": xs, "first": xs[:1], "second": xs[1:]}[wrt]
    y = build(*xs)
    f = y.sum() if y.shape != () else y
    for order in (1, 2):
        n0 = len(_ops())
        grads = sg.gradients(f, sub)
        added = _ops()[n0:]
        needed = _ancestors(grads, n0)
        dead = [f"{op.name} ({op.type}, grad of {op.grad_of.type})" for op in added if op not in needed]
        assert not dead, f"order {order}: gradient ops no returned gradient uses: {dead}"
        live = [g for g in grads if g is not None]
        if not live:
            break
        f = live[0].sum()
        for g in live[1:]:
            f = f + g.sum()


# -- marking -------------------------------------------------------------------------------------

def test_added_ops_are_marked_as_gradient_ops():
    x = sg.placeholder(sg.float64, (2, 3))
    w = sg.Variable(np.ones((3, 4)), dtype=sg.float64)
    y = sg.reduce_mean(sg.relu(x @ w) ** 2) + sg.norm(w)
    forward = _ops()
    assert not any(op.is_gradient for op in forward)
    assert all(op.grad_of is None for op in forward)
    grads, added = _added_by(lambda: sg.gradients(y, [x, w]))
    assert added and all(g is not None for g in grads)
    for op in added:
        assert op.is_gradient is True
        assert op.grad_of is not None and op.grad_of in forward, op.name
        assert op.name.startswith("gradients/"), op.name
    assert all(g.op.is_gradient for g in grads)
    # the forward graph is left as it was
    assert _ops()[:len(forward)] == forward
    assert all(not op.is_gradient for op in forward)


def test_second_pass_ops_point_at_first_pass_ops():
    x = sg.placeholder(sg.float64, (3,))
    y = (sg.sin(x) * x).sum()
    (g,), first = _added_by(lambda: sg.gradients(y, x))
    s = g.sum()
    (g2,), second = _added_by(lambda: sg.gradients(s, x))
    assert g2 is not None and second
    assert all(op.is_gradient for op in second)
    assert any(op.grad_of in first for op in second)


def test_to_networkx_marks_gradient_nodes():
    x = sg.placeholder(sg.float64, (3,))
    y = sg.exp(x).sum()
    n0 = len(_ops())
    sg.gradients(y, x)
    dg = sg.get_default_graph().to_networkx()         # networkx is a dependency: never skipped
    for op in _ops():
        attrs = dg.nodes[op.name]
        assert bool(attrs.get("is_gradient", False)) == (op.id >= n0), op.name


# -- depth ---------------------------------------------------------------------------------------

def test_deep_chain_does_not_recurse(rng):
    depth = 3000
    limit = sys.getrecursionlimit()
    xv = rng.uniform(-1, 1, 3)
    x = sg.placeholder(sg.float64, (3,))
    h = x
    for _ in range(depth):
        h = sg.tanh(h)
    y = h.sum()
    sys.setrecursionlimit(min(limit, 1000))  # fewer frames than the chain has ops
    try:
        g, = sg.gradients(y, x)
        with sg.Session(target="reference") as sess:
            gv = sess.run(g, {x: xv})
    finally:
        sys.setrecursionlimit(limit)
    # d/dx tanh^(n)(x) = prod_k (1 - tanh^(k)(x)^2)
    expected, hv = np.ones(3), xv.copy()
    for _ in range(depth):
        hv = np.tanh(hv)
        expected *= 1 - hv ** 2
    np.testing.assert_allclose(gv, expected, rtol=1e-9)


def test_wide_fan_in_and_fan_out(rng):
    xv = rng.uniform(-1, 1, 2)
    x = sg.placeholder(sg.float64, (2,))
    terms = [sg.sin(x * float(k)) for k in range(1, 401)]  # x used 400 times
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    g, = sg.gradients(total.sum(), x)
    with sg.Session(target="reference") as sess:
        gv = sess.run(g, {x: xv})
    k = np.arange(1, 401)[:, None]
    np.testing.assert_allclose(gv, (k * np.cos(k * xv)).sum(0), rtol=1e-10)


# -- results are ordinary tensors ----------------------------------------------------------------

def test_gradients_are_fetchable_and_usable(rng):
    xv = rng.uniform(-1, 1, (2, 3))
    x = sg.placeholder(sg.float64, (2, 3))
    w = sg.Variable(rng.uniform(-1, 1, (3,)), dtype=sg.float64, name="w")
    y = ((x * w) ** 2).sum()
    gx, gw = sg.gradients(y, [x, w])
    assert isinstance(gx, sg.Tensor) and isinstance(gw, sg.Tensor)
    assert gx.shape == (2, 3) and gw.shape == (3,)
    assert gx.dtype == sg.float64 and gw.dtype == sg.float64
    assert gx.graph is x.graph and ":" in gx.name
    z = gx.sum(axis=1) * 2.0 + 1.0                   # further ops on a gradient
    step = w.assign_sub(0.1 * gw)                    # a manual gradient-descent step
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        wv = sess.run(w)
        out = sess.run({"gx": gx, "pair": (gw, z)}, {x: xv})
        np.testing.assert_allclose(out["gx"], 2 * xv * wv ** 2, rtol=1e-12)
        np.testing.assert_allclose(out["pair"][0], (2 * xv ** 2 * wv).sum(0), rtol=1e-12)
        np.testing.assert_allclose(out["pair"][1], (2 * xv * wv ** 2).sum(1) * 2 + 1, rtol=1e-12)
        assert sess.run(step, {x: xv}) is None
        np.testing.assert_allclose(sess.run(w), wv - 0.1 * (2 * xv ** 2 * wv).sum(0), rtol=1e-12)
        # a gradient tensor can be fed, like any tensor
        np.testing.assert_allclose(sess.run(z, {x: xv, gx: np.ones((2, 3))}), np.full(2, 7.0))


def test_gradients_through_default_cpu_session(rng):
    xv = rng.uniform(0.5, 2, (3,))
    x = sg.placeholder(sg.float32, (3,))
    g, = sg.gradients((sg.log(x) * x).sum(), x)
    with sg.Session() as sess:
        gv = sess.run(g, {x: xv.astype(np.float32)})
    np.testing.assert_allclose(gv, np.log(xv) + 1, rtol=1e-5)


def test_repeated_calls_are_independent(rng):
    xv = rng.uniform(-1, 1, (4,))
    x = sg.placeholder(sg.float64, (4,))
    y = (sg.exp(x) * x).sum()
    (g1,), added1 = _added_by(lambda: sg.gradients(y, x))
    (g2,), added2 = _added_by(lambda: sg.gradients(y, x))
    assert g1 is not g2 and len(added1) == len(added2)
    with sg.Session(target="reference") as sess:
        r1, r2 = sess.run([g1, g2], {x: xv})
    np.testing.assert_allclose(r1, (1 + xv) * np.exp(xv), rtol=1e-12)
    np.testing.assert_array_equal(r1, r2)
