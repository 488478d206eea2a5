"""``sg.gradients``: the symbolic gradient of ``ys`` with respect to ``xs``, as graph tensors."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

from .tensor import Tensor

Tensors = Union[Tensor, Sequence[Tensor]]


def _as_list(ts) -> list:
    if ts is None:
        return []
    return list(ts) if isinstance(ts, (list, tuple)) else [ts]


def gradients(ys: Tensors, xs: Tensors, grad_ys=None, stop_gradients: Optional[Tensors] = None) \
        -> List[Optional[Tensor]]:
    """Gradients of ``sum(ys)`` w.r.t. each of ``xs``: a list aligned with ``xs`` (``None`` where
    ``ys`` does not depend on an x). The results are graph tensors: fetch them, use them in
    further ops, or differentiate them again."""
    from compiler.autodiff import gradients as _gradients
    from compiler.gc_pause import gc_paused
    ys_l, xs_l = _as_list(ys), _as_list(xs)
    gys = None if grad_ys is None else _as_list(grad_ys)
    if gys is not None and len(gys) != len(ys_l):
        raise ValueError(f"grad_ys has {len(gys)} entries for {len(ys_l)} ys")
    if not ys_l or not xs_l:
        raise ValueError("gradients needs at least one y and one x")
    with gc_paused():         # a few objects per op: see compiler/gc_pause.py
        return _gradients(ys_l, xs_l, gys, _as_list(stop_gradients))
