"""The cuda target on a real GPU: its tests without the simulator, then step times beside PyTorch.

    python benchmarks/gpu.py [--rounds 3] [--workloads dag_tiny,mlp] [--skip-tests]

Refuses (exit 2) without an NVIDIA GPU, its driver, numba-cuda and PyTorch's CUDA build, or with
NUMBA_ENABLE_CUDASIM=1. Otherwise: ``tests/test_cuda_*.py`` with STATICGRAPH_TEST_REAL_CUDA=1
(on the GPU), then each (framework, workload) in a fresh process (benchmarks/worker.py, as
benchmarks/run.py does), staticgraph on ``target="cuda"`` (SG_BENCH_TARGET) and PyTorch eager on
the GPU (SG_BENCH_TORCH_DEVICE), each step ending in a synchronize; one table of median step
times, the staticgraph / PyTorch ratios against the issue's targets, and GFLOP/s for the GEMM.
LeNet and conv_block need the cuda conv and pool kernels.

Never run yet: no GPU was lent while it was written (docs/cuda.md). (Named gpu.py, not cuda.py:
a script of that name would shadow the ``cuda`` package that numba-cuda imports.)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = ["dag_tiny", "mlp", "lenet_b64", "lenet_b256", "gemm_4096", "conv_block"]
# the targets: staticgraph / PyTorch step time at most this (the GEMM: at least 90% of
# PyTorch's GFLOP/s, i.e. a time ratio of at most 1 / 0.9)
TARGETS = {"dag_tiny": 0.5, "lenet_b256": 1.0, "gemm_4096": 1 / 0.9}
ENV = {"SG_BENCH_TARGET": "cuda", "SG_BENCH_TORCH_DEVICE": "cuda", "NUMBA_ENABLE_CUDASIM": "0"}


def missing_gpu() -> str:
    """Why this machine cannot run the comparison ("" when it can)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return "NUMBA_ENABLE_CUDASIM is set: this script times a real GPU, not the simulator"
    sys.path.insert(0, ROOT)
    from compiler.backends.cuda.driver import missing
    why = missing()
    if why:
        return why
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (the comparison needs its CUDA build)"
    if not torch.cuda.is_available():
        return "PyTorch cannot see a CUDA device (a CPU-only build?)"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args()
    why = missing_gpu()
    if why:
        print(f"benchmarks/gpu.py needs an NVIDIA GPU: {why}. Nothing was measured.", file=sys.stderr)
        return 2
    import torch
    print(f"device: {torch.cuda.get_device_name(0)}")
    if not args.skip_tests:
        tests = sorted(f"tests/{f}" for f in os.listdir(os.path.join(ROOT, "tests")) if f.startswith("test_cuda_"))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", *tests], cwd=ROOT,
                              env={**os.environ, "STATICGRAPH_TEST_REAL_CUDA": "1"}, capture_output=True, text=True)
        print("cuda tests on the GPU: " + (proc.stdout.strip().splitlines() or ["(no output)"])[-1])
    sys.path.insert(0, HERE)
    from run import run_worker
    workloads = [w for w in args.workloads.split(",") if w]
    times = {(fw, w): [] for fw in ("staticgraph", "torch") for w in workloads}
    flops = {}
    for r in range(args.rounds):
        for w in workloads:
            for fw in (("staticgraph", "torch") if r % 2 == 0 else ("torch", "staticgraph")):
                res = run_worker(fw, w, ENV)
                if res is not None:
                    times[(fw, w)].append(statistics.median(res["times"]))
                    flops[w] = res.get("flops")
    print(f"{'workload':<12} {'staticgraph ms':>15} {'PyTorch ms':>11} {'ratio':>7} {'target':>7}  GFLOP/s (sg / torch)")
    for w in workloads:
        sg_t, th_t = times[("staticgraph", w)], times[("torch", w)]
        if not sg_t or not th_t:
            print(f"{w:<12} {'failed' if not sg_t else ''} {'' if th_t else 'torch failed'}")
            continue
        a, b = statistics.median(sg_t), statistics.median(th_t)
        target = f"<= {TARGETS[w]:.2f}" if w in TARGETS else ""
        gf = f"{flops[w] / a / 1e9:.0f} / {flops[w] / b / 1e9:.0f}" if flops.get(w) else ""
        print(f"{w:<12} {a * 1e3:15.3f} {b * 1e3:11.3f} {a / b:7.2f} {target:>7}  {gf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
