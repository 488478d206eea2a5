"""Pooling ops of ``sg.nn`` (max_pool1d/2d/3d, avg_pool1d/2d/3d): forward values and indices against
naive loops that follow PyTorch's CPU kernels line by line, gradients of first and second order
(also of the backward ops themselves), dtypes, unknown dims, empty batches and build-time errors."""
import itertools
import math

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.errors import InvalidArgumentError

from helpers import session

F = sg.nn.functional
MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


# -- the independent oracle: plain loops over output positions and window elements ------------------

def naive_out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else math.floor(span / s)) + 1
    if ceil_mode and (out - 1) * s >= n + p:   # a window may not start in the right padding
        out -= 1
    return out


def as_tuple(v, nd):
    return tuple(v) if isinstance(v, tuple) else (v,) * nd


def window_params(nd, kernel_size, stride, padding, dilation):
    k = as_tuple(kernel_size, nd)
    s = k if stride is None else as_tuple(stride, nd)
    return k, s, as_tuple(padding, nd), as_tuple(dilation, nd)


def valid_config(spatial, k, s, p, d, ceil_mode):
    """PyTorch accepts the config: padding at most half the effective kernel, every output size >= 1."""
    if any(pp > ((kk - 1) * dd + 1) // 2 for kk, pp, dd in zip(k, p, d)):
        return False
    return all(naive_out_size(n, kk, ss, pp, dd, ceil_mode) >= 1 for n, kk, ss, pp, dd in zip(spatial, k, s, p, d))


def naive_max_pool(x, k, s, p, d, ceil_mode):
    """PyTorch's max pooling: window clipped to the input, stepping over the left padding; strict ``>``
    (the first maximum wins) or NaN (the last NaN wins); the index starts at the first in-bounds element."""
    nd = len(k)
    spatial, lead = x.shape[-nd:], x.shape[:-nd]
    outs = tuple(naive_out_size(*a, ceil_mode) for a in zip(spatial, k, s, p, d))
    values = np.empty(lead + outs, x.dtype)
    indices = np.empty(lead + outs, np.int64)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    for o in np.ndindex(*outs):
        ranges, first = [], []
        for i in range(nd):
            lo = o[i] * s[i] - p[i]
            hi = min(lo + (k[i] - 1) * d[i] + 1, spatial[i])
            while lo < 0:
                lo += d[i]
            ranges.append(range(lo, hi, d[i]))
            first.append(lo)

        def flat(pos):
            f = 0
            for i in range(nd):
                f = f * spatial[i] + pos[i]
            return f

        for lead_pos in np.ndindex(*lead):
            best, where = lowest, flat(first)
            for pos in itertools.product(*ranges):
                v = x[lead_pos + pos]
                if v > best or (x.dtype.kind == "f" and np.isnan(v)):
                    best, where = v, flat(pos)
            values[lead_pos + o] = best
            indices[lead_pos + o] = where
    return values, indices


def naive_avg_pool(x, k, s, p, ceil_mode, count_include_pad):
    """PyTorch's average pooling: window clipped to the padded input for the divisor, to the input for the sum."""
    nd = len(k)
    spatial, lead = x.shape[-nd:], x.shape[:-nd]
    outs = tuple(naive_out_size(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in zip(spatial, k, s, p))
    out = np.zeros(lead + outs, np.float64)
    for o in np.ndindex(*outs):
        ranges, pool_size, valid = [], 1, 1
        for i in range(nd):
            lo = o[i] * s[i] - p[i]
            hi = min(lo + k[i], spatial[i] + p[i])
            pool_size *= hi - lo
            lo, hi = max(lo, 0), min(hi, spatial[i])
            valid *= hi - lo
            ranges.append(range(lo, hi))
        for lead_pos in np.ndindex(*lead):
            total = sum(float(x[lead_pos + pos]) for pos in itertools.product(*ranges))
            out[lead_pos + o] = total / (pool_size if count_include_pad else valid)
    return out


def tie_heavy(rng, shape, dtype=np.float64):
    """Small integers: many ties inside windows, so the first-maximum rule is exercised."""
    return rng.integers(-3, 4, shape).astype(dtype)


def distinct(rng, shape):
    """Values at least ~0.09 apart: no ties, so max pooling is differentiable at the point and central
    finite differences (eps 1e-6) never cross a switch of the argmax."""
    n = math.prod(shape)
    return (rng.permutation(n) * 0.1 + rng.uniform(0.0, 0.01, n) - 0.05 * n).reshape(shape)


# -- forward against the oracle over grids of window parameters -----------------------------------------

GRIDS = {
    1: dict(shape=(2, 3, 7), kernel=[1, 2, 3, 4], stride=[None, 1, 2, 3], padding=[0, 1, 2],
            dilation=[1, 2, 3]),
    2: dict(shape=(2, 2, 7, 5), kernel=[2, (3, 2), (1, 3)], stride=[None, 1, (2, 1)], padding=[0, (1, 0), 1],
            dilation=[1, (2, 1)]),
    3: dict(shape=(1, 2, 5, 4, 5), kernel=[2, (3, 1, 2)], stride=[None, (1, 2, 1)], padding=[0, (1, 0, 1), 2],
            dilation=[1, (1, 2, 1)]),
}


def grid(nd, with_dilation=True):
    g = GRIDS[nd]
    for kernel, stride, padding, dilation, ceil_mode in itertools.product(
            g["kernel"], g["stride"], g["padding"], g["dilation"] if with_dilation else [1], [False, True]):
        yield kernel, stride, padding, dilation, ceil_mode


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_matches_naive_loops(target, rng, nd):
    shape = GRIDS[nd]["shape"]
    x = sg.placeholder(sg.float64, shape, name="x")
    xv = tie_heavy(rng, shape)
    built, expected, n_invalid = [], [], 0
    for kernel, stride, padding, dilation, ceil_mode in grid(nd):
        k, s, p, d = window_params(nd, kernel, stride, padding, dilation)
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        if not valid_config(shape[-nd:], k, s, p, d, ceil_mode):
            n_invalid += 1
            with pytest.raises(ValueError, match="padding|smaller than the effective kernel"):
                MAX[nd](x, kernel, **kwargs)
            continue
        values, indices = MAX[nd](x, kernel, return_indices=True, **kwargs)
        want = naive_max_pool(xv, k, s, p, d, ceil_mode)
        assert values.shape == want[0].shape and indices.shape == want[0].shape
        assert indices.dtype == np.int64
        built.append((values, indices))
        expected.append((want, (kernel, stride, padding, dilation, ceil_mode)))
    assert len(built) > 10 and n_invalid > 0
    with session(target) as sess:
        got = sess.run(built, {x: xv})
    for (gv, gi), ((wv, wi), cfg) in zip(got, expected):
        np.testing.assert_array_equal(gv, wv, err_msg=f"values for {cfg}")
        np.testing.assert_array_equal(gi, wi, err_msg=f"indices for {cfg}")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_matches_naive_loops(target, rng, nd):
    shape = GRIDS[nd]["shape"]
    x = sg.placeholder(sg.float64, shape, name="x")
    xv = rng.standard_normal(shape)
    built, expected = [], []
    for kernel, stride, padding, _, ceil_mode in grid(nd, with_dilation=False):
        k, s, p, d = window_params(nd, kernel, stride, padding, 1)
        for count_include_pad in (True, False):
            kwargs = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
            if not valid_config(shape[-nd:], k, s, p, d, ceil_mode):
                with pytest.raises(ValueError, match="padding|smaller than the effective kernel"):
                    AVG[nd](x, kernel, **kwargs)
                continue
            built.append(AVG[nd](x, kernel, **kwargs))
            expected.append(naive_avg_pool(xv, k, s, p, ceil_mode, count_include_pad))
            assert built[-1].shape == expected[-1].shape
    assert len(built) > 10
    with session(target) as sess:
        got = sess.run(built, {x: xv})
    for g, w in zip(got, expected):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_ceil_mode_drops_a_window_starting_in_the_right_padding_and_clips_the_divisor(rng):
    # L=6, k=3, s=2, p=1: floor gives 3 windows, ceil 4 candidate starts -1, 1, 3, 5; start 5 is inside
    # the input, so it is kept (clipped); with L=5 the 4th window would start at 5 = in the right padding.
    for n, want_len in ((6, 4), (5, 3)):
        x = rng.standard_normal((1, 1, n))
        y = F.avg_pool1d(sg.constant(x, dtype=sg.float64), 3, 2, padding=1, ceil_mode=True)
        assert y.shape == (1, 1, want_len)
        got = sg.Session().run(y)
        np.testing.assert_allclose(got, naive_avg_pool(x, (3,), (2,), (1,), True, True), rtol=1e-12)


def test_slides_example_unbatched_max_pool2d(target):
    # the course slides: x = torch.empty(2, 2, 6).random_(3); F.max_pool2d(x, (1, 2)) is 2x2x3
    x = np.array([[[1., 2., 2., 1., 2., 1.],
                   [2., 0., 0., 0., 1., 0.]],
                  [[2., 0., 2., 1., 1., 1.],
                   [0., 0., 0., 1., 2., 1.]]], dtype=np.float32)
    printed = np.array([[[2., 2., 2.],
                         [2., 0., 1.]],
                        [[2., 2., 1.],
                         [0., 1., 2.]]], dtype=np.float32)
    y = F.max_pool2d(sg.constant(x), (1, 2))
    assert y.shape == (2, 2, 3) and y.dtype == np.float32
    with session(target) as sess:
        np.testing.assert_array_equal(sess.run(y), printed)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_input_equals_batch_of_one(target, rng, nd):
    shape = GRIDS[nd]["shape"][1:]
    xv = rng.standard_normal(shape)
    x = sg.placeholder(sg.float64, shape)
    xb = sg.placeholder(sg.float64, (1,) + shape)
    kw = dict(stride=1, padding=1, ceil_mode=True)
    fetch = [MAX[nd](x, 3, return_indices=True, **kw), MAX[nd](xb, 3, return_indices=True, **kw),
             AVG[nd](x, 3, **kw), AVG[nd](xb, 3, **kw)]
    assert fetch[0][0].shape == fetch[1][0].shape[1:]
    with session(target) as sess:
        (v, i), (vb, ib), a, ab = sess.run(fetch, {x: xv, xb: xv[None]})
    np.testing.assert_array_equal(v, vb[0])
    np.testing.assert_array_equal(i, ib[0])
    np.testing.assert_array_equal(a, ab[0])


def test_nan_propagates_and_padding_acts_as_minus_infinity(target, rng):
    xv = rng.standard_normal((2, 3, 9))
    xv[0, 0, [1, 2]] = np.nan          # two NaNs in one window: PyTorch reports the last one
    xv[1, 2, 4] = np.nan
    xv[0, 1, :] = -np.inf              # all -inf: the index is the window's first in-bounds element
    xv[1, 0, :3] = -np.inf
    x = sg.placeholder(sg.float64, xv.shape)
    configs = [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
               dict(kernel_size=2, stride=1, padding=1, dilation=3)]
    fetch = [F.max_pool1d(x, return_indices=True, **c) for c in configs]
    with session(target) as sess:
        got = sess.run(fetch, {x: xv})
    for (v, i), c in zip(got, configs):
        k, s, p, d = window_params(1, c["kernel_size"], c.get("stride"), c.get("padding", 0), c.get("dilation", 1))
        wv, wi = naive_max_pool(xv, k, s, p, d, c.get("ceil_mode", False))
        np.testing.assert_array_equal(v, wv)
        np.testing.assert_array_equal(i, wi)
    assert np.isnan(got[0][0][0, 0, 1]) and got[0][1][0, 0, 1] == 2


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32])
def test_max_pool_keeps_integer_and_float32_dtypes(target, rng, dtype):
    xv = tie_heavy(rng, (2, 3, 6, 5), dtype)
    x = sg.placeholder(dtype, xv.shape)
    v, i = F.max_pool2d(x, (2, 3), stride=(2, 1), padding=1, return_indices=True)
    assert v.dtype == dtype and i.dtype == np.int64
    with session(target) as sess:
        gv, gi = sess.run((v, i), {x: xv})
    wv, wi = naive_max_pool(xv, (2, 3), (2, 1), (1, 1), (1, 1), False)
    assert gv.dtype == dtype
    np.testing.assert_array_equal(gv, wv)
    np.testing.assert_array_equal(gi, wi)


def test_float32_forward_and_gradients_match_float64(target, rng):
    xv = distinct(rng, (2, 3, 7, 6)).astype(np.float32)
    x = sg.placeholder(sg.float32, xv.shape)
    x64 = sg.placeholder(sg.float64, xv.shape)
    outs = {}
    for key, t in (("32", x), ("64", x64)):
        m = F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True)
        a = F.avg_pool2d(t, (2, 3), stride=(1, 2), padding=(1, 0), count_include_pad=False)
        loss = (m.tanh() * 1.5).sum() + (a * a).sum()
        outs[key] = [m, a, sg.gradients(loss, [t])[0]]
    assert all(o.dtype == np.float32 for o in outs["32"])
    with session(target) as sess:
        got32 = sess.run(outs["32"], {x: xv})
        got64 = sess.run(outs["64"], {x64: xv.astype(np.float64)})
    for g32, g64 in zip(got32, got64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=2e-5, atol=2e-6)


# -- gradients: first and second order with finite differences in float64 ---------------------------------

GRAD_CASES = [
    (1, (2, 2, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (1, 2, 8), dict(kernel_size=2, stride=1, dilation=2)),
    (2, (1, 2, 5, 5), dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), ceil_mode=True)),
    (2, (2, 4, 4), dict(kernel_size=2)),                                     # unbatched
    (3, (1, 1, 4, 3, 4), dict(kernel_size=2, stride=(1, 2, 2), padding=(1, 0, 1))),
]


@pytest.mark.parametrize("nd,shape,kw", GRAD_CASES)
def test_max_pool_gradients_order_2(rng, nd, shape, kw):
    # distinct inputs: no ties, so the argmax does not switch within the finite-difference step
    sg.check_gradients(lambda x: MAX[nd](x, **kw).tanh(), [distinct(rng, shape)], order=2,
                       seed=int(rng.integers(2 ** 31)))


@pytest.mark.parametrize("nd,shape,kw", GRAD_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_gradients_order_2(rng, nd, shape, kw, count_include_pad):
    kw = {k: v for k, v in kw.items() if k != "dilation"}
    sg.check_gradients(lambda x: AVG[nd](x, count_include_pad=count_include_pad, **kw).tanh(),
                       [rng.standard_normal(shape)], order=2, seed=int(rng.integers(2 ** 31)))


def test_third_order_through_the_backward_ops(rng):
    sg.check_gradients(lambda x: F.max_pool2d(x, 2, stride=1).tanh(), [distinct(rng, (1, 1, 3, 4))], order=3)
    sg.check_gradients(lambda x: F.avg_pool2d(x, 2, stride=1, padding=1).tanh(),
                       [rng.standard_normal((1, 1, 3, 3))], order=3)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_backward_ops_gradients_order_2(rng, kind):
    """The backward ops differentiated themselves: d/d(grad_ys) of the input gradient (a gather for
    MaxPoolGrad, AvgPool for AvgPoolGrad), and again (a scatter / AvgPoolGrad)."""
    shape = (1, 2, 5, 5)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    pool = (lambda x: F.max_pool2d(x, **kw)) if kind == "max" else (lambda x: F.avg_pool2d(x, **kw))
    out_shape = (1, 2, 3, 3)

    def build(x, gy):
        gx = sg.gradients(pool(x), [x], grad_ys=[gy])[0]
        return (gx * gx).sum() + gx.tanh()

    sg.check_gradients(build, [distinct(rng, shape), rng.standard_normal(out_shape)], order=2,
                       seed=int(rng.integers(2 ** 31)))


def test_gradient_op_types_are_closed_under_differentiation():
    x = sg.placeholder(sg.float64, (1, 1, 4, 4))
    gy = sg.placeholder(sg.float64, (1, 1, 2, 2))
    for pool, first, second in ((F.max_pool2d, "MaxPoolGrad", "MaxPoolGather"),
                                (F.avg_pool2d, "AvgPoolGrad", "AvgPool")):
        gx = sg.gradients(pool(x, 2), [x], grad_ys=[gy])[0]
        assert gx.op.type == first
        ggy = sg.gradients((gx * gx).sum(), [gy])[0]
        types = {op.type for op in sg.get_default_graph().get_operations() if op.id > gx.op.id}
        assert second in types and ggy is not None


# -- unknown dims, empty batches ------------------------------------------------------------------------

def test_none_batch_and_empty_batch(target, rng):
    x = sg.placeholder(sg.float64, (None, 3, 7, 6), name="x")
    v, i = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    a = F.avg_pool2d(x, 2, ceil_mode=True)
    assert v.shape == (None, 3, 4, 3) and i.shape == (None, 3, 4, 3) and a.shape == (None, 3, 4, 3)
    gx = sg.gradients(v.sum() + a.sum(), [x])[0]
    with session(target) as sess:
        for batch in (2, 0):
            xv = distinct(rng, (batch, 3, 7, 6)) if batch else np.zeros((0, 3, 7, 6))
            gv, gi, ga, gg = sess.run([v, i, a, gx], {x: xv})
            assert gv.shape == gi.shape == ga.shape == (batch, 3, 4, 3) and gg.shape == xv.shape
            wv, wi = naive_max_pool(xv, (3, 3), (2, 2), (1, 1), (1, 1), False)
            np.testing.assert_array_equal(gv, wv)
            np.testing.assert_array_equal(gi, wi)
            np.testing.assert_allclose(ga, naive_avg_pool(xv, (2, 2), (2, 2), (0, 0), True, True), rtol=1e-12)


def test_unknown_spatial_dims_and_rank(target, rng):
    x = sg.placeholder(sg.float64, (None, 2, None, 5), name="x")
    y = F.max_pool2d(x, 2)
    assert y.shape == (None, 2, None, 2)
    u = sg.placeholder(sg.float64, None, name="u")
    z = F.avg_pool1d(u, 3)
    assert z.shape is None
    xv, uv = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 3, 7))
    with session(target) as sess:
        gy, gz = sess.run([y, z], {x: xv, u: uv})
        np.testing.assert_array_equal(gy, naive_max_pool(xv, (2, 2), (2, 2), (0, 0), (1, 1), False)[0])
        np.testing.assert_allclose(gz, naive_avg_pool(uv, (3,), (3,), (0,), False, True), rtol=1e-12)
        with pytest.raises(InvalidArgumentError, match="smaller than the effective kernel size"):
            sess.run(y, {x: rng.standard_normal((1, 2, 1, 5))})
        with pytest.raises(InvalidArgumentError, match=r"expected a 2-D \(C, L\) or 3-D"):
            sess.run(z, {u: rng.standard_normal((7,))})


def test_unknown_dims_gradients_order_2(rng):
    sg.check_gradients(lambda x: F.max_pool2d(x, 2, stride=1, padding=1).tanh(), [distinct(rng, (2, 1, 3, 4))],
                       shapes=[(None, 1, None, None)], order=2)
    sg.check_gradients(lambda x: F.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True).tanh(),
                       [rng.standard_normal((2, 2, 6))], shapes=[(None, 2, None)], order=2)


# -- API details and errors ----------------------------------------------------------------------------

def test_defaults_names_and_tuple_result():
    x = sg.placeholder(sg.float32, (2, 3, 9, 9))
    out = F.max_pool2d(x, 3, return_indices=True, name="pool1")
    assert isinstance(out, tuple) and len(out) == 2
    assert out[0].name == "pool1:0" and out[1].name == "pool1:1"
    assert F.max_pool2d(x, 3).shape == F.max_pool2d(x, 3, stride=3).shape == (2, 3, 3, 3)
    assert F.max_pool2d(x, (3,)).shape == (2, 3, 3, 3)       # a one-element tuple applies to every axis
    assert F.avg_pool2d(x, 2, stride=1).shape == (2, 3, 8, 8)
    assert F.avg_pool2d(x, 2).op.name.startswith("avg_pool2d")


ERRORS = [
    (F.max_pool2d, (2, 3), dict(kernel_size=2), ValueError, r"3-D \(C, H, W\) or 4-D \(N, C, H, W\).*'x:0'.*\(2, 3\)"),
    (F.avg_pool1d, (1, 2, 3, 4), dict(kernel_size=2), ValueError, r"2-D \(C, L\) or 3-D \(N, C, L\)"),
    (F.max_pool3d, (1, 4, 4), dict(kernel_size=2), ValueError, r"4-D \(C, D, H, W\) or 5-D"),
    (F.max_pool2d, (1, 1, 2, 5), dict(kernel_size=3), ValueError,
     r"'x:0' of shape \(1, 1, 2, 5\).*smaller than the effective kernel size \(3, 3\)"),
    (F.max_pool1d, (1, 1, 3), dict(kernel_size=2, dilation=3), ValueError,
     r"smaller than the effective kernel size \(4,\)"),
    (F.avg_pool2d, (1, 1, 4, 4), dict(kernel_size=(3, 3), padding=1, ceil_mode=True, stride=9), None, None),
    (F.max_pool2d, (1, 1, 4, 4), dict(kernel_size=0), ValueError, r"kernel_size must be positive, got \(0, 0\)"),
    (F.avg_pool2d, (1, 1, 4, 4), dict(kernel_size=2, stride=(1, 0)), ValueError, r"stride must be positive"),
    (F.max_pool1d, (1, 1, 4), dict(kernel_size=2, dilation=0), ValueError, r"dilation must be positive"),
    (F.max_pool2d, (1, 1, 8, 8), dict(kernel_size=3, padding=2), ValueError,
     r"padding \(2, 2\) should be at most half of the effective kernel size \(3, 3\)"),
    (F.max_pool1d, (1, 1, 8), dict(kernel_size=3, padding=2, dilation=2), None, None),   # effective kernel 5
    (F.avg_pool1d, (1, 1, 8), dict(kernel_size=3, padding=-1), ValueError, r"padding must be non-negative"),
    (F.max_pool2d, (1, 1, 8, 8), dict(kernel_size=(2, 2, 2)), ValueError,
     r"max_pool2d: kernel_size must be an int or a tuple of 2"),
    (F.max_pool2d, (1, 1, 8, 8), dict(kernel_size=2.5), TypeError, r"kernel_size must be an int or a tuple of ints"),
]


@pytest.mark.parametrize("fn,shape,kw,exc,match", ERRORS)
def test_build_time_errors(fn, shape, kw, exc, match):
    x = sg.placeholder(sg.float32, shape, name="x")
    if exc is None:          # accepted by PyTorch too: a control case for the rule next to it
        fn(x, **kw)
        return
    with pytest.raises(exc, match=match):
        fn(x, **kw)


def test_dtype_errors():
    with pytest.raises(TypeError, match=r"average pooling takes a floating point input, got 'i:0' of dtype int32"):
        F.avg_pool2d(sg.placeholder(sg.int32, (1, 1, 4, 4), name="i"), 2)
    with pytest.raises(TypeError, match=r"max pooling takes a real .*'b:0' of dtype bool"):
        F.max_pool1d(sg.placeholder(sg.bool_, (1, 1, 4), name="b"), 2)
    with pytest.raises(ValueError, match="empty spatial axis"):
        F.max_pool1d(sg.placeholder(sg.float32, (1, 1, 0), name="e"), 1)


def test_window_without_input_elements(target):
    # L=1, kernel 2, dilation 2, padding 1: the only window reads positions -1 and 1, both padding.
    # PyTorch gives -inf and the index of the window's first in-bounds step (1, outside the plane);
    # the backward ops skip such an index instead of crashing.
    x = sg.placeholder(sg.float64, (1, 2, 1))
    v, i = F.max_pool1d(x, 2, stride=1, padding=1, dilation=2, return_indices=True)
    gy = sg.placeholder(sg.float64, (1, 2, 1))
    gx = sg.gradients(v, [x], grad_ys=[gy])[0]
    ggy = sg.gradients((gx * 3.0).sum(), [gy])[0]
    with session(target) as sess:
        gv, gi, ggx, gggy = sess.run([v, i, gx, ggy], {x: np.ones((1, 2, 1)), gy: np.ones((1, 2, 1))})
    wv, wi = naive_max_pool(np.ones((1, 2, 1)), (2,), (1,), (1,), (2,), False)
    np.testing.assert_array_equal(gv, wv)
    np.testing.assert_array_equal(gi, wi)
    assert np.all(np.isneginf(gv)) and np.all(gi == 1)
    np.testing.assert_array_equal(ggx, np.zeros((1, 2, 1)))
    np.testing.assert_array_equal(gggy, np.zeros((1, 2, 1)))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_matches_pytorch_when_installed(rng, nd):
    """Values, indices and input gradients against PyTorch itself (skipped where it is not installed)."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    t_max, t_avg = getattr(tf, f"max_pool{nd}d"), getattr(tf, f"avg_pool{nd}d")
    cases = []
    while len(cases) < 12:
        spatial = tuple(int(v) for v in rng.integers(1, 8 if nd < 3 else 6, nd))
        k, s, p, d = (tuple(int(v) for v in rng.integers(lo, hi, nd)) for lo, hi in ((1, 4), (1, 4), (0, 2), (1, 3)))
        ceil_mode, count_include_pad = bool(rng.integers(2)), bool(rng.integers(2))
        if valid_config(spatial, k, s, p, d, ceil_mode) and valid_config(spatial, k, s, p, (1,) * nd, ceil_mode):
            cases.append((spatial, k, s, p, d, ceil_mode, count_include_pad))
    compared = 0
    for spatial, k, s, p, d, ceil_mode, count_include_pad in cases:
        xv = tie_heavy(rng, (2, 2) + spatial)
        xv[rng.random(xv.shape) < 0.1] = -np.inf
        tx = torch.tensor(xv, requires_grad=True)
        try:
            tv, ti = t_max(tx, k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
            ta = t_avg(tx, k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        except RuntimeError:      # PyTorch's stricter checks on some paths (see the report): skip those
            continue
        rv, ra = rng.standard_normal(tv.shape), rng.standard_normal(ta.shape)
        (tgrad,) = torch.autograd.grad((tv.masked_fill(torch.isinf(tv), 0) * torch.tensor(rv)).sum()
                                       + (ta.masked_fill(torch.isinf(ta), 0) * torch.tensor(ra)).sum(), tx)
        x = sg.placeholder(sg.float64, xv.shape)
        v, i = MAX[nd](x, k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
        a = AVG[nd](x, k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
        finite = lambda y: sg.where(sg.equal(y, -np.inf), sg.zeros_like(y), y)
        loss = (finite(v) * sg.constant(rv, dtype=sg.float64)).sum() + \
            (finite(a) * sg.constant(ra, dtype=sg.float64)).sum()
        g = sg.gradients(loss, [x])[0]
        gv, gi, ga, gg = sg.Session().run([v, i, a, g], {x: xv})
        np.testing.assert_array_equal(gv, tv.detach().numpy())
        np.testing.assert_array_equal(gi, ti.numpy())
        np.testing.assert_allclose(ga, ta.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gg, tgrad.numpy(), rtol=1e-12, atol=1e-12)
        compared += 1
    assert compared >= 3
