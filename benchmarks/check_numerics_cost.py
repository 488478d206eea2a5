"""What ``sg.Session(check_numerics=True)`` costs: one MLP training step (784-256-10, batch 64,
Adam, cpu target) in two sessions on one graph, switch off and on, interleaved rounds in one
process; prints each's best round and their ratio (a same-run ratio: compare only those).

    python benchmarks/check_numerics_cost.py [--rounds 5] [--steps 100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import staticgraph as sg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = sg.placeholder(sg.float32, [None, 784], name="x")
    labels = sg.placeholder(sg.int64, [None], name="labels")
    w1 = sg.Variable(rng.standard_normal((784, 256)).astype(np.float32) * 0.05)
    b1 = sg.Variable(np.zeros(256, np.float32))
    w2 = sg.Variable(rng.standard_normal((256, 10)).astype(np.float32) * 0.05)
    b2 = sg.Variable(np.zeros(10, np.float32))
    logits = sg.matmul(sg.relu(sg.matmul(x, w1) + b1), w2) + b2
    loss = sg.reduce_mean(sg.nn.functional.cross_entropy(logits, labels))
    train = sg.train.AdamOptimizer(1e-3).minimize(loss)
    feed = {x: rng.standard_normal((64, 784)).astype(np.float32), labels: rng.integers(0, 10, 64)}
    sessions = {flag: sg.Session(check_numerics=flag) for flag in (False, True)}
    for sess in sessions.values():
        sess.run(sg.global_variables_initializer())
        plan = sess.compile([train, loss], [x, labels]).wait()
        for _ in range(20):
            sess.run([train, loss], feed)
    print(f"tensors checked per step: {len(plan._checks)}")
    times = {flag: [] for flag in sessions}
    for _ in range(args.rounds):
        for flag, sess in sessions.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                sess.run([train, loss], feed)
            times[flag].append((time.perf_counter() - t0) / args.steps)
    off, on = min(times[False]), min(times[True])
    print(f"step: off {off * 1e3:.3f} ms, on {on * 1e3:.3f} ms, on/off {on / off:.2f}")


if __name__ == "__main__":
    main()
