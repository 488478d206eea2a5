"""The cpu kernels of the pool family (MaxPool, MaxPoolGrad, MaxPoolGather, AvgPool, AvgPoolGrad) against
the reference backend and the naive PyTorch-following loops of test_nn_pool.py: 1-3 spatial axes over
grids of window parameters, values and indices, the backward ops (first and second order), float32 /
float64 / integers, ties, NaN, windows with no input element, unbatched inputs, a None batch at two sizes
in one plan, the natively compiled step, and the errors."""
import itertools
import math

import numpy as np
import pytest

import staticgraph as sg
from helpers import run_cpu_and_reference
from compiler.backends.cpu import nn_pool
from compiler.backends.cpu.executable import STATS
from staticgraph.ops.pool import max_pool_gather, max_pool_grad

from test_nn_pool import naive_avg_pool, naive_max_pool, tie_heavy, valid_config, window_params

F = sg.nn.functional
MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
SHAPES = {1: (2, 3, 9), 2: (2, 3, 7, 6), 3: (1, 2, 5, 6, 4)}


def assert_close(cpu, ref, dtype):
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(cpu, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype.kind in "iu":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, **tol)


def configs(nd, seed, count):
    """``count`` valid window configurations of ``nd`` axes drawn from a grid."""
    grid = list(itertools.product([1, 2, 3], [None, 1, 2], [0, 1], [1, 2], [False, True]))
    picked = np.random.default_rng(seed).permutation(len(grid))
    out = []
    for i in picked:
        kernel, stride, padding, dilation, ceil_mode = grid[i]
        k, s, p, d = window_params(nd, kernel, stride, padding, dilation)
        if valid_config(SHAPES[nd][-nd:], k, s, p, d, ceil_mode):
            out.append((kernel, stride, padding, dilation, ceil_mode))
        if len(out) == count:
            return out
    return out


CASES = [(nd, dtype, cfg) for nd in (1, 2, 3) for dtype in (np.float32, np.float64)
         for cfg in configs(nd, 7 * nd + (dtype == np.float64), 5)]


@pytest.mark.parametrize("nd,dtype,cfg", CASES)
def test_max_pool_forward_and_backward_match_the_reference(nd, dtype, cfg, rng):
    kernel, stride, padding, dilation, ceil_mode = cfg
    shape = SHAPES[nd]
    x = sg.placeholder(dtype, (None,) + shape[1:], name="x")
    v, i = MAX[nd](x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    w = sg.placeholder(dtype, None, name="w")
    gx = sg.gradients(sg.reduce_sum(v * w), [x])[0]                       # MaxPoolGrad
    ggw = sg.gradients(sg.reduce_sum(gx * gx), [w])[0]                     # MaxPoolGather
    xv = tie_heavy(rng, shape, dtype) if rng.random() < 0.5 else rng.normal(size=shape).astype(dtype)
    k, s, p, d = window_params(nd, kernel, stride, padding, dilation)
    want_v, want_i = naive_max_pool(xv, k, s, p, d, ceil_mode)
    wv = rng.normal(size=want_v.shape).astype(dtype)
    cpu, ref = run_cpu_and_reference([v, i, gx, ggw], {x: xv, w: wv})
    assert_close(cpu, ref, dtype)
    np.testing.assert_array_equal(cpu[0], want_v)
    np.testing.assert_array_equal(cpu[1], want_i)


@pytest.mark.parametrize("nd,dtype,cfg", CASES)
def test_avg_pool_forward_and_backward_match_the_reference(nd, dtype, cfg, rng):
    kernel, stride, padding, _, ceil_mode = cfg
    count_include_pad = bool(rng.integers(2))
    shape = SHAPES[nd]
    x = sg.placeholder(dtype, shape, name="x")
    y = AVG[nd](x, kernel, stride, padding, ceil_mode, count_include_pad)
    w = sg.placeholder(dtype, None, name="w")
    gx = sg.gradients(sg.reduce_sum(y * w), [x])[0]                         # AvgPoolGrad
    ggw = sg.gradients(sg.reduce_sum(gx * gx), [w])[0]                      # AvgPool of a gradient
    xv = rng.normal(size=shape).astype(dtype)
    k, s, p, _ = window_params(nd, kernel, stride, padding, 1)
    want = naive_avg_pool(xv, k, s, p, ceil_mode, count_include_pad)
    wv = rng.normal(size=want.shape).astype(dtype)
    cpu, ref = run_cpu_and_reference([y, gx, ggw], {x: xv, w: wv})
    assert_close(cpu, ref, dtype)
    np.testing.assert_allclose(cpu[0], want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


FULL_WINDOW_CASES = [  # no padding and no clipped ceil_mode window: pool_max's row-at-a-time path
    (1, (3, 4, 11), (3,), (3,), (1,), False), (1, (2, 3, 10), (2,), (1,), (3,), True),
    (2, (2, 3, 9, 7), (3, 2), (3, 2), (1, 1), False), (2, (3, 2, 8, 9), (2, 3), (1, 2), (2, 1), False),
    (3, (2, 2, 6, 6, 7), (2, 2, 3), (2, 1, 2), (1, 2, 1), True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("nd,shape,k,s,d,ceil_mode", FULL_WINDOW_CASES)
def test_max_pool_with_every_window_inside_the_input(nd, shape, k, s, d, ceil_mode, dtype, rng):
    """Ties, NaN (last one wins), -inf and the integer minimum against the naive loops."""
    assert all((-(-(n - d_ * (k_ - 1) - 1) // s_) if ceil_mode else (n - d_ * (k_ - 1) - 1) // s_) * s_
               + d_ * (k_ - 1) < n for n, k_, s_, d_ in zip(shape[-nd:], k, s, d))
    xv = tie_heavy(rng, shape, dtype)
    flat = xv.reshape(-1)
    if dtype == np.int32:
        flat[rng.choice(flat.size, 5, replace=False)] = np.iinfo(np.int32).min
    else:
        flat[rng.choice(flat.size, 6, replace=False)] = np.nan
        flat[rng.choice(flat.size, 6, replace=False)] = -np.inf
    x = sg.placeholder(dtype, xv.shape)
    v, i = MAX[nd](x, k, s, 0, d, ceil_mode, return_indices=True)
    cpu, ref = run_cpu_and_reference([v, i], {x: xv})
    want_v, want_i = naive_max_pool(xv, k, s, (0,) * nd, d, ceil_mode)
    np.testing.assert_array_equal(cpu[0], want_v)
    np.testing.assert_array_equal(cpu[1], want_i)
    np.testing.assert_array_equal(cpu[1], ref[1])


FAST_CASES = [  # (nd, shape, kernel, stride, the path pool_max takes on NaN-free planes)
    (2, (2, 3, 9, 7), (3, 3), (3, 3), "rows 3x3"), (2, (3, 2, 8, 9), (3, 3), (2, 3), "rows 3x3"),
    (2, (2, 3, 7, 8), (2, 2), (2, 2), "rows 2x2"), (2, (2, 2, 9, 5), (2, 2), (1, 2), "rows 2x2"),
    (2, (3, 4, 24, 24), (3, 3), (3, 3), "rows 3x3"), (1, (3, 4, 11), (2,), (2,), "full"),
    (1, (2, 5, 10), (3,), (3,), "full"), (3, (2, 2, 4, 6, 7), (1, 3, 3), (2, 3, 3), "rows 3x3"),
    (2, (2, 3, 9, 7), (3, 3), (3, 2), "full"), (2, (2, 3, 9, 7), (2, 3), (2, 3), "full"),
    (3, (2, 2, 4, 6, 7), (2, 3, 3), (2, 3, 3), "full"),
]


def _pool_call(plan):
    """(kernel, record) of the plan's MaxPool call."""
    lay = next(iter(plan._exe.tier.layouts.values()))
    call = next(c for c in plan._exe.tier.prog.all_calls if c.kernel in nn_pool.MAX_POOL_KERNELS)
    return call.kernel, [int(v) for v in lay.M[call.pos:call.pos + call.size]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("nd,shape,k,s,path", FAST_CASES)
def test_max_pool_fast_rows_path_matches_the_naive_loops(nd, shape, k, s, path, dtype, rng):
    """The unrolled non-overlapping-rows kernels (and their neighbours that must not take them):
    ties, -inf / the integer minimum, NaN in some planes only (those run the general path)."""
    xv = tie_heavy(rng, shape, dtype) if rng.random() < 0.5 else (rng.normal(size=shape) * 4).astype(dtype)
    planes = xv.reshape(-1, math.prod(shape[-nd:]))
    low = -np.inf if dtype != np.int32 else np.iinfo(np.int32).min
    planes[rng.integers(planes.shape[0]), rng.integers(planes.shape[1], size=3)] = low
    if dtype != np.int32:
        for c in rng.choice(planes.shape[0], 2, replace=False):
            planes[c, rng.integers(planes.shape[1], size=2)] = np.nan
    x = sg.placeholder(dtype, (None,) + shape[1:])
    v, i = MAX[nd](x, k, s, 0, 1, False, return_indices=True)
    fetches = [v, i]
    if dtype != np.int32:
        fetches.append(sg.gradients(sg.reduce_sum(v * v), [x])[0])          # MaxPoolGrad
    with sg.Session() as sess:
        plan = sess.compile(fetches, [x])
        cpu = plan(xv)
        kernel, record = _pool_call(plan)
        assert nn_pool.max_pool_path(record) == path and kernel == nn_pool.PATH_KERNELS[path]
    with sg.Session(target="reference") as ref:
        want = ref.run(fetches, {x: xv})
    want_v, want_i = naive_max_pool(xv, k, s, (0,) * nd, (1,) * nd, False)
    np.testing.assert_array_equal(cpu[0], want_v)
    np.testing.assert_array_equal(cpu[1], want_i)
    assert_close(cpu, want, dtype)


@pytest.mark.parametrize("nd,shape,k,s,path", [FAST_CASES[0], FAST_CASES[2], FAST_CASES[5], FAST_CASES[8]])
@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_of_run_time_spatial_sizes_chooses_its_path_per_call(nd, shape, k, s, path, padding, rng):
    """Spatial sizes unknown until run time: the one kernel of every path (``pool_max``) takes the
    record's path (the static-size kernel of that path agrees), against the naive loops."""
    xv = tie_heavy(rng, shape, np.float64)
    xv.reshape(-1)[rng.choice(xv.size, 3, replace=False)] = np.nan
    x = sg.placeholder(sg.float64, (None,) * len(shape))
    v, i = MAX[nd](x, k, s, padding, 1, False, return_indices=True)
    with sg.Session() as sess:
        plan = sess.compile([v, i], [x])
        cpu = plan(xv)
        kernel, record = _pool_call(plan)
    assert kernel == "pool_max"
    assert nn_pool.max_pool_path(record) == (path if padding == 0 else "general")
    want_v, want_i = naive_max_pool(xv, k, s, (padding,) * nd, (1,) * nd, False)
    np.testing.assert_array_equal(cpu[0], want_v)
    np.testing.assert_array_equal(cpu[1], want_i)


@pytest.mark.parametrize("shape,args,kernel", [
    ((2, 3, 9, 9), (3, 3, 0), "pool_max_rows_3x3"), ((None, 3, 8, 8), (2, 2, 0), "pool_max_rows_2x2"),
    ((2, 3, 9, 9), (3, 2, 0), "pool_max_full"), ((2, 3, 9, 9), (3, 3, 1), "pool_max_padded"),
    ((2, 3, 10, 10), (3, 3, 0), "pool_max_padded"),      # ceil_mode below: a clipped last window
    ((2, 3, None, 9), (3, 3, 0), "pool_max"), ((None, None, None, None), (2, 2, 0), "pool_max"),
])
def test_max_pool_kernel_is_the_one_of_its_static_path(shape, args, kernel):
    """Static spatial sizes: the kernel of the window's one path; run-time ones: ``pool_max``."""
    x = sg.placeholder(sg.float32, shape)
    v, _ = F.max_pool2d(x, *args, ceil_mode=shape[-1] == 10, return_indices=True)
    assert nn_pool.max_pool_kernel(v.op) == kernel


def test_nan_propagates_with_the_last_nan_index_and_gradient(rng):
    xv = rng.normal(size=(2, 3, 6, 5))
    xv[0, 1, 1, 1] = xv[0, 1, 1, 2] = xv[1, 2, 4, 4] = np.nan
    x = sg.placeholder(sg.float64, xv.shape)
    v, i = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    gx = sg.gradients(sg.reduce_sum(v), [x])[0]
    cpu, ref = run_cpu_and_reference([v, i, gx], {x: xv})
    assert_close(cpu, ref, np.float64)
    want_v, want_i = naive_max_pool(xv, (3, 3), (2, 2), (1, 1), (1, 1), False)
    np.testing.assert_array_equal(cpu[1], want_i)
    assert np.isnan(cpu[0]).sum() == np.isnan(want_v).sum() > 0


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32])
def test_windows_without_input_elements_give_the_lowest_value_and_an_out_of_plane_index(dtype, rng):
    """length 2, kernel 2, dilation 3, padding 2: the window starting at -1 reads -1 and 2, both padding."""
    xv = rng.integers(-5, 5, (3, 2, 2)).astype(dtype)
    x = sg.placeholder(dtype, xv.shape)
    v, i = F.max_pool1d(x, 2, 1, 2, 3, return_indices=True)
    fetches = [v, i]
    if dtype == np.float32:
        fetches.append(sg.gradients(sg.reduce_sum(v * sg.constant(np.arange(3, dtype=dtype))), [x])[0])
    cpu, ref = run_cpu_and_reference(fetches, {x: xv})
    assert_close(cpu, ref, dtype)
    lowest = -np.inf if dtype == np.float32 else np.iinfo(dtype).min
    assert (cpu[0][..., 1] == lowest).all() and (cpu[1][..., 1] == 2).all()
    np.testing.assert_array_equal(cpu[0], naive_max_pool(xv, (2,), (1,), (2,), (3,), False)[0])


def test_backward_ops_skip_out_of_plane_indices_and_add_repeats(rng):
    """MaxPoolGrad / MaxPoolGather on hand-made indices: repeats accumulate, out-of-plane ones are skipped
    (gather reads 0), unbatched (C, L) planes."""
    plane = 5
    idx = rng.integers(-2, plane + 2, (3, 7)).astype(np.int64)
    g = sg.placeholder(sg.float64, (3, 7))
    like = sg.placeholder(sg.float64, (3, plane))
    i = sg.placeholder(sg.int64, (3, 7))
    scattered = max_pool_grad(g, i, like, 1)
    gathered = max_pool_gather(like, i, 1)
    gv, lv = rng.normal(size=(3, 7)), rng.normal(size=(3, plane))
    cpu, ref = run_cpu_and_reference([scattered, gathered], {g: gv, i: idx, like: lv})
    assert_close(cpu, ref, np.float64)
    want = np.zeros((3, plane))
    for r, j in itertools.product(range(3), range(7)):
        if 0 <= idx[r, j] < plane:
            want[r, idx[r, j]] += gv[r, j]
    np.testing.assert_allclose(cpu[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(cpu[1], np.where((idx >= 0) & (idx < plane),
                                                   np.take_along_axis(lv, np.clip(idx, 0, plane - 1), 1), 0))


def test_unbatched_input_and_gradient_check_on_cpu(rng):
    from test_nn_pool import distinct
    xv = distinct(rng, (2, 5, 7))
    cpu, ref = run_cpu_and_reference(*_unbatched_graph(xv))
    assert_close(cpu, ref, np.float64)

    def build(x):
        return F.max_pool2d(x, 2, 2, 1, ceil_mode=True) * 1.5 + F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    sg.check_gradients(build, [xv], order=1)


def _unbatched_graph(xv):
    x = sg.placeholder(sg.float64, xv.shape)
    v, i = F.max_pool2d(x, 2, 2, 1, ceil_mode=True, return_indices=True)
    a = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    gx = sg.gradients(sg.reduce_sum(v * v) + sg.reduce_sum(a * a), [x])[0]
    return [v, i, a, gx], {x: xv}


def _lenet_pools(dtype=np.float32):
    x = sg.placeholder(dtype, (None, 4, 9, 9), name="x")
    v = F.max_pool2d(x, 3)
    a = F.avg_pool2d(v, 2, 1, 1, ceil_mode=True)
    loss = sg.reduce_sum(a * a)
    return x, [loss, v, sg.gradients(loss, [x])[0]]


def test_none_batch_two_sizes_in_one_plan_without_recompiling(rng):
    x, fetches = _lenet_pools()
    with sg.Session() as sess:
        plan = sess.compile(fetches, [x])
        plans = STATS["plans"]
        for n in (3, 5, 3):
            xv = rng.normal(size=(n, 4, 9, 9)).astype(np.float32)
            got = plan(xv)
            with sg.Session(target="reference") as ref:
                assert_close(got, ref.run(fetches, {x: xv}), np.float32)
        assert STATS["plans"] == plans and len(plan._exe.tier.layouts) == 2


def test_natively_compiled_step_matches_the_reference(rng, monkeypatch):
    monkeypatch.setenv("STATICGRAPH_JIT", "sync")
    x = sg.placeholder(sg.float64, (None, 2, 7, 6), name="x")
    v, i = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    a = F.avg_pool2d(x, 2, 2, 1, count_include_pad=False)
    gx = sg.gradients([v, a], [x])[0]
    fetches = [v, i, a, gx]
    with sg.Session() as sess:
        plan = sess.compile(fetches, [x])
        plan.jit()
        for n in (2, 3):
            xv = tie_heavy(rng, (n, 2, 7, 6))
            got = plan(xv)
            assert plan._exe.jitted
            with sg.Session(target="reference") as ref:
                assert_close(got, ref.run(fetches, {x: xv}), np.float64)


def test_too_small_fed_input_is_an_error_naming_the_op():
    x = sg.placeholder(sg.float32, (None, 2, None, None))
    y = F.max_pool2d(x, 3, name="the_pool")
    with sg.Session() as sess:
        sess.run(y, {x: np.zeros((1, 2, 3, 3), np.float32)})
        with pytest.raises((sg.errors.InvalidArgumentError, ValueError), match=r"the_pool.*\(2, 2\)"):
            sess.run(y, {x: np.zeros((1, 2, 2, 2), np.float32)})


def test_mismatched_grad_and_input_of_max_pool_grad_is_an_error():
    g = sg.placeholder(sg.float32, (None, 3, 4))
    i = sg.placeholder(sg.int64, (None, 3, 4))
    like = sg.placeholder(sg.float32, (None, 3, 9))
    y = max_pool_grad(g, i, like, 1, name="the_scatter")
    with sg.Session() as sess:
        feeds = {g: np.zeros((2, 3, 4), np.float32), i: np.zeros((2, 3, 4), np.int64)}
        with pytest.raises((sg.errors.InvalidArgumentError, ValueError), match=r"the_scatter.*\(2, 3, 4\).*\(5, 3, 9\)"):
            sess.run(y, {**feeds, like: np.zeros((5, 3, 9), np.float32)})
