"""Max and average pooling (lecture 4.5, "Pooling").

Course idea: pooling reduces a map by taking the max (or the mean) over
blocks; by default the blocks do not overlap (stride = kernel size). The
lecture's example pools a 2×2×6 tensor (unbatched C×H×W) with a (1, 2) kernel:

    >>> F.max_pool2d(x, (1, 2))
    tensor([[[ 2.,  2.,  2.],
             [ 2.,  0.,  1.]],
            [[ 2.,  2.,  1.],
             [ 0.,  1.,  2.]]])

Then: average pooling, a stride smaller than the kernel (overlapping
windows), padding, ``ceil_mode`` (keep a last, partial window) and
``count_include_pad``, each checked against a naive loop that follows
PyTorch's definition (windows clipped to the padded input; padding is -inf for
max; the average divides by the clipped window, or by its valid part only with
``count_include_pad=False``).

Run:  python examples/pooling.py
"""
import numpy as np

import staticgraph as sg
from staticgraph import nn


def torch_style(a):
    """Format an N-d array the way the lecture's PyTorch session prints a tensor."""
    a = np.asarray(a)
    fmt = "%2.0f." if np.all(a == np.round(a)) else "%.4f"
    body = np.array2string(a, separator=", ", prefix="tensor(", formatter={"float_kind": lambda v: fmt % v})
    return "tensor(" + body + ")"


def out_size(n, k, s, p, ceil_mode):
    """PyTorch's pooling output size along one axis."""
    out = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:       # a window may not start in the right padding
        out -= 1
    return out


def naive_pool2d(x, kind, k, s, p, ceil_mode=False, count_include_pad=True):
    """Pooling of the last two axes by explicit loops over windows (PyTorch's definition)."""
    h, w = x.shape[-2:]
    oh, ow = out_size(h, k[0], s[0], p[0], ceil_mode), out_size(w, k[1], s[1], p[1], ceil_mode)
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s[0] - p[0], j * s[1] - p[1]
            r1, c1 = min(r0 + k[0], h + p[0]), min(c0 + k[1], w + p[1])   # clipped to the padded input
            clipped = (r1 - r0) * (c1 - c0)
            r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
            window = x[..., r0:r1, c0:c1]
            if kind == "max":
                out[..., i, j] = window.max(axis=(-2, -1))
            else:
                divisor = clipped if count_include_pad else (r1 - r0) * (c1 - c0)
                out[..., i, j] = window.sum(axis=(-2, -1)) / divisor
    return out


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def main():
    # ---- the lecture's example --------------------------------------------------------------
    x_val = np.array([[[1., 2., 2., 1., 2., 1.],
                       [2., 0., 0., 0., 1., 0.]],
                      [[2., 0., 2., 1., 1., 1.],
                       [0., 0., 0., 1., 2., 1.]]], dtype=np.float32)
    x = sg.constant(x_val, name="x")
    y = nn.max_pool2d(x, (1, 2))
    values, indices = nn.max_pool2d(x, (1, 2), return_indices=True)
    a = nn.avg_pool2d(x, (1, 2))
    with sg.Session() as sess:
        y_val, idx_val, a_val = sess.run([y, indices, a])
    print(">>> x")
    print(torch_style(x_val))
    print(">>> F.max_pool2d(x, (1, 2))")
    print(torch_style(y_val))
    print(">>> F.max_pool2d(x, (1, 2), return_indices=True)[1]   (where each max is, per flattened plane)")
    print(np.array2string(idx_val, separator=", "))
    print(">>> F.avg_pool2d(x, (1, 2))")
    print(torch_style(a_val))

    # ---- stride, padding, ceil_mode, count_include_pad on a 1x1x5x5 map ------------------------
    m_val = np.arange(1, 26, dtype=np.float32).reshape(1, 1, 5, 5)
    m = sg.constant(m_val, name="m")
    cases = [
        ("max_pool2d(m, 2)", "max", dict(kernel_size=2)),
        ("max_pool2d(m, 2, ceil_mode=True)", "max", dict(kernel_size=2, ceil_mode=True)),
        ("max_pool2d(m, 3, stride=1)", "max", dict(kernel_size=3, stride=1)),
        ("max_pool2d(m, 3, stride=2, padding=1)", "max", dict(kernel_size=3, stride=2, padding=1)),
        ("avg_pool2d(m, 2, ceil_mode=True)", "avg", dict(kernel_size=2, ceil_mode=True)),
        ("avg_pool2d(m, 3, stride=2, padding=1)", "avg", dict(kernel_size=3, stride=2, padding=1)),
        ("avg_pool2d(m, 3, stride=2, padding=1, count_include_pad=False)", "avg",
         dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ]
    ops = [(nn.max_pool2d if kind == "max" else nn.avg_pool2d)(m, **kw) for _, kind, kw in cases]
    with sg.Session() as sess:
        results = sess.run(ops)
    print("\nm = 1x1x5x5 map holding 1..25 row by row")
    worst = 0.0
    for (title, kind, kw), op, got in zip(cases, ops, results):
        k = pair(kw["kernel_size"])
        s = pair(kw.get("stride", kw["kernel_size"]))
        p = pair(kw.get("padding", 0))
        ref = naive_pool2d(m_val, kind, k, s, p, kw.get("ceil_mode", False), kw.get("count_include_pad", True))
        worst = max(worst, float(np.abs(got - ref).max()))
        print("%s -> shape %s" % (title, op.shape))
        print("    " + np.array2string(got[0, 0], precision=4, prefix="    "))
    print("max |pooling - naive loops| = %.2e" % worst)


if __name__ == "__main__":
    main()
