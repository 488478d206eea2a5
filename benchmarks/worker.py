"""One benchmark measurement in a fresh process: ``python benchmarks/worker.py FRAMEWORK WORKLOAD``.

Prints one line ``RESULT {json}``: step times (s), the first step's time, the time from process start
to the end of the first step (cold/warm start), and for gemm NumPy's own matmul time.
"""
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = {"numpy": "numpy_impl", "torch": "torch_impl", "staticgraph": "sg_impl"}


def time_steps(step, min_time: float, min_steps: int, max_steps: int) -> list:
    """Time ``step()`` until ``min_time`` seconds and ``min_steps`` steps have passed."""
    times = []
    while (len(times) < min_steps or sum(times) < min_time) and len(times) < max_steps:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("framework", choices=sorted(MODULES))
    ap.add_argument("workload")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-steps", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--first-step-only", action="store_true")
    args = ap.parse_args()
    sys.path[:0] = [HERE, os.path.dirname(HERE)]
    module = importlib.import_module(MODULES[args.framework])
    step, info = module.BUILDERS[args.workload]()
    t = time.perf_counter()
    step()
    end_first = time.perf_counter()
    result = {"framework": args.framework, "workload": args.workload, "first_step_s": end_first - t,
              "to_first_step_s": end_first - T_START}
    if args.first_step_only and hasattr(step, "wait"):     # staticgraph warming up: when is native ready?
        step.wait()
        result["to_native_s"] = time.perf_counter() - T_START
    if not args.first_step_only:
        time_steps(step, 0.0, 2, 2)                                  # warm-up
        result["times"] = time_steps(step, args.min_time, args.min_steps, args.max_steps)
        result["flops"] = info.get("flops")
        if "matmul" in info:
            mm = time_steps(info["matmul"], args.min_time / 2, args.min_steps, args.max_steps)
            result["matmul_gflops"] = info["matmul_flops"] / statistics.median(mm) / 1e9
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
