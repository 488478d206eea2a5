"""Higher-order gradients: gradients are graph tensors and can be differentiated again.

Second (and third) orders are checked with ``sg.check_gradients(order=k)`` (finite differences of
the projected lower-order gradient) and against closed-form derivatives."""
import math

import numpy as np
import pytest

import staticgraph as sg


def U(*shape, lo=-1.0, hi=1.0):
    return lambda rng: rng.uniform(lo, hi, shape)


def P(*shape):
    return U(*shape, lo=0.5, hi=2.0)


def DISTINCT(*shape):
    n = int(np.prod(shape, dtype=np.int64))
    return lambda rng: (rng.permutation(n) * 0.1 + rng.uniform(0.0, 0.01, n) - 0.05 * n).reshape(shape)


def check(rng, build, gens, order=2, **kw):
    inputs = [g(rng) for g in gens]
    kw.setdefault("seed", int(rng.integers(2 ** 31)))
    return sg.check_gradients(build, inputs, order=order, **kw)


def _case(id_, build, *gens, **kw):
    return pytest.param(build, gens, kw, id=id_)


SECOND_ORDER = [
    # elementwise unary
    _case("exp", sg.exp, U(2, 3)),
    _case("log", sg.log, P(2, 3)),
    _case("sin", sg.sin, U(5, lo=-3, hi=3)),
    _case("cos", sg.cos, U(5, lo=-3, hi=3)),
    _case("tanh", sg.tanh, U(2, 3, lo=-2, hi=2)),
    _case("sigmoid", sg.sigmoid, U(6, lo=-3, hi=3)),
    _case("sqrt", sg.sqrt, P(4)),
    _case("square", sg.square, U(2, 3)),
    _case("square-composed", lambda a: sg.square(sg.sin(a)), U(4)),
    _case("relu-composed", lambda a: sg.relu(a) * a * a, lambda rng: rng.choice([-1.0, 1.0], 5) *
          rng.uniform(0.2, 1.0, 5)),
    _case("abs-composed", lambda a: sg.abs(a) ** 3, lambda rng: rng.choice([-1.0, 1.0], 5) *
          rng.uniform(0.2, 1.0, 5)),
    # pow
    _case("pow-**3", lambda a: a ** 3, U(2, 3)),
    _case("pow-**2.5", lambda a: a ** 2.5, P(4)),
    _case("pow-**-1", lambda a: a ** -1, P(4)),
    _case("pow-tensor-exp", sg.pow, P(2, 3), U(2, 3, lo=-1.5, hi=1.5)),
    _case("pow-broadcast", sg.pow, P(3, 1), U(1, 4, lo=-1.5, hi=1.5)),
    _case("pow-rpow", lambda a: 3.0 ** a, U(4)),
    # binary, with broadcasting both ways
    _case("multiply", lambda a, b: a * b, U(2, 3), U(2, 3)),
    _case("multiply-broadcast", lambda a, b: a * b * a, U(3, 1), U(1, 4)),
    _case("multiply-scalar", lambda a, b: a * b * b, U(), U(2, 3)),
    _case("divide", sg.divide, U(2, 3), P(2, 3)),
    _case("divide-broadcast", sg.divide, U(3, 4), P(4)),
    _case("divide-broadcast-rev", sg.divide, P(4), P(3, 4)),
    _case("add-sub-mixed", lambda a, b: (a + b) * (a - b) * sg.exp(b), U(3, 4), U(4)),
    _case("maximum", lambda a, b: sg.maximum(a, b) ** 2, lambda rng: rng.integers(-5, 5, (3, 4)) * 0.2,
          lambda rng: rng.integers(-5, 5, (4,)) * 0.2 + 0.1),
    _case("where", lambda a, b: sg.where(a > 0.0, a * a * b, b * b * b),
          lambda rng: rng.choice([-1.0, 1.0], (2, 3)) * rng.uniform(0.2, 1.0, (2, 3)), U(3)),
    # matmul
    _case("matmul-bilinear", sg.matmul, U(2, 3), U(3, 4)),
    _case("matmul-tanh", lambda a, b: sg.tanh(a @ b), U(2, 3), U(3, 4)),
    _case("matmul-1d.1d", lambda a, b: sg.matmul(a, b) ** 2, U(4), U(4)),
    _case("matmul-1d@2d", lambda a, b: sg.sin(a @ b), U(3), U(3, 2)),
    _case("matmul-2d@1d", lambda a, b: sg.exp(a @ b), U(2, 3), U(3)),
    _case("matmul-batched", lambda a, b: sg.tanh(a @ b), U(2, 2, 3), U(3, 2)),
    _case("matmul-3d@3d", lambda a, b: (a @ b) ** 2, U(2, 2, 3), U(2, 3, 2)),
    _case("matmul-self", lambda a: sg.sigmoid(a @ a), U(3, 3)),
    _case("mlp", lambda x, w1, w2: sg.sigmoid(sg.tanh(x @ w1) @ w2).mean(), U(4, 3), U(3, 5), U(5, 2)),
    # reductions
    _case("sum", lambda a: sg.reduce_sum(a ** 3), U(3, 4)),
    _case("sum-axis", lambda a: sg.sin(sg.reduce_sum(a, 0)), U(3, 4)),
    _case("sum-keepdims", lambda a: a * sg.reduce_sum(a * a, 1, keepdims=True), U(3, 4)),
    _case("mean", lambda a: sg.reduce_mean(sg.exp(a)), U(3, 4)),
    _case("mean-axis", lambda a: sg.reduce_mean(a, -1) ** 3, U(2, 3, 4)),
    _case("mean-tuple-keepdims", lambda a: a * sg.reduce_mean(a, (0, 2), keepdims=True), U(2, 3, 2)),
    _case("max", lambda a: sg.reduce_max(a) ** 3, DISTINCT(3, 4)),
    _case("max-axis", lambda a: sg.reduce_max(a * a * a, 1) ** 2, DISTINCT(3, 4)),
    _case("max-keepdims", lambda a: a * sg.reduce_max(a, 0, keepdims=True), DISTINCT(3, 4)),
    _case("norm", sg.norm, U(3, 4)),
    # shape ops inside a nonlinear function
    _case("reshape-transpose", lambda a: sg.transpose(sg.reshape(a, (-1, 2))) ** 3, U(3, 4)),
    _case("concat-stack", lambda a, b: sg.stack([sg.concat([a, b], 0) ** 2, sg.concat([b, a], 0)], 1) ** 2,
          U(2, 3), U(2, 3)),
    _case("getitem", lambda a: a[1:, ::2] ** 2 * a[0, 1::2], U(3, 4)),
    _case("expand_dims", lambda a: sg.expand_dims(a, 0) * sg.expand_dims(a * a, 1), U(3)),
    # partly unknown static shapes
    _case("unknown-batch-mean", lambda a, b: sg.reduce_mean(sg.tanh(a @ b) ** 2), U(4, 3), U(3, 2),
          shapes=[(None, 3), (3, 2)]),
    _case("unknown-broadcast", lambda a, b: (a * b) ** 3, U(3, 4), U(4), shapes=[(None, None), (None,)]),
    _case("unknown-max", lambda a: sg.reduce_max(a, 1) ** 2, DISTINCT(3, 4), shapes=[(None, 4)]),
    # variables
    _case("variables", lambda w, x: sg.tanh(x @ w).sum() * (w * w).mean(), U(3, 2), U(4, 3),
          as_variables=True),
]


@pytest.mark.parametrize("build, gens, kw", SECOND_ORDER)
def test_second_order(rng, build, gens, kw):
    check(rng, build, gens, order=2, **kw)


THIRD_ORDER = [
    _case("sin", sg.sin, U(4, lo=-3, hi=3)),
    _case("exp-tanh", lambda a: sg.exp(sg.tanh(a)), U(4)),
    _case("pow", lambda a: a ** 3.5, P(3)),
    _case("divide", lambda a, b: a / b, U(3), P(3)),
    _case("sigmoid-matmul", lambda a, b: sg.sigmoid(a @ b), U(2, 3), U(3, 2)),
    _case("log-mean", lambda a: sg.log(sg.reduce_mean(a * a, 0)), P(3, 2)),
]


@pytest.mark.parametrize("build, gens, kw", THIRD_ORDER)
def test_third_order(rng, build, gens, kw):
    check(rng, build, gens, order=3, **kw)


def _run(fetches, feed=None, target="reference"):
    with sg.Session(target=target) as sess:
        sess.run(sg.global_variables_initializer())
        return sess.run(fetches, feed or {})


def test_third_derivative_of_cube(rng):
    xv = rng.uniform(-2, 2, 5)
    x = sg.placeholder(sg.float64, (5,))
    y = (x ** 3).sum()
    g1, = sg.gradients(y, x)
    g2, = sg.gradients(g1.sum(), x)
    g3, = sg.gradients(g2.sum(), x)
    r1, r2, r3 = _run([g1, g2, g3], {x: xv})
    np.testing.assert_allclose(r1, 3 * xv ** 2, rtol=1e-12)
    np.testing.assert_allclose(r2, 6 * xv, rtol=1e-12)
    np.testing.assert_allclose(r3, np.full(5, 6.0), rtol=1e-12)
    # the fourth derivative is zero: None (no dependence left) or zeros
    g4, = sg.gradients(g3.sum(), x)
    assert g4 is None or np.all(_run(g4, {x: xv}) == 0)


def test_derivatives_of_sin_cycle(rng):
    xv = rng.uniform(-3, 3, 4)
    x = sg.placeholder(sg.float64, (4,))
    ds = []
    y = sg.sin(x).sum()
    for _ in range(4):
        g, = sg.gradients(y, x)
        ds.append(g)
        y = g.sum()
    r = _run(ds, {x: xv})
    np.testing.assert_allclose(r[0], np.cos(xv), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r[1], -np.sin(xv), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r[2], -np.cos(xv), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r[3], np.sin(xv), rtol=1e-12, atol=1e-15)


def test_full_hessian_matches_closed_form(rng):
    # f = (sum x^2) * (sum x): grad_i = 2 x_i S1 + S2, H_ij = 2 delta_ij S1 + 2 x_i + 2 x_j
    n = 4
    xv = rng.standard_normal(n)
    x = sg.placeholder(sg.float64, (n,))
    f = (x * x).sum() * x.sum()
    g, = sg.gradients(f, x)
    rows = [sg.gradients(g[i], x)[0] for i in range(n)]
    hv = np.stack(_run(rows, {x: xv}))
    s1 = xv.sum()
    expected = 2 * np.eye(n) * s1 + 2 * xv[:, None] + 2 * xv[None, :]
    np.testing.assert_allclose(hv, expected, rtol=1e-12)
    np.testing.assert_allclose(hv, hv.T, rtol=1e-12)


def test_mixed_partials(rng):
    # f = sum(sin(x) * y^2): d2f/dxdy = 2 y cos(x) (elementwise)
    xv, yv = rng.standard_normal(3), rng.standard_normal(3)
    x = sg.placeholder(sg.float64, (3,))
    y = sg.placeholder(sg.float64, (3,))
    f = (sg.sin(x) * y ** 2).sum()
    gx, gy = sg.gradients(f, [x, y])
    gxy, = sg.gradients(gx.sum(), y)
    gyx, = sg.gradients(gy.sum(), x)
    r_xy, r_yx = _run([gxy, gyx], {x: xv, y: yv})
    np.testing.assert_allclose(r_xy, 2 * yv * np.cos(xv), rtol=1e-12)
    np.testing.assert_allclose(r_yx, 2 * yv * np.cos(xv), rtol=1e-12)


def test_linear_function_second_derivative_is_none_or_zero(rng):
    x = sg.placeholder(sg.float64, (3,))
    g, = sg.gradients((x * 2.0 + 1.0).sum(), x)
    g2, = sg.gradients(g.sum(), x)
    assert g2 is None or np.all(_run(g2, {x: rng.standard_normal(3)}) == 0)


def test_higher_order_ops_are_gradient_ops():
    x = sg.placeholder(sg.float64, (3,))
    y = sg.exp(x).sum()
    n0 = len(sg.get_default_graph().get_operations())
    g, = sg.gradients(y, x)
    s = g.sum()  # a user op built on the gradient: not a gradient op
    n1 = len(sg.get_default_graph().get_operations())
    g2, = sg.gradients(s, x)
    ops = sg.get_default_graph().get_operations()
    assert all(op.is_gradient for op in ops[n0:n1 - 1]) and not s.op.is_gradient
    assert all(op.is_gradient for op in ops[n1:])
    # second-order ops differentiate ops of the first gradient (or the forward ops it reuses)
    assert any(op.grad_of.is_gradient for op in ops[n1:])


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_lecture_example(target):
    # x = [1, 2, 3]; phi = sum(x^2); g1 = dphi/dx = 2x; psi = exp(g1[0]) - exp(g1[2])
    # g2 = dpsi/dx = [d/dx0 exp(2 x0), 0, -d/dx2 exp(2 x2)] = [2 e^2, 0, -2 e^6]
    x = sg.Variable([1.0, 2.0, 3.0])
    assert x.dtype == sg.float32
    phi = (x ** 2).sum()
    g1 = sg.gradients(phi, x)[0]
    psi = sg.exp(g1[0]) - sg.exp(g1[2])
    g2 = sg.gradients(psi, x)[0]
    with sg.Session(target=target) as sess:
        sess.run(sg.global_variables_initializer())
        v1, v2 = sess.run([g1, g2])
    np.testing.assert_allclose(v1, [2.0, 4.0, 6.0], rtol=1e-6)
    expected = np.array([2 * math.exp(2 * 1.0), 0.0, -2 * math.exp(2 * 3.0)])
    np.testing.assert_allclose(v2, expected, rtol=1e-5)
    printed = np.array([14.7781, 0.0, -806.8576])  # the lecture's printout
    np.testing.assert_allclose(v2, printed, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(expected, printed, rtol=1e-4, atol=1e-6)
