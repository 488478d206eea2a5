"""CPU kernels of the softmax op family (Softmax, LogSoftmax, NllLoss, NllLossGrad): templates and lowerings.

Every kernel sees its contiguous operand as ``(outer, n, inner)`` around the reduced (softmax) or
class axis, from concrete shapes at plan entry, so a new batch size never recompiles. Semantics are
the reference's (staticgraph/ops/losses.py): rows are max-shifted and accumulated in float64 (a
float32 result rounds once), a NaN stays in its row; labels are range-checked in C order before
anything is written, and the first bad one is reported naming the labels tensor.
"""
from __future__ import annotations

import numpy as np

from . import library
from .lowerings import lowers

LABEL_ERROR = 30   # this family's error codes: 30-39


def _label_error(op, E, env) -> str:
    """The reference's message for the first out-of-range label (value E[2] at flat position E[3])."""
    labels, ref = op.inputs[1], op.inputs[0 if op.type == "NllLoss" else 2]
    name = op.attrs.get("labels_name", "")
    what = f"labels tensor '{name}'" if name else "the labels"
    shape = env.shape(ref)
    n_classes = shape[_class_axis(len(shape))]
    pos = tuple(int(i) for i in np.unravel_index(int(E[3]), env.shape(labels)))
    return f"{what} has label {int(E[2])} at position {pos}, outside the class indices [0, {n_classes})"


library.ERRORS[LABEL_ERROR] = _label_error


def _prod(dims) -> int:
    return int(np.prod(dims, dtype=np.int64))


def _class_axis(ndim: int) -> int:
    return 0 if ndim == 1 else 1


def _split(shape, axis: int) -> tuple:
    """``shape`` as (outer, n, inner) around ``axis``."""
    return _prod(shape[:axis]), shape[axis], _prod(shape[axis + 1:])


@lowers("Softmax", "LogSoftmax")
def _softmax(op, b):
    x, y, axis = op.inputs[0], op.outputs[0], op.attrs["axis"]
    log = int(op.type == "LogSoftmax")

    def record(env):
        return list(_split(env.shape(x), axis)) + [env.off(x), env.off(b.write_key(y)), log]
    # each element is read for the last time right before its own output is written
    b.call("softmax_rows", [x], y, record, 6, inplace=[x])


def _check_label_shape(op, labels, ref):
    """Run-time shape check with the reference's message (NllLossGrad's shapes are not inferred)."""
    def check(env):
        shape = env.shape(ref)
        if len(shape) == 0:
            raise ValueError(f"log-probabilities '{ref.name}' must have a class axis, got a scalar")
        ax = _class_axis(len(shape))
        expected = tuple(shape[:ax]) + tuple(shape[ax + 1:])
        if env.shape(labels) != expected:
            name = op.attrs.get("labels_name", "")
            what = f"labels tensor '{name}'" if name else "the labels"
            raise ValueError(f"{what} of shape {env.shape(labels)} does not fit log-probabilities of shape "
                             f"{shape}: expected labels of shape {expected}")
    return check


@lowers("NllLoss", "NllLossGrad")
def _nll(op, b):
    """NllLoss(log_probs, labels) gathers; NllLossGrad(g, labels, ref) scatters into ref's shape."""
    src, labels = op.inputs[0], op.inputs[1]
    ref = src if op.type == "NllLoss" else op.inputs[2]
    y = op.outputs[0]
    b.check(_check_label_shape(op, labels, ref))

    def record(env):
        shape = env.shape(ref)
        return list(_split(shape, _class_axis(len(shape)))) + [env.off(src), env.off(labels),
                                                                env.off(b.write_key(y))]
    if op.type == "NllLoss":
        b.call("nll_loss", [src, labels], y, record, 6)
    else:
        b.call("nll_loss_grad", [src, labels], y, record, 6)   # ref: shape only
