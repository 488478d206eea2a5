"""sg.nn functional: softmax / log_softmax, nll_loss, cross_entropy, mse_loss, linear.

Forward values are compared with independent NumPy/SciPy computations (naive loops for the
losses); first and second derivatives with finite differences (``sg.check_gradients``).
"""
import re
import warnings

import numpy as np
import pytest
import scipy.special

import staticgraph as sg
import staticgraph.nn.functional as F
from helpers import run

FLOATS = [np.float64, np.float32]


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-6)


def naive_nll(logp, labels):
    """-logp[n, labels[n, ...], ...] by explicit loops over every label position."""
    logp, labels = np.asarray(logp, np.float64), np.asarray(labels)
    if logp.ndim == 1:
        return -logp[int(labels)]
    out = np.zeros(labels.shape)
    for pos in np.ndindex(*labels.shape):
        n, rest = pos[0], pos[1:]
        out[pos] = -logp[(n, int(labels[pos])) + rest]
    return out


def reduce_np(loss, reduction):
    return {"none": loss, "sum": np.sum(loss), "mean": np.mean(loss) if loss.size else np.nan}[reduction]


# -- softmax / log_softmax forward ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", [((1, 1), -1), ((3, 7), -1), ((3, 7), 0), ((2, 3, 5), 1), ((5,), 0),
                                        ((2, 1, 4, 3), -2)])
def test_softmax_and_log_softmax_match_scipy(rng, target, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    p = sg.placeholder(dtype, shape)
    s, ls = run(target, [F.softmax(p, axis), F.log_softmax(p, axis)], {p: x})
    assert s.dtype == dtype and ls.dtype == dtype and s.shape == shape
    np.testing.assert_allclose(s, scipy.special.softmax(x.astype(np.float64), axis=axis), **tol(dtype))
    np.testing.assert_allclose(ls, scipy.special.log_softmax(x.astype(np.float64), axis=axis), **tol(dtype))


def test_softmax_accepts_torch_dim_alias(rng):
    x = rng.standard_normal((3, 4))
    p = sg.placeholder(sg.float64, (3, 4))
    a, b = run("reference", [F.softmax(p, dim=0), sg.nn.log_softmax(p, dim=0)], {p: x})
    np.testing.assert_allclose(a, scipy.special.softmax(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(b, scipy.special.log_softmax(x, axis=0), rtol=1e-12)
    with pytest.raises(TypeError, match="both axis=0 and dim=1"):
        F.softmax(p, 0, dim=1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_large_logits_stay_finite(rng, target, dtype):
    x = rng.choice([-1000.0, 1000.0, 999.0, -998.5], size=(4, 6)).astype(dtype)
    labels = rng.integers(0, 6, size=4)
    p = sg.placeholder(dtype, (4, 6))
    s, ls, ce = run(target, [F.softmax(p), F.log_softmax(p), F.cross_entropy(p, labels, reduction="none")], {p: x})
    assert np.isfinite(s).all() and np.isfinite(ls).all() and np.isfinite(ce).all()
    ref = scipy.special.log_softmax(x.astype(np.float64), axis=1)
    np.testing.assert_allclose(ls, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ce, naive_nll(ref, labels), rtol=1e-6, atol=1e-6)


def test_nan_row_does_not_leak(rng, target):
    x = rng.standard_normal((4, 5))
    x[2, 3] = np.nan
    labels = np.array([0, 4, 1, 2])
    p = sg.placeholder(sg.float64, (4, 5))
    s, ls, ce = run(target, [F.softmax(p), F.log_softmax(p), F.cross_entropy(p, labels, reduction="none")], {p: x})
    good = [0, 1, 3]
    assert np.isnan(s[2]).all() and np.isnan(ls[2]).all() and np.isnan(ce[2])
    np.testing.assert_allclose(s[good], scipy.special.softmax(x[good], axis=1), rtol=1e-12)
    np.testing.assert_allclose(ls[good], scipy.special.log_softmax(x[good], axis=1), rtol=1e-12)
    np.testing.assert_allclose(ce[good], naive_nll(scipy.special.log_softmax(x[good], axis=1), labels[good]),
                               rtol=1e-12)
    # nor through the gradient: only the NaN row's gradient is NaN
    g = run(target, sg.gradients(F.cross_entropy(p, labels), [p])[0], {p: x})
    assert np.isnan(g[2]).all() and np.isfinite(g[good]).all()
    expected = (scipy.special.softmax(x[good], axis=1) - np.eye(5)[labels[good]]) / 4
    np.testing.assert_allclose(g[good], expected, rtol=1e-12, atol=1e-15)


# -- losses forward ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(1, 2), (5, 3), (7, 11), (3, 4, 2), (2, 5, 3, 2), (6,)])
def test_cross_entropy_and_nll_match_loops(rng, target, dtype, reduction, shape):
    logits = (rng.standard_normal(shape) * 2).astype(dtype)
    c = shape[0] if len(shape) == 1 else shape[1]
    lshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    labels = rng.integers(0, c, size=lshape).astype(rng.choice([np.int32, np.int64]))
    x = sg.placeholder(dtype, shape)
    y = sg.placeholder(labels.dtype, lshape)
    logp = scipy.special.log_softmax(logits.astype(np.float64), axis=0 if len(shape) == 1 else 1)
    ce, nll = run(target, [F.cross_entropy(x, y, reduction), F.nll_loss(x, y, reduction=reduction)],
                  {x: logits, y: labels})
    assert ce.dtype == dtype and nll.dtype == dtype
    assert ce.shape == (() if reduction != "none" else lshape)
    np.testing.assert_allclose(ce, reduce_np(naive_nll(logp, labels), reduction), **tol(dtype))
    np.testing.assert_allclose(nll, reduce_np(naive_nll(logits, labels), reduction), **tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(1,), (3, 5), (2, 3, 4)])
def test_mse_loss_matches_numpy(rng, target, dtype, reduction, shape):
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    x, t = sg.placeholder(dtype, shape), sg.placeholder(dtype, shape)
    out = run(target, F.mse_loss(x, t, reduction=reduction), {x: a, t: b})
    diff = a.astype(np.float64) - b
    expected = {"none": diff ** 2, "sum": np.sum(diff ** 2), "mean": np.sum(diff ** 2) / diff.size}[reduction]
    assert out.dtype == dtype and out.shape == np.shape(expected)
    np.testing.assert_allclose(out, expected, **tol(dtype))


def test_mse_loss_slide_values():
    f = sg.nn.MSELoss()
    a = f(sg.constant([[3.0]]), sg.constant([[0.0]]))
    b = f(sg.constant([[3.0, 0.0, 0.0, 0.0]]), sg.constant([[0.0, 0.0, 0.0, 0.0]]))
    va, vb = run("reference", [a, b])
    assert va == pytest.approx(9.0) and vb == pytest.approx(2.25)
    assert a.shape == () and b.shape == ()


def test_mse_loss_broadcast_warns_like_pytorch(rng):
    x, t = sg.placeholder(sg.float64, (4, 1)), sg.placeholder(sg.float64, (4,))
    with pytest.warns(UserWarning, match="differs from input"):
        loss = F.mse_loss(x, t)
    a, b = rng.standard_normal((4, 1)), rng.standard_normal(4)
    assert run("reference", loss, {x: a, t: b}) == pytest.approx(np.mean((a - b) ** 2))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_empty_batch(reduction):
    x, y = sg.placeholder(sg.float32, (None, 4)), sg.placeholder(sg.int64, (None,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "mean of empty slice", as PyTorch's nan
        ce, nll = run("reference", [F.cross_entropy(x, y, reduction), F.nll_loss(x, y, reduction)],
                      {x: np.zeros((0, 4), np.float32), y: np.zeros(0, np.int64)})
    for v in (ce, nll):
        if reduction == "none":
            assert v.shape == (0,)
        elif reduction == "sum":
            assert v.shape == () and v == 0
        else:
            assert v.shape == () and np.isnan(v)


# -- gradients: first and second order ---------------------------------------------------------------

@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((3, 4), 0), ((2, 3, 2), 1), ((5,), 0)])
def test_softmax_log_softmax_second_order(rng, shape, axis):
    x = rng.standard_normal(shape)
    sg.check_gradients(lambda t: F.softmax(t, axis), [x], order=2)
    sg.check_gradients(lambda t: F.log_softmax(t, axis), [x], order=2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2), (5,)])
def test_cross_entropy_and_nll_second_order(rng, reduction, shape):
    c = shape[0] if len(shape) == 1 else shape[1]
    lshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    labels = rng.integers(0, c, size=lshape)
    x = rng.standard_normal(shape)
    sg.check_gradients(lambda t, y: F.cross_entropy(t, y, reduction), [x, labels], order=2)
    sg.check_gradients(lambda t, y: F.nll_loss(F.log_softmax(t, 0 if len(shape) == 1 else 1), y, reduction),
                       [x, labels], order=2)
    # nll_loss alone is linear in its input: its second derivative is zero (and checked as such)
    sg.check_gradients(lambda t, y: F.nll_loss(t, y, reduction) * F.nll_loss(t, y, reduction), [x, labels],
                       order=2)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_second_order_both_inputs(rng, reduction):
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    recs = sg.check_gradients(lambda x, t: F.mse_loss(x, t, reduction) ** 1.5 if reduction != "none"
                              else F.mse_loss(x, t, reduction), [a, b], order=2)
    assert {r.index for r in recs} == {0, 1} and all(r.connected for r in recs if r.order == 1)


def test_gradient_reaches_target_and_labels_get_none():
    x, t = sg.placeholder(sg.float32, (2, 3)), sg.placeholder(sg.float32, (2, 3))
    gx, gt = sg.gradients(F.mse_loss(x, t), [x, t])
    assert gx is not None and gt is not None
    y = sg.placeholder(sg.int64, (2,))
    with pytest.raises(TypeError, match="floating"):
        sg.gradients(F.cross_entropy(x, y), [y])


# -- errors ----------------------------------------------------------------------------------------

def test_constant_labels_out_of_range_fail_at_build_time():
    x = sg.placeholder(sg.float32, (None, 3))
    with pytest.raises(ValueError, match=r"label 3 at position \(1,\) of labels 'const(_\d+)?:0' is out of range"):
        F.cross_entropy(x, [0, 3, 1])
    with pytest.raises(ValueError, match="label -1 .* out of range"):
        F.nll_loss(x, np.array([-1, 0]))


def test_fed_labels_out_of_range_fail_at_run_time(rng):
    x = sg.placeholder(sg.float32, (None, 4))
    y = sg.placeholder(sg.int32, (None,), name="my_labels")
    loss = F.cross_entropy(x, y)
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"my_labels:0.*label 7 at position \(2,\)"):
        run("reference", loss, {x: rng.standard_normal((3, 4)).astype(np.float32),
                                y: np.array([0, 1, 7], np.int32)})


def test_label_dtype_and_shape_errors():
    x = sg.placeholder(sg.float32, (5, 3))
    with pytest.raises(TypeError, match="labels 'flt:0' must be int32 or int64"):
        F.cross_entropy(x, sg.placeholder(sg.float32, (5,), name="flt"))
    with pytest.raises(TypeError, match="labels 'flags:0' must be int32 or int64 class indices, got bool"):
        F.nll_loss(x, sg.placeholder(sg.bool_, (5,), name="flags"))
    with pytest.raises(ValueError, match=r"labels 'lab:0' of shape \(4,\) do not fit .* expected labels of shape "
                                         r"\(5,\)"):
        F.cross_entropy(x, sg.placeholder(sg.int64, (4,), name="lab"))
    with pytest.raises(TypeError, match="logits 'ints:0' must be floating point"):
        F.cross_entropy(sg.placeholder(sg.int64, (5, 3), name="ints"), [0, 1, 2, 0, 1])


def test_run_time_label_shape_mismatch_is_clear(rng):
    x, y = sg.placeholder(sg.float64, (None, 3)), sg.placeholder(sg.int64, None, name="labs")
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"labels tensor 'labs:0' of shape \(2,\) does not "
                                                             r"fit log-probabilities of shape \(3, 3\)"):
        run("reference", F.nll_loss(x, y), {x: rng.standard_normal((3, 3)), y: np.array([0, 1])})


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_run_time_label_out_of_range_names_the_labels_tensor(rng, loss, shape):
    """The message itself (not only the backend's input list) says which tensor holds the bad label,
    for the loss and for its gradient op."""
    n_classes = 6
    x = sg.placeholder(sg.float64, (None, n_classes) + shape[1:], name="scores")
    y = sg.placeholder(sg.int64, (None,) + shape[1:], name="y")
    labels = rng.integers(0, n_classes, size=shape)
    pos = tuple(int(rng.integers(0, s)) for s in shape)
    labels[pos] = bad = int(rng.choice([-1, n_classes, n_classes + 3]))
    first = tuple(int(i) for i in np.argwhere((labels < 0) | (labels >= n_classes))[0])
    out = loss(x, y)
    feed = {x: rng.standard_normal((shape[0], n_classes) + shape[1:]), y: labels}
    expected = re.escape(f"labels tensor 'y:0' has label {bad} at position {first}, outside the class indices "
                         f"[0, {n_classes})")
    for fetch in (out, sg.gradients(out, [x])[0]):
        with pytest.raises(sg.errors.InvalidArgumentError, match=expected):
            run("reference", fetch, feed)


@pytest.mark.parametrize("labels_shape", [(3,), (4, 1), ()])
def test_cross_entropy_label_shape_error_names_cross_entropy_logits_and_labels(labels_shape):
    """Not ``nll_loss:`` nor the internal ``log_softmax:0``: the user called cross_entropy."""
    logits = sg.placeholder(sg.float32, (4, 5), name="logits")
    y = sg.placeholder(sg.int64, labels_shape, name="y")
    with pytest.raises(ValueError) as info:
        F.cross_entropy(logits, y)
    message = str(info.value)
    assert message.startswith(f"cross_entropy: labels 'y:0' of shape {sg.shapes.fmt(labels_shape)} do not fit "
                              f"logits 'logits:0' of shape (4, 5): expected labels of shape (4,)"), message
    assert "nll_loss" not in message and "log_softmax" not in message, message
    with pytest.raises(ValueError, match=r"^cross_entropy: labels 'z:0' of shape \(\?, 2\) do not fit logits "
                                         r"'u:0' of shape \(\?, 5, 3\): expected labels of shape \(\?, 3\)"):
        F.cross_entropy(sg.placeholder(sg.float32, (None, 5, 3), name="u"),
                        sg.placeholder(sg.int64, (None, 2), name="z"))


def test_bad_reduction_and_softmax_inputs():
    x = sg.placeholder(sg.float32, (2, 3))
    for fn, args in ((F.mse_loss, (x, x)), (F.cross_entropy, (x, [0, 1])), (F.nll_loss, (x, [0, 1]))):
        with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
            fn(*args, reduction="avg")
    with pytest.raises(TypeError, match="softmax needs a floating point input, got 'i:0'"):
        F.softmax(sg.placeholder(sg.int32, (2, 3), name="i"))
    with pytest.raises(ValueError, match=r"axis 2 is out of range .* shape \(2, 3\)"):
        F.log_softmax(x, 2)
    with pytest.raises(TypeError, match="float32.*float64"):
        F.mse_loss(x, sg.placeholder(sg.float64, (2, 3)))


# -- linear ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("xshape", [(7, 3), (2, 5, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_numpy(rng, target, dtype, xshape, bias):
    a = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal((4, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    x = sg.placeholder(dtype, (None,) + xshape[1:] if len(xshape) > 1 else xshape)
    out = run(target, F.linear(x, sg.constant(w, dtype=dtype), sg.constant(b, dtype=dtype) if bias else None),
              {x: a})
    expected = np.einsum("...i,oi->...o", a.astype(np.float64), w) + (b if bias else 0)
    assert out.shape == xshape[:-1] + (4,) and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_linear_second_order(rng):
    args = [rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)]
    sg.check_gradients(lambda x, w, b: F.tanh(F.linear(x, w, b)), args, order=2)
    sg.check_gradients(lambda x, w: F.sigmoid(F.linear(x, w)), args[:2], order=2)


def test_linear_shape_errors():
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    with pytest.raises(ValueError, match=r"last dimension of input 'x:0' .* is 3, but weight 'w:0' .* expects 4"):
        F.linear(x, sg.placeholder(sg.float32, (2, 4), name="w"))
    with pytest.raises(ValueError, match=r"weight 'v:0' must have shape \(out_features, in_features\)"):
        F.linear(x, sg.placeholder(sg.float32, (3,), name="v"))
    with pytest.raises(ValueError, match=r"bias 'b:0' must have shape \(2,\)"):
        F.linear(x, sg.placeholder(sg.float32, (2, 3)), sg.placeholder(sg.float32, (3,), name="b"))


def test_functional_reexports():
    assert F.relu is sg.relu and F.sigmoid is sg.sigmoid and F.tanh is sg.tanh
    for name in F.__all__:
        assert getattr(sg.nn, name) is getattr(F, name)
