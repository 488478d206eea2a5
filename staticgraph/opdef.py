"""The op registry: every op type is declared once, as an ``OpDef``.

An OpDef holds, in one place:

- ``infer(*inputs, **attrs)`` -> ``(shape, dtype)`` or a list of them (one per
  output); raises ``ValueError``/``TypeError`` for bad inputs;
- ``reference(*arrays, **attrs)`` -> ndarray or tuple of ndarrays, the NumPy
  implementation that is the oracle for every backend (``stateful`` ops take a
  run context first: ``reference(ctx, *arrays, **attrs)``);
- ``grad(op, *out_grads)`` -> list aligned with ``op.inputs`` (``None`` = no
  gradient), built from graph ops so it is differentiable again; ``grad=None``
  declares the op non-differentiable;
- ``ref_inputs``: positions of inputs that name a variable rather than read
  its value (``Assign``'s target): they are not evaluated;
- ``value_inputs``: positions of the inputs whose *values* reach the outputs
  (None: all); the others only supply a run-time shape (``BroadcastLike``'s
  ``ref``), so dependence, and hence differentiation, does not flow through them;
- ``version``: bump it when semantics change (invalidates cached plans).

Backends keep their own kernel registries keyed by ``OpDef.type``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

_REGISTRY: Dict[str, "OpDef"] = {}


@dataclass(frozen=True)
class OpDef:
    type: str
    infer: Callable
    reference: Callable
    grad: Optional[Callable] = None
    default_name: str = ""
    stateful: bool = False
    version: int = 1
    ref_inputs: tuple = ()
    value_inputs: Optional[tuple] = None
    doc: str = field(default="", compare=False)

    def __post_init__(self):
        if not self.default_name:
            object.__setattr__(self, "default_name", self.type.lower())

    @property
    def differentiable(self) -> bool:
        return self.grad is not None


def register(opdef: OpDef) -> OpDef:
    """Add ``opdef`` to the registry (each type once)."""
    if opdef.type in _REGISTRY:
        raise ValueError(f"op type '{opdef.type}' is already registered")
    _REGISTRY[opdef.type] = opdef
    return opdef


def get_opdef(op_type: str) -> OpDef:
    try:
        return _REGISTRY[op_type]
    except KeyError:
        raise KeyError(f"unknown op type '{op_type}'") from None


def registered_types():
    """All registered op type names, sorted."""
    return sorted(_REGISTRY)
