"""The same training steps in staticgraph: one graph, one compiled plan, ``plan(*feeds)`` per step."""
from __future__ import annotations

import os

import numpy as np

import staticgraph as sg

LR = 1e-3
LR_CONV = 1e-8   # conv_block's loss sum(y*y) is large: a small step keeps it finite
TARGET = os.environ.get("SG_BENCH_TARGET", "cpu")


def _compile(loss, feeds, values, extra_fetches=(), lr=LR, native=False):
    train = sg.train.GradientDescentOptimizer(lr).minimize(loss)
    sess = sg.Session(target=TARGET)
    sess.run(sg.global_variables_initializer())
    plan = sess.compile([train, loss, *extra_fetches], list(feeds))
    if not os.environ.get("SG_BENCH_NO_WAIT"):
        plan.wait()         # time the native step, not the warm-up runs on the reference interpreter
    if native:
        plan.jit()          # the fused tier: one loop kernel per fused elementwise group
    def step():
        return plan(*values)
    step.wait = plan.wait
    return step, sess


def build_dag_tiny(native=False):
    rng = np.random.default_rng(0)
    w1 = sg.Variable((rng.standard_normal((5, 5)) * 0.5).astype(np.float32))
    w2 = sg.Variable((rng.standard_normal((5, 5)) * 0.5).astype(np.float32))
    x0 = sg.placeholder(sg.float32, (5, 1))
    x1 = w1 @ x0
    x2 = x0 + w2 @ x1
    q = sg.norm(w1 @ (x1 + x2))
    step, _ = _compile(q, [x0], [rng.standard_normal((5, 1)).astype(np.float32)], native=native)
    return step, {}


class LeNet(sg.nn.Module):
    """The course's LeNet (conv 1->32 k5, pool 3, relu, conv 32->64 k5, pool 2, relu, 256->200->10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = sg.nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = sg.nn.Conv2d(32, 64, kernel_size=5)
        self.fc1 = sg.nn.Linear(256, 200)
        self.fc2 = sg.nn.Linear(200, 10)

    def forward(self, x):
        x = sg.nn.relu(sg.nn.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
        x = sg.nn.relu(sg.nn.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
        x = sg.nn.relu(self.fc1(x.view(-1, 256)))
        return self.fc2(x)


def _classifier(model, x_shape, batch):
    rng = np.random.default_rng(0)
    x = sg.placeholder(sg.float32, (None, *x_shape))
    labels = sg.placeholder(sg.int64, (None,))
    loss = sg.nn.cross_entropy(model(x), labels)
    values = [rng.random((batch, *x_shape), dtype=np.float32), rng.integers(0, 10, batch)]
    return _compile(loss, [x, labels], values)[0]


def mlp_model():
    """The benchmarks' MLP: 784 -> 256 -> 256 -> 10 with ReLUs."""
    return sg.nn.Sequential(sg.nn.Linear(784, 256), sg.nn.ReLU(), sg.nn.Linear(256, 256), sg.nn.ReLU(),
                            sg.nn.Linear(256, 10))


def build_mlp():
    return _classifier(mlp_model(), (784,), 128), {}


def build_lenet(batch):
    return _classifier(LeNet(), (1, 28, 28), batch), {}


def build_gemm(n=1024):
    rng = np.random.default_rng(0)
    a = sg.Variable((rng.standard_normal((n, n)) * 0.03).astype(np.float32))
    b = sg.Variable((rng.standard_normal((n, n)) * 0.03).astype(np.float32))
    y = a @ b
    step, _ = _compile(sg.reduce_sum(y * y), [], [])
    return step, {"flops": 3 * 2 * n ** 3}


def build_conv_block():
    rng = np.random.default_rng(0)
    x = sg.placeholder(sg.float32, (32, 64, 32, 32))
    w = sg.Variable((rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32))
    y = sg.nn.conv2d(x, w, padding=1)
    loss = sg.reduce_sum(y * y)
    (gx,) = sg.gradients(loss, [x])
    step, _ = _compile(loss, [x], [rng.random((32, 64, 32, 32), dtype=np.float32)], extra_fetches=[gx], lr=LR_CONV)
    return step, {"flops": 3 * 2 * 32 * 64 * 32 * 32 * 64 * 9}


BUILDERS = {
    "dag_tiny": build_dag_tiny, "dag_tiny_jit": lambda: build_dag_tiny(native=True), "mlp": build_mlp, "lenet_b64": lambda: build_lenet(64),
    "lenet_b256": lambda: build_lenet(256), "gemm_fwd_bwd": build_gemm, "conv_block": build_conv_block,
    "gemm_4096": lambda: build_gemm(4096),
}
