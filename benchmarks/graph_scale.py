"""Time to the first step of large graphs, phase by phase, and how each phase grows with the graph.

    python benchmarks/graph_scale.py [--chain 1000,5000] [--mlp 64,256] [--target cpu] [--clock cpu]

Two workloads, each size in a fresh process with ``STATICGRAPH_WARMUP=wait`` (``compile()`` returns
with the native step ready; set ``STATICGRAPH_CACHE_DIR`` to a warm cache to time a warm start):

- chain: ``x = sin(x) * 1.0001 + 0.1`` repeated N times on a [16] float32 placeholder, and the
  gradient of ``sum(x)`` with respect to the placeholder (8 graph ops per link);
- mlp: D layers ``relu(x @ W + b)`` of width 64 on a batch of 32, MSE loss, SGD ``minimize``.

Phases: build (from the first placeholder to the last gradient / ``minimize``), ``sess.compile()``,
the first run of the plan, and for the MLP the initializer run on the reference target
(``ref_init``) and on the benchmark's target (``init``: on the cpu target a plan of its own). ``step`` is the median steady step.
Each phase's slope is log(t2 / t1) / log(n2 / n1) between consecutive sizes: 1.0 is linear, 2.0
quadratic. On a shared machine absolute times drift; slopes are ratios within one run.
Where JAX is installed, JAX's first call of the same chain (``jit`` of value and gradient: trace,
compile, run) is timed too (``--no-jax`` skips it).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

PHASES = ("build", "compile", "first_run", "ref_init", "init", "step")
WIDTH, BATCH, CHAIN_LEN = 64, 32, 16


CLOCK = [time.perf_counter]      # --clock cpu: time.process_time (this process's CPU seconds)


def _timed(fn):
    t = CLOCK[0]()
    out = fn()
    return out, CLOCK[0]() - t


def _steady(run, steps: int) -> float:
    times = []
    for _ in range(steps):
        _, t = _timed(run)
        times.append(t)
    return statistics.median(times)


def one_chain(n: int, target: str, steps: int) -> dict:
    """Phases of the N-link chain in this process."""
    import numpy as np
    t0 = CLOCK[0]()
    import staticgraph as sg
    x0 = sg.placeholder(sg.float32, (CHAIN_LEN,))
    x = x0
    for _ in range(n):
        x = sg.sin(x) * 1.0001 + 0.1
    y = sg.reduce_sum(x)
    (g,) = sg.gradients(y, [x0])
    build = CLOCK[0]() - t0
    ops = len(sg.get_default_graph().get_operations())
    sess = sg.Session(target=target)
    plan, compile_s = _timed(lambda: sess.compile([y, g], [x0]))
    value = np.linspace(0, 1, CHAIN_LEN, dtype=np.float32)
    first, first_s = _timed(lambda: plan(value))
    step = _steady(lambda: plan(value), steps)
    return dict(ops=ops, build=build, compile=compile_s, first_run=first_s, step=step,
                result=float(first[0]), grad0=float(first[1][0]))


def one_mlp(depth: int, target: str, steps: int) -> dict:
    """Phases of the depth-D MLP in this process."""
    import numpy as np
    t0 = CLOCK[0]()
    import staticgraph as sg
    x = sg.placeholder(sg.float32, (BATCH, WIDTH))
    labels = sg.placeholder(sg.float32, (BATCH, WIDTH))
    rng = np.random.default_rng(0)
    h = x
    for _ in range(depth):
        w = sg.Variable((rng.standard_normal((WIDTH, WIDTH)) / math.sqrt(WIDTH)).astype(np.float32))
        b = sg.Variable(np.zeros(WIDTH, np.float32))
        h = sg.nn.relu(h @ w + b)
    loss = sg.reduce_mean(sg.square(h - labels))
    train = sg.train.GradientDescentOptimizer(1e-3).minimize(loss)
    build = CLOCK[0]() - t0
    ops = len(sg.get_default_graph().get_operations())
    init = sg.global_variables_initializer()
    with sg.Session(target="reference") as ref:
        _, ref_init = _timed(lambda: ref.run(init))
    sess = sg.Session(target=target)
    _, init_s = _timed(lambda: sess.run(init))
    plan, compile_s = _timed(lambda: sess.compile([train, loss], [x, labels]))
    xv = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    lv = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    first, first_s = _timed(lambda: plan(xv, lv))
    step = _steady(lambda: plan(xv, lv), steps)
    return dict(ops=ops, build=build, compile=compile_s, first_run=first_s, ref_init=ref_init,
                init=init_s, step=step, result=float(first[1]))


def one_jax(n: int) -> dict:
    """JAX's first call (trace, compile, run) of the same chain's value and gradient."""
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp

    def f(x):
        for _ in range(n):
            x = jnp.sin(x) * 1.0001 + 0.1
        return jnp.sum(x)
    fn = jax.jit(jax.value_and_grad(f))
    x = jnp.linspace(0, 1, CHAIN_LEN, dtype=jnp.float32)
    t1 = time.perf_counter()
    jax.block_until_ready(fn(x))
    return dict(ops=0, first_call=time.perf_counter() - t1, import_s=t1 - t0)


WORKLOADS = {"chain": one_chain, "mlp": one_mlp, "jax": lambda n, target, steps: one_jax(n)}


def _child(kind: str, n: int, target: str, steps: int, clock: str) -> None:
    if clock == "cpu":
        CLOCK[0] = time.process_time
    if kind != "jax":
        import staticgraph  # noqa: F401  (import time is not the graph's)
    print(json.dumps(WORKLOADS[kind](n, target, steps)))


def _run_child(kind: str, n: int, target: str, steps: int, clock: str) -> dict:
    env = dict(os.environ, STATICGRAPH_WARMUP="wait")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, str(n), "--target", target,
           "--steps", str(steps), "--clock", clock]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{kind} {n}: child failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt(t: float) -> str:
    return f"{t * 1e3:.2f} ms" if t < 0.1 else f"{t:.2f} s"


def _table(kind: str, sizes, rows, phases) -> None:
    label = {"chain": "N", "mlp": "D", "jax": "N"}[kind]
    print(f"\n{kind}: " + " | ".join(["size", "ops", *phases]))
    prev = None
    for n, row in zip(sizes, rows):
        cells = []
        for p in phases:
            cell = _fmt(row[p])
            if prev is not None and prev[1][p] > 0 and row[p] > 0:
                cell += f" (slope {math.log(row[p] / prev[1][p]) / math.log(n / prev[0]):.2f})"
            cells.append(cell)
        print(f"{label}={n} | {row['ops']} | " + " | ".join(cells))
        prev = (n, row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", default="1000,5000", help="chain lengths N (comma-separated; '' skips)")
    parser.add_argument("--mlp", default="64,256", help="MLP depths D (comma-separated; '' skips)")
    parser.add_argument("--target", default="cpu", choices=("cpu", "reference"))
    parser.add_argument("--steps", type=int, default=50, help="steady steps timed after the first")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="wall: time.perf_counter; cpu: this process's CPU time (steadier on a busy machine)")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX's first call of the chain (timed where installed)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.target, args.steps, args.clock)
        return
    print(f"target={args.target}  clock={args.clock}  STATICGRAPH_CACHE_DIR={os.environ.get('STATICGRAPH_CACHE_DIR', '(default)')}"
          "  each size in a fresh process, STATICGRAPH_WARMUP=wait")
    jobs = [("chain", args.chain, ("build", "compile", "first_run", "step")),
            ("mlp", args.mlp, PHASES)]
    if not args.no_jax:
        try:
            import jax  # noqa: F401
            jobs.append(("jax", args.chain, ("first_call",)))
        except ImportError:
            print("(JAX is not installed: no JAX column)")
    for kind, sizes, phases in jobs:
        sizes = [int(s) for s in sizes.split(",") if s.strip()]
        if sizes:
            rows = [_run_child(kind, n, args.target, args.steps, args.clock) for n in sizes]
            _table(kind, sizes, rows, phases)
            if kind == "chain":
                total = [sum(r[p] for p in ("build", "compile", "first_run")) for r in rows]
                print("placeholder to first result: " + ", ".join(_fmt(t) for t in total))


if __name__ == "__main__":
    main()
