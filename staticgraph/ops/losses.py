"""softmax / log_softmax, the negative-log-likelihood gather (and its scatter adjoint), and the
losses built on them: ``mse_loss``, ``nll_loss``, ``cross_entropy`` (PyTorch semantics).

Softmax and LogSoftmax are max-shifted per row (a row's NaN or huge logits never touch the other
rows). ``NllLoss`` is the unreduced per-sample loss ``-log_probs[n, labels[n], ...]``; its gradient is
``NllLossGrad``, a scatter of ``-g`` at the labels, whose own gradient is ``NllLoss`` again, so every
order of derivative is available. Reductions are ordinary ``reduce_mean``/``reduce_sum`` ops.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from .. import dtypes
from ..shapes import compatible, fmt, normalize_axes
from ..tensor import Tensor
from .core import TensorLike, as_tensor, builder, const_value, def_op, make, operands
from .math import exp, square, subtract
from .reduce import reduce_mean, reduce_sum

REDUCTIONS = ("mean", "sum", "none")
LABEL_DTYPES = (dtypes.int32, dtypes.int64)


# -- softmax / log_softmax ----------------------------------------------------------------------

def _float_infer(type_: str):
    def infer(x, axis):
        if not dtypes.is_floating(x.dtype):
            raise TypeError(f"{type_} needs a floating point input, got '{x.name}' of dtype {x.dtype.name}")
        return x.shape, x.dtype
    return infer


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` minus its max along ``axis`` (float64 for float32 input, so the result rounds once)."""
    z = x.astype(np.float64) if x.dtype == np.float32 else x
    return z - np.max(z, axis=axis, keepdims=True, initial=-np.inf)


def _softmax_reference(x, axis):
    e = np.exp(_shifted(x, axis))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def _log_softmax_reference(x, axis):
    s = _shifted(x, axis)
    return (s - np.log(np.exp(s).sum(axis=axis, keepdims=True))).astype(x.dtype, copy=False)


def _softmax_grad(op, g):
    y, axis = op.outputs[0], op.attrs["axis"]
    return [y * (g - reduce_sum(g * y, axis, keepdims=True))]


def _log_softmax_grad(op, g):
    out, axis = op.outputs[0], op.attrs["axis"]
    return [g - exp(out) * reduce_sum(g, axis, keepdims=True)]


def_op("Softmax", _float_infer("softmax"), _softmax_reference, _softmax_grad, default_name="softmax")
def_op("LogSoftmax", _float_infer("log_softmax"), _log_softmax_reference, _log_softmax_grad,
       default_name="log_softmax")


def _axis_of(x: Tensor, axis, dim, what: str) -> int:
    """The normalised softmax axis; ``dim`` is PyTorch's name for it."""
    if dim is not None:
        if axis not in (-1, None, dim):
            raise TypeError(f"{what}: got both axis={axis} and dim={dim}")
        axis = dim
    if axis is None:
        axis = -1
    try:
        (a,) = normalize_axes(int(axis), x.ndim)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc} (tensor '{x.name}' of shape {fmt(x.shape)})") from None
    return a


@builder("softmax")
def softmax(x: TensorLike, axis: int = -1, name: Optional[str] = None, *, dim: Optional[int] = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis`` (``dim`` is accepted as PyTorch's alias), max-shifted."""
    x = as_tensor(x)
    return make("Softmax", [x], name=name, axis=_axis_of(x, axis, dim, "softmax"))


@builder("log_softmax")
def log_softmax(x: TensorLike, axis: int = -1, name: Optional[str] = None, *,
                dim: Optional[int] = None) -> Tensor:
    """``x - logsumexp(x)`` along ``axis`` (``dim`` is accepted as PyTorch's alias), max-shifted."""
    x = as_tensor(x)
    return make("LogSoftmax", [x], name=name, axis=_axis_of(x, axis, dim, "log_softmax"))


# -- negative log-likelihood: gather by labels, and its scatter adjoint ------------------------------

def _class_axis(ndim: int) -> int:
    """PyTorch's layout: (C,) unbatched, else (N, C, d1, ...) with classes on axis 1."""
    return 0 if ndim == 1 else 1


def _per_sample_shape(shape):
    """The labels' (and unreduced loss's) shape for log-probabilities of ``shape``."""
    ax = _class_axis(len(shape))
    return shape[:ax] + shape[ax + 1:]


def _merge(a, b):
    return tuple(x if x is not None else y for x, y in zip(a, b))


def _nll_infer(logp, labels, labels_name=""):
    if not dtypes.is_floating(logp.dtype):
        raise TypeError(f"log-probabilities '{logp.name}' must be floating point, got {logp.dtype.name}")
    if labels.dtype not in LABEL_DTYPES:
        raise TypeError(f"labels '{labels.name}' must be int32 or int64 class indices, got {labels.dtype.name}")
    if logp.shape is None:
        return labels.shape, logp.dtype
    if len(logp.shape) == 0:
        raise ValueError(f"log-probabilities '{logp.name}' must have a class axis, got a scalar")
    expected = _per_sample_shape(logp.shape)
    if not compatible(expected, labels.shape):
        raise ValueError(f"labels '{labels.name}' of shape {fmt(labels.shape)} do not fit '{logp.name}' of "
                         f"shape {fmt(logp.shape)}: expected labels of shape {fmt(expected)}")
    return (expected if labels.shape is None else _merge(expected, labels.shape)), logp.dtype


def _check_labels(labels: np.ndarray, logp_shape, labels_name: str) -> np.ndarray:
    """The labels as an index array along the class axis; a ValueError names the labels tensor
    (``labels_name``, recorded when the op was built) and the first bad label."""
    what = f"labels tensor '{labels_name}'" if labels_name else "the labels"
    ax = _class_axis(len(logp_shape))
    expected = tuple(logp_shape[:ax]) + tuple(logp_shape[ax + 1:])
    if labels.shape != expected:
        raise ValueError(f"{what} of shape {labels.shape} does not fit log-probabilities of shape "
                         f"{tuple(logp_shape)}: expected labels of shape {expected}")
    n_classes = logp_shape[ax]
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{what} has label {int(labels[pos])} at position {pos}, outside the class "
                         f"indices [0, {n_classes})")
    return np.expand_dims(labels.astype(np.intp, copy=False), ax)


def _nll_reference(logp, labels, labels_name=""):
    idx = _check_labels(labels, logp.shape, labels_name)
    ax = _class_axis(logp.ndim)
    return np.negative(np.take_along_axis(logp, idx, axis=ax).squeeze(ax))


def _nll_grad_reference(g, labels, ref, labels_name=""):
    idx = _check_labels(labels, ref.shape, labels_name)
    ax = _class_axis(ref.ndim)
    out = np.zeros(ref.shape, dtype=g.dtype)
    np.put_along_axis(out, idx, np.negative(np.expand_dims(g, ax)), axis=ax)
    return out


def _nll_grad_infer(g, labels, ref, labels_name=""):
    return ref.shape, g.dtype


# ``labels_name`` (an attribute of both ops) is the labels tensor's name when the loss was built,
# so a run-time error names the tensor the user fed, whatever op feeds the log-probabilities.
def_op("NllLoss", _nll_infer, _nll_reference,
       lambda op, g: [lambda: make("NllLossGrad", [g, op.inputs[1], op.inputs[0]], **op.attrs), None],
       default_name="nll_loss")
def_op("NllLossGrad", _nll_grad_infer, _nll_grad_reference,
       lambda op, g: [lambda: make("NllLoss", [g, op.inputs[1]], **op.attrs), None, None],
       default_name="nll_loss_grad", value_inputs=(0, 1))


# -- the losses ----------------------------------------------------------------------------------

def _reduce(loss: Tensor, reduction: str, name: Optional[str]) -> Tensor:
    if reduction == "none":
        return loss if name is None else make("Identity", [loss], name=name)
    return (reduce_mean if reduction == "mean" else reduce_sum)(loss, name=name)


def _check_reduction(reduction: str, what: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{what}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {reduction!r}")


def _labels_tensor(labels: TensorLike, scores: Tensor, what: str, role: str) -> Tensor:
    """``labels`` as an int tensor checked against ``scores`` (N, C, ...) at build time where possible;
    errors name ``what`` (the loss), both tensors and their shapes."""
    labels = as_tensor(labels)
    if labels.dtype not in LABEL_DTYPES:
        raise TypeError(f"{what}: labels '{labels.name}' must be int32 or int64 class indices, got "
                        f"{labels.dtype.name}")
    if scores.shape is not None:
        expected = _per_sample_shape(scores.shape)
        if not compatible(expected, labels.shape):
            raise ValueError(f"{what}: labels '{labels.name}' of shape {fmt(labels.shape)} do not fit {role} "
                             f"'{scores.name}' of shape {fmt(scores.shape)}: expected labels of shape "
                             f"{fmt(expected)}")
    value = const_value(labels)
    if value is not None and scores.shape is not None and len(scores.shape) > 0:
        n_classes = scores.shape[_class_axis(len(scores.shape))]
        bad = (value < 0) | (value >= n_classes) if n_classes is not None else value < 0
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{what}: label {int(value[pos])} at position {pos} of labels '{labels.name}' is "
                             f"out of range for '{scores.name}' with {n_classes} classes "
                             f"(class indices lie in [0, {n_classes}))")
    return labels


def _scores_tensor(x: TensorLike, what: str, role: str) -> Tensor:
    x = as_tensor(x)
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{what}: {role} '{x.name}' must be floating point, got {x.dtype.name}")
    if x.ndim == 0:
        raise ValueError(f"{what}: {role} '{x.name}' must have shape (C,) or (N, C, ...), got a scalar")
    return x


@builder("nll_loss")
def nll_loss(log_probs: TensorLike, labels: TensorLike, reduction: str = "mean",
             name: Optional[str] = None) -> Tensor:
    """Negative log-likelihood of integer class ``labels`` under ``log_probs`` of shape (N, C, d1...)
    or (C,); ``reduction`` is ``"mean"`` (over every label), ``"sum"`` or ``"none"`` (shape of labels)."""
    _check_reduction(reduction, "nll_loss")
    logp = _scores_tensor(log_probs, "nll_loss", "log-probabilities")
    labels = _labels_tensor(labels, logp, "nll_loss", "log-probabilities")
    return _reduce(make("NllLoss", [logp, labels], labels_name=labels.name), reduction, name)


@builder("cross_entropy")
def cross_entropy(logits: TensorLike, labels: TensorLike, reduction: str = "mean",
                  name: Optional[str] = None) -> Tensor:
    """``nll_loss(log_softmax(logits, class axis), labels, reduction)`` for (N, C, d1...) or (C,) logits."""
    _check_reduction(reduction, "cross_entropy")
    logits = _scores_tensor(logits, "cross_entropy", "logits")
    labels = _labels_tensor(labels, logits, "cross_entropy", "logits")
    axis = _class_axis(logits.ndim) if logits.ndim is not None else 1
    return _reduce(make("NllLoss", [log_softmax(logits, axis), labels], labels_name=labels.name), reduction, name)


@builder("mse_loss")
def mse_loss(input: TensorLike, target: TensorLike, reduction: str = "mean", name: Optional[str] = None) -> Tensor:
    """Squared error ``(input - target)**2``, averaged over every element (``"mean"``), summed or kept
    (``"none"``). Gradients flow to both arguments. Different shapes broadcast with a warning, as in PyTorch."""
    _check_reduction(reduction, "mse_loss")
    x, t = operands(input, target, op_name="mse_loss")
    for v, role in ((x, "input"), (t, "target")):
        if not dtypes.is_floating(v.dtype):
            raise TypeError(f"mse_loss: {role} '{v.name}' must be floating point, got {v.dtype.name}")
    if x.shape is not None and t.shape is not None and not compatible(x.shape, t.shape):
        warnings.warn(f"mse_loss: target '{t.name}' of shape {fmt(t.shape)} differs from input '{x.name}' of "
                      f"shape {fmt(x.shape)}; they are broadcast, which is likely not what you want",
                      UserWarning, stacklevel=2)
    return _reduce(square(subtract(x, t)), reduction, name)
