"""The Tensor API (API.md §1, §10): operators, reflected operators, indexing, methods,
attributes, static shape inference, names, dtype rules for values entering the graph
and weak Python scalars. Expected values are computed here with NumPy."""
import operator

import numpy as np
import pytest

import staticgraph as sg
from helpers import run, session



def check(out, expected, dtype=None, rtol=None, atol=None):
    expected = np.asarray(expected)
    dtype = expected.dtype if dtype is None else np.dtype(dtype)
    assert isinstance(out, np.ndarray), type(out)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert out.dtype == dtype, (out.dtype, dtype)
    if dtype.kind == "f":
        default = (2e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)
        np.testing.assert_allclose(out, expected, rtol=rtol or default[0], atol=atol or default[1])
    else:
        np.testing.assert_array_equal(out, expected)


# -- operators ---------------------------------------------------------------------------------------

BINOPS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
}
CMPOPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sym", sorted(BINOPS))
def test_binary_operators(sym, dtype, target, rng):
    op = BINOPS[sym]
    a = rng.uniform(0.5, 2.0, size=(3, 4)).astype(dtype)
    b = rng.uniform(0.5, 2.0, size=(4,)).astype(dtype)
    scalar = 1.5
    arr = rng.uniform(0.5, 2.0, size=(3, 1)).astype(dtype)
    x = sg.placeholder(dtype, (None, 4))
    y = sg.constant(b, dtype=dtype)
    cases = {
        "tt": (op(x, y), op(a, b)),
        "ts": (op(x, scalar), op(a, dtype(scalar))),
        "st": (op(scalar, x), op(dtype(scalar), a)),        # reflected with a Python scalar
        "ta": (op(x, arr), op(a, arr)),
        "at": (op(arr, x), op(arr, a)),                      # reflected with a NumPy array
        "npscalar": (op(np.float64(scalar), x), op(dtype(scalar), a)),
        "int_scalar": (op(x, 2), op(a, dtype(2))),
        "r_int_scalar": (op(3, x), op(dtype(3), a)),
    }
    for key, (t, expected) in cases.items():
        assert isinstance(t, sg.Tensor), key
        assert t.dtype == np.dtype(dtype), (key, t.dtype)
        assert len(t.shape) == expected.ndim and t.shape[-1] == expected.shape[-1], (key, t.shape)
    outs = run(target, {k: v[0] for k, v in cases.items()}, {x: a})
    for key, (t, expected) in cases.items():
        check(outs[key], expected.astype(dtype), rtol=1e-5 if dtype == np.float32 else None)


@pytest.mark.parametrize("sym", sorted(CMPOPS))
def test_comparison_operators(sym, target, rng):
    op = CMPOPS[sym]
    a = rng.integers(-2, 3, size=(3, 4)).astype(np.float32)
    b = rng.integers(-2, 3, size=(4,)).astype(np.float32)
    x = sg.placeholder(sg.float32, (3, 4))
    cases = [(op(x, b), op(a, b)), (op(x, sg.constant(b)), op(a, b)), (op(x, 0.0), op(a, 0.0)),
             (op(1, x), op(1, a)), (op(b, x), op(b, a))]
    for t, _ in cases:
        assert t.dtype == sg.bool_ and t.shape == (3, 4)
    outs = run(target, [c[0] for c in cases], {x: a})
    for out, (t, expected) in zip(outs, cases):
        check(out, expected, dtype=np.bool_)


def test_int_operators(target, rng):
    a = rng.integers(-5, 6, size=(2, 3)).astype(np.int64)
    b = rng.integers(1, 4, size=(3,)).astype(np.int64)
    x = sg.placeholder(sg.int64, (None, 3))
    cases = [(x + b, a + b), (x - 1, a - 1), (2 * x, 2 * a), (x ** 2, a ** 2), (-x, -a), (abs(x), np.abs(a)),
             (x * x, a * a), (x > 0, a > 0), (7 - x, 7 - a)]
    for t, e in cases:
        assert t.dtype == e.dtype, (t, e.dtype)
    outs = run(target, [c[0] for c in cases], {x: a})
    for out, (t, expected) in zip(outs, cases):
        check(out, expected)


def test_unary_operators(target, rng):
    a = rng.normal(size=(2, 5)).astype(np.float32)
    x = sg.placeholder(sg.float32, (2, 5))
    outs = run(target, [-x, abs(x), +x, -(-x)], {x: a})
    check(outs[0], -a)
    check(outs[1], np.abs(a))
    check(outs[2], a)
    check(outs[3], a)


def test_matmul_operator_and_reflected(target, rng):
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(4, 2)).astype(np.float32)
    v = rng.normal(size=(4,)).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, 4))
    cases = [(x @ b, a @ b), (a.T @ x, a.T @ a), (x @ v, a @ v), (v @ sg.transpose(x), v @ a.T),
             (x @ sg.constant(b), a @ b), (x.matmul(b), a @ b)]
    outs = run(target, [c[0] for c in cases], {x: a})
    for out, (t, expected) in zip(outs, cases):
        check(out, expected, rtol=1e-5, atol=1e-5)


def test_tensor_is_not_a_python_bool_and_hashes_by_identity():
    x = sg.placeholder(sg.float32, (2,))
    y = sg.placeholder(sg.float32, (2,))
    with pytest.raises(TypeError, match="bool"):
        bool(x)
    with pytest.raises(TypeError, match="as a Python bool is not allowed.*sg.where"):
        if x < y:
            pass
    d = {x: 1, y: 2}
    assert d[x] == 1 and d[y] == 2


# -- indexing ------------------------------------------------------------------------------------------

INDICES = [
    2, -1, 0, slice(1, 3), slice(None, None, -1), slice(-3, None), slice(None, None, 2), slice(5, 1, -2),
    (slice(None), 0), (slice(None), -1), (Ellipsis, None), (None,), (None, Ellipsis, 1), (1, 2), (-1, -2),
    (slice(0, 1), slice(None, None, -1)), (Ellipsis, slice(1, None)), (1, None, slice(None)),
    (slice(None), None, slice(2, 0, -1)), (Ellipsis,), (slice(1, 100),), (-4, Ellipsis),
]


@pytest.mark.parametrize("mode", ["exact", "none_dims"])
def test_basic_indexing(mode, target, rng):
    a = rng.normal(size=(4, 3)).astype(np.float32)
    x = sg.placeholder(sg.float32, a.shape if mode == "exact" else (None, None))
    cases = []
    for idx in INDICES:
        t = x[idx]
        expected = np.asarray(a[idx])
        assert len(t.shape) == expected.ndim, (idx, t.shape, expected.shape)
        if mode == "exact":
            assert t.shape == expected.shape, (idx, t.shape, expected.shape)
        else:
            assert all(s is None or s == e for s, e in zip(t.shape, expected.shape)), (idx, t.shape)
        cases.append((idx, t, expected))
    outs = run(target, [c[1] for c in cases], {x: a})
    for out, (idx, t, expected) in zip(outs, cases):
        try:
            check(out, expected)
        except AssertionError as exc:
            raise AssertionError(f"index {idx!r}: {exc}") from None


def test_indexing_3d_and_0d(target, rng):
    a = rng.normal(size=(2, 3, 4))
    x = sg.constant(a, dtype=sg.float64)
    s = sg.constant(3.5, dtype=sg.float64)
    cases = [(x[1], a[1]), (x[:, 0], a[:, 0]), (x[..., None], a[..., None]), (x[..., -1], a[..., -1]),
             (x[-1, 1:, ::-2], a[-1, 1:, ::-2]), (x[:, None, 2], a[:, None, 2]), (x[0, 0, 0], a[0, 0, 0]),
             (s[None], np.float64(3.5)[None]), (s[...], np.asarray(3.5)), (x[:, :, 1:3][..., 0], a[:, :, 1:3][..., 0])]
    outs = run(target, [c[0] for c in cases])
    for out, (t, expected) in zip(outs, cases):
        assert t.shape == np.shape(expected)
        check(out, np.asarray(expected))


def test_indexing_with_unknown_batch(target, rng):
    x = sg.placeholder(sg.float32, (None, 5))
    first, col, tail = x[0], x[:, 2], x[1:]
    assert first.shape == (5,)
    assert col.shape == (None,)
    assert tail.shape == (None, 5)
    with session(target) as sess:
        for n in (2, 6):
            a = rng.normal(size=(n, 5)).astype(np.float32)
            out = sess.run([first, col, tail], {x: a})
            check(out[0], a[0])
            check(out[1], a[:, 2])
            check(out[2], a[1:])


def test_iteration_and_len():
    x = sg.placeholder(sg.float32, (3, 2))
    assert len(x) == 3
    parts = list(x)
    assert len(parts) == 3 and all(p.shape == (2,) for p in parts)


# -- methods ----------------------------------------------------------------------------------------------

def test_elementwise_methods(target, rng):
    a = rng.uniform(0.1, 2.0, size=(3, 4)).astype(np.float32)
    n = rng.normal(size=(3, 4)).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, 4))
    y = sg.placeholder(sg.float32, (3, 4))
    cases = {
        "exp": (x.exp(), np.exp(a)), "log": (x.log(), np.log(a)), "sin": (y.sin(), np.sin(n)),
        "cos": (y.cos(), np.cos(n)), "tanh": (y.tanh(), np.tanh(n)),
        "sigmoid": (y.sigmoid(), (1 / (1 + np.exp(-n.astype(np.float64)))).astype(np.float32)),
        "relu": (y.relu(), np.maximum(n, 0)), "abs": (y.abs(), np.abs(n)), "sqrt": (x.sqrt(), np.sqrt(a)),
        "pow2": (x.pow(2), a ** 2), "pow_half": (x.pow(0.5), a ** np.float32(0.5)),
        "pow_t": (x.pow(y), a ** n), "square": (y.square(), n * n),
    }
    outs = run(target, {k: v[0] for k, v in cases.items()}, {x: a, y: n})
    for k, (t, expected) in cases.items():
        assert t.dtype == sg.float32
        check(outs[k], expected, rtol=1e-5)


@pytest.mark.parametrize("method", ["sum", "mean", "max"])
def test_reduction_methods(method, target, rng):
    a = rng.normal(size=(2, 3, 4))
    x = sg.constant(a, dtype=sg.float64)
    fn = getattr(np, method)
    cases = []
    for axis in (None, 0, -1, (0, 2), (1,)):
        for keepdims in (False, True):
            t = getattr(x, method)(axis=axis, keepdims=keepdims)
            expected = np.asarray(fn(a, axis=axis, keepdims=keepdims))
            assert t.shape == expected.shape
            cases.append((t, expected))
    cases.append((getattr(x, method)(1), np.asarray(fn(a, axis=1))))   # positional axis
    outs = run(target, [c[0] for c in cases])
    for out, (t, expected) in zip(outs, cases):
        check(out, expected)


def test_shape_methods(target, rng):
    a = rng.normal(size=(2, 3, 4)).astype(np.float32)
    m = rng.normal(size=(3, 5)).astype(np.float32)
    x = sg.constant(a)
    y = sg.constant(m)
    cases = [
        (x.transpose(), a.transpose()), (x.transpose(2, 0, 1), a.transpose(2, 0, 1)),
        (x.transpose((1, 0, 2)), a.transpose((1, 0, 2))), (y.t(), m.T),
        (x.reshape(6, 4), a.reshape(6, 4)), (x.reshape((4, -1)), a.reshape(4, -1)), (x.reshape(-1), a.ravel()),
        (x.view(2, 12), a.reshape(2, 12)), (x.view(-1, 3, 2), a.reshape(-1, 3, 2)),
        (x.view((24,)), a.reshape(24)),
    ]
    for t, expected in cases:
        assert t.shape == expected.shape
    outs = run(target, [c[0] for c in cases])
    for out, (t, expected) in zip(outs, cases):
        check(out, expected)


def test_norm_and_dot_methods(target, rng):
    a = rng.normal(size=(7,)).astype(np.float32)
    b = rng.normal(size=(7,)).astype(np.float32)
    m = rng.normal(size=(2, 3)).astype(np.float32)
    x, y, z = sg.constant(a), sg.constant(b), sg.constant(m)
    assert x.norm().shape == () and x.dot(y).shape == ()
    outs = run(target, [x.norm(), z.norm(), x.dot(y), x.dot(b)])
    check(outs[0], np.float32(np.sqrt(np.sum(a.astype(np.float64) ** 2))), rtol=1e-5)
    check(outs[1], np.float32(np.sqrt(np.sum(m.astype(np.float64) ** 2))), rtol=1e-5)
    check(outs[2], np.float32(np.dot(a.astype(np.float64), b)), rtol=1e-5, atol=1e-5)
    check(outs[3], np.float32(np.dot(a.astype(np.float64), b)), rtol=1e-5, atol=1e-5)


def test_size():
    x = sg.placeholder(sg.float32, (None, 3, 4))
    assert x.size() == (None, 3, 4)
    assert x.size(0) is None
    assert x.size(1) == 3
    assert x.size(-1) == 4
    assert sg.constant(1.0).size() == ()
    assert sg.constant(np.zeros((2, 5))).size(1) == 5


def test_t_requires_2d():
    with pytest.raises(ValueError, match="2-D"):
        sg.constant(np.zeros((2, 3, 4))).t()


# -- attributes, shapes, names --------------------------------------------------------------------------------

def test_tensor_attributes():
    g = sg.get_default_graph()
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    w = sg.constant(np.ones((3, 2), np.float32), name="w")
    y = sg.matmul(x, w)
    assert x.shape == (None, 3) and isinstance(x.shape, tuple)
    assert x.dtype == sg.float32 and x.dtype == np.float32
    assert x.name == "x:0"
    assert x.graph is g and y.graph is g
    assert isinstance(y.op, sg.Operation)
    assert y.op.type == "MatMul"
    assert y.op.inputs == (x, w)
    assert y.op.outputs[0] is y
    assert y.name == y.op.name + ":0"
    assert y.shape == (None, 2)


def test_placeholder_shapes():
    assert sg.placeholder(sg.float32).shape is None
    assert sg.placeholder(sg.float32, shape=None).shape is None
    assert sg.placeholder(sg.float32, ()).shape == ()
    assert sg.placeholder(sg.float32, [None, 2]).shape == (None, 2)
    assert sg.placeholder(sg.float32, (-1, 2)).shape == (None, 2)


@pytest.mark.parametrize("dtype_like, expected", [
    (sg.float32, np.float32), ("float64", np.float64), (np.int32, np.int32), (np.dtype("int64"), np.int64),
    ("bool", np.bool_), (sg.bool_, np.bool_), (float, np.float64),
])
def test_dtypes_accepted(dtype_like, expected):
    assert sg.placeholder(dtype_like, (2,)).dtype == np.dtype(expected)
    assert sg.zeros((2,), dtype=dtype_like).dtype == np.dtype(expected)
    assert sg.constant([1, 0], dtype=dtype_like).dtype == np.dtype(expected)


def test_unsupported_dtype_rejected():
    with pytest.raises(TypeError, match="complex128"):
        sg.placeholder(np.complex128, (2,))


def test_static_shape_inference():
    x = sg.placeholder(sg.float32, (None, 3))
    u = sg.placeholder(sg.float32)
    b = sg.placeholder(sg.float32, (1, None))
    assert (x + 1.0).shape == (None, 3)
    assert (x + b).shape == (None, 3)
    assert (x + np.zeros((2, 1, 3), np.float32)).shape == (2, None, 3)
    assert (u + x).shape is None
    assert (x @ np.ones((3, 5), np.float32)).shape == (None, 5)
    assert x.sum().shape == ()
    assert x.sum(axis=1).shape == (None,)
    assert x.sum(axis=0, keepdims=True).shape == (1, 3)
    assert u.sum().shape == ()
    assert sg.argmax(x, 1).shape == (None,)
    assert sg.concat([x, x], 0).shape == (None, 3)
    assert sg.stack([x, x], 1).shape == (None, 2, 3)
    assert sg.one_hot(sg.placeholder(sg.int64, (None,)), 10).shape == (None, 10)
    assert x[..., None].shape == (None, 3, 1)
    assert sg.transpose(x).shape == (3, None)
    assert x.reshape(-1).shape == (None,)
    assert sg.zeros_like(x).shape == (None, 3)
    assert sg.cast(x, sg.int32).shape == (None, 3)
    assert sg.where(x > 0, x, 0.0).shape == (None, 3)


def test_default_op_names_are_unique_with_suffixes():
    a = sg.constant(1.0)
    b = sg.constant(2.0)
    c = a + b
    d = a + b
    e = sg.matmul(sg.constant([[1.0]]), sg.constant([[2.0]]))
    f = sg.matmul(sg.constant([[1.0]]), sg.constant([[2.0]]))
    g = sg.matmul(sg.constant([[1.0]]), sg.constant([[2.0]]))
    names = [t.op.name for t in (a, b, c, d, e, f, g)]
    assert len(set(names)) == len(names)
    assert c.op.name + "_1" == d.op.name
    assert (e.op.name, f.op.name, g.op.name) == ("matmul", "matmul_1", "matmul_2")
    assert g.name == "matmul_2:0"
    all_names = [op.name for op in sg.get_default_graph().get_operations()]
    assert len(set(all_names)) == len(all_names)


def test_user_names_and_collisions():
    x = sg.placeholder(sg.float32, (2,), name="x")
    x1 = sg.placeholder(sg.float32, (2,), name="x")
    x2 = sg.identity(x, name="x")
    assert (x.name, x1.name, x2.name) == ("x:0", "x_1:0", "x_2:0")
    y1 = sg.constant(1.0, name="y_1")      # a user name that looks like a suffix
    y = sg.constant(1.0, name="y")
    y_again = sg.constant(1.0, name="y")
    assert y1.name == "y_1:0" and y.name == "y:0"
    assert y_again.op.name not in ("y", "y_1")
    assert y_again.op.name.startswith("y_")
    v = sg.Variable(np.zeros(2, np.float32), name="w")
    v2 = sg.Variable(np.zeros(2, np.float32), name="w")
    assert v.name == "w:0" and v2.name == "w_1:0"
    assert sg.get_default_graph().get_tensor_by_name("x_1:0") is x1


def test_name_scopes():
    with sg.name_scope("layer1"):
        a = sg.constant(1.0, name="a")
        b = a * 2.0
        with sg.name_scope("inner"):
            c = sg.identity(a, name="c")
    with sg.name_scope("layer1"):
        a2 = sg.constant(1.0, name="a")
    d = sg.constant(1.0, name="a")
    assert a.name == "layer1/a:0"
    assert b.op.name.startswith("layer1/")
    assert c.name == "layer1/inner/c:0"
    assert a2.op.name != a.op.name and a2.op.name.startswith("layer1/")
    assert d.name == "a:0"
    v = None
    with sg.name_scope("model"):
        v = sg.Variable(np.zeros(3, np.float32), name="w")
    assert v.name == "model/w:0"


def test_output_index_in_name():
    # an op with several outputs names them "<op name>:<i>"
    from staticgraph.ops import split_like
    x = sg.constant(np.arange(6.0, dtype=np.float32))
    parts = split_like(x, [sg.constant(np.zeros(2, np.float32)), sg.constant(np.zeros(4, np.float32))], 0)
    assert [p.name for p in parts] == [parts[0].op.name + ":0", parts[0].op.name + ":1"]
    assert parts[0].op is parts[1].op


# -- dtype rules of values entering the graph (API.md §10) ----------------------------------------------------

@pytest.mark.parametrize("value, dtype_arg, expected", [
    (1.5, None, np.float32), (3, None, np.int64), (True, None, np.bool_), ([1.0, 2.0], None, np.float32),
    ([1, 2], None, np.int64), ([True, False], None, np.bool_), (np.float64(2.0), None, np.float32),
    (np.zeros(3, np.float64), None, np.float32), (np.zeros(3, np.float32), None, np.float32),
    (np.zeros(3, np.int32), None, np.int32), (np.zeros(3, np.int64), None, np.int64),
    (np.zeros(3, bool), None, np.bool_), (np.zeros(3, np.float16), None, np.float32),
    (1.5, sg.float64, np.float64), (np.zeros(3, np.float64), sg.float64, np.float64),
    (3, sg.int32, np.int32), (3, sg.float32, np.float32), ([1, 2], "float64", np.float64),
    (np.zeros(2, np.float32), np.float64, np.float64),
])
def test_constant_dtype_rules(value, dtype_arg, expected, target):
    c = sg.constant(value, dtype=dtype_arg)
    assert c.dtype == np.dtype(expected)
    out = run(target, c)
    check(out, np.asarray(value).astype(expected))


def test_constant_value_is_kept_exactly(target, rng):
    a = rng.normal(size=(3, 2))
    out = run(target, [sg.constant(a), sg.constant(a, dtype=sg.float64)])
    check(out[0], a.astype(np.float32))
    check(out[1], a)
    a[0, 0] = 100.0     # the constant does not alias the caller's array
    assert run(target, sg.constant(np.ones(2)))[0] == 1.0


@pytest.mark.parametrize("value, dtype_arg, expected", [
    (np.zeros((2, 3)), None, np.float32), (1.0, None, np.float32), ([1.0, 2.0], sg.float64, np.float64),
    (np.zeros(3, np.float32), sg.float64, np.float64),
])
def test_variable_dtype_rules(value, dtype_arg, expected, target):
    v = sg.Variable(value, dtype=dtype_arg)
    assert v.dtype == np.dtype(expected) and v.trainable
    assert isinstance(v, sg.Tensor)
    with session(target) as sess:
        sess.run(v.initializer)
        check(sess.run(v), np.asarray(value).astype(expected))


def test_integer_variable_must_not_be_trainable(target):
    v = sg.Variable(np.arange(3), trainable=False)
    assert v.dtype == sg.int64 and not v.trainable
    v32 = sg.Variable(np.arange(3, dtype=np.int32), trainable=False)
    assert v32.dtype == sg.int32
    vi = sg.Variable(5, trainable=False)
    assert vi.dtype == sg.int64 and vi.shape == ()
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        check(sess.run(v + 1), np.arange(3) + 1)
        check(sess.run(vi), np.asarray(5, np.int64))


def test_variable_is_a_tensor_in_ops(target, rng):
    w0 = rng.normal(size=(3, 2)).astype(np.float32)
    a = rng.normal(size=(4, 3)).astype(np.float32)
    w = sg.Variable(w0, name="w")
    x = sg.placeholder(sg.float32, (None, 3))
    y = sg.relu(x @ w) + w.sum() * 2
    assert w.shape == (3, 2) and w.name == "w:0" and w.op.type == "Variable"
    assert y.shape == (None, 2)
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        check(sess.run(y, {x: a}), np.maximum(a @ w0, 0) + w0.sum() * 2, rtol=1e-5, atol=1e-5)
        check(sess.run(w[1]), w0[1])


# -- weak scalars and dtype mixing -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weak_python_scalars_keep_tensor_dtype(dtype, target, rng):
    a = rng.normal(size=(5,)).astype(dtype)
    x = sg.placeholder(dtype, (5,))
    results = [x * 0.5, 0.5 * x, x + 1, 2 - x, x / 3, 1.0 / (x * x + 1), x ** 2, 2.0 ** x, x * np.float64(0.25),
               sg.maximum(x, 0.1), sg.where(x > 0, x, 0.5)]
    for t in results:
        assert t.dtype == np.dtype(dtype), t
    outs = run(target, results, {x: a})
    half = dtype(0.5)
    check(outs[0], a * half)
    check(outs[1], half * a)
    check(outs[2], a + dtype(1))
    check(outs[3], dtype(2) - a)
    check(outs[4], a / dtype(3), rtol=1e-6 if dtype == np.float32 else None)
    check(outs[5], dtype(1) / (a * a + dtype(1)), rtol=1e-6 if dtype == np.float32 else None)
    check(outs[6], a ** 2, rtol=1e-6 if dtype == np.float32 else None)
    check(outs[7], dtype(2.0) ** a, rtol=1e-6 if dtype == np.float32 else None)
    check(outs[8], a * dtype(0.25))
    check(outs[9], np.maximum(a, dtype(0.1)))
    check(outs[10], np.where(a > 0, a, dtype(0.5)))


def test_weak_int_scalars_with_int_tensor(target):
    x = sg.constant(np.array([1, 2, 3], np.int32))
    t = x * 2 + 1
    assert t.dtype == sg.int32
    check(run(target, t), np.array([3, 5, 7], np.int32))


def test_same_kind_arrays_next_to_a_tensor(target):
    x = sg.constant(np.array([1.0, 2.0], np.float32))
    t = x + np.array([0.5, 0.25])        # float64 array, same kind: takes the tensor's dtype
    assert t.dtype == sg.float32
    check(run(target, t), np.array([1.5, 2.25], np.float32))


@pytest.mark.parametrize("da, db", [(np.float32, np.float64), (np.float64, np.float32), (np.float32, np.int64),
                                    (np.int32, np.int64), (np.int64, np.float32)])
@pytest.mark.parametrize("fn", [operator.add, operator.mul, operator.matmul, sg.maximum, sg.less,
                                lambda a, b: sg.where(sg.constant(True), a, b),
                                lambda a, b: sg.concat([a, b], 0)])
def test_two_dtypes_raise_type_error_naming_both(fn, da, db):
    a = sg.constant(np.ones((2, 2)), dtype=da, name="lhs")
    b = sg.constant(np.ones((2, 2)), dtype=db, name="rhs")
    assert (a.dtype, b.dtype) == (np.dtype(da), np.dtype(db))
    with pytest.raises(TypeError, match=rf"tensors 'lhs:0' \({np.dtype(da).name}\) and 'rhs:0' "
                                        rf"\({np.dtype(db).name}\) have different dtypes; use sg.cast"):
        fn(a, b)


@pytest.mark.parametrize("int_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("value", [0.5, np.float64(1.5), np.array([0.5, 1.5])])
def test_float_with_int_tensor_raises(value, int_dtype):
    x = sg.constant(np.array([1, 2], int_dtype), name="ints")
    with pytest.raises(TypeError, match=np.dtype(int_dtype).name):
        x * value
    with pytest.raises(TypeError, match="ints"):
        value + x


def test_bool_tensor_arithmetic_rejected():
    b = sg.constant(np.array([True, False]))
    with pytest.raises(TypeError, match="bool"):
        b + b


@pytest.mark.parametrize("value", [2 ** 40, -2 ** 31 - 1, [1, 2 ** 33], np.array([2 ** 40])])
def test_weak_int_out_of_range_for_int32_raises(value):
    x = sg.constant(np.array([1, 2], np.int32), name="small")
    with pytest.raises(OverflowError, match="small"):
        x + value


def test_weak_int_in_range_for_int32(target):
    x = sg.constant(np.array([1, 2], np.int32))
    check(run(target, [x + (2 ** 31 - 3), x * np.int64(-5)])[0], np.array([2 ** 31 - 2, 2 ** 31 - 1], np.int32))
    check(run(target, x * np.int64(-5)), np.array([-5, -10], np.int32))


@pytest.mark.parametrize("value, dtype", [(3.7, sg.int32), ([1.0, 2.5], sg.int64), (2 ** 40, sg.int32),
                                          (np.array([np.nan]), sg.int64)])
def test_constant_refuses_lossy_integer_conversion(value, dtype):
    with pytest.raises(TypeError, match=f"cannot make a {np.dtype(dtype).name} constant"):
        sg.constant(value, dtype=dtype)


def test_constant_accepts_integral_floats_as_integers():
    c = sg.constant([1.0, -2.0], dtype=sg.int32)
    with sg.Session() as sess:
        np.testing.assert_array_equal(sess.run(c), np.array([1, -2], np.int32))
