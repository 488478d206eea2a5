"""The layers: ``Linear``, convolutions, pooling, activations, ``Flatten`` and the loss modules.

Linear and Conv weights and biases start uniform in ``±1/sqrt(fan_in)`` (PyTorch's default), drawn
with NumPy at construction from the generator of ``sg.nn.manual_seed``; they are float32 unless a
layer gets ``dtype=``. Printed forms match PyTorch's (``Conv2d(1, 32, kernel_size=(5, 5), stride=(1, 1))``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .. import dtypes
from ..ops import reshape
from ..ops.core import builder
from ..shapes import fmt, normalize_axes
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module

IntOrTuple = Union[int, Sequence[int]]


def _ntuple(value: IntOrTuple, n: int, what: str) -> Tuple[int, ...]:
    """``value`` as an n-tuple of ints (an int is repeated)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    t = tuple(value)
    if len(t) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in t):
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value!r}")
    return t


def _dtype(dtype) -> np.dtype:
    dt = dtypes.float32 if dtype is None else dtypes.as_dtype(dtype)
    if not dtypes.is_floating(dt):
        raise TypeError(f"layer parameters must be floating point, got dtype {dt.name}")
    return dt


# -- Linear and convolutions ----------------------------------------------------------------------

class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis: ``Linear(in_features, out_features, bias=True)``;
    ``weight`` is (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        dt = _dtype(dtype)
        bound = init.fan_in_bound(self.in_features)
        self.weight = self._new_parameter("weight", init.uniform((self.out_features, self.in_features), bound, dt))
        if bias:
            self.bias = self._new_parameter("bias", init.uniform((self.out_features,), bound, dt))
        else:
            self.bias = None

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    """N-d convolution layer (``n`` set by the subclass)."""
    n = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1, groups: int = 1,
                 bias: bool = True, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self.n
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        self.kernel_size = _ntuple(kernel_size, n, f"{name} kernel_size")
        self.stride = _ntuple(stride, n, f"{name} stride")
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n, f"{name} padding")
        self.dilation = _ntuple(dilation, n, f"{name} dilation")
        dt = _dtype(dtype)
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        bound = init.fan_in_bound(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = self._new_parameter("weight", init.uniform(shape, bound, dt))
        self.bias = self._new_parameter("bias", init.uniform((self.out_channels,), bound, dt)) if bias else None

    def forward(self, input: Tensor) -> Tensor:
        conv = getattr(F, f"conv{self.n}d")
        return conv(input, self.weight, self.bias, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over N×C×W: ``Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True)``."""
    n = 1


class Conv2d(_ConvNd):
    """2-d convolution over N×C×H×W: ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True)``."""
    n = 2


class Conv3d(_ConvNd):
    """3-d convolution over N×C×D×H×W: ``Conv3d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True)``."""
    n = 3


# -- pooling -------------------------------------------------------------------------------------

class _MaxPoolNd(Module):
    n = 0

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, input: Tensor):
        pool = getattr(F, f"max_pool{self.n}d")
        return pool(input, self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation,
                    ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """``MaxPool1d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False)``."""
    n = 1


class MaxPool2d(_MaxPoolNd):
    """``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False)``."""
    n = 2


class MaxPool3d(_MaxPoolNd):
    """``MaxPool3d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False)``."""
    n = 3


class _AvgPoolNd(Module):
    n = 0

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        stride = stride if stride is not None else kernel_size
        if self.n == 1:  # PyTorch keeps AvgPool1d's sizes as 1-tuples
            kernel_size, stride, padding = (_ntuple(v, 1, f"AvgPool1d {w}") for v, w in
                                            ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding")))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        pool = getattr(F, f"avg_pool{self.n}d")
        return pool(input, self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """``AvgPool1d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)``."""
    n = 1


class AvgPool2d(_AvgPoolNd):
    """``AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)``."""
    n = 2


class AvgPool3d(_AvgPoolNd):
    """``AvgPool3d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)``."""
    n = 3


# -- parameter-free layers -------------------------------------------------------------------------

class _Elementwise(Module):
    """An activation: ``forward`` applies ``fn`` (``inplace`` is accepted for PyTorch code and ignored:
    graph ops never modify their inputs)."""
    fn = staticmethod(lambda x: x)

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return type(self).fn(input)


class ReLU(_Elementwise):
    """``max(x, 0)`` elementwise."""
    fn = staticmethod(F.relu)


class Tanh(_Elementwise):
    """``tanh(x)`` elementwise."""
    fn = staticmethod(F.tanh)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` elementwise."""
    fn = staticmethod(F.sigmoid)


class Identity(Module):
    """Returns its input unchanged (any arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Softmax(Module):
    """``softmax`` along ``axis`` (``dim`` is accepted as PyTorch's alias)."""

    def __init__(self, axis: int = -1, *, dim: Optional[int] = None):
        super().__init__()
        self.axis = dim if dim is not None else axis

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """``log_softmax`` along ``axis`` (``dim`` is accepted as PyTorch's alias)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.axis)


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` into one: ``Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input: Tensor) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


@builder("flatten")
def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``x`` with dimensions ``start_dim..end_dim`` merged (static sizes kept; at most one unknown
    dimension in the result, which becomes ``-1``)."""
    if x.shape is None:
        raise ValueError(f"flatten: tensor '{x.name}' has unknown rank")
    if x.ndim == 0:
        return reshape(x, (1,))
    try:
        start, end = normalize_axes(start_dim, x.ndim)[0], normalize_axes(end_dim, x.ndim)[0]
    except ValueError as exc:
        raise ValueError(f"flatten: {exc} (tensor '{x.name}' of shape {fmt(x.shape)})") from None
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for tensor '{x.name}' "
                         f"of shape {fmt(x.shape)}")
    merged = x.shape[start:end + 1]
    size = None if None in merged else math.prod(merged)
    out = x.shape[:start] + (size,) + x.shape[end + 1:]
    if out.count(None) > 1:
        raise ValueError(f"flatten: tensor '{x.name}' of shape {fmt(x.shape)} would have several unknown "
                         f"dimensions after flattening dims {start}..{end}; give its placeholder more static sizes")
    return reshape(x, tuple(-1 if d is None else d for d in out))


# -- losses --------------------------------------------------------------------------------------

class _Loss(Module):
    fn = None

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return type(self).fn(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error module: ``MSELoss(reduction="mean")(input, target)``."""
    fn = staticmethod(F.mse_loss)


class CrossEntropyLoss(_Loss):
    """``CrossEntropyLoss(reduction="mean")(logits, labels)`` with integer class labels."""
    fn = staticmethod(F.cross_entropy)


class NLLLoss(_Loss):
    """``NLLLoss(reduction="mean")(log_probs, labels)`` with integer class labels."""
    fn = staticmethod(F.nll_loss)
