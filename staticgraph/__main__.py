"""Command line: ``python -m staticgraph cache info|clear|warm``.

``info`` and ``clear`` exit 0 also when the cache folder is empty or missing; ``clear`` removes only
the folders the library made below the root (``plans/``, ``kernels/``), never the root or other
files in it. ``warm`` compiles the kernel library (``staticgraph/warm.py``: the kernel wrappers of
representative float32 plans) into the cache ahead of time, for CI images, containers or a
cluster's shared cache, in worker processes, with a progress bar; it exits 1 if a kernel failed.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from compiler.cache import ENV_VAR, PlanCache


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _print_info(info: dict) -> None:
    state = "" if info["exists"] else " (missing)"
    print(f"cache folder: {info['path']}{state}")
    print(f"plan entries: {info['entries']}")
    print(f"kernel files: {info['kernel_files']}")
    print(f"size: {_size(info['bytes'])} ({info['bytes']} bytes)")
    if info["temp"]:
        print(f"stray temp folders: {info['temp']} (left by interrupted writers; `cache clear` removes them)")


def _names(text: str) -> list:
    return [n.strip() for n in text.split(",") if n.strip()]


def _warm(args: argparse.Namespace) -> int:
    """``cache warm``: list or compile the kernel library (``--plans``, ``--only`` narrow it)."""
    from compiler.backends.cpu import native
    from . import warm
    if not native.enabled():
        raise SystemExit("cache warm: NUMBA_DISABLE_JIT=1 is set, so nothing is compiled")
    unknown = sorted(set(args.plans) - set(warm.PLANS))
    if unknown:
        raise SystemExit(f"cache warm: unknown plans {unknown}; choose from {sorted(warm.PLANS)}")
    keys = warm.library_keys(args.plans, args.only)
    if not keys:
        raise SystemExit(f"cache warm: no kernel of the plans {args.plans} is named {args.only}")
    if args.list:
        for key in keys:
            print(f"{warm.title(key):<64} {'cached' if warm.is_cached(key) else 'missing'}")
        return 0
    from tqdm import tqdm
    args.jobs = args.jobs or max(1, native.compile_workers())
    print(f"cache folder: {PlanCache().root}")
    print(f"kernel library: {len(keys)} kernels of {', '.join(args.plans)}; {args.jobs} worker processes")
    done = warm.warm(keys, args.jobs, bar=lambda total: tqdm(total=total, desc="compiling kernels",
                                                              unit="kernel", file=sys.stderr))
    print(f"compiled {done['compiled']}, already cached {done['cached']}, failed {len(done['failed'])} "
          f"in {done['seconds']:.1f} s" + "".join(f"\n  failed: {t}" for t in done["failed"]))
    return 1 if done["failed"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m staticgraph",
                                     description=f"staticgraph tools (cache folder: ${ENV_VAR} "
                                                 f"or ~/.cache/staticgraph)")
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="inspect, empty or fill the compile cache")
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser("info", help="where the cache is, what it holds")
    actions.add_parser("clear", help="remove every plan entry and kernel file")
    warm = actions.add_parser("warm", help="compile the kernel library ahead of time (staticgraph/warm.py)")
    warm.add_argument("--jobs", "-j", type=int,
                      help="worker processes compiling at once (default: STATICGRAPH_COMPILE_WORKERS, "
                           "else the CPU count, at most 8)")
    warm.add_argument("--plans", type=_names, default="convnet,lenet,mlp,common",
                      help="representative plans whose kernels to compile (default: all of "
                           "convnet,lenet,mlp,common)")
    warm.add_argument("--only", type=_names, metavar="KERNELS",
                      help="only these kernel names, e.g. ew_Add,ew_Mul (see --list)")
    warm.add_argument("--list", action="store_true", help="list the kernels and whether they are cached")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    plans = PlanCache()
    if args.action == "info":
        _print_info(plans.info())
    elif args.action == "clear":
        before = plans.clear()
        print(f"cleared {before['path']}: removed {before['entries']} plan entries, "
              f"{before['kernel_files']} kernel files, {_size(before['bytes'])}")
    elif args.jobs is not None and args.jobs < 1:
        raise SystemExit("cache warm: --jobs must be at least 1")
    else:
        return _warm(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
