"""Helpers shared by every op family: turning values into tensors, adding ops, dtype checks."""
from __future__ import annotations

import functools
import numbers
from typing import Any, Callable, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from .. import dtypes
from ..graph import Operation, get_default_graph, located, user_frame
from ..opdef import OpDef, register
from ..tensor import Tensor

TensorLike = Union[Tensor, float, int, bool, np.ndarray, list, tuple]
_Builder = TypeVar("_Builder", bound=Callable[..., Any])


def graph_of(*values):
    """The graph of the first Tensor among ``values``, else the default graph."""
    for v in values:
        if isinstance(v, Tensor):
            return v.graph
    return get_default_graph()


def make(op_type: str, inputs: Sequence[Tensor], name: Optional[str] = None, graph=None,
         control_inputs: Sequence[Operation] = (), **attrs) -> Union[Tensor, Tuple[Tensor, ...], Operation]:
    """Add an op; return its single output, the tuple of its outputs, or the op if it has none."""
    g = graph if graph is not None else graph_of(*inputs)
    if control_inputs:
        with g.control_dependencies(control_inputs):
            op = g.create_op(op_type, inputs, attrs, name=name)
    else:
        op = g.create_op(op_type, inputs, attrs, name=name)
    if not op.outputs:
        return op
    return op.outputs[0] if len(op.outputs) == 1 else op.outputs


def builder(label: str) -> Callable[[_Builder], _Builder]:
    """Decorate a public graph builder: a ``ValueError``/``TypeError`` it raises while checking its
    arguments names ``label`` and the user's ``(at file:line)``, as op inference errors do (one
    mechanism: ``graph.located``). Errors located by an inner op or builder pass unchanged."""
    def decorate(fn: _Builder) -> _Builder:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ValueError, TypeError) as exc:
                raise located(exc, label, user_frame()) from None
        return wrapper  # type: ignore[return-value]
    return decorate


def _is_weak_scalar(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, np.ndarray) \
        and not isinstance(value, (complex, np.complexfloating))


def constant(value: Any, dtype=None, name: Optional[str] = None) -> Tensor:
    """A constant tensor. Python floats and float64 arrays become float32 unless ``dtype`` says otherwise."""
    if isinstance(value, Tensor):
        raise TypeError(f"constant() takes a value, not the tensor '{value.name}'")
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.dtype_of_value(value)
    arr = np.asarray(value)
    if dtype is None and arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a constant from {value!r}")
    problem = dtypes.lossless_problem(arr, dt)
    if problem:
        raise TypeError(f"cannot make a {dt.name} constant from {value!r}: {problem}")
    arr = np.array(arr, dtype=dt)
    arr.setflags(write=False)
    return make("Const", [], name=name, value=arr, dtype=dt)


def as_tensor(value: TensorLike, dtype=None, name: Optional[str] = None) -> Tensor:
    """Return ``value`` if it is a Tensor (checking ``dtype``), else a new constant."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != dtypes.as_dtype(dtype):
            raise TypeError(f"tensor '{value.name}' has dtype {value.dtype.name}, expected {np.dtype(dtype).name}")
        return value
    return constant(value, dtype=dtype, name=name)


def _coerce_to(value: Any, dtype: np.dtype, graph, partner: Tensor) -> Tensor:
    """A non-tensor operand next to tensor ``partner``: a weak scalar or a same-kind array."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot combine tensor '{partner.name}' with {value!r}")
    if _is_weak_scalar(value) or isinstance(value, (list, tuple)):
        ok = arr.dtype.kind == "b" and dtype.kind == "b" or \
            arr.dtype.kind in "iu" and dtype.kind in "iuf" or \
            arr.dtype.kind == "f" and dtype.kind == "f"
    else:
        ok = np.can_cast(arr.dtype, dtype, "same_kind")
    if not ok:
        raise TypeError(f"cannot combine tensor '{partner.name}' of dtype {dtype.name} with {value!r} "
                        f"(dtype {arr.dtype.name}) without a cast; use sg.cast")
    problem = dtypes.lossless_problem(arr, dtype)   # a weak int must fit: no silent wraparound
    if problem:
        raise OverflowError(f"{value!r} is out of bounds for tensor '{partner.name}' of dtype {dtype.name}: "
                            f"{problem}")
    with graph.as_default():
        return constant(arr, dtype=dtype)


def operands(*values: TensorLike, op_name: str = "op") -> Tuple[Tensor, ...]:
    """Convert the operands of an elementwise op: Python scalars are weak (take the tensors' dtype);
    two tensors of different dtypes raise ``TypeError`` naming both."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:
        return tuple(as_tensor(v) for v in values)
    dt = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dt:
            raise TypeError(f"{op_name}: tensors '{tensors[0].name}' ({dt.name}) and '{t.name}' "
                            f"({t.dtype.name}) have different dtypes; use sg.cast")
    g = tensors[0].graph
    return tuple(v if isinstance(v, Tensor) else _coerce_to(v, dt, g, tensors[0]) for v in values)


def const_value(t: Tensor) -> Optional[np.ndarray]:
    """The value of a Const tensor, else None."""
    return t.op.attrs["value"] if t.op.type == "Const" else None


def def_op(type_: str, infer, reference, grad=None, default_name: str = "", stateful: bool = False,
           version: int = 1, ref_inputs: tuple = (), value_inputs: Optional[tuple] = None) -> OpDef:
    """Declare and register an op type (see ``staticgraph.opdef``)."""
    return register(OpDef(type_, infer, reference, grad, default_name, stateful, version, ref_inputs,
                          value_inputs))


# -- the graph's leaves --------------------------------------------------------------

def _const_infer(value, dtype):
    return value.shape, dtype


def_op("Const", _const_infer, lambda value, dtype: value, default_name="const")


def placeholder(dtype, shape=None, name: Optional[str] = None) -> Tensor:
    """An input fed at run time. ``None`` in ``shape`` is an unknown dimension; ``shape=None`` any shape."""
    dt = dtypes.as_dtype(dtype)
    if shape is not None:
        shape = tuple(None if d is None or (isinstance(d, int) and d < 0) else int(d) for d in shape)
    return make("Placeholder", [], name=name, graph=get_default_graph(), dtype=dt, shape=shape)


def_op("Placeholder", lambda dtype, shape: (shape, dtype),
       lambda ctx, dtype, shape: ctx.missing_feed(), default_name="placeholder", stateful=True)
