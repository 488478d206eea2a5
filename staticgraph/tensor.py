"""``Tensor``: a symbolic value, the output of an Operation, with a static shape and dtype.

Operators and PyTorch-style methods build ops in the tensor's graph. A Tensor
hashes by identity (``==`` is not overloaded, as in TF1), so it can key a
``feed_dict``.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np

from .default_session import eval_tensor

Shape = Optional[Tuple[Optional[int], ...]]


def _ops():
    from . import ops
    return ops


class Tensor:
    """One output of an Operation: ``.shape`` (``None`` dims unknown), ``.dtype``, ``.name``, ``.op``."""

    __array_ufunc__ = None  # make `ndarray * tensor` call Tensor.__rmul__

    def __init__(self, op, value_index: int, shape: Shape, dtype: np.dtype):
        self.op = op
        self.value_index = value_index
        self.shape = shape
        self.dtype = dtype

    @property
    def graph(self):
        return self.op.graph

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def ndim(self) -> Optional[int]:
        return None if self.shape is None else len(self.shape)

    def __repr__(self) -> str:
        return f"<sg.Tensor '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def __bool__(self):
        raise TypeError(f"using Tensor '{self.name}' as a Python bool is not allowed: the graph is "
                        f"static; use sg.where for data-dependent choices")

    def __len__(self) -> int:
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of tensor '{self.name}' with unknown first dimension (shape {self.shape})")
        return self.shape[0]

    def __iter__(self):
        n = len(self)
        return (self[i] for i in range(n))

    # -- arithmetic ----------------------------------------------------------------
    def __add__(self, other): return _ops().add(self, other)
    def __radd__(self, other): return _ops().add(other, self)
    def __sub__(self, other): return _ops().subtract(self, other)
    def __rsub__(self, other): return _ops().subtract(other, self)
    def __mul__(self, other): return _ops().multiply(self, other)
    def __rmul__(self, other): return _ops().multiply(other, self)
    def __truediv__(self, other): return _ops().divide(self, other)
    def __rtruediv__(self, other): return _ops().divide(other, self)
    def __pow__(self, other): return _ops().pow(self, other)
    def __rpow__(self, other): return _ops().pow(other, self)
    def __matmul__(self, other): return _ops().matmul(self, other)
    def __rmatmul__(self, other): return _ops().matmul(other, self)
    def __neg__(self): return _ops().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops().abs(self)
    def __lt__(self, other): return _ops().less(self, other)
    def __le__(self, other): return _ops().less_equal(self, other)
    def __gt__(self, other): return _ops().greater(self, other)
    def __ge__(self, other): return _ops().greater_equal(self, other)
    __hash__ = object.__hash__

    def __getitem__(self, index): return _ops().getitem(self, index)

    # -- PyTorch-style methods -----------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        return _ops().reduce_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        return _ops().reduce_mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        return _ops().reduce_max(self, axis, keepdims)

    def pow(self, p) -> "Tensor": return _ops().pow(self, p)
    def norm(self) -> "Tensor": return _ops().norm(self)
    def exp(self) -> "Tensor": return _ops().exp(self)
    def log(self) -> "Tensor": return _ops().log(self)
    def sin(self) -> "Tensor": return _ops().sin(self)
    def cos(self) -> "Tensor": return _ops().cos(self)
    def tanh(self) -> "Tensor": return _ops().tanh(self)
    def sigmoid(self) -> "Tensor": return _ops().sigmoid(self)
    def relu(self) -> "Tensor": return _ops().relu(self)
    def abs(self) -> "Tensor": return _ops().abs(self)
    def sqrt(self) -> "Tensor": return _ops().sqrt(self)
    def square(self) -> "Tensor": return _ops().square(self)
    def dot(self, other) -> "Tensor": return _ops().dot(self, other)
    def matmul(self, other) -> "Tensor": return _ops().matmul(self, other)
    def argmax(self, axis=None) -> "Tensor": return _ops().argmax(self, axis)

    def t(self) -> "Tensor":
        """Transpose of a 2-D tensor."""
        if self.ndim != 2:
            raise ValueError(f"t(): tensor '{self.name}' has shape {self.shape}; t() expects a 2-D tensor")
        return _ops().transpose(self, (1, 0))

    def transpose(self, *axes) -> "Tensor":
        """NumPy's transpose: a full permutation, or none to reverse the axes."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    view = reshape

    def size(self, dim: Optional[int] = None) -> Union[Tuple[Optional[int], ...], Optional[int]]:
        """The static shape (``None`` for unknown dims), or one dimension of it."""
        if self.shape is None:
            raise ValueError(f"tensor '{self.name}' has unknown rank")
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> Optional[int]:
        return self.ndim

    def cast(self, dtype) -> "Tensor": return _ops().cast(self, dtype)
    def detach(self) -> "Tensor": return _ops().stop_gradient(self)

    def eval(self, feed_dict=None, session=None):
        """The value of this tensor: ``session.run(self, feed_dict)`` in ``session`` or the default
        session (``with sess.as_default():``, ``with sg.Session() as sess:``, ``sg.InteractiveSession()``)."""
        return eval_tensor(self, feed_dict, session)

    def assign(self, value): return _ops().assign(self, value)
    def assign_add(self, value): return _ops().assign_add(self, value)
    def assign_sub(self, value): return _ops().assign_sub(self, value)
