"""The elementwise loop kernels when the plan puts the output on input 0's buffer (in place): the
loop then reads x0 through the output (``alias`` in ``library.loop_kernel``), so LLVM vectorizes
it. Checked at kernel level against NumPy, with the other inputs broadcast in every way, against
the same buffer at another offset (not in place), and through a compiled plan."""
import re

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import lowerings as kernels, library
from helpers import run_cpu_and_reference

CHUNK = library.ROW_CHUNK       # inner dims longer than this run in chunks (a broadcast's row buffer)
SHAPES = [((5, 7, 33), (7, 1)), ((3, 1, 17), (1,)), ((2, 9), (2, 1)), ((4, 6, 8), (4, 6, 8)), ((11,), ()),
          ((2, 3 * CHUNK + 5), ()), ((3, CHUNK + 7), (3, 1)), ((2 * CHUNK + 3,), (2 * CHUNK + 3,))]


def _record(out_shape, views):
    return np.array(kernels.ew_record(kernels.contiguous(0, out_shape), views), np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, other", SHAPES)
def test_in_place_binary_and_ternary_kernels_match_numpy(shape, other, dtype, rng):
    lib = library.load()
    n, k = int(np.prod(shape)), int(np.prod(other))
    x = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    E = np.zeros(4, np.int64)
    # Y0 = X0 (one buffer, same offset) + X1 broadcast
    buf = x.copy()
    lib.ew_Add(buf, b, buf, _record(shape, [kernels.contiguous(0, shape), kernels.contiguous(0, other)]), E, 0)
    np.testing.assert_array_equal(buf.reshape(shape), x.reshape(shape) + b.reshape(other))
    # Y0 = X0 - X1 * X2 in place (the SGD write-back kernel), X1 a scalar
    lr = np.array([0.25], dtype)
    buf = x.copy()
    rec = _record(shape, [kernels.contiguous(0, shape), kernels.contiguous(0, ()), kernels.contiguous(0, other)])
    lib.ew_SubMul(buf, lr, b, buf, rec, E, 0)
    np.testing.assert_allclose(buf.reshape(shape), x.reshape(shape) - lr[0] * b.reshape(other), rtol=1e-6)
    # a Where over bools on its condition's buffer: no in-place loop (library.EW_NOT_IN_PLACE), still right
    cond, t, f = x > 0, b > 0, rng.standard_normal(n) > 0
    buf = cond.copy()
    rec = _record(shape, [kernels.contiguous(0, shape), kernels.contiguous(0, other), kernels.contiguous(0, shape)])
    lib.ew_Where(buf, t, f, buf, rec, E, 0)
    np.testing.assert_array_equal(buf.reshape(shape), np.where(cond.reshape(shape), t.reshape(other), f.reshape(shape)))
    assert E[0] == 0


@pytest.mark.parametrize("shape, other", SHAPES)
def test_same_buffer_at_another_offset_is_not_in_place(shape, other, rng):
    """Y0 and X0 in one array, Y0 after X0: the loop must read X0's own values."""
    lib = library.load()
    n = int(np.prod(shape))
    buf = rng.standard_normal(2 * n)
    b = rng.standard_normal(int(np.prod(other)))
    x = buf[:n].copy()
    rec = np.array(kernels.ew_record(kernels.contiguous(n, shape), [kernels.contiguous(0, shape),
                                                                     kernels.contiguous(0, other)]), np.int64)
    lib.ew_Mul(buf, b, buf, rec, np.zeros(4, np.int64), 0)
    np.testing.assert_array_equal(buf[:n], x)
    np.testing.assert_array_equal(buf[n:].reshape(shape), x.reshape(shape) * b.reshape(other))


def test_in_place_chain_in_a_plan_matches_the_reference(rng):
    """A chain of elementwise ops on dead intermediates (the plan runs them in place) with
    per-channel broadcasts, as after a conv."""
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    X = sg.placeholder(sg.float32, x.shape)
    bias = sg.constant(rng.standard_normal((4, 1, 1)).astype(np.float32))
    scale = sg.constant(rng.standard_normal((4, 1, 1)).astype(np.float32))
    y = sg.relu((X * 2.0 + bias) * scale) - bias
    with sg.Session() as sess:
        plan = sess.compile([y], [X])
        plan(x)
        explained = plan.explain()
    assert int(re.search(r"(\d+) in place", explained).group(1)) > 0
    cpu, ref = run_cpu_and_reference([y], {X: x})
    np.testing.assert_allclose(cpu[0], ref[0], rtol=1e-6, atol=1e-6)


def test_elementwise_outputs_go_in_place_on_input_0_only(rng):
    """The plan puts an elementwise output on input 0's buffer when input 0 dies there, never on a
    later input's (the loop vectorizes only through input 0): a relu gradient's Where(c, g, 0) and
    a Sub whose first operand is read again both get buffers of their own, and stay correct."""
    x = sg.placeholder(sg.float32, (None, 64))
    a, b = sg.exp(x), sg.sin(x)
    c = a - b                         # b dies here, a is read below: not in place
    w = sg.where(x > 0, c * a, 0.0)    # the product dies here as input 1: not in place
    e = sg.exp(w)                      # w dies here as input 0: in place
    xv = rng.standard_normal((9, 64)).astype(np.float32)
    with sg.Session() as sess:
        plan = sess.compile(e, [x])
        plan.wait()
        got = plan(xv)
        lay = next(iter(plan._exe.tier.layouts.values()))
        placed = {(getattr(o, "name", None), getattr(i, "name", None)) for o, i in lay.arena.inplace}
    assert (c.name, b.name) not in placed
    assert not any(o == w.name for o, _ in placed)
    assert (e.name, w.name) in placed
    with sg.Session(target="reference") as ref:
        want = ref.run(e, {x: xv})
    np.testing.assert_allclose(got, want, rtol=1e-6)
