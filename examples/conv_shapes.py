"""Convolution output sizes and classic filters (lecture 4.4, "Convolutions").

Course idea: ``conv2d`` slides a D×C×h×w kernel over an N×C×H×W input; without
padding the output is N×D×(H-h+1)×(W-w+1). Padding adds a zero frame, stride
steps the kernel by more than one pixel, dilation spreads its taps apart:

    out = floor((H + 2·padding - dilation·(h-1) - 1) / stride) + 1

Shapes are known when the graph is BUILT (static shape inference), before
anything runs; the script prints the inferred shape and the shape of the value
computed by a Session, which must agree.

Then the lecture's five 3×3 filters (identity, box, vertical and horizontal
edges, Laplacian) are applied to a real handwritten digit from
``sg.datasets.digits()`` and drawn in ASCII, and the result is compared with a
naive loop implementation of the convolution.

Run:  python examples/conv_shapes.py
"""
import numpy as np

import staticgraph as sg
from staticgraph import nn

RAMP = " .:-=+*#%@"


def show(title, static_shape, value):
    print("%-58s static %-16s computed %s" % (title, static_shape, value.shape))


def ascii_image(a):
    """An ASCII rendering of a 2-D array, darkest character for the largest value."""
    lo, hi = float(a.min()), float(a.max())
    scaled = np.zeros_like(a) if hi == lo else (a - lo) / (hi - lo)
    idx = np.minimum((scaled * len(RAMP)).astype(int), len(RAMP) - 1)
    return ["".join(RAMP[i] * 2 for i in row) for row in idx]


def naive_conv2d(x, w):
    """The definition: out[d, i, j] = sum_{c, u, v} x[c, i+u, j+v] * w[d, c, u, v] (one sample)."""
    d_out, _, h, w_ = w.shape
    out = np.zeros((d_out, x.shape[1] - h + 1, x.shape[2] - w_ + 1))
    for d in range(d_out):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[d, i, j] = np.sum(x[:, i:i + h, j:j + w_] * w[d])
    return out


def main():
    nn.manual_seed(0)

    # ---- output sizes ------------------------------------------------------------------
    weight = sg.random_normal([5, 4, 2, 3], seed=1)
    bias = sg.random_normal([5], seed=2)
    x = sg.random_normal([117, 4, 10, 3], seed=3)
    y1 = nn.conv2d(x, weight, bias)                      # lecture: torch.Size([117, 5, 9, 1])

    c = 2                                                # any number of channels C
    x2 = sg.random_normal([1, c, 3, 5], seed=4)
    y2 = nn.conv2d(x2, sg.random_normal([1, c, 3, 3], seed=5), padding=(2, 1), stride=(2, 2))

    f = nn.Conv2d(in_channels=4, out_channels=5, kernel_size=(2, 3))
    y3 = f(x)                                            # lecture: torch.Size([117, 5, 9, 1])

    x4 = sg.random_normal([1, 1, 20, 30], seed=6)
    l4 = nn.Conv2d(1, 1, kernel_size=3, dilation=4)      # effective kernel 1 + (3-1)*4 = 9
    y4 = l4(x4)                                          # lecture: torch.Size([1, 1, 12, 22])

    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        v1, v2, v3, v4 = sess.run([y1, y2, y3, y4])
    show("conv2d(117x4x10x3, weight 5x4x2x3, bias 5):", y1.shape, v1)
    show("conv2d(1x%dx3x5, weight 1x%dx3x3, padding (2,1), stride (2,2)):" % (c, c), y2.shape, v2)
    print("nn.Conv2d(in_channels=4, out_channels=5, kernel_size=(2, 3)) parameters:")
    for name, p in f.named_parameters():
        print("   ", name, p.shape)
    show("nn.Conv2d(4, 5, (2, 3)) on 117x4x10x3:", y3.shape, v3)
    show("nn.Conv2d(1, 1, kernel_size=3, dilation=4) on 1x1x20x30:", y4.shape, v4)

    # ---- the lecture's five filters on a digit -------------------------------------------
    images, labels = sg.datasets.digits()
    k = 12
    digit = images[k:k + 1]                                       # 1x1x8x8, values in [0, 1]
    filters = {
        "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        "box (sum of 3x3)": [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
        "vertical edges": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
        "horizontal edges": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
        "Laplacian": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    }
    w = np.array(list(filters.values()), dtype=np.float32)[:, None]   # 5x1x3x3
    image = sg.placeholder(sg.float32, [None, 1, 8, 8], name="image")
    maps = nn.conv2d(image, sg.constant(w))
    with sg.Session() as sess:
        out = sess.run(maps, {image: digit})[0]                       # 5x6x6
    print("\ndigit #%d of sg.datasets.digits() (label %d), 8x8:" % (k, labels[k]))
    print("\n".join("    " + row for row in ascii_image(digit[0, 0])))
    for (name, _), m in zip(filters.items(), out):
        print("\n%s filter -> 6x6, values in [%.3f, %.3f]:" % (name, m.min(), m.max()))
        print("\n".join("    " + row for row in ascii_image(m)))
    print("\nidentity filter = inner 6x6 of the image: max |diff| = %g"
          % np.abs(out[0] - digit[0, 0, 1:-1, 1:-1]).max())
    print("max |conv2d - naive loops| = %.2e" % np.abs(out - naive_conv2d(digit[0], w)).max())


if __name__ == "__main__":
    main()
