"""Hand-written NumPy training steps (forward, backward, SGD), the baseline every row is compared to.

Each ``build_<workload>()`` returns ``(step, info)``: ``step()`` runs one full training step in place.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LR = 1e-3
LR_CONV = 1e-8   # conv_block's loss sum(y*y) is large: a small step keeps it finite
F32 = np.float32


def _sgd(param, grad, lr=LR):
    """In-place SGD update (closures must not rebind the parameter)."""
    np.subtract(param, lr * grad, out=param)


def _rand(rng, *shape, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(F32)


def build_dag_tiny():
    rng = np.random.default_rng(0)
    w1, w2, x0 = _rand(rng, 5, 5, scale=0.5), _rand(rng, 5, 5, scale=0.5), _rand(rng, 5, 1, scale=1.0)

    def step():
        x1 = w1 @ x0
        x2 = x0 + w2 @ x1
        s = x1 + x2
        x3 = w1 @ s
        q = np.sqrt((x3 * x3).sum())
        g3 = x3 / q
        gw1 = g3 @ s.T
        gs = w1.T @ g3                       # d q / d (x1 + x2)
        gx1 = gs + w2.T @ gs                 # x1 feeds s directly and through x2 = x0 + w2 @ x1
        gw2 = gs @ x1.T
        gw1 += gx1 @ x0.T
        _sgd(w1, gw1)
        _sgd(w2, gw2)
        return q
    return step, {}


def _softmax_xent(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(p[np.arange(n), labels]).mean()
    g = p
    g[np.arange(n), labels] -= 1.0
    return loss, g / n


def _linear_params(rng, sizes):
    return [(_rand(rng, o, i, scale=1 / np.sqrt(i)), np.zeros(o, F32)) for i, o in zip(sizes, sizes[1:])]


def _mlp_step(params, x, labels):
    acts = [x]
    for k, (w, b) in enumerate(params):
        h = acts[-1] @ w.T + b
        acts.append(np.maximum(h, 0) if k < len(params) - 1 else h)
    loss, g = _softmax_xent(acts[-1], labels)
    for k in reversed(range(len(params))):
        w, b = params[k]
        if k < len(params) - 1:
            g = g * (acts[k + 1] > 0)
        gw, gb = g.T @ acts[k], g.sum(axis=0)
        g = g @ w
        _sgd(w, gw)
        _sgd(b, gb)
    return loss


def build_mlp():
    rng = np.random.default_rng(0)
    params = _linear_params(rng, [784, 256, 256, 10])
    x = rng.random((128, 784), dtype=F32)
    labels = rng.integers(0, 10, 128)
    return lambda: _mlp_step(params, x, labels), {}


def conv2d(x, w, pad=0):
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    cols = sliding_window_view(x, (kh, kw), axis=(2, 3))          # N C Ho Wo kh kw
    return np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2), x


def conv2d_backward(g, xp, w, pad=0):
    """Gradients of conv2d for the padded input ``xp`` and the weight ``w``."""
    kh, kw = w.shape[2:]
    cols = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    gw = np.tensordot(g, cols, axes=([0, 2, 3], [0, 2, 3]))
    gx = np.zeros_like(xp)
    ho, wo = g.shape[2:]
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + ho, j:j + wo] += np.tensordot(g, w[:, :, i, j], axes=([1], [0])).transpose(0, 3, 1, 2)
    if pad:
        gx = gx[:, :, pad:-pad, pad:-pad]
    return gx, gw


def maxpool(x, k):
    n, c, h, w = x.shape
    xr = x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k)
    out = xr.max(axis=(3, 5))
    return out, (xr, out, x.shape)


def maxpool_backward(g, cache):
    xr, out, shape = cache
    mask = xr == out[:, :, :, None, :, None]
    gx = np.zeros(shape, F32)
    n, c, ho, k, wo, _ = xr.shape
    gx[:, :, :ho * k, :wo * k] = (mask * g[:, :, :, None, :, None]).reshape(n, c, ho * k, wo * k)
    return gx


def build_lenet(batch):
    rng = np.random.default_rng(0)
    c1, b1 = _rand(rng, 32, 1, 5, 5, scale=0.2), np.zeros(32, F32)
    c2, b2 = _rand(rng, 64, 32, 5, 5, scale=0.035), np.zeros(64, F32)
    fcs = _linear_params(rng, [256, 200, 10])
    x = rng.random((batch, 1, 28, 28), dtype=F32)
    labels = rng.integers(0, 10, batch)

    def step():
        y1, xp1 = conv2d(x, c1)
        y1 += b1[:, None, None]
        p1, pc1 = maxpool(y1, 3)
        r1 = np.maximum(p1, 0)
        y2, xp2 = conv2d(r1, c2)
        y2 += b2[:, None, None]
        p2, pc2 = maxpool(y2, 2)
        r2 = np.maximum(p2, 0)
        flat = r2.reshape(batch, 256)
        (w3, b3), (w4, b4) = fcs
        h = flat @ w3.T + b3
        a = np.maximum(h, 0)
        logits = a @ w4.T + b4
        loss, g = _softmax_xent(logits, labels)
        gw4, gb4, g = g.T @ a, g.sum(0), g @ w4
        g = g * (h > 0)
        gw3, gb3, g = g.T @ flat, g.sum(0), g @ w3
        g = g.reshape(r2.shape) * (p2 > 0)
        g = maxpool_backward(g, pc2)
        gb2 = g.sum(axis=(0, 2, 3))
        g, gc2 = conv2d_backward(g, xp2, c2)
        g = g * (p1 > 0)
        g = maxpool_backward(g, pc1)
        gb1 = g.sum(axis=(0, 2, 3))
        _, gc1 = conv2d_backward(g, xp1, c1)
        for p, gp in ((c1, gc1), (b1, gb1), (c2, gc2), (b2, gb2), (w3, gw3), (b3, gb3), (w4, gw4), (b4, gb4)):
            _sgd(p, gp)
        return loss
    return step, {}


def build_gemm(n=1024):
    rng = np.random.default_rng(0)
    a, b = _rand(rng, n, n, scale=0.03), _rand(rng, n, n, scale=0.03)

    def step():
        y = a @ b
        g = 2 * y
        ga, gb = g @ b.T, a.T @ g
        _sgd(a, ga)
        _sgd(b, gb)
        return (y * y).sum()

    c = np.empty((n, n), F32)
    return step, {"flops": 3 * 2 * n ** 3, "matmul": lambda: np.matmul(a, b, out=c), "matmul_flops": 2 * n ** 3}


def build_conv_block():
    rng = np.random.default_rng(0)
    x = rng.random((32, 64, 32, 32), dtype=F32)
    w = _rand(rng, 64, 64, 3, 3, scale=0.05)

    def step():
        y, xp = conv2d(x, w, pad=1)
        loss = (y * y).sum()
        gx, gw = conv2d_backward(2 * y, xp, w, pad=1)
        _sgd(w, gw, LR_CONV)
        return loss, gx
    return step, {"flops": 3 * 2 * 32 * 64 * 32 * 32 * 64 * 9}


BUILDERS = {
    "dag_tiny": build_dag_tiny, "dag_tiny_jit": build_dag_tiny, "mlp": build_mlp, "lenet_b64": lambda: build_lenet(64),
    "lenet_b256": lambda: build_lenet(256), "gemm_fwd_bwd": build_gemm, "conv_block": build_conv_block,
}
