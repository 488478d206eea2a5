"""Data-parallel training on one machine: 1 rank x T threads against T ranks x 1 thread, and the
allreduce's time against the bytes it combines.

    python benchmarks/distributed.py [--threads 2] [--workloads mlp,lenet] [--steps 40] [--sweep] [--yield-cpu]

For each workload (the benchmarks' MLP at global batch 128, the course's LeNet at 64; SGD, float32,
the cpu target) it launches ``mpiexec -n 1`` with T kernel workers (``STATICGRAPH_KERNEL_THREADS``)
and ``mpiexec -n T`` with one worker each, both through ``DistributedOptimizer`` on the same global
batch, and prints the median step time, the global samples per second, and the allreduce's share
of a step (``plan.profile``: the host call timed on its own). ``--sweep`` times ``Allreduce`` on T
ranks for buffers of 4 KB to 16 MB. Cores shared with other work make every figure noisy: compare
the two layouts of one run, not runs.

A worker mode (``--worker``) is what the launches run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = {"mlp": 128, "lenet": 64}


def _model(workload):
    sys.path.insert(0, HERE)
    from sg_impl import LeNet, mlp_model
    return (mlp_model(), (784,)) if workload == "mlp" else (LeNet(), (1, 28, 28))


def worker(workload: str, steps: int) -> dict:
    """One rank's share of the global batch, ``steps`` timed steps; rank 0's figures."""
    import numpy as np
    import staticgraph as sg
    from staticgraph import distributed as dist
    from staticgraph.ops.collective import world
    dist.init()
    rank, size = dist.rank(), dist.size()
    model, shape = _model(workload)
    x = sg.placeholder(sg.float32, (None, *shape))
    labels = sg.placeholder(sg.int64, (None,))
    loss = sg.nn.cross_entropy(model(x), labels)
    train = dist.DistributedOptimizer(sg.train.GradientDescentOptimizer(1e-3)).minimize(loss)
    rng = np.random.default_rng(rank)
    part = BATCH[workload] // size
    feeds = [rng.random((part, *shape), dtype=np.float32), rng.integers(0, 10, part)]
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        dist.broadcast_variables(sess)
        plan = sess.compile([train, loss], [x, labels])
        plan.wait()
        for _ in range(5):
            plan(*feeds)
        comm = world()
        times = []
        for _ in range(steps):
            if comm is not None:
                comm.Barrier()
            t0 = time.perf_counter()
            plan(*feeds)
            times.append(time.perf_counter() - t0)
        table = plan.profile(*feeds, runs=10, top=10 ** 6).splitlines()
    reduce_ms = sum(float(line.split()[0]) for line in table[2:] if "Allreduce '" in line)
    profiled_ms = float(table[0].split(" ms per step")[0].split()[-1])
    step_s = statistics.median(times)
    grad_bytes = sum(int(np.prod(p.shape)) * 4 for p in model.parameters())
    return {"workload": workload, "ranks": size, "step_ms": step_s * 1e3, "samples_per_s": BATCH[workload] / step_s,
            "allreduce_ms": reduce_ms, "profiled_step_ms": profiled_ms,
            "grad_bytes": grad_bytes}


def sweep() -> list:
    """Median seconds of an in-place float32 Allreduce per buffer size, on the job's ranks."""
    import numpy as np
    from staticgraph.ops.collective import allreduce, world
    comm = world()
    out = []
    for log2 in range(12, 25, 2):
        buf = np.ones((1 << log2) // 4, np.float32)
        allreduce(buf, "mean", (("sweep", "float32", (buf.size,)),))
        times = []
        for _ in range(20):
            comm.Barrier()
            t0 = time.perf_counter()
            allreduce(buf, "mean", (("sweep", "float32", (buf.size,)),))
            times.append(time.perf_counter() - t0)
        out.append({"bytes": buf.nbytes, "ms": statistics.median(times) * 1e3})
    return out


def launch(ranks: int, threads: int, args: list, yield_cpu: bool = False) -> dict:
    env = dict(os.environ, STATICGRAPH_KERNEL_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if yield_cpu:       # MPICH: a rank waiting in a collective sleeps instead of spinning on its core
        env.update(MPIR_CVAR_ENABLE_HEAVY_YIELD="1", MPIR_CVAR_POLLS_BEFORE_YIELD="1")
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", str(ranks), sys.executable, __file__,
           "--worker", *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workloads", default="mlp,lenet")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--sweep", action="store_true", help="also time Allreduce against buffer size")
    p.add_argument("--yield-cpu", action="store_true",
                   help="also run the T ranks with MPICH yielding the core while they wait (oversubscribed cores)")
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker is not None:
        from staticgraph.distributed import rank
        result = sweep() if a.worker[0] == "sweep" else worker(a.worker[0], int(a.worker[1]))
        if rank() == 0:
            print(json.dumps(result))
        return
    t = a.threads
    print(f"{'workload':<8} {'layout':<27} {'step ms':>8} {'samples/s':>10} {'allreduce ms':>13} {'grad KB':>8}")
    for workload in a.workloads.split(","):
        layouts = [(1, t, False), (t, 1, False)] + ([(t, 1, True)] if a.yield_cpu else [])
        for ranks, threads, yield_cpu in layouts:
            r = launch(ranks, threads, [workload, str(a.steps)], yield_cpu)
            name = f"{ranks} rank x {threads} thread" + (", yield" if yield_cpu else "")
            print(f"{workload:<8} {name:<27} {r['step_ms']:8.2f} {r['samples_per_s']:10.0f} "
                  f"{r['allreduce_ms']:13.3f} {r['grad_bytes'] / 1024:8.0f}", flush=True)
    if a.sweep:
        print(f"\nAllreduce on {t} ranks (float32, in place, median of 20)\n{'bytes':>10} {'ms':>8} {'GB/s':>7}")
        for r in launch(t, 1, ["sweep"]):
            print(f"{r['bytes']:>10} {r['ms']:8.3f} {r['bytes'] / r['ms'] / 1e6:7.2f}")


if __name__ == "__main__":
    main()
