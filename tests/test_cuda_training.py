"""The cuda target end to end on the CUDA simulator: an MLP trained with Adam matches the
reference step by step; a new batch size re-plans buffers without recompiling; no device
allocation in a step after a signature's first (the plan's own accounting); data errors."""
import numpy as np
import pytest

import staticgraph as sg
from cuda_helpers import SIMULATED, fast_simulator_switching, small_blocks  # noqa: F401  (autouse)


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    small_blocks(monkeypatch)


def _mlp(rng, optimizer=None):
    x = sg.placeholder(sg.float32, (None, 6), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    w1 = sg.Variable(rng.normal(size=(6, 5)).astype(np.float32) * 0.5, name="w1")
    b1 = sg.Variable(np.zeros(5, np.float32), name="b1")
    w2 = sg.Variable(rng.normal(size=(5, 3)).astype(np.float32) * 0.5, name="w2")
    logits = sg.relu(x @ w1 + b1) @ w2
    loss = sg.reduce_mean(sg.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train = (optimizer or sg.train.AdamOptimizer(0.05)).minimize(loss)
    return x, labels, loss, train, (w1, b1, w2)


def _batch(rng, n):
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, size=n).astype(np.int64)


def test_mlp_adam_steps_match_the_reference(rng):
    x, labels, loss, train, ws = _mlp(rng)
    batches = [_batch(rng, n) for n in (4, 4, 5)]
    results = {}
    for target in ("cuda", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            losses = [sess.run([loss, train], {x: bx, labels: by})[0] for bx, by in batches]
            results[target] = (losses, [sess.get_variable_value(w) for w in ws])
    np.testing.assert_allclose(results["cuda"][0], results["reference"][0], rtol=1e-4, atol=1e-6)
    for a, b in zip(results["cuda"][1], results["reference"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert results["cuda"][0][0] != results["cuda"][0][2]      # the variables moved


def test_new_batch_size_replans_and_no_device_allocation_after_the_first_step(rng):
    from compiler.backends.cuda.memory import STATS
    x, labels, loss, train, _ = _mlp(rng, sg.train.GradientDescentOptimizer(0.1))
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile([loss, train], [x, labels])
        exe = plan._exe
        kernels = exe.launchers
        plan(*_batch(rng, 3))                    # the first step of this signature allocates
        first = exe.allocations
        assert first > 0
        before = (exe.allocations, sess._state.values.mirror.memory.allocations, STATS["allocations"])
        for _ in range(2):                       # steps 2..n of the signature: none
            plan(*_batch(rng, 3))
        assert (exe.allocations, sess._state.values.mirror.memory.allocations, STATS["allocations"]) == before
        plan(*_batch(rng, 7))                    # a new batch size: new buffers, no recompile
        assert exe.allocations > first
        assert exe.launchers is kernels and len(exe.layouts) == 2
        after = exe.allocations
        plan(*_batch(rng, 3))                    # back to the first size: its layout is reused
        assert exe.allocations == after
        text = plan.explain()
        assert "cuda plan" in text
        if SIMULATED:
            assert "tiled shared-memory GEMM" in text and "not captured as a CUDA graph" in text
        assert "buffers for feed shapes ((3, 6), (3,))" in text


# the step's later kernels still run after nll_loss reports the label (nothing lands); on the
# simulator NumPy may warn about what they compute from the unwritten output
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_label_out_of_range_names_the_op_and_lands_no_assign(rng):
    x, labels, loss, train, ws = _mlp(rng, sg.train.GradientDescentOptimizer(0.1))
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        before = [sess.get_variable_value(w) for w in ws]
        bx, _ = _batch(rng, 4)
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"NllLoss.*label 3 at position \(2,\).*\[0, 3\)"):
            sess.run([loss, train], {x: bx, labels: np.array([0, 1, 3, 7])})
        for a, b in zip(before, [sess.get_variable_value(w) for w in ws]):
            np.testing.assert_array_equal(a, b)


def test_integer_to_a_negative_power_names_the_op():
    a = sg.placeholder(sg.int64, (3,), name="a")
    with sg.Session(target="cuda") as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"Pow op .*negative integer powers"):
            sess.run(sg.pow(a, sg.constant(np.array([1, -2, 0]))), {a: np.array([2, 3, 4])})


def test_convnet_training_step_matches_the_reference(rng):
    """A tiny convnet (conv with its bias, max pool, avg pool, relu, dense, cross-entropy, Adam)
    step by step against the reference; the bias and its gradient run fused into the conv kernels."""
    x = sg.placeholder(sg.float32, (None, 1, 6, 6), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    k = sg.Variable(rng.normal(size=(2, 1, 3, 3)).astype(np.float32) * 0.5, name="k")
    w = sg.Variable(rng.normal(size=(2 * 2 * 2, 3)).astype(np.float32) * 0.5, name="w")
    bias = sg.Variable(rng.normal(size=2).astype(np.float32), name="bias")
    h = sg.relu(sg.nn.max_pool2d(sg.nn.conv2d(x, k, bias, padding=1), 2))    # (n, 2, 3, 3)
    h = sg.nn.avg_pool2d(h, 2, stride=1)                                       # (n, 2, 2, 2)
    loss = sg.reduce_mean(sg.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=sg.reshape(h, (-1, 8)) @ w))
    train = sg.train.AdamOptimizer(0.05).minimize(loss)
    batches = [(rng.normal(size=(n, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, size=n)) for n in (2, 3)]
    results = {}
    for target in ("cuda", "reference"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            losses = [sess.run([loss, train], {x: a, labels: b})[0] for a, b in batches]
            results[target] = (losses, sess.get_variable_value(k), sess.get_variable_value(bias),
                               sess.get_variable_value(w))
            if target == "cuda":
                calls = sess.compile([loss, train], [x, labels])._exe.prog.all_calls
                fwd, = [c for c in calls if c.kernel == "conv_fwd"]
                bpf, = [c for c in calls if c.kernel == "conv_bpf"]
                assert fwd.args[2].op.type == "Add"           # the bias add, fused into the conv
                assert bpf.args[4].op.type == "SumToLike"     # the bias gradient, fused into conv_bpf
    for got, want in zip(results["cuda"], results["reference"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
