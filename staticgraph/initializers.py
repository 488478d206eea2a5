"""Variable initializers, as TF1 has them: callables ``init(shape, dtype=None)`` that build the
initial value as a tensor in the default graph (``sg.get_variable(..., initializer=init)``).

``glorot_uniform_initializer`` is ``sg.get_variable``'s default for floating variables, as in
TF1; ``zeros_initializer`` for integer and bool ones.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from . import dtypes
from .tensor import Tensor

__all__ = ["Initializer", "zeros_initializer", "ones_initializer", "constant_initializer",
           "random_normal_initializer", "random_uniform_initializer", "glorot_uniform_initializer"]


def _static_shape(shape, who: str) -> Tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints (initial values need a fully known shape)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        out = tuple(shape)
    except TypeError:
        raise TypeError(f"{who}: shape must be a sequence of ints, got {shape!r}") from None
    if any(d is None or not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0 for d in out):
        raise ValueError(f"{who}: the shape of an initial value must be fully known non-negative ints, "
                         f"got {shape!r}")
    return tuple(int(d) for d in out)


class Initializer:
    """Base class: ``init(shape, dtype=None)`` returns a Tensor (``dtype=None``: the initializer's)."""

    def __init__(self, dtype=dtypes.float32):
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape: Sequence[int], dtype=None) -> Tensor:
        dt = self.dtype if dtype is None else dtypes.as_dtype(dtype)
        return self._build(_static_shape(shape, type(self).__name__), dt)

    def _build(self, shape: Tuple[int, ...], dtype: np.dtype) -> Tensor:
        raise NotImplementedError

    def _floating(self, dtype: np.dtype) -> None:
        if not dtypes.is_floating(dtype):
            raise TypeError(f"{type(self).__name__} makes random values, which must be floating point; "
                            f"got dtype {dtype.name}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"sg.{type(self).__name__}({fields})"


class zeros_initializer(Initializer):
    """All zeros."""

    def _build(self, shape, dtype):
        from .ops import zeros
        return zeros(shape, dtype)


class ones_initializer(Initializer):
    """All ones."""

    def _build(self, shape, dtype):
        from .ops import ones
        return ones(shape, dtype)


class constant_initializer(Initializer):
    """A constant ``value``: a scalar fills the shape; an array with as many elements as the shape
    is reshaped to it (TF1), or one that broadcasts to it is broadcast."""

    def __init__(self, value=0, dtype=dtypes.float32):
        super().__init__(dtype)
        self.value = value

    def _build(self, shape, dtype):
        from .ops import constant
        arr = np.asarray(self.value)
        if arr.size == math.prod(shape) and arr.shape != shape:
            arr = arr.reshape(shape)
        try:
            arr = np.broadcast_to(arr, shape)
        except ValueError:
            raise ValueError(f"constant_initializer: a value of shape {arr.shape} ({arr.size} elements) "
                             f"cannot initialize shape {shape}") from None
        return constant(np.array(arr), dtype=dtype)


class random_normal_initializer(Initializer):
    """Normal values with ``mean`` and ``stddev`` (seeded by ``seed`` when given)."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: Optional[int] = None,
                 dtype=dtypes.float32):
        super().__init__(dtype)
        self.mean, self.stddev, self.seed = float(mean), float(stddev), seed

    def _build(self, shape, dtype):
        from .ops import random_normal
        self._floating(dtype)
        return random_normal(shape, self.mean, self.stddev, dtype, self.seed)


class random_uniform_initializer(Initializer):
    """Uniform values in ``[minval, maxval)`` (``maxval=None``: 1), seeded by ``seed`` when given."""

    def __init__(self, minval: float = 0.0, maxval: Optional[float] = None, seed: Optional[int] = None,
                 dtype=dtypes.float32):
        super().__init__(dtype)
        self.minval = float(minval)
        self.maxval = 1.0 if maxval is None else float(maxval)
        self.seed = seed

    def _build(self, shape, dtype):
        from .ops import random_uniform
        self._floating(dtype)
        return random_uniform(shape, self.minval, self.maxval, dtype, self.seed)


def fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: rank 0: 1, 1; rank 1: n, n; rank 2 (TF1's matmul layout
    ``(in, out)``): the two dims; rank > 2: sg.nn's convolution layout ``(out, in, *kernel)``, with
    both fans multiplied by the kernel size (Glorot only uses their sum, as TF1's HWIO would)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


class glorot_uniform_initializer(Initializer):
    """Glorot/Xavier uniform: ``U(-l, l)`` with ``l = sqrt(6 / (fan_in + fan_out))`` (see ``fans``)."""

    def __init__(self, seed: Optional[int] = None, dtype=dtypes.float32):
        super().__init__(dtype)
        self.seed = seed

    def _build(self, shape, dtype):
        from .ops import random_uniform
        self._floating(dtype)
        fan_in, fan_out = fans(shape)
        limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))   # TF1's variance scaling, fan_avg
        return random_uniform(shape, -limit, limit, dtype, self.seed)
