"""The cuda target's kernels against the reference backend on the CUDA simulator: every op type
the cuda kernels cover, forward and gradients, float32 (rtol 1e-4) and float64 (tighter), tiny
odd shapes, broadcasting, strided views, integer paths."""
import numpy as np
import pytest

import staticgraph as sg
from cuda_helpers import assert_all_close, fast_simulator_switching, run_both  # noqa: F401  (autouse)


@pytest.mark.parametrize("dtype,shape", [(np.float32, (3, 5)), (np.float64, (2, 1, 3))])
def test_elementwise_ops_and_their_gradients(rng, dtype, shape):
    x = sg.placeholder(dtype, shape, name="x")
    y = sg.placeholder(dtype, shape[-1:], name="y")           # broadcast along the leading dims
    z = sg.placeholder(dtype, shape[:-1] + (1,), name="z")     # broadcast along the last dim
    pos = sg.abs(x) + 0.5
    outs = [-x, sg.abs(x), sg.sign(x), sg.square(x), sg.relu(x), sg.sqrt(pos), sg.exp(x), sg.log(pos),
            sg.sin(x), sg.cos(x), sg.tanh(x), sg.sigmoid(x), x + y, x - z, x * y, x / (sg.abs(z) + 1.0),
            sg.pow(pos, y), sg.maximum(x, z), sg.minimum(x, y), sg.where(x > y, x, z)]
    loss = sum(sg.reduce_sum(o * (i + 1.0)) for i, o in enumerate(outs))
    grads = sg.gradients(loss, [x, y, z])
    compare = [x < y, x <= z, x > 0.0, x >= y, sg.equal(x, x), sg.not_equal(x, y), sg.cast(x, sg.int64),
               sg.cast(x > 0.0, sg.float32), sg.cast(sg.relu(x), sg.bool_)]
    feeds = {x: rng.normal(size=shape).astype(dtype), y: rng.normal(size=shape[-1:]).astype(dtype),
             z: rng.normal(size=shape[:-1] + (1,)).astype(dtype)}
    got, want = run_both(outs + grads + compare, feeds)
    assert_all_close(got, want)


@pytest.mark.parametrize("dtype", [np.float32])
def test_reductions_views_and_their_gradients(rng, dtype):
    x = sg.placeholder(dtype, (None, 7), name="x")            # batch-sized: records at plan entry
    t = sg.placeholder(dtype, (2, 3, 5), name="t")
    outs = [sg.reduce_sum(x), sg.reduce_sum(x, axis=0), sg.reduce_mean(x, axis=1), sg.reduce_max(x, axis=1),
            sg.reduce_max(t, axis=[0, 2]), sg.reduce_mean(t, axis=[1]), sg.transpose(t, [2, 0, 1]),
            t[:, 1:, ::2], x[1], sg.concat([x, x * 2.0], axis=1), sg.reshape(t, (6, 5)),
            sg.expand_dims(x, 1), sg.nn.softmax(x), sg.nn.log_softmax(t, axis=1)]
    loss = sum(sg.reduce_sum(sg.sin(o)) for o in outs)
    grads = sg.gradients(loss, [x, t])
    idx = [sg.argmax(x, axis=1), sg.argmax(t, axis=0)]
    feeds = {x: rng.normal(size=(5, 7)).astype(dtype), t: rng.normal(size=(2, 3, 5)).astype(dtype)}
    got, want = run_both(outs + grads + idx, feeds)
    assert_all_close(got, want)


def test_argmax_and_max_keep_numpys_ties_and_nans():
    x = sg.placeholder(sg.float32, (3, 4), name="x")
    v = np.array([[1, 3, 3, 0], [np.nan, 2, np.nan, 5], [-1, -1, -1, -1]], np.float32)
    got, want = run_both([sg.argmax(x, axis=1), sg.reduce_max(x, axis=1)], {x: v})
    assert_all_close(got, want)
    np.testing.assert_array_equal(got[0], [1, 0, 0])


@pytest.mark.parametrize("ta,tb,dtype", [(False, False, np.float32), (True, True, np.float64)])
def test_matmuls_and_their_gradients(rng, ta, tb, dtype):
    """Transposed operands reach the kernels as flags (the transposed_matmul pass), batched
    matmuls broadcast a matrix over batch dims."""
    a_shape, b_shape = ((7, 5) if ta else (5, 7)), ((3, 7) if tb else (7, 3))
    a = sg.placeholder(dtype, a_shape, name="a")
    b = sg.placeholder(dtype, b_shape, name="b")
    a2, b2 = (sg.transpose(a) if ta else a), (sg.transpose(b) if tb else b)
    y = sg.matmul(a2, b2)
    batched = sg.placeholder(dtype, (2, 3, 5, 7), name="batched")
    yb = sg.matmul(batched, b2)
    loss = sg.reduce_sum(sg.tanh(y)) + sg.reduce_sum(yb * yb)
    feeds = {a: rng.normal(size=a_shape).astype(dtype), b: rng.normal(size=b_shape).astype(dtype),
             batched: rng.normal(size=(2, 3, 5, 7)).astype(dtype)}
    got, want = run_both([y, yb] + sg.gradients(loss, [a, b, batched]), feeds)
    assert_all_close(got, want)


def test_integer_paths(rng):
    i = sg.placeholder(sg.int64, (4, 3), name="i")
    j = sg.placeholder(sg.int64, (3, 2), name="j")
    e = sg.placeholder(sg.int64, (3,), name="e")
    outs = [sg.matmul(i, j), sg.reduce_sum(i, axis=0), sg.reduce_max(i), sg.pow(i, e), sg.one_hot(e, 4),
            sg.argmax(i, axis=1), i * 3 - 1]
    feeds = {i: rng.integers(-5, 5, size=(4, 3)), j: rng.integers(-5, 5, size=(3, 2)), e: np.array([0, 2, 3])}
    got, want = run_both(outs, feeds)
    assert_all_close(got, want)


def test_losses_and_their_gradients(rng):
    logits = sg.placeholder(sg.float32, (None, 4), name="logits")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    loss = sg.reduce_mean(sg.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    sq = sg.reduce_sum(logits * logits)                  # one red_Dot (fuse_sum_of_products)
    feeds = {logits: rng.normal(size=(6, 4)).astype(np.float32), labels: rng.integers(0, 4, size=6)}
    got, want = run_both([loss, sq] + sg.gradients(loss + sq, [logits]), feeds)
    assert_all_close(got, want)


def test_random_ops_match_the_reference_exactly():
    r = sg.random_normal((3, 4), seed=3) + sg.random_uniform((3, 4), seed=4)
    got, want = run_both([r])
    np.testing.assert_array_equal(got[0], want[0])


def test_empty_batch(rng):
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    w = sg.constant(rng.normal(size=(3, 2)).astype(np.float32))
    outs = [sg.matmul(x, w), sg.reduce_sum(x, axis=1), sg.relu(x), sg.reduce_sum(x)]
    got, want = run_both(outs, {x: np.zeros((0, 3), np.float32)})
    assert_all_close(got, want)


def test_sums_follow_the_fixed_tree_order_bit_for_bit(rng):
    """red_SumF's order is fixed by the block size alone: thread t sums elements t, t + B, ...
    in float64, then the block adds its partials pairwise (t += t + s for s = B/2 ... 1). A host
    emulation of that order gives the same bits, run after run (values over 16 orders of
    magnitude: another order rounds differently, which the test checks too)."""
    from compiler.backends.cuda.kernels.common import RED_TPB
    v = rng.normal(size=(4, 301)) * 10.0 ** rng.integers(-8, 8, size=(4, 301))
    x = sg.placeholder(sg.float64, (4, 301), name="x")
    with sg.Session(target="cuda") as sess:
        plan = sess.compile(sg.reduce_sum(x, axis=1), [x])
        runs = [plan(v) for _ in range(3)]
    partial = np.zeros((4, RED_TPB))
    for t in range(RED_TPB):
        for j in range(t, 301, RED_TPB):
            partial[:, t] += v[:, j]
    s = RED_TPB // 2
    while s:
        partial[:, :s] += partial[:, s:2 * s]
        s //= 2
    for out in runs:
        np.testing.assert_array_equal(out, partial[:, 0])
    in_order = np.zeros(4)
    for j in range(301):
        in_order += v[:, j]
    assert not np.array_equal(in_order, partial[:, 0])     # the order shows in the bits


@pytest.mark.filterwarnings("ignore::RuntimeWarning")    # NumPy's, on the simulator's scalars
def test_nan_and_inf_as_on_the_reference_and_check_numerics_names_the_tensor():
    x = sg.placeholder(sg.float32, (4,), name="x")
    v = np.array([1.0, -2.0, 0.0, 100.0], np.float32)
    outs = [sg.log(x), sg.sqrt(x), sg.exp(x * 10.0), x / sg.abs(x), sg.nn.softmax(sg.log(x))]
    got, want = run_both(outs, {x: v})
    assert_all_close(got, want)
    assert np.isnan(got[0][1]) and np.isinf(got[2][3])
    with sg.Session(target="cuda", check_numerics=True) as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match="log"):
            sess.run(sg.log(x, name="log"), {x: v})
