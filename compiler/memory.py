"""Buffer planning: liveness intervals -> offsets in one arena per dtype, with reuse and in-place.

Time is the position of a kernel call in the step (0: plan entry, where feeds,
constants and host values are written). A buffer is live from the call that
defines it to its last use (inclusive); fetched buffers live to the end. Two
buffers may share memory iff their intervals do not overlap. A buffer may also
take over an input's memory in place when the call that defines it is an
elementwise kernel reading that input element for element, and the input dies
at that call (its last use), with the same dtype and size.

Placement is greedy first-fit by start time, deterministic (ties by order of
the request list): each buffer takes the lowest offset where it fits beside the
buffers still live at its start (``first_fit.FreeBlocks``: O(log n) a buffer).
``Arena.check()`` verifies that no two live buffers overlap.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Dict, Hashable, List, Sequence, Tuple

import numpy as np

from .first_fit import FreeBlocks

ALIGN = 16  # elements: 64-byte alignment for float32


@dataclass
class Buffer:
    """A request: ``size`` elements of ``dtype`` live over calls ``[start, end]``."""
    key: Hashable
    dtype: np.dtype
    size: int
    start: int
    end: int
    pinned: bool = False     # constants: written once per arena, never reused


@dataclass
class Arena:
    """The plan for one shape signature: ``offsets[key]`` per dtype, ``sizes[dtype]`` in elements."""
    offsets: Dict[Hashable, int] = field(default_factory=dict)
    sizes: Dict[np.dtype, int] = field(default_factory=dict)
    intervals: List[Tuple[np.dtype, int, int, int, int, Tuple[Hashable, ...]]] = field(default_factory=list)
    inplace: List[Tuple[Hashable, Hashable]] = field(default_factory=list)

    @property
    def peak_bytes(self) -> int:
        return sum(n * np.dtype(dt).itemsize for dt, n in self.sizes.items())

    def check(self) -> None:
        """Assert that no two buffers overlap in both time and memory."""
        by_dtype: Dict[np.dtype, list] = {}
        for iv in self.intervals:
            by_dtype.setdefault(iv[0], []).append(iv)
        for ivs in by_dtype.values():
            for i, (_, o1, n1, s1, e1, k1) in enumerate(ivs):
                for (_, o2, n2, s2, e2, k2) in ivs[i + 1:]:
                    if s1 <= e2 and s2 <= e1 and o1 < o2 + n2 and o2 < o1 + n1:
                        raise AssertionError(f"buffers {k1} and {k2} overlap")


def _aligned(n: int) -> int:
    return max((n + ALIGN - 1) // ALIGN * ALIGN, ALIGN)


def group_inplace(buffers: Sequence[Buffer], inplace: Sequence[Tuple[Hashable, Hashable, int]]):
    """The in-place candidates taken, as groups sharing one placement: ``(span, members, taken)``
    with ``span[leader] = [start, end]`` of each group (pinned buffers: the whole step),
    ``members[leader]`` its keys, and ``taken`` the ``(out_key, in_key)`` pairs. A candidate is
    taken when the output starts at the call where its input's group ends, with the same dtype and
    size, neither pinned and the output not in a group yet."""
    by_key = {b.key: b for b in buffers}
    group: Dict[Hashable, Hashable] = {b.key: b.key for b in buffers}    # key -> group leader
    members: Dict[Hashable, List[Hashable]] = {b.key: [b.key] for b in buffers}
    span = {b.key: ([-1, 1 << 62] if b.pinned else [b.start, b.end]) for b in buffers}
    taken: List[Tuple[Hashable, Hashable]] = []
    for out_key, in_key, call in inplace:
        out, src = by_key.get(out_key), by_key.get(in_key)
        if out is None or src is None or src.pinned or out.pinned or group[out_key] != out_key:
            continue
        lead = group[in_key]
        if (src.dtype != out.dtype or src.size != out.size or span[lead][1] != call or out.start != call
                or lead == out_key):
            continue
        span[lead][1] = max(span[lead][1], out.end)
        members[lead] += members.pop(out_key)
        group[out_key] = lead
        del span[out_key]
        taken.append((out_key, in_key))
    return span, members, taken


def plan_memory(buffers: Sequence[Buffer], inplace: Sequence[Tuple[Hashable, Hashable, int]] = ()) -> Arena:
    """Place ``buffers``; ``inplace`` lists ``(out_key, in_key, call)`` candidates (taken when safe)."""
    by_key = {b.key: b for b in buffers}
    span, members, taken = group_inplace(buffers, inplace)
    arena = Arena()
    arena.inplace.extend(taken)
    leaders = list(span)
    order = {b.key: i for i, b in enumerate(buffers)}
    leaders.sort(key=lambda k: (span[k][0], order[k]))
    free: Dict[np.dtype, FreeBlocks] = {}
    live: Dict[np.dtype, List[Tuple[int, int, int]]] = {}   # dtype -> heap of (end, offset, size)
    for lead in leaders:
        b = by_key[lead]
        start, end = span[lead]
        size = _aligned(max(by_key[k].size for k in members[lead]))
        blocks, ending = free.setdefault(b.dtype, FreeBlocks()), live.setdefault(b.dtype, [])
        while ending and ending[0][0] < start:      # buffers dead before this one starts
            _, o, n = heapq.heappop(ending)
            blocks.give(o, n)
        off = blocks.take(size)
        heapq.heappush(ending, (end, off, size))
        arena.sizes[b.dtype] = max(arena.sizes.get(b.dtype, 0), off + size)
        for k in members[lead]:
            arena.offsets[k] = off
        arena.intervals.append((b.dtype, off, size, start, end, tuple(members[lead])))
    return arena
