"""First-order gradients of every differentiable op, checked against finite differences
(``sg.check_gradients``), and the semantics of ``sg.gradients`` (API.md §5, §10)."""
import numpy as np
import pytest

import staticgraph as sg
from helpers import run


# -- input generators (functions of the test's rng) -------------------------------------------

def U(*shape, lo=-1.0, hi=1.0):
    """Uniform in [lo, hi)."""
    return lambda rng: rng.uniform(lo, hi, shape)


def P(*shape):
    """Positive, away from 0 (log, sqrt, pow bases, divisors)."""
    return U(*shape, lo=0.5, hi=2.0)


def AWAY(*shape):
    """Either sign, |x| >= 0.2 (relu, abs: away from the kink)."""
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 1.5, shape)


def DISTINCT(*shape):
    """Distinct values at least ~0.09 apart (max without ties)."""
    n = int(np.prod(shape, dtype=np.int64))
    return lambda rng: (rng.permutation(n) * 0.1 + rng.uniform(0.0, 0.01, n) - 0.05 * n).reshape(shape)


def GRID(*shape, offset=0.0):
    """Values on a 0.2 grid shifted by ``offset``: GRID(...) and GRID(..., offset=0.1) never tie."""
    return lambda rng: rng.integers(-5, 5, shape) * 0.2 + offset


def check(rng, build, gens, **kw):
    inputs = [g(rng) for g in gens]
    kw.setdefault("seed", int(rng.integers(2 ** 31)))
    return sg.check_gradients(build, inputs, **kw)


COND = np.array([[True, False, True, True, False]])  # for where


def _case(id_, build, *gens, **kw):
    return pytest.param(build, gens, kw, id=id_)


ELEMENTWISE = [
    # add / subtract / multiply / divide with broadcasting both ways, scalars and size-1 dims
    _case("add-same", lambda a, b: a + b, U(2, 3), U(2, 3)),
    _case("add-(3,4)+(4,)", sg.add, U(3, 4), U(4)),
    _case("add-(4,)+(3,4)", sg.add, U(4), U(3, 4)),
    _case("add-(3,1)+(1,5)", sg.add, U(3, 1), U(1, 5)),
    _case("add-scalar+(2,3)", sg.add, U(), U(2, 3)),
    _case("add-(2,3)+scalar", sg.add, U(2, 3), U()),
    _case("add-(1,)+(2,1,3)", sg.add, U(1), U(2, 1, 3)),
    _case("add-python-scalar", lambda a: 2.5 + a, U(3)),
    _case("sub-(3,4)-(4,)", sg.subtract, U(3, 4), U(4)),
    _case("sub-(4,)-(3,4)", sg.subtract, U(4), U(3, 4)),
    _case("sub-(5,1)-(1,3)", lambda a, b: a - b, U(5, 1), U(1, 3)),
    _case("sub-scalar-tensor", lambda a: 1.0 - a, U(2, 3)),
    _case("mul-(3,1)*(1,5)", sg.multiply, U(3, 1), U(1, 5)),
    _case("mul-(3,4)*(4,)", lambda a, b: a * b, U(3, 4), U(4)),
    _case("mul-scalar*(2,3)", sg.multiply, U(), U(2, 3)),
    _case("mul-(2,1,3)*(4,1)", sg.multiply, U(2, 1, 3), U(4, 1)),
    _case("mul-self", lambda a: a * a, U(7)),
    _case("div-same", sg.divide, U(2, 3), P(2, 3)),
    _case("div-(3,4)/(4,)", lambda a, b: a / b, U(3, 4), P(4)),
    _case("div-(4,)/(3,4)", sg.divide, U(4), P(3, 4)),
    _case("div-(3,1)/(1,5)", sg.divide, U(3, 1), P(1, 5)),
    _case("div-scalar/(2,3)", sg.divide, U(), P(2, 3)),
    _case("div-python/tensor", lambda b: 3.0 / b, P(5)),
    _case("div-(2,3)/scalar", sg.divide, U(2, 3), P()),
    _case("negative", sg.negative, U(2, 3)),
    _case("neg-operator", lambda a: -a, U(5)),
    # pow: tensor and scalar exponents, positive base
    _case("pow-tensor-exp", sg.pow, P(2, 3), U(2, 3, lo=-1.5, hi=1.5)),
    _case("pow-(3,4)**(4,)", sg.pow, P(3, 4), U(4, lo=-1.5, hi=1.5)),
    _case("pow-(4,)**(3,4)", sg.pow, P(4), U(3, 4, lo=-1.5, hi=1.5)),
    _case("pow-scalar-base", sg.pow, P(), U(2, 3)),
    _case("pow-scalar-tensor-exp", sg.pow, P(2, 3), U()),
    _case("pow-**3", lambda a: a ** 3, U(2, 3)),
    _case("pow-**2.0", lambda a: a ** 2.0, U(4)),
    _case("pow-**0.5", lambda a: a ** 0.5, P(3, 2)),
    _case("pow-**-2", lambda a: a ** -2, P(5)),
    _case("pow-method", lambda a: a.pow(1.7), P(2, 2)),
    _case("pow-rpow", lambda a: 2.0 ** a, U(5)),
    # unary
    _case("exp", sg.exp, U(2, 3)),
    _case("log", sg.log, P(3, 2)),
    _case("sin", sg.sin, U(5, lo=-3, hi=3)),
    _case("cos", sg.cos, U(2, 3, lo=-3, hi=3)),
    _case("tanh", sg.tanh, U(3, 1, 2, lo=-2, hi=2)),
    _case("sigmoid", sg.sigmoid, U(7, lo=-4, hi=4)),
    _case("relu", sg.relu, AWAY(3, 5)),
    _case("sqrt", sg.sqrt, P(4, 3)),
    _case("square", sg.square, U(2, 3)),
    _case("abs", sg.abs, AWAY(3, 3)),
    _case("abs-operator", lambda a: abs(a), AWAY(4)),
    _case("methods", lambda a: a.exp() + a.sin() * a.cos() + a.tanh() + a.sigmoid() + a.sqrt() + a.log()
          + a.abs() + a.relu(), P(2, 3)),
    _case("scalar-input", lambda a: sg.exp(a) * sg.sin(a), U()),
    # maximum / minimum without ties (grids offset by 0.1)
    _case("maximum-same", sg.maximum, GRID(3, 4), GRID(3, 4, offset=0.1)),
    _case("maximum-(3,4),(4,)", sg.maximum, GRID(3, 4), GRID(4, offset=0.1)),
    _case("maximum-(3,1),(1,5)", sg.maximum, GRID(3, 1, offset=0.1), GRID(1, 5)),
    _case("maximum-scalar", lambda a: sg.maximum(a, 0.05), GRID(2, 5)),
    _case("minimum-same", sg.minimum, GRID(3, 4), GRID(3, 4, offset=0.1)),
    _case("minimum-(4,),(3,4)", sg.minimum, GRID(4), GRID(3, 4, offset=0.1)),
    _case("minimum-scalar-tensor", sg.minimum, GRID(), GRID(2, 3, offset=0.1)),
    # where
    _case("where-same", lambda a, b: sg.where(sg.constant(np.broadcast_to(COND, (3, 5))), a, b),
          U(3, 5), U(3, 5)),
    _case("where-broadcast", lambda a, b: sg.where(sg.constant(COND), a, b), U(3, 1), U(5)),
    _case("where-scalar-branch", lambda a: sg.where(sg.constant(COND), a, 0.0), U(2, 5)),
    _case("where-computed-cond", lambda a, b: sg.where(a > b, a * b, a - b), GRID(4, 3), GRID(3, offset=0.1)),
]


@pytest.mark.parametrize("build, gens, kw", ELEMENTWISE)
def test_elementwise(rng, build, gens, kw):
    check(rng, build, gens, **kw)


MATMUL = [
    _case("1d.1d", sg.matmul, U(4), U(4)),
    _case("dot", lambda a, b: a.dot(b), U(5), U(5)),
    _case("1d@2d", sg.matmul, U(3), U(3, 4)),
    _case("2d@1d", sg.matmul, U(4, 3), U(3)),
    _case("2d@2d", lambda a, b: a @ b, U(2, 3), U(3, 4)),
    _case("2d@2d-odd", sg.matmul, U(5, 1), U(1, 3)),
    _case("3d@2d-batch-broadcast", sg.matmul, U(2, 3, 4), U(4, 2)),
    _case("2d@3d-batch-broadcast", sg.matmul, U(3, 4), U(2, 4, 2)),
    _case("3d@3d", sg.matmul, U(2, 3, 4), U(2, 4, 3)),
    _case("3d@3d-size1-batch", sg.matmul, U(1, 3, 4), U(3, 4, 2)),
    _case("4d@3d", sg.matmul, U(2, 1, 2, 3), U(3, 3, 2)),
    _case("3d@1d", sg.matmul, U(2, 3, 4), U(4)),
    _case("1d@3d", sg.matmul, U(3), U(2, 3, 4)),
    _case("self", lambda a: a @ a, U(3, 3)),
    _case("t()", lambda a, b: a.t() @ b, U(3, 2), U(3, 4)),
]


@pytest.mark.parametrize("build, gens, kw", MATMUL)
def test_matmul(rng, build, gens, kw):
    check(rng, build, gens, **kw)


REDUCTIONS = [
    _case("sum-all", sg.reduce_sum, U(3, 4)),
    _case("sum-axis0", lambda a: sg.reduce_sum(a, 0), U(3, 4)),
    _case("sum-axis-1", lambda a: sg.reduce_sum(a, -1), U(2, 3, 4)),
    _case("sum-axis-tuple", lambda a: sg.reduce_sum(a, (0, 2)), U(2, 3, 4)),
    _case("sum-axis-neg-tuple", lambda a: sg.reduce_sum(a, (-1, -3)), U(2, 3, 4)),
    _case("sum-keepdims", lambda a: sg.reduce_sum(a, 1, keepdims=True), U(2, 3, 4)),
    _case("sum-all-keepdims", lambda a: a.sum(keepdims=True), U(2, 3)),
    _case("sum-size1", lambda a: a.sum(axis=1), U(3, 1, 2)),
    _case("sum-scalar", lambda a: a.sum(), U()),
    _case("mean-all", sg.reduce_mean, U(3, 4)),
    _case("mean-axis1", lambda a: a.mean(axis=1), U(3, 5)),
    _case("mean-axis-neg", lambda a: sg.reduce_mean(a, -2), U(2, 3, 4)),
    _case("mean-tuple-keepdims", lambda a: sg.reduce_mean(a, (0, 2), keepdims=True), U(2, 3, 4)),
    _case("max-all", sg.reduce_max, DISTINCT(3, 4)),
    _case("max-axis0", lambda a: sg.reduce_max(a, 0), DISTINCT(3, 4)),
    _case("max-axis-1", lambda a: a.max(axis=-1), DISTINCT(2, 3, 4)),
    _case("max-tuple", lambda a: sg.reduce_max(a, (0, 2)), DISTINCT(2, 3, 4)),
    _case("max-keepdims", lambda a: sg.reduce_max(a, 1, keepdims=True), DISTINCT(3, 5)),
    _case("max-all-keepdims", lambda a: a.max(keepdims=True), DISTINCT(2, 3)),
    _case("norm", sg.norm, U(3, 4)),
    _case("norm-method", lambda a: a.norm(), U(5)),
    _case("sum-of-product", lambda a, b: (a * b).sum(axis=0), U(3, 4), U(4)),
]


@pytest.mark.parametrize("build, gens, kw", REDUCTIONS)
def test_reductions(rng, build, gens, kw):
    check(rng, build, gens, **kw)


SHAPE_OPS = [
    _case("reshape", lambda a: sg.reshape(a, (4, 3)), U(2, 6)),
    _case("reshape-minus1", lambda a: sg.reshape(a, (-1, 2)), U(3, 4)),
    _case("reshape-flat", lambda a: a.reshape(-1), U(2, 3, 2)),
    _case("reshape-method", lambda a: a.reshape(3, 1, -1), U(6)),
    _case("view", lambda a: a.view(2, 3) * a.view(2, 3), U(3, 2)),
    _case("reshape-to-scalar", lambda a: sg.reshape(a, ()), U(1, 1)),
    _case("transpose-default", sg.transpose, U(2, 3, 4)),
    _case("transpose-perm", lambda a: sg.transpose(a, (1, 2, 0)), U(2, 3, 4)),
    _case("transpose-method", lambda a: a.transpose(0, 2, 1), U(2, 3, 4)),
    _case("transpose-2d", lambda a: sg.transpose(a) * a.t(), U(3, 3)),
    _case("concat-axis0", lambda a, b: sg.concat([a, b], 0), U(2, 3), U(3, 3)),
    _case("concat-axis1", lambda a, b, c: sg.concat([a, b, c], 1), U(2, 1), U(2, 3), U(2, 2)),
    _case("concat-axis-neg", lambda a, b: sg.concat([a, b], -1), U(2, 2, 3), U(2, 2, 1)),
    _case("concat-self", lambda a: sg.concat([a, a * 2.0], 0), U(3)),
    _case("stack-axis0", lambda a, b: sg.stack([a, b]), U(2, 3), U(2, 3)),
    _case("stack-axis1", lambda a, b, c: sg.stack([a, b, c], axis=1), U(4), U(4), U(4)),
    _case("stack-axis-neg", lambda a, b: sg.stack([a, b], axis=-1), U(2, 3), U(2, 3)),
    _case("expand_dims", lambda a: sg.expand_dims(a, 1), U(3, 4)),
    _case("expand_dims-outer", lambda a: sg.expand_dims(a, 0) * sg.expand_dims(a, 1), U(3)),
    _case("identity", sg.identity, U(2, 3)),
    # indexing
    _case("index-int", lambda a: a[1], U(3, 4)),
    _case("index-negative-int", lambda a: a[-1], U(3, 4)),
    _case("index-1d-to-scalar", lambda a: a[2], U(5)),
    _case("index-slice", lambda a: a[1:3], U(5, 2)),
    _case("index-step", lambda a: a[::2], U(7)),
    _case("index-negative-step", lambda a: a[::-1], U(5, 2)),
    _case("index-neg-slice-step", lambda a: a[-1:0:-2], U(6)),
    _case("index-mixed", lambda a: a[1:-1:2, 0], U(6, 3)),
    _case("index-col", lambda a: a[:, 0], U(3, 4)),
    _case("index-newaxis", lambda a: a[..., None], U(3, 2)),
    _case("index-none-ellipsis-int", lambda a: a[None, ..., 1], U(2, 3, 4)),
    _case("index-int-ellipsis-step", lambda a: a[0, ..., ::2], U(2, 3, 5)),
    _case("index-tail-none-slice", lambda a: a[-2:, None, 1:], U(4, 3)),
    _case("index-overlapping", lambda a: a[1:] * a[:-1] + a[0], U(6)),
    # casts
    _case("cast-f32-roundtrip", lambda a: sg.cast(sg.sin(sg.cast(a, sg.float32)) * 2.0, sg.float64),
          U(3, 4), eps=1e-3, rtol=1e-3, atol=1e-3),
    _case("cast-f64-noop", lambda a: sg.cast(a, sg.float64) * a, U(3)),
]


@pytest.mark.parametrize("build, gens, kw", SHAPE_OPS)
def test_shape_ops(rng, build, gens, kw):
    check(rng, build, gens, **kw)


def test_cast_gradient_dtypes(rng):
    x32 = sg.placeholder(sg.float32, (3,))
    x64 = sg.placeholder(sg.float64, (3,))
    y64 = (sg.cast(x32, sg.float64) * 3.0).sum()
    y32 = (sg.cast(x64, sg.float32) ** 2).sum()
    g32, = sg.gradients(y64, x32)
    g64, = sg.gradients(y32, x64)
    assert g32.dtype == sg.float32 and g64.dtype == sg.float64
    a32 = rng.uniform(-1, 1, 3).astype(np.float32)
    a64 = rng.uniform(-1, 1, 3)
    with sg.Session(target="reference") as sess:
        v32, v64 = sess.run([g32, g64], {x32: a32, x64: a64})
    assert v32.dtype == np.float32 and v64.dtype == np.float64
    np.testing.assert_allclose(v32, np.full(3, 3.0))
    np.testing.assert_allclose(v64, 2 * a64.astype(np.float32), rtol=1e-6)


# -- the shape-following ops the gradient pass itself builds (differentiated at higher orders) ------

def _spec(index):
    from staticgraph.ops.array import _index_spec
    return _index_spec(index)


INTERNAL = [
    _case("broadcast_like", lambda a, r: sg.ops.broadcast_like(a, r) * r, U(3, 1), U(3, 4)),
    _case("sum_to_like", lambda a, r: sg.ops.sum_to_like(a, r) * r, U(2, 3, 4), U(3, 1)),
    _case("reshape_like", lambda a, r: sg.ops.reshape_like(a, r) * r, U(12), U(3, 4)),
    _case("scatter_like", lambda a, r: sg.ops.scatter_like(a, r, _spec((slice(1, None), 0))) * r, U(2), U(3, 2)),
    _case("split_like", lambda a, r1, r2: sg.ops.split_like(a, [r1, r2], 1)[1] * r2, U(2, 5), U(2, 2), U(2, 3)),
    _case("unknown-shapes", lambda a, r: sg.ops.sum_to_like(sg.ops.broadcast_like(a, r) * r, a), U(3, 1), U(3, 4),
          shapes=[(None, 1), (None, None)]),
]


@pytest.mark.parametrize("build, gens, kw", INTERNAL)
def test_internal_shape_ops(rng, build, gens, kw):
    records = check(rng, build, gens, **kw)
    check(rng, build, gens, order=2, **kw)
    # the value input is connected; ref inputs carry values only through the explicit "* r"
    assert records[0].index == 0 and records[0].connected


def test_shape_only_inputs_carry_no_gradient():
    a = sg.placeholder(sg.float64, (3, 1))
    r = sg.placeholder(sg.float64, (3, 4))
    c = sg.placeholder(sg.float64, (3,))
    for y in (sg.ops.broadcast_like(a, r), sg.ops.sum_to_like(r, a), sg.ops.reshape_like(r, sg.reshape(r, (12,))),
              sg.ops.scatter_like(c, r, _spec((slice(None), 0)))):
        first, ref = y.op.inputs
        assert sg.gradients(y.sum(), ref) == [None], y.op.type
        assert sg.gradients(y.sum(), first)[0] is not None, y.op.type
    pieces = sg.ops.split_like(r, [a, sg.ones((3, 3), sg.float64)], 1)
    assert sg.gradients(pieces[0].sum(), a) == [None]
    assert sg.gradients(pieces[0].sum(), r)[0] is not None


# -- partly unknown static shapes ----------------------------------------------------------------

UNKNOWN = [
    _case("add-(N,4)+(4,)", sg.add, U(3, 4), U(4), shapes=[(None, 4), (4,)]),
    _case("add-(4,)+(N,4)", sg.add, U(4), U(3, 4), shapes=[(4,), (None, 4)]),
    _case("mul-(N,1)*(1,N)", sg.multiply, U(3, 1), U(1, 5), shapes=[(None, 1), (1, None)]),
    _case("div-(N,N)/(N,)", sg.divide, U(2, 3), P(3), shapes=[(None, None), (None,)]),
    _case("sub-unknown-rank", sg.subtract, U(2, 3), U(3), shapes=[None, (3,)]),
    _case("pow-scalar-unknown", lambda a: a ** 3, U(4, 2), shapes=[(None, 2)]),
    _case("pow-tensor-unknown", sg.pow, P(2, 3), U(3), shapes=[(None, 3), (None,)]),
    _case("maximum-(N,3),(3,)", sg.maximum, GRID(4, 3), GRID(3, offset=0.1), shapes=[(None, 3), (3,)]),
    _case("where-unknown", lambda a, b: sg.where(a > b, a, b * 2.0), GRID(2, 3), GRID(3, offset=0.1),
          shapes=[(None, 3), None]),
    _case("exp-sum-unknown-rank", lambda a: sg.exp(a).sum(), U(2, 3), shapes=[None]),
    _case("sum-axis0", lambda a: sg.reduce_sum(a, 0), U(3, 4), shapes=[(None, 4)]),
    _case("sum-keepdims", lambda a: sg.reduce_sum(a, 1, keepdims=True), U(3, 4), shapes=[(None, None)]),
    _case("mean-all", lambda a: sg.reduce_mean(a * a), U(3, 4), shapes=[(None, 4)]),
    _case("mean-axis0", lambda a: sg.reduce_mean(a, 0), U(5, 2), shapes=[(None, 2)]),
    _case("mean-tuple", lambda a: sg.reduce_mean(a, (0, 2)), U(2, 3, 4), shapes=[(None, 3, None)]),
    _case("mean-unknown-rank", lambda a: sg.reduce_mean(a), U(3, 2), shapes=[None]),
    _case("max-axis1", lambda a: sg.reduce_max(a, 1), DISTINCT(3, 4), shapes=[(None, 4)]),
    _case("max-all", lambda a: sg.reduce_max(a), DISTINCT(3, 4), shapes=[(None, None)]),
    _case("norm", sg.norm, U(3, 4), shapes=[(None, 4)]),
    _case("reshape-minus1", lambda a: sg.reshape(a, (-1,)), U(3, 4), shapes=[(None, 4)]),
    _case("reshape-minus1-2", lambda a: sg.reshape(a, (-1, 2)) * 2.0, U(3, 4), shapes=[(None, 4)]),
    _case("matmul-(N,3)@(3,2)", sg.matmul, U(4, 3), U(3, 2), shapes=[(None, 3), (3, 2)]),
    _case("matmul-(N,2,3)@(3,4)", sg.matmul, U(2, 2, 3), U(3, 4), shapes=[(None, 2, 3), (3, None)]),
    _case("matmul-(N,)@(N,2)", sg.matmul, U(3), U(3, 2), shapes=[(None,), (None, 2)]),
    _case("matmul-(N,3)@(3,)", sg.matmul, U(4, 3), U(3), shapes=[(None, 3), (None,)]),
    _case("transpose", lambda a: sg.transpose(a) @ a, U(4, 3), shapes=[(None, 3)]),
    _case("transpose-perm", lambda a: sg.transpose(a, (1, 0, 2)), U(2, 3, 2), shapes=[(None, 3, None)]),
    _case("concat-unknown-axis", lambda a, b: sg.concat([a, b], 0), U(2, 3), U(4, 3),
          shapes=[(None, 3), (None, 3)]),
    _case("concat-axis1", lambda a, b: sg.concat([a, b], 1), U(2, 3), U(2, 1), shapes=[(None, 3), (None, 1)]),
    _case("stack", lambda a, b: sg.stack([a, b], 1), U(3, 2), U(3, 2), shapes=[(None, 2), (None, 2)]),
    _case("getitem", lambda a: a[1:, ::2] * a[0:1, 1::2], U(4, 4), shapes=[(None, 4)]),
    _case("getitem-int", lambda a: a[0] + a[-1], U(3, 2), shapes=[(None, None)]),
    _case("expand_dims", lambda a: sg.expand_dims(a, 0) + sg.expand_dims(a, 1), U(3), shapes=[(None,)]),
    _case("unary-chain", lambda a: sg.sqrt(sg.sigmoid(sg.tanh(a) * sg.cos(a)) + 1.0) * sg.log(a * a + 1.0),
          U(3, 2), shapes=[(None, 2)]),
    _case("cast-roundtrip", lambda a: sg.cast(sg.cast(a, sg.float32) * 2.0, sg.float64), U(3), shapes=[(None,)],
          eps=1e-3, rtol=1e-3, atol=1e-3),
]


@pytest.mark.parametrize("build, gens, kw", UNKNOWN)
def test_unknown_static_shapes(rng, build, gens, kw):
    check(rng, build, gens, **kw)


def test_unknown_batch_gradient_runs_for_several_batch_sizes(rng):
    x = sg.placeholder(sg.float64, (None, 3))
    w = sg.Variable(rng.standard_normal((3, 2)), dtype=sg.float64)
    loss = sg.reduce_mean(sg.tanh(x @ w))
    gx, gw = sg.gradients(loss, [x, w])
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        wv = sess.run(w)
        for n in (1, 4, 7):
            xv = rng.standard_normal((n, 3))
            vx, vw = sess.run([gx, gw], {x: xv})
            d = (1 - np.tanh(xv @ wv) ** 2) / (n * 2)
            np.testing.assert_allclose(vx, d @ wv.T, rtol=1e-10)
            np.testing.assert_allclose(vw, xv.T @ d, rtol=1e-10)


# -- variables and checker plumbing --------------------------------------------------------------

def test_checker_with_variables(rng):
    check(rng, lambda w, x: sg.tanh(x @ w).sum() + (w * w).mean(), [U(3, 2), U(4, 3)], as_variables=True)


def test_checker_detects_wrong_gradient(rng):
    # a deliberately wrong "gradient": stop_gradient hides half of d(x*x)/dx = 2x
    with pytest.raises(AssertionError, match="order 1") as info:
        check(rng, lambda a: sg.stop_gradient(a) * a, [AWAY(2, 3)])
    msg = str(info.value)
    assert "input 0 'x0'" in msg and "worst element" in msg and "order 1" in msg


@pytest.mark.parametrize("op_type, wrong_rule, build, gen", [
    ("Sin", lambda op, g: [g * sg.sin(op.inputs[0])], sg.sin, U(4)),                       # wrong formula
    ("Sub", lambda op, g: [g, g], lambda a, b: a - b, U(3)),                                 # wrong sign
    ("Sigmoid", lambda op, g: [g * op.outputs[0]], sg.sigmoid, U(2, 2)),                   # missing factor
])
def test_checker_catches_wrong_rules(rng, monkeypatch, op_type, wrong_rule, build, gen):
    import dataclasses
    from staticgraph import opdef
    check(rng, build, [gen] * (2 if op_type == "Sub" else 1))  # the real rule passes
    monkeypatch.setitem(opdef._REGISTRY, op_type, dataclasses.replace(opdef.get_opdef(op_type), grad=wrong_rule))
    with pytest.raises(AssertionError, match="worst element"):
        check(rng, build, [gen] * (2 if op_type == "Sub" else 1))


def test_checker_arguments(rng):
    recs = sg.check_gradients(lambda a, i: a * sg.cast(i, sg.float64), [rng.uniform(size=3), np.arange(3)])
    assert [(r.order, r.index) for r in recs] == [(1, 0)]          # only the floating input is checked
    recs = sg.check_gradients(lambda a, b: a * b, [rng.uniform(size=2), rng.uniform(size=2)], wrt=[1], order=2)
    assert [(r.order, r.index) for r in recs] == [(1, 1), (2, 1)]
    with pytest.raises(TypeError, match="only floating point"):
        sg.check_gradients(lambda a, i: a, [rng.uniform(size=3), np.arange(3)], wrt=[1])
    with pytest.raises(TypeError, match="floating point"):
        sg.check_gradients(lambda a: sg.argmax(a), [rng.uniform(size=3)])
    before = len(sg.get_default_graph().get_operations())
    sg.check_gradients(sg.exp, rng.uniform(size=(2, 2)))               # a bare array is one input
    assert len(sg.get_default_graph().get_operations()) == before     # builds in a private graph


def test_checker_reports_none_gradient(rng):
    with pytest.raises(AssertionError, match="returned None"):
        check(rng, lambda a: sg.stop_gradient(a) * 3.0, [U(3)])


# -- semantics of sg.gradients -------------------------------------------------------------------

def _run(fetches, feed=None):
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        return sess.run(fetches, feed or {})


def test_weight_sharing_sums_every_use(rng):
    wv, xv = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    w = sg.Variable(wv, dtype=sg.float64)
    x = sg.constant(xv, dtype=sg.float64)
    y = (w * x).sum() + (w ** 2).sum() + (x @ w).sum() + sg.sin(w[0]).sum()
    g, = sg.gradients(y, w)
    expected = xv + 2 * wv + xv.sum(axis=0)[:, None] * np.ones((3, 3))
    expected[0] += np.cos(wv[0])
    np.testing.assert_allclose(_run(g), expected, rtol=1e-12)
    # and the same with the checker, w as a Variable used four times
    check(rng, lambda w, x: (w * x).sum() + (w ** 2).sum() + (x @ w).sum() + sg.sin(w[0]).sum(),
          [U(3, 3), U(3, 3)], as_variables=True)


def test_weight_sharing_siamese(rng):
    w = sg.Variable(rng.standard_normal((2, 4)), dtype=sg.float64)
    a = sg.placeholder(sg.float64, (3, 2))
    b = sg.placeholder(sg.float64, (3, 2))
    ya, yb = sg.tanh(a @ w), sg.tanh(b @ w)
    loss = ((ya - yb) ** 2).sum()
    g, = sg.gradients(loss, w)
    av, bv = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        wv = sess.run(w)
        gv = sess.run(g, {a: av, b: bv})
    ta, tb = np.tanh(av @ wv), np.tanh(bv @ wv)
    d = 2 * (ta - tb)
    expected = av.T @ (d * (1 - ta ** 2)) - bv.T @ (d * (1 - tb ** 2))
    np.testing.assert_allclose(gv, expected, rtol=1e-10)


def test_grad_ys(rng):
    xv, vv = rng.standard_normal(4), rng.standard_normal(4)
    x = sg.placeholder(sg.float64, (4,))
    y = x ** 2
    g_np, = sg.gradients(y, x, grad_ys=vv)
    gy = sg.placeholder(sg.float64, (4,))
    g_t, = sg.gradients(y, x, grad_ys=gy)
    g_list, = sg.gradients([y], [x], grad_ys=[gy])
    r1, r2, r3 = _run([g_np, g_t, g_list], {x: xv, gy: vv})
    for r in (r1, r2, r3):
        np.testing.assert_allclose(r, 2 * xv * vv, rtol=1e-12)


def test_grad_ys_for_list_of_ys(rng):
    xv = rng.standard_normal(3)
    x = sg.placeholder(sg.float64, (3,))
    y1, y2 = sg.exp(x), x.sum()
    g, = sg.gradients([y1, y2], x, grad_ys=[np.array([1.0, 2.0, 3.0]), 0.5])
    np.testing.assert_allclose(_run(g, {x: xv}), np.exp(xv) * [1, 2, 3] + 0.5, rtol=1e-12)


def test_grad_ys_wrong_count_dtype_or_shape():
    x = sg.placeholder(sg.float64, (2, 3))
    with pytest.raises(ValueError, match="grad_ys has 1 entries for 2 ys"):
        sg.gradients([x * 2.0, x * 3.0], x, grad_ys=[np.ones((2, 3))])
    with pytest.raises(TypeError, match="dtype"):
        sg.gradients(x * 2.0, x, grad_ys=sg.placeholder(sg.float32, (2, 3)))
    with pytest.raises(ValueError, match="shape"):
        sg.gradients(x * 2.0, x, grad_ys=np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        sg.gradients(x * 2.0, x, grad_ys=sg.placeholder(sg.float64, (3, None)))
    # unknown dims are accepted
    g, = sg.gradients(x * 2.0, x, grad_ys=sg.placeholder(sg.float64, (None, 3)))
    assert g is not None


def test_list_of_ys_is_their_sum(rng):
    xv = rng.uniform(0.5, 2, (2, 3))
    x = sg.placeholder(sg.float64, (2, 3))
    ys = [sg.log(x).sum(), (x * x).sum(axis=0), sg.sqrt(x)]
    g, = sg.gradients(ys, x)
    expected = 1 / xv + 2 * xv + 0.5 / np.sqrt(xv)
    np.testing.assert_allclose(_run(g, {x: xv}), expected, rtol=1e-12)
    g_single, = sg.gradients(ys[0] + ys[1].sum() + ys[2].sum(), x)
    np.testing.assert_allclose(_run(g, {x: xv}), _run(g_single, {x: xv}), rtol=1e-12)


def test_result_is_list_aligned_with_xs(rng):
    x = sg.placeholder(sg.float64, (2,))
    z = sg.placeholder(sg.float64, (2,))
    unused = sg.placeholder(sg.float64, (2,))
    y = (x * z).sum()
    single = sg.gradients(y, x)
    assert isinstance(single, list) and len(single) == 1
    gx, gu, gz = sg.gradients(y, [x, unused, z])
    assert gu is None
    xv, zv = rng.standard_normal(2), rng.standard_normal(2)
    rx, rz = _run([gx, gz], {x: xv, z: zv})
    np.testing.assert_allclose(rx, zv)
    np.testing.assert_allclose(rz, xv)


def test_unconnected_x_gives_none():
    x = sg.placeholder(sg.float64, (3,))
    other = sg.placeholder(sg.float64, (3,))
    w = sg.Variable(np.ones(3), dtype=sg.float64)
    y = (sg.exp(x) * 2.0).sum()
    assert sg.gradients(y, [other, w]) == [None, None]
    # x downstream of y is not an ancestor either
    later = y * 2.0
    assert sg.gradients(y, later) == [None]


def test_stop_gradient_partial(rng):
    xv = rng.standard_normal(4)
    x = sg.placeholder(sg.float64, (4,))
    y = (sg.stop_gradient(x) * x).sum()           # d/dx = stop(x) = x, not 2x
    g, = sg.gradients(y, x)
    np.testing.assert_allclose(_run(g, {x: xv}), xv, rtol=1e-12)
    y2 = (x.detach() ** 2 + sg.sin(x)).sum()       # only the sin path remains
    g2, = sg.gradients(y2, x)
    np.testing.assert_allclose(_run(g2, {x: xv}), np.cos(xv), rtol=1e-12)


def test_stop_gradient_all_paths_gives_none():
    x = sg.placeholder(sg.float64, (4,))
    h = sg.stop_gradient(sg.exp(x))
    y = (h * h + sg.stop_gradient(x)).sum()
    assert sg.gradients(y, x) == [None]


def test_stop_gradients_argument(rng):
    xv = rng.standard_normal(3)
    x = sg.placeholder(sg.float64, (3,))
    h = x * 2.0
    y = (h * 3.0 + x).sum()
    g_all, = sg.gradients(y, x)
    g_stop, = sg.gradients(y, x, stop_gradients=[h])
    g_stop1, = sg.gradients(y, x, stop_gradients=h)
    r_all, r_stop, r_stop1 = _run([g_all, g_stop, g_stop1], {x: xv})
    np.testing.assert_allclose(r_all, np.full(3, 7.0))
    np.testing.assert_allclose(r_stop, np.ones(3))
    np.testing.assert_allclose(r_stop1, np.ones(3))
    # every path through the stopped tensor: None
    y2 = (h * h).sum()
    assert sg.gradients(y2, x, stop_gradients=[h]) == [None]


def test_non_differentiable_paths_give_none():
    x = sg.placeholder(sg.float64, (2, 3))
    via_argmax = sg.cast(sg.argmax(x, 1), sg.float64).sum()
    via_compare = sg.cast(x > 0.0, sg.float64).sum()
    via_where_cond = sg.where(x > 0.0, 1.0, 2.0).sum()
    via_one_hot = sg.one_hot(sg.argmax(x, 1), 4).sum()
    via_int_cast = sg.cast(sg.cast(x, sg.int64), sg.float64).sum()
    via_sign = sg.sign(x).sum()
    for y in (via_argmax, via_compare, via_where_cond, via_int_cast, via_sign):
        assert sg.gradients(y, x) == [None], y.name
    y32 = via_one_hot  # float32
    assert sg.gradients(y32, x) == [None]


def test_non_differentiable_plus_differentiable_path(rng):
    xv = rng.standard_normal((2, 3))
    x = sg.placeholder(sg.float64, (2, 3))
    y = (sg.cast(sg.cast(x, sg.int64), sg.float64) * x).sum() + sg.cast(sg.argmax(x), sg.float64)
    g, = sg.gradients(y, x)
    np.testing.assert_allclose(_run(g, {x: xv}), np.trunc(xv), rtol=1e-12)


def test_integer_xs_or_ys_raise_type_error():
    i = sg.placeholder(sg.int64, (3,))
    f = sg.placeholder(sg.float64, (3,))
    y = sg.cast(i, sg.float64) * f
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients(y, i)
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients(y, [f, i])
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients(sg.argmax(f), f)
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients(f > 0.0, f)
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients([y.sum(), sg.cast(f, sg.int32)], f)


def test_integer_variable_not_trainable():
    with pytest.raises(TypeError, match="only floating point"):
        sg.Variable(np.arange(3))
    v = sg.Variable(np.arange(3), trainable=False)
    with pytest.raises(TypeError, match="only floating point"):
        sg.gradients(sg.cast(v, sg.float32).sum(), v)


def test_gradient_of_interior_tensor(rng):
    xv = rng.standard_normal(4)
    x = sg.placeholder(sg.float64, (4,))
    h = sg.sin(x)
    y = (h ** 2 * x).sum()
    gh, gx = sg.gradients(y, [h, x])
    rh, rx = _run([gh, gx], {x: xv})
    np.testing.assert_allclose(rh, 2 * np.sin(xv) * xv, rtol=1e-12)
    np.testing.assert_allclose(rx, 2 * np.sin(xv) * np.cos(xv) * xv + np.sin(xv) ** 2, rtol=1e-12)


def test_x_that_is_also_in_ys(rng):
    xv = rng.standard_normal(3)
    x = sg.placeholder(sg.float64, (3,))
    g_self, = sg.gradients(x, x)
    g_mix, = sg.gradients([x, x ** 2], x)
    g_sum, = sg.gradients(x.sum() + (x ** 2).sum(), x)
    r_self, r_mix, r_sum = _run([g_self, g_mix, g_sum], {x: xv})
    np.testing.assert_allclose(r_self, np.ones(3))
    np.testing.assert_allclose(r_mix, 1 + 2 * xv, rtol=1e-12)
    np.testing.assert_allclose(r_sum, 1 + 2 * xv, rtol=1e-12)


def test_gradients_float32_graph(rng):
    xv = rng.uniform(0.5, 2.0, (3, 2)).astype(np.float32)
    x = sg.placeholder(sg.float32, (3, 2))
    y = (sg.log(x) * x).mean()
    g, = sg.gradients(y, x)
    assert g.dtype == sg.float32
    r = _run(g, {x: xv})
    assert r.dtype == np.float32
    np.testing.assert_allclose(r, (np.log(xv) + 1) / 6, rtol=1e-5)


def test_mixed_graphs_rejected():
    g1, g2 = sg.Graph(), sg.Graph()
    with g1.as_default():
        x = sg.placeholder(sg.float64, (2,))
    with g2.as_default():
        y = sg.placeholder(sg.float64, (2,)) * 2.0
    with pytest.raises(ValueError, match=rf"gradients: tensor '{x.name}' belongs to another graph"):
        sg.gradients(y, x)


def test_stopped_xs_get_their_own_gradient_but_pass_none_on():
    # TF1's documented example: each x is treated as a constant by the others.
    a = sg.constant(0.5, dtype=sg.float64)
    b = 2.0 * a
    loss = a * b + 3.0 * b                      # d/da = b + 2a*... without the b<-a path: b
    g_stopped = sg.gradients(loss, [a, b], stop_gradients=[a, b])
    g_full = sg.gradients(loss, [a, b])
    with sg.Session() as sess:
        ga_s, gb_s = sess.run(g_stopped)
        ga_f, gb_f = sess.run(g_full)
    assert ga_s == pytest.approx(1.0)          # d(a*b + 3b)/da with b held constant = b = 1
    assert gb_s == pytest.approx(0.5 + 3.0)    # d/db = a + 3
    assert gb_f == pytest.approx(3.5)
    assert ga_f == pytest.approx(1.0 + 2 * 3.5)  # direct b, plus db/da * dloss/db


# -- maximum / minimum at ties: the gradient is split evenly (documented in ops/math.py) ------------

def _naive_tie_grads(a, b, g, first_wins):
    """Per-element shares of the upstream gradient ``g``, reduced to each input's shape by loops."""
    a_b, b_b = np.broadcast_arrays(a, b)
    ga_full, gb_full = np.zeros(g.shape), np.zeros(g.shape)
    for idx in np.ndindex(g.shape):
        x, y = a_b[idx], b_b[idx]
        share = 0.5 if x == y else (1.0 if first_wins(x, y) else 0.0)
        ga_full[idx], gb_full[idx] = g[idx] * share, g[idx] * (1.0 - share)

    def reduce_to(full, shape):
        out = np.zeros(shape)
        for idx in np.ndindex(full.shape):
            out[tuple(0 if s == 1 else i for i, s in zip(idx[len(full.shape) - len(shape):], shape))] += full[idx]
        return out
    return reduce_to(ga_full, np.shape(a)), reduce_to(gb_full, np.shape(b))


@pytest.mark.parametrize("fn, np_fn, first_wins", [(sg.maximum, np.maximum, lambda x, y: x > y),
                                                   (sg.minimum, np.minimum, lambda x, y: x < y)])
@pytest.mark.parametrize("sa, sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3))])
def test_maximum_minimum_ties_value_and_even_gradient_split(fn, np_fn, first_wins, sa, sb, target, rng):
    a = rng.integers(-2, 3, sa) * 0.5          # a coarse grid: many ties
    b = rng.integers(-2, 3, sb) * 0.5
    g = rng.standard_normal(np.broadcast_shapes(sa, sb))
    x, y = sg.placeholder(sg.float64, sa), sg.placeholder(sg.float64, sb)
    out = fn(x, y)
    gx, gy = sg.gradients(out, [x, y], grad_ys=sg.constant(g, dtype=sg.float64))
    value, got_x, got_y = run(target, [out, gx, gy], {x: a, y: b})
    np.testing.assert_array_equal(value, np_fn(a, b))
    want_x, want_y = _naive_tie_grads(a, b, g, first_wins)
    np.testing.assert_allclose(got_x, want_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", [sg.maximum, sg.minimum])
def test_maximum_minimum_tie_split_matches_central_differences(fn, rng):
    # central differences at a tie see exactly the even split: (max(x+h, y) - max(x-h, y)) / 2h = 1/2
    check(rng, fn, [GRID(3, 4), GRID(3, 4)])
    check(rng, lambda a: fn(a, a) * 2.0, [U(2, 3)])                  # max(x, x) passes g through whole
    check(rng, lambda a, b: fn(a, b) * fn(b, a), [GRID(4), GRID(4)])  # symmetric in its arguments



def test_max_rel_err_is_meaningful_where_the_numeric_gradient_is_zero(rng):
    """1 + sum(x * 1e-20) is 1.0 at +-eps in float64, so the finite difference is exactly 0 while the
    analytic gradient is 1e-20: a pass whose relative error must be tiny, not 1e-20 / 1e-300."""
    x = rng.uniform(-1, 1, size=(2, 3))
    build = lambda a: sg.reduce_sum(a * 1e-20) + 1.0            # noqa: E731
    (rec,) = sg.check_gradients(build, [x])
    assert rec.max_abs_err == pytest.approx(1e-20, rel=1e-9, abs=0)
    assert rec.max_rel_err == pytest.approx(1e-20 / (1e-6 / 1e-5), rel=1e-9, abs=0)     # against atol / rtol
    (rec,) = sg.check_gradients(build, [x], rtol=1e-3, atol=1e-2)
    assert rec.max_rel_err == pytest.approx(1e-20 / 10, rel=1e-9, abs=0)


def test_max_rel_err_against_an_independent_computation(rng):
    """|a - n| / max(|a|, |n|, atol / rtol) for a known gap between analytic and numeric gradients
    (a stop_gradient term the finite differences see); pass/fail is unchanged (a larger gap fails)."""
    x = rng.uniform(-1, 1, size=(3, 4))
    c = rng.uniform(0.5, 2.0, size=x.shape) * rng.choice([-1, 1], size=x.shape)
    c[rng.integers(0, 3), rng.integers(0, 4)] = 0.0          # analytic 0, numeric d: measured against 0.1
    d = rng.uniform(5e-7, 9e-7, size=x.shape)                # within atol = 1e-6; roundoff in the
    # finite differences is ~1e-9 here, hence the 1% comparisons below
    build = lambda dd: lambda a: sg.reduce_sum(a * c) + sg.reduce_sum(sg.stop_gradient(a) * dd)  # noqa: E731
    (rec,) = sg.check_gradients(build(d), [x])
    expected = np.max(d / np.maximum(np.maximum(np.abs(c), np.abs(c + d)), 1e-6 / 1e-5))
    assert rec.max_rel_err == pytest.approx(expected, rel=1e-2, abs=0)
    assert rec.max_abs_err == pytest.approx(d.max(), rel=1e-2, abs=0)
    with pytest.raises(AssertionError, match="worst element"):
        sg.check_gradients(build(d + 1e-5), [x])
