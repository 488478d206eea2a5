"""``gc_paused()``: no cyclic garbage collection while a plan is built.

Compiling a graph allocates a few objects per op (private graph copies, lowered calls, records)
and drops graph copies that hold reference cycles. Each full collection Python starts meanwhile
walks every object the process holds, the user's graph included, so a large graph paid for its
own size again and again (about half of ``compile()`` and of the first run of a 40,000-op
graph). The garbage of a build is collected after it, in the collections that follow.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_LOCK = threading.Lock()
_DEPTH = [0]            # builds in progress, all threads together
_RESUME = [False]       # whether the collector was enabled when the first of them began


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested and concurrent blocks: until the last ends);
    a collector the user disabled stays disabled."""
    with _LOCK:
        if _DEPTH[0] == 0:
            _RESUME[0] = gc.isenabled()
            gc.disable()
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0 and _RESUME[0]:
                gc.enable()
