"""CPU kernels of the softmax op family (Softmax, LogSoftmax, NllLoss, NllLossGrad): templates and lowerings.

Every kernel sees its contiguous operand as ``(outer, n, inner)`` around the reduced (softmax) or
class axis, from concrete shapes at plan entry, so a new batch size never recompiles. Semantics are
the reference's (staticgraph/ops/losses.py): rows are max-shifted and accumulated in float64 (a
float32 result rounds once), a NaN stays in its row; labels are range-checked in C order before
anything is written, and the first bad one is reported naming the labels tensor.

Records (``records.RecordSpec``, at ``M[p]``): ``SOFTMAX_ROWS`` (``softmax_rows``), ``SOFTMAX_NLL``
(``nll_loss``, ``nll_loss_grad``).
"""
from __future__ import annotations

import numpy as np

from . import library
from .lowerings import lowers
from .records import RecordSpec

# x (outer, n, inner) at x_off -> y at y_off, rows along n; log: log-softmax
SOFTMAX_ROWS = RecordSpec("softmax_rows", "outer n inner x_off y_off log")
# log-probabilities (outer, n_classes, inner) at src_off (nll_loss_grad: the gradient (outer, inner)),
# labels (outer, inner) at labels_off, y at y_off
SOFTMAX_NLL = RecordSpec("softmax_nll", "outer n_classes inner src_off labels_off y_off")

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
        outer, n, inner = _split(env.shape(x), axis)
        return SOFTMAX_ROWS.pack(dict(outer=outer, n=n, inner=inner, x_off=env.off(x), y_off=env.off(b.write_key(y)),
                                      log=log))
    # each element is read for the last time right before its own output is written
    b.call("softmax_rows", [x], y, record, SOFTMAX_ROWS.size, inplace=[x])


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
        outer, n, inner = _split(shape, _class_axis(len(shape)))
        return SOFTMAX_NLL.pack(dict(outer=outer, n_classes=n, inner=inner, src_off=env.off(src),
                                     labels_off=env.off(labels), y_off=env.off(b.write_key(y))))
    # NllLossGrad reads only ref's shape
    b.call("nll_loss" if op.type == "NllLoss" else "nll_loss_grad", [src, labels], y, record, SOFTMAX_NLL.size)
