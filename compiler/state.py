"""Session state that outlives runs: variable values and per-op random generators.

Variable values live in one flat buffer per dtype (``SessionState.storage``):
compiled plans take that handful of arrays instead of one array per variable.
``values[var_op]`` is a view of the variable's slot; assigning
``values[var_op] = array`` copies into the slot. When a variable without a slot
is first set, the buffers are re-laid out (``layout_version`` grows, so plans
re-read slot offsets). ``lock`` serialises runs and writes of one session.

A device copy (the cuda backend keeps the variables resident on its GPU, ``mirror``) follows
one protocol, all under ``lock``:

- host writes (``set_variable_value``, ``Saver.restore``, assigns landed by the reference
  interpreter's ``apply``, a re-layout) bump ``host_version``: the mirror copies the host storage in
  before its next step (``mirror.push``);
- a step that assigns on the device calls ``device_wrote()``: the host storage is stale until
  ``sync_host()`` copies the device values back (``mirror.pull``), which every host read does
  first (``values[var]``: fetching on the reference path, ``get_variable_value``, ``Saver.save``),
  and so does a host write (the variables it does not write keep their device values).
"""
from __future__ import annotations

import threading
from typing import Dict, Iterable, Iterator, MutableMapping, Tuple

import numpy as np

from staticgraph.errors import FailedPreconditionError
from staticgraph.graph import Operation
from staticgraph.values import check_broadcastable, convert_value

from .sizes import check_bytes, checked_size, num_elements

ALIGN = 16   # slot offsets are multiples of 16 elements (64 bytes for float32)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class VariableValues(MutableMapping):
    """``var_op -> ndarray`` over flat per-dtype storage (views in, copies on write)."""

    def __init__(self):
        self.storage: Dict[np.dtype, np.ndarray] = {}
        self.slots: Dict[Operation, Tuple[np.dtype, int, tuple]] = {}   # var -> (dtype, offset, shape)
        self._views: Dict[Operation, np.ndarray] = {}
        self._initialized: Dict[Operation, None] = {}
        self.layout_version = 0
        self.host_version = 0       # grows with every host write (a device copy is then stale)
        self.mirror = None          # a device copy: ``pull(values)`` copies its values into storage
        self._device_newer = False  # the mirror holds values the host storage lacks

    # -- a device copy (see the module docstring) ----------------------------------------
    def device_wrote(self) -> None:
        """A step assigned variables in the device copy: host reads must pull first."""
        self._device_newer = True

    def sync_host(self) -> None:
        """Copy the device values into the host storage if they are newer."""
        if self._device_newer:
            self.mirror.pull(self)
            self._device_newer = False

    # -- layout ------------------------------------------------------------------------
    def ensure_slots(self, var_ops: Iterable[Operation]) -> None:
        """Give every variable in ``var_ops`` a slot (re-laying out storage if needed)."""
        new = [v for v in var_ops if v not in self.slots]
        if not new:
            return
        self.sync_host()          # the old storage is copied into the new one
        sizes: Dict[np.dtype, int] = {dt: buf.size for dt, buf in self.storage.items()}
        slots = dict(self.slots)
        for v in sorted(new, key=lambda o: o.id):
            dt, shape = np.dtype(v.attrs["dtype"]), tuple(v.attrs["shape"])
            off = sizes.get(dt, 0)
            slots[v] = (dt, off, shape)
            sizes[dt] = off + _aligned(max(checked_size(shape, dt, f"variable '{v.name}'", v), 1))
        storage = {}
        for dt, size in sizes.items():
            check_bytes(size * dt.itemsize, f"the session's {dt.name} variables ({len(slots)} in all)")
            buf = np.zeros(size, dt)
            old = self.storage.get(dt)
            if old is not None:
                buf[:old.size] = old
            storage[dt] = buf
        self.storage, self.slots = storage, slots
        self._views = {v: self._make_view(v) for v in slots}
        self.layout_version += 1
        self.host_version += 1

    def _make_view(self, v: Operation) -> np.ndarray:
        dt, off, shape = self.slots[v]
        n = num_elements(shape, "")      # checked by ensure_slots
        return self.storage[dt][off:off + n].reshape(shape)

    def mark_initialized(self, var_ops: Iterable[Operation]) -> None:
        for v in var_ops:
            self._initialized[v] = None

    # -- mapping -----------------------------------------------------------------------
    def __getitem__(self, v: Operation) -> np.ndarray:
        if v not in self._initialized:
            raise KeyError(v)
        self.sync_host()
        return self._views[v]

    def __setitem__(self, v: Operation, value) -> None:
        self.ensure_slots([v])
        self.sync_host()
        self._views[v][...] = value
        self._initialized[v] = None
        self.host_version += 1

    def update(self, values=(), /) -> None:
        """``MutableMapping.update`` with one re-layout for all the new variables (an initializer
        of hundreds of variables re-laid out the storage once per variable: quadratic)."""
        values = dict(values)
        self.ensure_slots(values)
        for v, value in values.items():
            self[v] = value

    def __delitem__(self, v: Operation) -> None:
        del self._initialized[v]

    def __contains__(self, v) -> bool:
        return v in self._initialized

    def __iter__(self) -> Iterator[Operation]:
        return iter(list(self._initialized))

    def __len__(self) -> int:
        return len(self._initialized)


class SessionState:
    """Variable values keyed by Variable op, and the random generator of each random op."""

    def __init__(self):
        self.values = VariableValues()
        self._rngs: Dict[Operation, np.random.Generator] = {}
        self.closed = False
        self.lock = threading.RLock()

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
        with self.lock:
            self.values.update(new)


def _assigned_value(var_op: Operation, value, mode: str) -> np.ndarray:
    """An assign's value checked and converted by the one value rule (broadcast to the variable)."""
    return convert_value(value, var_op.attrs["dtype"], var_op.attrs["shape"], f"variable '{var_op.name}'",
                         op=var_op, broadcast=True, verb=f"assign (mode '{mode}')")


def check_assign_shape(var_op: Operation, value_shape: tuple, mode: str) -> None:
    """The value rule's shape check for an assign of ``value_shape`` (compiled plans call it at plan entry)."""
    check_broadcastable(value_shape, var_op.attrs["shape"], f"variable '{var_op.name}'", var_op,
                        f"assign (mode '{mode}')")
