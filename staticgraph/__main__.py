"""Command line: ``python -m staticgraph cache info`` / ``python -m staticgraph cache clear``.

Both exit 0 also when the cache folder is empty or missing; ``clear`` removes only the folders the
library made below the root (``plans/``, ``kernels/``), never the root or other files in it.
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m staticgraph",
                                     description=f"staticgraph tools (cache folder: ${ENV_VAR} "
                                                 f"or ~/.cache/staticgraph)")
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="inspect or empty the compile cache")
    cache.add_argument("action", choices=["info", "clear"])
    args = parser.parse_args(argv)

    plans = PlanCache()
    if args.action == "info":
        _print_info(plans.info())
    else:
        before = plans.clear()
        print(f"cleared {before['path']}: removed {before['entries']} plan entries, "
              f"{before['kernel_files']} kernel files, {_size(before['bytes'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
