"""The cpu kernels of the softmax family (Softmax, LogSoftmax, NllLoss, NllLossGrad) against the
reference backend and naive loops: forward and backward, layouts, dtypes, NaN rows, empty batches,
batch-size changes without recompiling, the natively compiled step, and label errors."""
import re

import numpy as np
import pytest

import staticgraph as sg
from helpers import run_cpu_and_reference
import staticgraph.nn.functional as F
from compiler.backends.cpu.executable import STATS

FLOATS = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def naive_softmax(x, axis, log):
    """Row by row in float64 with Python loops over every row."""
    x64 = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(x64)
    for idx in np.ndindex(x64.shape[:-1]):
        row = x64[idx]
        m = max(row) if row.size else 0.0
        e = [np.exp(v - m) for v in row]
        s = sum(e)
        out[idx] = [(v - m) - np.log(s) for v in row] if log else [v / s for v in e]
    return np.moveaxis(out, -1, axis).astype(x.dtype)


def naive_nll(logp, labels):
    if logp.ndim == 1:
        return -logp[labels]
    out = np.empty(labels.shape, logp.dtype)
    for idx in np.ndindex(labels.shape):
        out[idx] = -logp[(idx[0], labels[idx]) + idx[1:]]
    return out


def naive_nll_grad(g, labels, shape):
    out = np.zeros(shape, g.dtype)
    if len(shape) == 1:
        out[labels] = -g
        return out
    for idx in np.ndindex(labels.shape):
        out[(idx[0], labels[idx]) + idx[1:]] = -g[idx]
    return out


# -- softmax / log_softmax -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 7), 1), ((2, 3, 7), 2),
                                        ((2, 1, 3, 5), 0), ((2, 4, 3, 5), 3), ((1, 1), 1)])
def test_softmax_log_softmax_forward_and_backward(rng, dtype, shape, axis):
    x = sg.placeholder(dtype, shape)
    w = sg.constant(rng.standard_normal(shape), dtype=dtype)
    xv = (rng.standard_normal(shape) * 3).astype(dtype)
    for fn, log in ((F.softmax, False), (F.log_softmax, True)):
        y = fn(x, axis)
        (gx,) = sg.gradients(sg.reduce_sum(y * w), [x])
        (cy, cg), (ry, rg) = run_cpu_and_reference([y, gx], {x: xv})
        np.testing.assert_allclose(cy, naive_softmax(xv, axis, log), **tol(dtype))
        np.testing.assert_allclose(cy, ry, **tol(dtype))
        np.testing.assert_allclose(cg, rg, **tol(dtype))
        assert cy.dtype == cg.dtype == dtype


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_nan_inf_and_huge_rows_stay_in_their_row(rng, fn):
    xv = rng.standard_normal((6, 5)).astype(np.float32)
    xv[1, 2] = np.nan
    xv[2, :] = -np.inf
    xv[3, 4] = np.inf
    xv[4] = [1e30, -1e30, 3e29, 0.0, 1e30]
    xv[5, 0] = -np.inf
    x = sg.placeholder(sg.float32, (None, 5))
    cpu, ref = run_cpu_and_reference(fn(x), {x: xv})
    np.testing.assert_allclose(cpu, ref, rtol=2e-6, atol=1e-7, equal_nan=True)
    assert np.isnan(cpu[1]).all() and np.isfinite(cpu[[0, 4, 5]] if fn is F.softmax else cpu[[0, 4]]).all()


def test_softmax_may_overwrite_its_input_only_when_dead(rng):
    """The kernel runs in place; the memory plan must keep an input that is read later."""
    a = sg.placeholder(sg.float64, (None, 9))
    z = a * 2.0
    y = F.softmax(z) + z
    lz = F.log_softmax(a * 3.0)
    av = rng.standard_normal((5, 9))
    (cy, cl), (ry, rl) = run_cpu_and_reference([y, lz], {a: av})
    np.testing.assert_allclose(cy, ry, **tol(np.float64))
    np.testing.assert_allclose(cl, rl, **tol(np.float64))


# -- nll_loss / cross_entropy ------------------------------------------------------------------------

CASES = [((7,), ()), ((5, 4), (5,)), ((3, 6, 2), (3, 2)), ((2, 3, 2, 3), (2, 2, 3)), ((1, 1), (1,))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,label_shape", CASES)
def test_nll_loss_and_its_gradient_match_loops(rng, dtype, label_dtype, shape, label_shape):
    lp = sg.placeholder(dtype, shape)
    lab = sg.placeholder(label_dtype, label_shape, name="lab")
    lpv = rng.standard_normal(shape).astype(dtype)
    labv = rng.integers(0, shape[0 if len(shape) == 1 else 1], size=label_shape).astype(label_dtype)
    gv = rng.standard_normal(label_shape).astype(dtype)
    loss = F.nll_loss(lp, lab, reduction="none")
    (glp,) = sg.gradients(loss, [lp], grad_ys=[sg.constant(gv, dtype=dtype)])
    (cl, cg), (rl, rg) = run_cpu_and_reference([loss, glp], {lp: lpv, lab: labv})
    np.testing.assert_array_equal(cl, naive_nll(lpv, labv))
    np.testing.assert_array_equal(cg, naive_nll_grad(gv, labv, shape))
    np.testing.assert_array_equal(cl, rl)
    np.testing.assert_array_equal(cg, rg)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,label_shape", CASES)
def test_cross_entropy_first_and_second_order(rng, dtype, reduction, shape, label_shape):
    """Second order runs NllLoss again (the gradient of NllLossGrad) and both softmax backward rules."""
    x = sg.placeholder(dtype, shape)
    lab = sg.placeholder(np.int64, label_shape)
    xv = rng.standard_normal(shape).astype(dtype)
    labv = rng.integers(0, shape[0 if len(shape) == 1 else 1], size=label_shape)
    v = sg.constant(rng.standard_normal(shape), dtype=dtype)
    loss = F.cross_entropy(x, lab, reduction=reduction)
    (g,) = sg.gradients(sg.reduce_sum(loss), [x])
    (hv,) = sg.gradients(sg.reduce_sum(g * v), [x])
    cpu, ref = run_cpu_and_reference([loss, g, hv], {x: xv, lab: labv})
    for a, b in zip(cpu, ref):
        np.testing.assert_allclose(a, b, **tol(dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batch(rng, reduction):
    x = sg.placeholder(sg.float32, (None, 4))
    lab = sg.placeholder(sg.int64, (None,))
    loss = F.cross_entropy(x, lab, reduction=reduction)
    (g,) = sg.gradients(sg.reduce_sum(loss), [x])
    feed = {x: np.zeros((0, 4), np.float32), lab: np.zeros(0, np.int64)}
    cpu, ref = run_cpu_and_reference([loss, g, F.softmax(x)], feed)
    for a, b in zip(cpu, ref):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# -- plans: batch sizes and the native step -------------------------------------------------------------

def _classifier(rng, dtype=np.float32):
    x = sg.placeholder(dtype, (None, 7, 3), name="x")
    lab = sg.placeholder(sg.int64, (None, 3), name="lab")
    w = sg.Variable(rng.standard_normal((7, 7)).astype(dtype) * 0.3, name="w")
    logits = sg.transpose(sg.matmul(sg.transpose(x, (0, 2, 1)), w), (0, 2, 1))
    loss = F.cross_entropy(logits, lab)
    train = sg.train.GradientDescentOptimizer(0.5).minimize(loss)
    probs = F.softmax(logits, axis=1)
    return x, lab, w, loss, train, probs


def _feed(rng, x, lab, n):
    return {x: rng.standard_normal((n, 7, 3)).astype(np.float32), lab: rng.integers(0, 7, size=(n, 3))}


def test_training_steps_with_new_batch_sizes_do_not_recompile(rng):
    x, lab, w, loss, train, probs = _classifier(rng)
    feeds = [_feed(rng, x, lab, n) for n in (4, 9, 4, 1)]
    results = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            if target == "cpu":
                plan = sess.compile([loss, probs, train], [x, lab])
                plans, compiles = STATS["plans"], STATS["kernel_compiles"] + STATS["kernel_loads"]
                layouts = STATS["layouts"]
                outs = [plan(f[x], f[lab])[:2] for f in feeds]
                assert STATS["plans"] == plans
                assert STATS["kernel_compiles"] + STATS["kernel_loads"] == compiles
                assert STATS["layouts"] - layouts == 3            # batch sizes 4, 9, 1
            else:
                outs = [sess.run([loss, probs, train], f)[:2] for f in feeds]
            results[target] = (outs, sess.get_variable_value(w))
    for (cl, cp), (rl, rp) in zip(results["cpu"][0], results["reference"][0]):
        np.testing.assert_allclose(cl, rl, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(cp, rp, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(results["cpu"][1], results["reference"][1], rtol=2e-5, atol=1e-6)


def test_native_step_forward_backward_batch_sizes_and_label_error(rng):
    """One natively compiled step (plan.jit()): every kernel of the family, three batch sizes with
    one signature, then a bad label reported by the native step."""
    x = sg.placeholder(sg.float32, (None, 5, 2), name="x")
    lab = sg.placeholder(sg.int32, (None, 2), name="lab")
    loss = F.cross_entropy(x, lab)
    (g,) = sg.gradients(loss, [x])
    fetches = [loss, g, F.softmax(x, axis=1)]
    with sg.Session() as sess:
        plan = sess.compile(fetches, [x, lab])
        plan.jit()
        assert plan._exe.jitted
        compiles = STATS["kernel_compiles"] + STATS["kernel_loads"]
        for n in (4, 7, 4):
            xv = rng.standard_normal((n, 5, 2)).astype(np.float32)
            lv = rng.integers(0, 5, size=(n, 2)).astype(np.int32)
            ref = sg.Session(target="reference").run(fetches, {x: xv, lab: lv})
            for a, b in zip(plan(xv, lv), ref):
                np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
        assert STATS["kernel_compiles"] + STATS["kernel_loads"] == compiles
        lv[3, 1] = 5
        with pytest.raises(sg.errors.InvalidArgumentError, match=_expected("lab:0", 5, (3, 1), 5)):
            plan(xv, lv)


# -- errors ----------------------------------------------------------------------------------------

def _expected(name, bad, pos, n_classes):
    return re.escape(f"labels tensor '{name}' has label {bad} at position {pos}, outside the class indices "
                     f"[0, {n_classes})")


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 2, 3)])
def test_out_of_range_label_names_the_labels_tensor(rng, loss, shape):
    """The first bad label in C order, for the loss op and its gradient op, like the reference;
    the kernel checks before it reads or writes anything."""
    n_classes = 6
    x = sg.placeholder(sg.float64, (None, n_classes) + shape[1:], name="scores")
    y = sg.placeholder(sg.int32, (None,) + shape[1:], name="y")
    labels = rng.integers(0, n_classes, size=shape).astype(np.int32)
    for _ in range(2):
        pos = tuple(int(rng.integers(0, s)) for s in shape)
        labels[pos] = int(rng.choice([-1, -100, n_classes, n_classes + 3]))
    first = tuple(int(i) for i in np.argwhere((labels < 0) | (labels >= n_classes))[0])
    out = loss(x, y)
    feed = {x: rng.standard_normal((shape[0], n_classes) + shape[1:]), y: labels}
    for fetch in (out, sg.gradients(out, [x])[0]):
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"NllLoss(Grad)? op") as ref_error:
            sg.Session(target="reference").run(fetch, {x: feed[x], y: labels})
        op_type = ref_error.value.op.type          # the first failing op in schedule order
        with sg.Session() as sess:
            plan = sess.compile(fetch, [x, y])
            with pytest.raises(sg.errors.InvalidArgumentError,
                               match=f"{op_type} op .*" + _expected("y:0", int(labels[first]), first, n_classes)):
                plan(feed[x], feed[y])
            good = np.clip(labels, 0, n_classes - 1)           # the plan still works afterwards
            np.testing.assert_allclose(plan(feed[x], good), sg.Session(target="reference").run(
                fetch, {x: feed[x], y: good}), rtol=1e-12)


def test_unbatched_out_of_range_label_and_run_time_shape_mismatch(rng):
    x = sg.placeholder(sg.float32, (4,))
    y = sg.placeholder(sg.int64, (), name="target")
    with pytest.raises(sg.errors.InvalidArgumentError, match=_expected("target:0", 4, (), 4)):
        sg.Session().run(F.cross_entropy(x, y), {x: np.zeros(4, np.float32), y: np.int64(4)})
    lp, labs = sg.placeholder(sg.float64, (None, 3)), sg.placeholder(sg.int64, None, name="labs")
    loss = F.nll_loss(lp, labs)
    for fetch in (loss, sg.gradients(loss, [lp])[0]):
        with pytest.raises(sg.errors.InvalidArgumentError,
                           match=r"labels.*'labs:0'.* of shape \(2,\) do(es)? not fit .*of shape \(3, 3\).*"
                                 r"expected labels of shape \(3,\)"):
            sg.Session().run(fetch, {lp: rng.standard_normal((3, 3)), labs: np.array([0, 1])})
