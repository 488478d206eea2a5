"""The examples of lectures 4.1 (DAG networks), 4.2 (autograd) and 4.3 (batch
processing), as unit tests.  Expected values are the ones the lecture prints,
closed forms, or independent NumPy computations / finite differences."""
import numpy as np
import pytest

import staticgraph as sg


def run(fetches, feed_dict=None):
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        return sess.run(fetches, feed_dict)


# ---------------------------------------------------------------------------- 4.1/4.2 DAG

def dag_numpy(w1, w2, x):
    x1 = w1 @ x
    x2 = x + w2 @ x1
    x3 = w1 @ (x1 + x2)
    return np.linalg.norm(x3)


def dag_numpy_split(w1_phi1, w1_phi3, w2, x):
    """The DAG with the two uses of w1 (in phi1 and phi3) as separate arguments."""
    x1 = w1_phi1 @ x
    x2 = x + w2 @ x1
    return np.linalg.norm(w1_phi3 @ (x1 + x2))


def central_differences(f, arrays, which, eps=1e-6):
    """d f(*arrays) / d arrays[which], by central differences (float64)."""
    base = arrays[which]
    out = np.zeros_like(base)
    for idx in np.ndindex(*base.shape):
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        a_p, a_m = list(arrays), list(arrays)
        a_p[which], a_m[which] = plus, minus
        out[idx] = (f(*a_p) - f(*a_m)) / (2 * eps)
    return out


@pytest.mark.parametrize("x_shape", [(5,), (5, 1)], ids=["torch-1d", "tf-column"])
def test_dag_gradients_match_finite_differences_float64(rng, x_shape):
    w1_v, w2_v = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    x_v = rng.standard_normal(x_shape)
    w1 = sg.Variable(w1_v, dtype=sg.float64)
    w2 = sg.Variable(w2_v, dtype=sg.float64)
    x = sg.Variable(x_v, dtype=sg.float64)
    x0 = x
    x1 = sg.matmul(w1, x0)
    x2 = x0 + sg.matmul(w2, x1)
    x3 = sg.matmul(w1, x1 + x2)
    q = sg.norm(x3)
    gw1, gw2 = sg.gradients(q, [w1, w2])
    assert gw1.dtype == np.float64 and gw1.shape == (5, 5)
    _q, _gw1, _gw2 = run([q, gw1, gw2])
    np.testing.assert_allclose(_q, dag_numpy(w1_v, w2_v, x_v), rtol=1e-12)
    fd1 = central_differences(dag_numpy, [w1_v, w2_v, x_v], 0)
    fd2 = central_differences(dag_numpy, [w1_v, w2_v, x_v], 1)
    scale = max(1.0, np.abs(fd1).max(), np.abs(fd2).max())
    np.testing.assert_allclose(_gw1, fd1, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(_gw2, fd2, rtol=0, atol=1e-6 * scale)


def test_dag_float32_with_random_variables_matches_float64(rng):
    # The lecture's TF code: random-normal initialized Variables, float32.
    w1 = sg.Variable(sg.random_normal([5, 5], seed=1))
    w2 = sg.Variable(sg.random_normal([5, 5], seed=2))
    x = sg.Variable(sg.random_normal([5, 1], seed=3))
    x1 = sg.matmul(w1, x)
    x2 = x + sg.matmul(w2, x1)
    x3 = sg.matmul(w1, x1 + x2)
    q = sg.norm(x3)
    gw1, gw2 = sg.gradients(q, [w1, w2])
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        vals = [v.astype(np.float64) for v in sess.run([w1, w2, x])]
        _q, _gw1, _gw2 = sess.run([q, gw1, gw2])
    assert _gw1.dtype == np.float32
    np.testing.assert_allclose(_q, dag_numpy(*vals), rtol=1e-4)
    fd1 = central_differences(dag_numpy, vals, 0)
    fd2 = central_differences(dag_numpy, vals, 1)
    np.testing.assert_allclose(_gw1, fd1, rtol=1e-3, atol=1e-3 * np.abs(fd1).max())
    np.testing.assert_allclose(_gw2, fd2, rtol=1e-3, atol=1e-3 * np.abs(fd2).max())


def test_dag_weight_sharing_gradient_is_sum_over_uses(rng):
    w1_v, w2_v, x_v = rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    w1 = sg.Variable(w1_v, dtype=sg.float64)
    # The two uses of w1 as separate tensors, to differentiate each on its own.
    use1, use3 = sg.identity(w1), sg.identity(w1)
    w2, x = sg.constant(w2_v, dtype=sg.float64), sg.constant(x_v, dtype=sg.float64)
    x1 = use1 @ x
    x2 = x + w2 @ x1
    q = (use3 @ (x1 + x2)).norm()
    g_w1, g_1, g_3 = sg.gradients(q, [w1, use1, use3])
    _g, _g1, _g3 = run([g_w1, g_1, g_3])
    np.testing.assert_allclose(_g, _g1 + _g3, rtol=1e-12, atol=1e-12)
    # each partial is itself a finite-difference derivative with the other use frozen
    fd1 = central_differences(lambda a: dag_numpy_split(a, w1_v, w2_v, x_v), [w1_v], 0)
    fd3 = central_differences(lambda a: dag_numpy_split(w1_v, a, w2_v, x_v), [w1_v], 0)
    np.testing.assert_allclose(_g1, fd1, atol=1e-6 * max(1, np.abs(fd1).max()))
    np.testing.assert_allclose(_g3, fd3, atol=1e-6 * max(1, np.abs(fd3).max()))


# ---------------------------------------------------------------------------- 4.2 autograd

def test_autograd_grad_of_sum_of_terms():
    t = sg.Variable([1., 2., 4.])
    u = sg.Variable([10., 20.])
    a = t.pow(2).sum() + u.log().sum()
    grads = sg.gradients(a, (t, u))
    assert isinstance(grads, list) and len(grads) == 2
    gt, gu = run(grads)
    np.testing.assert_allclose(gt, [2., 4., 8.], rtol=1e-6)       # tensor([2., 4., 8.])
    np.testing.assert_allclose(gu, [0.1, 0.05], rtol=1e-6)        # tensor([0.1000, 0.0500])
    assert ["%.4f" % v for v in gu] == ["0.1000", "0.0500"]


def test_autograd_single_input_gives_one_element_list():
    t = sg.Variable([1., 2., 4.])
    g = sg.gradients(t.pow(2).sum(), t)
    assert isinstance(g, list) and len(g) == 1
    np.testing.assert_allclose(run(g[0]), [2., 4., 8.])


def test_autograd_tuple_of_outputs_sums_gradients():
    x = sg.Variable([1., 2., 3.])
    y1, y2 = x.pow(2).sum(), (3.0 * x).sum()
    g, = sg.gradients([y1, y2], x)
    np.testing.assert_allclose(run(g), 2 * np.array([1., 2., 3.]) + 3.0)


def test_autograd_cube_backward():
    x = sg.Variable([-3., 2., 5.])
    u = x.pow(3).sum()
    g, = sg.gradients(u, x)
    np.testing.assert_allclose(run(g), [27., 12., 75.], rtol=1e-6)


def test_only_floating_point_tensors_can_require_gradients():
    sg.Variable([1., 10.])                    # fine
    with pytest.raises(TypeError, match="only floating point"):
        sg.Variable([1, 10])                  # int64 and trainable


def test_abs_sum_value_and_gradient():
    x = sg.Variable([1.0, -2.0, 3.0, -4.0])
    s = x.abs().sum()
    g, = sg.gradients(s, x)
    _s, _g = run([s, g])
    assert _s == 10.0
    np.testing.assert_array_equal(_g, [1., -1., 1., -1.])
    assert s.op.inputs[0].op.inputs[0] is x   # s <- abs <- x


def test_norm_of_1_2_2_and_gradient():
    x = sg.Variable([1., 2., 2.])
    q = x.norm()
    g, = sg.gradients(q, x)
    _q, _g = run([q, g])
    np.testing.assert_allclose(_q, 3.0, rtol=1e-6)
    np.testing.assert_allclose(_g, np.array([1., 2., 2.]) / 3.0, rtol=1e-6)


def test_two_layer_tanh_mlp_gradients_match_finite_differences(rng):
    # lecture 4.2: h = tanh(w1 @ x + b1); y = tanh(w2 @ h + b2); loss = (y - target).pow(2).mean()
    vals = [rng.random((20, 10)), rng.random(20), rng.random((5, 20)), rng.random(5)]
    x_v, target_v = rng.random(10), rng.random(5)

    def loss_np(w1, b1, w2, b2):
        h = np.tanh(w1 @ x_v + b1)
        y = np.tanh(w2 @ h + b2)
        return np.mean((y - target_v) ** 2)

    params = [sg.Variable(v, dtype=sg.float64) for v in vals]
    w1, b1, w2, b2 = params
    x, target = sg.constant(x_v, dtype=sg.float64), sg.constant(target_v, dtype=sg.float64)
    h = sg.tanh(w1 @ x + b1)
    y = sg.tanh(w2 @ h + b2)
    loss = (y - target).pow(2).mean()
    grads = sg.gradients(loss, params)
    out = run([loss] + grads)
    np.testing.assert_allclose(out[0], loss_np(*vals), rtol=1e-12)
    for i, g in enumerate(out[1:]):
        fd = central_differences(loss_np, vals, i)
        np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)


def blah_numpy(w, k, x):
    for i in range(k):
        x = np.tanh(w[i] @ x)
    return x


def test_blah_weight_sharing_gradient_matches_finite_differences(rng):
    w_v, xa, xb = rng.random((3, 10, 10)) * 0.3, rng.random(10), rng.random(10)
    w = sg.Variable(w_v, dtype=sg.float64)

    def blah(k, x):
        for i in range(k):
            x = sg.tanh(w[i] @ x)
        return x

    u = blah(1, sg.constant(xa, dtype=sg.float64))
    v = blah(3, sg.constant(xb, dtype=sg.float64))
    q = u.dot(v)
    gw, = sg.gradients(q, w)
    assert gw.shape == (3, 10, 10)
    _q, _gw = run([q, gw])

    def q_np(w_):
        return blah_numpy(w_, 1, xa) @ blah_numpy(w_, 3, xb)

    np.testing.assert_allclose(_q, q_np(w_v), rtol=1e-12)
    fd = central_differences(q_np, [w_v], 0)
    np.testing.assert_allclose(_gw, fd, rtol=0, atol=1e-8)
    # every slice of w is used, w[0] twice
    assert all(np.abs(_gw[i]).max() > 0 for i in range(3))


def test_higher_order_derivatives():
    x = sg.Variable([1., 2., 3.])
    phi = x.pow(2).sum()
    g1, = sg.gradients(phi, x)
    psi = g1[0].exp() - g1[2].exp()
    g2, = sg.gradients(psi, x)
    _g1, _g2 = run([g1, g2])
    np.testing.assert_allclose(_g1, [2., 4., 6.], rtol=1e-6)
    # the lecture prints tensor([ 14.7781,    0.0000, -806.8576]) (float32, 4 decimals)
    np.testing.assert_allclose(_g2, [14.7781, 0.0, -806.8576], rtol=0, atol=2e-4)
    assert ["%.4f" % v for v in _g2] == ["14.7781", "0.0000", "-806.8576"]
    np.testing.assert_allclose(_g2, [2 * np.exp(2.0), 0.0, -2 * np.exp(6.0)], rtol=1e-6)
    assert _g2[1] == 0.0


def _detach_descent(detach, eta=0.1, steps=100):
    a = sg.Variable(0.5)
    b = sg.Variable(-0.5)
    assert a.dtype == np.float32 and a.shape == ()
    a_last = sg.stop_gradient(a) if detach else a
    l = (a - 1) ** 2 + (b + 1) ** 2 + (a_last - b) ** 2
    ga, gb = sg.gradients(l, (a, b))
    step = sg.group(a.assign_sub(eta * ga), b.assign_sub(eta * gb))
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile(step, [])
        for _ in range(steps):
            assert plan() is None
        return sess.run([a, b])


def test_detach_example_without_detach():
    a, b = _detach_descent(False)
    assert ('%.06f' % a, '%.06f' % b) == ('0.333333', '-0.333333')


def test_detach_example_with_stop_gradient():
    a, b = _detach_descent(True)
    assert ('%.06f' % a, '%.06f' % b) == ('1.000000', '-0.000000')


def test_one_descent_step_reads_old_values():
    # a single step from (0.5, -0.5): ga = 2(a-1) + 2(a-b) = 1, gb = 2(b+1) - 2(a-b) = -1
    a, b = _detach_descent(False, eta=0.1, steps=1)
    np.testing.assert_allclose([a, b], [0.4, -0.4], rtol=1e-6)


def test_linear_regression_gradient_step_matches_numpy(rng):
    # lecture 4.2: y_hat = x @ w.t() + b; loss = (y_hat - y).pow(2).mean(); w -= eta * grad
    n, d_in, d_out, eta = 7, 4, 3, 0.1
    x_v = rng.standard_normal((n, d_in)).astype(np.float32)
    y_v = rng.standard_normal((n, d_out)).astype(np.float32)
    w_v = rng.standard_normal((d_out, d_in)).astype(np.float32)
    b_v = rng.standard_normal(d_out).astype(np.float32)
    x = sg.placeholder(sg.float32, (None, d_in))
    y = sg.placeholder(sg.float32, (None, d_out))
    w, b = sg.Variable(w_v), sg.Variable(b_v)
    loss = (x @ w.t() + b - y).pow(2).mean()
    gw, gb = sg.gradients(loss, [w, b])
    step = sg.group(w.assign_sub(eta * gw), b.assign_sub(eta * gb))
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        l0, _ = sess.run([loss, step], {x: x_v, y: y_v})
        w1, b1 = sess.run([w, b])
    r = x_v.astype(np.float64) @ w_v.T + b_v - y_v
    np.testing.assert_allclose(l0, np.mean(r ** 2), rtol=1e-5)
    np.testing.assert_allclose(w1, w_v - eta * 2 * r.T @ x_v / r.size, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b_v - eta * 2 * r.sum(0) / r.size, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- 4.3 batches

def test_relu_example_values():
    x_v = np.array([[0.8008, -0.2586, 0.5019, -0.2002, -0.7416],
                    [0.0557, 0.6046, 0.0864, -0.5929, 1.2606]], dtype=np.float32)
    expected = np.array([[0.8008, 0.0000, 0.5019, 0.0000, 0.0000],
                         [0.0557, 0.6046, 0.0864, 0.0000, 1.2606]], dtype=np.float32)
    x = sg.constant(x_v)
    out, out_m = run([sg.relu(x), x.relu()])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out_m, expected)
    assert out.shape == x_v.shape


@pytest.mark.parametrize("x_v, y_v, expected", [
    ([[3.]], [[0.]], 9.0),
    ([[3., 0., 0., 0.]], [[0., 0., 0., 0.]], 2.25),
])
def test_mse_values_with_plain_ops(x_v, y_v, expected):
    x, y = sg.constant(x_v), sg.constant(y_v)
    assert run(((x - y) ** 2).mean()) == expected
    assert run((x - y).pow(2).mean()) == expected


def test_fully_connected_on_a_batch_shapes(rng):
    # nn.Linear(10, 4) on a 523 x 10 batch gives 523 x 4: s = x @ w.t() + b
    w = sg.Variable(rng.standard_normal((4, 10)).astype(np.float32))
    b = sg.Variable(rng.standard_normal(4).astype(np.float32))
    x = sg.placeholder(sg.float32, (None, 10))
    y = x @ w.t() + b
    assert y.shape == (None, 4)
    x_v = rng.standard_normal((523, 10)).astype(np.float32)
    out = run(y, {x: x_v})
    assert out.shape == (523, 4)
    np.testing.assert_allclose(out, x_v @ run(w).T + run(b), rtol=1e-5, atol=1e-5)


def test_batch_equals_per_sample(rng):
    n, d, d_out = 6, 20, 15
    x_v = rng.standard_normal((n, d)).astype(np.float32)
    w_v = rng.standard_normal((d_out, d)).astype(np.float32)
    w = sg.Variable(w_v)
    x = sg.placeholder(sg.float32, (None, d))
    y_batch = x @ w.t()
    x_k = sg.placeholder(sg.float32, (d,))
    y_k = w @ x_k
    x_static = sg.placeholder(sg.float32, (n, d))
    y_stacked = sg.stack([w @ x_static[k] for k in range(n)])   # per-sample, in the graph
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        batch = sess.compile(y_batch, [x])
        single = sess.compile(y_k, [x_k])
        yb = batch(x_v)
        ys = np.stack([single(x_v[k]) for k in range(n)])
        yg = sess.run(y_stacked, {x_static: x_v})
        # one plan, another batch size
        assert batch(x_v[:2]).shape == (2, d_out)
    ref = x_v.astype(np.float64) @ w_v.T.astype(np.float64)
    assert yb.shape == ys.shape == yg.shape == (n, d_out)
    np.testing.assert_allclose(yb, ys, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yb, yg, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yb, ref, rtol=1e-4, atol=1e-4)
