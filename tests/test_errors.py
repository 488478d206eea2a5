"""Error paths (API.md §1, §6, §7, §10): each error has the documented type and a message
that names the op / graph element and the shapes or dtypes involved."""
import os
import re

import numpy as np
import pytest

import staticgraph as sg
from helpers import session

THIS_FILE = os.path.basename(__file__)


def esc(s):
    return re.escape(s)


# -- build-time shape errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, name", [(sg.add, "add"), (sg.subtract, "subtract"), (sg.multiply, "multiply"),
                                      (sg.divide, "divide"), (sg.maximum, "maximum"), (sg.less, "less"),
                                      (sg.pow, "pow"), (sg.minimum, "minimum")])
def test_broadcast_error_names_op_and_shapes(fn, name):
    a = sg.placeholder(sg.float32, (2, 3), name="a")
    b = sg.placeholder(sg.float32, (4,), name="b")
    with pytest.raises(ValueError, match=rf"{name}.*broadcast") as info:
        fn(a, b)
    msg = str(info.value)
    assert name in msg, msg
    assert "(2, 3)" in msg and "(4,)" in msg, msg
    assert "broadcast" in msg


def test_operator_broadcast_error_and_location():
    a = sg.placeholder(sg.float32, (2, 3), name="lhs")
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        a + np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"multiply.*\(\?, 5\)") as info:
        a * sg.placeholder(sg.float32, (None, 5))
    assert "multiply" in str(info.value) and "(?, 5)" in str(info.value)
    assert THIS_FILE in str(info.value)    # the user's line is named


def test_user_named_op_error_uses_its_name():
    a = sg.placeholder(sg.float32, (2, 3))
    with pytest.raises(ValueError, match="my_sum"):
        sg.add(a, np.zeros((3, 2), np.float32), name="my_sum")


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5, 2, 3), (5, 4, 2)),
                                    ((3,), (2, 4))])
def test_matmul_misaligned(sa, sb):
    a = sg.placeholder(sg.float32, sa, name="ma")
    b = sg.placeholder(sg.float32, sb, name="mb")
    with pytest.raises(ValueError, match="matmul.*aligned") as info:
        a @ b
    msg = str(info.value)
    assert "matmul" in msg and "aligned" in msg, msg
    assert str(tuple(sa)) in msg and str(tuple(sb)) in msg, msg


def test_matmul_batch_mismatch_and_scalars():
    with pytest.raises(ValueError, match="matmul"):
        sg.matmul(sg.placeholder(sg.float32, (2, 3, 4)), sg.placeholder(sg.float32, (5, 4, 2)))
    with pytest.raises(ValueError, match="1-D"):
        sg.matmul(sg.constant(1.0), sg.constant([1.0]))


def test_dot_requires_1d():
    with pytest.raises(ValueError, match="1-D"):
        sg.dot(sg.constant(np.ones((2, 2), np.float32)), sg.constant(np.ones((2, 2), np.float32)))


def test_reshape_errors():
    x = sg.placeholder(sg.float32, (2, 3), name="r")
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\)"):
        x.reshape(-1, 4)
    with pytest.raises(ValueError, match="one -1"):
        x.reshape(-1, -1)


def test_transpose_errors():
    x = sg.placeholder(sg.float32, (2, 3), name="tp")
    with pytest.raises(ValueError, match="perm"):
        sg.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="perm"):
        sg.transpose(x, (0, 1, 2))
    with pytest.raises(ValueError, match="perm"):
        sg.transpose(x, (1, 2))           # 2 is not an axis of a 2-D tensor
    with pytest.raises(ValueError, match="perm"):
        x.transpose(0, -3)


def test_concat_and_stack_errors():
    a = sg.placeholder(sg.float32, (2, 3))
    b = sg.placeholder(sg.float32, (4, 5))
    with pytest.raises(ValueError, match=r"concat.*\(2, 3\).*\(4, 5\)"):
        sg.concat([a, b], 0)
    with pytest.raises(ValueError, match="rank"):
        sg.concat([a, sg.placeholder(sg.float32, (2,))], 0)
    with pytest.raises(ValueError, match="axis"):
        sg.concat([a, a], 2)
    with pytest.raises(ValueError, match=r"stack.*\(1, 2, 3\).*\(1, 4, 5\)"):
        sg.stack([a, b])
    with pytest.raises(ValueError, match="concat needs at least one tensor"):
        sg.concat([], 0)


@pytest.mark.parametrize("fn", [sg.reduce_sum, sg.reduce_mean, sg.reduce_max])
def test_reduction_axis_errors(fn):
    x = sg.placeholder(sg.float32, (2, 3), name="rx")
    with pytest.raises(ValueError, match=r"out of range.*\(2, 3\)"):
        fn(x, axis=2)
    with pytest.raises(ValueError, match="out of range"):
        fn(x, axis=-3)
    with pytest.raises(ValueError, match="repeated"):
        fn(x, axis=(0, -2))


def test_argmax_axis_error():
    with pytest.raises(ValueError, match="out of range"):
        sg.argmax(sg.placeholder(sg.float32, (2, 3)), 2)


def test_indexing_errors():
    x = sg.placeholder(sg.float32, (2, 3), name="ix")
    with pytest.raises(IndexError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, -4]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(TypeError, match="basic indexing"):
        x[sg.constant(0)]
    with pytest.raises(TypeError, match=r"unsupported index \[0, 1\]: only basic indexing"):
        x[[0, 1]]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., 0, ...]


def test_dtype_errors_of_ops():
    f = sg.placeholder(sg.float32, (3,), name="f")
    i = sg.placeholder(sg.int64, (3,), name="i")
    with pytest.raises(TypeError, match="one_hot.*float32"):
        sg.one_hot(f, 3)
    with pytest.raises(TypeError, match="bool"):
        sg.where(f, f, f)                  # condition must be bool
    with pytest.raises(TypeError, match="float"):
        sg.exp(i)
    with pytest.raises(TypeError, match="float"):
        i / i
    with pytest.raises(TypeError, match="floating"):
        sg.random_normal((2,), dtype=sg.int32)
    with pytest.raises(TypeError, match="complex"):
        sg.cast(f, np.complex64)


def test_fill_shapes_must_be_known():
    with pytest.raises(ValueError, match="fully known"):
        sg.zeros((None, 2))
    with pytest.raises(ValueError, match="fully known"):
        sg.random_uniform((-1, 2))


# -- graphs ---------------------------------------------------------------------------------------------------

def test_mixing_graphs_raises_value_error():
    g1, g2 = sg.Graph(), sg.Graph()
    with g1.as_default():
        a = sg.placeholder(sg.float32, (2,), name="a")
        va = sg.Variable(np.zeros(2, np.float32), name="va")
    with g2.as_default():
        b = sg.placeholder(sg.float32, (2,), name="b")
        cond = sg.placeholder(sg.bool_, (2,))
    for make in (lambda: a + b, lambda: sg.matmul(a, b), lambda: sg.concat([a, b], 0), lambda: sg.stack([a, b]),
                 lambda: sg.where(cond, a, a), lambda: sg.maximum(b, a), lambda: va.assign(b),
                 lambda: sg.group(a.op, b.op)):
        with pytest.raises(ValueError, match="graph"):
            make()
    with g2.as_default():
        with pytest.raises(ValueError, match="graph"):
            with sg.control_dependencies([a]):
                pass


def test_fetch_or_feed_from_another_graph(target):
    g = sg.Graph()
    with g.as_default():
        other = sg.constant(1.0, name="elsewhere")
        other_p = sg.placeholder(sg.float32, (), name="other_p")
    mine = sg.constant(2.0)
    with session(target) as sess:
        with pytest.raises(ValueError, match="elsewhere"):
            sess.run(other)
        with pytest.raises(ValueError, match="elsewhere"):
            sess.run([mine, {"x": other}])
        with pytest.raises(ValueError, match="other_p"):
            sess.run(mine, {other_p: 1.0})
        with pytest.raises(ValueError, match="elsewhere"):
            sess.compile(other)


def test_finalized_graph_rejects_new_ops(target):
    x = sg.placeholder(sg.float32, (2,))
    y = x * 2.0
    v = sg.Variable(np.zeros(2, np.float32))
    g = sg.get_default_graph()
    g.finalize()
    assert g.finalized
    with pytest.raises(RuntimeError, match="finalized"):
        x + 1.0
    with pytest.raises(RuntimeError, match="finalized"):
        sg.constant(1.0)
    with pytest.raises(RuntimeError, match="finalized"):
        sg.Variable(np.zeros(2, np.float32))
    with pytest.raises(RuntimeError, match="finalized"):
        v.assign(y)
    with session(target) as sess:      # running existing ops is still fine
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(y, {x: [1.0, 2.0]}), [2.0, 4.0])
    g.unfinalize()
    assert (x + 1.0).shape == (2,)


# -- run-time errors ---------------------------------------------------------------------------------------------

def test_missing_feed_names_placeholder(target):
    x = sg.placeholder(sg.float32, (None, 3), name="images")
    y = sg.placeholder(sg.float32, (None,), name="labels")
    loss = (x.sum(axis=1) - y).mean()
    with session(target) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match="images") as info:
            sess.run(loss, {y: np.zeros(2, np.float32)})
        assert isinstance(info.value, ValueError)
        assert info.value.op is x.op
        assert THIS_FILE in str(info.value)       # where the placeholder was defined
        with pytest.raises(sg.errors.InvalidArgumentError, match="labels"):
            sess.run(loss, {x: np.zeros((2, 3), np.float32)})
        with pytest.raises(sg.errors.InvalidArgumentError, match="feed"):
            sess.compile(loss, [x])


@pytest.mark.parametrize("shape, fed", [((None, 3), (2, 4)), ((None, 3), (3,)), ((2,), (3,)), ((), (1,)),
                                        ((2, None), (2, 3, 1))])
def test_wrong_fed_shape(shape, fed, target):
    x = sg.placeholder(sg.float32, shape, name="inp")
    with session(target) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"cannot feed a value of shape .* to "
                                                                 r"placeholder 'inp', which has shape") as info:
            sess.run(x * 2.0, {x: np.zeros(fed, np.float32)})
    msg = str(info.value)
    assert "inp" in msg, msg
    assert str(tuple(fed)) in msg, msg                           # given
    expected = "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    assert expected in msg, msg                                  # expected


@pytest.mark.parametrize("ph_dtype, value", [
    (sg.int64, np.array([1.5, 2.5])), (sg.int32, np.array([1.0, 2.0], np.float32)), (sg.int64, [0.5, 1.0]),
    (sg.bool_, np.array([1, 0])), (sg.float32, np.array(["a", "b"])), (sg.float32, np.array([1 + 2j, 0j])),
])
def test_wrong_fed_dtype(ph_dtype, value, target):
    x = sg.placeholder(ph_dtype, (2,), name="typed")
    with session(target) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match="cannot feed .*placeholder 'typed'") as info:
            sess.run(sg.identity(x), {x: value})
    msg = str(info.value)
    assert "typed" in msg, msg
    assert np.dtype(ph_dtype).name in msg, msg                          # expected
    assert np.asarray(value).dtype.name in msg, msg                     # given


def test_float64_fed_to_float32_accepted(target):
    x = sg.placeholder(sg.float32, (2,))
    with session(target) as sess:
        out = sess.run(x + 0.0, {x: np.array([0.1, 0.2], np.float64)})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([0.1, 0.2], np.float32))


def test_uninitialized_variable_named(target):
    w = sg.Variable(np.ones((2, 2), np.float32), name="weights")
    b = sg.Variable(np.ones(2, np.float32), name="bias")
    y = w.sum() + b.sum()
    with session(target) as sess:
        with pytest.raises(sg.errors.FailedPreconditionError, match="weights"):
            sess.run(y)
        sess.run(w.initializer)
        with pytest.raises(sg.errors.FailedPreconditionError, match="bias") as info:
            sess.run(y)
        assert "uninitialized" in str(info.value)
        with pytest.raises(sg.errors.FailedPreconditionError, match="bias"):
            sess.run(b.assign_add(1.0))            # assign_add reads the old value


def test_trainable_integer_variable_rejected():
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        sg.Variable(np.arange(3))
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        sg.Variable(3, trainable=True)
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        sg.Variable([1.0, 2.0], dtype=sg.int32)
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        sg.Variable(sg.constant([True]))


def test_variable_initial_value_needs_known_shape():
    with pytest.raises(ValueError, match="shape"):
        sg.Variable(sg.placeholder(sg.float32, (None, 2)))


def test_assign_errors():
    v = sg.Variable(np.zeros((2, 3), np.float32), name="target")
    c = sg.constant(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"target.*\(2, 3\)"):
        v.assign(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="target"):
        v.assign(np.zeros((4, 2, 3), np.float32))
    with pytest.raises(TypeError, match="float64"):
        v.assign(sg.constant(np.zeros((2, 3)), dtype=sg.float64))
    with pytest.raises(TypeError, match="Variable"):
        sg.assign(c, c)


def test_double_assign_error_message(target):
    v = sg.Variable(np.float32(0.0), name="counter")
    with session(target) as sess:
        sess.run(v.initializer)
        with pytest.raises(ValueError, match=r"counter.*twice|twice.*counter"):
            sess.run(sg.group(v.assign(1.0), v.assign_add(2.0)))


def test_runtime_shape_mismatch_names_op(target):
    a = sg.placeholder(sg.float32, (None,), name="pa")
    b = sg.placeholder(sg.float32, (None,), name="pb")
    s = sg.add(a, b, name="the_sum")
    with session(target) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match="the_sum"):
            sess.run(s, {a: np.zeros(3, np.float32), b: np.zeros(4, np.float32)})
        # the session is still usable afterwards
        np.testing.assert_array_equal(sess.run(s, {a: [1.0], b: [2.0]}), np.array([3.0], np.float32))


def test_runtime_reshape_mismatch(target):
    x = sg.placeholder(sg.float32, (None, 4))
    y = x.reshape(-1, 3)
    with session(target) as sess:
        np.testing.assert_array_equal(sess.run(y, {x: np.zeros((3, 4), np.float32)}).shape, (4, 3))
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"Reshape op .*\(2, 4\).*cannot reshape"):
            sess.run(y, {x: np.zeros((2, 4), np.float32)})


def test_closed_session(target):
    x = sg.constant(1.0)
    sess = session(target)
    sess.close()
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(x)


def test_bad_targets_and_fetches():
    with pytest.raises(ValueError, match="target"):
        sg.Session(target="tpu")
    with sg.Session() as sess:
        with pytest.raises(TypeError, match="cannot fetch 'not a tensor': fetches are Tensors"):
            sess.run("not a tensor")
        with pytest.raises(TypeError, match="cannot fetch 3: fetches are Tensors"):
            sess.run([sg.constant(1.0), 3])
        with pytest.raises(TypeError, match="feed_dict keys must be Tensors .*got 3"):
            sess.run(sg.constant(1.0), {3: 1.0})


def test_error_classes():
    assert issubclass(sg.errors.InvalidArgumentError, sg.errors.OpError)
    assert issubclass(sg.errors.InvalidArgumentError, ValueError)
    assert issubclass(sg.errors.FailedPreconditionError, sg.errors.OpError)
    assert issubclass(sg.errors.NotFoundError, sg.errors.OpError)


def test_runtime_assign_shape_mismatch_names_variable(target):
    v = sg.Variable(np.zeros(3, np.float32), name="state_v")
    p = sg.placeholder(sg.float32, None, name="anything")
    with session(target) as sess:
        sess.run(v.initializer)
        for op, fed in [(v.assign(p), (2, 3)), (v.assign_add(p), (4,)), (v.assign_sub(p), (3, 1))]:
            with pytest.raises(sg.errors.InvalidArgumentError, match=r"state_v.*\(3,\)") as info:
                sess.run(op, {p: np.ones(fed, np.float32)})
            assert str(tuple(fed)) in str(info.value)
        np.testing.assert_array_equal(sess.run(v), np.zeros(3, np.float32))   # nothing landed
        sess.run(v.assign_add(p), {p: np.ones((1,), np.float32)})           # broadcastable is fine
        np.testing.assert_array_equal(sess.run(v), np.ones(3, np.float32))


def test_constant_of_a_tensor_rejected():
    with pytest.raises(TypeError, match="constant"):
        sg.constant(sg.constant(1.0))


def test_errors_on_gradient_ops_name_the_forward_op_and_its_line():
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    w = sg.Variable(np.ones((3, 2), np.float32), name="w")
    y = sg.matmul(x, w, name="proj")
    forward_line = y.op.defined_at
    (gw,) = sg.gradients(y.sum(), w)
    assert gw.op.grad_of is not None
    err = sg.errors.InvalidArgumentError("boom", gw.op)
    text = str(err)
    assert f"op '{gw.op.name}' defined at" in text
    assert "gradient of MatMul 'proj'" in text and forward_line in text


def test_feeding_int64_values_that_do_not_fit_int32_is_rejected():
    i = sg.placeholder(sg.int32, (None,), name="idx")
    with sg.Session() as sess:
        np.testing.assert_array_equal(sess.run(i + 1, {i: np.array([1, 2], np.int64)}), [2, 3])
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"placeholder 'idx'.*do not fit int32"):
            sess.run(i + 1, {i: np.array([2 ** 40], np.int64)})


@pytest.mark.parametrize("bad, produced", [
    (lambda a: a.astype(np.float64), r"float64 \(2, 3\)"),          # wrong dtype
    (lambda a: a[:, :2], r"float32 \(2, 2\)"),                       # wrong size in a known dim
    (lambda a: a[None], r"float32 \(1, 2, 3\)"),                     # wrong rank
])
def test_reference_backend_checks_each_output_against_its_static_type(bad, produced, rng):
    """A reference implementation that disagrees with its op's inference is a bug: InternalError."""
    import dataclasses
    x = sg.placeholder(sg.float32, (None, 3), name="xin")
    y = sg.exp(x, name="broken_exp")
    z = y * 2.0
    y.op.opdef = dataclasses.replace(y.op.opdef, reference=bad)      # only this op object is affected
    a = rng.standard_normal((2, 3)).astype(np.float32)
    with sg.Session(target="reference") as sess:
        with pytest.raises(sg.errors.InternalError,
                           match=rf"op 'broken_exp' \(Exp\) produced {produced}, but its static type is "
                                 rf"float32 \(\?, 3\)") as info:
            sess.run(z, {x: a})
    assert info.value.op is y.op
    np.testing.assert_allclose(sg.Session(target="reference").run(sg.exp(x) * 2.0, {x: a}), np.exp(a) * 2,
                               rtol=1e-6)
