"""The Winograd F(4x4, 3x3) cpu kernels (wino_fwd, wino_bpi, wino_bpf, and wino_bwd for both gradients
at once): which convs a plan runs with them, and their results against naive loops, the reference backend and the adjoint identities
on odd sizes, H != W, paddings 0-2, odd batches, several tile blocks, float32 and float64; a batch
size change in one plan; and the kernels run as Python under NUMBA_DISABLE_JIT."""
import os

import numpy as np
import pytest

import compiler.backends.cpu.nn_winograd as nn_winograd
import staticgraph as sg
from helpers import check_conv_and_gradients, check_conv_without_jit, run_cpu_and_reference
from staticgraph.ops.conv import conv_backprop_filter, conv_backprop_input
from test_nn_conv import naive_conv

K = nn_winograd.MIN_CHANNELS
CONV = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
# relative to the magnitude of the terms (the same sums over |x|, |w|, |dy|): float64 near its
# rounding; float32 a few ulps of the largest transformed values (F(4x4, 3x3)'s coefficients reach 8
# and 1/24; measured at most ~1e-6 on 64-channel tiles)
REL = {np.float64: 1e-10, np.float32: 2e-5}


# the phase kernels each Winograd call becomes (``nn_winograd``'s ``runs_in_phases``)
PHASES = {"fwd": ["wino_fwd", "wino_prep"], "bpi": ["wino_bpi", "wino_prep"],
          "bpf": ["wino_bpf", "wino_bpf_sum", "wino_consts"], "bwd": ["wino_bwd", "wino_bwd_prep", "wino_bwd_sum"]}


def _phases(*calls):
    return sorted({k for c in calls for k in PHASES[c]})


# which gradients a graph asks for, and the kernels its cpu plan then calls: both at once run as
# one wino_bwd (``nn_winograd.fuse_backward``)
GRADS = {"both": _phases("bwd", "fwd"), "input": _phases("bpi", "fwd"), "filter": _phases("bpf", "fwd")}


def _graph(n, c, o, h, w, pad, dtype, batch=None, grads="both"):
    """Placeholders X, W, DY; fetches y and the gradients ``grads`` asks for (x's, then w's)."""
    X = sg.placeholder(dtype, (batch if batch is not None else n, c, h, w))
    W = sg.placeholder(dtype, (o, c, 3, 3))
    y = sg.nn.conv2d(X, W, padding=pad)
    DY = sg.placeholder(dtype, (batch if batch is not None else n, o) + tuple(y.shape[2:]))
    wrt = {"both": [X, W], "input": [X], "filter": [W]}[grads]
    return (X, W, DY), [y] + sg.gradients(y, wrt, grad_ys=DY)


def _kernels(fetches, feeds):
    """The kernels the cpu plan calls (lowered only: the reference warm-up leaves them uncompiled)."""
    os.environ["STATICGRAPH_WARMUP"], before = "reference", os.environ.get("STATICGRAPH_WARMUP")
    try:
        with sg.Session() as sess:
            return sorted({c.kernel for c in sess.compile(fetches, list(feeds))._exe.base.prog.calls})
    finally:
        if before is None:
            del os.environ["STATICGRAPH_WARMUP"]
        else:
            os.environ["STATICGRAPH_WARMUP"] = before



def _check(rng, n, c, o, h, w, pad, dtype, grads="both"):
    """cpu forward and the gradients ``grads`` asks for vs the reference backend (and the forward vs
    naive loops), within REL of the terms' magnitude; the gradients pinned by the adjoint identities."""
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    naive = naive_conv(x.astype(np.float64), wt.astype(np.float64), padding=pad)
    dy = rng.standard_normal(naive.shape).astype(dtype)
    feeds, fetches = _graph(n, c, o, h, w, pad, dtype, grads=grads)
    assert _kernels(fetches, feeds) == GRADS[grads]
    check_conv_and_gradients(fetches, dict(zip(feeds, (x, wt, dy))), naive,
                             {"both": (x, wt), "input": (x,), "filter": (wt,)}[grads], REL[dtype])


@pytest.mark.parametrize("m", sorted(nn_winograd.MATRICES))
def test_transform_matrices_compute_the_correlation(m, rng):
    """A^T [(G g G^T) * (B^T d B)] A of every F(m x m, 3 x 3) in MATRICES is the 3x3 correlation of
    an (m + 2)^2 tile, and the 3-term B^T / A^T rows the kernels' passes unroll are what they read."""
    BT, G, AT = nn_winograd.MATRICES[m]
    assert BT.shape == (m + 2, m + 2) and G.shape == (m + 2, 3) and AT.shape == (m, m + 2)
    for _ in range(5):
        d, g = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
        want = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(m)] for i in range(m)])
        np.testing.assert_allclose(AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("which", [0, 2])
def test_generated_passes_match_the_matrices(which):
    """``_pass`` emits one ``_lcK`` call per row of a matrix, with one (source, coefficient slot)
    term per nonzero: the slots hold the nonzeros (``_wino_consts`` writes ``_COEFS``)."""
    mat = nn_winograd.MATRICES[nn_winograd.TILE][which]
    lines = nn_winograd._pass(mat, lambda i: f"d{i}", lambda j: f"s{j}").splitlines()
    assert len(lines) == mat.shape[0]
    for i, (row, line) in enumerate(zip(mat, lines)):
        head, *terms = line.strip().rstrip(")").split(", s")
        assert head == f"_lc{np.count_nonzero(row)}(WS, d{i}, tb"
        got = {int(t.split(",")[0]): nn_winograd._COEFS[int(t.split("ko + ")[1])] for t in terms}
        assert got == {j: v for j, v in enumerate(row) if v != 0}


@pytest.fixture(autouse=True)
def _any_width(monkeypatch):
    """The correctness tests run Winograd on planes of every width, down to 1."""
    monkeypatch.setattr(nn_winograd, "MIN_WIDTH", 1)


def test_chooser_skips_narrow_planes(monkeypatch):
    monkeypatch.setattr(nn_winograd, "MIN_WIDTH", 8)
    assert nn_winograd.applies(CONV, (K, K, 3, 3), np.float32, (None, K, 32, 8))       # pad 1: 8 wide
    assert not nn_winograd.applies(CONV, (K, K, 3, 3), np.float32, (None, K, 32, 7))
    assert not nn_winograd.applies(CONV, (K, K, 3, 3), np.float32, (None, K, 32, None))  # width unknown
    assert not nn_winograd.applies(CONV, (K, K, 3, 3), np.float32, (None, K, 4, 4))      # the demo's conv2


def test_chooser_takes_3x3_stride_1_convs_with_enough_channels():
    assert nn_winograd.applies(CONV, (K, K, 3, 3), np.float32)
    assert nn_winograd.applies(dict(CONV, padding=(0, 2)), (64, 64, 3, 3), np.float64)
    assert not nn_winograd.applies(CONV, (K - 1, K, 3, 3), np.float32)      # too few output channels
    assert not nn_winograd.applies(CONV, (K, K - 1, 3, 3), np.float32)      # too few input channels
    assert not nn_winograd.applies(dict(CONV, stride=(2, 1)), (K, K, 3, 3), np.float32)
    assert not nn_winograd.applies(dict(CONV, dilation=(1, 2)), (K, K, 3, 3), np.float32)
    assert not nn_winograd.applies(dict(CONV, groups=2), (K, K // 2, 3, 3), np.float32)
    assert not nn_winograd.applies(CONV, (K, K, 5, 5), np.float32)
    assert not nn_winograd.applies(CONV, (K, K, 3, 1), np.float32)
    assert not nn_winograd.applies(dict(CONV, stride=(1,), padding=(1,), dilation=(1,)), (K, K, 3), np.float32)
    assert not nn_winograd.applies(CONV, (None, K, 3, 3), np.float32)        # no static weight shape
    assert not nn_winograd.applies(CONV, (K, K, 3, 3), np.float16)


def test_plans_use_winograd_only_where_it_applies():
    feeds, fetches = _graph(2, K, K, 6, 5, 1, np.float32)
    assert _kernels(fetches, feeds) == _phases("bwd", "fwd")
    sg.reset_default_graph()
    feeds, fetches = _graph(2, K - 1, K, 6, 5, 1, np.float32)
    assert _kernels(fetches, feeds) == ["conv_bpf", "conv_bpf_reduce", "conv_bpi", "conv_fwd"]
    sg.reset_default_graph()
    X = sg.placeholder(np.float32, (2, K, 7, 7))
    W = sg.placeholder(np.float32, (K, K, 3, 3))
    y = sg.nn.conv2d(X, W, stride=2, padding=1)
    assert _kernels([y], [X, W]) == ["conv_fwd"]


SHAPES = [  # n, c, o, h, w, pad
    (1, K, K, 1, 1, 1), (3, K, K + 3, 2, 3, 1), (2, K + 1, K, 5, 7, 0), (1, K, K, 13, 5, 2),
    (5, K, K, 3, 13, 2), (2, K, K, 7, 2, 1), (3, K + 2, K + 1, 6, 9, 1),
]


@pytest.mark.parametrize("grads", sorted(GRADS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n%d-c%d-o%d-%dx%d-p%d" % s)
def test_winograd_matches_reference_and_naive(shape, dtype, grads, rng):
    _check(rng, *shape, dtype, grads)


@pytest.mark.parametrize("grads", sorted(GRADS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_tile_blocks(dtype, grads, rng, monkeypatch):
    """9 x 5 outputs: 3 tile rows per sample, 3 tiles per row (with the spare column). Blocks of one
    tile row, of two (straddling samples), of one sample, and of whole samples only (4 rows fit)."""
    for tiles, rows in ((1, 1), (6, 2), (9, 3), (12, 3)):
        monkeypatch.setattr(nn_winograd, "BLOCK_TILES", tiles)
        assert nn_winograd._rows_per_block(3, 9, 5) == rows
        _check(rng, 3, K, K + 1, 9, 5, 1, dtype, grads)
        sg.reset_default_graph()


@pytest.mark.parametrize("grads", sorted(GRADS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_tile_blocks_split_over_workers(workers, dtype, grads, rng, monkeypatch):
    """5 samples over 1-3 workers (uneven shares of samples, a few blocks each: a sample's tile
    rows stay on one worker); the filter gradient sums the workers' partial dU (into U's place
    alone, or beside U when both gradients run at once)."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(nn_winograd, "BLOCK_TILES", 9)
    geometry = nn_winograd._geometry(CONV, (5, K, 7, 5), (K + 1, K, 3, 3), (5, K + 1, 7, 5), workers)
    assert (geometry["rows"], geometry["T"]) == (2, workers)     # tile rows per block (3 fit: one sample's 2), workers
    _check(rng, 5, K, K + 1, 7, 5, 1, dtype, grads)


def test_gradients_of_different_convs_are_not_fused(rng):
    """Input and filter gradients built directly with another output gradient, or another input
    of the same shape, run as separate kernels (and match the reference); with the same ones, one."""
    shape, wshape = (2, K, 6, 8), (K, K, 3, 3)
    X, X2, DY, DY2 = (sg.placeholder(sg.float64, shape) for _ in range(4))
    W = sg.placeholder(sg.float64, wshape)
    values = {t: rng.standard_normal(shape) for t in (X, X2, DY, DY2)}
    values[W] = rng.standard_normal(wshape)
    for dy2, x2, kernels in ((DY2, X, _phases("bpf", "bpi")), (DY, X2, _phases("bpf", "bpi")),
                             (DY, X, _phases("bwd"))):
        fetches = [conv_backprop_input(DY, W, X, **CONV), conv_backprop_filter(x2, dy2, W, **CONV)]
        assert _kernels(fetches, list(values)) == kernels
        cpu, ref = run_cpu_and_reference(fetches, values)
        for a, b in zip(cpu, ref):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


def test_new_batch_size_in_the_same_plan(rng):
    """The record and workspace follow the fed batch size (one plan, two shape signatures)."""
    c, o, h, w = K, K, 5, 6
    feeds, fetches = _graph(None, c, o, h, w, 1, np.float64, batch=None)
    wt = rng.standard_normal((o, c, 3, 3))
    with sg.Session() as sess:
        plan = sess.compile(fetches, list(feeds))
        for n in (3, 1, 4):
            x = rng.standard_normal((n, c, h, w))
            dy = rng.standard_normal((n, o, h, w))
            got = plan(x, wt, dy)
            with sg.Session(target="reference") as ref:
                want = ref.run(fetches, dict(zip(feeds, (x, wt, dy))))
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


def test_kernels_run_as_python_without_jit(tmp_path, rng):
    """Odd, narrow planes (MIN_WIDTH 1, as in the in-process tests), both gradients: one wino_bwd."""
    check_conv_without_jit(tmp_path, int(rng.integers(1 << 30)), (2, 16, 3, 5), (16, 16, 3, 3), 1,
                           _phases("bwd", "fwd"),
                           prelude="from compiler.backends.cpu import nn_winograd\nnn_winograd.MIN_WIDTH = 1")
