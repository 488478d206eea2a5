"""Device memory of the cuda backend, every allocation counted.

``DeviceMemory`` is the one way the backend allocates on the device: each executable and the
session's device variables own one, and its ``allocations`` count is the plan's own accounting
(``tests/test_cuda_memory.py``: steps after a signature's first allocate nothing).
``DeviceVariables`` keeps the session's variables resident on the device in flat per-dtype
storage that mirrors ``state.values.storage`` (the sync protocol: ``compiler/state.py``).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

STATS = {"allocations": 0, "bytes": 0}     # every device allocation of this process


class DeviceMemory:
    """Allocates device arrays and counts them (``allocations``, ``bytes``)."""

    def __init__(self):
        self.allocations = 0
        self.bytes = 0

    def empty(self, n: int, dtype):
        """A flat device array of ``n`` elements (at least 1) of ``dtype``, uninitialized."""
        from numba import cuda
        dtype = np.dtype(dtype)
        n = max(int(n), 1)
        self.allocations += 1
        self.bytes += n * dtype.itemsize
        STATS["allocations"] += 1
        STATS["bytes"] += n * dtype.itemsize
        return cuda.device_array(n, dtype)

    def copy_of(self, host: np.ndarray, stream):
        """A new device array holding the flat ``host`` array."""
        dev = self.empty(host.size, host.dtype)
        if host.size:
            dev[:host.size].copy_to_device(np.ascontiguousarray(host).reshape(-1), stream=stream)
        return dev


def pinned(n: int, dtype) -> np.ndarray:
    """A flat host staging array (page-locked on a real GPU: its copies run asynchronously)."""
    from numba import cuda
    return cuda.pinned_array(max(int(n), 1), np.dtype(dtype))


class DeviceVariables:
    """The session's variables on the device: one flat array per dtype, laid out as the host
    storage (same slot offsets), so a record's offsets into ``S_<dtype>`` hold on both sides."""

    def __init__(self):
        self.memory = DeviceMemory()
        self.arrays: Dict[np.dtype, object] = {}
        self._layout = -1
        self._host = -1

    def push(self, values, stream) -> None:
        """Make the device copy current: a new layout allocates the arrays, a host write since the
        last push copies the host storage in (``values.sync_host()`` ran before either)."""
        if self._layout != values.layout_version:
            self.arrays = {dt: self.memory.empty(buf.size, dt) for dt, buf in values.storage.items()}
            self._layout, self._host = values.layout_version, -1
        if self._host != values.host_version:
            for dt, buf in values.storage.items():
                if buf.size:
                    self.arrays[dt].copy_to_device(buf, stream=stream)
            self._host = values.host_version

    def pull(self, values) -> None:
        """Copy the device values into the host storage (synchronous)."""
        for dt, dev in self.arrays.items():
            host = values.storage.get(dt)
            if host is not None and host.size:
                dev.copy_to_host(host)
