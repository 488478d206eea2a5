"""Gradients at kinks and ties (API.md §10: PyTorch's rules): relu'(0) = abs'(0) = 0; maximum,
minimum and reduce_max split the gradient evenly among tied inputs; a max pooling routes a window's
gradient to its first maximum. Inputs hold exact zeros and exact ties; every expected value is
derived here by hand (NumPy loops), first and second order, on the reference backend, the cpu
target's base tier and its fused tier (one generated loop per fused elementwise group), and through
a conv -> relu -> max pool and the fused conv + max pool kernels, which find a window's maximum
themselves.

Central differences cannot check these points: at relu's kink they see 1/2, and at a k-fold tie
of reduce_max they see 1/2 whatever k is."""
import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import nn_pool

# exact zeros of both signs between negative and positive values
X = np.array([[-1.5, 0.0, 2.0, -0.0], [0.0, 3.0, -2.0, 0.0], [0.5, -0.0, 0.0, -0.25]])


def _run(tier, fetches, feeds):
    """``fetches`` for ``feeds`` (placeholder -> array) on ``tier``; the fused tier must really
    run fused loops."""
    with sg.Session(target="reference" if tier == "reference" else "cpu") as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile(fetches, list(feeds))
        if tier == "cpu-fused":
            plan.jit()
            assert plan._exe.jitted and plan._exe.tier.prog.fused, plan.explain()
        return plan(*feeds.values())


def _close(got, want):
    """Equal up to rounding, measured against each array's largest value (the gradients are sums
    that may cancel); where ``want`` is 0 (a kink, a tie's loser, a window's other elements),
    exactly 0."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        b = np.asarray(b, dtype=np.float64)
        assert a.shape == b.shape
        np.testing.assert_array_equal(a[b == 0], 0)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def _placeholders(*arrays):
    return [sg.placeholder(sg.float64, a.shape) for a in arrays]


def _second(h, x, v):
    """The gradient of sum(dh/dx * v) w.r.t. x: the Hessian of h applied to v."""
    (dh,) = sg.gradients(h, [x])
    return sg.gradients(sg.reduce_sum(dh * v), [x])[0]


def _relu_abs_case(rng):
    """relu'(0) = abs'(0) = 0, at +0 and -0, also for relu of relu; second order through
    relu(x)**2 (Hessian 2 relu'(x)**2: 0 at 0, not 2) and abs(x) * x (2 sign(x): 0 at 0)."""
    g, c, v = (rng.uniform(0.5, 2.0, X.shape) for _ in range(3))
    x, G, C, V = _placeholders(X, g, c, v)
    fetches = [sg.gradients(sg.relu(x), [x], grad_ys=G)[0],
               sg.gradients(sg.relu(sg.relu(x)), [x], grad_ys=G)[0],
               sg.gradients(sg.abs(x), [x], grad_ys=G)[0],
               _second(sg.reduce_sum(sg.square(sg.relu(x)) * C), x, V),
               _second(sg.reduce_sum(sg.abs(x) * x * C), x, V)]
    positive = (X > 0).astype(float)
    want = [g * positive, g * positive, g * np.sign(X), 2 * c * v * positive, 2 * c * v * np.sign(X)]
    return fetches, {x: X, G: g, C: c, V: v}, want


# maximum/minimum operands with ties, including broadcast ones (b[2] ties a whole column) and -0 == 0
A = np.array([[1.0, 2.0, 0.0, -1.0], [3.0, 3.0, 0.0, 5.0], [0.5, -2.0, 0.0, -0.0]])
B = np.array([1.0, 2.0, 0.0, 0.0])


def _tie_shares(a, b, first_wins):
    """Per-element share of the gradient that goes to ``a`` (loops): 1/2 at a tie."""
    a, b = np.broadcast_arrays(a, b)
    share = np.zeros(a.shape)
    for idx in np.ndindex(a.shape):
        share[idx] = 0.5 if a[idx] == b[idx] else float(first_wins(a[idx], b[idx]))
    return share


def _maximum_minimum_case(rng, fn, first_wins):
    """First order: a's share s (1/2 at a tie), b's 1 - s summed over the broadcast column.
    Second order of h = sum(C * fn(a, b)**2): d/da sum(dh/da V) = 2 C V s**2 and
    d/db sum(dh/da V) = 2 C V s (1 - s) (1/4 and 1/4 at a tie, not 1 and 0)."""
    g, c, v = (rng.uniform(0.5, 2.0, A.shape) for _ in range(3))
    a, b, G, C, V = _placeholders(A, B, g, c, v)
    first = sg.gradients(fn(a, b), [a, b], grad_ys=G)
    (da,) = sg.gradients(sg.reduce_sum(C * sg.square(fn(a, b))), [a])
    second = sg.gradients(sg.reduce_sum(da * V), [a, b])
    s = _tie_shares(A, B, first_wins)
    want = [g * s, (g * (1 - s)).sum(0), 2 * c * v * s * s, (2 * c * v * s * (1 - s)).sum(0)]
    return first + second, {a: A, b: B, G: g, C: c, V: v}, want


# rows with one, four, two and three tied maxima, columns with one and two, six of the whole
R = np.array([[1.0, 3.0, 0.5, 5.0], [2.0, 2.0, 2.0, 2.0], [5.0, 5.0, -1.0, 0.0], [5.0, 0.0, 5.0, 5.0]])


def _max_shares(x, axis):
    """mask / count: the share of each element in its reduction's gradient (loops over the kept
    index; axis None: one reduction)."""
    x2 = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1)
    share = np.zeros(x2.shape)
    for i in range(x2.shape[0]):
        ties = x2[i] == x2[i].max()
        share[i] = ties / ties.sum()
    return share.reshape(x.shape) if axis is None else np.moveaxis(share, -1, axis)


def _reduce_max_case(rng, axis, keepdims):
    """First order: g / k to each of k tied maxima. Second order of h = sum(C * max(x)**2):
    2 C share * sum(V * share) over each reduction (the Hessian of a max is its share's outer
    product)."""
    out_shape = np.max(R, axis=axis, keepdims=keepdims).shape
    g, c = rng.uniform(0.5, 2.0, out_shape), rng.uniform(0.5, 2.0, out_shape)
    v = rng.uniform(0.5, 2.0, R.shape)
    x, G, C, V = _placeholders(R, g, c, v)
    m = sg.reduce_max(x, axis, keepdims=keepdims)
    fetches = [m, sg.gradients(m, [x], grad_ys=G)[0], _second(sg.reduce_sum(C * sg.square(m)), x, V)]
    share = _max_shares(R, axis)
    assert 0 < share[share > 0].min() <= 0.5         # the case has ties
    expand = (lambda t: t) if axis is None or keepdims else (lambda t: np.expand_dims(t, axis))
    sums = (share * v).sum() if axis is None else (share * v).sum(axis, keepdims=True)
    want = [np.max(R, axis=axis, keepdims=keepdims), expand(g) * share, 2 * expand(c) * share * sums]
    return fetches, {x: R, G: g, C: c, V: v}, want


# -- through convolutions and max poolings ---------------------------------------------------------
def _conv(x, w, pad):
    """Stride-1 cross-correlation, NCHW by OIHW, by loops over the output positions."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    y = np.zeros((x.shape[0], w.shape[0], xp.shape[2] - kh + 1, xp.shape[3] - kw + 1))
    for i, j in np.ndindex(y.shape[2:]):
        y[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i:i + kh, j:j + kw], w)
    return y


def _conv_grads(x, w, pad, dy):
    """The input and filter gradients of ``_conv`` for output gradient ``dy`` (the same loops)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
    kh, kw = w.shape[2:]
    for i, j in np.ndindex(dy.shape[2:]):
        dxp[:, :, i:i + kh, j:j + kw] += np.einsum("no,ockl->nckl", dy[:, :, i, j], w)
        dw += np.einsum("no,nckl->ockl", dy[:, :, i, j], xp[:, :, i:i + kh, j:j + kw])
    return dxp[:, :, pad:xp.shape[2] - pad, pad:xp.shape[3] - pad], dw


def _max_pool(y, k, dp=None):
    """k x k max pooling, stride k, and (given the pooled gradient ``dp``) its input gradient: each
    window's gradient goes to its FIRST maximum in row-major order (PyTorch's index rule)."""
    n, c, h, w = y.shape
    pooled, dy = np.zeros((n, c, h // k, w // k)), np.zeros(y.shape)
    for a, b, i, j in np.ndindex(pooled.shape):
        window = y[a, b, i * k:(i + 1) * k, j * k:(j + 1) * k]
        first = np.unravel_index(np.argmax(window), window.shape)    # argmax: the first maximum
        pooled[a, b, i, j] = window[first]
        if dp is not None:
            dy[a, b, i * k + first[0], j * k + first[1]] = dp[a, b, i, j]
    return pooled, dy


def _kink_inputs(rng, shape, w_shape):
    """Sample 0 constant (every window of a channel's inner outputs tied), the others in
    {-1, 0, 1} (ties and zeros everywhere); filters on a 1/4 grid, so every sum is exact; filter 0
    with the bias that makes its output on sample 0 exactly 0 away from the padding, filter 1 and
    its bias 0 (its output 0 everywhere), the others positive or random. Returns x, w, b."""
    x = rng.integers(-1, 2, shape).astype(np.float64)
    x[0] = 1.0
    w = rng.integers(-4, 5, w_shape) / 4.0
    w[1] = 0.0
    w[2] = np.abs(w[2]) + 0.25
    b = np.zeros(w_shape[0])
    b[0] = -w[0].sum()
    b[2] = 0.5
    return x, w, b


def _conv_model(x, w, b, pad, pool, relu_first, g):
    """The loss sum(G * pool(relu(conv(X, W) + B))) (or the relu after the pooling; W and B
    variables: the cpu target fuses a conv with its pooling only for variable filters), [X, W, B],
    the feeds, the expected loss and gradients of X, W, B by the loops above, and the conv
    output's gradient."""
    X, G = _placeholders(x, g)
    W, Bb = sg.Variable(w, dtype=sg.float64), sg.Variable(b.reshape(-1, 1, 1), dtype=sg.float64)
    y = sg.nn.conv2d(X, W, padding=pad) + Bb
    p = sg.nn.max_pool2d(sg.relu(y), pool) if relu_first else sg.relu(sg.nn.max_pool2d(y, pool))
    loss = sg.reduce_sum(p * G)
    want_y = _conv(x, w, pad) + b.reshape(-1, 1, 1)
    if relu_first:
        pooled, dr = _max_pool(np.maximum(want_y, 0.0), pool, g)
        dy = dr * (want_y > 0)
    else:
        pooled, _ = _max_pool(want_y, pool)
        _, dy = _max_pool(want_y, pool, g * (pooled > 0))
        pooled = np.maximum(pooled, 0.0)
    assert (want_y == 0).any() and (dy == 0).any() and dy.any()     # zeros met, gradients flow
    dx, dw = _conv_grads(x, w, pad, dy)
    feeds = {X: x, G: g}
    want = [np.sum(pooled * g), dx, dw, dy.sum((0, 2, 3)).reshape(-1, 1, 1)]
    return loss, [X, W, Bb], feeds, want, dy


def _conv_relu_pool_case(rng):
    """conv (padding 1) -> relu -> 2x2 max pool: the relu mask is taken at exact zeros and the
    pooling's first maximum in windows of equal values; loss, input, filter and bias gradients.
    Second order: dL/dW = sum dy * x is linear in x for fixed masks, so d/dX sum(dL/dW * V) is the
    input gradient of a conv with filters V for the same (masked) output gradient dy."""
    x, w, b = _kink_inputs(rng, (2, 2, 6, 6), (3, 2, 3, 3))
    g, v = rng.uniform(0.5, 2.0, (2, 3, 3, 3)), rng.uniform(0.5, 2.0, w.shape)
    loss, xs, feeds, want, dy = _conv_model(x, w, b, 1, 2, True, g)
    grads = sg.gradients(loss, xs)
    (V,) = _placeholders(v)
    second = sg.gradients(sg.reduce_sum(grads[1] * V), [xs[0]])
    return [loss] + grads + second, {**feeds, V: v}, want + [_conv_grads(x, v, 1, dy)[0]]


def _conv_pool_relu_case(rng):
    """conv -> max pool -> relu where the cpu target fuses the conv with the pooling
    (nn_conv_pool.py: the kernels pick each window's first maximum themselves and add the bias as
    they read): tied windows route to their first element, pooled zeros pass no gradient; loss,
    filter and bias gradients (an input gradient would unfuse the backward half)."""
    x, w, b = _kink_inputs(rng, (2, 1, 28, 28), (4, 1, 5, 5))
    g = rng.uniform(0.5, 2.0, (2, 4, 8, 8))
    loss, (X, W, Bb), feeds, want, _ = _conv_model(x, w, b, 0, 3, False, g)
    return [loss] + sg.gradients(loss, [W, Bb]), feeds, [want[0], want[2], want[3]]


CASES = [pytest.param(_relu_abs_case, {}, id="relu-abs"),
         pytest.param(_maximum_minimum_case, dict(fn=sg.maximum, first_wins=lambda p, q: p > q), id="maximum"),
         pytest.param(_maximum_minimum_case, dict(fn=sg.minimum, first_wins=lambda p, q: p < q), id="minimum"),
         pytest.param(_reduce_max_case, dict(axis=1, keepdims=False), id="reduce_max-rows"),
         pytest.param(_reduce_max_case, dict(axis=0, keepdims=True), id="reduce_max-columns-keepdims"),
         pytest.param(_reduce_max_case, dict(axis=None, keepdims=False), id="reduce_max-all"),
         pytest.param(_conv_relu_pool_case, {}, id="conv-relu-max_pool"),
         pytest.param(_conv_pool_relu_case, {}, id="fused-conv+max_pool-relu")]


@pytest.mark.parametrize("case, kw", CASES)
@pytest.mark.parametrize("tier", ["reference", "cpu"])
def test_kinks_and_ties_follow_pytorch(tier, case, kw, rng):
    """Each case's fetches against its hand-derived values (the rules: each case's docstring)."""
    fetches, feeds, want = case(rng, **kw)
    _close(_run(tier, fetches, feeds), want)


# on the fused tier (each fused group a compile of its own): minimum mirrors maximum, and the
# fused conv case's groups are the conv case's
FUSED = ["relu-abs", "maximum", "reduce_max-rows", "reduce_max-all", "conv-relu-max_pool"]


def test_fused_tier_follows_them_too(rng):
    """The cases of ``FUSED`` in one plan on the fused tier: the rules inside generated loops."""
    fetches, feeds, want = [], {}, []
    for param in (p for p in CASES if p.id in FUSED):
        case, kw = param.values
        f, fd, w = case(rng, **kw)
        fetches, want = fetches + f, want + w
        feeds.update(fd)
    _close(_run("cpu-fused", fetches, feeds), want)


def test_the_conv_case_runs_the_fused_conv_and_pooling_kernels(rng):
    """The cpu target fuses the fused-conv case's conv with its pooling, forward and backward."""
    fetches, feeds, _ = _conv_pool_relu_case(rng)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        kernels = {c.kernel for c in sess.compile(fetches, list(feeds))._exe.base.prog.calls}
    assert {"conv_pool_bpf"} <= kernels and kernels & {"conv_pool_fwd_2x2", "conv_pool_fwd_3x3", "conv_pool_fwd_planar"}, kernels
    assert not kernels & {"conv_fwd", "pool_max_grad", *nn_pool.MAX_POOL_KERNELS}, kernels
