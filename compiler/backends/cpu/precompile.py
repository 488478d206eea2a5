"""A kernel-compile worker: ``python -m compiler.backends.cpu.precompile SHARE.json [--parallel]``.

Compiles (or finds cached) the step loop and each wrapper source listed in the JSON file into the
plan cache (``STATICGRAPH_CACHE_DIR``), so that the process that started it only has to load them.
It deletes the JSON file once read (a detached worker outlives the process that wrote it).

Started by ``native.compile_in_workers`` (several at once, for ``precompile`` and ``python -m
staticgraph cache warm``: with ``--queue DIR --order I,J,...`` each pulls wrapper sources (and the
step loop's) from one queue folder in its own order, ``drain``) and, with ``--parallel``, by ``native.compile_detached`` at a
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
from typing import List


def main(path: str, parallel: bool = False, step_loop: bool = True) -> None:
    """Compile the sources of the JSON file ``path`` (after the step loop, with ``step_loop``: a
    queue worker compiles it after its queue, ``drain``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for the program that started it
    from compiler.backends.cpu import library, native
    with open(path) as f:
        sources = json.load(f)
    os.unlink(path)
    library.load()      # the wrappers import their kernels from it by module name
    if step_loop:
        native.runtime()
    if parallel:
        native.precompile(sources)
    for source in sources:
        native.wrapper_address(source)


def drain(queue: str, order: List[int]) -> None:
    """Compile the queue's items (files ``<i>.todo`` holding a wrapper source, or the step loop's:
    ``native.RUNTIME_SOURCE``) in ``order``, each one claimed first by renaming it (atomic: another
    worker's rename of the same item fails), deleted once compiled; the last worker to find the
    queue empty removes its folder."""
    from compiler.backends.cpu import native
    mine = f".{os.getpid()}"
    for i in order:
        todo = os.path.join(queue, f"{i}.todo")
        try:
            os.rename(todo, todo + mine)
        except FileNotFoundError:        # taken by another worker
            continue
        with open(todo + mine) as f:
            source = f.read()
        if source == native.RUNTIME_SOURCE:     # the step loop (``compile_in_workers`` queues it if missing)
            native.runtime()
        else:
            native.wrapper_address(source)
        os.unlink(todo + mine)
    try:
        os.rmdir(queue)
    except OSError:                      # others still compiling their claimed items
        pass


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--queue" in args:
        queue, order = args[args.index("--queue") + 1], args[args.index("--order") + 1]
        main(args[0], step_loop=False)
        drain(queue, [int(i) for i in order.split(",")])
    else:
        main(args[0], "--parallel" in args[1:])
