"""A kernel-compile worker: ``python -m compiler.backends.cpu.precompile SHARE.json``.

Compiles (or finds cached) each wrapper source listed in the JSON file into the plan cache
(``STATICGRAPH_CACHE_DIR``), so that the process that started it (``native.precompile``) only
has to load them. Several workers run at once on a machine with several cores.
"""
import json
import sys


def main(path: str) -> None:
    from compiler.backends.cpu import library, native
    library.load()      # the wrappers import their kernels from it by module name
    with open(path) as f:
        sources = json.load(f)
    for source in sources:
        native.wrapper_address(source)


if __name__ == "__main__":
    main(sys.argv[1])
