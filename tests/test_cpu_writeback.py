"""The cpu write-back of ``assign_sub(var, a * b)`` (an SGD step, ``lr * grad``): one ``ew_SubMul``
pass over the variable instead of the product's kernel and a subtraction. Checked against the
reference backend over several steps: SGD on a small network, a product that is also fetched
(kept as its own kernel), two updates that read each other's variable (reads see old values),
and a run-time shape error."""
import numpy as np
import pytest

import staticgraph as sg


def _kernels(sess, fetches, feeds=()):
    """The plan's main calls as (kernel, op name), and its write-back kernels."""
    prog = sess.compile(fetches, list(feeds))._exe.base.prog
    return [(c.kernel, c.op.name) for c in prog.calls], [c.kernel for c in prog.writeback]


def _steps(target, build, feeds, steps=3):
    """Run ``build()``'s (train, fetches) ``steps`` times on ``target``; return every fetch and
    the variables' final values."""
    with sg.Graph().as_default():
        train, fetches, placeholders = build()
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            out = [sess.run([train] + fetches, dict(zip(placeholders, f)))[1:] for f in feeds]
            out.append(sess.run(sg.global_variables()))
            kernels = _kernels(sess, [train] + fetches, placeholders) if target == "cpu" else None
    return out, kernels


def _sgd_net(rng, dtype):
    w0 = rng.standard_normal((5, 4)).astype(dtype)
    b0 = rng.standard_normal(4).astype(dtype)

    def build():
        x = sg.placeholder(dtype, (None, 5))
        w, b = sg.Variable(w0, dtype=dtype), sg.Variable(b0, dtype=dtype)
        loss = sg.reduce_mean(sg.square(sg.tanh(x @ w + b)))
        return sg.train.GradientDescentOptimizer(0.3).minimize(loss), [loss], [x]
    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_updates_run_as_one_pass_and_match_the_reference(rng, dtype):
    build = _sgd_net(rng, dtype)
    feeds = [[rng.standard_normal((n, 5)).astype(dtype)] for n in (3, 7, 1)]
    cpu, (calls, writeback) = _steps("cpu", build, feeds)
    ref, _ = _steps("reference", build, feeds)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(cpu, ref):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, **tol)
    assert writeback == ["ew_SubMul", "ew_SubMul"]
    assert not [c for c in calls if c[1].startswith("GradientDescent")]      # no lr * grad kernel


def test_a_fetched_product_keeps_its_kernel(rng):
    v0 = rng.standard_normal(6)

    def build():
        v = sg.Variable(v0, dtype=sg.float64)
        g = sg.placeholder(sg.float64, (6,))
        step = 0.5 * g
        return sg.assign_sub(v, step), [step, v * 1.0], [g]
    feeds = [[rng.standard_normal(6)] for _ in range(3)]
    cpu, (calls, writeback) = _steps("cpu", build, feeds)
    ref, _ = _steps("reference", build, feeds)
    for a, b in zip(cpu, ref):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-13)
    assert ("ew_Mul", "multiply") in calls and writeback == ["ew_Sub"]


def test_updates_reading_each_others_variable_see_old_values(rng):
    a0, b0 = rng.standard_normal(4), rng.standard_normal(4)

    def build():
        a, b = sg.Variable(a0, dtype=sg.float64), sg.Variable(b0, dtype=sg.float64)
        s = sg.placeholder(sg.float64, ())
        return sg.group(sg.assign_sub(a, s * b), sg.assign_sub(b, a * s)), [a + b], [s]
    feeds = [[0.5], [-1.5], [2.0]]
    cpu, (_, writeback) = _steps("cpu", build, feeds)
    ref, _ = _steps("reference", build, feeds)
    for x, y in zip(cpu, ref):
        for u, v in zip(x, y):
            np.testing.assert_allclose(u, v, rtol=1e-13)
    assert writeback.count("ew_SubMul") == 2


def test_a_product_of_the_wrong_run_time_shape_is_a_clear_error():
    v = sg.Variable(np.zeros(3), dtype=sg.float64)
    g = sg.placeholder(sg.float64, (None,))
    step = sg.assign_sub(v, 2.0 * g)
    with sg.Session(target="cpu") as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(step, {g: np.ones(3)})
        np.testing.assert_array_equal(sess.run(v), [-2.0, -2.0, -2.0])
        assert _kernels(sess, [step], [g])[1] == ["ew_SubMul"]
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"variable 'Variable'.*\(5,\)|\(5,\).*variable 'Variable'"):
            sess.run(step, {g: np.ones(5)})
