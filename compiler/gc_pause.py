"""``gc_paused()``: no full garbage collection while a plan is built.

Compiling a graph allocates a few objects per op (private graph copies, lowered calls, records)
and drops graph copies that hold reference cycles. Each full collection Python starts meanwhile
walks every object the process holds, the user's graph included, so a large graph paid for its
own size again and again (about half of ``compile()`` and of the first run of a 40,000-op
graph). Inside the block only the young generations are collected (their cost is the young
objects', and they still free the cyclic garbage of what runs inside, a kernel compile's
included); the next full collection comes after it.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_LOCK = threading.Lock()
_DEPTH = [0]            # builds in progress, all threads together
_SAVED = [None]         # the collector's thresholds when the first of them began
NO_FULL = 1 << 30       # a third threshold that is never reached


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No full collection during the block (nested and concurrent blocks: until the last ends);
    the user's own thresholds (or a disabled collector) are restored after it."""
    with _LOCK:
        if _DEPTH[0] == 0:
            _SAVED[0] = gc.get_threshold()
            young, middle, _ = _SAVED[0]
            gc.set_threshold(young, middle, NO_FULL)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                gc.set_threshold(*_SAVED[0])
