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


def _assert_match(cpu, ref, **tol):
    """Every fetch of every step, and the final variables, agree."""
    for a, b in zip(cpu, ref):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, **tol)


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
    _assert_match(cpu, ref, **tol)
    assert writeback == ["mm_update", "ew_SubMul"]      # the weight's GEMM runs into it; the bias: one pass
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
    _assert_match(cpu, ref, rtol=1e-13)
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
    _assert_match(cpu, ref, rtol=1e-13)
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


def _dense_net(rng, dtype, n_in, n_out, transpose):
    w0 = rng.standard_normal((n_out, n_in) if transpose else (n_in, n_out)).astype(dtype) * 0.3

    def build():
        x = sg.placeholder(dtype, (None, n_in))
        w = sg.Variable(w0, dtype=dtype)
        y = x @ sg.transpose(w) if transpose else x @ w
        loss = sg.reduce_sum(sg.square(sg.tanh(y)))
        return sg.train.GradientDescentOptimizer(0.05).minimize(loss), [loss], [x]
    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose", [False, True])
def test_a_dense_weights_sgd_step_is_one_gemm_into_the_variable(rng, dtype, transpose):
    n_in, n_out = int(rng.integers(17, 40)), int(rng.integers(9, 30))
    build = _dense_net(rng, dtype, n_in, n_out, transpose)
    feeds = [[rng.standard_normal((n, n_in)).astype(dtype)] for n in (13, 31, 20)]
    cpu, (calls, writeback) = _steps("cpu", build, feeds)
    ref, _ = _steps("reference", build, feeds)
    tol = dict(rtol=3e-5, atol=3e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    _assert_match(cpu, ref, **tol)
    assert writeback == ["mm_update"]
    assert [c[0] for c in calls].count("mm_blas") == 1          # the forward product only


def test_gemm_updates_are_skipped_for_tiny_products_and_already_written_operands(rng):
    w0, a0, b0 = rng.standard_normal((3, 2)), rng.standard_normal((20, 30)) * 0.1, rng.standard_normal((30, 25)) * 0.1

    def tiny():
        x = sg.placeholder(sg.float64, (2, 3))
        w = sg.Variable(w0, dtype=sg.float64)
        return sg.train.GradientDescentOptimizer(0.1).minimize(sg.reduce_sum(sg.square(x @ w))), [], [x]

    def crossed(order):       # each update's gradient reads the other variable (gemm_fwd_bwd's shape)
        def build():
            a = sg.Variable(a0, dtype=sg.float64)
            b = sg.Variable(b0, dtype=sg.float64)
            loss = sg.reduce_sum(sg.square(a @ b))
            var_list = [a, b] if order == "ab" else [b, a]
            return sg.train.GradientDescentOptimizer(0.01).minimize(loss, var_list=var_list), [loss], []
        return build
    _, (_, writeback) = _steps("cpu", tiny, [[rng.standard_normal((2, 3))]])
    assert writeback == ["ew_SubMul"]
    for order in ("ab", "ba"):
        cpu, (_, writeback) = _steps("cpu", crossed(order), [[], [], []])
        ref, _ = _steps("reference", crossed(order), [[], [], []])
        # the first update's GEMM reads the other variable before that one is written: it runs into
        # its variable; the second's reads the first, already updated: it keeps its product
        assert writeback == ["mm_update", "ew_SubMul"]
        _assert_match(cpu, ref, rtol=1e-12)
