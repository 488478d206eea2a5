"""The cuda conv and pooling kernels (``compiler/backends/cuda/kernels/{conv,pool}.py``) against the
reference backend, on the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``; tiny sizes: the simulator
runs every GPU thread as a Python thread).

Each graph runs in a ``target="cuda"`` session (the cpu lowering under the cuda profile: im2col
family only, one call per op, the bias folded into the conv kernels); its calls are all kernels of
these two families."""

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.ops.pool import max_pool_gather

# (skips the module without numba-cuda; fast_simulator_switching: autouse)
from cuda_helpers import fast_simulator_switching, small_blocks  # noqa: F401, E402
from compiler.backends.cpu.records import CONV  # noqa: E402
from compiler.backends.cuda.kernels import LAUNCHERS, conv, pool  # noqa: E402

CONV_KERNELS = ("conv_fwd", "conv_bpi", "conv_bpf")
POOL_KERNELS = ("pool_max", "pool_avg", "pool_avg_grad", "pool_max_grad", "pool_max_gather")
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    small_blocks(monkeypatch)


def _cuda_and_reference(fetches, feeds, values, runs: int = 1):
    """(cuda values of each of ``runs`` steps, reference values, the cuda plan's kernels in order,
    the record of each kernel's last call) of ``fetches`` (the variables initialized)."""
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        ref = sess.run(list(fetches), dict(zip(feeds, values)))
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile(list(fetches), list(feeds))
        got = [plan(*values) for _ in range(runs)]
        exe = plan._exe
        M = next(iter(exe.layouts.values())).M.copy_to_host()
    calls = exe.prog.all_calls
    return got if runs > 1 else got[0], ref, [c.kernel for c in calls], {c.kernel: M[c.pos:c.pos + c.size]
                                                                        for c in calls}


def _close(got, ref, dtype, what=""):
    for i, (a, b) in enumerate(zip(got, ref)):
        assert a.shape == b.shape and a.dtype == b.dtype, (what, i)
        np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype], err_msg=f"{what} fetch {i}")


def test_every_kernel_has_a_launcher():
    assert set(CONV_KERNELS + POOL_KERNELS) <= set(LAUNCHERS)


# -- convolutions -----------------------------------------------------------------------------------------
# (input shape, weight shape, builder keywords): 1-d, 2-d, 3-d; stride, padding incl. "same",
# dilation, groups, odd sizes
CONVS = {
    "1d_stride_pad": ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=1)),
    "1d_dilation_groups": ((2, 4, 11), (6, 2, 3), dict(dilation=2, groups=2, padding=2)),
    "2d_same": ((1, 3, 5, 4), (4, 3, 3, 3), dict(padding="same")),
    "2d_stride_dilation_groups": ((1, 4, 5, 5), (6, 2, 2, 3), dict(stride=(2, 1), dilation=(2, 1), padding=(1, 0),
                                                                  groups=2)),
    "2d_depthwise_stride3": ((1, 3, 5, 4), (3, 1, 2, 2), dict(stride=3, groups=3, padding=1)),
    "3d": ((1, 2, 3, 4, 3), (3, 2, 2, 3, 2), dict(stride=(1, 2, 1), padding=(1, 0, 1))),
}
BIASED = ("1d_dilation_groups", "2d_same", "3d")      # also run with a fused bias and bias gradient


def _conv_graph(rng, dtype, xshape, wshape, kw, bias: bool):
    """A conv layer (weight and bias variables) and both gradients for a fed output gradient."""
    d = len(xshape) - 2
    x = sg.placeholder(dtype, xshape)
    w = sg.Variable(rng.standard_normal(wshape).astype(dtype), dtype=dtype)
    b = sg.Variable(rng.standard_normal(wshape[0]).astype(dtype), dtype=dtype) if bias else None
    y = getattr(sg.nn, f"conv{d}d")(x, w, b, **kw)
    g = sg.placeholder(dtype, y.shape)
    params = [x, w] + ([b] if bias else [])
    grads = sg.gradients(y, params, grad_ys=g)
    values = [rng.standard_normal(xshape).astype(dtype), rng.standard_normal(y.shape).astype(dtype)]
    return [y] + grads, [x, g], values


@pytest.mark.parametrize("case, bias", [(c, False) for c in sorted(CONVS)] + [(c, True) for c in BIASED])
def test_conv_and_its_gradients(case, bias, rng):
    """Forward, input and filter gradients (with ``bias``: the bias fused into conv_fwd and its
    gradient into conv_bpf, ``fuse_bias`` and ``fuse_bias_grad``) against the reference, float32."""
    xshape, wshape, kw = CONVS[case]
    fetches, feeds, values = _conv_graph(rng, np.float32, xshape, wshape, kw, bias)
    got, ref, kernels, records = _cuda_and_reference(fetches, feeds, values)
    assert sorted(kernels) == sorted(CONV_KERNELS)
    assert CONV.unpack(records["conv_fwd"])["has_bias"] == int(bias)
    assert CONV.unpack(records["conv_bpf"])["has_bias"] == int(bias)
    _close(got, ref, np.float32, case)


def test_conv_float64(rng):
    """float64 to float64 accuracy, the bias fused."""
    fetches, feeds, values = _conv_graph(rng, np.float64, (3, 2, 6, 5), (3, 2, 3, 2), dict(padding=(1, 0)), True)
    got, ref, kernels, records = _cuda_and_reference(fetches, feeds, values)
    _close(got, ref, np.float64)


def test_filter_gradient_split_over_the_batch_is_deterministic(monkeypatch, rng):
    """The batch reduction of conv_bpf in several slices (partial sums in the workspace, summed in a
    fixed order): the reference's values, and bit-identical twice."""
    monkeypatch.setattr(conv, "SLICE_DEPTH", 8)
    fetches, feeds, values = _conv_graph(rng, np.float32, (3, 2, 13), (3, 2, 3), dict(padding=1), True)
    (got, again), ref, _, records = _cuda_and_reference(fetches, feeds, values, runs=2)
    assert conv.bpf_slices(CONV.unpack(records["conv_bpf"])) == 39 // 8      # N * OW columns, 8 a slice
    _close(got, ref, np.float32)
    for a, b in zip(got, again):
        assert np.array_equal(a, b)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # tile lanes past the
def test_conv_padding_never_reads_nan(rng):                                       # rows: 0 * inf, not stored
    """Padding contributes exact zeros: an input of infinities next to the padding stays out of
    the outputs whose windows do not read it (no 0 * inf)."""
    x = sg.placeholder(sg.float32, (1, 1, 4))
    w = sg.placeholder(sg.float32, (1, 1, 3))
    y = sg.nn.conv1d(x, w, padding=1)
    xv = np.array([[[np.inf, 1, 2, 3]]], np.float32)
    got, ref, _, _ = _cuda_and_reference([y], [x, w], [xv, np.ones((1, 1, 3), np.float32)])
    assert np.isinf(got[0][0, 0, :2]).all() and np.array_equal(got[0][0, 0, 2:], [6, 5])
    _close(got, ref, np.float32)


# -- pooling ------------------------------------------------------------------------------------------------
# (input shape, builder, keywords): windows clipped by ceil_mode, padding, dilation, overlapping
# windows (stride < kernel: an input element in several windows)
MAX_POOLS = {
    "1d_ceil_overlap": ((2, 3, 10), 1, dict(kernel_size=3, stride=2, ceil_mode=True)),
    "1d_long_overlap": ((1, 2, 100), 1, dict(kernel_size=3, stride=1, padding=1)),      # several chunks a plane
    "2d_pad_dilation": ((2, 2, 7, 6), 2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1))),
    "2d_ceil_pad": ((1, 3, 5, 5), 2, dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    "3d": ((1, 2, 4, 5, 3), 3, dict(kernel_size=(2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0), ceil_mode=True)),
}


@pytest.mark.parametrize("case", sorted(MAX_POOLS))
def test_max_pool_indices_gradient_and_gather(case, rng):
    """Values, indices exactly as the cpu kernels (PyTorch's) write them, the gradient
    (pool_max_grad, overlapping windows included) and the gather of the indices (pool_max_gather)."""
    shape, k, kw = MAX_POOLS[case]
    x = sg.placeholder(sg.float32, shape)
    a = sg.placeholder(sg.float32, shape)
    values, indices = getattr(sg.nn, f"max_pool{k}d")(x, return_indices=True, **kw)
    g = sg.placeholder(sg.float32, values.shape)
    dx, = sg.gradients(values, [x], grad_ys=g)
    gathered = max_pool_gather(a, indices, k)
    xv = rng.standard_normal(shape).astype(np.float32)
    flat = xv.reshape(-1)
    flat[1::7] = flat[::7][:len(flat[1::7])]      # ties: the first maximum wins
    feeds = [x, a, g]
    vals = [xv, rng.standard_normal(shape).astype(np.float32), rng.standard_normal(values.shape).astype(np.float32)]
    got, ref, kernels, _ = _cuda_and_reference([values, indices, dx, gathered], feeds, vals)
    assert sorted(kernels) == ["pool_max", "pool_max_gather", "pool_max_grad"]
    assert np.array_equal(got[1], ref[1])
    _close(got, ref, np.float32, case)


def test_max_pool_nan_and_integers(rng):
    """A NaN wins its windows (the last NaN's index); integer inputs pool with the dtype's minimum
    as padding."""
    x = sg.placeholder(sg.float64, (1, 2, 6))
    xi = sg.placeholder(sg.int32, (2, 1, 3, 4))
    v, i = sg.nn.max_pool1d(x, 3, stride=2, padding=1, return_indices=True)
    vi, ii = sg.nn.max_pool2d(xi, 2, stride=1, padding=1, ceil_mode=True, return_indices=True)
    xv = rng.standard_normal((1, 2, 6))
    xv[0, 0, 2] = xv[0, 0, 3] = xv[0, 1, 5] = np.nan
    xiv = rng.integers(-5, 5, (2, 1, 3, 4)).astype(np.int32)
    got, ref, _, _ = _cuda_and_reference([v, i, vi, ii], [x, xi], [xv, xiv])
    assert np.isnan(got[0]).sum() == np.isnan(ref[0]).sum() > 0
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


AVG_POOLS = {
    "1d_ceil_exclude": ((2, 3, 9), 1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                           count_include_pad=False)),
    "2d_ceil_include": ((2, 2, 5, 7), 2, dict(kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)),
    "2d_overlap": ((1, 3, 6, 5), 2, dict(kernel_size=3, stride=1)),
    "3d_exclude": ((1, 2, 3, 5, 4), 3, dict(kernel_size=2, stride=(1, 2, 2), padding=1, count_include_pad=False)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(AVG_POOLS))
def test_avg_pool_and_its_gradient(case, dtype, rng):
    shape, k, kw = AVG_POOLS[case]
    x = sg.placeholder(dtype, shape)
    y = getattr(sg.nn, f"avg_pool{k}d")(x, **kw)
    g = sg.placeholder(dtype, y.shape)
    dx, = sg.gradients(y, [x], grad_ys=g)
    vals = [rng.standard_normal(shape).astype(dtype), rng.standard_normal(y.shape).astype(dtype)]
    got, ref, kernels, _ = _cuda_and_reference([y, dx], [x, g], vals)
    assert sorted(kernels) == ["pool_avg", "pool_avg_grad"]
    _close(got, ref, dtype, case)
