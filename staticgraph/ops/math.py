"""Elementwise math, comparisons, ``where`` and ``matmul``: declarations and builders."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes
from ..shapes import broadcast, fmt
from ..tensor import Tensor
from .core import TensorLike, as_tensor, const_value, def_op, make, operands


def _sum_to(g: Tensor, x: Tensor) -> Tensor:
    """Reduce a broadcast gradient back to the shape of operand ``x`` (no-op when shapes match)."""
    if g.shape is not None and g.shape == x.shape and None not in g.shape:
        return g
    from .reduce import sum_to_like
    return sum_to_like(g, x)


# -- unary ------------------------------------------------------------------------------

def _unary_infer(float_only: bool, type_: str):
    def infer(x):
        if float_only and not dtypes.is_floating(x.dtype):
            raise TypeError(f"{type_} needs a floating point input, got '{x.name}' of dtype {x.dtype.name}")
        if x.dtype == dtypes.bool_:
            raise TypeError(f"{type_} does not take bool input '{x.name}'")
        return x.shape, x.dtype
    return infer


def _unary(type_: str, fn, grad, name: str, float_only: bool = True):
    def_op(type_, _unary_infer(float_only, type_), fn, grad, default_name=name)

    def builder(x: TensorLike, name: Optional[str] = None) -> Tensor:
        return make(type_, [as_tensor(x)], name=name)
    builder.__name__ = name
    builder.__doc__ = f"Elementwise {name}."
    return builder


def _stable_sigmoid(x):
    return np.exp(-np.logaddexp(np.zeros((), x.dtype), -x))


def _rounded(fn):
    """``fn`` evaluated in float64 and rounded once to the input's dtype: correctly rounded
    float32 results (NumPy's float32 transcendentals can be 1 ulp off), as an oracle should be."""
    def precise(x):
        return fn(x.astype(np.float64)).astype(x.dtype) if x.dtype == np.float32 else fn(x)
    return precise


negative = _unary("Neg", np.negative, lambda op, g: [-g], "negative", float_only=False)
exp = _unary("Exp", _rounded(np.exp), lambda op, g: [g * op.outputs[0]], "exp")
log = _unary("Log", _rounded(np.log), lambda op, g: [g / op.inputs[0]], "log")
sin = _unary("Sin", _rounded(np.sin), lambda op, g: [g * cos(op.inputs[0])], "sin")
cos = _unary("Cos", _rounded(np.cos), lambda op, g: [-(g * sin(op.inputs[0]))], "cos")
tanh = _unary("Tanh", _rounded(np.tanh), lambda op, g: [g * (1.0 - square(op.outputs[0]))], "tanh")
sigmoid = _unary("Sigmoid", _rounded(_stable_sigmoid),
                 lambda op, g: [g * (op.outputs[0] * (1.0 - op.outputs[0]))], "sigmoid")
sqrt = _unary("Sqrt", np.sqrt, lambda op, g: [g / (2.0 * op.outputs[0])], "sqrt")
square = _unary("Square", np.square, lambda op, g: [g * (2.0 * op.inputs[0])], "square", float_only=False)
abs = _unary("Abs", np.abs, lambda op, g: [g * sign(op.inputs[0])], "abs", float_only=False)
sign = _unary("Sign", np.sign, None, "sign", float_only=False)
relu = _unary("Relu", lambda x: np.maximum(x, np.zeros((), x.dtype)),
              lambda op, g: [where(op.inputs[0] > 0, g, 0.0)], "relu", float_only=False)


# -- binary -----------------------------------------------------------------------------

def _binary_infer(type_: str, no_bool: bool = True, float_only: bool = False):
    def infer(a, b):
        if a.dtype != b.dtype:
            raise TypeError(f"dtypes {a.dtype.name} and {b.dtype.name} differ; use sg.cast")
        if no_bool and a.dtype == dtypes.bool_:
            raise TypeError(f"{type_} does not take bool tensors ('{a.name}')")
        if float_only and not dtypes.is_floating(a.dtype):
            raise TypeError(f"{type_} needs floating point tensors, got {a.dtype.name}; use sg.cast")
        try:
            shape = broadcast(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"shapes {fmt(a.shape)} of '{a.name}' and {fmt(b.shape)} of '{b.name}' "
                             f"cannot be broadcast together") from None
        return shape, a.dtype
    return infer


def _binary(type_: str, fn, grad, name: str, **infer_kw):
    def_op(type_, _binary_infer(type_, **infer_kw), fn, grad, default_name=name)

    def builder(a: TensorLike, b: TensorLike, name: Optional[str] = None) -> Tensor:
        return make(type_, list(operands(a, b, op_name=builder.__name__)), name=name)
    builder.__name__ = name
    builder.__doc__ = f"Elementwise {name} with NumPy broadcasting."
    return builder


def _grads(op, *thunks):
    """Wrap per-input gradient thunks so each result is reduced to its operand's shape."""
    return [None if t is None else (lambda t=t, x=x: _sum_to(t(), x)) for t, x in zip(thunks, op.inputs)]


def _pow_grad(op, g):
    a, b = op.inputs
    p = const_value(b)
    if p is not None and p.ndim == 0:
        da = lambda: g * (float(p) * a ** (float(p) - 1.0))
    else:
        da = lambda: g * (b * a ** (b - 1.0))
    return _grads(op, da, lambda: g * (op.outputs[0] * log(a)))


add = _binary("Add", np.add, lambda op, g: _grads(op, lambda: g, lambda: g), "add")
subtract = _binary("Sub", np.subtract, lambda op, g: _grads(op, lambda: g, lambda: -g), "subtract")
multiply = _binary("Mul", np.multiply,
                   lambda op, g: _grads(op, lambda: g * op.inputs[1], lambda: g * op.inputs[0]), "multiply")
divide = _binary("Div", np.divide,
                 lambda op, g: _grads(op, lambda: g / op.inputs[1],
                                      lambda: -(g * op.outputs[0]) / op.inputs[1]),
                 "divide", float_only=True)
pow = _binary("Pow", np.power, _pow_grad, "pow")
def _tie_split_grads(op, g, first_wins):
    """Gradient of maximum/minimum: all of ``g`` to the winning input; at a tie it is split evenly
    (as PyTorch does, and as central differences see it), so ``maximum(x, y)`` and ``maximum(y, x)``
    have the same gradients and ``maximum(x, x)`` passes ``g`` through whole."""
    a, b = op.inputs

    def share(first: bool):
        wins = first_wins(a, b) if first else first_wins(b, a)
        return where(equal(a, b), g * 0.5, where(wins, g, 0.0))
    return _grads(op, lambda: share(True), lambda: share(False))


maximum = _binary("Maximum", np.maximum, lambda op, g: _tie_split_grads(op, g, greater), "maximum")
minimum = _binary("Minimum", np.minimum, lambda op, g: _tie_split_grads(op, g, less), "minimum")
for _builder in (maximum, minimum):
    _builder.__doc__ += " Where the inputs are equal, the gradient is split evenly between them."
del _builder


def _comparison(type_: str, fn, name: str):
    base = _binary_infer(type_, no_bool=False)

    def infer(a, b):
        shape, _ = base(a, b)
        return shape, dtypes.bool_
    def_op(type_, infer, fn, None, default_name=name)

    def builder(a: TensorLike, b: TensorLike, name: Optional[str] = None) -> Tensor:
        return make(type_, list(operands(a, b, op_name=builder.__name__)), name=name)
    builder.__name__ = name
    builder.__doc__ = f"Elementwise {name} (bool result, not differentiable)."
    return builder


less = _comparison("Less", np.less, "less")
less_equal = _comparison("LessEqual", np.less_equal, "less_equal")
greater = _comparison("Greater", np.greater, "greater")
greater_equal = _comparison("GreaterEqual", np.greater_equal, "greater_equal")
equal = _comparison("Equal", np.equal, "equal")
not_equal = _comparison("NotEqual", np.not_equal, "not_equal")


# -- where --------------------------------------------------------------------------------

def _where_infer(cond, a, b):
    if cond.dtype != dtypes.bool_:
        raise TypeError(f"condition '{cond.name}' must be bool, got {cond.dtype.name}")
    if a.dtype != b.dtype:
        raise TypeError(f"dtypes {a.dtype.name} and {b.dtype.name} differ; use sg.cast")
    try:
        return broadcast(cond.shape, a.shape, b.shape), a.dtype
    except ValueError:
        raise ValueError(f"shapes {fmt(cond.shape)}, {fmt(a.shape)} and {fmt(b.shape)} of where's "
                         f"condition and branches cannot be broadcast together") from None


def _where_grad(op, g):
    c, a, b = op.inputs
    return _grads(op, None, lambda: where(c, g, 0.0), lambda: where(c, 0.0, g))


def_op("Where", _where_infer, np.where, _where_grad, default_name="where")


def where(cond: TensorLike, a: TensorLike, b: TensorLike, name: Optional[str] = None) -> Tensor:
    """``a`` where ``cond`` is true, else ``b`` (NumPy broadcasting; Python scalars take the branches' dtype)."""
    cond = as_tensor(cond)
    a, b = operands(a, b, op_name="where")
    return make("Where", [cond, a, b], name=name)


# -- matmul --------------------------------------------------------------------------------

def _matmul_infer(a, b):
    if a.dtype != b.dtype:
        raise TypeError(f"dtypes {a.dtype.name} and {b.dtype.name} differ; use sg.cast")
    if a.dtype == dtypes.bool_:
        raise TypeError("matmul does not take bool tensors")
    if a.shape is None or b.shape is None:
        return None, a.dtype
    if len(a.shape) == 0 or len(b.shape) == 0:
        raise ValueError(f"matmul operands must be at least 1-D, got shapes {fmt(a.shape)} and {fmt(b.shape)}")
    sa = (1,) + a.shape if len(a.shape) == 1 else a.shape
    sb = b.shape + (1,) if len(b.shape) == 1 else b.shape
    k1, k2 = sa[-1], sb[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        raise ValueError(f"shapes {fmt(a.shape)} of '{a.name}' and {fmt(b.shape)} of '{b.name}' are not "
                         f"aligned for matmul: {k1} (dim {len(a.shape) - 1}) != {k2} "
                         f"(dim {max(len(b.shape) - 2, 0)})")
    try:
        batch = broadcast(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(f"batch dimensions of shapes {fmt(a.shape)} and {fmt(b.shape)} cannot be "
                         f"broadcast for matmul") from None
    out = batch + ((sa[-2],) if len(a.shape) > 1 else ()) + ((sb[-1],) if len(b.shape) > 1 else ())
    return out, a.dtype


def _swap_last(t: Tensor) -> Tensor:
    from .array import transpose
    n = t.ndim
    return transpose(t, tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_grad(op, g):
    """Promote 1-D operands to matrices, take the matrix gradients, reduce and reshape back."""
    from .array import expand_dims, reshape_like
    a, b = op.inputs
    if a.ndim is None or b.ndim is None:
        raise ValueError(f"gradient of matmul '{op.name}' needs operands of known rank")
    memo = {}

    def lazy(key, fn):  # build each promoted tensor once, and only if a needed gradient uses it
        if key not in memo:
            memo[key] = fn()
        return memo[key]
    a2 = lambda: lazy("a", lambda: expand_dims(a, 0) if a.ndim == 1 else a)  # noqa: E731
    b2 = lambda: lazy("b", lambda: expand_dims(b, 1) if b.ndim == 1 else b)  # noqa: E731

    def g2():
        def build():
            r = g
            if a.ndim == 1:
                r = expand_dims(r, r.ndim - (0 if b.ndim == 1 else 1))
            if b.ndim == 1:
                r = expand_dims(r, r.ndim)
            return r
        return lazy("g", build)

    def back(x, x2, full):
        if x.ndim != 1:
            return _sum_to(full, x)
        if full.ndim == 2:  # nothing to sum over: just drop the promoted axis
            return reshape_like(full, x)
        return reshape_like(_sum_to(full, x2()), x)
    return [lambda: back(a, a2, matmul(g2(), _swap_last(b2()))),
            lambda: back(b, b2, matmul(_swap_last(a2()), g2()))]


def_op("MatMul", _matmul_infer, np.matmul, _matmul_grad, default_name="matmul")


def matmul(a: TensorLike, b: TensorLike, name: Optional[str] = None) -> Tensor:
    """Matrix product with ``numpy.matmul`` semantics (1-D and batched operands included)."""
    a, b = operands(a, b, op_name="matmul")
    return make("MatMul", [a, b], name=name)


def dot(a: TensorLike, b: TensorLike, name: Optional[str] = None) -> Tensor:
    """Inner product of two 1-D tensors."""
    a, b = operands(a, b, op_name="dot")
    for t in (a, b):
        if t.ndim != 1:
            raise ValueError(f"dot: '{t.name}' has shape {fmt(t.shape)}; dot takes two 1-D tensors")
    return make("MatMul", [a, b], name=name or "dot")
