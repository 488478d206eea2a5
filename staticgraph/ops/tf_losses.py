"""TF1's per-sample losses on logits, composed from existing ops (so first and second derivatives,
to ``labels`` too, come from the ops' own gradient rules):

- ``softmax_cross_entropy_with_logits(labels, logits, axis=-1)``: ``-sum(labels * log_softmax(logits))``
  over ``axis`` (TF's v2 op: the gradient flows to ``labels`` as well);
- ``sparse_softmax_cross_entropy_with_logits(labels, logits)``: integer class ``labels``;
- ``sigmoid_cross_entropy_with_logits(labels, logits)``: ``softplus(x) - x * z`` elementwise.

Each is numerically stable for any logits (the log-softmax is max-shifted; the softplus is the
log-softmax of ``[0, x]``, exact in value and derivatives at every ``x``, 0 included). Re-exported
from ``sg.nn`` under the same names.
"""
from __future__ import annotations

from typing import Optional

from .. import dtypes
from ..shapes import compatible, fmt, normalize_axes
from ..tensor import Tensor
from .array import stack, transpose, zeros_like
from .core import TensorLike, as_tensor, operands
from .losses import log_softmax as _log_softmax, nll_loss
from .reduce import reduce_sum


def _float_pair(fn: str, labels: TensorLike, logits: TensorLike):
    """``labels`` and ``logits`` as floating tensors of one dtype and compatible static shapes."""
    logits = as_tensor(logits)
    for what, t in (("labels", labels), ("logits", logits)):
        if isinstance(t, Tensor) and not dtypes.is_floating(t.dtype):
            hint = ("; for integer class indices use sparse_softmax_cross_entropy_with_logits"
                    if what == "labels" and fn.startswith("softmax") else "")
            raise TypeError(f"{fn}: {what} '{t.name}' must be floating point, got {t.dtype.name}{hint}")
    labels, logits = operands(labels, logits, op_name=fn)
    if not compatible(labels.shape, logits.shape):
        raise ValueError(f"{fn}: labels '{labels.name}' of shape {fmt(labels.shape)} and logits "
                         f"'{logits.name}' of shape {fmt(logits.shape)} must have the same shape")
    return labels, logits


def softmax_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike, axis: int = -1,
                                      name: Optional[str] = None) -> Tensor:
    """Per-sample cross entropy between the distributions ``labels`` and ``softmax(logits)`` along
    ``axis`` (the result drops that axis). Differentiable in both arguments."""
    fn = "softmax_cross_entropy_with_logits"
    labels, logits = _float_pair(fn, labels, logits)
    if logits.ndim is None:
        raise ValueError(f"{fn}: logits '{logits.name}' must have a known rank")
    (axis,) = normalize_axes(axis, logits.ndim)
    with logits.graph.name_scope(name or fn):
        return -reduce_sum(labels * _log_softmax(logits, axis), axis)


def sparse_softmax_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike,
                                             name: Optional[str] = None) -> Tensor:
    """Per-sample cross entropy of integer class ``labels`` (shape ``logits.shape[:-1]``, values in
    ``[0, num_classes)``) under ``softmax(logits)`` on the last axis. A label out of range gives
    ``nan`` for its sample (as TensorFlow on GPU)."""
    fn = "sparse_softmax_cross_entropy_with_logits"
    logits = as_tensor(logits)
    with logits.graph.as_default():
        labels = as_tensor(labels)
    if not dtypes.is_floating(logits.dtype):
        raise TypeError(f"{fn}: logits '{logits.name}' must be floating point, got {logits.dtype.name}")
    if not dtypes.is_integer(labels.dtype):
        raise TypeError(f"{fn}: labels '{labels.name}' must be integer class indices, got "
                        f"{labels.dtype.name}; for class probabilities use softmax_cross_entropy_with_logits")
    if logits.ndim is None or logits.ndim == 0 or logits.shape[-1] is None:
        raise ValueError(f"{fn}: logits '{logits.name}' of shape {fmt(logits.shape)} need a known rank >= 1 "
                         f"and a known number of classes (last dimension)")
    if not compatible(labels.shape, logits.shape[:-1]):
        raise ValueError(f"{fn}: labels '{labels.name}' of shape {fmt(labels.shape)} must have the shape of "
                         f"logits '{logits.name}' {fmt(logits.shape)} without its last dimension, "
                         f"{fmt(logits.shape[:-1])}")
    with logits.graph.name_scope(name or fn):
        rank = logits.ndim
        if rank > 2:                        # TF's classes are the last axis; nll_loss's are axis 1
            logits = transpose(logits, (0, rank - 1) + tuple(range(1, rank - 1)))
        log_probs = _log_softmax(logits, 1 if rank > 1 else 0)
        return nll_loss(log_probs, labels, reduction="none")


def sigmoid_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike,
                                      name: Optional[str] = None) -> Tensor:
    """Elementwise ``-z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x))`` for labels ``z`` and logits
    ``x`` of the same shape, computed stably as ``softplus(x) - x z``."""
    fn = "sigmoid_cross_entropy_with_logits"
    labels, logits = _float_pair(fn, labels, logits)
    with logits.graph.name_scope(name or fn):
        softplus = -_log_softmax(stack([logits, zeros_like(logits)], axis=0), 0)[1]
        return softplus - logits * labels
