"""Flatten and rebuild nested fetch structures (list / tuple / dict / namedtuple)."""
from __future__ import annotations

from typing import Any, Callable, List, Tuple


def flatten(structure: Any, is_leaf: Callable[[Any], bool]) -> Tuple[List[Any], Callable[[List[Any]], Any]]:
    """Return the leaves of ``structure`` (depth-first, dicts in key order) and a function that
    rebuilds the same structure from a list of replacement leaves."""
    leaves: List[Any] = []

    def walk(s):
        if is_leaf(s):
            leaves.append(s)
            return None
        if isinstance(s, dict):
            return ("dict", type(s), [(k, walk(v)) for k, v in s.items()])
        if isinstance(s, tuple) and hasattr(s, "_fields"):
            return ("namedtuple", type(s), [walk(v) for v in s])
        if isinstance(s, (list, tuple)):
            return ("seq", type(s), [walk(v) for v in s])
        raise TypeError(f"cannot fetch {s!r}: fetches are Tensors, Operations, or lists, tuples, dicts "
                        f"and namedtuples of them")

    tree = walk(structure)
    if tree is None:                       # a single leaf
        return leaves, _first
    kind, typ, children = tree
    if kind == "seq" and typ in (list, tuple) and all(c is None for c in children):
        return leaves, typ                 # a flat list or tuple of leaves (the common case: no walk)

    def pack(values: List[Any]) -> Any:
        return _build(tree, iter(values))

    return leaves, pack


def _first(values: List[Any]) -> Any:
    return values[0]


def _build(node: Any, it) -> Any:
    """``node`` of a flattened structure with its leaves taken from ``it``. A module-level function,
    not a closure over itself: such a closure is a reference cycle that would keep the fetched
    arrays alive until the garbage collector runs (a step then allocates its fetches afresh)."""
    if node is None:
        return next(it)
    kind, typ, children = node
    if kind == "dict":
        out = {k: _build(c, it) for k, c in children}
        return out if typ is dict else typ(out)
    if kind == "namedtuple":
        return typ(*[_build(c, it) for c in children])
    return typ(_build(c, it) for c in children)
