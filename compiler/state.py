"""Session state that outlives runs: variable values and per-op random generators."""
from __future__ import annotations

from typing import Dict

import numpy as np

from staticgraph.errors import FailedPreconditionError
from staticgraph.graph import Operation
from staticgraph.values import convert_value


class SessionState:
    """Variable values keyed by Variable op, and the random generator of each random op."""

    def __init__(self):
        self.values: Dict[Operation, np.ndarray] = {}
        self._rngs: Dict[Operation, np.random.Generator] = {}
        self.closed = False

    def read(self, var_op: Operation) -> np.ndarray:
        try:
            return self.values[var_op]
        except KeyError:
            raise FailedPreconditionError(
                f"Attempting to use uninitialized variable '{var_op.name}' (shape "
                f"{var_op.outputs[0].shape}, dtype {var_op.outputs[0].dtype.name}); run "
                f"sg.global_variables_initializer() or its initializer first", var_op) from None

    def rng(self, op: Operation) -> np.random.Generator:
        gen = self._rngs.get(op)
        if gen is None:
            gen = self._rngs[op] = np.random.default_rng(op.attrs.get("seed"))
        return gen

    def apply(self, updates: Dict[Operation, tuple]) -> None:
        """Land a run's assigns together: ``updates[var_op] = (mode, value)``."""
        new = {}
        for var_op, (mode, value) in updates.items():
            value = _assigned_value(var_op, value, mode)
            if mode != "set":
                old = self.read(var_op)
                value = old + value if mode == "add" else old - value
            new[var_op] = np.array(value, dtype=var_op.attrs["dtype"])
        self.values.update(new)


def _assigned_value(var_op: Operation, value, mode: str) -> np.ndarray:
    """An assign's value checked and converted by the one value rule (broadcast to the variable)."""
    return convert_value(value, var_op.attrs["dtype"], var_op.attrs["shape"], f"variable '{var_op.name}'",
                         op=var_op, broadcast=True, verb=f"assign (mode '{mode}')")
