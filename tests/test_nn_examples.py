"""Run the sg.nn examples as a newcomer would, and check what they print.

Each script runs in a subprocess through tests/test_examples.py's ``run_example``
(small sizes through its flags); the key printed values are parsed and compared
with the lecture's numbers or with independent computations (scipy, NumPy).
"""
import gzip
import re
import struct

import numpy as np
import pytest
from scipy.signal import correlate2d

from test_examples import FLOAT, NN_EXAMPLES, ROOT, number_after, run_example

EXAMPLES_DIR = ROOT / "examples"
SHAPE = r"\(([\d, None]*)\)"

# Flags that keep each script fast.
ARGS = {
    "sequential_mlp.py": ["--epochs", "8"],
    "train_convnet.py": ["--epochs", "4"],
}


@pytest.fixture
def run(tmp_path, monkeypatch):
    """run(name, *args) -> stdout; one BLAS thread (the 2 shared cores thrash with more)."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return lambda name, *args: run_example(EXAMPLES_DIR / name, tmp_path, args or ARGS.get(name, ()))


def shape_after(out, marker, which="static"):
    m = re.search(re.escape(marker) + r".*?" + which + r"\s+" + SHAPE, out)
    assert m, f"{marker!r} ... {which} (shape) not found in:\n{out}"
    return tuple(None if v.strip() == "None" else int(v) for v in m.group(1).split(",") if v.strip())


def shapes_listed_after(out, marker):
    """The tuples printed one per line right after the line containing ``marker``."""
    lines = out[out.index(marker):].splitlines()[1:]
    shapes = []
    for line in lines:
        m = re.fullmatch(r"\s*\(([\d, ]*)\)\s*", line)
        if not m:
            break
        shapes.append(tuple(int(v) for v in m.group(1).split(",") if v.strip()))
    return shapes


def test_nn_examples_exist_and_say_how_to_run():
    for name in NN_EXAMPLES:
        text = (EXAMPLES_DIR / name).read_text()
        assert text.lstrip().startswith('"""'), f"{name} has no top docstring"
        assert "python examples/" + name in text.split('"""')[1], f"{name}'s docstring does not say how to run it"


def test_conv_shapes(run):
    out = run("conv_shapes.py")
    cases = [("conv2d(117x4x10x3, weight 5x4x2x3, bias 5):", (117, 5, 9, 1)),
             ("padding (2,1), stride (2,2)):", (1, 1, 3, 3)),
             ("nn.Conv2d(4, 5, (2, 3)) on 117x4x10x3:", (117, 5, 9, 1)),
             ("nn.Conv2d(1, 1, kernel_size=3, dilation=4) on 1x1x20x30:", (1, 1, 12, 22))]
    for marker, expected in cases:
        assert shape_after(out, marker, "static") == expected
        assert shape_after(out, marker, "computed") == expected
    assert re.search(r"^\s+weight \(5, 4, 2, 3\)\n\s+bias \(5,\)$", out, re.M), out
    # the five filters on digit 12, recomputed independently from scikit-learn's data with scipy
    from sklearn.datasets import load_digits
    digit = load_digits().images[12] / 16.0
    kernels = {"identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
               "box (sum of 3x3)": np.ones((3, 3)),
               "vertical edges": [[-1, 0, 1]] * 3,
               "horizontal edges": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
               "Laplacian": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]}
    for name, kernel in kernels.items():
        m = re.search(re.escape(name) + r" filter -> 6x6, values in \[(" + FLOAT + "), (" + FLOAT + r")\]", out)
        assert m, f"{name} not found in:\n{out}"
        expected = correlate2d(digit, np.array(kernel, float), mode="valid")
        np.testing.assert_allclose([float(m.group(1)), float(m.group(2))], [expected.min(), expected.max()],
                                   atol=1e-3)
    assert number_after(out, "identity filter = inner 6x6 of the image: max |diff| =") == 0
    assert number_after(out, "max |conv2d - naive loops| =") < 1e-5


def test_pooling(run):
    out = run("pooling.py")
    slides = r"""tensor([[[ 2.,  2.,  2.],
         [ 2.,  0.,  1.]],

        [[ 2.,  2.,  1.],
         [ 0.,  1.,  2.]]])"""
    assert ">>> F.max_pool2d(x, (1, 2))\n" + slides in out         # the lecture's printout
    x = np.array([[[1, 2, 2, 1, 2, 1], [2, 0, 0, 0, 1, 0]], [[2, 0, 2, 1, 1, 1], [0, 0, 0, 1, 2, 1]]], float)
    pairs = x.reshape(2, 2, 3, 2)
    tail = out[out.index(">>> F.avg_pool2d(x, (1, 2))"):]
    avg = [float(v) for v in re.findall(FLOAT, tail[tail.index("tensor("):tail.index("])") + 2])]
    np.testing.assert_allclose(avg, pairs.mean(axis=-1).ravel(), atol=1e-4)
    tail = out[out.index("return_indices=True)[1]"):]
    body = tail[tail.index("\n"):tail.index("]]]") + 3]
    indices = np.array([int(v) for v in re.findall(r"\d+", body)]).reshape(2, 2, 3)
    first_max = pairs.argmax(axis=-1) + 2 * np.arange(3)                # first max of each pair
    np.testing.assert_array_equal(indices, first_max + 6 * np.arange(2)[None, :, None])
    for case, expected in [("max_pool2d(m, 2)", (1, 1, 2, 2)),
                           ("max_pool2d(m, 2, ceil_mode=True)", (1, 1, 3, 3)),
                           ("max_pool2d(m, 3, stride=1)", (1, 1, 3, 3)),
                           ("max_pool2d(m, 3, stride=2, padding=1)", (1, 1, 3, 3)),
                           ("avg_pool2d(m, 3, stride=2, padding=1, count_include_pad=False)", (1, 1, 3, 3))]:
        m = re.search("^" + re.escape(case) + r" -> shape " + SHAPE, out, re.M)
        assert m and tuple(int(v) for v in m.group(1).split(",")) == expected, case
    assert number_after(out, "max |pooling - naive loops| =") < 1e-5


def test_lenet_module(run):
    out = run("lenet_module.py")
    assert "output.shape (inferred when the graph is built): (12, 10)" in out
    assert "output computed by a Session: (12, 10)" in out
    lecture = [(32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (200, 256), (200,), (10, 200), (10,)]
    assert shapes_listed_after(out, "for k in model.parameters()") == lecture
    assert "total: 105,506 parameters" in out
    assert 105506 == sum(int(np.prod(s)) for s in lecture)
    assert "conv1.weight, conv1.bias, conv2.weight, conv2.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias" in out
    assert "model(x).shape = (None, 10)" in out and "8 trainable variables" in out
    found = [(123, 456), (32, 1, 5, 5), (32,), (21, 543), (21,)]     # plain lists ARE discovered here
    assert shapes_listed_after(out, "Buggy().parameters():") == found
    assert shapes_listed_after(out, "AnotherNotBuggy().parameters():") == found


def test_sequential_mlp(run):
    out = run("sequential_mlp.py")
    assert "(0): Linear(in_features=10, out_features=100, bias=True)" in out
    assert "('4.weight', (2, 50)), ('4.bias', (2,))" in out
    m = re.search(r"before training: test loss (" + FLOAT + r")\s+test accuracy (" + FLOAT + ")", out)
    assert m, out
    before, chance = float(m.group(1)), float(m.group(2))
    assert chance < 0.7                                                # untrained: about chance
    losses = [float(v) for v in re.findall(r"train loss (" + FLOAT + ")", out)]
    assert len(losses) >= 3 and losses[-1] < losses[0] < before
    assert number_after(out, "final test loss") < before / 2
    assert float(re.search(r"final test loss " + FLOAT + r", test accuracy (" + FLOAT + ")", out).group(1)) > 0.85


def test_siamese(run):
    out = run("siamese.py")
    assert "trainable variables before/after the two calls: 4/4" in out
    m = re.search(r"shared loss (" + FLOAT + r"), untied loss with g = f: (" + FLOAT + ")", out)
    assert m and float(m.group(1)) > 0 and abs(float(m.group(1)) - float(m.group(2))) < 1e-5
    via = re.findall(r"^(\S+)\s+norms: shared grad (" + FLOAT + r"), via x1 (" + FLOAT + r"), via x2 ("
                     + FLOAT + ")", out, re.M)
    assert [v[0] for v in via] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(float(v[2]) > 0 and float(v[3]) > 0 for v in via)        # both uses contribute
    assert number_after(out, "max |grad(shared) - (grad via use 1 + grad via use 2)| =") < 1e-5


EPOCH = re.compile(r"^epoch\s+(\d+)/(\d+)\s+loss (" + FLOAT + r")\s+train accuracy (" + FLOAT
                   + r")\s+held-out accuracy (" + FLOAT + r")\s+(" + FLOAT + r") samples/s$", re.M)


def test_train_convnet_on_digits(run, tmp_path):
    logdir = tmp_path / "runs"
    out = run("train_convnet.py", "--epochs", "4", "--logdir", str(logdir))
    assert "1438 training, 359 held-out samples of 1x8x8" in out                 # 80/20 of 1,797
    epochs = [tuple(float(v) for v in m) for m in EPOCH.findall(out)]
    assert [int(e[0]) for e in epochs] == [1, 2, 3, 4] and all(e[1] == 4 for e in epochs)
    losses = [e[2] for e in epochs]
    assert losses[-1] < losses[0] / 2, f"loss does not fall: {losses}"
    assert all(e[5] > 0 for e in epochs)
    final = number_after(out, "final held-out accuracy:")
    assert final >= 0.85, out                                # 4 epochs; the default 15 reach >= 0.95
    assert final == epochs[-1][4]
    m = re.search(r"final held-out accuracy: " + FLOAT + r" \((\d+)/359\)", out)
    assert m and abs(int(m.group(1)) / 359 - final) < 1e-3
    assert number_after(out, "wall time:") > 0
    # --logdir: TensorBoard's own reader sees a loss per step, the held-out accuracy per epoch, the graph
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(logdir))
    events.Reload()
    steps_per_epoch = -(-1438 // 32)
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 4 * steps_per_epoch + 1))
    held_out = events.Scalars("held_out_accuracy")
    assert [e.step for e in held_out] == [1, 2, 3, 4] and abs(held_out[-1].value - final) < 1e-4  # printed to 4 places
    assert any(node.op == "Conv" for node in events.Graph().node)


def _idx(magic, array):
    return struct.pack(">I", magic) + struct.pack(">%dI" % array.ndim, *array.shape) + array.tobytes()


def test_train_convnet_on_mnist_files(run, tmp_path, rng):
    """--mnist ROOT with tiny generated IDX files: the lecture's LeNet on 28x28 inputs."""
    root = tmp_path / "mnist"
    root.mkdir()
    for prefix, n in [("train", 40), ("t10k", 16)]:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, images)))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(2049, labels))
    out = run("train_convnet.py", "--mnist", str(root), "--epochs", "1", "--limit", "24", "--batch-size", "8")
    assert "24 training, 16 held-out samples of 1x28x28" in out
    assert "model: Net, 105,506 parameters, logits (None, 10)" in out
    assert len(EPOCH.findall(out)) == 1
    assert 0.0 <= number_after(out, "final held-out accuracy:") <= 1.0
