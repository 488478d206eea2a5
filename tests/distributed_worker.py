"""The program ``tests/test_distributed.py`` runs under ``mpiexec -n K`` (and in-process, K = 1).

``python tests/distributed_worker.py SCENARIO OUT_DIR [options]``: every rank builds a small
MLP whose initial weights depend on its rank (so ``broadcast_variables`` has work to do), trains
``--steps`` steps on its shard of the same global batches, and writes its final variables to
``OUT_DIR/rank<r>.npz``. Scenarios other than ``train`` make one rank misbehave:

- ``raise``: rank 1 raises at step 2 (uncaught: the job must abort);
- ``kill``: rank 1 SIGKILLs itself at step 2 (the launcher must end the others);
- ``shape`` / ``missing``: rank 1 builds a variable of another shape / lacks one;
- ``save``: after training every rank calls ``Saver.save`` (on a path naming its rank).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import staticgraph as sg  # noqa: E402
from staticgraph import distributed as dist  # noqa: E402

OPTIMIZERS = {      # learning rate scale -> optimizer
    "sgd": lambda s: sg.train.GradientDescentOptimizer(0.1 * s),
    "momentum": lambda s: sg.train.MomentumOptimizer(0.05 * s, 0.9),
    "adam": lambda s: sg.train.AdamOptimizer(0.01 * s),
}
SAMPLES, FEATURES, HIDDEN, CLASSES = 48, 5, 4, 3


def data(dtype):
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype(dtype)
    y = rng.normal(size=(SAMPLES, CLASSES)).astype(dtype)
    return x, y


def build(dtype, optimizer: str, op: str, scenario: str, rank: int, lr_scale: float = 1.0):
    rng = np.random.default_rng(100 + rank)      # per-rank initial values: broadcast must fix them
    hidden = HIDDEN + 1 if scenario == "shape" and rank == 1 else HIDDEN
    x = sg.placeholder(dtype, [None, FEATURES], name="x")
    t = sg.placeholder(dtype, [None, CLASSES], name="t")
    w1 = sg.Variable(rng.normal(size=(FEATURES, hidden)).astype(dtype), name="w1", dtype=dtype)
    b1 = sg.Variable(np.zeros(hidden, dtype), name="b1", dtype=dtype)
    w2 = sg.Variable(rng.normal(size=(hidden, CLASSES)).astype(dtype), name="w2", dtype=dtype)
    h = sg.tanh(x @ w1 + b1)
    out = h @ w2
    if not (scenario == "missing" and rank == 1):
        b2 = sg.Variable(np.zeros(CLASSES, dtype), name="b2", dtype=dtype)
        out = out + b2
    loss = sg.reduce_mean(sg.square(out - t))
    opt = OPTIMIZERS[optimizer](lr_scale)
    if op != "none":
        opt = dist.DistributedOptimizer(opt, op=op)
    return x, t, loss, opt.minimize(loss)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["train", "raise", "kill", "shape", "missing", "save"])
    p.add_argument("out")
    p.add_argument("--target", default="reference")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--optimizer", default="sgd", choices=sorted(OPTIMIZERS))
    p.add_argument("--op", default="mean", help="mean, sum, or none (no DistributedOptimizer)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--lr-scale", type=float, default=1.0)
    p.add_argument("--no-broadcast", action="store_true", help="skip broadcast_variables")
    a = p.parse_args(argv)
    dist.init()
    rank, size = dist.rank(), dist.size()
    dtype = np.dtype(a.dtype)
    xs, ys = data(dtype)
    x, t, loss, step = build(dtype, a.optimizer, a.op, a.scenario, rank, a.lr_scale)
    with sg.Session(target=a.target) as sess:
        sess.run(sg.global_variables_initializer())
        if not a.no_broadcast:
            dist.broadcast_variables(sess, root=0)
        batches = sg.datasets.batches(xs, ys, batch_size=a.batch, shuffle=True, seed=7,
                                      num_shards=size, shard_index=rank)
        for i, (bx, by) in zip(range(a.steps), batches):
            if i == 2 and rank == 1 and a.scenario == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if i == 2 and rank == 1 and a.scenario == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            sess.run(step, {x: bx, t: by})
        values = {v.op.name: sess.get_variable_value(v) for v in sg.global_variables()}
        np.savez(os.path.join(a.out, f"rank{rank}.npz"), **values)
        if a.scenario == "save":
            sg.train.Saver().save(sess, os.path.join(a.out, f"ckpt-rank{rank}"))     # rank 0's only
    return 0


if __name__ == "__main__":
    sys.exit(main())
