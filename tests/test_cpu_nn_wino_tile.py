"""The single-tile Winograd cpu kernels (tile_fwd, tile_bpi, tile_bpf: a conv whose padded input
plane is one tile, LeNet's second conv): the 1-d matrices of every F(m, r) they use, which convs
take them, and their results against the reference backend, naive loops and the adjoint identities
(5x5 and 3x3 filters, padding, H != W, odd batches, several chunks, 1-3 workers, float32 and float64);
the fused bias and bias gradient in a training step; empty and changing batches; the kernels as
Python under NUMBA_DISABLE_JIT."""
import os

import numpy as np
import pytest

import compiler.backends.cpu.nn_wino_tile as nn_wino_tile
import staticgraph as sg
from helpers import check_conv_and_gradients, check_conv_without_jit, train_on_cpu_and_reference
from test_nn_conv import naive_conv

# relative to the magnitude of the terms (the same sums over |x|, |w|, |dy|): float64 near its
# rounding; float32 a few ulps of the largest transformed values (F(4x4, 5x5)'s B^T rows reach 5.25
# and sum to 12.5 in absolute value): measured at most 3.2e-5 (the padded 5x5 filter gradient) over
# 12 seeds of three SHAPES, against 1.4e-5 for this family's F(4x4, 3x3) (one tile per 4x4 plane)
REL = {np.float64: 1e-10, np.float32: 1e-4}
# the phases of the three tile kernels (lowerings.PHASES)
KERNELS = ["tile_bpf", "tile_bpf_dw", "tile_bpi", "tile_bpi_u", "tile_fwd", "tile_fwd_u", "tile_prep"]


def _attrs(pad):
    return dict(stride=(1, 1), padding=pad, dilation=(1, 1), groups=1)


@pytest.mark.parametrize("m, r", [(m, r) for m in range(1, 9) for r in range(1, 10 - m)])
def test_matrices_compute_the_correlation(m, r, rng):
    """A^T [(G g) * (B^T d)] is the correlation of d (a = m + r - 1 values) with g, for every F(m, r)
    the kernels' table holds; and their Kronecker products do the same for 2-d tiles."""
    BT, G, AT = nn_wino_tile.matrices(m, r)
    a = m + r - 1
    assert BT.shape == (a, a) and G.shape == (a, r) and AT.shape == (m, a)
    for _ in range(3):
        d, g = rng.standard_normal(a), rng.standard_normal(r)
        np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid"), rtol=0, atol=1e-9)
    d, g = rng.standard_normal((a, a)), rng.standard_normal((r, r))
    want = np.array([[np.sum(d[i:i + r, j:j + r] * g) for j in range(m)] for i in range(m)])
    got = np.kron(AT, AT) @ ((np.kron(G, G) @ g.ravel()) * (np.kron(BT, BT) @ d.ravel()))
    np.testing.assert_allclose(got.reshape(m, m), want, rtol=0, atol=1e-8)


def test_chooser():
    """LeNet's conv2 (5x5 on 8x8 planes, 32 -> 64) takes the tile kernels; the demo's 3x3 convs on
    4x4 planes (0.78 of im2col's multiply-adds), planes past 8 (with padding), strides, dilations,
    groups, unknown plane sizes and integer dtypes do not; STATICGRAPH_WINOGRAD=0 turns it off."""
    ok = _attrs((0, 0))
    assert nn_wino_tile.applies(ok, (None, 32, 8, 8), (64, 32, 5, 5), (None, 64, 4, 4), np.float32)
    assert nn_wino_tile.applies(_attrs((1, 1)), (None, 64, 4, 4), (64, 64, 3, 3), (None, 64, 4, 4), np.float64)
    assert not nn_wino_tile.applies(_attrs((1, 1)), (None, 16, 4, 4), (32, 16, 3, 3), (None, 32, 4, 4), np.float32)
    assert not nn_wino_tile.applies(_attrs((1, 1)), (None, 32, 8, 8), (64, 32, 5, 5), (None, 64, 6, 6), np.float32)
    assert not nn_wino_tile.applies(dict(ok, stride=(2, 2)), (None, 32, 8, 8), (64, 32, 5, 5), (None, 64, 2, 2), np.float32)
    assert not nn_wino_tile.applies(dict(ok, dilation=(2, 1)), (None, 32, 12, 8), (64, 32, 5, 5), (None, 64, 4, 4),
                                    np.float32)
    assert not nn_wino_tile.applies(dict(ok, groups=2), (None, 32, 8, 8), (64, 16, 5, 5), (None, 64, 4, 4), np.float32)
    assert not nn_wino_tile.applies(ok, (None, 32, None, 8), (64, 32, 5, 5), (None, 64, None, 4), np.float32)
    assert not nn_wino_tile.applies(ok, (None, 32, 8, 8), (64, 32, 5, 5), (None, 64, 4, 4), np.int32)
    os.environ["STATICGRAPH_WINOGRAD"] = "0"
    try:
        assert not nn_wino_tile.applies(ok, (None, 32, 8, 8), (64, 32, 5, 5), (None, 64, 4, 4), np.float32)
    finally:
        del os.environ["STATICGRAPH_WINOGRAD"]


def _kernels(fetches, feeds):
    with sg.Session() as sess:
        return sorted(c.kernel for c in sess.compile(fetches, list(feeds))._exe.base.prog.calls)


def _check(rng, n, c, o, hw, k, pad, dtype, grads="both"):
    """cpu forward and the gradients ``grads`` asks for against the reference backend (and the
    forward against naive loops), within REL of the terms' magnitudes; the gradients pinned by the
    adjoint identities. The plan must run the tile kernels."""
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((o, c) + k).astype(dtype)
    naive = naive_conv(x.astype(np.float64), w.astype(np.float64), padding=pad)
    dy = rng.standard_normal(naive.shape).astype(dtype)
    X, W = sg.placeholder(dtype, (None, c) + hw), sg.placeholder(dtype, w.shape)
    y = sg.nn.conv2d(X, W, padding=pad)
    DY = sg.placeholder(dtype, (None,) + naive.shape[1:])
    wrt = {"both": [X, W], "input": [X], "filter": [W]}[grads]
    fetches = [y] + sg.gradients(y, wrt, grad_ys=DY)
    feeds = {X: x, W: w, DY: dy}
    kernels = _kernels(fetches, feeds)
    assert "tile_fwd" in kernels and ("tile_bpi" in kernels) == (grads != "filter") \
        and ("tile_bpf" in kernels) == (grads != "input"), kernels
    check_conv_and_gradients(fetches, feeds, naive, {"both": (x, w), "input": (x,), "filter": (w,)}[grads], REL[dtype])


SHAPES = [  # (n, c, o, (h, w), (kh, kw), (pad_h, pad_w))
    (3, 32, 64, (8, 8), (5, 5), (0, 0)),        # LeNet's conv2
    (2, 32, 64, (6, 6), (5, 5), (1, 1)),        # padded planes
    (5, 32, 64, (8, 7), (5, 4), (0, 0)),        # H != W, a 5x4 filter (8 x 7 tiles)
    (3, 32, 48, (6, 8), (5, 5), (1, 0)),        # padding along one axis only
    (2, 64, 64, (4, 4), (3, 3), (1, 1)),        # a 3x3 filter (6 x 6 tiles)
]


@pytest.mark.parametrize("grads", ["both", "input", "filter"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n%d-c%d-o%d-%dx%d-k%dx%d-p%d%d" % (*s[:3], *s[3], *s[4], *s[5]))
def test_tile_kernels_match_reference_and_naive(shape, dtype, grads, rng):
    _check(rng, *shape, dtype, grads)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunks_and_workers(workers, dtype, rng, monkeypatch):
    """7 samples over 1-3 workers (uneven shares) in chunks of 2 (the last one shorter): the filter
    gradient sums the workers' partial dU, each worker computes its band of U and of dW."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(nn_wino_tile, "CHUNK_ELEMENTS", 2 * 64 * (32 + 64))
    g = nn_wino_tile.geometry(_attrs((0, 0)), (7, 32, 8, 8), (64, 32, 5, 5), (7, 64, 4, 4))
    assert (g["nb"], g["T"]) == (2, workers)
    _check(rng, 7, 32, 64, (8, 8), (5, 5), (0, 0), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_is_fused_and_trains_like_the_reference(dtype, rng):
    """nn.Conv2d's bias Add joins tile_fwd and its gradient's sum joins tile_bpf; the forward value,
    the gradients and two SGD steps match the reference backend."""
    fdt = sg.float32 if dtype == np.float32 else sg.float64
    X = sg.placeholder(dtype, (None, 32, 8, 8))
    conv = sg.nn.Conv2d(32, 64, 5, dtype=fdt)
    y = conv(X)
    loss = sg.reduce_sum(sg.square(sg.relu(y)))
    train = sg.train.GradientDescentOptimizer(1e-4).minimize(loss)
    grads = sg.gradients(loss, [conv.weight, conv.bias, X])
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        calls = sess.compile([loss] + grads, [X])._exe.base.prog.calls
    kernels = [c.kernel for c in calls]
    assert "tile_fwd" in kernels and "ew_Add" not in kernels
    assert not any(c.op.type == "SumToLike" for c in calls)          # the bias gradient's sum ...
    assert any(c.kernel == "tile_bpf_dw" and c.args[2] is not c.args[0] for c in calls)    # ... is tile_bpf_dw's BG
    x = rng.standard_normal((5, 32, 8, 8)).astype(dtype)
    init = [rng.standard_normal(v.shape).astype(dtype) * 0.1 for v in (conv.weight, conv.bias)]
    cpu, ref = train_on_cpu_and_reference((conv.weight, conv.bias), init, [y, loss] + grads, train,
                                          {X: rng.standard_normal((5, 32, 8, 8)).astype(dtype)})
    rel = 1e-4 if dtype == np.float32 else 1e-10
    for got, want in zip(cpu, ref):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=rel, atol=rel * float(np.max(np.abs(b))))


def test_empty_and_changing_batches_in_one_plan(rng):
    """Batches of 0 (zero filter gradient), 3, 1 and 4 samples through one plan: the record and
    the workspace follow the fed batch."""
    X, W = sg.placeholder(sg.float64, (None, 32, 8, 8)), sg.placeholder(sg.float64, (64, 32, 5, 5))
    y = sg.nn.conv2d(X, W)
    DY = sg.placeholder(sg.float64, (None, 64, 4, 4))
    fetches = [y] + sg.gradients(y, [X, W], grad_ys=DY)
    w = rng.standard_normal((64, 32, 5, 5))
    with sg.Session() as sess:
        plan = sess.compile(fetches, [X, W, DY])
        assert sorted({c.kernel for c in plan._exe.base.prog.calls}) == KERNELS
        for n in (0, 3, 1, 4):
            x, dy = rng.standard_normal((n, 32, 8, 8)), rng.standard_normal((n, 64, 4, 4))
            got = plan(x, w, dy)
            with sg.Session(target="reference") as ref:
                want = ref.run(fetches, {X: x, W: w, DY: dy})
            for a, b in zip(got, want):
                assert a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * max(1.0, float(np.abs(b).max(initial=0))))


def test_kernels_run_as_python_without_jit(tmp_path, rng):
    check_conv_without_jit(tmp_path, int(rng.integers(1 << 30)), (3, 32, 6, 6), (64, 32, 5, 5), 1, KERNELS)
