"""Session state that outlives runs: variable values and per-op random generators."""
from __future__ import annotations

from typing import Dict

import numpy as np

from staticgraph.errors import FailedPreconditionError, InvalidArgumentError
from staticgraph.graph import Operation


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
            shape, dtype = var_op.attrs["shape"], var_op.attrs["dtype"]
            try:
                fits = np.broadcast_shapes(np.shape(value), shape) == tuple(shape)
            except ValueError:
                fits = False
            if not fits:
                raise InvalidArgumentError(
                    f"cannot assign a value of shape {tuple(np.shape(value))} to variable '{var_op.name}' "
                    f"of shape {tuple(shape)} (assign mode '{mode}')", var_op)
            if mode == "set":
                result = value
            else:
                old = self.read(var_op)
                result = old + value if mode == "add" else old - value
            new[var_op] = np.array(np.broadcast_to(result, shape), dtype=dtype)
        self.values.update(new)
