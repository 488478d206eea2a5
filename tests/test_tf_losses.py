"""TF1's loss names: softmax / sparse softmax / sigmoid cross entropy with logits, against naive
loops, stable for extreme logits, first and second derivatives checked (to labels too)."""
import math

import numpy as np
import pytest

import staticgraph as sg
from helpers import run
from staticgraph.ops.tf_losses import (
    sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits,
)


# -- independent implementations: loops over samples, math module ----------------------------------------------

def naive_log_softmax(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def naive_softmax_ce(labels, logits, axis):
    lab, log = np.moveaxis(labels, axis, -1), np.moveaxis(logits, axis, -1)
    out = np.empty(log.shape[:-1])
    for idx in np.ndindex(out.shape):
        ls = naive_log_softmax(list(map(float, log[idx])))
        out[idx] = -math.fsum(float(z) * v for z, v in zip(lab[idx], ls))
    return out


def naive_sparse_ce(labels, logits):
    out = np.empty(labels.shape)
    for idx in np.ndindex(labels.shape):
        out[idx] = -naive_log_softmax(list(map(float, logits[idx])))[int(labels[idx])]
    return out


def naive_sigmoid_ce(labels, logits):
    out = np.empty(logits.shape)
    for idx in np.ndindex(logits.shape):
        x, z = float(logits[idx]), float(labels[idx])
        softplus = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
        out[idx] = softplus - x * z
    return out


def distributions(rng, shape, axis):
    p = rng.random(shape) + 0.05
    return p / p.sum(axis=axis, keepdims=True)


# -- forward ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, axis", [((5, 7), -1), ((3, 4, 5), 1), ((6,), 0), ((2, 1, 3), -1), ((4, 3), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_matches_loops(shape, axis, dtype, target, rng):
    logits = (rng.normal(size=shape) * 3).astype(dtype)
    labels = distributions(rng, shape, axis).astype(dtype)
    x = sg.placeholder(dtype, (None,) + shape[1:])
    z = sg.placeholder(dtype, shape)
    loss = softmax_cross_entropy_with_logits(labels=z, logits=x, axis=axis)
    out = run(target, loss, {x: logits, z: labels})
    expected_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
    assert out.dtype == dtype and out.shape == expected_shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, naive_softmax_ce(labels, logits, axis), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4), (1, 2)])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_sparse_softmax_cross_entropy_matches_loops(shape, label_dtype, target, rng):
    logits = rng.normal(size=shape) * 3
    labels = rng.integers(0, shape[-1], size=shape[:-1]).astype(label_dtype)
    x = sg.placeholder(sg.float64, (None,) * (len(shape) - 1) + shape[-1:])
    y = sg.placeholder(label_dtype, (None,) * (len(shape) - 1))
    out = run(target, sparse_softmax_cross_entropy_with_logits(labels=y, logits=x), {x: logits, y: labels})
    assert out.shape == shape[:-1] and out.dtype == np.float64
    np.testing.assert_allclose(out, naive_sparse_ce(labels, logits), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 7), (3,), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_cross_entropy_matches_loops(shape, dtype, target, rng):
    logits = (rng.normal(size=shape) * 4).astype(dtype)
    logits.flat[0] = 0.0
    labels = rng.random(shape).astype(dtype)
    x, z = sg.placeholder(dtype, shape), sg.placeholder(dtype, shape)
    out = run(target, sigmoid_cross_entropy_with_logits(labels=z, logits=x), {x: logits, z: labels})
    assert out.shape == shape and out.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, naive_sigmoid_ce(labels, logits), rtol=tol, atol=tol)


def test_extreme_logits_stay_finite_and_exact(target):
    logits = np.array([[1e4, -1e4, 0.0], [-800.0, -790.0, -805.0], [88.0, 89.0, 90.0]], np.float32)
    labels = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], np.float32)
    idx = np.array([1, 0, 2])
    x, z, i = sg.constant(logits), sg.constant(labels), sg.constant(idx)
    soft, sparse, sig = run(target, [softmax_cross_entropy_with_logits(z, x),
                                     sparse_softmax_cross_entropy_with_logits(i, x),
                                     sigmoid_cross_entropy_with_logits(z, x)])
    for got, want in [(soft, naive_softmax_ce(labels, logits, -1)), (sparse, naive_sparse_ce(idx, logits)),
                      (sig, naive_sigmoid_ce(labels, logits))]:
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert soft[0] == pytest.approx(2e4, rel=1e-6)


def test_sparse_label_out_of_range_is_an_error_naming_the_labels(target):
    """As TF1 on a CPU: a label outside [0, classes) is refused, naming the labels tensor."""
    x = sg.constant(np.zeros((3, 4), np.float32))
    y = sg.placeholder(sg.int64, (3,), name="y")
    loss = sparse_softmax_cross_entropy_with_logits(y, x)
    np.testing.assert_allclose(run(target, loss, {y: np.array([0, 3, 1])}), [math.log(4)] * 3, rtol=1e-6)
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"labels tensor 'y:0' has label 4"):
        run(target, loss, {y: np.array([0, 4, 1])})
    with pytest.raises(ValueError, match=r"-1"):
        sparse_softmax_cross_entropy_with_logits(sg.constant(np.array([0, 2, -1])), x)


# -- derivatives ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((2, 3, 2), 1)])
def test_softmax_cross_entropy_gradients(shape, axis, rng):
    labels = distributions(rng, shape, axis)
    logits = rng.normal(size=shape)
    build = lambda z, x: softmax_cross_entropy_with_logits(z, x, axis=axis)      # noqa: E731
    records = sg.check_gradients(build, [labels, logits], order=2)
    assert {(r.order, r.index) for r in records} == {(1, 0), (1, 1), (2, 0), (2, 1)}
    assert all(r.connected for r in records if r.order == 1)      # labels receive a gradient (TF's v2 op)


def test_softmax_cross_entropy_gradient_is_softmax_minus_labels(target, rng):
    logits = rng.normal(size=(4, 6))
    labels = distributions(rng, (4, 6), -1)
    x, z = sg.constant(logits, sg.float64), sg.constant(labels, sg.float64)
    gx, gz = sg.gradients(sg.reduce_sum(softmax_cross_entropy_with_logits(z, x)), [x, z])
    gxv, gzv = run(target, [gx, gz])
    soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(gxv, soft * labels.sum(-1, keepdims=True) - labels, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gzv, -np.log(soft), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 5)])
def test_sparse_softmax_cross_entropy_gradients(shape, rng):
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    logits = rng.normal(size=shape)
    records = sg.check_gradients(lambda y, x: sparse_softmax_cross_entropy_with_logits(y, x), [labels, logits],
                                 order=2)
    assert {(r.order, r.index) for r in records} == {(1, 1), (2, 1)}


@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_sigmoid_cross_entropy_gradients(shape, rng):
    labels = rng.random(shape)
    logits = rng.normal(size=shape) * 3
    logits.flat[0] = 0.0                        # exactly 0: the derivative is sigmoid(0) - z there too
    records = sg.check_gradients(lambda z, x: sigmoid_cross_entropy_with_logits(z, x), [labels, logits], order=2)
    assert {(r.order, r.index) for r in records} == {(1, 0), (1, 1), (2, 0), (2, 1)}


def test_sigmoid_gradient_at_zero_logits(target):
    x = sg.constant(np.zeros(3))
    z = sg.constant(np.array([0.0, 0.25, 1.0]))
    g, = sg.gradients(sg.reduce_sum(sigmoid_cross_entropy_with_logits(z, x)), [x])
    np.testing.assert_allclose(run(target, g), [0.5, 0.25, -0.5], rtol=1e-12)


# -- errors -----------------------------------------------------------------------------------------------------

def test_bad_inputs_are_named():
    logits = sg.placeholder(sg.float32, (None, 4), name="logits")
    with pytest.raises(ValueError, match=r"softmax_cross_entropy_with_logits: labels 'y:0' of shape \(\?, 3\) "
                                         r"and logits 'logits:0' of shape \(\?, 4\) must have the same shape"):
        softmax_cross_entropy_with_logits(sg.placeholder(sg.float32, (None, 3), name="y"), logits)
    with pytest.raises(TypeError, match=r"labels 'i:0' must be floating point, got int64; for integer class "
                                        r"indices use sparse_softmax_cross_entropy_with_logits"):
        softmax_cross_entropy_with_logits(sg.placeholder(sg.int64, (None, 4), name="i"), logits)
    with pytest.raises(TypeError, match=r"'z:0' \(float64\) and 'logits:0' \(float32\) have different dtypes"):
        sigmoid_cross_entropy_with_logits(sg.placeholder(sg.float64, (None, 4), name="z"), logits)
    with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy_with_logits: labels 'l:0' of shape "
                                         r"\(\?, 4\) must have the shape of logits 'logits:0' \(\?, 4\) without its "
                                         r"last dimension, \(\?,\)"):
        sparse_softmax_cross_entropy_with_logits(sg.placeholder(sg.int64, (None, 4), name="l"), logits)
    with pytest.raises(TypeError, match="labels 'f:0' must be integer class indices, got float32"):
        sparse_softmax_cross_entropy_with_logits(sg.placeholder(sg.float32, (None,), name="f"), logits)
    with pytest.raises(ValueError, match="need a known rank >= 1 and a known number of classes"):
        sparse_softmax_cross_entropy_with_logits(sg.placeholder(sg.int64, (None,)),
                                                 sg.placeholder(sg.float32, (None, None)))


def test_ops_are_grouped_under_the_loss_name():
    x = sg.placeholder(sg.float32, (None, 3))
    loss = softmax_cross_entropy_with_logits(sg.ones_like(x), x, name="xent")
    assert loss.op.name.startswith("xent/")
