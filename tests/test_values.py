"""One rule for values entering the graph at run time (API.md §10; staticgraph/values.py):
feeds, ``Session.set_variable_value`` and landing assigns accept and refuse the same values,
with ``InvalidArgumentError``s naming the placeholder or variable."""
import re

import numpy as np
import pytest

import staticgraph as sg
from compiler.state import SessionState
from helpers import session

BIG = 2 ** 40 + 5

# (value, target dtype, None if accepted else a pattern of the problem)
CASES = [
    (np.array([BIG, 1], np.int64), sg.int32, r"values \[1, 1099511627781\] do not fit int32"),
    (np.array([-(2 ** 31) - 1, 0], np.int64), sg.int32, r"do not fit int32"),
    (np.array([2 ** 63 + 1, 0], np.uint64), sg.int64, r"do not fit int64"),
    (np.array([-7, 2 ** 31 - 1], np.int64), sg.int32, None),
    (np.array([0.1, -3.7]), sg.float32, None),                 # float64 -> float32: same_kind
    (np.array([3, -2], np.int64), sg.float64, None),
    (np.array([True, False]), sg.int32, None),
    (np.array([1.5, 2.0]), sg.int64, r"dtype float64 .* which has dtype int64"),
    (np.array([1, 0], np.int64), sg.bool_, r"dtype int64 .* which has dtype bool"),
    (np.array(["a", "b"]), sg.float32, r"dtype <U1|dtype str"),
    (np.array([1 + 2j, 0j]), sg.float64, r"dtype complex128 .* which has dtype float64"),
    ([1.0, 2.0], sg.float32, None),
    (np.zeros(3, np.float32), sg.float32, r"shape \(3,\) .* which has shape \(2,\)"),
]


def entry_points(dtype, value):
    """Put ``value`` into a (2,)-shaped ``dtype`` placeholder, variable, and assign landing;
    return each outcome: the stored array, or the error."""
    p = sg.placeholder(dtype, (2,), name="p")
    v = sg.Variable(np.zeros(2, dtype), dtype=dtype, trainable=False, name="v")
    outcomes = {}
    with sg.Session() as sess:
        for name, put in [("feed", lambda: sess.run(sg.identity(p), {p: value})),
                          ("set", lambda: (sess.set_variable_value(v, value), sess.get_variable_value(v))[1]),
                          ("assign", lambda: _land(v, value))]:
            try:
                outcomes[name] = put()
            except sg.errors.InvalidArgumentError as exc:
                outcomes[name] = exc
    return outcomes


def _land(v, value):
    state = SessionState()
    state.apply({v.op: ("set", value)})
    return state.values[v.op]


@pytest.mark.parametrize("value, dtype, problem", CASES)
def test_feed_set_and_assign_follow_one_rule(value, dtype, problem):
    outcomes = entry_points(dtype, value)
    if problem is None:
        expected = np.asarray(value).astype(dtype)
        for name, got in outcomes.items():
            assert isinstance(got, np.ndarray), (name, got)
            assert got.dtype == np.dtype(dtype) and got.shape == (2,), (name, got)
            np.testing.assert_array_equal(got, expected)
        return
    whats = {"feed": "placeholder 'p'", "set": "variable 'v'", "assign": "variable 'v'"}
    for name, got in outcomes.items():
        assert isinstance(got, sg.errors.InvalidArgumentError), (name, got)
        assert whats[name] in str(got), (name, str(got))
        assert re.search(problem, str(got)), (name, problem, str(got))


def test_set_variable_value_no_longer_wraps_int64_into_int32():
    v = sg.Variable(np.int32(3), trainable=False, name="counter")
    with sg.Session() as sess:
        sess.run(v.initializer)
        with pytest.raises(sg.errors.InvalidArgumentError,
                           match=r"cannot set this int64 value to variable 'counter' of dtype int32: .*do not "
                                 r"fit int32"):
            sess.set_variable_value(v, np.int64(BIG))
        assert sess.run(v) == 3
        sess.set_variable_value(v, np.int64(-12))
        assert sess.run(v) == -12 and sess.run(v).dtype == np.int32


def test_assign_landing_broadcasts_and_names_the_variable(target, rng):
    v = sg.Variable(np.zeros((2, 3)), dtype=sg.float64, name="acc")
    row = sg.placeholder(sg.float64, None, name="row")
    a = rng.standard_normal(3)
    with session(target) as sess:
        sess.run(v.initializer)
        sess.run(v.assign_add(row), {row: a})
        np.testing.assert_array_equal(sess.run(v), np.broadcast_to(a, (2, 3)))
        with pytest.raises(sg.errors.InvalidArgumentError,
                           match=r"cannot assign \(mode 'sub'\) a value of shape \(2,\) to variable 'acc', which "
                                 r"has shape \(2, 3\) \(the value must broadcast to it\)"):
            sess.run(v.assign_sub(row), {row: a[:2]})
    state = SessionState()
    state.apply({v.op: ("set", np.ones(3, np.float32))})        # float32 into float64: same_kind
    assert state.values[v.op].dtype == np.float64 and state.values[v.op].shape == (2, 3)
