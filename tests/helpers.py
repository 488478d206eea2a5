"""Helpers shared by the test modules (the ``target`` fixture lives in conftest.py)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import staticgraph as sg

ROOT = Path(__file__).resolve().parent.parent

# "default" is sg.Session()'s own target ("cpu"); "reference" is the NumPy oracle.
TARGETS = ["default", "reference"]


def session(target, graph=None):
    """A Session on ``target`` ("default" means no target argument)."""
    if target == "default":
        return sg.Session(graph) if graph is not None else sg.Session()
    return sg.Session(graph=graph, target=target)


def run(target, fetches, feed_dict=None):
    """Run ``fetches`` once in a fresh session on ``target``."""
    with session(target) as sess:
        return sess.run(fetches, feed_dict)


def run_cpu_and_reference(fetches, feed_dict=None):
    """``fetches`` run on the cpu target and on the reference backend: ``(cpu, reference)``."""
    out = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            out[target] = sess.run(fetches, feed_dict)
    return out["cpu"], out["reference"]


def train_on_cpu_and_reference(variables, init, fetches, train, feed_dict, steps=2):
    """On the cpu target and on the reference backend: ``variables`` set to ``init``, ``fetches``
    run once, then ``steps`` runs of ``train``, then the variables fetched. Returns ``(cpu,
    reference)``, each [fetched values, variable values after the steps]."""
    out = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            sess.run([v.assign(a) for v, a in zip(variables, init)])
            out[target] = [sess.run(fetches, feed_dict)]
            for _ in range(steps):
                sess.run(train, feed_dict)
            out[target].append(sess.run(list(variables)))
    return out["cpu"], out["reference"]


# a conv and both its gradients on cpu (the plan must call ``kernels``) and on the reference backend
NO_JIT_CONV = r'''
import numpy as np, staticgraph as sg
{prelude}
rng = np.random.default_rng({seed})
x = rng.standard_normal({xshape}); w = rng.standard_normal({wshape})
X = sg.placeholder(sg.float64, x.shape); W = sg.placeholder(sg.float64, w.shape)
y = sg.nn.conv2d(X, W, padding={padding})
dy = rng.standard_normal(y.shape)
gx, gw = sg.gradients(y, [X, W], grad_ys=dy)
out = {{}}
for target in ("cpu", "reference"):
    with sg.Session(target=target) as s:
        out[target] = s.run([y, gx, gw], {{X: x, W: w}})
        if target == "cpu":
            kernels = sorted(set(c.kernel for c in s.compile([y, gx, gw], [X, W])._exe.base.prog.calls))
assert kernels == {kernels}, kernels
for a, b in zip(out["cpu"], out["reference"]):
    assert np.allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max()), np.abs(a - b).max()
print("ok")
'''


def check_conv_without_jit(tmp_path, seed, xshape, wshape, padding, kernels, prelude=""):
    """``NO_JIT_CONV`` in a subprocess with ``NUMBA_DISABLE_JIT=1`` (the kernels run as Python, the
    two workers one after the other) and a cache of its own."""
    script = NO_JIT_CONV.format(prelude=prelude, seed=seed, xshape=xshape, wshape=wshape, padding=padding,
                                kernels=sorted(kernels))
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "STATICGRAPH_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
           "STATICGRAPH_KERNEL_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def check_conv_and_gradients(fetches, feeds, naive, operands, rel):
    """A conv's fetches (its output, then the gradients of ``operands``, the fed input and/or weight
    values, for the fed output gradient dy: ``feeds`` maps X, W, DY to x, w, dy) on cpu against the
    reference backend within ``rel`` of the terms' magnitudes (the same sums over |x|, |w|, |dy|),
    the output against ``naive`` (float64 loops), and each gradient pinned by the adjoint identity
    sum(grad * operand) = sum(dy * conv(x, w))."""
    cpu, ref = run_cpu_and_reference(fetches, feeds)
    with sg.Session(target="reference") as sess:
        mags = sess.run(fetches, {t: np.abs(v).astype(np.float64) for t, v in feeds.items()})
    dtype = next(iter(feeds.values())).dtype
    for got, want, mag in zip(cpu, ref, mags):
        assert got.dtype == dtype and got.shape == want.shape
        assert np.all(np.abs(got.astype(np.float64) - want) <= rel * (mag + 1e-300)), \
            float(np.max(np.abs(got - want) / (mag + 1e-300)))
    assert np.all(np.abs(cpu[0] - naive) <= rel * (mags[0] + 1e-300))
    dy = list(feeds.values())[2].astype(np.float64)
    lhs, scale = float(np.sum(dy * naive)), float(np.sum(np.abs(dy) * mags[0]))
    for grad, operand in zip(cpu[1:], operands):
        np.testing.assert_allclose(np.sum(grad.astype(np.float64) * operand), lhs, rtol=0, atol=rel * scale)
