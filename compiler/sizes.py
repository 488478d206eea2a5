"""Element counts and byte sizes of buffers, computed with Python integers and checked.

NumPy's ``np.prod(shape, dtype=np.int64)`` wraps silently (a one-hot of depth 2**62 "needs" 16
elements, and the kernels then write past them), and a size beyond a C long is a bare
``OverflowError``. Every place that sizes a buffer (variables' storage, the planner's buffers and
arenas, the cpu backend's arrays) goes through these instead: a count beyond int64 is an
``InvalidArgumentError``, a size beyond this machine's memory a ``ResourceExhaustedError``,
both naming what was being sized and its shape.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Iterable, Optional

import numpy as np

from staticgraph.errors import InvalidArgumentError, ResourceExhaustedError

INT64_MAX = 2 ** 63 - 1


@functools.lru_cache(maxsize=None)
def memory_bytes() -> int:
    """The memory this process may use (bytes): the machine's physical memory, or its cgroup's
    limit (a container's) if lower; no buffer of a run can be larger. Where the OS does not say,
    int64's limit."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):   # pragma: no cover - not POSIX
        limit = INT64_MAX
    try:
        with open("/sys/fs/cgroup/memory.max") as f:      # cgroup v2; "max" when unlimited
            text = f.read().strip()
        if text.isdigit():
            limit = min(limit, int(text))
    except OSError:
        pass
    return limit


def num_elements(shape: Iterable[int], what: str, op: Optional[Any] = None) -> int:
    """The element count of ``shape`` (exact); an InvalidArgumentError naming ``what`` beyond int64."""
    shape = tuple(int(d) for d in shape)
    n = nonzero = 1
    for d in shape:
        n *= d
        nonzero *= d or 1      # records multiply subsets of the dims: none may wrap, even when one is 0
    if nonzero > INT64_MAX:
        raise InvalidArgumentError(f"{what} of shape {shape} would have {nonzero} elements, more than "
                                   f"an int64 can count", op)
    return n


def checked_size(shape: Iterable[int], dtype, what: str, op: Optional[Any] = None) -> int:
    """``num_elements(shape)``, after checking that the buffer fits this machine's memory
    (``ResourceExhaustedError`` naming ``what``, its shape, dtype and bytes otherwise)."""
    shape = tuple(int(d) for d in shape)
    n = num_elements(shape, what, op)
    check_bytes(n * np.dtype(dtype).itemsize, f"{what} of shape {shape} ({np.dtype(dtype).name})", op)
    return n


def check_bytes(nbytes: int, what: str, op: Optional[Any] = None) -> int:
    """``nbytes`` if this machine's memory can hold it, else a ResourceExhaustedError naming ``what``."""
    limit = memory_bytes()
    if nbytes > limit:
        raise ResourceExhaustedError(f"{what} needs {nbytes} bytes ({nbytes / 2**30:.4g} GiB), more than "
                                     f"this machine's memory ({limit / 2**30:.4g} GiB)", op)
    return nbytes
