"""Optimizers that build their training step as graph ops (TF1 formulas and slot names).

``opt.minimize(loss)`` is ``compute_gradients`` followed by ``apply_gradients``: one op, and
one ``sess.run(train_op, feed_dict)`` is one training step.

Slot variables (Momentum accumulators, Adam moments and beta powers) are non-trainable
Variables created by ``apply_gradients``. As in TF1, build ``sg.global_variables_initializer()``
*after* ``minimize`` so that it initialises them too (or use ``opt.variables()``).

A run is a pure step (every read sees the state from before the run), so each update computes
the new slot values as tensors and assigns the slot and the variable from those same tensors.
"""
from __future__ import annotations

import numbers
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import dtypes
from ..gradients import gradients
from ..graph import Graph, Operation
from ..ops import as_tensor, assign, cast, group, sqrt, zeros
from ..tensor import Tensor
from ..variables import Variable, trainable_variables

Hyper = Union[float, Tensor]
GradsAndVars = List[Tuple[Optional[Tensor], Variable]]
Update = Tuple[Variable, Tensor]  # (variable to assign, its new value)


class Optimizer:
    """Base class. Subclasses declare their slots (``_slot_suffixes``) and their per-variable
    update (``_updates``); the gradient, slot-creation and apply loop are shared here."""

    def __init__(self, name: str):
        self._name = name
        self._slots: Dict[str, Dict[Variable, Variable]] = {}
        self._cache: Dict[tuple, Tensor] = {}

    # -- public API ---------------------------------------------------------------------
    def compute_gradients(self, loss: Tensor, var_list: Optional[Iterable[Variable]] = None) -> GradsAndVars:
        """``[(grad, var)]`` for ``var_list`` (default: the loss graph's trainable variables);
        ``grad`` is None for a variable the loss does not depend on."""
        if not isinstance(loss, Tensor):
            raise TypeError(f"{self._name}: loss must be a Tensor, got {type(loss).__name__}")
        var_list = list(trainable_variables(loss.graph) if var_list is None else var_list)
        if not var_list:
            raise ValueError(f"{self._name}: no variables to optimize (the graph of '{loss.name}' has no "
                             f"trainable variables and no var_list was given)")
        for v in var_list:
            _check_variable(v, self._name)
        _check_unique(var_list, self._name)
        return list(zip(gradients(loss, var_list), var_list))

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[Tensor], Variable]],
                        name: Optional[str] = None) -> Operation:
        """One op that updates each variable from its gradient (pairs with a None grad are skipped)."""
        pairs = self._usable_pairs(grads_and_vars)
        graph = pairs[0][1].graph
        self._cache = {}
        with graph.as_default():
            var_list = [v for _, v in pairs]
            with graph.control_dependencies(None):
                self._create_slots(var_list)
            with graph.name_scope(name or self._name):
                updates = [u for g, v in pairs for u in self._updates(g, v)]
                updates += self._finish(var_list)
                assigns = [assign(var, value, name=f"update_{var.op.name.replace('/', '_')}")
                           for var, value in updates]
            return group(*assigns, name=name or self._name)

    def minimize(self, loss: Tensor, var_list: Optional[Iterable[Variable]] = None,
                 name: Optional[str] = None) -> Operation:
        """``apply_gradients(compute_gradients(loss, var_list))``: the training-step op."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name)

    def get_slot(self, var: Variable, name: str) -> Optional[Variable]:
        """The slot variable ``name`` (see ``get_slot_names``) of ``var``, or None."""
        return self._slots.get(name, {}).get(var)

    def get_slot_names(self) -> List[str]:
        """Names of the slots created so far, sorted (e.g. ``["m", "v"]`` for Adam)."""
        return sorted(self._slots)

    def variables(self) -> List[Variable]:
        """Every variable this optimizer created (slots and e.g. Adam's beta powers)."""
        return [v for slots in self._slots.values() for v in slots.values()] + self._non_slot_variables()

    # -- subclass hooks -----------------------------------------------------------------
    def _slot_suffixes(self) -> Dict[str, str]:
        """Slot name -> variable-name suffix (the slot of var ``w`` is named ``w/<suffix>``)."""
        return {}

    def _updates(self, grad: Tensor, var: Variable) -> List[Update]:
        """The new values of ``var`` and its slots, as tensors of the pre-run state."""
        raise NotImplementedError

    def _finish(self, var_list: Sequence[Variable]) -> List[Update]:
        """Updates shared by all variables of one step (e.g. Adam's beta powers)."""
        return []

    def _create_non_slots(self, var_list: Sequence[Variable]) -> None:
        """Create per-optimizer state other than slots."""

    def _non_slot_variables(self) -> List[Variable]:
        return []

    # -- shared helpers -----------------------------------------------------------------
    def _usable_pairs(self, grads_and_vars) -> List[Tuple[Tensor, Variable]]:
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError(f"{self._name}: no (gradient, variable) pairs given")
        for _, v in pairs:
            _check_variable(v, self._name)
        vars_ = [v for _, v in pairs]
        _check_unique(vars_, self._name)
        graph = vars_[0].graph
        for v in vars_:
            if v.graph is not graph:
                raise ValueError(f"{self._name}: variables '{vars_[0].op.name}' and '{v.op.name}' belong "
                                 f"to different graphs")
        kept = [(_as_grad(g, v), v) for g, v in pairs if g is not None]
        if not kept:
            names = ", ".join(f"'{v.op.name}'" for v in vars_)
            raise ValueError(f"{self._name}: no gradients provided for any variable: {names}; check that "
                             f"the loss depends on them")
        return kept

    def _create_slots(self, var_list: Sequence[Variable]) -> None:
        for slot, suffix in self._slot_suffixes().items():
            per_var = self._slots.setdefault(slot, {})
            for var in var_list:
                if var not in per_var:
                    per_var[var] = Variable(zeros(var.shape, var.dtype), trainable=False,
                                            name=f"{var.op.name}/{suffix}")
        self._create_non_slots(var_list)

    def _slot(self, var: Variable, name: str) -> Variable:
        return self._slots[name][var]

    def _hyper(self, value: Hyper, dtype: np.dtype) -> Hyper:
        """A hyperparameter usable next to tensors of ``dtype``: a Python float (weak), or a tensor
        cast to ``dtype`` once per step op."""
        if not isinstance(value, Tensor):
            return value
        return self._cached(("hyper", id(value), dtype), lambda: cast(value, dtype))

    def _cached(self, key: tuple, build: Callable[[], Tensor]) -> Tensor:
        """Build a tensor once per ``apply_gradients`` call (shared by all its variables)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


class GradientDescentOptimizer(Optimizer):
    """``var -= learning_rate * grad``."""

    def __init__(self, learning_rate: Hyper, name: str = "GradientDescent"):
        super().__init__(name)
        self._lr = _scalar_hyper(learning_rate, "learning_rate")

    def _updates(self, grad: Tensor, var: Variable) -> List[Update]:
        return [(var, var - self._hyper(self._lr, var.dtype) * grad)]


class MomentumOptimizer(Optimizer):
    """``accum = momentum * accum + grad; var -= lr * accum``
    (Nesterov: ``var -= lr * (grad + momentum * accum)`` with the new ``accum``)."""

    def __init__(self, learning_rate: Hyper, momentum: Hyper, use_nesterov: bool = False,
                 name: str = "Momentum"):
        super().__init__(name)
        self._lr = _scalar_hyper(learning_rate, "learning_rate")
        self._momentum = _scalar_hyper(momentum, "momentum")
        self._nesterov = bool(use_nesterov)

    def _slot_suffixes(self) -> Dict[str, str]:
        return {"momentum": self._name}

    def _updates(self, grad: Tensor, var: Variable) -> List[Update]:
        lr, mu = self._hyper(self._lr, var.dtype), self._hyper(self._momentum, var.dtype)
        accum = self._slot(var, "momentum")
        new_accum = mu * accum + grad
        step = grad + mu * new_accum if self._nesterov else new_accum
        return [(accum, new_accum), (var, var - lr * step)]


class AdamOptimizer(Optimizer):
    """TF1's Adam: at step t, ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``,
    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g * g``,
    ``var -= lr_t * m / (sqrt(v) + epsilon)``.

    ``beta1^t`` and ``beta2^t`` are non-slot variables ``beta1_power`` / ``beta2_power`` (one pair
    per variable dtype), shared by every step op this optimizer builds, as in TF1."""

    def __init__(self, learning_rate: Hyper = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, name: str = "Adam"):
        super().__init__(name)
        self._lr = _scalar_hyper(learning_rate, "learning_rate")
        self._beta1 = _number(beta1, "beta1")
        self._beta2 = _number(beta2, "beta2")
        self._epsilon = _number(epsilon, "epsilon")
        self._powers: Dict[Tuple[Graph, np.dtype], Tuple[Variable, Variable]] = {}

    def _slot_suffixes(self) -> Dict[str, str]:
        return {"m": f"{self._name}_m", "v": f"{self._name}_v"}

    def _create_non_slots(self, var_list: Sequence[Variable]) -> None:
        for var in var_list:
            key = (var.graph, var.dtype)
            if key not in self._powers:
                self._powers[key] = (Variable(self._beta1, trainable=False, name="beta1_power", dtype=var.dtype),
                                     Variable(self._beta2, trainable=False, name="beta2_power", dtype=var.dtype))

    def _non_slot_variables(self) -> List[Variable]:
        return [p for pair in self._powers.values() for p in pair]

    def _lr_t(self, var: Variable) -> Tensor:
        b1_power, b2_power = self._powers[(var.graph, var.dtype)]
        lr = self._hyper(self._lr, var.dtype)
        return self._cached(("lr_t", var.dtype), lambda: lr * sqrt(1.0 - b2_power) / (1.0 - b1_power))

    def _updates(self, grad: Tensor, var: Variable) -> List[Update]:
        m, v = self._slot(var, "m"), self._slot(var, "v")
        new_m = self._beta1 * m + (1.0 - self._beta1) * grad
        new_v = self._beta2 * v + (1.0 - self._beta2) * (grad * grad)
        new_var = var - self._lr_t(var) * new_m / (sqrt(new_v) + self._epsilon)
        return [(m, new_m), (v, new_v), (var, new_var)]

    def _finish(self, var_list: Sequence[Variable]) -> List[Update]:
        keys = list(dict.fromkeys((v.graph, v.dtype) for v in var_list))
        return [(power, power * beta) for key in keys
                for power, beta in zip(self._powers[key], (self._beta1, self._beta2))]


# -- validation helpers -----------------------------------------------------------------

def _check_variable(v, who: str) -> None:
    if not isinstance(v, Variable):
        raise TypeError(f"{who}: expected a sg.Variable, got {v!r}")
    if not dtypes.is_floating(v.dtype):
        raise TypeError(f"{who}: only floating point tensors can require gradients: variable "
                        f"'{v.op.name}' has dtype {v.dtype.name}")


def _check_unique(var_list: Sequence[Variable], who: str) -> None:
    seen = set()
    for v in var_list:
        if v in seen:
            raise ValueError(f"{who}: variable '{v.op.name}' is listed twice")
        seen.add(v)


def _as_grad(grad, var: Variable) -> Tensor:
    grad = as_tensor(grad, dtype=var.dtype) if not isinstance(grad, Tensor) else grad
    if grad.graph is not var.graph:
        raise ValueError(f"gradient '{grad.name}' and variable '{var.op.name}' belong to different graphs")
    if grad.dtype != var.dtype:
        raise TypeError(f"gradient '{grad.name}' has dtype {grad.dtype.name} but variable '{var.op.name}' "
                        f"has dtype {var.dtype.name}")
    return grad


def _number(value, what: str) -> float:
    if isinstance(value, Tensor) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a Python number, got {value!r}")
    return float(value)


def _scalar_hyper(value, what: str) -> Hyper:
    """A float, or a floating scalar tensor (e.g. a placeholder fed each step)."""
    if not isinstance(value, Tensor):
        return _number(value, what)
    if not dtypes.is_floating(value.dtype):
        raise TypeError(f"{what} tensor '{value.name}' must be floating point, got {value.dtype.name}")
    if value.shape is not None and tuple(value.shape) != ():
        raise ValueError(f"{what} tensor '{value.name}' must be a scalar, got shape {value.shape}")
    return value
