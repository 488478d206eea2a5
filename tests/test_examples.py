"""Run every script of examples/ as a newcomer would, and check what it prints.

Each script runs in a subprocess (``sys.executable``, a temporary working
directory, small sizes through its command-line flags) and must exit with 0.
For the lecture examples the key printed values are parsed and compared with
the lecture's numbers or closed forms.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The sg.nn examples run, with their flags and checks, in tests/test_nn_examples.py.
NN_EXAMPLES = ["conv_shapes.py", "pooling.py", "lenet_module.py", "sequential_mlp.py", "siamese.py",
               "train_convnet.py"]
# Examples that need an optional package run in their own test file, skipped without it.
OPTIONAL_EXAMPLES = ["export_onnx.py"]      # tests/test_onnx.py (onnx, onnxruntime)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py")
                  if not p.name.startswith("_") and p.name not in NN_EXAMPLES + OPTIONAL_EXAMPLES)
FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

# Command-line flags that keep each script fast (scripts not listed run without flags).
ARGS = {
    "batching.py": ["--n", "32", "--d", "64", "--d-out", "48", "--repeats", "3"],
    "linear_regression.py": ["--steps", "200"],
    "tf1_tutorial.py": ["--steps", "300"],
    "train_distributed.py": ["--epochs", "1", "--limit", "256", "--target", "reference"],   # 1 process; MPI:
}                                                                                          # test_distributed.py


def run_example(path, tmp_path, args=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("STATICGRAPH_CACHE_DIR", str(tmp_path / "sg-cache"))
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable, str(path), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (f"{path.name} exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
                                  f"\n--- stderr\n{proc.stderr}")
    return proc.stdout


def tensor_after(out, marker):
    """The numbers of the first 'tensor([...])' printed after the line containing `marker`."""
    tail = out[out.index(marker) + len(marker):]
    m = re.search(r"tensor\(\[([^\]]*)\]\)", tail)
    assert m, f"no tensor([...]) after {marker!r} in:\n{out}"
    return np.array([float(v) for v in re.findall(FLOAT, m.group(1))])


def number_after(out, marker):
    m = re.search(re.escape(marker) + r"\s*(" + FLOAT + ")", out)
    assert m, f"{marker!r} not found in:\n{out}"
    return float(m.group(1))


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    for name in ["dag_forward_backward.py", "autograd_basics.py", "higher_order.py",
                 "stop_gradient.py", "batching.py", "linear_regression.py"]:
        assert name in names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    out = run_example(path, tmp_path, ARGS.get(path.name, ()))
    check = CHECKS.get(path.name)
    if check is not None:
        check(out)


def test_lecture_examples_have_a_docstring_saying_how_to_run():
    for path in EXAMPLES:
        if path.name not in CHECKS:
            continue
        text = path.read_text()
        assert text.lstrip().startswith('"""'), f"{path.name} has no top docstring"
        doc = text.split('"""')[1]
        assert "python examples/" in doc or "Run" in doc, f"{path.name}'s docstring does not say how to run it"


# ------------------------------------------------------------------------ per-script checks

def check_dag(out):
    assert number_after(out, "q =") > 0
    assert number_after(out, "max |autograd - finite differences| (float64, relative) =") < 1e-6
    assert number_after(out, "(grad via phi1 + grad via phi3)| =") < 1e-4
    assert "float32 vs float64 gradients agree: True" in out


def check_autograd_basics(out):
    np.testing.assert_allclose(tensor_after(out, "sg.gradients(a, (t, u))"), [2., 4., 8.])
    m = re.search(r"\(tensor\(\[[^\]]*\]\), tensor\(\[([^\]]*)\]\)\)", out)
    assert m, out
    np.testing.assert_allclose([float(v) for v in re.findall(FLOAT, m.group(1))], [0.1, 0.05])
    np.testing.assert_allclose(tensor_after(out, "x.pow(3).sum()"), [27., 12., 75.])
    assert number_after(out, "max |autograd - finite differences| (float64) =") < 1e-6
    assert "tensor(10.)" in out
    np.testing.assert_allclose(tensor_after(out, "s = x.abs().sum()"), [1., -1., 1., -1.])


def check_higher_order(out):
    np.testing.assert_allclose(tensor_after(out, "g1 ="), [2., 4., 6.])
    # lecture: tensor([ 14.7781,    0.0000, -806.8576]), float32 printed with 4 decimals
    np.testing.assert_allclose(tensor_after(out, "g2 ="), [14.7781, 0.0, -806.8576], rtol=0, atol=2e-4)
    assert "tensor([  14.7781,    0.0000, -806.8576])" in out  # the lecture's printout, digit for digit


def check_stop_gradient(out):
    lines = [ln.strip() for ln in out.splitlines()]
    assert "0.333333 -0.333333" in lines
    assert "1.000000 -0.000000" in lines
    assert lines.index("0.333333 -0.333333") < lines.index("1.000000 -0.000000")


def check_batching(out):
    assert number_after(out, "max |diff| =") < 1e-3
    assert number_after(out, "Batch-processing speed-up on CPU") > 0


def check_linear_regression(out):
    losses = [float(v) for v in re.findall(r"step\s+\d+\s+loss\s+(" + FLOAT + ")", out)]
    assert len(losses) >= 5, out
    assert all(b <= a for a, b in zip(losses, losses[1:])), f"loss does not decrease: {losses}"
    assert losses[-1] < losses[0] / 100
    assert losses[-1] < 0.02                       # about the noise variance 0.01
    assert number_after(out, "max |w - w_true| =") < 0.05
    assert number_after(out, "max |b - b_true| =") < 0.05


CHECKS = {
    "dag_forward_backward.py": check_dag,
    "autograd_basics.py": check_autograd_basics,
    "higher_order.py": check_higher_order,
    "stop_gradient.py": check_stop_gradient,
    "batching.py": check_batching,
    "linear_regression.py": check_linear_regression,
}
