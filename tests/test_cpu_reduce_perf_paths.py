"""The cpu reduction kernels' fast paths (``kernels/reduce.py``): contiguous runs summed vectorized in
float64, leading rows summed into a row, nothing to reduce (a copy, or nothing when the plan runs a
``SumToLike`` in place), against float64 NumPy and the reference backend, with NaN and inf; each case
also checks (``kernels.sum_path`` on the plan's record) that it takes the path it is meant to test."""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # inf - inf in NumPy

import staticgraph as sg
from compiler.backends.cpu import threads
from compiler.backends.cpu.lowerings import DOT_SUM, sum_path
from staticgraph.ops.reduce import sum_to_like
from helpers import run_cpu_and_reference, train_on_cpu_and_reference


def _plan_records(plan, kernel_prefix):
    lay = next(iter(plan._exe.tier.layouts.values()))
    return [(c, [int(v) for v in lay.M[c.pos:c.pos + c.size]]) for c in plan._exe.tier.prog.all_calls
            if c.kernel.startswith(kernel_prefix)]


def _values(rng, shape, dtype, specials: bool):
    """Normal values (small integers for integer dtypes); ``specials``: a few NaN, +inf and -inf."""
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-1000, 1000, shape).astype(dtype)
    x = (rng.normal(size=shape) * 3).astype(dtype)
    if specials and x.size >= 6:
        flat = x.reshape(-1)
        picks = rng.choice(flat.size, 6, replace=False)
        flat[picks[:2]] = np.nan
        flat[picks[2:4]] = np.inf
        flat[picks[4:]] = -np.inf
    return x


def _check_sum(got, x, axes, dtype, mean=False):
    """``got`` against the float64 sum (or mean) of ``x``: NaN and inf exactly, finite values to a
    tolerance scaled by the sum of magnitudes (the kernels accumulate in float64)."""
    exact = (np.mean if mean else np.sum)(x.astype(np.float64), axis=axes)
    assert got.shape == exact.shape and got.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, exact.astype(np.int64).astype(dtype))
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exact))
    inf = np.isinf(exact)
    np.testing.assert_array_equal(got[inf], exact[inf])
    scale = (np.mean if mean else np.sum)(np.abs(np.where(np.isfinite(x), x, 0).astype(np.float64)), axis=axes)
    eps = 1e-6 if np.dtype(dtype) == np.float32 else 1e-13
    fin = np.isfinite(exact)
    assert np.all(np.abs(got[fin] - exact[fin]) <= eps * (scale[fin] + 1))


SUM_CASES = [  # (shape, axes, the path of red_Sum*): odd sizes, run lengths around vector widths
    ((37, 29), None, "runs"),                   # the whole tensor: one run
    ((5, 6, 7, 3), (0, 2, 3), "runs"),          # a conv bias gradient: runs of 21 per (n, c)
    ((9, 13), (1,), "runs"), ((3, 1031), (1,), "runs"), ((2, 3, 5), (0, 2), "runs"),
    ((11, 7), (0,), "rows"), ((4, 3, 10), (0, 1), "rows"),
    ((4, 5, 6), (1,), "strided"), ((3, 4, 5), (0, 1), "rows"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape,axes,path", SUM_CASES)
def test_reduce_sum_paths_match_numpy(shape, axes, path, dtype, rng):
    specials = rng.random() < 0.5
    xv = _values(rng, shape, dtype, specials)
    x = sg.placeholder(dtype, (None,) + shape[1:])
    y = sg.reduce_sum(x, axes)
    with sg.Session() as sess:
        plan = sess.compile(y, [x])
        got = plan(xv)
        [(_, rec)] = _plan_records(plan, "red_Sum")
        assert sum_path(rec) == path
    _check_sum(got, xv, axes, dtype)
    with sg.Session(target="reference") as ref:
        want = ref.run(y, {x: xv})
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, want)
    else:
        scale = np.sum(np.abs(np.where(np.isfinite(xv), xv, 0)), axis=axes, dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.max(scale) + 1), equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axes", [((37, 29), None), ((5, 6, 7, 3), (0, 2, 3)), ((4, 5, 6), (1,)),
                                        ((11, 7), (0,))])
def test_reduce_mean_over_runs_and_strides_matches_numpy(shape, axes, dtype, rng):
    xv = _values(rng, shape, dtype, rng.random() < 0.5)
    x = sg.placeholder(dtype, (None,) + shape[1:])
    got = sg.Session().run(sg.reduce_mean(x, axes), {x: xv})
    _check_sum(got, xv, axes, dtype, mean=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_reductions_over_size_one_axes_copy_their_input(dtype, rng):
    """Every reduced axis of size 1 (unknown when the graph is built): sum, mean and max copy, argmax is 0."""
    shape = (3, 1, int(rng.integers(5, 40)))
    xv = _values(rng, shape, dtype, np.dtype(dtype).kind == "f")
    x = sg.placeholder(dtype, (None, None, None))
    fetches = [sg.reduce_sum(x, 1), sg.reduce_max(x, 1), sg.argmax(x, 1)]
    if np.dtype(dtype).kind == "f":
        fetches.append(sg.reduce_mean(x, 1))
    with sg.Session() as sess:
        plan = sess.compile(fetches, [x])
        got = plan(xv)
        [(_, rec)] = _plan_records(plan, "red_Sum")
        assert sum_path(rec) == "copy"
    np.testing.assert_array_equal(got[0], xv[:, 0])
    np.testing.assert_array_equal(got[1], xv[:, 0])
    np.testing.assert_array_equal(got[2], np.zeros((3, shape[2]), np.int64))
    if len(got) > 3:
        np.testing.assert_array_equal(got[3], xv[:, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("read_after", [False, True])
def test_sum_to_like_with_nothing_to_reduce_copies_or_runs_in_place(read_after, dtype, rng):
    """A SumToLike whose operands have the same run-time shape (a None batch): when its input is dead
    afterwards the plan puts the output on the input's buffer and the kernel does nothing; when the input
    is read later, the kernel copies it (the later reader sees it unchanged)."""
    x = sg.placeholder(dtype, (None, 4, 5))
    like = sg.placeholder(dtype, (None, 4, 5))      # another tensor: the passes cannot tell the shapes match
    z = x * 3
    y = sum_to_like(z, like)
    out = y * z if read_after else y + 1
    shape = (int(rng.integers(2, 7)), 4, 5)
    xv = _values(rng, shape, dtype, np.dtype(dtype).kind == "f")
    with sg.Session() as sess:
        plan = sess.compile(out, [x, like])
        got = plan(xv, np.zeros(shape, dtype))
        [(_, rec)] = _plan_records(plan, "red_Sum")
        assert sum_path(rec) == "copy"
        lay = next(iter(plan._exe.tier.layouts.values()))
        assert any(getattr(o, "name", None) == y.name for o, _ in lay.arena.inplace) != read_after
    want = xv * dtype(3)
    np.testing.assert_array_equal(got, want * want if read_after else want + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_to_like_bias_gradients_take_the_fast_paths(dtype, rng):
    """Bias gradients of a conv-like (N, C, H, W) + (C, 1, 1) and a linear (N, K) + (K,) add."""
    a = sg.placeholder(dtype, (None, 3, 5, 7))
    b = sg.placeholder(dtype, (None, 9))
    conv_bias = sg.placeholder(dtype, (3, 1, 1))
    lin_bias = sg.placeholder(dtype, (9,))
    ys = [sum_to_like(a, conv_bias), sum_to_like(b, lin_bias)]
    av = _values(rng, (6, 3, 5, 7), dtype, rng.random() < 0.5)
    bv = _values(rng, (11, 9), dtype, rng.random() < 0.5)
    feeds = {a: av, b: bv, conv_bias: np.zeros((3, 1, 1), dtype), lin_bias: np.zeros(9, dtype)}
    with sg.Session() as sess:
        plan = sess.compile(ys, [a, b, conv_bias, lin_bias])
        got = plan(av, bv, feeds[conv_bias], feeds[lin_bias])
        assert sorted(sum_path(rec) for _, rec in _plan_records(plan, "red_Sum")) == ["rows", "runs"]
    _check_sum(got[0].reshape(3), av, (0, 2, 3), dtype)
    _check_sum(got[1], bv, (0,), dtype)
    cpu, ref = run_cpu_and_reference(ys, feeds)
    for c, r in zip(cpu, ref):
        np.testing.assert_allclose(c, r, rtol=1e-5, atol=1e-4, equal_nan=True)


# -- ReduceSum(Mul(a, b)): one red_Dot pass (kernels.fuse_sum_of_products) ----------------------

@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (37, 41), (3, 200, 300)])
def test_sum_of_a_product_runs_as_one_dot_pass(shape, dtype, workers, rng, monkeypatch):
    """sum(a * a) (a of a None batch dim) and sum(a * b) (one static shape) are red_Dot calls, no
    product in memory; below and above ``DOT_SHARE`` products (one run, or bands over 1-3 workers
    whose float64 partial sums add in order); NaN and inf propagate as through the product."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    a, b = _values(rng, shape, dtype, True), _values(rng, shape, dtype, False)
    A = sg.placeholder(dtype, (None,) + shape[1:])
    B, C = sg.placeholder(dtype, shape), sg.placeholder(dtype, shape)
    sq, dot = sg.reduce_sum(A * A), sg.reduce_sum(C * B)
    with sg.Session() as sess:
        plan = sess.compile([sq, dot], [A, B, C])
        got = plan(a, b, a)
    kernels = [c.kernel for c in plan._exe.tier.prog.calls]
    assert kernels == 2 * (["dot_parts"] * threads.shares() + ["dot_total"]), kernels
    threads_ = {rec[DOT_SUM.at.workers] for _, rec in _plan_records(plan, "dot_total")}
    assert threads_ == {workers if a.size >= 1 << 16 else 1}
    for value, x in zip(got, (a.astype(np.float64) * a, a.astype(np.float64) * b)):
        _check_sum(value, (x.astype(dtype)), None, dtype)      # products rounded to dtype, summed in float64


def test_products_read_elsewhere_or_broadcast_are_not_fused(rng):
    """The product fetched, read by another op, broadcast, summed over some axes only, or of two
    tensors whose shapes are only known at run time: the Mul and the sum stay two calls."""
    a = rng.normal(size=(4, 5))
    A, B = sg.placeholder(sg.float64, (4, 5)), sg.placeholder(sg.float64, (None, 5))
    cases = []
    p = A * A
    cases.append(([sg.reduce_sum(p), p], "fetched"))
    p = A * A
    cases.append(([sg.reduce_sum(p), sg.reduce_sum(sg.exp(p))], "read again"))
    cases.append(([sg.reduce_sum(A * sg.constant(rng.normal(size=5), dtype=sg.float64))], "broadcast"))
    cases.append(([sg.reduce_sum(A * A, axis=1)], "some axes"))
    cases.append(([sg.reduce_sum(B * B[::-1])], "run-time shapes"))
    for fetches, why in cases:
        with sg.Session() as sess:
            plan = sess.compile(fetches, [A, B])
            got = plan(a, a)
        kernels = [c.kernel for c in plan._exe.tier.prog.calls]
        assert "ew_Mul" in kernels and "dot_parts" not in kernels, (why, kernels)
        with sg.Session(target="reference") as ref:
            want = ref.run(fetches, {A: a, B: a})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)


def test_squared_error_training_step_matches_the_reference(rng):
    """A linear model with loss sum((x @ w - y)^2): its sum is a red_Dot; the loss, the gradient
    and two SGD steps match the reference backend."""
    x, y = rng.normal(size=(64, 8)), rng.normal(size=(64, 3))
    X, Y = sg.placeholder(sg.float64, (None, 8)), sg.placeholder(sg.float64, (None, 3))
    w = sg.Variable(np.zeros((8, 3)), dtype=sg.float64)
    err = X @ w - Y
    loss = sg.reduce_sum(err * err)
    train = sg.train.GradientDescentOptimizer(1e-3).minimize(loss)
    (grad,) = sg.gradients(loss, [w])
    init = [rng.normal(size=(8, 3))]
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        assert "dot_total" in [c.kernel for c in sess.compile([train, loss], [X, Y])._exe.tier.prog.calls]
    cpu, ref = train_on_cpu_and_reference([w], init, [loss, grad], train, {X: x, Y: y})
    for got, want in zip(cpu, ref):
        for g, v in zip(got, want):
            np.testing.assert_allclose(g, v, rtol=1e-10, atol=1e-10)
