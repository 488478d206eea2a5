"""The cpu matmul's fast paths: transposes read by BLAS flag (``TransposedMatMul``, made by
``simplify``) and the integer loop kernel, against naive loops and the reference backend."""
import itertools
from collections import Counter

import numpy as np
import pytest

import staticgraph as sg
from compiler.passes import optimize
from compiler.passes.transposed_matmul import absorb_transposes  # noqa: F401  (registers the op)
from compiler.schedule import schedule
from staticgraph.ops.core import make
from helpers import run_cpu_and_reference


def naive_matmul(a, b):
    """``np.matmul`` semantics by explicit loops over broadcast batches (1-D operands promoted)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    A = np.broadcast_to(a2, batch + (m, k))
    B = np.broadcast_to(b2, batch + (k, n))
    out = np.zeros(batch + (m, n), dtype=np.result_type(a, b))
    for idx in itertools.product(*[range(d) for d in batch]):
        for i in range(m):
            for j in range(n):
                acc = out.dtype.type(0)
                for t in range(k):
                    acc += A[idx + (i, t)] * B[idx + (t, j)]
                out[idx + (i, j)] = acc
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def swap(x):
    return np.swapaxes(x, -1, -2)


def swap_t(t):
    """The graph transpose of ``t``'s last two axes."""
    n = len(t.shape)
    return sg.transpose(t, tuple(range(n - 2)) + (n - 1, n - 2))


def sample(rng, shape, dtype):
    if np.dtype(dtype).kind == "i":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-10)


def op_types(fetches, feeds):
    return Counter(op.type for op in optimize(schedule(list(fetches), [], list(feeds))).schedule.ops)


# (a's matmul shape, b's matmul shape): odd sizes, batches, broadcast batches, 1-D operands
CASES = [((5, 3), (3, 7)), ((1, 4), (4, 1)), ((6, 1), (1, 5)), ((2, 5, 3), (2, 3, 4)),
         ((3, 1, 4, 6), (2, 6, 3)), ((4, 3), (2, 3, 5)), ((7,), (7, 3)), ((3, 7), (7,))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("sa,sb", CASES)
def test_matmul_of_transposed_operands_matches_loops_and_reference(rng, dtype, ta, tb, sa, sb):
    ta, tb = ta and len(sa) >= 2, tb and len(sb) >= 2
    av = sample(rng, sa, dtype)
    bv = sample(rng, sb, dtype)
    # the operands are stored transposed; the graph transposes them back into the matmul
    a_st = np.ascontiguousarray(swap(av)) if ta else av
    b_st = np.ascontiguousarray(swap(bv)) if tb else bv
    a = sg.placeholder(dtype, a_st.shape)
    b = sg.placeholder(dtype, b_st.shape)
    y = sg.matmul(swap_t(a) if ta else a, swap_t(b) if tb else b)
    feed = {a: a_st, b: b_st}
    cpu, ref = run_cpu_and_reference(y, feed)
    want = naive_matmul(av, bv)
    assert cpu.shape == want.shape and cpu.dtype == want.dtype
    np.testing.assert_allclose(cpu, want, **tol(dtype))
    np.testing.assert_allclose(cpu, ref, **tol(dtype))
    types = op_types([y], [a, b])
    assert types["Transpose"] == 0
    assert types["TransposedMatMul" if ta or tb else "MatMul"] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sa,sb", [((5, 3), (3, 7)), ((2, 5, 3), (3, 4)), ((3, 4, 2), (3, 2, 5)), ((6,), (6, 3))])
def test_matmul_gradients_read_transposes_by_flag(rng, dtype, sa, sb):
    av, bv, wv = sample(rng, sa, dtype), sample(rng, sb, dtype), None
    a = sg.placeholder(dtype, sa)
    b = sg.placeholder(dtype, sb)
    y = sg.matmul(a, b)
    wv = sample(rng, tuple(y.shape), dtype)
    loss = sg.reduce_sum(y * wv)
    ga, gb = sg.gradients(loss, [a, b])
    cpu, ref = run_cpu_and_reference([ga, gb], {a: av, b: bv})
    g = wv if len(sb) >= 2 else wv[..., None]
    g = g if len(sa) >= 2 else g[None]
    a2 = av if len(sa) >= 2 else av[None]
    want_a = naive_matmul(g, swap(bv))
    want_b = naive_matmul(swap(a2), g)
    want_b = want_b.reshape((-1,) + want_b.shape[-2:]).sum(axis=0) if want_b.ndim > len(sb) else want_b
    for got, r, want in zip(cpu, ref, [want_a.reshape(sa), want_b.reshape(sb)]):
        np.testing.assert_allclose(got, want, **tol(dtype))
        np.testing.assert_allclose(got, r, **tol(dtype))
    types = op_types([ga, gb], [a, b])
    assert types["Transpose"] == 0 and types["TransposedMatMul"] == 2


def test_second_order_gradients_through_transposed_matmuls_on_cpu(rng):
    def build(a, b):
        return sg.reduce_sum(sg.tanh(sg.matmul(a, b)) * sg.matmul(a, b))
    sg.check_gradients(build, [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))], order=2, target="cpu")


def test_transpose_with_another_reader_is_kept_and_both_values_are_right(rng):
    av, bv = sample(rng, (4, 3), np.float64), sample(rng, (4, 5), np.float64)
    a = sg.placeholder(sg.float64, (4, 3))
    b = sg.placeholder(sg.float64, (4, 5))
    at = sg.transpose(a)
    y = sg.matmul(at, b)
    cpu, ref = run_cpu_and_reference([y, at * 2.0], {a: av, b: bv})
    np.testing.assert_allclose(cpu[0], naive_matmul(av.T, bv), rtol=1e-12)
    np.testing.assert_allclose(cpu[1], av.T * 2.0, rtol=1e-12)
    types = op_types([y, at * 2.0], [a, b])
    assert types["Transpose"] == 1 and types["TransposedMatMul"] == 1


def test_only_a_swap_of_the_last_two_axes_is_absorbed(rng):
    av, bv = sample(rng, (3, 2, 4), np.float64), sample(rng, (4, 2, 5), np.float64)
    a = sg.placeholder(sg.float64, (3, 2, 4))
    b = sg.placeholder(sg.float64, (4, 2, 5))
    y = sg.matmul(sg.transpose(a, (1, 0, 2)), sg.transpose(b, (1, 0, 2)))     # batch axes move
    cpu, ref = run_cpu_and_reference(y, {a: av, b: bv})
    np.testing.assert_allclose(cpu, naive_matmul(av.transpose(1, 0, 2), bv.transpose(1, 0, 2)), rtol=1e-12)
    np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    types = op_types([y], [a, b])
    assert types["Transpose"] == 2 and types["MatMul"] == 1 and types["TransposedMatMul"] == 0


def test_a_fed_transpose_is_not_absorbed(rng):
    a = sg.placeholder(sg.float64, (3, 4))
    b = sg.placeholder(sg.float64, (3, 2))
    at = sg.transpose(a)
    y = sg.matmul(at, b)
    atv, bv = sample(rng, (4, 3), np.float64), sample(rng, (3, 2), np.float64)
    cpu, ref = run_cpu_and_reference(y, {a: np.zeros((3, 4)), at: atv, b: bv})
    np.testing.assert_allclose(cpu, naive_matmul(atv, bv), rtol=1e-12)
    np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    assert op_types([y], [a, at, b])["TransposedMatMul"] == 0


def test_transposed_matmul_rejects_a_flag_on_a_vector():
    from staticgraph.opdef import get_opdef
    a = sg.placeholder(sg.float32, (3,))
    b = sg.placeholder(sg.float32, (3, 2))
    with pytest.raises(ValueError, match=r"transpose_a needs an operand of rank >= 2, '.*' has shape \(3,\)"):
        get_opdef("TransposedMatMul").infer(a, b, transpose_a=True, transpose_b=False)
    c = sg.placeholder(sg.float32, (2, 5))
    with pytest.raises(ValueError, match=r"not aligned for matmul: 3 \(dim 1\) != 2 \(dim 0\)"):
        get_opdef("TransposedMatMul").infer(b, c, transpose_a=True, transpose_b=False)


# -- the other rewrites of training steps (simplify) ----------------------------------------------

def train_cpu_and_reference(fetches, targets, variables, feed=None, steps=2):
    """Run ``targets`` + ``fetches`` ``steps`` times on cpu and reference; returns both runs'
    fetched values and final variable values."""
    out = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            got = [sess.run(list(targets) + list(fetches), feed)[len(targets):] for _ in range(steps)]
            out[target] = (got, sess.run(list(variables)))
    return out["cpu"], out["reference"]


def assert_runs_close(cpu, ref, **kw):
    for a, b in zip(cpu[0] + [cpu[1]], ref[0] + [ref[1]]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, **kw)


def test_transpose_of_a_matmul_becomes_one_matmul_of_swapped_operands(rng):
    av, bv = sample(rng, (2, 5, 3), np.float64), sample(rng, (3, 4), np.float64)
    a = sg.placeholder(sg.float64, (2, 5, 3))
    b = sg.placeholder(sg.float64, (3, 4))
    y = swap_t(sg.matmul(a, b))
    cpu, ref = run_cpu_and_reference(y, {a: av, b: bv})
    np.testing.assert_allclose(cpu, swap(naive_matmul(av, bv)), rtol=1e-12)
    np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    types = op_types([y], [a, b])
    assert types == Counter({"TransposedMatMul": 1}), types


def test_transpose_of_a_matmul_with_another_reader_keeps_both(rng):
    av, bv = sample(rng, (5, 3), np.float32), sample(rng, (3, 4), np.float32)
    a = sg.placeholder(sg.float32, (5, 3))
    b = sg.placeholder(sg.float32, (3, 4))
    p = sg.matmul(a, b)
    cpu, ref = run_cpu_and_reference([sg.transpose(p), p], {a: av, b: bv})
    np.testing.assert_allclose(cpu[0], naive_matmul(av, bv).T, **tol(np.float32))
    np.testing.assert_allclose(cpu[1], naive_matmul(av, bv), **tol(np.float32))
    assert op_types([sg.transpose(p), p], [a, b]) == Counter({"MatMul": 1, "Transpose": 1})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_step_of_a_linear_model_updates_in_place_and_matches_reference(rng, dtype):
    xv, tv = sample(rng, (7, 5), dtype), sample(rng, (7, 3), dtype)
    w = sg.Variable(sample(rng, (3, 5), dtype), dtype=dtype)
    bias = sg.Variable(sample(rng, (3,), dtype), dtype=dtype)
    x = sg.placeholder(dtype, (None, 5))
    t = sg.placeholder(dtype, (None, 3))
    loss = sg.reduce_sum(sg.square(sg.nn.relu(sg.matmul(x, swap_t(w)) + bias) - t))
    train = sg.train.GradientDescentOptimizer(0.01).minimize(loss)
    cpu, ref = train_cpu_and_reference([loss], [train], [w, bias], {x: xv, t: tv}, steps=3)
    assert_runs_close(cpu, ref, **tol(dtype))
    sched = optimize(schedule([loss], [train], [x, t])).schedule
    modes = sorted(op.attrs["mode"] for op in sched.ops if op.type == "Assign")
    assert modes == ["sub", "sub"]
    assert Counter(op.type for op in sched.ops)["Transpose"] == 0


def test_updates_that_must_stay_whole_values_are_kept(rng):
    w = sg.Variable(sample(rng, (4,), np.float64), dtype=sg.float64)
    v = sg.Variable(sample(rng, (4,), np.float64), dtype=sg.float64)
    x = sg.placeholder(sg.float64, (4,))
    new_w = w - x                        # fetched too: the difference must exist
    up_w = sg.assign(w, new_w)
    up_v = sg.assign(v, x - v)           # not v - x: stays a whole value
    xv = sample(rng, (4,), np.float64)
    cpu, ref = train_cpu_and_reference([new_w], [up_w, up_v], [w, v], {x: xv})
    assert_runs_close(cpu, ref, rtol=1e-12)
    sched = optimize(schedule([new_w], [up_w, up_v], [x])).schedule
    assert sorted(op.attrs["mode"] for op in sched.ops if op.type == "Assign") == ["set", "set"]
    # alone, x + v and v + x both become assign_add
    sched = optimize(schedule([], [sg.assign(v, x * 2.0 + v), sg.assign(w, w + x)], [x])).schedule
    assert sorted(op.attrs["mode"] for op in sched.ops if op.type == "Assign") == ["add", "add"]
    cpu, ref = train_cpu_and_reference([], [sg.assign(v, x * 2.0 + v), sg.assign(w, w + x)], [w, v], {x: xv})
    assert_runs_close(cpu, ref, rtol=1e-12)


def test_gradient_of_a_sum_reads_the_seed_without_broadcasting_it(rng):
    av, bv = sample(rng, (6, 5), np.float32), sample(rng, (5, 4), np.float32)
    a = sg.placeholder(sg.float32, (6, 5))
    b = sg.placeholder(sg.float32, (5, 4))
    y = sg.matmul(a, b)
    ga, gb = sg.gradients(sg.reduce_sum(y * y), [a, b])
    cpu, ref = run_cpu_and_reference([ga, gb], {a: av, b: bv})
    yv = naive_matmul(av, bv)
    np.testing.assert_allclose(cpu[0], naive_matmul(2 * yv, bv.T), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cpu[1], naive_matmul(av.T, 2 * yv), rtol=1e-4, atol=1e-4)
    for c, r in zip(cpu, ref):
        np.testing.assert_allclose(c, r, rtol=1e-5, atol=1e-5)
    assert op_types([ga, gb], [a, b])["BroadcastLike"] == 0


def test_two_broadcasts_to_one_shape_are_not_both_dropped(rng):
    xv, zv = sample(rng, (1, 3), np.float64), sample(rng, (4, 1), np.float64)
    r = sg.placeholder(sg.float64, (4, 3))
    x = sg.placeholder(sg.float64, (1, 3))
    z = sg.placeholder(sg.float64, (4, 1))
    y = make("BroadcastLike", [x, r]) * make("BroadcastLike", [z, r])
    feed = {r: np.zeros((4, 3)), x: xv, z: zv}
    cpu, ref = run_cpu_and_reference(y, feed)
    assert cpu.shape == (4, 3)
    np.testing.assert_allclose(cpu, xv * zv, rtol=1e-12)
    np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    assert op_types([y], [r, x, z])["BroadcastLike"] == 1


# -- elementwise loops with an operand broadcast along the inner dim (scalars, columns) ------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("sa,sb", [((37, 5), ()), ((), (4, 33)), ((6, 1), (6, 9)), ((7, 3), (7, 1)),
                                   ((2, 3, 1), (3, 5)), ((), ()), ((1,), (1, 1)), ((5, 1), (1, 4))])
def test_binary_ops_with_broadcast_operands_match_numpy(rng, dtype, sa, sb):
    av, bv = sample(rng, sa, dtype), sample(rng, sb, dtype)
    a = sg.placeholder(dtype, sa)
    b = sg.placeholder(dtype, sb)
    outs = [a * b, a - b, b - a, sg.maximum(a, b), a > b]
    cpu, ref = run_cpu_and_reference(outs, {a: av, b: bv})
    want = [av * bv, av - bv, bv - av, np.maximum(av, bv), av > bv]
    for c, r, w in zip(cpu, ref, want):
        assert c.shape == w.shape and c.dtype == w.dtype
        np.testing.assert_array_equal(c, w)
        np.testing.assert_array_equal(c, r)


@pytest.mark.parametrize("shape", [(9, 13), (3, 4, 5), (1, 31)])
def test_relu_gradient_and_where_with_scalar_branches_match_numpy(rng, shape):
    xv, gv = rng.standard_normal(shape), rng.standard_normal(shape)
    x = sg.placeholder(sg.float64, shape)
    g = sg.placeholder(sg.float64, shape)
    (dx,) = sg.gradients(sg.reduce_sum(sg.nn.relu(x) * g), [x])
    outs = [dx, sg.where(x > 0.5, 1.0, g), sg.where(x > 0, g, -2.0), sg.where(x < 0, 3.0, -3.0),
            sg.transpose(x) * 2.0]
    cpu, ref = run_cpu_and_reference(outs, {x: xv, g: gv})
    xt = np.swapaxes(xv, 0, -1) if len(shape) == 2 else np.transpose(xv)
    want = [np.where(xv > 0, gv, 0.0), np.where(xv > 0.5, 1.0, gv), np.where(xv > 0, gv, -2.0),
            np.where(xv < 0, 3.0, -3.0), xt * 2.0]
    for c, r, w in zip(cpu, ref, want):
        np.testing.assert_array_equal(c, w)
        np.testing.assert_array_equal(c, r)


def test_a_transpose_with_control_inputs_is_not_absorbed(rng):
    a = sg.placeholder(sg.float64, (3, 4))
    b = sg.placeholder(sg.float64, (3, 2))
    marker = sg.group()
    with sg.control_dependencies([marker]):
        at = sg.transpose(a)
    y = sg.matmul(at, b)
    av, bv = sample(rng, (3, 4), np.float64), sample(rng, (3, 2), np.float64)
    cpu, ref = run_cpu_and_reference(y, {a: av, b: bv})
    np.testing.assert_allclose(cpu, naive_matmul(av.T, bv), rtol=1e-12)
    np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    types = op_types([y], [a, b])
    assert types["Transpose"] == 1 and types["MatMul"] == 1


@pytest.mark.parametrize("shape", [(1, 3), (4, 3), (2, 5, 4)])
def test_elementwise_ops_on_reversed_and_strided_views_match_numpy(rng, shape):
    av = rng.standard_normal(shape).astype(np.float32)
    x = sg.placeholder(sg.float32, shape)
    outs = [x[..., ::-1] * 2.0, x[..., ::-1] + x, x[..., ::2] - 1.0, sg.where(x[..., ::-1] > 0, x, 0.0)]
    cpu, ref = run_cpu_and_reference(outs, {x: av})
    want = [av[..., ::-1] * 2.0, av[..., ::-1] + av, av[..., ::2] - 1.0, np.where(av[..., ::-1] > 0, av, 0.0)]
    for c, r, w in zip(cpu, ref, want):
        np.testing.assert_array_equal(c, w.astype(np.float32))
        np.testing.assert_array_equal(c, r)
