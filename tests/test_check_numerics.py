"""sg.debugging.check_numerics and Session(check_numerics=True) (compiler/numerics.py, issue 27)."""
import inspect

import numpy as np
import pytest

import staticgraph as sg


@pytest.fixture(params=["cpu", "reference"])
def target(request):
    return request.param


def _line() -> int:
    return inspect.currentframe().f_back.f_lineno


def test_check_numerics_passes_values_and_names_tensor_line_and_message(target):
    x = sg.placeholder(sg.float32, [None], name="x")
    y = sg.log(x, name="logx")
    checked, line = sg.debugging.check_numerics(y, "log of the inputs"), _line()
    total = sg.reduce_sum(checked * 2.0)
    with sg.Session(target=target) as sess:
        xv = np.array([1.0, 2.0, 4.0], np.float32)
        np.testing.assert_allclose(sess.run(total, {x: xv}), 2 * np.log(xv).sum(), rtol=1e-6)
        for bad, found in (([1.0, -1.0, 2.0], "1 NaN"), ([0.0, 2.0, 0.0], "2 inf"), ([-1.0, 0.0, 1.0], "1 NaN and 1 inf")):
            with pytest.raises(sg.errors.InvalidArgumentError) as info:
                sess.run(total, {x: np.array(bad, np.float32)})
            text = str(info.value)
            assert f"tensor 'logx:0' of shape (3,) has {found} (of 3 values): log of the inputs" in text
            assert f"{__file__}:{line}" in text and info.value.op is checked.op
        np.testing.assert_allclose(sess.run(total, {x: xv}), 2 * np.log(xv).sum(), rtol=1e-6)   # still usable


def test_check_numerics_runs_only_when_its_value_is_needed(target):
    x = sg.placeholder(sg.float32, [2], name="x")
    sg.debugging.check_numerics(sg.log(x), "not fetched")
    with sg.Session(target=target) as sess:
        np.testing.assert_array_equal(sess.run(x * 1.0, {x: np.array([-1.0, 0.0], np.float32)}), [-1.0, 0.0])


def test_gradient_passes_through_and_is_checked():
    records = sg.check_gradients(lambda x: sg.debugging.check_numerics(sg.tanh(x) * x, "m"),
                                 [np.linspace(-1.0, 1.0, 5)])
    assert records and all(r.connected and r.max_rel_err < 1e-5 for r in records)
    x = sg.placeholder(sg.float64, [2], name="x")
    y = sg.sqrt(sg.debugging.check_numerics(x, "root"))     # x is finite, d sqrt(x) is inf at 0
    g = sg.gradients(sg.reduce_sum(y), x)[0]                  # the gradient's own check finds it
    with sg.Session(target="reference") as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"has 1 inf .*: root \(in the gradient\)"):
            sess.run(g, {x: np.array([0.0, 4.0])})


def test_check_numerics_refuses_non_floating_tensors_and_messages():
    with pytest.raises(TypeError, match="floating tensors; 'n:0' is int64"):
        sg.debugging.check_numerics(sg.placeholder(sg.int64, [2], name="n"), "ints")
    with pytest.raises(TypeError, match="message must be a str"):
        sg.debugging.check_numerics(sg.ones((2,)), 3)


def _diverging_training():
    """Adam at lr=1e30 (the issue's example): every variable is NaN from the second step."""
    x = sg.placeholder(sg.float32, [None, 3], name="x")
    w = sg.Variable(np.full((3, 1), 0.5, np.float32), name="w")
    loss = sg.reduce_mean(sg.square(sg.matmul(x, w) - 1.0))
    train = sg.train.AdamOptimizer(1e30).minimize(loss)
    return x, w, loss, train


@pytest.mark.parametrize("switch", ["argument", "environment"])
def test_session_switch_finds_the_first_non_finite_tensor(target, switch, monkeypatch):
    x, w, loss, train = _diverging_training()
    xv = np.ones((4, 3), np.float32)
    with sg.Session(target=target) as plain:                  # off by default: silent
        plain.run(sg.global_variables_initializer())
        for _ in range(3):
            plain.run(train, {x: xv})
        assert np.isnan(plain.run(loss, {x: xv}))
    if switch == "environment":
        monkeypatch.setenv("STATICGRAPH_CHECK_NUMERICS", "1")
    kwargs = {"check_numerics": True} if switch == "argument" else {}
    with sg.Session(target=target, **kwargs) as sess:
        assert sess.check_numerics
        sess.run(sg.global_variables_initializer())
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"check_numerics: tensor '.*' \(\w+ op\) of "
                                                                 r"shape .* has \d+ (NaN|inf)") as info:
            for _ in range(3):
                sess.run(train, {x: xv})
        assert "defined at" in str(info.value)


def test_switch_off_explicitly_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("STATICGRAPH_CHECK_NUMERICS", "1")
    assert not sg.Session(target="reference", check_numerics=False).check_numerics
    monkeypatch.setenv("STATICGRAPH_CHECK_NUMERICS", "0")
    assert not sg.Session(target="reference").check_numerics


def test_large_finite_values_whose_sum_overflows_pass(target):
    """Finite values near float32's largest (whose sum would overflow) are not taken for inf."""
    x = sg.placeholder(sg.float32, [None], name="x")
    y = sg.debugging.check_numerics(x * 1.0, "large but finite")
    with sg.Session(target=target) as sess:
        big = np.full(4, 3e38, np.float32)
        np.testing.assert_array_equal(sess.run(y, {x: big}), big)
        with pytest.raises(sg.errors.InvalidArgumentError, match="1 inf"):
            sess.run(y, {x: np.array([3e38, np.inf, 3e38], np.float32)})
