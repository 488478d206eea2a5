"""A conv fused with the max pooling that reads it (compiler/backends/cpu/nn_conv_pool.py): where
the rewrite applies and where it must not, and the fused kernels against the reference backend
(values, pooled indices through the gradients, bias and filter gradients, SGD steps) over window
shapes (non-overlapping, overlapping, 1-d, dilated), groups, ties and NaN, batch-size changes
(an empty batch included) and 1-3 workers."""
import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import nn_conv_pool, nn_pool

# (conv: C, O, spatial, kernel, stride, padding, dilation, groups; pool: kernel, stride, dilation)
# every conv output row is >= nn_conv.MINOR_ROW long with >= nn_conv.SAMPLE_COLUMNS column elements
# per sample (or, pointwise, >= nn_conv.POINTWISE_POSITIONS outputs: its GEMMs read X's planes in
# place), so the conv runs one sample per chunk and the rewrite applies
CASES = [
    pytest.param(((1, 4, (28, 28), (5, 5), 1, 0, 1, 1), ((3, 3), (3, 3), (1, 1))), id="lenet-3x3"),
    pytest.param(((1, 3, (27, 29), (5, 5), 1, 0, 1, 1), ((3, 3), (2, 2), (1, 1))), id="overlapping-odd"),
    pytest.param(((2, 4, (40, 30), (3, 3), 1, 1, 1, 2), ((2, 2), (2, 2), (1, 1))), id="groups-2x2"),
    pytest.param(((1, 2, (40, 33), (5, 3), (2, 1), 0, 1, 1), ((2, 3), (1, 2), (2, 1))), id="strided-dilated-pool"),
    pytest.param(((1, 3, (40, 37), (5, 5), 1, 0, 1, 1), ((3, 3), (2, 3), (1, 2))), id="dilated-3x3"),
    pytest.param(((4, 6, (18, 17), (1, 1), 1, 0, 1, 2), ((3, 3), (2, 3), (1, 1))), id="pointwise-groups"),
    pytest.param(((4, 3, (700,), (3,), 1, 0, 2, 1), ((4,), (3,), (1,))), id="1d"),
]
CONV = {1: sg.nn.conv1d, 2: sg.nn.conv2d}
POOL = {1: sg.nn.max_pool1d, 2: sg.nn.max_pool2d}


def _model(case, dtype, rng, bias=True, input_grad=False, fetch_conv=False):
    """x -> conv (+ a channel bias) -> max pool -> relu -> sum of squares; the loss, its gradients
    (filter, bias, optionally input), an SGD step, and the placeholder."""
    (c, o, spatial, kernel, stride, padding, dilation, groups), (pk, ps, pd) = case
    d = len(spatial)
    X = sg.placeholder(dtype, (None, c) + spatial, name="x")
    w = sg.Variable((0.3 * rng.standard_normal((o, c // groups) + kernel)).astype(dtype), name="w", dtype=dtype)
    y = CONV[d](X, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    vs = [w]
    if bias:
        b = sg.Variable(rng.standard_normal((o,) + (1,) * d).astype(dtype), name="b", dtype=dtype)
        y = y + b
        vs.append(b)
    p = POOL[d](y, pk, stride=ps, dilation=pd)
    loss = sg.reduce_sum(sg.square(sg.relu(p)))
    grads = sg.gradients(loss, vs + ([X] if input_grad else []))
    train = sg.train.GradientDescentOptimizer(1e-3).minimize(loss)
    return X, [loss, p] + grads + ([y] if fetch_conv else []), train, vs


def _fused_fwd(kernels) -> bool:
    """The plan runs a fused conv + pool forward (channels-last windows or the planar path)."""
    return bool(set(nn_conv_pool.FWD_KERNELS) & set(kernels))


def _kernels(fetches, X):
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        return sorted(c.kernel for c in sess.compile(fetches, [X])._exe.base.prog.calls)


def _compare(X, fetches, train, vs, xs, dtype):
    """The fetches for each batch in ``xs`` and the variables after an SGD step on each, cpu vs reference."""
    results = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            results[target] = out = []
            for x in xs:
                out.append(sess.run(fetches, {X: x}))
                sess.run(train, {X: x})
                out.append(sess.run(vs))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    for got, want in zip(results["cpu"], results["reference"]):
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, **tol)


def test_cases_run_every_forward_kernel():
    """The cases take each of the fused forward's kernels: channels-last, one per unrolled window
    (LeNet's 3x3, overlapping, grouped 2x2, dilated) and planar (``_pool_max_full``: the other
    windows)."""
    kinds = [nn_pool.channels_last(c.values[0][1][0]) for c in CASES]
    assert kinds.count(True) >= 4 and kinds.count(False) >= 2, kinds
    assert sorted({nn_conv_pool.fwd_kernel(c.values[0][1][0]) for c in CASES}) == sorted(nn_conv_pool.FWD_KERNELS)
    assert [nn_conv_pool.fwd_kernel(k) for k in [(2, 2), (3, 3), (1, 3, 3), (2, 3), (3,), (2, 2, 2)]] == [
        "conv_pool_fwd_2x2", "conv_pool_fwd_3x3", "conv_pool_fwd_3x3"] + ["conv_pool_fwd_planar"] * 3


@pytest.mark.parametrize("case", CASES)
def test_fused_conv_pool_matches_reference_over_batch_sizes(case, rng):
    """Both fused kernels run (no pooling call left), and the loss, pooled values, gradients and
    SGD steps match the reference at batch sizes 5, 2, 0 and 1 of one plan."""
    X, fetches, train, vs = _model(case, np.float64, rng)
    kernels = _kernels(fetches, X)
    assert set(nn_conv_pool.FWD_KERNELS) & set(kernels) == {nn_conv_pool.fwd_kernel(case[1][0])}
    assert "conv_pool_bpf" in kernels
    assert not {"conv_fwd", "conv_bpf", "pool_max_grad", *nn_pool.MAX_POOL_KERNELS} & set(kernels)
    assert kernels.count("red_SumF") == 1     # the loss's: the bias gradient is summed in conv_pool_bpf
    shape = tuple(X.shape[1:])
    xs = [rng.standard_normal((n,) + shape) for n in (5, 2, 0, 1)]
    _compare(X, fetches, train, vs, xs, np.float64)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_fused_kernels_on_workers_float32(workers, rng, monkeypatch):
    """float32, 1-3 workers (samples split over them; the filter gradient's partial sums reduced)."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    case = CASES[0].values[0]
    X, fetches, train, vs = _model(case, np.float32, rng)
    assert "conv_pool_bpf" in _kernels(fetches, X)
    xs = [rng.standard_normal((n, 1, 28, 28)).astype(np.float32) for n in (7, 1)]
    _compare(X, fetches, train, vs, xs, np.float32)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("which", [0, 1, 3], ids=["last-3x3", "last-overlapping", "planar"])
def test_ties_and_nan_follow_the_pooling_rules(which, bias, rng):
    """Integer-valued inputs and weights make many equal maxima (the first one wins, as MaxPool's
    indices say); a NaN in a sample propagates to its windows and gradients as on the reference,
    channels-last (where the pooling adds a fused bias as it reads) and planar."""
    case = CASES[which].values[0]
    X, fetches, train, vs = _model(case, np.float64, rng, bias=bias)
    shape = (case[0][0],) + case[0][2]
    ties = np.round(rng.standard_normal((3,) + shape))
    nan = rng.standard_normal((2,) + shape)
    nan[1, 0, 10, 11] = np.nan     # conv outputs (6..10, 7..11): windows whose first element is not NaN
    for x in (ties, nan):
        results = []
        for target in ("cpu", "reference"):
            with sg.Session(target=target) as sess:
                sess.run(sg.global_variables_initializer())
                sess.run(vs[0].assign(np.round(3 * sess.run(vs[0]))))
                results.append(sess.run(fetches, {X: x}))
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)
        assert np.isnan(results[0][1]).any() == np.isnan(x).any()


def test_not_fused_where_the_conv_output_or_pooling_gradient_is_read_elsewhere(rng):
    """A fetched conv output keeps both the conv and the pooling (forward not fused); an input
    gradient reads the pooling gradient too (backward not fused, forward still fused); a padded
    pooling is not fused. Values still match the reference."""
    case = CASES[0].values[0]
    X, fetches, train, vs = _model(case, np.float64, rng, fetch_conv=True)
    kernels = _kernels(fetches, X)
    assert "conv_fwd" in kernels and "pool_max_rows_3x3" in kernels and not _fused_fwd(kernels)
    assert "conv_pool_bpf" in kernels      # the pooling gradient is still read only by the filter gradient
    _compare(X, fetches, train, vs, [rng.standard_normal((2, 1, 28, 28))], np.float64)
    X, fetches, train, vs = _model(case, np.float64, rng, input_grad=True)
    kernels = _kernels(fetches, X)
    assert _fused_fwd(kernels) and "conv_bpf" in kernels and "pool_max_grad" in kernels
    _compare(X, fetches, train, vs, [rng.standard_normal((2, 1, 28, 28))], np.float64)
    X = sg.placeholder(sg.float64, (None, 1, 28, 28))
    w = sg.Variable(rng.standard_normal((4, 1, 5, 5)), name="w", dtype=sg.float64)
    p = sg.nn.max_pool2d(sg.nn.conv2d(X, w), 3, stride=3, padding=1)
    loss = sg.reduce_sum(p)
    kernels = _kernels([loss] + sg.gradients(loss, [w]), X)
    assert "conv_fwd" in kernels and "pool_max_padded" in kernels and not _fused_fwd(kernels)


def test_small_convs_keep_their_kernels():
    """A conv that runs several samples per chunk (short output rows) is not fused."""
    X = sg.placeholder(sg.float32, (None, 8, 8, 8))
    w = sg.Variable(np.ones((4, 8, 3, 3), np.float32), name="w")
    p = sg.nn.max_pool2d(sg.nn.conv2d(X, w), 2)
    loss = sg.reduce_sum(p)
    kernels = _kernels([loss] + sg.gradients(loss, [w]), X)
    assert not _fused_fwd(kernels) and "conv_pool_bpf" not in kernels
    assert not nn_conv_pool._one_sample_im2col(p.op.inputs[0].op, X, w, p.op.inputs[0])
