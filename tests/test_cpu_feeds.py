"""Fed values on the cpu target: large C-contiguous feeds are read in place by the native step
(their address goes into the buffer table; ``Layout.feed``), every other feed is copied into the
feed's own array. Either way the user's arrays are never written, a new value (or a non-contiguous
one, or a fetched feed) is seen by the next run, and results match the reference backend."""
import numpy as np

import staticgraph as sg
from compiler.backends.cpu import executable
from helpers import run_cpu_and_reference

BIG = (64, 300)     # 76,800 bytes in float32: at least DIRECT_FEED_BYTES


def _layout(plan):
    tier = plan._exe.tier
    (layout,) = tier.layouts.values()
    return layout


def test_large_feeds_are_read_in_place_and_never_written(rng):
    assert np.prod(BIG) * 4 >= executable.DIRECT_FEED_BYTES
    x = sg.placeholder(sg.float32, BIG)
    small = sg.placeholder(sg.float32, (3,))
    y = sg.nn.relu(x) * 2.0           # elementwise on x: an in-place candidate, never on a feed
    z = sg.reduce_sum(y) + sg.reduce_sum(small)
    with sg.Session() as sess:
        plan = sess.compile([y, z], [x, small]).wait()
        for _ in range(3):            # fresh values each run: nothing stale
            xv = rng.standard_normal(BIG).astype(np.float32)
            sv = rng.standard_normal(3).astype(np.float32)
            keep = xv.copy()
            got_y, got_z = plan(xv, sv)
            np.testing.assert_array_equal(xv, keep)
            np.testing.assert_allclose(got_y, np.maximum(keep, 0) * 2, rtol=1e-6)
            np.testing.assert_allclose(got_z, got_y.sum(dtype=np.float64) + sv.sum(), rtol=1e-5)
            layout = _layout(plan)
            assert list(layout.direct) == [0]                          # x only: `small` is copied
            assert layout.B[layout.direct[0]] == xv.ctypes.data        # read where the caller keeps it


def test_non_contiguous_and_fetched_feeds_are_copied(rng):
    x = sg.placeholder(sg.float32, BIG)
    w = sg.placeholder(sg.float32, BIG)
    flat = sg.reshape(w, (-1,))
    y = x * 3.0 + w
    with sg.Session() as sess:
        plan = sess.compile([y, w, flat], [x, w]).wait()
        layout = None
        for step in range(4):
            base = rng.standard_normal((BIG[0], 2 * BIG[1])).astype(np.float32)
            xv = base[:, ::2] if step % 2 else np.ascontiguousarray(base[:, ::2])   # alternate: strided, contiguous
            wv = rng.standard_normal(BIG).astype(np.float32)
            got_y, got_w, got_flat = plan(xv, wv)
            np.testing.assert_allclose(got_y, xv * 3 + wv, rtol=1e-6)
            np.testing.assert_array_equal(got_w, wv)
            np.testing.assert_array_equal(got_flat, wv.ravel())
            layout = _layout(plan)
            own = layout.own[0]
            assert layout.B[layout.direct[0]] == (own if step % 2 else xv.ctypes.data)
        assert 1 not in layout.direct          # w is fetched (and viewed by a fetched reshape): copied


def test_a_training_step_with_a_large_feed_matches_the_reference(rng):
    x = sg.placeholder(sg.float32, (None, 200))
    t = sg.placeholder(sg.int64, (None,))
    w = sg.Variable(rng.standard_normal((200, 10)).astype(np.float32) * 0.1)
    loss = sg.nn.cross_entropy(x @ w, t)
    train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
    batches = [(rng.standard_normal((n, 200)).astype(np.float32), rng.integers(0, 10, n)) for n in (128, 96, 128)]
    results = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            plan = sess.compile([train, loss], [x, t]).wait()
            results[target] = [plan(*b)[1] for b in batches] + [sess.run(w)]
            if target == "cpu":
                assert list(_layout_of(plan, (128, 200)).direct) == [0]
    for a, b in zip(results["cpu"], results["reference"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _layout_of(plan, shape):
    return next(lay for sig, lay in plan._exe.base.layouts.items() if sig[0] == shape)
