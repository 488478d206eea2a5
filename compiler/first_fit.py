"""First-fit allocation over one arena's free blocks in O(log n) per request (``memory.plan_memory``).

The free memory is a set of maximal blocks ``[start, start + length)``, the last one unbounded.
``take(size)`` returns the lowest start of a block at least ``size`` long (first fit) and shrinks
that block; ``give(offset, size)`` frees a range and merges it with the free blocks that touch it.
The blocks live in a treap ordered by start, each node holding the longest block in its subtree,
so the first fit is one walk down the tree; the blocks that touch a freed range are found by
their start and end in two dicts. Taking from a block's front or merging into a neighbour never
changes the blocks' order, so those update a node in place and re-derive its ancestors' maxima.
"""
from __future__ import annotations

import random
from typing import Dict, List, Optional, Tuple

UNBOUNDED = float("inf")


class _Node:
    __slots__ = ("start", "length", "longest", "prio", "left", "right")

    def __init__(self, start: int, length: float, prio: float):
        self.start, self.length, self.longest, self.prio = start, length, length, prio
        self.left: Optional[_Node] = None
        self.right: Optional[_Node] = None


def _pull(t: _Node) -> None:
    longest = t.length
    if t.left is not None and t.left.longest > longest:
        longest = t.left.longest
    if t.right is not None and t.right.longest > longest:
        longest = t.right.longest
    t.longest = longest


def _split(t: Optional[_Node], key: int) -> Tuple[Optional[_Node], Optional[_Node]]:
    """(nodes with start < key, nodes with start >= key)."""
    if t is None:
        return None, None
    if t.start < key:
        t.right, rest = _split(t.right, key)
        _pull(t)
        return t, rest
    rest, t.left = _split(t.left, key)
    _pull(t)
    return rest, t


def _merge(a: Optional[_Node], b: Optional[_Node]) -> Optional[_Node]:
    """Join two treaps, every start of ``a`` below every start of ``b``."""
    if a is None:
        return b
    if b is None:
        return a
    if a.prio > b.prio:
        a.right = _merge(a.right, b)
        _pull(a)
        return a
    b.left = _merge(a, b.left)
    _pull(b)
    return b


class FreeBlocks:
    """The free blocks of one arena, all of it free at first."""

    def __init__(self):
        self._rng = random.Random(0)        # treap priorities: the tree's shape, never the answers
        self._root: Optional[_Node] = None
        self._by_start: Dict[int, _Node] = {}
        self._by_end: Dict[int, _Node] = {}   # bounded blocks only
        self._insert(0, UNBOUNDED)

    def take(self, size: int) -> int:
        """The lowest offset of ``size`` free elements (first fit), now in use."""
        path = []
        t = self._root
        while True:
            path.append(t)
            if t.left is not None and t.left.longest >= size:
                t = t.left
            elif t.length >= size:
                break
            else:
                t = t.right
        offset = t.start
        if t.length == size:
            self._remove(t)
            return offset
        del self._by_start[offset]
        t.start, t.length = offset + size, t.length - size      # still between its neighbours
        self._by_start[t.start] = t
        self._repull(path)
        return offset

    def give(self, offset: int, size: int) -> None:
        """Free ``[offset, offset + size)`` (in use until now), merged with the blocks it touches."""
        before, after = self._by_end.get(offset), self._by_start.get(offset + size)
        if before is not None:
            if after is not None:
                self._remove(after)
                size += after.length
            del self._by_end[offset]
            before.length += size
            if before.length != UNBOUNDED:
                self._by_end[before.start + before.length] = before
            self._repull(self._path(before.start))
        elif after is not None:
            del self._by_start[after.start]
            after.start, after.length = offset, after.length + size
            self._by_start[offset] = after
            self._repull(self._path(offset))
        else:
            self._insert(offset, size)

    def blocks(self) -> List[Tuple[int, float]]:
        """``(start, length)`` of every free block, by start (for tests)."""
        return sorted((s, t.length) for s, t in self._by_start.items())

    # -- the treap ---------------------------------------------------------------------------
    def _path(self, start: int) -> List[_Node]:
        path, t = [], self._root
        while t.start != start:
            path.append(t)
            t = t.left if start < t.start else t.right
        path.append(t)
        return path

    @staticmethod
    def _repull(path: List[_Node]) -> None:
        for t in reversed(path):
            _pull(t)

    def _insert(self, start: int, length: float) -> None:
        node = _Node(start, length, self._rng.random())
        below, above = _split(self._root, start)
        self._root = _merge(_merge(below, node), above)
        self._by_start[start] = node
        if length != UNBOUNDED:
            self._by_end[start + length] = node

    def _remove(self, node: _Node) -> None:
        below, rest = _split(self._root, node.start)
        _, above = _split(rest, node.start + 1)
        self._root = _merge(below, above)
        del self._by_start[node.start]
        if node.length != UNBOUNDED:
            del self._by_end[node.start + node.length]
