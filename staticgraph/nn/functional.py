"""``sg.nn`` functional ops (API.md section 3): PyTorch names, defaults and NC[D]HW layout.

Usually imported as ``import staticgraph.nn.functional as F``.
"""
from __future__ import annotations

from typing import Optional

from .. import dtypes
from ..ops import add, matmul, relu, sigmoid, tanh, transpose  # noqa: F401
from ..ops.conv import conv1d, conv2d, conv3d  # noqa: F401
from ..ops.core import builder, operands
from ..ops.losses import cross_entropy, log_softmax, mse_loss, nll_loss, softmax  # noqa: F401
from ..ops.pool import avg_pool1d, avg_pool2d, avg_pool3d, max_pool1d, max_pool2d, max_pool3d  # noqa: F401
from ..shapes import fmt
from ..tensor import Tensor

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "linear",
    "conv1d", "conv2d", "conv3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "mse_loss", "cross_entropy", "nll_loss",
]


@builder("linear")
def linear(input, weight, bias=None, name: Optional[str] = None) -> Tensor:
    """``input @ weight.T + bias`` with ``weight`` of shape (out, in), over the last axis of ``input``."""
    x, w = operands(input, weight, op_name="linear")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"linear: input '{x.name}' must be floating point, got {x.dtype.name}")
    if w.ndim != 2:
        raise ValueError(f"linear: weight '{w.name}' must have shape (out_features, in_features), got "
                         f"{fmt(w.shape)}")
    if x.ndim == 0:
        raise ValueError(f"linear: input '{x.name}' must have at least one dimension, got a scalar")
    n_in, n_out = w.shape[1], w.shape[0]
    if x.shape is not None and None not in (x.shape[-1], n_in) and x.shape[-1] != n_in:
        raise ValueError(f"linear: the last dimension of input '{x.name}' (shape {fmt(x.shape)}) is "
                         f"{x.shape[-1]}, but weight '{w.name}' (shape {fmt(w.shape)}) expects {n_in} "
                         f"input features")
    y = matmul(x, transpose(w, (1, 0)))
    if bias is None:
        if name is not None:
            from ..ops import identity
            y = identity(y, name=name)
        return y
    _, b = operands(x, bias, op_name="linear")
    if b.shape is not None and (len(b.shape) != 1 or None not in (b.shape[0], n_out) and b.shape[0] != n_out):
        raise ValueError(f"linear: bias '{b.name}' must have shape ({n_out},) to match weight '{w.name}' "
                         f"(shape {fmt(w.shape)}), got {fmt(b.shape)}")
    return add(y, b, name=name)
