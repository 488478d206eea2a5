"""The cpu kernels of the conv family (Conv, ConvBackpropInput, ConvBackpropFilter) against the
reference backend and naive loops: 1-d/2-d/3-d with stride, padding, dilation and groups, forward
and both backward ops, float32 and float64, the chunked and per-sample im2col paths, empty batches,
batch-size changes without recompiling, the natively compiled step, second derivatives on cpu,
and run-time shape errors."""
import numpy as np
import pytest

import compiler.backends.cpu.nn_conv as nn_conv
from compiler.backends.cpu.records import CONV as CONV_RECORD
import staticgraph as sg
from helpers import run_cpu_and_reference, train_on_cpu_and_reference
from compiler.backends.cpu.executable import STATS
from staticgraph.ops.conv import conv_backprop_filter, conv_backprop_input
from test_nn_conv import CASES, CONV, naive_conv

# the kernels of a conv and its gradients (the filter gradient in two phases: partial sums, their sum)
KERNELS = ["conv_bpf", "conv_bpf_reduce", "conv_bpi", "conv_fwd"]

FLOATS = [np.float32, np.float64]
GRID = [pytest.param(d, case, id=f"{d}d-{i}") for d in CASES for i, case in enumerate(CASES[d])]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


def _attrs(d, stride, padding, dilation, groups):
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _conv_and_grads(d, x, w, dy, batch=None, **attrs):
    """Placeholders for x, w and dy; y = conv(x, w) and its input and filter gradients for dy."""
    X = sg.placeholder(x.dtype, (batch,) + x.shape[1:])
    W = sg.placeholder(w.dtype, w.shape)
    y = CONV[d](X, W, **attrs)
    DY = sg.placeholder(dy.dtype, (batch,) + dy.shape[1:])
    gx, gw = sg.gradients(y, [X, W], grad_ys=DY)
    return (X, W, DY), [y, gx, gw]


def _case_arrays(rng, d, case, dtype, n):
    c, o, spatial, kernel, stride, padding, dilation, groups = case
    attrs = _attrs(d, stride, padding, dilation, groups)
    x = rng.standard_normal((n, c) + spatial).astype(dtype)
    w = rng.standard_normal((o, c // groups) + kernel).astype(dtype)
    y = naive_conv(x, w, **attrs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    return x, w, dy, y, attrs


def _check_against_reference_and_naive(d, case, dtype, n, rng):
    """Forward and both gradients of one case on cpu vs the reference backend and naive loops.
    Returns x, w, dy, the naive forward, the cpu results and the kernel names the cpu plan calls."""
    x, w, dy, naive, attrs = _case_arrays(rng, d, case, dtype, n)
    (X, W, DY), fetches = _conv_and_grads(d, x, w, dy, **attrs)
    cpu, ref = run_cpu_and_reference(fetches, {X: x, W: w, DY: dy})
    for a, b in zip(cpu, ref):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol(dtype))
    np.testing.assert_allclose(cpu[0], naive, **tol(dtype))
    with sg.Session() as sess:
        kernels = sorted({c.kernel for c in sess.compile(fetches, [X, W, DY])._exe.base.prog.calls})
    return x, w, dy, naive, cpu, kernels


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("d, case", GRID)
def test_forward_and_both_gradients_match_reference_and_naive(d, case, dtype, rng):
    x, w, dy, naive, cpu, _ = _check_against_reference_and_naive(d, case, dtype, int(rng.integers(1, 4)), rng)
    # the adjoint identities pin both gradients independently of the reference backend
    x64, w64, dy64 = (v.astype(np.float64) for v in (x, w, dy))
    lhs, scale = float(np.sum(dy64 * naive)), float(np.sum(np.abs(dy64 * naive)))
    atol = scale * (1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(np.sum(cpu[1] * x64), lhs, rtol=0, atol=atol)
    np.testing.assert_allclose(np.sum(cpu[2] * w64), lhs, rtol=0, atol=atol)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_im2col_paths(chunk, workers, rng, monkeypatch):
    """7 samples in chunks of 1, of 3 (3 + 3 + 1: the last one goes straight to the output) and
    all at once, with small and larger outputs, groups, padding and stride; on one worker, and on
    three (chunks t, t + 3, ... on worker t: uneven shares; the filter gradient's partial sums)."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    for spatial, kernel, padding, groups in (((6, 5), (3, 2), 1, 2), ((17, 16), (3, 3), 1, 1)):
        sg.reset_default_graph()
        x = rng.standard_normal((7, 4) + spatial)
        w = rng.standard_normal((6, 4 // groups) + kernel)
        attrs = dict(padding=padding, groups=groups, stride=(1, 2))
        dy = rng.standard_normal(naive_conv(x, w, **attrs).shape)
        per_sample = 4 * int(np.prod(kernel)) * dy[0, 0].size
        monkeypatch.setattr(nn_conv, "CHUNK_ELEMENTS", chunk * per_sample + per_sample // 2)
        assert nn_conv._chunk(7, per_sample, 1) == chunk
        nb = nn_conv._chunk(7, per_sample, workers)
        assert nb <= chunk and -(-7 // nb) >= workers          # fits, and a chunk for every worker
        (X, W, DY), fetches = _conv_and_grads(2, x, w, dy, **attrs)
        cpu, ref = run_cpu_and_reference(fetches, {X: x, W: w, DY: dy})
        for a, b in zip(cpu, ref):
            np.testing.assert_allclose(a, b, **tol(np.float64))


@pytest.mark.parametrize("layout", ["batch-minor", "sample-major", "one sample"])
@pytest.mark.parametrize("d, case", GRID)
def test_im2col_layouts_over_chunks(d, case, layout, rng, monkeypatch):
    """Both im2col column layouts, 5 samples in chunks of 2 (the last chunk of one sample always
    goes sample-major), and one sample per chunk (GEMMs on the operands' planes in place), every
    stride, padding, dilation and group case, in float64 (on the default workers)."""
    c, o, spatial, kernel, stride, padding, dilation, groups = case
    monkeypatch.setattr(nn_conv, "MINOR_ROW", 10 ** 9 if layout == "batch-minor" else 0)
    monkeypatch.setattr(nn_conv, "SAMPLE_COLUMNS", 1 if layout == "one sample" else 10 ** 9)
    attrs = _attrs(d, stride, padding, dilation, groups)
    ys = naive_conv(np.zeros((1, c) + spatial), np.zeros((o, c // groups) + kernel), **attrs).shape
    attrs = {k: v if k == "groups" or isinstance(v, tuple) else (v,) * d for k, v in attrs.items()}
    per_sample = c * int(np.prod(kernel)) * int(np.prod(ys[2:]))
    monkeypatch.setattr(nn_conv, "CHUNK_ELEMENTS", 2 * per_sample + per_sample // 2)
    geometry = nn_conv._geometry(attrs, (5, c) + spatial, (o, c // groups) + kernel, (5,) + ys[1:])
    assert [geometry[k] for k in ("nb", "block", "minor")] == [1 if layout == "one sample" else 2, 0, int(layout == "batch-minor")]
    kernels = _check_against_reference_and_naive(d, case, np.float64, 5, rng)[-1]
    assert kernels == KERNELS


def _kept_columns(plan) -> dict:
    """{kernel: where its record keeps the batch's columns (-1: not kept)} after a run of ``plan``."""
    tier = plan._exe.base
    (layout,) = tier.layouts.values()
    return {c.kernel: int(layout.M[c.pos + CONV_RECORD.at.kept]) for c in tier.prog.calls if c.kernel.startswith("conv_")}


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("layout", ["batch-minor", "sample-major"])
@pytest.mark.parametrize("d, case", GRID)
def test_filter_gradient_reads_the_forward_columns_where_each_worker_runs_one_chunk(d, case, layout, workers,
                                                                                    rng, monkeypatch):
    """``keep_columns``: 6 samples in one chunk per worker (1, 2 or 3 workers); the forward keeps
    the batch's columns and the filter gradient reads them (both records point at the same place),
    for both column layouts and every case of the grid; results match the reference. At twice as
    many chunks as workers the columns are not kept (each worker's chunks reuse its region)."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(nn_conv, "MINOR_ROW", 10 ** 9 if layout == "batch-minor" else 0)
    monkeypatch.setattr(nn_conv, "SAMPLE_COLUMNS", 10 ** 9)
    x, w, dy, naive, attrs = _case_arrays(rng, d, case, np.float64, 6)
    per_sample = x.shape[1] * int(np.prod(w.shape[2:])) * int(np.prod(dy.shape[2:]))
    for chunks, kept in ((workers, True), (2 * workers, False)):
        monkeypatch.setattr(nn_conv, "CHUNK_ELEMENTS", -(-6 // chunks) * per_sample)
        sg.reset_default_graph()
        (X, W, DY), fetches = _conv_and_grads(d, x, w, dy, **attrs)
        with sg.Session() as sess:
            plan = sess.compile(fetches, [X, W, DY])
            cpu = plan(x, w, dy)
            where = _kept_columns(plan)
        ref = run_cpu_and_reference(fetches, {X: x, W: w, DY: dy})[1]
        for a, b in zip(cpu, ref):
            np.testing.assert_allclose(a, b, **tol(np.float64))
        assert set(where) == {"conv_fwd", "conv_bpf", "conv_bpf_reduce", "conv_bpi"} and where["conv_bpi"] == -1
        if kept:
            assert where["conv_fwd"] == where["conv_bpf"] >= 0
        else:
            assert where["conv_fwd"] == where["conv_bpf"] == -1


def test_columns_are_kept_only_for_a_filter_gradient_of_the_same_input_and_geometry(rng):
    """Two convs of one input with different kernels, each trained, and a third conv of another
    input with the first one's geometry: each filter gradient reads the columns of its own forward
    only; the results match the reference."""
    x = rng.standard_normal((2, 3, 9, 9))
    z = rng.standard_normal((2, 3, 9, 9))
    w = [rng.standard_normal(s) for s in ((4, 3, 3, 3), (4, 3, 2, 2), (4, 3, 3, 3))]
    X, Z = sg.placeholder(sg.float64, x.shape), sg.placeholder(sg.float64, z.shape)
    Ws = [sg.placeholder(sg.float64, v.shape) for v in w]
    ys = [sg.nn.conv2d(X, Ws[0]), sg.nn.conv2d(X, Ws[1]), sg.nn.conv2d(Z, Ws[2])]
    loss = sum(sg.reduce_sum(y * y) for y in ys)
    grads = sg.gradients(loss, Ws)
    feeds = {X: x, Z: z, **dict(zip(Ws, w))}
    cpu, ref = run_cpu_and_reference(grads, feeds)
    for a, b in zip(cpu, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    with sg.Session() as sess:
        plan = sess.compile(grads, list(feeds))
        plan(*feeds.values())
        tier = plan._exe.base
        (layout,) = tier.layouts.values()
        pairs = {}       # (input, weight shape) -> where the fwd and bpf records keep columns
        for c in tier.prog.calls:
            if c.kernel in ("conv_fwd", "conv_bpf") and c.leads:      # a phase's shares: one record each
                w_of = c.op.inputs[2 if c.kernel == "conv_bpf" else 1]
                pairs.setdefault((c.op.inputs[0].name, tuple(w_of.shape)), []).append(int(layout.M[c.pos + CONV_RECORD.at.kept]))
    assert len(pairs) == 3
    places = [v[0] for v in pairs.values()]
    assert all(len(v) == 2 and v[0] == v[1] >= 0 for v in pairs.values()) and len(set(places)) == 3


@pytest.mark.parametrize("d", [1, 2, 3])
def test_empty_batch(d, rng):
    c, o, spatial, kernel, stride, padding, dilation, groups = CASES[d][1]
    x = np.zeros((0, c) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    attrs = _attrs(d, stride, padding, dilation, groups)
    dy = np.zeros((0,) + naive_conv(x[:0].reshape((0, c) + spatial), w, **attrs).shape[1:])
    (X, W, DY), fetches = _conv_and_grads(d, x, w, dy, batch=None, **attrs)
    y, gx, gw = run_cpu_and_reference(fetches, {X: x, W: w, DY: dy})[0]
    assert y.shape == dy.shape and gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros_like(w))


def test_new_batch_sizes_with_native_step_do_not_recompile(rng, monkeypatch):
    monkeypatch.setenv("STATICGRAPH_JIT", "sync")
    monkeypatch.setenv("STATICGRAPH_JIT_AFTER", "0")
    x5 = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    X = sg.placeholder(sg.float32, (None, 3, 9, 8))
    conv = sg.nn.Conv2d(3, 4, 3, stride=2, padding=1, groups=1)
    loss = sg.reduce_sum(sg.square(sg.relu(conv(X))))
    grads = sg.gradients(loss, [X, conv.weight])
    with sg.Session() as sess, sg.Session(target="reference") as ref:
        sess.run(sg.global_variables_initializer())
        ref.run(sg.global_variables_initializer())
        ref.run([v.assign(sess.run(v)) for v in (conv.weight, conv.bias)])
        plan = sess.compile([loss] + grads, [X])
        plan(x5[:2])
        assert plan._exe.jitted
        compiles = STATS["kernel_compiles"] + STATS["kernel_loads"]
        for n in (5, 1, 5, 0):
            got = plan(x5[:n])
            want = ref.run([loss] + grads, {X: x5[:n]})
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
        assert STATS["kernel_compiles"] + STATS["kernel_loads"] == compiles


def test_second_derivatives_on_cpu(rng):
    """Gradients of the backward ops (Conv and both backprop ops again) run on the cpu target."""
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 2, 3, 2))
    sg.check_gradients(lambda x, w: sg.tanh(sg.nn.conv2d(x, w, padding=(1, 0), dilation=(1, 2), groups=2)),
                       [x, w], order=2, seed=int(rng.integers(2 ** 31)), target="cpu")


def test_backprop_ops_built_directly(rng):
    x = rng.standard_normal((3, 6, 7))
    w = rng.standard_normal((4, 3, 3))
    attrs = dict(stride=(2,), padding=(2,), dilation=(2,), groups=2)
    dy = rng.standard_normal((3, 4, 4))
    X, W, DY = (sg.placeholder(sg.float64, v.shape) for v in (x, w, dy))
    fetches = [conv_backprop_input(DY, W, X, **attrs), conv_backprop_filter(X, DY, W, **attrs)]
    with sg.Session() as sess:
        plan = sess.compile(fetches + [sg.nn.conv1d(X, W, **attrs)], [X, W, DY])
        kernels = [c.kernel for c in plan._exe.base.prog.calls]
    assert sorted(set(kernels)) == KERNELS
    cpu, ref = run_cpu_and_reference(fetches, {X: x, W: w, DY: dy})
    for a, b in zip(cpu, ref):
        np.testing.assert_allclose(a, b, **tol(np.float64))


def test_run_time_channel_mismatch_names_the_op():
    X = sg.placeholder(sg.float32, (None, None, None, None), name="images")
    W = sg.placeholder(sg.float32, (5, 3, 3, 3), name="kernel")
    y = sg.nn.conv2d(X, W, name="c1")
    with sg.Session() as sess:
        with pytest.raises(ValueError, match=r"(?s)images.*4 channels.*kernel.*expects 3.*c1"):
            sess.run(y, {X: np.zeros((2, 4, 8, 8), np.float32), W: np.zeros((5, 3, 3, 3), np.float32)})
        with pytest.raises(ValueError, match=r"(?s)spatial size 2 with kernel 3.*c1"):
            sess.run(y, {X: np.zeros((2, 3, 2, 8), np.float32), W: np.zeros((5, 3, 3, 3), np.float32)})




POINTWISE = [  # 1x1(x1) kernels, stride 1, no padding: GEMMs on the operands in place, no im2col
    (1, (4, 6, (300,), (1,), 1, 0, 1, 2)), (2, (3, 5, (16, 17), (1, 1), 1, 0, (2, 1), 1)),
    (3, (6, 3, (4, 8, 9), (1, 1, 1), 1, 0, 1, 3)), (2, (3, 4, (5, 7), (1, 1), 1, 0, 1, 1)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("d, case", POINTWISE)
def test_pointwise_convs_with_and_without_the_in_place_path(d, case, in_place, dtype, rng, monkeypatch):
    positions = int(np.prod(case[2]))
    monkeypatch.setattr(nn_conv, "POINTWISE_POSITIONS", 1 if in_place else 10 ** 9)
    attrs = dict(stride=(1,) * d, padding=(0,) * d, dilation=(1,) * d, groups=case[-1])
    one = nn_conv._one_sample(attrs, (case[1], case[0]) + case[3], (5, case[1]) + case[2], case[0] * positions)
    assert nn_conv._chunk(5, case[0] * positions, 1, one) == (1 if in_place else 5)
    kernels = _check_against_reference_and_naive(d, case, dtype, int(rng.integers(1, 4)), rng)[-1]
    assert kernels == KERNELS



# (d, (C, O, spatial, kernel, padding, dilation)): stride-1 one-group convs the implicit GEMM path
# takes once its channel and waste thresholds are lowered; odd sizes, asymmetric kernels.
IMPLICIT = [
    (2, (3, 5, (9, 11), (3, 3), (1, 1), (1, 1))), (2, (2, 3, (7, 6), (3, 2), (1, 0), (2, 1))),
    (1, (5, 4, (13,), (5,), (2,), (1,))), (3, (2, 3, (5, 4, 6), (3, 3, 2), (1, 1, 1), (1, 1, 1))),
    (2, (4, 2, (5, 5), (3, 3), (2, 2), (1, 1))), (2, (3, 3, (4, 4), (4, 4), (0, 0), (1, 1))),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("blocks", ["one column block", "several column blocks and chunks"])
@pytest.mark.parametrize("d, case", IMPLICIT)
def test_implicit_gemm_convs_match_naive_loops(d, case, blocks, dtype, rng, monkeypatch):
    c, o, spatial, kernel, padding, dilation = case
    monkeypatch.setattr(nn_conv, "IMPLICIT_MIN_CHANNELS", 1)
    monkeypatch.setattr(nn_conv, "IMPLICIT_MAX_WASTE", 100.0)
    if blocks != "one column block":
        monkeypatch.setattr(nn_conv, "BLOCK_ELEMENTS", 1)            # 256-column blocks
        monkeypatch.setattr(nn_conv, "CHUNK_ELEMENTS", max(c, o) * int(np.prod(spatial)) * 3)
    n = int(rng.integers(1, 4)) if blocks == "one column block" else 7
    full = (c, o, spatial, kernel, (1,) * d, padding, dilation, 1)
    attrs = _attrs(d, (1,) * d, padding, dilation, 1)
    xs, ws, ys = (n, c) + spatial, (o, c) + kernel, naive_conv(np.zeros((1, c) + spatial), np.zeros((o, c) + kernel), **attrs).shape
    assert nn_conv.implicit(attrs, xs, ws, (n,) + ys[1:])
    geometry = nn_conv._geometry(attrs, xs, ws, (n,) + ys[1:])
    if blocks != "one column block":
        nb, block, batch_minor = geometry["nb"], geometry["block"], geometry["minor"]
        assert block == 256 and nb < n and not batch_minor       # really several blocks and chunks
    x, w, dy, naive, cpu, kernels = _check_against_reference_and_naive(d, full, dtype, n, rng)
    assert kernels == KERNELS


def test_implicit_gemm_is_chosen_for_wide_stride_1_convs_only():
    conv = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    assert nn_conv.implicit(conv, (32, 64, 32, 32), (64, 64, 3, 3), (32, 64, 32, 32))
    assert not nn_conv.implicit(dict(conv, stride=(2, 2)), (32, 64, 32, 32), (64, 64, 3, 3), (32, 64, 16, 16))
    assert not nn_conv.implicit(dict(conv, groups=2), (32, 64, 32, 32), (64, 32, 3, 3), (32, 64, 32, 32))
    assert not nn_conv.implicit(conv, (32, 1, 28, 28), (32, 1, 5, 5), (32, 32, 26, 26))         # one channel
    assert not nn_conv.implicit(dict(conv, padding=(0, 0)), (64, 32, 8, 8), (64, 32, 5, 5), (64, 64, 4, 4))  # 4x waste


# -- the conv + bias fusion (nn_conv.fuse_bias) ---------------------------------------------------

def _bias_plan_kernels(fetches, feeds):
    return [c.kernel for c in _plan_calls(fetches, feeds)]


def _plan_calls(fetches, feeds):
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        return sess.compile(fetches, feeds)._exe.base.prog.calls


def _bias_grad_fused(fetches, feeds) -> bool:
    """A conv_bpf call of the plan writes a bias gradient (its BG operand is not its own output)."""
    return any(c.kernel == "conv_bpf" and c.args[4] is not c.args[2] for c in _plan_calls(fetches, feeds))


BIASED = [  # (C, O, spatial, kernel, padding, n, the conv kernel's path)
    (3, 4, (5, 6), 3, 1, 3, "batch-minor"), (2, 5, (20, 19), 3, 0, 2, "sample-major"),
    (4, 3, (17, 16), 1, 0, 2, "pointwise in place"), (16, 16, (20, 22), 5, 2, 2, "implicit"),
]


def _path(attrs, xs, ws, ys) -> str:
    g = nn_conv._geometry(attrs, xs, ws, ys)
    nb, block, batch_minor = g["nb"], g["block"], g["minor"]
    if block:
        return "implicit"
    if nb == 1 and nn_conv._pointwise(attrs, ws[2:]):
        return "pointwise in place"
    return "batch-minor" if batch_minor else "sample-major"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("c, o, spatial, kernel, padding, n, path", BIASED)
def test_conv_with_bias_variable_runs_as_one_kernel_and_trains_like_the_reference(
        c, o, spatial, kernel, padding, n, path, dtype, rng):
    """nn.Conv2d's Add of its bias joins the conv kernel (every path of it); the forward value, the
    gradients and two SGD steps match the reference backend."""
    attrs = dict(stride=(1, 1), padding=(padding,) * 2, dilation=(1, 1), groups=1)
    out = tuple(s + 2 * padding - kernel + 1 for s in spatial)
    assert _path(attrs, (n, c) + spatial, (o, c, kernel, kernel), (n, o) + out) == path
    x = rng.standard_normal((n, c) + spatial).astype(dtype)
    X = sg.placeholder(dtype, (None, c) + spatial)
    conv = sg.nn.Conv2d(c, o, kernel, padding=padding, dtype=sg.float32 if dtype == np.float32 else sg.float64)
    y = conv(X)
    loss = sg.reduce_sum(sg.square(sg.relu(y)))
    train = sg.train.GradientDescentOptimizer(1e-3).minimize(loss)
    grads = sg.gradients(loss, [conv.weight, conv.bias, X])
    kernels = _bias_plan_kernels([loss] + grads, [X])
    assert "conv_fwd" in kernels and "ew_Add" not in kernels
    assert _bias_grad_fused([loss] + grads, [X])      # the bias gradient summed inside conv_bpf
    init = [rng.standard_normal(v.shape).astype(dtype) for v in (conv.weight, conv.bias)]
    cpu, ref = train_on_cpu_and_reference((conv.weight, conv.bias), init, [y, loss] + grads, train, {X: x})
    for got, want in zip(cpu, ref):
        for a, b in zip(got, want):     # float32: sums of a few hundred terms, to their rounding
            scale = float(np.max(np.abs(b))) if dtype == np.float32 else 1.0
            np.testing.assert_allclose(a, b, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * scale)


def test_bias_is_not_fused_where_the_conv_output_is_read_or_the_bias_is_not_a_channel_vector(rng):
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    X = sg.placeholder(sg.float32, x.shape)
    w = sg.Variable(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    per_channel = sg.Variable(rng.standard_normal((4, 1, 1)).astype(np.float32))
    conv = sg.nn.conv2d(X, w)
    out_var = sg.Variable(np.zeros((2, 4, 4, 3), np.float32))
    cases = {
        "conv output also fetched": ([conv + per_channel, conv], True),
        "bias along the last axis": ([conv + sg.Variable(rng.standard_normal((3,)).astype(np.float32))], True),
        "bias computed in the step": ([conv + per_channel * 2.0], True),
        "conv output also assigned": ([conv + per_channel, sg.assign(out_var, conv)], True),
        "fused": ([conv + per_channel], False),
        "fused, bias first": ([per_channel + conv], False),
    }
    for what, (fetches, keeps_add) in cases.items():
        assert ("ew_Add" in _bias_plan_kernels(fetches, [X])) == keeps_add, what
        cpu, ref = {}, {}
        for target, out in (("cpu", cpu), ("reference", ref)):
            with sg.Session(target=target) as sess:
                sess.run(sg.global_variables_initializer())
                out["v"] = [v for v in sess.run(fetches + [w], {X: x}) if v is not None] + [sess.run(out_var)]
        for a, b in zip(cpu["v"], ref["v"]):
            np.testing.assert_allclose(a, b, **tol(np.float32))


@pytest.mark.parametrize("workers", [1, 3])
def test_bias_gradient_is_summed_in_the_filter_gradient_kernel_for_channel_vectors_only(workers, rng, monkeypatch):
    """dW and db of conv + bias against the reference: a per-channel bias's gradient is summed by
    conv_bpf (odd batch over 1 or 3 workers, one-sample and multi-sample chunks); a bias along
    the last axis keeps its own reduction."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    for sample_columns in (1, 10 ** 9):
        monkeypatch.setattr(nn_conv, "SAMPLE_COLUMNS", sample_columns)
        for bias_shape, fused in (((4, 1, 1), True), ((4,), True), ((6,), False)):
            sg.reset_default_graph()
            x = rng.standard_normal((5, 3, 9, 8))
            X = sg.placeholder(sg.float64, x.shape)
            w = sg.Variable(rng.standard_normal((4, 3, 3, 3)), dtype=sg.float64)
            b = sg.Variable(rng.standard_normal(bias_shape), dtype=sg.float64)
            y = sg.nn.conv2d(X, w)                            # (5, 4, 7, 6)
            z = y + (sg.reshape(b, (1, 4, 1, 1)) if bias_shape == (4,) else b)
            loss = sg.reduce_sum(sg.square(z) * rng.standard_normal((7, 6)))
            grads = sg.gradients(loss, [w, b])
            assert _bias_grad_fused(grads, [X]) == fused, bias_shape
            got = {}
            for target in ("cpu", "reference"):
                with sg.Session(target=target) as sess:
                    sess.run(sg.global_variables_initializer())
                    got[target] = sess.run(grads, {X: x})
            for a, r in zip(got["cpu"], got["reference"]):
                np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())
