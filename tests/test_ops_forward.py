"""Forward semantics of every op of API.md §1-2, checked against NumPy.

Inputs are random (the ``rng`` fixture), of several shapes (0-d, size-1, odd
sizes, broadcasting) and dtypes, and enter the graph as constants, as
placeholders of exact shape, as placeholders with ``None`` dims and as
placeholders of unknown rank. Every expected value is computed here with NumPy.
"""
import numpy as np
import pytest

import staticgraph as sg
from helpers import run, session

MODES = ["const", "exact", "none_dims", "unknown_rank"]
SHAPES = [(), (1,), (7,), (3, 1), (1, 5), (2, 3, 4)]
FLOATS = [np.float32, np.float64]


def check_cases(target, cases, feeds, dtype):
    """Run every ``(tensor, expected)`` case in one session and compare each with NumPy's result."""
    outs = run(target, [t for t, _ in cases], feeds)
    for out, (_, expected) in zip(outs, cases):
        check(out, expected, dtype=dtype)


def rand(rng, shape, dtype, low=-2.0, high=2.0):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(low, high, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(int(low) - 3, int(high) + 4, size=shape).astype(dtype)


def graph_input(arr, mode, feeds):
    """``arr`` as a constant or as a placeholder (recorded in ``feeds``)."""
    arr = np.asarray(arr)
    if mode == "const":
        return sg.constant(arr, dtype=arr.dtype)
    shape = {"exact": arr.shape, "none_dims": (None,) * arr.ndim, "unknown_rank": None}[mode]
    p = sg.placeholder(arr.dtype, shape)
    feeds[p] = arr
    return p


def tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-12)


def check_static_shape(t, actual, mode):
    """Static shape: exact for fully-known inputs, compatible with ``actual`` otherwise."""
    if mode in ("const", "exact"):
        assert t.shape == tuple(actual), (t.name, t.shape, actual)
    elif mode == "unknown_rank":
        assert t.shape is None or len(t.shape) == len(actual)
    else:
        assert t.shape is not None and len(t.shape) == len(actual), (t.shape, actual)
        assert all(s is None or s == a for s, a in zip(t.shape, actual)), (t.shape, actual)


def check(out, expected, dtype=None, **kw):
    expected = np.asarray(expected)
    assert isinstance(out, np.ndarray), type(out)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert out.dtype == (expected.dtype if dtype is None else np.dtype(dtype)), (out.dtype, expected.dtype)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, expected, **(kw or tol(out.dtype)))
    else:
        np.testing.assert_array_equal(out, expected)


# -- unary ----------------------------------------------------------------------------------

def _np_sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


UNARY = {
    # name: (builder, numpy fn, input range, allows ints)
    "negative": (sg.negative, np.negative, (-3, 3), True),
    "exp": (sg.exp, np.exp, (-3, 3), False),
    "log": (sg.log, np.log, (0.1, 5), False),
    "sin": (sg.sin, np.sin, (-4, 4), False),
    "cos": (sg.cos, np.cos, (-4, 4), False),
    "tanh": (sg.tanh, np.tanh, (-4, 4), False),
    "sigmoid": (sg.sigmoid, _np_sigmoid, (-8, 8), False),
    "relu": (sg.relu, lambda x: np.where(x > 0, x, np.zeros_like(x)), (-3, 3), True),
    "sqrt": (sg.sqrt, np.sqrt, (0.0, 5), False),
    "square": (sg.square, lambda x: x * x, (-3, 3), True),
    "abs": (sg.abs, np.abs, (-3, 3), True),
    "identity": (sg.identity, lambda x: x.copy(), (-3, 3), True),
    "stop_gradient": (sg.stop_gradient, lambda x: x.copy(), (-3, 3), True),
}


@pytest.mark.parametrize("dtype", FLOATS + [np.int32, np.int64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, dtype, target, rng):
    builder, fn, (lo, hi), ints = UNARY[name]
    if np.dtype(dtype).kind == "i" and not ints:
        x = sg.constant(np.arange(3, dtype=dtype))
        with pytest.raises(TypeError, match="floating"):
            builder(x)
        return
    feeds, cases = {}, []
    for shape in SHAPES:
        for mode in MODES:
            a = rand(rng, shape, dtype, lo, hi)
            t = builder(graph_input(a, mode, feeds))
            check_static_shape(t, a.shape, mode)
            assert t.dtype == np.dtype(dtype)
            cases.append((t, a, shape, mode))
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a, shape, mode) in zip(outs, cases):
        expected = fn(a)
        try:
            check(out, expected, dtype=dtype)
        except AssertionError as exc:
            raise AssertionError(f"{name} shape={shape} mode={mode}: {exc}") from None


def test_unary_python_scalar_input_is_float32(target):
    out = run(target, [sg.exp(1.0), sg.sqrt(2.0)])
    check(out[0], np.exp(np.float32(1.0)))
    check(out[1], np.sqrt(np.float32(2.0)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_numpy_float_scalar_input_is_float32_unless_dtype_given(dtype, target, rng):
    # API.md §10: float32 and float64 NumPy values enter the graph as float32; dtype= keeps its dtype
    x = dtype(rng.uniform(0.5, 2.0))
    implicit = [sg.exp(x), sg.sqrt(np.asarray(x, dtype))]
    explicit = [sg.exp(sg.constant(x, dtype=dtype)), sg.sqrt(sg.constant(x, dtype=dtype))]
    out = run(target, implicit + explicit)
    check(out[0], np.exp(np.float32(x)), dtype=np.float32)
    check(out[1], np.sqrt(np.float32(x)), dtype=np.float32)
    check(out[2], np.exp(x), dtype=dtype)
    check(out[3], np.sqrt(x), dtype=dtype)


# -- binary elementwise -------------------------------------------------------------------------

BINARY_SHAPES = [((), ()), ((7,), ()), ((), (7,)), ((1,), (7,)), ((7,), (7,)), ((3, 1), (1, 5)),
                 ((1, 5), (3, 1)), ((2, 3, 4), (3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)),
                 ((3, 1), ())]

BINARY = {
    # name: (builder, numpy fn, (a range), (b range), allows ints)
    "add": (sg.add, np.add, (-3, 3), (-3, 3), True),
    "subtract": (sg.subtract, np.subtract, (-3, 3), (-3, 3), True),
    "multiply": (sg.multiply, np.multiply, (-3, 3), (-3, 3), True),
    "divide": (sg.divide, np.divide, (-3, 3), (0.5, 3), False),
    "pow": (sg.pow, np.power, (0.2, 3), (-2, 2), True),
    "maximum": (sg.maximum, np.maximum, (-3, 3), (-3, 3), True),
    "minimum": (sg.minimum, np.minimum, (-3, 3), (-3, 3), True),
}


@pytest.mark.parametrize("dtype", FLOATS + [np.int32, np.int64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, dtype, target, rng):
    builder, fn, ra, rb, ints = BINARY[name]
    is_int = np.dtype(dtype).kind == "i"
    if is_int and not ints:
        a = sg.constant(np.arange(3, dtype=dtype))
        with pytest.raises(TypeError, match="float"):
            builder(a, a)
        return
    if is_int and name == "pow":
        ra, rb = (0, 3), (0, 3)       # integers to negative powers are undefined
    feeds, cases = {}, []
    modes = [("const", "const"), ("exact", "const"), ("none_dims", "exact"), ("none_dims", "none_dims"),
             ("unknown_rank", "none_dims")]
    for sa, sb in BINARY_SHAPES:
        for ma, mb in modes:
            a = rand(rng, sa, dtype, *ra)
            b = rand(rng, sb, dtype, *rb)
            if is_int:
                a = rng.integers(ra[0], ra[1] + 1, size=sa).astype(dtype)
                b = rng.integers(rb[0], rb[1] + 1, size=sb).astype(dtype)
            t = builder(graph_input(a, ma, feeds), graph_input(b, mb, feeds))
            expected_shape = np.broadcast_shapes(sa, sb)
            check_static_shape(t, expected_shape, "unknown_rank" if "unknown_rank" in (ma, mb) else
                               "none_dims" if "none_dims" in (ma, mb) else "exact")
            assert t.dtype == np.dtype(dtype)
            cases.append((t, a, b, ma, mb))
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a, b, ma, mb) in zip(outs, cases):
        try:
            check(out, fn(a, b), dtype=dtype)
        except AssertionError as exc:
            raise AssertionError(f"{name} {a.shape} {b.shape} modes={ma},{mb}: {exc}") from None


COMPARISONS = {
    "less": (sg.less, np.less), "less_equal": (sg.less_equal, np.less_equal),
    "greater": (sg.greater, np.greater), "greater_equal": (sg.greater_equal, np.greater_equal),
    "equal": (sg.equal, np.equal), "not_equal": (sg.not_equal, np.not_equal),
}


@pytest.mark.parametrize("dtype", FLOATS + [np.int64, np.int32])
@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparison(name, dtype, target, rng):
    builder, fn = COMPARISONS[name]
    feeds, cases = {}, []
    for sa, sb in BINARY_SHAPES:
        for ma, mb in [("const", "exact"), ("none_dims", "none_dims")]:
            # small integer-valued data so that ties (and so equal/<=) actually occur
            a = rng.integers(-2, 3, size=sa).astype(dtype)
            b = rng.integers(-2, 3, size=sb).astype(dtype)
            t = builder(graph_input(a, ma, feeds), graph_input(b, mb, feeds))
            assert t.dtype == sg.bool_
            cases.append((t, a, b))
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a, b) in zip(outs, cases):
        check(out, fn(a, b), dtype=np.bool_)


def test_comparison_of_bool_tensors(target):
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    out = run(target, [sg.equal(a, b), sg.not_equal(a, b)])
    check(out[0], a == b)
    check(out[1], a != b)


# -- matmul ----------------------------------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((1, 1), (1, 1)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((3,), (5, 3, 4)),
                 ((5, 2, 3), (3,)), ((1, 2, 3), (6, 3, 1)), ((7, 7), (7, 7))]


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
@pytest.mark.parametrize("mode", ["const", "exact", "none_dims", "unknown_rank"])
def test_matmul(mode, dtype, target, rng):
    feeds, cases = {}, []
    for sa, sb in MATMUL_SHAPES:
        a, b = rand(rng, sa, dtype), rand(rng, sb, dtype)
        ta, tb = graph_input(a, mode, feeds), graph_input(b, "const" if mode == "const" else "exact", feeds)
        for t in (sg.matmul(ta, tb), ta @ tb):
            check_static_shape(t, np.matmul(a, b).shape, mode)
            cases.append((t, a, b))
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a, b) in zip(outs, cases):
        try:
            check(out, np.matmul(a, b), dtype=dtype, **({} if dtype != np.float32 else dict(rtol=1e-5, atol=1e-5)))
        except AssertionError as exc:
            raise AssertionError(f"matmul {a.shape} @ {b.shape}: {exc}") from None


def test_matmul_with_arrays_and_rmatmul(target, rng):
    a = rand(rng, (4, 3), np.float32)
    b = rand(rng, (3, 2), np.float32)
    ta = sg.placeholder(sg.float32, (None, 3))
    out = run(target, [ta @ b, b.T @ sg.transpose(ta), sg.matmul(a, b)], {ta: a})
    check(out[0], a @ b, rtol=1e-5, atol=1e-5)
    check(out[1], b.T @ a.T, rtol=1e-5, atol=1e-5)
    check(out[2], a @ b, rtol=1e-5, atol=1e-5)


def test_dot(target, rng):
    for n in (1, 7):
        a, b = rand(rng, (n,), np.float64), rand(rng, (n,), np.float64)
        ta = sg.placeholder(sg.float64, (None,))
        t = ta.dot(b)
        assert t.shape == ()
        out = run(target, [t, sg.dot(a, b)], {ta: a})
        check(out[0], np.dot(a, b))
        # float64 arrays entering the graph on their own become float32 (API.md §10)
        check(out[1], np.dot(a.astype(np.float32), b.astype(np.float32)), rtol=1e-5, atol=1e-6)


# -- reductions --------------------------------------------------------------------------------------

REDUCE_CASES = [((), [None, (), 0, -1]), ((1,), [None, 0, -1, (0,)]), ((7,), [None, 0, -1]),
                ((3, 1), [None, 0, 1, -1, (0, 1)]), ((2, 3, 4), [None, 0, 1, 2, -1, -2, (0, 2), (2, 0),
                                                                   (-1, 0), (0, 1, 2), ()])]

REDUCTIONS = {
    "reduce_sum": (sg.reduce_sum, np.sum, "sum"),
    "reduce_mean": (sg.reduce_mean, np.mean, "mean"),
    "reduce_max": (sg.reduce_max, np.max, "max"),
}


@pytest.mark.parametrize("dtype", FLOATS + [np.int64, np.int32])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name, dtype, target, rng):
    builder, fn, method = REDUCTIONS[name]
    feeds, cases = {}, []
    for shape, axes in REDUCE_CASES:
        for axis in axes:
            if shape == () and axis in (0, -1):
                continue   # rank-0 tensors only accept axis None / ()
            for keepdims in (False, True):
                for mode in ("const", "none_dims", "unknown_rank"):
                    if mode == "unknown_rank" and isinstance(axis, int) and axis < 0 or \
                            mode == "unknown_rank" and isinstance(axis, tuple) and any(a < 0 for a in axis):
                        continue   # negative axes need a known rank
                    a = rand(rng, shape, dtype, -5, 5)
                    x = graph_input(a, mode, feeds)
                    t1 = builder(x, axis=axis, keepdims=keepdims)
                    t2 = getattr(x, method)(axis, keepdims=keepdims)
                    expected = np.asarray(fn(a, axis=axis, keepdims=keepdims))
                    if mode != "unknown_rank" or axis is None and not keepdims:
                        check_static_shape(t1, expected.shape, "exact" if mode == "const" else "none_dims")
                    assert t1.dtype == np.dtype(dtype) and t2.dtype == np.dtype(dtype)
                    cases.append((t1, a, axis, keepdims, expected))
                    cases.append((t2, a, axis, keepdims, expected))
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a, axis, keepdims, expected) in zip(outs, cases):
        if np.dtype(dtype).kind == "i":
            expected = expected.astype(dtype)   # reductions keep the input dtype (API.md §10)
            if name == "reduce_mean":
                # an integer mean is the float mean truncated or floored; accept either rounding
                ref = np.asarray(np.mean(a.astype(np.float64), axis=axis, keepdims=keepdims))
                assert out.dtype == np.dtype(dtype) and out.shape == ref.shape
                assert np.all((out == np.trunc(ref)) | (out == np.floor(ref))), (out, ref)
                continue
        try:
            check(out, expected, dtype=dtype, **({} if dtype != np.float32 else dict(rtol=1e-5, atol=1e-5)))
        except AssertionError as exc:
            raise AssertionError(f"{name} {a.shape} axis={axis} keepdims={keepdims}: {exc}") from None


def test_reduction_with_none_batch_runs_several_batch_sizes(target, rng):
    x = sg.placeholder(sg.float32, (None, 3))
    s, m = sg.reduce_sum(x, axis=0), sg.reduce_mean(x, axis=1, keepdims=True)
    assert s.shape == (3,) and m.shape == (None, 1)
    with session(target) as sess:
        for n in (1, 2, 9):
            a = rand(rng, (n, 3), np.float32)
            out = sess.run([s, m], {x: a})
            check(out[0], a.sum(axis=0), rtol=1e-5, atol=1e-5)
            check(out[1], a.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_argmax(dtype, target, rng):
    feeds, cases = {}, []
    for shape, axes in [((7,), [None, 0, -1]), ((1,), [0]), ((2, 3, 4), [None, 0, 1, 2, -1, -3]),
                        ((3, 1), [0, 1])]:
        for axis in axes:
            for mode in ("const", "none_dims"):
                # distinct values so that the argmax is unique
                a = rng.permutation(int(np.prod(shape))).reshape(shape).astype(dtype)
                t = sg.argmax(graph_input(a, mode, feeds), axis)
                expected = np.argmax(a, axis=axis)
                assert t.dtype == sg.int64
                check_static_shape(t, np.shape(expected), "exact" if mode == "const" else "none_dims")
                cases.append((t, expected))
    check_cases(target, cases, feeds, dtype=np.int64)


@pytest.mark.parametrize("dtype", FLOATS)
def test_norm(dtype, target, rng):
    feeds, cases = {}, []
    for shape in SHAPES:
        a = rand(rng, shape, dtype)
        x = graph_input(a, "none_dims", feeds)
        cases += [(sg.norm(x), a), (x.norm(), a)]
    outs = run(target, [c[0] for c in cases], feeds)
    for out, (t, a) in zip(outs, cases):
        assert t.shape == ()
        check(out, np.linalg.norm(a.ravel()).astype(dtype), dtype=dtype,
              **(dict(rtol=1e-5) if dtype == np.float32 else {}))


# -- shape ops ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_reshape(dtype, target, rng):
    feeds, cases = {}, []
    a = rand(rng, (2, 3, 4), dtype)
    for shape in [(6, 4), (-1,), (24,), (4, -1), (2, -1, 2), (1, 24), (24, 1, 1), (-1, 1)]:
        for mode in ("const", "exact", "unknown_rank"):
            x = graph_input(a, mode, feeds)
            for t in (sg.reshape(x, shape), x.reshape(*shape), x.view(shape)):
                expected = a.reshape(shape)
                if mode != "unknown_rank":
                    assert t.shape == expected.shape
                else:
                    assert len(t.shape) == len(shape)
                    assert all(s == e for s, e, d in zip(t.shape, expected.shape, shape) if d != -1)
                cases.append((t, expected))
    s = rand(rng, (), dtype)
    for shape in [(1,), (-1,), (1, 1), ()]:
        cases.append((sg.reshape(graph_input(s, "exact", feeds), shape), s.reshape(shape)))
    check_cases(target, cases, feeds, dtype=dtype)


def test_reshape_with_none_batch(target, rng):
    x = sg.placeholder(sg.float32, (None, 3, 4))
    flat = x.reshape(-1, 12)
    back = sg.reshape(flat, (-1, 3, 4))
    col = x.view(-1)
    assert flat.shape == (None, 12)
    assert back.shape == (None, 3, 4)
    assert col.shape == (None,)
    with session(target) as sess:
        for n in (1, 2, 5):
            a = rand(rng, (n, 3, 4), np.float32)
            out = sess.run([flat, back, col], {x: a})
            check(out[0], a.reshape(-1, 12))
            check(out[1], a)
            check(out[2], a.ravel())


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_transpose(dtype, target, rng):
    feeds, cases = {}, []
    for shape, perms in [((), [None, ()]), ((7,), [None, (0,), (-1,)]), ((3, 1), [None, (1, 0), (0, 1)]),
                         ((2, 3, 4), [None, (1, 0, 2), (2, 0, 1), (0, 1, 2), (-1, 0, 1), (2, 1, 0)])]:
        a = rand(rng, shape, dtype)
        for mode in ("const", "none_dims"):
            x = graph_input(a, mode, feeds)
            for perm in perms:
                expected = np.transpose(a, perm)
                t = sg.transpose(x, perm)
                t2 = x.transpose() if perm is None else x.transpose(*perm)
                t3 = sg.transpose(x, perm=perm)
                for tt in (t, t2, t3):
                    check_static_shape(tt, expected.shape, "exact" if mode == "const" else "none_dims")
                    cases.append((tt, expected))
        if len(shape) == 3:
            x = graph_input(a, "exact", feeds)
            cases.append((x.transpose((2, 0, 1)), np.transpose(a, (2, 0, 1))))
    m = rand(rng, (2, 5), dtype)
    x = graph_input(m, "exact", feeds)
    assert x.t().shape == (5, 2)
    cases.append((x.t(), m.T))
    check_cases(target, cases, feeds, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_concat(dtype, target, rng):
    feeds, cases = {}, []
    for shapes, axis in [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 5)], 1), ([(2, 3), (2, 1)], -1),
                         ([(7,)], 0), ([(1,), (7,), (3,)], -1), ([(2, 3, 4), (2, 1, 4)], 1),
                         ([(2, 3, 4), (2, 3, 4)], -3)]:
        arrays = [rand(rng, s, dtype) for s in shapes]
        expected = np.concatenate(arrays, axis=axis)
        for mode in ("const", "exact", "none_dims"):
            t = sg.concat([graph_input(a, mode, feeds) for a in arrays], axis)
            check_static_shape(t, expected.shape, "exact" if mode != "none_dims" else "none_dims")
            cases.append((t, expected))
    x = sg.placeholder(dtype, (None, 3))
    a = rand(rng, (4, 3), dtype)
    c = sg.concat([x, x], axis=1)
    assert c.shape == (None, 6)
    cases.append((c, np.concatenate([a, a], axis=1)))
    feeds[x] = a
    check_cases(target, cases, feeds, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_stack(dtype, target, rng):
    feeds, cases = {}, []
    for shape, n, axis in [((), 3, 0), ((), 1, -1), ((7,), 2, 0), ((7,), 2, 1), ((7,), 3, -1),
                           ((2, 3), 2, 1), ((2, 3), 4, -2), ((2, 3), 1, 2), ((2, 3), 3, -3)]:
        arrays = [rand(rng, shape, dtype) for _ in range(n)]
        expected = np.stack(arrays, axis=axis)
        for mode in ("const", "none_dims"):
            t = sg.stack([graph_input(a, mode, feeds) for a in arrays], axis=axis)
            check_static_shape(t, expected.shape, "exact" if mode == "const" else "none_dims")
            cases.append((t, expected))
        if axis == 0:
            t = sg.stack([graph_input(a, "exact", feeds) for a in arrays])
            cases.append((t, expected))
    check_cases(target, cases, feeds, dtype=dtype)


@pytest.mark.parametrize("src, dst", [(np.float32, np.int32), (np.float32, np.int64), (np.float32, np.float64),
                                      (np.float64, np.float32), (np.int64, np.float32), (np.int32, np.int64),
                                      (np.bool_, np.float32), (np.float32, np.bool_), (np.int64, np.bool_),
                                      (np.float32, np.float32)])
def test_cast(src, dst, target, rng):
    feeds, cases = {}, []
    for shape in SHAPES:
        a = rand(rng, shape, src, -3, 3)
        if np.dtype(src).kind == "f":
            a[...] = np.where(rng.random(shape) < 0.2, 0, a)   # exact zeros for casts to bool
        for mode in ("const", "none_dims"):
            x = graph_input(a, mode, feeds)
            for t in (sg.cast(x, dst), sg.cast(x, np.dtype(dst).name), x.cast(dst)):
                assert t.dtype == np.dtype(dst)
                check_static_shape(t, a.shape, "exact" if mode == "const" else "none_dims")
                cases.append((t, a.astype(dst)))
    check_cases(target, cases, feeds, dtype=dst)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_one_hot(dtype, target, rng):
    feeds, cases = {}, []
    for shape in [(), (1,), (7,), (2, 3)]:
        for depth in (1, 4, 5):
            # includes negative and >= depth indices, which must give all-zero rows
            idx = rng.integers(-2, depth + 2, size=shape).astype(dtype)
            for mode in ("const", "none_dims"):
                t = sg.one_hot(graph_input(idx, mode, feeds), depth)
                assert t.dtype == sg.float32
                check_static_shape(t, shape + (depth,), "exact" if mode == "const" else "none_dims")
                in_range = (idx >= 0) & (idx < depth)
                expected = np.eye(depth, dtype=np.float32)[np.clip(idx, 0, depth - 1)] * in_range[..., None]
                cases.append((t, expected))
    check_cases(target, cases, feeds, dtype=np.float32)


def test_one_hot_out_of_range_gives_zeros(target):
    t = sg.one_hot(sg.constant([0, 3, -1, 7, 2]), 3)
    out = run(target, t)
    check(out, np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32))


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_where(dtype, target, rng):
    feeds, cases = {}, []
    for sc, sa, sb in [((), (), ()), ((7,), (7,), (7,)), ((7,), (), (7,)), ((3, 1), (1, 5), ()),
                       ((2, 3, 4), (3, 4), (4,)), ((1,), (7,), (1,)), ((2, 1, 4), (3, 1), (2, 3, 4))]:
        c = rng.random(sc) < 0.5
        a, b = rand(rng, sa, dtype), rand(rng, sb, dtype)
        expected = np.where(c, a, b)
        for mode in ("const", "none_dims"):
            t = sg.where(graph_input(c, mode, feeds), graph_input(a, mode, feeds), graph_input(b, "exact", feeds))
            check_static_shape(t, expected.shape, "exact" if mode == "const" else "none_dims")
            assert t.dtype == np.dtype(dtype)
            cases.append((t, expected))
    x = rand(rng, (3, 4), dtype)
    tx = graph_input(x, "exact", feeds)
    cases.append((sg.where(tx > 0, tx, 0), np.where(x > 0, x, 0).astype(dtype)))
    cases.append((sg.where(tx > 0, 1, tx), np.where(x > 0, 1, x).astype(dtype)))
    check_cases(target, cases, feeds, dtype=dtype)


def test_where_scalar_branches_are_float32(target, rng):
    c = rng.random(6) < 0.5
    t = sg.where(c, 1.0, -1.0)
    assert t.dtype == sg.float32
    check(run(target, t), np.where(c, 1.0, -1.0).astype(np.float32))


# -- fills and random ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), 3, (1,), (7,), (2, 3), (2, 1, 4), [2, 2]])
def test_zeros_ones(shape, target):
    fetch = {
        "z": sg.zeros(shape), "o": sg.ones(shape),
        "z64": sg.zeros(shape, dtype=sg.float64), "oi": sg.ones(shape, dtype=sg.int64),
        "zi": sg.zeros(shape, "int32"), "ob": sg.ones(shape, np.bool_),
    }
    np_shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for t in fetch.values():
        assert t.shape == np_shape
    out = run(target, fetch)
    check(out["z"], np.zeros(np_shape, np.float32))
    check(out["o"], np.ones(np_shape, np.float32))
    check(out["z64"], np.zeros(np_shape, np.float64))
    check(out["oi"], np.ones(np_shape, np.int64))
    check(out["zi"], np.zeros(np_shape, np.int32))
    check(out["ob"], np.ones(np_shape, np.bool_))


@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_zeros_like_ones_like(dtype, target, rng):
    x = sg.placeholder(dtype, (None, 3))
    z, o = sg.zeros_like(x), sg.ones_like(x)
    zf, oi = sg.zeros_like(x, dtype=sg.float64), sg.ones_like(x, dtype="int32")
    assert z.shape == (None, 3) and z.dtype == np.dtype(dtype) and o.dtype == np.dtype(dtype)
    assert zf.dtype == sg.float64 and oi.dtype == sg.int32
    with session(target) as sess:
        for n in (1, 4):
            a = rand(rng, (n, 3), dtype)
            out = sess.run([z, o, zf, oi], {x: a})
            check(out[0], np.zeros_like(a))
            check(out[1], np.ones_like(a))
            check(out[2], np.zeros(a.shape, np.float64))
            check(out[3], np.ones(a.shape, np.int32))
    c = sg.constant(rand(rng, (2, 1, 4), dtype), dtype=dtype)
    check(run(target, sg.ones_like(c)), np.ones((2, 1, 4), dtype))


@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_random_seeded_is_reproducible_across_sessions(kind, target):
    fn = sg.random_normal if kind == "normal" else sg.random_uniform
    r = fn((4, 5), seed=1234)
    assert r.shape == (4, 5) and r.dtype == sg.float32
    with session(target) as s1:
        a1, a2 = s1.run(r), s1.run(r)
    with session(target) as s2:
        b1, b2 = s2.run(r), s2.run(r)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2), "a random op must draw fresh values every run"
    assert a1.dtype == np.float32 and a1.shape == (4, 5)


@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_random_unseeded_differs_across_sessions(kind, target):
    fn = sg.random_normal if kind == "normal" else sg.random_uniform
    r = fn((50,))
    with session(target) as s1, session(target) as s2:
        assert not np.array_equal(s1.run(r), s2.run(r))


@pytest.mark.parametrize("dtype", FLOATS)
def test_random_normal_statistics(dtype, target):
    r = sg.random_normal((200, 100), mean=3.0, stddev=2.0, dtype=dtype, seed=7)
    s = sg.random_normal((20000,), seed=8)
    assert r.dtype == np.dtype(dtype)
    out, std = run(target, [r, s])
    assert out.dtype == np.dtype(dtype) and out.shape == (200, 100)
    assert abs(out.mean() - 3.0) < 0.1
    assert abs(out.std() - 2.0) < 0.1
    assert abs(std.mean()) < 0.05 and abs(std.std() - 1.0) < 0.05


@pytest.mark.parametrize("dtype", FLOATS)
def test_random_uniform_statistics(dtype, target):
    r = sg.random_uniform((20000,), minval=-1.0, maxval=3.0, dtype=dtype, seed=5)
    d = sg.random_uniform((20000,), seed=6)
    out, dflt = run(target, [r, d])
    assert out.dtype == np.dtype(dtype)
    assert out.min() >= -1.0 and out.max() < 3.0
    assert abs(out.mean() - 1.0) < 0.05
    assert abs(out.var() - 16.0 / 12.0) < 0.05
    assert dflt.min() >= 0.0 and dflt.max() < 1.0 and abs(dflt.mean() - 0.5) < 0.02
    # all four quarters of the range are hit about equally
    counts = np.histogram(out, bins=4, range=(-1, 3))[0]
    assert counts.min() > 4500


def test_random_feeds_variable_initial_value(target):
    v = sg.Variable(sg.random_normal((3, 2), seed=11), name="w")
    assert v.shape == (3, 2) and v.dtype == sg.float32
    with session(target) as s1:
        s1.run(sg.global_variables_initializer())
        a, a_again = s1.run(v), s1.run(v)
    with session(target) as s2:
        s2.run(v.initializer)
        b = s2.run(v)
    np.testing.assert_array_equal(a, a_again)   # a variable holds its value between runs
    np.testing.assert_array_equal(a, b)
    assert np.std(a) > 0


# -- maximum / minimum with mixed scalars ---------------------------------------------------------

def test_maximum_minimum_with_scalars(target, rng):
    a = rand(rng, (3, 4), np.float64)
    x = sg.constant(a, dtype=sg.float64)
    out = run(target, [sg.maximum(x, 0.5), sg.minimum(-0.25, x), sg.maximum(x, a[::-1].copy())])
    check(out[0], np.maximum(a, 0.5))
    check(out[1], np.minimum(-0.25, a))
    check(out[2], np.maximum(a, a[::-1]))


def test_expand_dims(target, rng):
    a = rand(rng, (2, 3), np.float32)
    x = sg.placeholder(sg.float32, (None, 3))
    cases = [(sg.expand_dims(x, 0), np.expand_dims(a, 0)), (sg.expand_dims(x, -1), np.expand_dims(a, -1)),
             (sg.expand_dims(x, (0, 2)), np.expand_dims(a, (0, 2)))]
    outs = run(target, [c[0] for c in cases], {x: a})
    for out, (t, expected) in zip(outs, cases):
        check_static_shape(t, expected.shape, "none_dims")
        check(out, expected)


def test_fill_shapes_accept_numpy_ints(target):
    z = sg.zeros(np.int64(3))
    o = sg.ones((np.int32(2), np.int64(1)), dtype=sg.int64)
    r = sg.random_uniform(np.int64(4), seed=0)
    assert z.shape == (3,) and o.shape == (2, 1) and r.shape == (4,)
    out = run(target, [z, o, r])
    check(out[0], np.zeros(3, np.float32))
    check(out[1], np.ones((2, 1), np.int64))
    assert out[2].shape == (4,)
