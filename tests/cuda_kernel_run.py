"""Runs a graph's kernel calls with the cuda launchers, without the cuda executable: the cpu
lowering builds the program and its records, the cpu ``Layout`` its host buffers (arenas, variable
storage, feeds, the record table ``M``); these are copied to the device (the CUDA simulator under
``NUMBA_ENABLE_CUDASIM=1``), every call runs its registered launcher in program order, and the
fetched buffers are copied back. For graphs whose calls all have cuda launchers (the kernel tests
of one family); the cuda executable runs whole graphs."""
from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")     # before numba.cuda is first imported

from numba import cuda  # noqa: E402

from compiler.backends.cpu.executable import Layout  # noqa: E402
from compiler.backends.cpu.lowering import Lowering  # noqa: E402
from compiler.backends.cuda.kernels import LAUNCHERS, conv, pool  # noqa: E402, F401 (their launchers register)
from compiler.schedule import schedule  # noqa: E402

# the cpu lowering's second phase of conv_bpf (the workers' partial sums): one cuda conv_bpf call
# computes the whole gradient, as under the cuda profile, which has no phases
CPU_PHASES = ("conv_bpf_reduce",)


def run(sess, fetches: Sequence, feeds: Sequence, values: Sequence[np.ndarray]
        ) -> Tuple[List[np.ndarray], List[str], Dict[str, np.ndarray]]:
    """The values of ``fetches`` (tensors) given ``feeds`` = ``values``, computed by the cuda
    launchers on buffers the cpu lowering lays out; the variables are ``sess``'s (initialized).
    Returns (fetched arrays, the kernels called in order, the last record of each kernel)."""
    prog = Lowering(schedule(list(fetches), [], list(feeds))).lower()
    state = sess._state
    state.values.ensure_slots(sorted(set(prog.reads) | {v for v, _, _, _ in prog.assigns}, key=lambda o: o.id))
    values = [np.asarray(v, dtype=t.dtype) for t, v in zip(feeds, values)]
    lay = Layout(prog, state, values)
    for view, value in zip(lay.feed_views, values):
        view[...] = value
    dev = {name: cuda.to_device(a) for name, a in lay.arrays.items()}
    M, E = cuda.to_device(lay.M), cuda.to_device(lay.E)
    kernels, records = [], {}
    for call in prog.calls + prog.writeback:
        if call.kernel in CPU_PHASES:
            continue
        if call.kernel not in LAUNCHERS:
            raise AssertionError(f"no cuda launcher for kernel {call.kernel!r} (this harness runs graphs of "
                                 f"launched kernels only)")
        rec = lay.M[call.pos:call.pos + call.size]
        LAUNCHERS[call.kernel]([dev[prog.array_name(k)] for k in call.args], M, E, call.pos, rec, 0)
        kernels.append(call.kernel)
        records[call.kernel] = rec
    cuda.synchronize()
    assert not E.copy_to_host()[0], "a kernel reported a data error"
    host = {name: d.copy_to_host() for name, d in dev.items()}
    return [Layout._view(prog, host, lay.env, k).copy() for k in prog.fetch_keys], kernels, records
