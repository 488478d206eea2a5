"""The cpu backend's executable: a generated plan module plus one buffer layout per shape signature.

``compile(sched)``: optimise (``compiler.passes`` when present) -> lower -> generate
source -> PlanCache entry -> import. ``run(state, feeds)``: at a new shape
signature, propagate concrete shapes (each OpDef's ``infer`` on concrete
proxies; errors name the op), plan memory, write the int64 record table ``M``
and constants; then copy feeds and host values into the arena, make ONE call to
``step`` (plain Python calling compiled kernels for the first
``STATICGRAPH_JIT_AFTER`` runs, then the same source compiled by Numba), check
the error slots, and copy the fetches out.

Threads: the whole run of a session's plans holds ``state.lock`` (one step at a
time per session; reads see old values, assigns land atomically).
"""
from __future__ import annotations

import atexit
import bisect
import os
import threading
import sys
import time
from typing import Dict, List

import numpy as np

from staticgraph.errors import InternalError, InvalidArgumentError, OpError
from staticgraph.shapes import fmt, is_compatible

from ...memory import Arena, Buffer, plan_memory
from ...schedule import Schedule
from . import codegen, library
from .kernels import Env
from .lowering import FusionMismatch, Lowering, Program, Scratch, Slot

STATS = {"plans": 0, "jit_compiles": 0, "jit_cache_loads": 0, "layouts": 0}
_JIT_OPTIONS = dict(cache=True, error_model="numpy", nogil=True)


def jit_after() -> int:
    """Runs of a plan executed by the Python tier before its step is compiled by Numba."""
    return int(os.environ.get("STATICGRAPH_JIT_AFTER", "2"))


def jit_max_size() -> int:
    """``STATICGRAPH_JIT_MAX_SIZE``: plans with more kernel calls + fused instructions than this
    stay on the Python tier unless compiled explicitly (``plan.jit()``)."""
    return int(os.environ.get("STATICGRAPH_JIT_MAX_SIZE", "600"))


def jit_mode() -> str:
    """``STATICGRAPH_JIT``: "off" (default: the generated step runs as Python calling the compiled
    kernels, unless ``plan.jit()`` compiles it), "sync" (compile natively in the run that crosses
    ``STATICGRAPH_JIT_AFTER``) or "background" (compile in a thread, swap in when ready; a busy
    Python loop starves it of the GIL, so it can take minutes).

    "off" is the default because compiling a whole step natively costs ~1 s per kernel call on
    this design (Numba re-optimises each inlined kernel: 20 s for the lecture DAG's 24 calls on a
    loaded 2-core machine), a pause no training loop should meet by surprise; the native step is
    cached on disk, so ``plan.jit()`` pays it once per graph."""
    mode = os.environ.get("STATICGRAPH_JIT", "off")
    if mode not in ("background", "sync", "off"):
        raise ValueError(f"STATICGRAPH_JIT={mode!r}: expected 'background', 'sync' or 'off'")
    return mode


_THREADS: List[threading.Thread] = []


@atexit.register
def _join_compiles() -> None:
    for t in list(_THREADS):
        t.join()


class _Proxy:
    """A tensor with a concrete shape, for calling an OpDef's ``infer`` at plan entry."""

    def __init__(self, t, shape):
        self._t, self.shape = t, tuple(shape)

    @property
    def ndim(self):
        return len(self.shape)

    def __getattr__(self, name):
        return getattr(self._t, name)


def _shapes_text(op, shapes) -> str:
    return ", ".join(f"'{t.name}' {shapes.get(t, '?')}" for t in op.inputs)


def concrete_shapes(prog: Program, feed_shapes) -> Dict[object, tuple]:
    """Concrete shape of every key of ``prog`` given the fed shapes (clear errors naming the op)."""
    sched = prog.schedule
    shapes: Dict[object, tuple] = {t: tuple(s) for t, s in zip(sched.feeds, feed_shapes)}
    fed = set(sched.feeds)
    for op in sched.ops:
        if not op.outputs or all(t in fed for t in op.outputs):
            continue
        if op.type == "Variable":
            outs = [tuple(op.attrs["shape"])]
        elif op.type == "Const":
            outs = [op.attrs["value"].shape]
        else:
            try:
                proxies = [_Proxy(t, shapes[t]) for i, t in enumerate(op.inputs)]
                specs = op.opdef.infer(*proxies, **op.attrs)
            except OpError:
                raise
            except (ValueError, TypeError, IndexError) as exc:
                raise InvalidArgumentError(f"{op.type} op '{op.name}' failed on inputs "
                                           f"{_shapes_text(op, shapes)}: {exc}", op) from None
            if isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], np.dtype):
                specs = [specs]
            outs = [s for s, _ in specs]
        for t, s in zip(op.outputs, outs):
            if t in fed:
                continue
            if s is None or None in s or not is_compatible(t.shape, s):
                raise InternalError(f"op '{op.name}' ({op.type}) has run-time shape {s}, but its static "
                                    f"shape is {fmt(t.shape)}", op)
            shapes[t] = tuple(int(d) for d in s)
    for key in prog.dtypes:
        if isinstance(key, Slot):
            shapes[key] = tuple(key.var.attrs["shape"])
    env = Env(shapes, {})
    for key in prog.dtypes:
        if isinstance(key, Scratch):
            shapes[key] = tuple(key.shape_fn(env)) if key.shape_fn is not None else shapes[key.like]
    return shapes


class Layout:
    """Everything one shape signature needs: arenas, record table, views of feeds and fetches."""

    def __init__(self, prog: Program, state, feed_values):
        t0 = time.perf_counter()
        shapes = concrete_shapes(prog, [v.shape for v in feed_values])
        for var in prog.reads:
            state.read(var)     # FailedPreconditionError for an uninitialized variable
        for var, _, mode, _ in prog.assigns:
            if mode != "set":
                state.read(var)
        env = Env(shapes, {})
        self.arena = arena = self._plan(prog, shapes)
        for key in list(shapes) + list(prog.alias):
            root = prog.root(key)
            if isinstance(root, Slot):
                env.offsets[key] = state.values.slots[root.var][1]
            elif root in arena.offsets:
                env.offsets[key] = arena.offsets[root]
        for op, check in prog.checks:
            try:
                check(env)
            except OpError:
                raise
            except (ValueError, IndexError) as exc:
                raise InvalidArgumentError(f"{op.type} op '{op.name}' failed on inputs "
                                           f"{_shapes_text(op, shapes)}: {exc}", op) from None
        self.env = env
        arrays = {f"A_{np.dtype(dt).name}": np.zeros(max(n, 1), dt) for dt, n in arena.sizes.items()}
        for dt, buf in state.values.storage.items():
            arrays[f"S_{np.dtype(dt).name}"] = buf
        M = np.zeros(max(prog.record_size, 1), np.int64)
        for call in prog.all_calls:
            rec = call.record(env)
            if len(rec) != call.size:
                raise InternalError(f"record of {call.kernel} has {len(rec)} entries, expected {call.size}", call.op)
            M[call.pos:call.pos + call.size] = rec
        self.E = np.zeros(4, np.int64)
        names = codegen.arg_names(prog)
        for name in names:
            if name not in arrays:   # a dtype with no buffers this signature (e.g. all sizes 0)
                arrays[name] = np.zeros(1, np.dtype(name[2:]))
        self.args = tuple(arrays[n] for n in names) + (M, self.E)
        self.M = M
        self.arrays = arrays
        view = lambda key: self._view(prog, arrays, env, key)   # noqa: E731
        for key, fn in prog.consts.items():
            view(key)[...] = fn(env)
        self.feed_views = [view(t) for t in prog.schedule.feeds]
        self.hosts = [(view(k), fn) for k, fn in prog.hosts.items()]
        self.fetch_views = [view(k) for k in prog.fetch_keys]
        self.ran = False
        self.plan_seconds = time.perf_counter() - t0
        STATS["layouts"] += 1

    @staticmethod
    def _view(prog, arrays, env, key) -> np.ndarray:
        shape = env.shape(key)
        n = int(np.prod(shape, dtype=np.int64))
        buf = arrays[prog.array_name(key)]
        off = env.off(key)
        return buf[off:off + n].reshape(shape)

    @staticmethod
    def _plan(prog: Program, shapes) -> Arena:
        """Liveness of every arena root, then ``memory.plan_memory``."""
        end_of_step = len(prog.all_calls) + 1
        start: Dict[object, int] = {}
        end: Dict[object, int] = {}

        def use(key, t):
            root = prog.root(key)
            if isinstance(root, Slot):
                return
            start.setdefault(root, t)
            end[root] = max(end.get(root, t), t)
        for t in prog.schedule.feeds:
            use(t, 0)
        for key in prog.hosts:
            use(key, 0)
        for call in prog.all_calls:
            for key in call.args:
                use(key, call.index)
        for key in prog.fetch_keys:
            use(key, end_of_step)
        pinned = {prog.root(k) for k in prog.consts}
        buffers = []
        for root in start:
            size = int(np.prod(shapes[root], dtype=np.int64))
            buffers.append(Buffer(root, np.dtype(prog.dtypes[root]), size, start[root], end[root], root in pinned))
        for root in pinned - set(start):
            buffers.append(Buffer(root, np.dtype(prog.dtypes[root]), int(np.prod(shapes[root], dtype=np.int64)),
                                  0, end_of_step, True))
        inplace = []
        for call in prog.calls:
            out = call.args[-1]
            for key in call.inplace:
                if prog.space(key) == "A" and shapes[key] == shapes[out]:
                    inplace.append((out, prog.root(key), call.index))
        return plan_memory(buffers, inplace)


class Tier:
    """One lowered program with its generated module and layouts: the Python tier (unfused,
    kernels compiled, glue in Python) or the native tier (fused, whole step compiled)."""

    def __init__(self, sched: Schedule, report, title: str):
        import numba
        from compiler.cache import PlanCache, cache_key
        t0 = time.perf_counter()
        self.schedule, self.report = sched, list(report or [])
        self.prog = prog = Lowering(sched).lower()
        self.source = codegen.generate(prog, title)
        self.cache = PlanCache()
        self.key = cache_key("staticgraph-cpu-plan", self.source, library.SOURCE_HASH, numba.__version__,
                             f"py{sys.version_info[0]}.{sys.version_info[1]}", "cpu")
        manifest = {"target": "cpu", "numba": numba.__version__, "kernels": library.SOURCE_HASH,
                    "ops": len(sched.ops), "tier": title,
                    "op_versions": sorted({f"{op.type}:{op.opdef.version}" for op in sched.ops})}
        self.entry = self.cache.entry(self.key, {"plan.py": self.source}, manifest)
        self.cache.verify_compiled(self.entry)
        self.module = self.cache.load_module(self.entry, "plan.py")
        self.step = self.module.step
        self.layouts: Dict[tuple, Layout] = {}
        self.positions = [c.pos for c in prog.all_calls]
        self.build_seconds = time.perf_counter() - t0

    def has_numba_cache(self) -> bool:
        import numba
        return not numba.config.DISABLE_JIT and any((self.entry / "__pycache__").glob("*.nbi"))


class CpuExecutable:
    """One compiled plan: ``run(state, feed_values) -> (fetch_values, {})`` (assigns land inside).

    Two tiers share the plan: the Python tier runs the generated step as Python calling the
    compiled library kernels (no per-plan native compile, so a plan is ready in milliseconds);
    after ``STATICGRAPH_JIT_AFTER`` runs the native tier (same generator, with fusion) is
    compiled by Numba (in that run, or in a background thread) and takes over. A warm disk cache
    makes the native tier available at once."""

    owns_fetches = True

    def __init__(self, sched: Schedule):
        t0 = time.perf_counter()
        self.original = sched
        self.kernels = library.load()
        opt = _optimize(sched, fusion=False)
        self.py = Tier(opt.schedule if opt else sched, opt.report if opt else [], "python tier")
        self.native = None          # built by jit()
        self._native_ready = False
        self._fallback = set()      # signatures the fused program cannot take (FusionMismatch)
        self._vars = sorted({v for v in self.py.prog.reads} | {v for v, _, _, _ in self.py.prog.assigns},
                            key=lambda o: o.id)
        self._assigned = [v for v, _, _, _ in self.py.prog.assigns]
        self._layout_version = -1
        self._hot = None            # (layout version, feed shapes, tier, layout) of the last run
        self.runs = 0
        self._jit_thread = None
        self._jit_lock = threading.Lock()
        self.jit_seconds = None
        self._want_jit = jit_after() <= 0
        if jit_mode() != "off" and not self._want_jit:
            self._want_jit = self._native_tier().has_numba_cache()   # warm: loading is cheap
        self.compile_seconds = time.perf_counter() - t0
        STATS["plans"] += 1

    # -- compatibility views ------------------------------------------------------------------
    @property
    def prog(self) -> Program:
        return self.tier.prog

    @property
    def tier(self) -> Tier:
        return self.native if self._native_ready else self.py

    @property
    def jitted(self) -> bool:
        return self._native_ready

    @property
    def source(self) -> str:
        return self.tier.source

    @property
    def key(self) -> str:
        return self.tier.key

    @property
    def entry(self):
        return self.tier.entry

    @property
    def _layouts(self):
        return self.tier.layouts

    # -- native tier ----------------------------------------------------------------------------
    def _native_tier(self) -> Tier:
        if self.native is None:
            opt = _optimize(self.original, fusion=True)
            if opt is None or not any(op.type == "FusedElementwise" for op in opt.schedule.ops):
                self.native = self.py if opt is None else Tier(opt.schedule, opt.report, "native tier")
            else:
                self.native = Tier(opt.schedule, opt.report, "native tier")
        return self.native

    def _start_jit(self) -> None:
        mode = jit_mode()
        if mode == "off" and not self._want_jit:
            return
        tier = self._native_tier()
        size = len(tier.prog.all_calls) + sum(len(op.attrs["program"]) for _, _, op in tier.prog.fused)
        if size > jit_max_size() and not tier.has_numba_cache():
            self._jit_thread = "too large"      # Numba needs ~15 ms per call site: stay on the Python tier
            return
        if mode != "background" or self._want_jit:
            self.jit()
            return
        self._jit_thread = t = threading.Thread(target=self._background_jit, daemon=True,
                                                name=f"staticgraph-jit-{self.py.key[:8]}")
        _THREADS.append(t)
        t.start()

    def _background_jit(self) -> None:
        try:
            self.jit()
        except Exception as exc:  # noqa: BLE001 - the Python tier keeps running; say why once
            import warnings
            warnings.warn(f"staticgraph: native compile of plan {self.py.key[:16]} failed, staying on the "
                          f"Python tier: {exc}", RuntimeWarning)
        finally:
            _THREADS[:] = [t for t in _THREADS if t is not threading.current_thread()]

    def jit(self, args=None, types=None) -> None:
        """Compile the native tier's step with Numba now (from the disk cache when there)."""
        with self._jit_lock:
            if not self._native_ready:
                self._jit()

    def _jit(self) -> None:
        import numba
        from numba.core.registry import CPUDispatcher
        t0 = time.perf_counter()
        tier = self._native_tier()
        mod = tier.module
        with tier.cache.compiling(tier.entry):
            for name in codegen.chunk_names(mod) + list(codegen.FUNCTIONS):
                fn = getattr(mod, name)
                if not isinstance(fn, CPUDispatcher):
                    setattr(mod, name, numba.njit(**_JIT_OPTIONS)(fn))
            step = mod.step
            if isinstance(step, CPUDispatcher):
                step.compile(self._step_types(tier))
                stats = step.stats
                STATS["jit_cache_loads" if stats.cache_hits and not stats.cache_misses else "jit_compiles"] += 1
        library.seal()
        tier.step = step
        self.jit_seconds = time.perf_counter() - t0
        self._native_ready = True
        self._hot = None

    @staticmethod
    def _step_types(tier: Tier) -> tuple:
        """Numba types of the step's arguments: 1-D C arrays per (space, dtype), then M and E."""
        from numba import types
        arrs = [types.Array(numba_dtype(name[2:]), 1, "C") for name in codegen.arg_names(tier.prog)]
        return tuple(arrs) + (types.Array(types.int64, 1, "C"), types.Array(types.int64, 1, "C"))

    # -- running -------------------------------------------------------------------------
    def layout(self, state, values):
        """(tier, layout) for these feed values (planned on first sight of their shapes)."""
        vals = state.values
        if self._layout_version != vals.layout_version:
            vals.ensure_slots(self._vars)
            if self._layout_version != vals.layout_version:
                self.py.layouts.clear()
                if self.native is not None:
                    self.native.layouts.clear()
                self._layout_version = vals.layout_version
        sig = tuple(v.shape for v in values)
        tier = self.native if self._native_ready and sig not in self._fallback else self.py
        lay = tier.layouts.get(sig)
        if lay is None:
            try:
                lay = Layout(tier.prog, state, values)
            except FusionMismatch:
                self._fallback.add(sig)
                tier = self.py
                lay = tier.layouts.get(sig) or Layout(tier.prog, state, values)
            tier.layouts[sig] = lay
        return tier, lay

    def run(self, state, values):
        with state.lock:
            self.runs += 1
            if not self._native_ready and self._jit_thread is None and (self._want_jit or self.runs > jit_after()):
                self._start_jit()
            hot = self._hot
            if hot is not None and hot[0] == state.values.layout_version and hot[1] == [v.shape for v in values]:
                tier, lay = hot[2], hot[3]
            else:
                tier, lay = self.layout(state, values)
                self._hot = (state.values.layout_version, [v.shape for v in values], tier, lay)
            for view, value in zip(lay.feed_views, values):
                view[...] = value
            for view, fn in lay.hosts:
                view[...] = fn(state, lay.env)
            E = lay.E
            E[0] = 0
            tier.step(*lay.args)
            if E[0]:
                raise self._error(tier, lay)
            if not lay.ran:
                state.values.mark_initialized(self._assigned)
                lay.ran = True
                self._hot = None      # a new tier may be ready: re-check next run
            return [v.copy() for v in lay.fetch_views], {}

    def _error(self, tier: Tier, lay: Layout) -> OpError:
        code, pos = int(lay.E[0]), int(lay.E[1])
        call = tier.prog.all_calls[bisect.bisect_right(tier.positions, pos) - 1]
        op = call.op
        msg = library.ERRORS.get(code, f"kernel error {code}")
        if callable(msg):          # a message built from the error slots: msg(op, E, env)
            msg = msg(op, lay.E, lay.env)
        return InvalidArgumentError(f"{op.type} op '{op.name}' failed on inputs "
                                    f"{_shapes_text(op, lay.env.shapes)}: {msg}", op)

    # -- description ------------------------------------------------------------------------
    def explain(self) -> str:
        tier = self.tier
        prog = tier.prog
        lines = [f"cpu plan {tier.key[:16]} ({'native' if self._native_ready else 'python'} tier; {tier.entry})"]
        if tier.report:
            lines.append("  passes (ops before -> after, time):")
            for name, before, after, secs in tier.report:
                lines.append(f"    {name:<18} {before:>5} -> {after:<5} {secs * 1e3:8.2f} ms")
        else:
            lines.append("  passes: none applied")
        lines.append(f"  compile: passes+lower+generate+load {self.compile_seconds * 1e3:.1f} ms; native step "
                     + (f"{self.jit_seconds * 1e3:.1f} ms" if self._native_ready else
                        f"not compiled (STATICGRAPH_JIT={jit_mode()}, after {jit_after()} runs"
                        + (", plan above STATICGRAPH_JIT_MAX_SIZE" if self._jit_thread == "too large" else "")
                        + ")"))
        lines.append(f"  kernels: {len(prog.all_calls)} calls of {len({c.kernel for c in prog.all_calls})} "
                     f"kernels; {len(prog.fused)} fused groups")
        for name, _, op in prog.fused:
            members = " ".join(t for t, _, _, _ in op.attrs["program"])
            lines.append(f"    {name}: {len(op.attrs['program'])} ops ({members}) -> {len(op.outputs)} outputs")
        for c in prog.all_calls:
            op = c.op
            outs = c.args[-1]
            lines.append(f"    {c.kernel:<14} {op.type + ' ' + repr(op.name) if op else '':<36} -> "
                         f"{getattr(outs, 'name', outs)}    # {op.defined_at if op else ''}")
        for sig, lay in tier.layouts.items():
            a = lay.arena
            lines.append(f"  buffers for feed shapes {sig}: {len(a.offsets)} buffers in "
                         f"{len(a.intervals)} slots, {len(a.inplace)} in place, peak {a.peak_bytes} bytes; "
                         f"planned in {lay.plan_seconds * 1e3:.2f} ms")
        return "\n".join(lines)


def numba_dtype(name: str):
    from numba import from_dtype
    return from_dtype(np.dtype(name))


def _optimize(sched: Schedule, fusion: bool):
    """``compiler.passes.optimize`` (without fusion for the Python tier); None if unavailable."""
    try:
        from compiler.passes import optimize
    except ImportError:
        return None
    return optimize(sched, disabled=() if fusion else ("fusion",))


class CpuBackend:
    """Backend object: compiles a Schedule into a CpuExecutable."""

    def __init__(self, target: str = "cpu"):
        self.target = target

    def compile(self, sched: Schedule) -> CpuExecutable:
        return CpuExecutable(sched)
