"""Static-shape rules: NumPy broadcasting with unknown (``None``) dimensions, axes, compatibility."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple

Shape = Optional[Tuple[Optional[int], ...]]


def fmt(shape: Shape) -> str:
    """Human form of a static shape: ``(None, 3)``, ``<unknown>``."""
    if shape is None:
        return "<unknown>"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast(*shapes: Shape) -> Shape:
    """The broadcast of static shapes; raises ``ValueError`` naming them when incompatible."""
    if any(s is None for s in shapes):
        return None
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = [s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError("shapes " + " and ".join(fmt(s) for s in shapes) + " cannot be broadcast")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def is_compatible(static: Shape, actual: Sequence[int]) -> bool:
    """Does a concrete shape fit a static shape with unknown dims?"""
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def compatible(a: Shape, b: Shape) -> bool:
    """Can two static shapes describe the same run-time shape (unknown dims match anything)?"""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def normalize_axes(axis, ndim: Optional[int], what: str = "axis") -> Optional[Tuple[int, ...]]:
    """``axis`` (None, int or ints) as sorted non-negative ints; ``None`` means all axes."""
    if axis is None:
        return None if ndim is None else tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int,)) or hasattr(axis, "__index__") else tuple(axis)
    if ndim is None:
        if any(a < 0 for a in axes):
            raise ValueError(f"negative {what} {axis} needs a tensor of known rank")
        return tuple(sorted(set(int(a) for a in axes)))
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{what} {a} is out of range for a tensor of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated {what} in {axis}")
    return tuple(sorted(out))


def reduced(shape: Shape, axes: Optional[Tuple[int, ...]], keepdims: bool) -> Shape:
    """Static shape after reducing ``axes`` (``None`` = all)."""
    if shape is None:
        return () if axes is None and not keepdims else None
    if axes is None:
        axes = tuple(range(len(shape)))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def num_elements(shape: Iterable[Optional[int]]) -> Optional[int]:
    n = 1
    for d in shape:
        if d is None:
            return None
        n *= d
    return n
