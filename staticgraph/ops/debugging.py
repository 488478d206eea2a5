"""``check_numerics`` (TF1's ``tf.debugging.check_numerics``): a floating tensor's values unchanged,
checked to be finite. The check runs after the step, on every target (``compiler/numerics.py``):
a run in which the op's value holds NaN or inf raises ``sg.errors.InvalidArgumentError`` naming
the tensor, the op's line and the message."""
from __future__ import annotations

from typing import Optional

from ..tensor import Tensor
from .core import TensorLike, as_tensor, def_op, make


def _infer(x, message):
    if x.dtype.kind != "f":
        raise TypeError(f"check_numerics checks floating tensors; '{x.name}' is {x.dtype.name}")
    return x.shape, x.dtype


def _grad(op, g):
    """As TF1: the gradient passes through, checked in its turn."""
    return [check_numerics(g, f"{op.attrs['message']} (in the gradient)")]


def_op("CheckNumerics", _infer, lambda x, message: x, _grad, default_name="check_numerics")


def check_numerics(tensor: TensorLike, message: str, name: Optional[str] = None) -> Tensor:
    """``tensor``'s values as a new tensor; a run that computes it with a NaN or inf raises
    ``sg.errors.InvalidArgumentError`` naming the tensor, this line and ``message`` (after the
    step: its assigns have landed, unlike TF1, whose failing op stops the ops after it)."""
    if not isinstance(message, str):
        raise TypeError(f"check_numerics: message must be a str, got {type(message).__name__}")
    return make("CheckNumerics", [as_tensor(tensor)], name=name, message=message)
