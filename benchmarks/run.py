"""Benchmarks: staticgraph (cpu) against hand-written NumPy and PyTorch eager, side by side.

    python benchmarks/run.py [--rounds 3] [--workloads mlp,lenet_b64] [--frameworks numpy,torch,staticgraph]

Each (framework, workload) runs in a fresh process (benchmarks/worker.py), interleaved over rounds so
machine noise hits every framework alike (the frameworks' order alternates between rounds); the table
shows median step times over all rounds and the ratios that hold across machines (staticgraph /
PyTorch, staticgraph / NumPy): the median over rounds of each round's ratio (the processes of one
round ran minutes apart at most, so a slow phase of the machine cancels out), with the rounds' range. Every step is a full
training step (forward, backward, SGD update) in float32. Cold start: a fresh process with an empty
STATICGRAPH_CACHE_DIR and an empty Python byte-code cache (PYTHONPYCACHEPREFIX) until the first LeNet
(batch 64) step has finished; warm start: the same with both caches filled. Both with the default STATICGRAPH_WARMUP=reference (the first steps run on the reference
interpreter while the kernels compile or load in a thread); the time until the native step is ready is
printed too. Step times are measured on the native step (the workers wait for it). Absolute times
drift between machines; ratios measured in one run hold.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
# dag_tiny_jit: the same step with staticgraph's plan.jit() (the fused tier);
# NumPy and PyTorch run their dag_tiny code there.
WORKLOADS = ["dag_tiny", "dag_tiny_jit", "mlp", "lenet_b64", "lenet_b256", "gemm_fwd_bwd", "conv_block"]
# Targets from the project's issue: staticgraph / PyTorch step-time ratio at most this.
TARGETS = {"dag_tiny": 0.08, "dag_tiny_jit": 0.08, "mlp": 0.6, "lenet_b64": 0.3, "lenet_b256": 0.3, "conv_block": 0.6}


def run_worker(framework: str, workload: str, env: Optional[dict] = None, extra=()) -> Optional[dict]:
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), framework, workload, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    print(f"  ! {framework}/{workload} failed: {' | '.join(tail)}", file=sys.stderr)
    return None


def start_times(rounds: int) -> Dict[str, List[float]]:
    """Cold and warm start of staticgraph (LeNet b64), and PyTorch's time to its first step."""
    out: Dict[str, List[float]] = {"cold": [], "warm": [], "cold_native": [], "warm_native": [], "torch_first": []}
    for _ in range(rounds):
        # cold: empty plan cache and empty Python byte-code cache (every module compiled from source,
        # NumPy's too); warm: both filled by the cold run, as an installed package has them (this
        # sandbox sets PYTHONDONTWRITEBYTECODE=1, which makes every process recompile ~0.2 s of sources)
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as pycache:
            env = {"STATICGRAPH_CACHE_DIR": cache, "SG_BENCH_NO_WAIT": "1", "PYTHONPYCACHEPREFIX": pycache,
                   "PYTHONDONTWRITEBYTECODE": ""}
            for key in ("cold", "warm"):
                r = run_worker("staticgraph", "lenet_b64", env, ["--first-step-only"])
                if r:
                    out[key].append(r["to_first_step_s"])
                    out[f"{key}_native"].append(r["to_native_s"])
        if importlib.util.find_spec("torch"):
            r = run_worker("torch", "lenet_b64", None, ["--first-step-only"])
            if r:
                out["torch_first"].append(r["to_first_step_s"])
    return out


def fmt_ms(t: Optional[float]) -> str:
    return "-" if t is None else (f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--frameworks", default="numpy,torch,staticgraph")
    ap.add_argument("--min-time", default="1.0", help="seconds of timed steps per process")
    ap.add_argument("--no-start", action="store_true", help="skip the cold/warm start measurement")
    args = ap.parse_args()
    frameworks = [f for f in args.frameworks.split(",") if f != "torch" or importlib.util.find_spec("torch")]
    workloads = args.workloads.split(",")

    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}  cpus={os.cpu_count()}  "
          f"python {platform.python_version()}  frameworks: {', '.join(frameworks)}")
    times: Dict[tuple, List[float]] = {}
    rounds: Dict[tuple, Dict[int, dict]] = {}       # (framework, workload) -> round -> its result
    for r in range(args.rounds):
        for w in workloads:
            for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
                res = run_worker(f, w, extra=["--min-time", args.min_time])
                if res:
                    times.setdefault((f, w), []).extend(res["times"])
                    res["median"] = statistics.median(res["times"])
                    rounds.setdefault((f, w), {})[r] = res
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in times.items()}

    def ratio(w: str, other: str, value=lambda a, b: a["median"] / b["median"], fmt="{:.2f}") -> str:
        """The median over rounds of staticgraph's per-round ratio to ``other``, with the range."""
        mine, theirs = rounds.get(("staticgraph", w), {}), rounds.get((other, w), {})
        per_round = sorted(value(mine[r], theirs[r]) for r in mine if r in theirs)
        if not per_round:
            return "-"
        spread = f" ({fmt.format(per_round[0])}-{fmt.format(per_round[-1])})" if len(per_round) > 1 else ""
        return fmt.format(statistics.median(per_round)) + spread
    head = (f"| workload | {' | '.join(frameworks)} | sg / torch (rounds' range) | sg / numpy (range) "
            f"| target (sg/torch) | sg GFLOP/s |")
    print("\nmedian step time (forward + backward + SGD update, float32)\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for w in workloads:
        sg_t, torch_t, np_t = med.get(("staticgraph", w)), med.get(("torch", w)), med.get(("numpy", w))
        cells = [fmt_ms(med.get((f, w))) for f in frameworks]
        r_torch, r_np = ratio(w, "torch"), ratio(w, "numpy")
        flops = next(iter(rounds.get(("staticgraph", w), {}).values()), {}).get("flops")
        gf = f"{flops / sg_t / 1e9:.1f}" if flops and sg_t else "-"
        tgt = f"<= {TARGETS[w]}" if w in TARGETS else ""
        if w == "gemm_fwd_bwd" and flops and ("numpy", w) in rounds:
            share = ratio(w, "numpy", lambda a, b: 100 * flops / a["median"] / 1e9 / b["matmul_gflops"], "{:.0f}%")
            mm = statistics.median(res["matmul_gflops"] for res in rounds[("numpy", w)].values())
            tgt = f">= 90% of NumPy matmul ({mm:.1f} GFLOP/s): {share}"
        print(f"| {w} | {' | '.join(cells)} | {r_torch} | {r_np} | {tgt} | {gf} |")

    if not args.no_start and "staticgraph" in frameworks:
        st = start_times(max(1, min(args.rounds, 3)))
        print("\nstart-up (fresh process to the end of the first LeNet b64 step, median)\n")
        for key, label, target in (("cold", "staticgraph cold (empty cache)", "<= 5 s"),
                                   ("warm", "staticgraph warm (cache filled)", "<= 0.5 s"),
                                   ("cold_native", "staticgraph cold, until the native step is ready", ""),
                                   ("warm_native", "staticgraph warm, until the native step is ready", ""),
                                   ("torch_first", "PyTorch first step", "")):
            if st[key]:
                print(f"- {label}: {statistics.median(st[key]):.2f} s {('(target ' + target + ')') if target else ''}")


if __name__ == "__main__":
    main()
