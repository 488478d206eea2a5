"""sg.train optimizers against hand-written NumPy versions of the same TF1 formulas."""
import numpy as np
import pytest

import staticgraph as sg

STEPS = 6


# -- NumPy references: update(param, grad, state, t) -> new param (t counts from 1) ------------

def np_sgd(lr):
    def update(p, g, s, t):
        return p - lr * g
    return update


def np_momentum(lr, mu, nesterov=False):
    def update(p, g, s, t):
        s["momentum"] = mu * s.get("momentum", 0.0) + g
        return p - lr * ((g + mu * s["momentum"]) if nesterov else s["momentum"])
    return update


def np_adam(lr=0.001, b1=0.9, b2=0.999, eps=1e-8):
    def update(p, g, s, t):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return p - lr_t * s["m"] / (np.sqrt(s["v"]) + eps)
    return update


CASES = {
    "sgd": (lambda: sg.train.GradientDescentOptimizer(0.1), np_sgd(0.1)),
    "momentum": (lambda: sg.train.MomentumOptimizer(0.05, 0.9), np_momentum(0.05, 0.9)),
    "nesterov": (lambda: sg.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
                 np_momentum(0.05, 0.9, nesterov=True)),
    "adam": (lambda: sg.train.AdamOptimizer(0.05), np_adam(0.05)),
    "adam_custom": (lambda: sg.train.AdamOptimizer(0.02, beta1=0.5, beta2=0.9, epsilon=1e-3),
                    np_adam(0.02, 0.5, 0.9, 1e-3)),
}


# -- a small regression problem: loss = mean((X @ W + b - Y)^2) ---------------------------------

def make_problem(rng, n=8):
    return {"X": rng.normal(size=(n, 3)), "Y": rng.normal(size=(n, 2)),
            "W": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}


def np_grads(X, Y, W, b):
    r = X @ W + b - Y
    scale = 2.0 / r.size
    return scale * X.T @ r, scale * r.sum(axis=0)


def np_trajectory(update, prob, steps):
    """Parameters (and optimizer state) after each of ``steps`` steps."""
    W, b = prob["W"].copy(), prob["b"].copy()
    sW, sb, out = {}, {}, []
    for t in range(1, steps + 1):
        gW, gb = np_grads(prob["X"], prob["Y"], W, b)
        W, b = update(W, gW, sW, t), update(b, gb, sb, t)
        out.append((W.copy(), b.copy(), dict(sW)))
    return out


def build(prob, dtype):
    W = sg.Variable(prob["W"], name="W", dtype=dtype)
    b = sg.Variable(prob["b"], name="b", dtype=dtype)
    X = sg.constant(prob["X"], dtype=dtype)
    Y = sg.constant(prob["Y"], dtype=dtype)
    loss = ((X @ W + b - Y) ** 2).mean()
    return W, b, loss


def tolerances(dtype):
    return dict(rtol=1e-11, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_matches_numpy_formula(case, dtype, rng):
    make_opt, update = CASES[case]
    prob = make_problem(rng)
    W, b, loss = build(prob, dtype)
    opt = make_opt()
    train = opt.minimize(loss)
    expected = np_trajectory(update, prob, STEPS)
    tol = tolerances(dtype)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        for t, (eW, eb, state) in enumerate(expected, start=1):
            assert sess.run(train) is None
            gotW, gotb = sess.run([W, b])
            assert gotW.dtype == dtype
            np.testing.assert_allclose(gotW, eW, **tol, err_msg=f"W after step {t}")
            np.testing.assert_allclose(gotb, eb, **tol, err_msg=f"b after step {t}")
            for slot, value in state.items():
                np.testing.assert_allclose(sess.run(opt.get_slot(W, slot)), value, **tol,
                                           err_msg=f"slot {slot} after step {t}")


def test_adam_beta_powers_advance_once_per_step():
    w = sg.Variable(np.ones(2), dtype=sg.float64, name="w")
    opt = sg.train.AdamOptimizer(0.1, beta1=0.8, beta2=0.95)
    train = opt.minimize((w * w).sum())
    powers = {v.op.name: v for v in opt.variables() if "power" in v.op.name}
    assert sorted(powers) == ["beta1_power", "beta2_power"]
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        for _ in range(3):
            sess.run(train)
        np.testing.assert_allclose(sess.run(powers["beta1_power"]), 0.8 ** 4)
        np.testing.assert_allclose(sess.run(powers["beta2_power"]), 0.95 ** 4)


def test_slot_variables_names_and_trainability():
    w = sg.Variable(np.ones(2), name="w")
    v = sg.Variable(np.ones(3), name="v")
    loss = (w * w).sum() + v.sum()
    mom, adam = sg.train.MomentumOptimizer(0.1, 0.9), sg.train.AdamOptimizer()
    mom.minimize(loss)
    adam.minimize(loss)
    assert mom.get_slot_names() == ["momentum"]
    assert adam.get_slot_names() == ["m", "v"]
    assert mom.get_slot(w, "momentum").op.name == "w/Momentum"
    assert adam.get_slot(v, "m").op.name == "v/Adam_m"
    assert adam.get_slot(v, "v").op.name == "v/Adam_v"
    assert adam.get_slot(w, "m").shape == w.shape and adam.get_slot(w, "m").dtype == w.dtype
    assert adam.get_slot(w, "nope") is None
    assert [t.op.name for t in sg.trainable_variables()] == ["w", "v"]


def test_initializer_built_before_minimize_misses_slots():
    w = sg.Variable(np.ones(2), name="w")
    early_init = sg.global_variables_initializer()
    train = sg.train.MomentumOptimizer(0.1, 0.9).minimize((w * w).sum())
    with sg.Session() as sess:
        sess.run(early_init)
        with pytest.raises(sg.errors.FailedPreconditionError, match="w/Momentum"):
            sess.run(train)
        sess.run(sg.global_variables_initializer())
        sess.run(train)
        np.testing.assert_allclose(sess.run(w), [0.8, 0.8], rtol=1e-6)


def test_linear_regression_converges_to_least_squares(rng):
    n = 64
    X_data = rng.normal(size=(n, 3))
    y_data = X_data @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=n)
    A = np.hstack([X_data, np.ones((n, 1))])
    best = np.linalg.lstsq(A, y_data, rcond=None)[0]
    best_loss = np.mean((A @ best - y_data) ** 2)

    X = sg.placeholder(sg.float32, (None, 3), name="X")
    y = sg.placeholder(sg.float32, (None,), name="y")
    w = sg.Variable(np.zeros(3), name="w")
    b = sg.Variable(0.0, name="b")
    loss = ((X @ w + b - y) ** 2).mean()
    train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
    feed = {X: X_data, y: y_data}
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        losses = [sess.run([loss, train], feed)[0] for _ in range(150)]
        final = sess.run(loss, feed)
        np.testing.assert_allclose(np.append(sess.run(w), sess.run(b)), best, atol=1e-3)
    assert all(b <= a + 1e-7 for a, b in zip(losses, losses[1:])), "loss must not increase under small-step GD"
    assert losses[0] > 10 * final
    assert final == pytest.approx(best_loss, rel=1e-3)


def test_minimize_with_var_list_updates_only_those():
    w = sg.Variable(np.array([1.0, 2.0]), name="w", dtype=sg.float64)
    b = sg.Variable(np.array(3.0), name="b", dtype=sg.float64)
    opt = sg.train.MomentumOptimizer(0.1, 0.5)
    train = opt.minimize(((w + b) ** 2).sum(), var_list=[w])
    assert opt.get_slot(b, "momentum") is None
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(train)
        # d/dw = 2 (w + b) = [8, 10]
        np.testing.assert_allclose(sess.run(w), [1.0 - 0.8, 2.0 - 1.0])
        assert sess.run(b) == 3.0


def test_compute_gradients_defaults_to_trainable_variables():
    w = sg.Variable(np.ones(2), name="w")
    frozen = sg.Variable(np.ones(2), name="frozen", trainable=False)
    unused = sg.Variable(np.ones(2), name="unused")
    pairs = sg.train.GradientDescentOptimizer(0.1).compute_gradients((w * frozen).sum())
    assert [v for _, v in pairs] == [w, unused]
    assert pairs[0][0] is not None and pairs[1][0] is None


@pytest.mark.parametrize("lr_dtype", [sg.float32, sg.float64])
def test_learning_rate_placeholder(lr_dtype):
    lr = sg.placeholder(lr_dtype, (), name="lr")
    w = sg.Variable(np.array([1.0, -2.0]), name="w", dtype=sg.float64)
    train = sg.train.GradientDescentOptimizer(lr).minimize((w * w).sum())
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(train, {lr: 0.0})
        np.testing.assert_array_equal(sess.run(w), [1.0, -2.0])
        sess.run(train, {lr: 0.25})  # w -= 0.25 * 2w  ->  w / 2
        np.testing.assert_allclose(sess.run(w), [0.5, -1.0])
        with pytest.raises(sg.errors.InvalidArgumentError, match="lr"):
            sess.run(train)


def test_learning_rate_placeholder_adam_matches_numpy(rng):
    prob = make_problem(rng)
    W, b, loss = build(prob, np.float64)
    lr = sg.placeholder(sg.float64, (), name="lr")
    train = sg.train.AdamOptimizer(lr).minimize(loss)
    expected = np_trajectory(np_adam(0.05), prob, 3)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        for eW, eb, _ in expected:
            sess.run(train, {lr: 0.05})
        np.testing.assert_allclose(sess.run(W), eW, rtol=1e-11)


def test_learning_rate_must_be_scalar_float():
    with pytest.raises(ValueError, match="scalar"):
        sg.train.GradientDescentOptimizer(sg.placeholder(sg.float32, (2,)))
    with pytest.raises(TypeError, match="floating"):
        sg.train.GradientDescentOptimizer(sg.placeholder(sg.int32, ()))


def test_apply_gradients_skips_none_grad():
    w = sg.Variable(np.array([1.0, 1.0]), name="w")
    c = sg.Variable(np.array([5.0]), name="c")
    opt = sg.train.GradientDescentOptimizer(0.5)
    pairs = opt.compute_gradients((w * 3.0).sum(), var_list=[w, c])
    assert pairs[1] == (None, c)
    train = opt.apply_gradients(pairs)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(train)
        np.testing.assert_allclose(sess.run(w), [-0.5, -0.5])
        np.testing.assert_array_equal(sess.run(c), [5.0])


def test_apply_gradients_all_none_names_the_variables():
    w = sg.Variable(np.ones(2), name="w")
    c = sg.Variable(np.ones(2), name="c")
    opt = sg.train.AdamOptimizer()
    with pytest.raises(ValueError, match=r"no gradients.*'w'.*'c'"):
        opt.apply_gradients([(None, w), (None, c)])
    with pytest.raises(ValueError, match="'c'"):
        opt.minimize(w.sum() * 0.0 + sg.constant(1.0) + sg.stop_gradient(c).sum(), var_list=[c])


def test_apply_gradients_with_user_gradient():
    w = sg.Variable(np.array([1.0, 2.0]), name="w")
    train = sg.train.MomentumOptimizer(1.0, 0.5).apply_gradients([(sg.constant([1.0, -1.0]), w)], name="step")
    assert train.name == "step"
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(train)
        sess.run(train)  # accum: g, then 1.5 g  ->  w - 2.5 g
        np.testing.assert_allclose(sess.run(w), [-1.5, 4.5])


def test_invalid_var_lists():
    w = sg.Variable(np.ones(2), name="w")
    opt = sg.train.GradientDescentOptimizer(0.1)
    with pytest.raises(TypeError, match="Variable"):
        opt.minimize(w.sum(), var_list=[w * 2.0])
    with pytest.raises(ValueError, match="twice"):
        opt.minimize(w.sum(), var_list=[w, w])
    sg.reset_default_graph()
    with pytest.raises(ValueError, match="no variables"):
        opt.minimize(sg.constant(1.0) * 2.0)


def test_one_optimizer_reuses_slots_across_minimize_calls():
    w = sg.Variable(np.ones(2), name="w")
    opt = sg.train.MomentumOptimizer(0.1, 0.9)
    opt.minimize(w.sum())
    slot = opt.get_slot(w, "momentum")
    opt.minimize((w * w).sum())
    assert opt.get_slot(w, "momentum") is slot
    assert [v.op.name for v in opt.variables()] == ["w/Momentum"]


def test_mixed_dtypes_in_one_adam_step():
    a = sg.Variable(np.ones(2), name="a", dtype=sg.float64)
    f = sg.Variable(np.ones(2), name="f", dtype=sg.float32)
    opt = sg.train.AdamOptimizer(0.1)
    train = opt.minimize((a * a).sum() + sg.cast((f * f).sum(), sg.float64))
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(train)
        # first Adam step moves each element by ~lr (g / sqrt(g^2) = 1)
        np.testing.assert_allclose(sess.run(a), [0.9, 0.9], rtol=1e-6)
        np.testing.assert_allclose(sess.run(f), [0.9, 0.9], rtol=1e-5)
        assert sess.run(f).dtype == np.float32
