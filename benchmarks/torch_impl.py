"""The same training steps in PyTorch eager mode (CPU), the reference point of every ratio.
``SG_BENCH_TORCH_DEVICE=cuda`` (benchmarks/gpu.py) runs them on the GPU, each step ending in a
synchronize so that its time is the work's, not the launches'."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

DEVICE = os.environ.get("SG_BENCH_TORCH_DEVICE", "cpu")

LR = 1e-3
LR_CONV = 1e-8   # conv_block's loss sum(y*y) is large: a small step keeps it finite


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, np.float32), requires_grad=grad, device=DEVICE)


def _labels(a):
    return torch.tensor(a, device=DEVICE)


def _sgd_step(params, loss_fn):
    def step():
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
        return loss
    return step


def build_dag_tiny():
    rng = np.random.default_rng(0)
    w1, w2 = _t(rng.standard_normal((5, 5)) * 0.5, True), _t(rng.standard_normal((5, 5)) * 0.5, True)
    x0 = _t(rng.standard_normal((5, 1)))

    def loss():
        x1 = w1 @ x0
        x2 = x0 + w2 @ x1
        x3 = w1 @ (x1 + x2)
        return x3.norm()
    return _sgd_step([w1, w2], loss), {}


class _LeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = torch.nn.Conv2d(32, 64, kernel_size=5)
        self.fc1 = torch.nn.Linear(256, 200)
        self.fc2 = torch.nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
        x = F.relu(self.fc1(x.view(-1, 256)))
        return self.fc2(x)


def _classifier(model, x, labels):
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss
    return step


def build_mlp():
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    x = _t(rng.random((128, 784)))
    return _classifier(model.to(DEVICE), x, _labels(rng.integers(0, 10, 128))), {}


def build_lenet(batch):
    rng = np.random.default_rng(0)
    x = _t(rng.random((batch, 1, 28, 28)))
    return _classifier(_LeNet().to(DEVICE), x, _labels(rng.integers(0, 10, batch))), {}


def build_gemm(n=1024):
    rng = np.random.default_rng(0)
    a, b = _t(rng.standard_normal((n, n)) * 0.03, True), _t(rng.standard_normal((n, n)) * 0.03, True)

    def loss():
        y = a @ b
        return (y * y).sum()
    return _sgd_step([a, b], loss), {"flops": 3 * 2 * n ** 3}


def build_conv_block():
    rng = np.random.default_rng(0)
    x = _t(rng.random((32, 64, 32, 32)), True)
    w = _t(rng.standard_normal((64, 64, 3, 3)) * 0.05, True)

    def step():
        x.grad = None
        w.grad = None
        y = F.conv2d(x, w, padding=1)
        loss = (y * y).sum()
        loss.backward()
        with torch.no_grad():
            w.sub_(LR_CONV * w.grad)
        return loss, x.grad
    return step, {"flops": 3 * 2 * 32 * 64 * 32 * 32 * 64 * 9}


BUILDERS = {
    "dag_tiny": build_dag_tiny, "dag_tiny_jit": build_dag_tiny, "mlp": build_mlp, "lenet_b64": lambda: build_lenet(64),
    "lenet_b256": lambda: build_lenet(256), "gemm_fwd_bwd": build_gemm, "conv_block": build_conv_block,
    "gemm_4096": lambda: build_gemm(4096),
}


def _synchronized(build):
    """``build`` whose step waits for the GPU (SG_BENCH_TORCH_DEVICE=cuda)."""
    def built():
        step, info = build()

        def synced():
            out = step()
            torch.cuda.synchronize()
            return out
        return synced, info
    return built


if DEVICE == "cuda":
    BUILDERS = {name: _synchronized(build) for name, build in BUILDERS.items()}
