"""sg.nn.conv1d / conv2d / conv3d (API.md §3, §10): forward against a naive loop implementation,
PyTorch's output sizes (the course's examples), gradients of first and second order (and the
backward ops' own gradients), build-time and run-time errors, empty batches, float32."""
import itertools

import numpy as np
import pytest

import staticgraph as sg
from helpers import session
from staticgraph.ops.conv import conv_backprop_filter, conv_backprop_input

CONV = {1: sg.nn.conv1d, 2: sg.nn.conv2d, 3: sg.nn.conv3d}


def naive_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation by explicit loops over samples, output channels, positions and kernel offsets."""
    d = x.ndim - 2
    stride, padding, dilation = ((v,) * d if isinstance(v, int) else tuple(v) for v in (stride, padding, dilation))
    n, o, cg, kernel = x.shape[0], w.shape[0], w.shape[1], w.shape[2:]
    og = o // groups
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = [(xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(d)]
    y = np.zeros([n, o] + out)
    for ni, oi in itertools.product(range(n), range(o)):
        chans = xp[ni, (oi // og) * cg:(oi // og + 1) * cg]
        for pos in itertools.product(*map(range, out)):
            acc = 0.0 if b is None else float(b[oi])
            for kk in itertools.product(*map(range, kernel)):
                idx = tuple(pos[i] * stride[i] + kk[i] * dilation[i] for i in range(d))
                acc += float(np.dot(chans[(slice(None),) + idx], w[(oi, slice(None)) + kk]))
            y[(ni, oi) + pos] = acc
    return y


def _feed(*arrays, shapes=None):
    shapes = shapes or [a.shape for a in arrays]
    phs = [sg.placeholder(a.dtype, s) for a, s in zip(arrays, shapes)]
    return phs, dict(zip(phs, arrays))


# (in_channels, out_channels, spatial, kernel, stride, padding, dilation, groups)
CASES = {
    1: [(3, 2, (11,), (3,), 1, 0, 1, 1), (4, 6, (13,), (2,), 2, 1, 1, 2), (2, 3, (9,), (3,), 1, 2, 3, 1),
        (6, 3, (10,), (1,), 3, 0, 1, 3), (3, 3, (7,), (4,), (2,), (3,), (2,), 3)],
    2: [(3, 2, (7, 5), (3, 3), 1, 0, 1, 1), (4, 6, (9, 8), (2, 3), (2, 1), (1, 2), 1, 2),
        (2, 2, (11, 9), (3, 2), 1, (2, 0), (2, 3), 1), (6, 4, (6, 7), (3, 3), 3, 1, 1, 2),
        (4, 4, (5, 6), (2, 2), (1, 2), 0, (2, 1), 4), (1, 3, (3, 5), (3, 3), (2, 2), (2, 1), 1, 1),
        # more output channels per group than filter taps (the cpu filter gradient's other GEMM orientation)
        (1, 8, (7, 6), (2, 2), 1, 1, 1, 1), (2, 12, (5, 5), (1, 2), 1, 0, 1, 2),
        # no padding, unit stride along the last axis: the cpu's straight im2col rows (other strides and dilations)
        (3, 4, (9, 7), (3, 2), (2, 1), 0, (2, 1), 1)],
    3: [(2, 2, (5, 4, 6), (2, 3, 2), 1, 0, 1, 1), (4, 2, (5, 6, 5), (3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 2, 1), 2),
        (3, 3, (4, 5, 3), (1, 2, 2), 1, (0, 1, 1), 1, 3), (2, 3, (7, 6, 7), (2, 2, 3), (2, 3, 1), 0, (2, 1, 2), 1)],
}
FORWARD = [pytest.param(d, case, id=f"{d}d-{i}") for d in CASES for i, case in enumerate(CASES[d])]


@pytest.mark.parametrize("d, case", FORWARD)
def test_forward_matches_naive_loops(d, case, target, rng):
    c, o, spatial, kernel, stride, padding, dilation, groups = case
    n = int(rng.integers(1, 4))
    x = rng.standard_normal((n, c) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    (xt, wt, bt), feeds = _feed(x, w, b)
    y = CONV[d](xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y_nobias = CONV[d](xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    with session(target) as sess:
        got, got_nobias = sess.run([y, y_nobias], feeds)
    expected = naive_conv(x, w, b, stride, padding, dilation, groups)
    assert y.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_nobias, naive_conv(x, w, None, stride, padding, dilation, groups),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_float32_forward(d, target, rng):
    c, o, spatial, kernel, stride, padding, dilation, groups = CASES[d][1]
    x = rng.standard_normal((2, c) + spatial).astype(np.float32)
    w = rng.standard_normal((o, c // groups) + kernel).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    (xt, wt, bt), feeds = _feed(x, w, b)
    y = CONV[d](xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert y.dtype == sg.float32
    got = session(target).run(y, feeds)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, naive_conv(x, w, b, stride, padding, dilation, groups), rtol=1e-4, atol=1e-4)


def test_arrays_and_python_values_enter_as_float32(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    y = sg.nn.conv2d(x, w, [0.5, -1.0, 2.0], padding=1)
    assert y.dtype == sg.float32 and y.shape == (1, 3, 5, 5)
    np.testing.assert_allclose(session("reference").run(y),
                               naive_conv(x.astype(np.float32), w.astype(np.float32), [0.5, -1.0, 2.0], 1, 1),
                               rtol=1e-4, atol=1e-4)


# -- the course's examples: PyTorch's output sizes ------------------------------------------------------

def test_slides_padding_and_stride_example(target, rng):
    c = int(rng.integers(1, 5))
    x = rng.standard_normal((2, c, 3, 5))
    w = rng.standard_normal((1, c, 3, 3))
    y = sg.nn.conv2d(x, w, padding=(2, 1), stride=(2, 2))
    assert y.shape == (2, 1, 3, 3)
    unbatched = sg.nn.conv2d(x[0], w, padding=(2, 1), stride=(2, 2))
    assert unbatched.shape == (1, 3, 3)
    with session(target) as sess:
        got, got0 = sess.run([y, unbatched])
    expected = naive_conv(x.astype(np.float32), w.astype(np.float32), None, 2, (2, 1))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got0, expected[0], rtol=1e-4, atol=1e-4)


def test_slides_weight_5x4x2x3_on_117x4x10x3(target, rng):
    weight, bias = rng.standard_normal((5, 4, 2, 3)), rng.standard_normal(5)
    x = rng.standard_normal((117, 4, 10, 3))
    (xt, wt, bt), feeds = _feed(x, weight, bias)
    y = sg.nn.conv2d(xt, wt, bt)
    assert y.shape == (117, 5, 9, 1)
    got = session(target).run(y, feeds)
    assert got.shape == (117, 5, 9, 1)
    np.testing.assert_allclose(got[::29], naive_conv(x[::29], weight, bias), rtol=1e-10, atol=1e-10)


def test_slides_dilation_4(target, rng):
    x = rng.standard_normal((1, 1, 20, 30)).astype(np.float32)
    w = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    y = sg.nn.conv2d(x, w, dilation=4)
    assert y.shape == (1, 1, 12, 22)
    np.testing.assert_allclose(session(target).run(y), naive_conv(x, w, dilation=4), rtol=1e-4, atol=1e-4)


def test_none_batch_static_shape_and_several_batch_sizes(target, rng):
    w = rng.standard_normal((4, 3, 3, 2))
    xt = sg.placeholder(sg.float64, (None, 3, 8, 7))
    y = sg.nn.conv2d(xt, w.copy(), stride=(2, 1), padding=1)
    assert y.shape == (None, 4, 4, 8)
    free = sg.nn.conv2d(sg.placeholder(sg.float64, (None, 3, None, 7)), w.copy())
    assert free.shape == (None, 4, None, 6)
    assert sg.nn.conv2d(sg.placeholder(sg.float64), w.copy()).shape == (None, 4, None, None)
    gx = sg.gradients(y.sum(), xt)[0]
    assert gx.shape == (None, 3, 8, 7)
    with session(target) as sess:
        for n in (1, 5):
            x = rng.standard_normal((n, 3, 8, 7))
            got, dx = sess.run([y, gx], {xt: x})
            np.testing.assert_allclose(got, naive_conv(x, w, None, (2, 1), 1), rtol=1e-10, atol=1e-10)
            assert dx.shape == x.shape


@pytest.mark.parametrize("d", [1, 2, 3])
def test_unbatched_input_is_a_batch_of_one(d, target, rng):
    c, o, spatial, kernel, stride, padding, dilation, groups = CASES[d][1]
    x = rng.standard_normal((c,) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    (xt, wt, bt), feeds = _feed(x, w, b)
    y = CONV[d](xt, wt, bt, stride, padding, dilation, groups)
    expected = naive_conv(x[None], w, b, stride, padding, dilation, groups)[0]
    assert y.shape == expected.shape
    gx, gw, gb = sg.gradients((y * y).sum(), [xt, wt, bt])
    with session(target) as sess:
        got, *grads = sess.run([y, gx, gw, gb], feeds)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert [g.shape for g in grads] == [x.shape, w.shape, b.shape]
    np.testing.assert_allclose(grads[2], 2 * expected.reshape(o, -1).sum(axis=1), rtol=1e-10)


def test_string_padding_valid_and_same(target, rng):
    x = rng.standard_normal((2, 2, 7, 6))
    w = rng.standard_normal((3, 2, 3, 5))
    same = sg.nn.conv2d(x, w.copy(), padding="same", dilation=(2, 1))
    valid = sg.nn.conv2d(x, w.copy(), padding="valid")
    assert same.shape == (2, 3, 7, 6) and valid.shape == (2, 3, 5, 2)
    with session(target) as sess:
        got_same, got_valid = sess.run([same, valid])
    np.testing.assert_allclose(got_same, naive_conv(x.astype(np.float32), w.astype(np.float32), None, 1,
                                                    (2, 2), (2, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_valid, naive_conv(x.astype(np.float32), w.astype(np.float32)),
                               rtol=1e-4, atol=1e-4)


def test_names():
    x = sg.placeholder(sg.float32, (1, 1, 5, 5))
    w = sg.placeholder(sg.float32, (2, 1, 3, 3))
    assert sg.nn.conv2d(x, w, name="c1").name == "c1:0"
    assert sg.nn.conv2d(x, w, sg.placeholder(sg.float32, (2,)), name="c2").name == "c2:0"
    assert sg.nn.conv2d(x[0], w, name="c3").name == "c3:0"
    assert sg.nn.conv1d(x[0, :, 0], w[:, :, 0]).shape == (2, 3)


# -- gradients --------------------------------------------------------------------------------------------

def test_backward_ops_are_the_adjoints_of_conv(rng):
    """<dy, Conv(x, w)> = <ConvBackpropInput(dy, w), x> = <ConvBackpropFilter(x, dy), w>."""
    attrs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    x, w = rng.standard_normal((3, 4, 8, 7)), rng.standard_normal((6, 2, 3, 2))
    (xt, wt), feeds = _feed(x, w)
    y = sg.nn.conv2d(xt, wt, **attrs)
    dy = rng.standard_normal(y.shape)
    dyt = sg.constant(dy, dtype=sg.float64)
    dx = conv_backprop_input(dyt, wt, xt, **attrs)
    dw = conv_backprop_filter(xt, dyt, wt, **attrs)
    got_y, got_dx, got_dw = session("reference").run([y, dx, dw], feeds)
    lhs = np.sum(dy * got_y)
    np.testing.assert_allclose([np.sum(got_dx * x), np.sum(got_dw * w)], [lhs, lhs], rtol=1e-10)
    np.testing.assert_allclose(got_y, naive_conv(x, w, None, **attrs), rtol=1e-10, atol=1e-10)


GRAD_CASES = [  # (d, in_ch, out_ch, n, spatial, kernel, stride, padding, dilation, groups)
    pytest.param(1, 2, 3, 2, (7,), (3,), 2, 1, 1, 1, id="1d-stride-pad"),
    pytest.param(2, 2, 2, 1, (5, 4), (2, 2), 1, 0, 1, 1, id="2d-plain"),
    pytest.param(2, 4, 2, 2, (5, 6), (3, 2), (2, 1), (1, 0), (1, 2), 2, id="2d-groups-stride-dilation"),
    pytest.param(2, 2, 2, 1, (6, 5), (2, 2), 1, 1, 2, 2, id="2d-depthwise-dilation"),
    pytest.param(3, 2, 2, 1, (4, 3, 4), (2, 2, 2), (2, 1, 1), (1, 0, 1), 1, 1, id="3d"),
]


@pytest.mark.parametrize("d, c, o, n, spatial, kernel, stride, padding, dilation, groups", GRAD_CASES)
@pytest.mark.parametrize("head", ["linear", "tanh"])
def test_first_and_second_derivatives(d, c, o, n, spatial, kernel, stride, padding, dilation, groups, head, rng):
    x = rng.uniform(-1, 1, (n, c) + spatial)
    w = rng.uniform(-1, 1, (o, c // groups) + kernel)
    b = rng.uniform(-1, 1, o)
    act = (lambda y: y) if head == "linear" else sg.tanh

    def build(x, w, b):
        return act(CONV[d](x, w, b, stride, padding, dilation, groups))
    sg.check_gradients(build, [x, w, b], order=2, seed=int(rng.integers(2 ** 31)))


def test_second_derivatives_with_unknown_batch_and_unbatched_input(rng):
    x, w = rng.uniform(-1, 1, (2, 2, 5, 4)), rng.uniform(-1, 1, (3, 2, 2, 3))
    seed = int(rng.integers(2 ** 31))
    sg.check_gradients(lambda x, w: sg.nn.conv2d(x, w, padding=1, stride=2) ** 2, [x, w], order=2, seed=seed,
                       shapes=[(None, 2, None, 4), None])
    sg.check_gradients(lambda x, w: sg.sin(sg.nn.conv2d(x, w, dilation=(2, 1))), [x[0], w], order=2, seed=seed)


def test_third_derivatives(rng):
    x, w = rng.uniform(-1, 1, (1, 2, 4, 3)), rng.uniform(-1, 1, (2, 1, 2, 2))
    sg.check_gradients(lambda x, w: sg.tanh(sg.nn.conv2d(x, w, groups=2, padding=1)), [x, w], order=3,
                       seed=int(rng.integers(2 ** 31)))


BACKPROP_ATTRS = [
    pytest.param(dict(stride=(1,), padding=(0,), dilation=(1,), groups=1), (2, 2, 6), (3, 2, 3), id="1d"),
    pytest.param(dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), (2, 4, 5, 5), (2, 2, 2, 2),
                 id="2d-groups"),
]


@pytest.mark.parametrize("attrs, xshape, wshape", BACKPROP_ATTRS)
def test_backprop_input_op_gradients(attrs, xshape, wshape, rng):
    x, w = rng.uniform(-1, 1, xshape), rng.uniform(-1, 1, wshape)
    dy_shape = naive_conv(x, w, None, **{k: v for k, v in attrs.items()}).shape
    dy = rng.uniform(-1, 1, dy_shape)

    def build(dy, w, x_like):
        return sg.tanh(conv_backprop_input(dy, w, x_like, **attrs))
    sg.check_gradients(build, [dy, w, x], wrt=[0, 1], order=2, seed=int(rng.integers(2 ** 31)))


@pytest.mark.parametrize("attrs, xshape, wshape", BACKPROP_ATTRS)
def test_backprop_filter_op_gradients(attrs, xshape, wshape, rng):
    x, w = rng.uniform(-1, 1, xshape), rng.uniform(-1, 1, wshape)
    dy = rng.uniform(-1, 1, naive_conv(x, w, None, **attrs).shape)

    def build(x, dy, w_like):
        return sg.tanh(conv_backprop_filter(x, dy, w_like, **attrs))
    sg.check_gradients(build, [x, dy, w], wrt=[0, 1], order=2, seed=int(rng.integers(2 ** 31)))


def test_backward_ops_take_no_gradient_through_shape_inputs(rng):
    x = sg.placeholder(sg.float64, (1, 1, 4, 4))
    w = sg.placeholder(sg.float64, (1, 1, 2, 2))
    dy = sg.placeholder(sg.float64, (1, 1, 3, 3))
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    assert sg.gradients(conv_backprop_input(dy, w, x, **attrs).sum(), [x])[0] is None
    assert sg.gradients(conv_backprop_filter(x, dy, w, **attrs).sum(), [w])[0] is None


# -- empty batch ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 3])
def test_empty_batch(d, target, rng):
    c, o, spatial, kernel, stride, padding, dilation, groups = CASES[d][1]
    x = np.zeros((0, c) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    (xt, wt, bt), feeds = _feed(x, w, b, shapes=[(None, c) + spatial, w.shape, b.shape])
    y = CONV[d](xt, wt, bt, stride, padding, dilation, groups)
    grads = sg.gradients(sg.tanh(y).sum(), [xt, wt, bt])
    got, *g = session(target).run([y] + grads, feeds)
    assert got.shape == (0,) + naive_conv(np.zeros((1, c) + spatial), w, None, stride, padding, dilation,
                                          groups).shape[1:]
    assert g[0].shape == x.shape
    np.testing.assert_array_equal(g[1], np.zeros_like(w))
    np.testing.assert_array_equal(g[2], np.zeros_like(b))


# -- errors --------------------------------------------------------------------------------------------------

def test_channel_mismatch_names_input_weight_and_sizes():
    x = sg.placeholder(sg.float32, (None, 3, 8, 8), name="img")
    w = sg.placeholder(sg.float32, (4, 2, 3, 3), name="kern")
    with pytest.raises(ValueError, match=r"input 'img:0'.*has 3 channels, but weight 'kern:0'.*expects 2 "
                                         r"\(weight.shape\[1\] = 2 x groups = 1\)"):
        sg.nn.conv2d(x, w)
    with pytest.raises(ValueError, match=r"has 3 channels, but weight 'kern:0'.*expects 4 .*groups = 2"):
        sg.nn.conv2d(x, w, groups=2)


def test_out_channels_not_divisible_by_groups():
    x = sg.placeholder(sg.float32, (None, 4, 8, 8), name="img")
    w = sg.placeholder(sg.float32, (3, 2, 3, 3), name="kern")
    with pytest.raises(ValueError, match=r"weight 'kern:0' of shape \(3, 2, 3, 3\) has 3 output channels, "
                                         r"which is not divisible by groups=2"):
        sg.nn.conv2d(x, w, groups=2)


def test_wrong_ranks():
    w = sg.placeholder(sg.float32, (4, 2, 3, 3), name="kern")
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-d \(unbatched C, H, W\) or 4-d \(batched N, C, "
                                         r"H, W\) input, got input 'flat:0' of shape \(5, 2\)"):
        sg.nn.conv2d(sg.placeholder(sg.float32, (5, 2), name="flat"), w)
    with pytest.raises(ValueError, match=r"conv1d: weight 'kern:0' of shape \(4, 2, 3, 3\) must have rank 3"):
        sg.nn.conv1d(sg.placeholder(sg.float32, (1, 2, 9)), w)
    with pytest.raises(ValueError, match=r"conv3d: expected a 4-d \(unbatched C, D, H, W\) or 5-d .* shape "
                                         r"\(1, 1, 2, 3, 4, 5\)"):
        sg.nn.conv3d(sg.placeholder(sg.float32, (1, 1, 2, 3, 4, 5)), w)


def test_non_positive_output_size():
    x = sg.placeholder(sg.float32, (1, 1, 3, 3), name="small")
    w = sg.placeholder(sg.float32, (1, 1, 5, 5), name="big")
    with pytest.raises(ValueError, match=r"input of spatial size 3 with kernel 5 and dilation 1 gives output "
                                         r"size -1 .*input 'small:0' of shape \(1, 1, 3, 3\), weight 'big:0'"):
        sg.nn.conv2d(x, w)
    with pytest.raises(ValueError, match=r"spatial size 3 with kernel 2 and dilation 3 gives output size 0"):
        sg.nn.conv1d(sg.placeholder(sg.float32, (1, 1, 3)), sg.placeholder(sg.float32, (1, 1, 2)), dilation=3)
    sg.nn.conv2d(x, w, padding=1)  # fits with padding


@pytest.mark.parametrize("kw, match", [
    (dict(stride=0), r"conv2d: stride must be positive, got \(0, 0\)"),
    (dict(stride=(1, -2)), r"stride must be positive, got \(1, -2\)"),
    (dict(dilation=0), r"dilation must be positive, got \(0, 0\)"),
    (dict(padding=(0, -1)), r"padding must be non-negative, got \(0, -1\)"),
    (dict(groups=0), r"groups must be positive, got 0"),
    (dict(stride=(1, 2, 3)), r"conv2d: stride must be an int or a tuple of 2 ints, got \(1, 2, 3\)"),
    (dict(padding="full"), r"padding must be an int, a tuple of 2 ints, 'valid' or 'same', got 'full'"),
    (dict(padding="same", stride=2), r"padding='same' needs stride 1"),
    (dict(padding="same", _k=(3, 2)), r"padding='same' .* needs uneven padding"),
])
def test_bad_attributes(kw, match):
    kernel = kw.pop("_k", (3, 3))
    x = sg.placeholder(sg.float32, (1, 2, 8, 8))
    w = sg.placeholder(sg.float32, (2, 2) + kernel)
    with pytest.raises(ValueError, match=match):
        sg.nn.conv2d(x, w, **kw)


def test_non_integer_attributes():
    x, w = sg.placeholder(sg.float32, (1, 2, 8)), sg.placeholder(sg.float32, (2, 2, 3))
    with pytest.raises(TypeError, match=r"conv1d: stride must be an int or a tuple of ints, got 1.5"):
        sg.nn.conv1d(x, w, stride=1.5)


def test_dtype_errors():
    x = sg.placeholder(sg.float32, (1, 2, 8, 8), name="x32")
    w64 = sg.placeholder(sg.float64, (2, 2, 3, 3), name="w64")
    with pytest.raises(TypeError, match=r"input 'x32:0' has dtype float32 but weight 'w64:0' has dtype float64"):
        sg.nn.conv2d(x, w64)
    w = sg.placeholder(sg.float32, (2, 2, 3, 3), name="w32")
    with pytest.raises(TypeError, match=r"input 'x32:0' has dtype float32 but bias 'b64:0' has dtype float64"):
        sg.nn.conv2d(x, w, sg.placeholder(sg.float64, (2,), name="b64"))
    with pytest.raises(TypeError, match=r"floating point.*input 'xi:0' of dtype int64"):
        sg.nn.conv2d(sg.placeholder(sg.int64, (1, 2, 8, 8), name="xi"), sg.placeholder(sg.int64, (2, 2, 3, 3)))


def test_bias_shape_error():
    x, w = sg.placeholder(sg.float32, (1, 2, 8, 8)), sg.placeholder(sg.float32, (4, 2, 3, 3), name="k")
    with pytest.raises(ValueError, match=r"bias 'b:0' of shape \(3,\) must be 1-d with one entry per output "
                                         r"channel of weight 'k:0' \(shape \(4, 2, 3, 3\)\)"):
        sg.nn.conv2d(x, w, sg.placeholder(sg.float32, (3,), name="b"))


def test_impossible_shape_at_run_time_is_invalid_argument(target):
    x = sg.placeholder(sg.float32, (None, 2, None, None), name="img")
    anything = sg.placeholder(sg.float32, name="anything")
    w = sg.placeholder(sg.float32, (3, 2, 3, 3), name="k")
    y = sg.nn.conv2d(x, w, dilation=2)
    assert y.shape == (None, 3, None, None)
    y_unknown = sg.nn.conv2d(anything, w)
    assert y_unknown.shape == (None, 3, None, None)
    wv = np.zeros((3, 2, 3, 3), np.float32)
    with session(target) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError,
                           match=r"input of spatial size 4 with kernel 3 and dilation 2 gives output size 0"):
            sess.run(y, {x: np.zeros((1, 2, 9, 4), np.float32), w: wv})
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"has 4 channels, but weight .* expects 2"):
            sess.run(y_unknown, {anything: np.zeros((1, 4, 5, 5), np.float32), w: wv})
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"has rank 3, but a 2-d convolution needs rank 4"):
            sess.run(y_unknown, {anything: np.zeros((2, 5, 5), np.float32), w: wv})


def test_backward_op_shape_errors():
    x = sg.placeholder(sg.float32, (1, 2, 6, 6), name="x")
    w = sg.placeholder(sg.float32, (3, 2, 3, 3), name="w")
    dy = sg.placeholder(sg.float32, (1, 3, 5, 4), name="dy")
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    with pytest.raises(ValueError, match=r"grad_out 'dy:0' of shape \(1, 3, 5, 4\) does not match the "
                                         r"convolution output shape \(1, 3, 4, 4\)"):
        conv_backprop_input(dy, w, x, **attrs)
    with pytest.raises(ValueError, match=r"does not match the convolution output shape \(1, 3, 4, 4\)"):
        conv_backprop_filter(x, dy, w, **attrs)
