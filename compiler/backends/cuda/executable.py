"""The cuda executable: the cpu lowering's program run as kernel launches on one CUDA stream.

``CudaExecutable(sched)``: graph passes without fusion (the base tier), then the cpu ``Lowering``
with the cuda profile (``profile.py``); every call's kernel must have a launcher
(``kernels.LAUNCHERS``), else a compile-time error naming the op and its line. Per shape
signature (``CudaLayout``) the cpu backend's host side plans the step (``cpu/executable.plan_host``:
concrete shapes, the memory plan, every key's offset, the plan-entry checks; ``record_table``:
``M``), then the device side: one arena per dtype, ``M`` and ``E`` copied to the device once,
constants written once, and per feed and fetch a device view and a host staging array (pinned
on a real GPU). A new batch size is a new layout: buffers re-planned, nothing recompiled.

A step, under ``state.lock``: the session's variables made current on the device
(``memory.DeviceVariables.push``), feeds and host values (random ops) copied in, the main
launches, the error slots read (only when write-back follows: assigns land only after a step
without data errors, as on cpu), the write-back launches (the assigns, into the device
variables), fetches and ``E`` copied out, one synchronize. On a real GPU a signature's second
step captures the main and write-back launches as CUDA graphs, replayed from then on
(``graphs.py``; plain launches where capture fails). Every device allocation goes through
the executable's ``DeviceMemory`` (counted): a signature's first step allocates, later ones never.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, List, Sequence

import numpy as np

from ...sizes import num_elements
from ...schedule import Schedule
from ...state import SessionState
from ..base import Executable
from ..cpu.executable import _optimize, kernel_error, plan_host, record_table
from ..cpu.lowering import Lowering, Program, call_lines, describe
from . import driver, graphs
from .kernels import LAUNCHERS, load_all
from .kernels.gemm import engine
from .memory import DeviceMemory, DeviceVariables, pinned
from .profile import CUDA_PROFILE


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# The CUDA simulator runs one kernel at a time per process (its kernel context is a global: a
# launch from a second Python thread meanwhile fails, "'Thread' object has no attribute
# 'blockIdx'"): there, steps of all sessions run one at a time. A GPU takes launches from several
# threads (each plan has its own stream).
_SIMULATOR_LOCK = threading.Lock() if driver.simulated() else _NoLock()


def launchers_of(prog: Program) -> List:
    """The launcher of every call of ``prog``, in order; a call with none (or a host call) is a
    ``NotImplementedError`` naming its op and the user's line."""
    load_all()
    out = []
    for call in prog.all_calls:
        if call.host is not None:
            raise NotImplementedError(
                f"the cuda backend does not run the host call '{call.kernel}' of {describe(prog, call)} "
                f"(collectives: sg.distributed runs on target='cpu')")
        fn = LAUNCHERS.get(call.kernel)
        if fn is None:
            raise NotImplementedError(
                f"the cuda backend has no kernel '{call.kernel}' for {describe(prog, call)}; "
                f"register a launcher with @launches('{call.kernel}') in compiler/backends/cuda/kernels/, "
                f"or run this graph with sg.Session(target='cpu')")
        out.append(fn)
    return out


class CudaLayout:
    """One shape signature on the device: arenas, ``M``/``E``, staging, bound launches."""

    def __init__(self, exe: "CudaExecutable", state: SessionState, values: Sequence[np.ndarray]):
        t0 = time.perf_counter()
        prog, mem, stream = exe.prog, exe.memory, exe.stream
        shapes, env, arena = plan_host(prog, state, [v.shape for v in values])
        self.env, self.arena = env, arena
        M = record_table(prog, env)
        self.M = mem.copy_of(M, stream)
        self.E = mem.empty(4, np.int64)
        self.E_host = pinned(4, np.int64)
        self.E_zero = pinned(4, np.int64)
        self.E_zero[:] = 0
        arrays: Dict[str, object] = {f"A_{np.dtype(dt).name}": mem.empty(n, dt) for dt, n in arena.sizes.items()}
        for dt, dev in state.values.mirror.arrays.items():
            arrays[f"S_{np.dtype(dt).name}"] = dev
        for t in prog.schedule.feeds:
            arrays[prog.array_name(t)] = mem.empty(num_elements(shapes[t], ""), prog.dtypes[t])
        for name in prog.arg_names:
            if name not in arrays:     # a dtype with no buffers this signature
                arrays[name] = mem.empty(1, name.split("_", 1)[1])

        def place(key):
            """(device view, host staging, shape) of ``key``'s buffer; no view when it is empty."""
            shape = env.shape(key)
            n = num_elements(shape, "")
            off = env.off(key)
            dev = arrays[prog.array_name(key)][off:off + n] if n else None
            return dev, pinned(n, prog.dtypes[prog.root(key)]), shape
        for key, fn in prog.consts.items():
            dev, host, shape = place(key)
            if dev is not None:
                host[:dev.size].reshape(shape)[...] = fn(env)
                dev.copy_to_device(host[:dev.size], stream=stream)
        self.feeds = [place(t) for t in prog.schedule.feeds]
        self.hosts = [(place(key), fn) for key, fn in prog.hosts.items()]
        self.fetches = [place(key) for key in prog.fetch_keys]
        n_main = len(prog.calls)
        bound = [(fn, tuple(arrays[prog.array_name(k)] for k in c.args), c.pos, [int(x) for x in M[c.pos:c.pos + c.size]])
                 for fn, c in zip(exe.launchers, prog.all_calls)]
        self.main, self.writeback = bound[:n_main], bound[n_main:]
        self.graphs = None              # (main, write-back) CUDA graphs, captured at the second step
        self.graph_note = graphs.why_not() or "captured at this signature's second step"
        self.steps = 0
        self.ran = False
        self.plan_seconds = time.perf_counter() - t0
        stream.synchronize()

    def _copy_in(self, placed, value, stream) -> None:
        dev, host, shape = placed
        if dev is not None:
            host[:dev.size].reshape(shape)[...] = value
            dev.copy_to_device(host[:dev.size], stream=stream)

    def step(self, state: SessionState, values: Sequence[np.ndarray], stream) -> bool:
        """Run the step; False (nothing written back, fetches not copied) when a kernel reported
        a data error in ``E_host``."""
        for placed, value in zip(self.feeds, values):
            self._copy_in(placed, value, stream)
        for placed, fn in self.hosts:
            self._copy_in(placed, fn(state, self.env), stream)
        self.E.copy_to_device(self.E_zero, stream=stream)
        self.steps += 1
        if self.steps == 2 and graphs.why_not() is None:
            self._capture(stream)
        self._launch(0, self.main, stream)
        if self.writeback:
            self.E.copy_to_host(self.E_host, stream=stream)
            stream.synchronize()
            if self.E_host[0]:
                return False
            self._launch(1, self.writeback, stream)
        for dev, host, _ in self.fetches:
            if dev is not None:
                dev.copy_to_host(host[:dev.size], stream=stream)
        self.E.copy_to_host(self.E_host, stream=stream)
        stream.synchronize()
        return not self.E_host[0]

    def _capture(self, stream) -> None:
        """Capture the main and write-back launches as CUDA graphs; on failure stay on launches."""
        try:
            self.graphs = tuple(graphs.Graph(part, self.M, self.E, stream) if part else None
                                for part in (self.main, self.writeback))
            self.graph_note = "replayed as CUDA graphs (main, write-back)"
        except Exception as exc:  # noqa: BLE001 - launches still work: say why in explain()
            self.graphs = None
            self.graph_note = f"plain launches: capture failed ({type(exc).__name__}: {exc})"

    def _launch(self, part: int, launches, stream) -> None:
        """Run ``launches`` (part 0: main, 1: write-back): their graph's replay, or one launch each."""
        graph = self.graphs[part] if self.graphs is not None else None
        if graph is not None:
            graph.launch(stream)
            return
        for fn, arrays, p, rec in launches:
            fn(arrays, self.M, self.E, p, rec, stream)

    def results(self) -> List[np.ndarray]:
        """The fetched values, copies the caller owns."""
        return [host[:num_elements(shape, "")].reshape(shape).copy() for _, host, shape in self.fetches]


class CudaExecutable(Executable):
    """One compiled plan on the cuda target (see the module docstring)."""

    target = "cuda"

    def __init__(self, sched: Schedule):
        from numba import cuda
        t0 = time.perf_counter()
        opt = _optimize(sched, fusion=False)
        self.report = opt.report if opt else []
        self.prog = prog = Lowering(opt.schedule if opt else sched, CUDA_PROFILE).lower()
        self.launchers = launchers_of(prog)
        self.gemm = engine()          # cuBLAS or the tiled kernel, decided once per process
        self.positions = [c.pos for c in prog.all_calls]
        self._vars = sorted(set(prog.reads) | {v for v, _, _, _ in prog.assigns}, key=lambda o: o.id)
        self._assigned = [v for v, _, _, _ in prog.assigns]
        self.memory = DeviceMemory()
        self.stream = cuda.stream()
        self.layouts: Dict[tuple, CudaLayout] = {}
        self._layout_version = -1
        self.compile_seconds = time.perf_counter() - t0

    def layout(self, state: SessionState, values: Sequence[np.ndarray]) -> CudaLayout:
        """The device variables made current, and the layout of these feed shapes (planned on first sight)."""
        vals = state.values
        if vals.mirror is None:
            vals.mirror = DeviceVariables()
        if self._layout_version != vals.layout_version:
            vals.ensure_slots(self._vars)
            self.layouts.clear()
            self._layout_version = vals.layout_version
        vals.mirror.push(vals, self.stream)
        sig = tuple(v.shape for v in values)
        lay = self.layouts.get(sig)
        if lay is None:
            lay = self.layouts[sig] = CudaLayout(self, state, values)
        return lay

    def run(self, state: SessionState, values: Sequence[np.ndarray]) -> List[np.ndarray]:
        with state.lock, _SIMULATOR_LOCK:
            lay = self.layout(state, values)
            if not lay.step(state, values, self.stream):
                raise kernel_error(self.prog, self.positions, lay.E_host, lay.env)
            if self._assigned:
                state.values.device_wrote()
                if not lay.ran:
                    state.values.mark_initialized(self._assigned)
            lay.ran = True
            return lay.results()

    @property
    def allocations(self) -> int:
        """Device allocations this executable has made (its layouts' arenas, tables, feed arrays)."""
        return self.memory.allocations

    def explain(self) -> str:
        prog = self.prog
        device = "the CUDA simulator" if driver.simulated() else _device_name()
        why = graphs.why_not()
        lines = [f"cuda plan (base tier, unfused; on {device})",
                 "  launches: one per call on one stream" + (f" (not captured as a CUDA graph: {why})" if why else
                                                            "; per shape signature captured as CUDA graphs"),
                 f"  GEMMs: {self.gemm}"]
        if self.report:
            lines.append("  passes (ops before -> after, time):")
            for name, before, after, secs in self.report:
                lines.append(f"    {name:<18} {before:>5} -> {after:<5} {secs * 1e3:8.2f} ms")
        lines.append(f"  compile: passes+lower {self.compile_seconds * 1e3:.1f} ms; {len(prog.all_calls)} calls of "
                     f"{len({c.kernel for c in prog.all_calls})} kernels")
        lines.append("  calls:")
        lines += call_lines(prog)
        for sig, lay in self.layouts.items():
            a = lay.arena
            lines.append(f"  buffers for feed shapes {sig}: {len(a.offsets)} buffers in {len(a.intervals)} slots, "
                         f"{len(a.inplace)} in place, peak {a.peak_bytes} bytes; planned in "
                         f"{lay.plan_seconds * 1e3:.2f} ms; {lay.graph_note}")
        lines.append(f"  device allocations: {self.memory.allocations} ({self.memory.bytes} bytes) by this plan")
        return "\n".join(lines)


def _device_name() -> str:
    from numba import cuda
    try:
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - a name for explain(), nothing depends on it
        return "a CUDA GPU"
