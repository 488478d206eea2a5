"""The cpu backend's call rewrites: one declared, ordered pipeline (``call_rewrites.REWRITES``), each
switched off by name (``STATICGRAPH_DISABLE_REWRITES``), the plan then running the unfused kernels."""
import os

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import call_rewrites, nn_pool


def _kernels(fetches, feeds) -> set:
    """The kernels a cpu plan calls, lowered only (the reference warm-up compiles nothing)."""
    os.environ["STATICGRAPH_WARMUP"], before = "reference", os.environ.get("STATICGRAPH_WARMUP")
    try:
        with sg.Session() as sess:
            return {c.kernel for c in sess.compile(fetches, feeds)._exe.base.prog.calls}
    finally:
        os.environ["STATICGRAPH_WARMUP"] = before if before is not None else "wait"


def _lenet_conv1(seed: int = 0):
    """LeNet's first layer (conv 5x5 + bias, max pool 3) and the gradients of a loss over it."""
    rng = np.random.default_rng(seed)
    x = sg.placeholder(sg.float64, (None, 1, 28, 28))
    w = sg.Variable(rng.standard_normal((4, 1, 5, 5)), dtype=sg.float64)
    b = sg.Variable(rng.standard_normal((4, 1, 1)), dtype=sg.float64)
    loss = sg.reduce_sum(sg.square(sg.nn.max_pool2d(sg.nn.conv2d(x, w) + b, 3, stride=3)))
    return x, [loss] + sg.gradients(loss, [w, b])


def test_the_pipeline_is_declared_in_its_order():
    names = call_rewrites.REWRITE_NAMES
    assert len(set(names)) == len(names)
    # each may rely on those before it: keep_columns marks the records fuse_bias(_grad) made, and
    # fuse_pool takes the bias-fused, one-sample convs
    assert names.index("fuse_bias") < names.index("keep_columns") < names.index("fuse_pool")
    assert names.index("fuse_bias_grad") < names.index("keep_columns")


def test_a_rewrite_switched_off_leaves_its_calls(monkeypatch):
    x, fetches = _lenet_conv1()
    fused = _kernels(fetches, [x])
    assert {"conv_pool_fwd_3x3", "conv_pool_bpf"} <= fused and not set(nn_pool.MAX_POOL_KERNELS) & fused
    monkeypatch.setenv(call_rewrites.ENV_DISABLE, "fuse_pool")
    plain = _kernels(fetches, [x])
    assert {"conv_fwd", "pool_max_rows_3x3", "pool_max_grad"} <= plain and not {"conv_pool_fwd_3x3", "conv_pool_bpf"} & plain
    assert "ew_Add" not in plain         # fuse_bias still ran: the bias add is in the conv kernel
    monkeypatch.setenv(call_rewrites.ENV_DISABLE, "all")
    assert "ew_Add" in _kernels(fetches, [x])


def test_results_do_not_depend_on_the_rewrites(monkeypatch, rng):
    """The fused kernels and the unfused ones compute the loss and gradients of the reference."""
    x, fetches = _lenet_conv1(int(rng.integers(1 << 30)))
    xv = rng.standard_normal((3, 1, 28, 28))
    results = {}
    for target, off in (("cpu", ""), ("cpu", "all"), ("reference", "")):
        monkeypatch.setenv(call_rewrites.ENV_DISABLE, off)
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            results[target, off] = sess.run(fetches, {x: xv})
    for got in (results["cpu", ""], results["cpu", "all"]):
        for a, b in zip(got, results["reference", ""]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_an_unknown_rewrite_is_named(monkeypatch):
    monkeypatch.setenv(call_rewrites.ENV_DISABLE, "fuse_everything")
    with pytest.raises(ValueError, match="unknown call rewrite 'fuse_everything'.*fuse_pool"):
        call_rewrites.disabled_rewrites()
