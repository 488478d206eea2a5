"""A kernel-compile worker: ``python -m compiler.backends.cpu.precompile SHARE.json [--parallel]``.

Compiles (or finds cached) the step loop and each wrapper source listed in the JSON file into the
plan cache (``STATICGRAPH_CACHE_DIR``), so that the process that started it only has to load them.
It deletes the JSON file once read (a detached worker outlives the process that wrote it).

Started by ``native.compile_in_workers`` (several at once, one share each, for ``precompile`` and
``python -m staticgraph cache warm``) and, with ``--parallel``, by ``native.compile_detached`` at a
process's exit: that one first fans its sources out to worker processes like ``precompile`` does.
Every compile happens inside the cache's ``compiling()`` blocks, so a worker killed at any point
leaves nothing that a later process loads unverified. A worker ignores SIGINT: a Ctrl-C stops the
program that started it, which then exits without waiting while its workers finish the cache.
On purpose, a worker also outlives a SIGKILL of that program (issue 27): it ends once its share
is in the cache, which the next run then loads; its share file is deleted as soon as it is read,
so it leaves nothing in the temp folder (unless killed itself before reading it: one small JSON
file, ``staticgraph-compile-*.json``).
"""
import json
import os
import signal
import sys


def main(path: str, parallel: bool = False) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for the program that started it
    from compiler.backends.cpu import library, native
    with open(path) as f:
        sources = json.load(f)
    os.unlink(path)
    library.load()      # the wrappers import their kernels from it by module name
    native.runtime()
    if parallel:
        native.precompile(sources)
    for source in sources:
        native.wrapper_address(source)


if __name__ == "__main__":
    main(sys.argv[1], "--parallel" in sys.argv[2:])
