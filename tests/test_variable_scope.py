"""TF1 variable scopes (get_variable, variable_scope, reuse, AUTO_REUSE) and initializers."""
import math
import threading

import numpy as np
import pytest

import staticgraph as sg
from helpers import session


def dense(x, n_out, name, reuse=None):
    with sg.variable_scope(name, reuse=reuse):
        w = sg.get_variable("w", [x.shape[-1], n_out])
        b = sg.get_variable("b", [n_out], initializer=sg.zeros_initializer())
        return sg.matmul(x, w) + b


# -- names ------------------------------------------------------------------------------------------------------

def test_names_follow_variable_scopes_and_ops_the_name_scope():
    with sg.variable_scope("layer1"):
        w = sg.get_variable("w", [3, 4])
        with sg.variable_scope("inner"):
            u = sg.get_variable("u", [2])
        y = w * 2.0
    assert (w.name, w.op.name, u.name) == ("layer1/w:0", "layer1/w", "layer1/inner/u:0")
    assert y.op.name.startswith("layer1/")
    assert w.initializer.name == "layer1/w/Assign"
    init_ops = [op.name for op in sg.get_default_graph().get_operations() if "/Initializer/" in op.name]
    assert init_ops and all(n.startswith(("layer1/w/Initializer/", "layer1/inner/u/Initializer/"))
                            for n in init_ops)
    assert sg.global_variables() == [w, u] and sg.trainable_variables() == [w, u]


def test_variable_names_ignore_name_scopes_as_in_tf1():
    with sg.name_scope("outer"):
        with sg.variable_scope("block") as scope:
            v = sg.get_variable("v", [2])
            t = v + 1.0
    assert v.name == "block/v:0" and scope.name == "block"
    assert t.op.name.startswith("outer/block/") and scope.original_name_scope == "outer/block"
    assert sg.get_variable_scope().name == ""


def test_get_variable_ignores_control_dependencies():
    c = sg.constant(1.0)
    with sg.control_dependencies([c]):
        v = sg.get_variable("v", [2])
    assert v.op.control_inputs == () and v.initializer.control_inputs == ()


# -- reuse ------------------------------------------------------------------------------------------------------

def test_creating_twice_is_an_error_naming_the_variable():
    x = sg.placeholder(sg.float32, (None, 3))
    dense(x, 4, "layer1")
    with pytest.raises(ValueError, match=r"variable 'layer1/w' already exists; set reuse=True or AUTO_REUSE "
                                         r"to share it.*created at .*test_variable_scope\.py:\d+"):
        dense(x, 4, "layer1")


def test_reuse_true_needs_the_variable():
    x = sg.placeholder(sg.float32, (None, 3))
    dense(x, 4, "layer1")
    with pytest.raises(ValueError, match=r"variable 'layer2/w' does not exist, or was not created with "
                                         r"sg.get_variable\(\); reuse=True needs it created first"):
        dense(x, 4, "layer2", reuse=True)
    plain = sg.Variable(np.zeros(2, np.float32), name="v")     # not made by get_variable: not shareable
    with pytest.raises(ValueError, match="'v' does not exist"):
        with sg.variable_scope(sg.get_variable_scope(), reuse=True):      # the root scope, reusing
            sg.get_variable("v", [2])
    assert plain.name == "v:0"


def test_shared_weights_compute_the_same_function(target, rng):
    a = rng.normal(size=(5, 3)).astype(np.float32)
    b = rng.normal(size=(2, 3)).astype(np.float32)
    x1 = sg.placeholder(sg.float32, (None, 3))
    x2 = sg.placeholder(sg.float32, (None, 3))
    y1 = dense(x1, 4, "siamese")
    y2 = dense(x2, 4, "siamese", reuse=True)
    assert len(sg.trainable_variables()) == 2
    w, bias = sg.trainable_variables()
    loss = sg.reduce_sum(y1) + sg.reduce_sum(y2)
    gw, = sg.gradients(loss, [w])
    with session(target) as sess:
        sess.run(sg.global_variables_initializer())
        wv, out1, out2, g = sess.run([w, y1, y2, gw], {x1: a, x2: b})
    np.testing.assert_allclose(out1, a @ wv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out2, b @ wv, rtol=1e-5, atol=1e-6)
    # the gradient of a shared weight sums both uses
    np.testing.assert_allclose(g, np.outer(a.sum(0) + b.sum(0), np.ones(4)), rtol=1e-5, atol=1e-5)


def test_auto_reuse_creates_then_shares():
    def make():
        with sg.variable_scope("m", reuse=sg.AUTO_REUSE):
            return sg.get_variable("w", [2, 2])
    first, second = make(), make()
    assert first is second and len(sg.global_variables()) == 1
    assert repr(sg.AUTO_REUSE) == "sg.AUTO_REUSE"


def test_reuse_is_inherited_and_false_does_not_turn_it_off():
    with sg.variable_scope("a"):
        with sg.variable_scope("b"):
            w = sg.get_variable("w", [3])
    with sg.variable_scope("a", reuse=True) as scope:
        assert scope.reuse is True
        with sg.variable_scope("b", reuse=False) as inner:
            assert inner.reuse is True
            assert sg.get_variable("w", [3]) is w
    with sg.variable_scope("a", reuse=sg.AUTO_REUSE):
        with sg.variable_scope("b"):
            assert sg.get_variable("w") is w
            fresh = sg.get_variable("fresh", [1])
    assert fresh.name == "a/b/fresh:0"


def test_reuse_variables_and_reentering_a_scope_object():
    with sg.variable_scope("s") as scope:
        w = sg.get_variable("w", [2])
        sg.get_variable_scope().reuse_variables()
        assert sg.get_variable("w") is w
    with sg.variable_scope("s") as again:   # a new entry of "s": not reusing
        assert again.reuse is None
        with pytest.raises(ValueError, match="'s/w' already exists"):
            sg.get_variable("w", [2])
    with sg.name_scope("elsewhere"):
        with sg.variable_scope(scope, reuse=True) as reentered:
            assert sg.get_variable("w") is w
            assert (sg.constant(1.0).op.name.startswith("s/"))   # the scope's own name scope
    assert reentered.name == "s" and scope.get_variable("w") is w


def test_sharing_checks_shape_and_dtype():
    with sg.variable_scope("layer1"):
        sg.get_variable("w", [3, 4])
    with sg.variable_scope("layer1", reuse=True):
        assert sg.get_variable("w", [None, 4]).shape == (3, 4)
        with pytest.raises(ValueError, match=r"Trying to share variable 'layer1/w', but specified shape "
                                             r"\(5, 4\) and found shape \(3, 4\)"):
            sg.get_variable("w", [5, 4])
        with pytest.raises(ValueError, match=r"Trying to share variable 'layer1/w', but specified dtype "
                                             r"float64 and found dtype float32"):
            sg.get_variable("w", dtype=sg.float64)


def test_default_names_are_made_unique():
    names = []
    for _ in range(3):
        with sg.variable_scope(None, default_name="dense") as scope:
            names.append(scope.name)
            sg.get_variable("w", [1])
    assert names == ["dense", "dense_1", "dense_2"]
    with sg.variable_scope(name="named") as scope:         # the spelling of name_or_scope
        assert scope.name == "named" and sg.get_variable("w", [1]).name == "named/w:0"
    with pytest.raises(ValueError, match="reuse=True cannot be used without a name_or_scope"):
        with sg.variable_scope(None, default_name="dense", reuse=True):
            pass


def test_bad_arguments():
    with pytest.raises(TypeError, match="reuse must be True, False, None or sg.AUTO_REUSE"):
        with sg.variable_scope("a", reuse="yes"):
            pass
    with pytest.raises(ValueError, match=r"the shape of a new variable \('w'\) must be fully defined, but "
                                         r"instead was None"):
        sg.get_variable("w")
    with pytest.raises(ValueError, match=r"\('v'\) must be fully defined, but instead was \(\?, 3\)"):
        sg.get_variable("v", [None, 3])
    with pytest.raises(ValueError, match="get_variable name 'a:0' is not a valid name"):
        sg.get_variable("a:0", [1])
    with pytest.raises(ValueError, match=r"initializer of variable 'c' has shape \(2,\), but shape \(3,\)"):
        sg.get_variable("c", [3], initializer=np.ones(2, np.float32))
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        sg.get_variable("step", [], dtype=sg.int64)
    with pytest.raises(TypeError, match=r"shape must be a list of non-negative ints \(or None\), got \[2.5\]"):
        sg.get_variable("f", [2.5])
    assert sg.get_variable("n", 3).shape == (3,)                 # an int is a 1-D shape, as in TF1


def test_variable_scope_stacks_are_per_thread():
    seen = {}
    with sg.variable_scope("main_thread"):
        def worker():
            seen["scope"] = sg.get_variable_scope().name
            with sg.variable_scope("worker"):
                seen["v"] = sg.get_variable("v", [1]).name
        t = threading.Thread(target=worker)
        t.start()
        t.join(30)
        assert sg.get_variable_scope().name == "main_thread"
    assert seen == {"scope": "", "v": "worker/v:0"}


# -- initializers -----------------------------------------------------------------------------------------------

def values(*variables, target="reference"):
    with session(target) as sess:
        sess.run(sg.variables_initializer(variables))
        return sess.run(list(variables))


@pytest.mark.parametrize("shape, fan_sum", [((7, 13), 20), ((40,), 80), ((), 2), ((8, 3, 5, 5), (8 + 3) * 25)])
def test_glorot_uniform_is_the_default(shape, fan_sum, target):
    w = sg.get_variable("w", shape)
    limit = math.sqrt(3.0 / max(1.0, fan_sum / 2.0))
    (value,) = values(w, target=target)
    assert value.shape == shape and value.dtype == np.float32
    assert np.all(np.abs(value) <= limit) and np.all(np.isfinite(value))


def test_glorot_uniform_spread():
    w = sg.get_variable("w", [200, 300], initializer=sg.glorot_uniform_initializer(seed=3))
    (value,) = values(w)
    limit = math.sqrt(6.0 / 500)
    assert np.abs(value).max() <= limit and np.abs(value).max() > 0.99 * limit
    assert abs(value.std() - limit / math.sqrt(3)) < 0.02 * limit     # U(-l, l) has std l/sqrt(3)
    assert abs(value.mean()) < 0.01 * limit


def test_integer_variables_default_to_zeros():
    step = sg.get_variable("step", [], dtype=sg.int64, trainable=False)
    (value,) = values(step)
    assert value.dtype == np.int64 and value == 0 and step not in sg.trainable_variables()


def test_constant_zeros_ones_initializers(rng):
    a = rng.normal(size=(2, 3))
    vs = [sg.get_variable("z", [2, 3], initializer=sg.zeros_initializer()),
          sg.get_variable("o", [4], dtype=sg.float64, initializer=sg.ones_initializer),   # the class itself
          sg.get_variable("c", [2, 3], initializer=sg.constant_initializer(a)),
          sg.get_variable("r", [2, 3], initializer=sg.constant_initializer(a.ravel().tolist())),  # reshaped
          sg.get_variable("s", [3], initializer=sg.constant_initializer(2.5)),
          sg.get_variable("t", initializer=np.arange(3, dtype=np.float32))]                 # value: shape from it
    z, o, c, r, s, t = values(*vs)
    np.testing.assert_array_equal(z, np.zeros((2, 3)))
    assert o.dtype == np.float64 and np.all(o == 1)
    np.testing.assert_array_equal(c, a.astype(np.float32))
    np.testing.assert_array_equal(r, a.astype(np.float32))
    np.testing.assert_array_equal(s, [2.5] * 3)
    np.testing.assert_array_equal(t, [0, 1, 2])
    with pytest.raises(ValueError, match=r"constant_initializer: a value of shape \(2, 3\) \(6 elements\) "
                                         r"cannot initialize shape \(4,\)"):
        sg.get_variable("bad", [4], initializer=sg.constant_initializer(a))


def test_random_initializers_are_seeded_and_distributed():
    n = sg.get_variable("n", [4000], initializer=sg.random_normal_initializer(mean=2.0, stddev=0.5, seed=7))
    u = sg.get_variable("u", [4000], initializer=sg.random_uniform_initializer(-3.0, -1.0, seed=7))
    first = values(n, u)
    second = values(n, u)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)            # same seed: same values in a new session
    nv, uv = first
    assert abs(nv.mean() - 2.0) < 0.05 and abs(nv.std() - 0.5) < 0.05
    assert uv.min() >= -3.0 and uv.max() < -1.0 and abs(uv.mean() + 2.0) < 0.05
    with pytest.raises(TypeError, match="random_normal_initializer makes random values, which must be "
                                        "floating point; got dtype int32"):
        sg.random_normal_initializer()([2], sg.int32)


def test_scope_initializer_is_the_default_inside():
    with sg.variable_scope("s", initializer=sg.constant_initializer(0.25)):
        a = sg.get_variable("a", [2])
        with sg.variable_scope("t"):
            b = sg.get_variable("b", [2])
        c = sg.get_variable("c", [2], initializer=sg.zeros_initializer())
    av, bv, cv = values(a, b, c)
    np.testing.assert_array_equal(av, [0.25, 0.25])
    np.testing.assert_array_equal(bv, [0.25, 0.25])
    np.testing.assert_array_equal(cv, [0, 0])


def test_user_callable_initializer(rng):
    a = rng.normal(size=(3, 2))
    calls = []

    def init(shape, dtype):
        calls.append((shape, dtype))
        return a.reshape(shape)

    w = sg.get_variable("w", [3, 2], dtype=sg.float64, initializer=init)
    (value,) = values(w)
    assert calls == [((3, 2), np.dtype("float64"))]
    np.testing.assert_array_equal(value, a)
