"""The cpu backend's executable: a lowered program plus one buffer layout per shape signature.

``compile(sched)``: optimise (``compiler.passes``) -> lower -> native step (one
kernel wrapper per distinct kernel and dtypes, see ``native.py``) plus the
readable ``plan.py`` source in a PlanCache entry. ``run(state, feeds)``: at a new
shape signature, propagate concrete shapes (each OpDef's ``infer`` on concrete
proxies; errors name the op), plan memory, write the int64 record table ``M``,
the buffer table ``B`` and constants; then copy feeds and host values into the
arena, make ONE native call that runs every kernel, check the error slots, and
copy the fetches out.

Threads: the whole run of a session's plans holds ``state.lock`` (one step at a
time per session; reads see old values, assigns land atomically).

Protocol (``backends/base.py``): ``CpuExecutable.run`` lands the assigns itself and returns
copies of the fetches; ``CpuTiers`` is its tier policy (warm-up on the reference
interpreter, base and fused native tiers), what ``plan.wait()`` and ``plan.jit()`` call.
"""
from __future__ import annotations

import atexit
import bisect
import functools
import os
import threading
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

from staticgraph.errors import InternalError, InvalidArgumentError, OpError
from staticgraph.shapes import fmt, is_compatible

from ... import cache     # before _at_exit below: its exit cleanup must run after _at_exit (LIFO)
from ...gc_pause import gc_paused
from ...memory import Arena, Buffer, plan_memory
from ...schedule import Schedule
from ...sizes import check_bytes, checked_size, num_elements
from ...state import SessionState
from ..base import Backend, Executable, ProfileRow, Tiers
from . import codegen, library, native, threads
from .lowerings import Env
from .lowering import FusionMismatch, Lowering, Program, Scratch, Slot, call_lines

STATS = native.STATS     # plans, layouts, kernel_compiles / kernel_loads (kernel wrappers)
DIRECT_FEED_BYTES = 1 << 16   # fed values at least this large are read in place (``Layout.feed``); smaller ones
                              # are copied: writing an address into B costs more than copying a few KB
STATS.update(plans=0, layouts=0)


def jit_after() -> int:
    """Runs of a plan on the base tier before the fused tier is built (``STATICGRAPH_JIT`` not off)."""
    return int(os.environ.get("STATICGRAPH_JIT_AFTER", "2"))


def warmup_mode() -> str:
    """``STATICGRAPH_WARMUP``: what a new plan does while its kernels are compiled or loaded from
    the disk cache. "reference" (default): runs execute on the reference interpreter (same
    results up to rounding) and, from the plan's second run (or ``plan.wait()``) on, a thread
    builds the native step, which takes over when ready; "wait": ``compile()`` blocks until the
    native step is ready. Plans whose kernels this process has already loaded never warm up."""
    mode = os.environ.get("STATICGRAPH_WARMUP", "reference")
    if mode not in ("reference", "wait"):
        raise ValueError(f"STATICGRAPH_WARMUP={mode!r}: expected 'reference' or 'wait'")
    return mode


def jit_mode() -> str:
    """``STATICGRAPH_JIT``: when a plan moves to its fused tier. "off" (default: only on
    ``plan.jit()``), "sync" (in the run that crosses ``STATICGRAPH_JIT_AFTER``) or "background"
    (built in a thread, swapped in when ready). Both tiers are native; the fused one saves memory
    passes at the price of compiling one kernel per distinct fused group (cached on disk)."""
    mode = os.environ.get("STATICGRAPH_JIT", "off")
    if mode not in ("background", "sync", "off"):
        raise ValueError(f"STATICGRAPH_JIT={mode!r}: expected 'background', 'sync' or 'off'")
    return mode


def exit_mode() -> str:
    """``STATICGRAPH_EXIT_COMPILES``: what a process does at exit while background builds (warm-up,
    fused tier) still compile kernels. "detach" (default): leave the wrappers not yet in the disk
    cache to processes that outlive this one (``native.compile_detached``), say so in one line on
    stderr and exit at once; the next run loads them. "wait": join the builds, as before (they land in
    the cache before the process ends). A killed build leaves nothing half-written that a later
    process would load: the cache verifies every Numba file against its sealed record."""
    mode = os.environ.get("STATICGRAPH_EXIT_COMPILES", "detach")
    if mode not in ("detach", "wait"):
        raise ValueError(f"STATICGRAPH_EXIT_COMPILES={mode!r}: expected 'detach' or 'wait'")
    return mode


_THREADS: List[threading.Thread] = []       # background builds (warm-up, fused tier) still running
_BUILDING: Dict[int, "Tier"] = {}           # id -> tier whose build() runs now: what exit hands off


@atexit.register
def _at_exit() -> None:
    """Background builds still running: hand their compiles off (or, failing that, wait)."""
    if not any(t.is_alive() for t in _THREADS):
        return
    if exit_mode() == "wait" or not _hand_off_compiles():
        _join_compiles()


def _join_compiles() -> None:
    for t in list(_THREADS):
        t.join()


def _hand_off_compiles() -> bool:
    """Leave what the tiers being built still miss on disk to processes that outlive this one, print one
    line saying so; False if it could not be started. (Under NUMBA_DISABLE_JIT a build only imports
    plan.py: nothing to hand off.)"""
    if not native.enabled():
        return True
    if cache.private_fallback() is not None:    # this process's folder goes at exit: nothing to hand to
        return False
    try:
        sources = [native.wrapper_source(*key) for tier in list(_BUILDING.values())
                   for key in native.wrapper_keys(tier.prog)]
        pids, count = native.compile_detached(sources)
    except Exception as exc:  # noqa: BLE001 - at exit: say why, then wait as before
        print(f"staticgraph: cannot compile the kernels in the background ({exc!r}); waiting for them",
              file=sys.stderr, flush=True)
        return False
    if count:
        print(f"staticgraph: {count} kernel{'s' if count != 1 else ''} still compiling in the background "
              f"(pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids))}); the next run loads them",
              file=sys.stderr, flush=True)
    return True


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
    for key, shape in shapes.items():      # before anything is sized from them (sizes.py: no wraps)
        if not isinstance(key, Slot):      # variables: checked by the session state
            checked_size(shape, prog.dtypes.get(key, getattr(key, "dtype", np.float64)), *_sized(key))
    return shapes


def _sized(key) -> tuple:
    """(what, op) naming the buffer of ``key`` (a tensor or a plan scratch) in a size error."""
    t = key.like if isinstance(key, Scratch) else key
    op = getattr(t, "op", None)
    name = f"'{getattr(t, 'name', t)}'" + (f" of {op.type} op '{op.name}'" if op is not None else "")
    return (f"the {key.why} of {name}" if isinstance(key, Scratch) else f"tensor {name}"), op


def plan_host(prog: Program, state, feed_shapes) -> tuple:
    """The host side of a shape signature, shared by every backend that runs a lowered program
    (cpu, cuda): concrete shapes, the variables read checked, the arena plan and every key's
    element offset in its flat array (``Env``), the plan-entry checks. Returns (shapes, env, arena).
    Workspaces are sized for at most the program's lowered shares (``threads.lowered_shares``)."""
    with threads.lowered_shares(prog.shares):
        return _plan_host(prog, state, feed_shapes)


def _plan_host(prog: Program, state, feed_shapes) -> tuple:
    shapes = concrete_shapes(prog, feed_shapes)
    for var in prog.reads:
        state.read(var)     # FailedPreconditionError for an uninitialized variable
    for var, _, mode, _ in prog.assigns:
        if mode != "set":
            state.read(var)
    env = Env(shapes, {})
    arena = plan_arena(prog, shapes)
    check_bytes(arena.peak_bytes, f"the step's buffers for fed shapes {list(feed_shapes)}")
    for key in list(shapes) + list(prog.alias):
        root = prog.root(key)
        if isinstance(root, Slot):
            env.offsets[key] = state.values.slots[root.var][1]
        elif root in prog.feed_index:
            env.offsets[key] = 0        # a feed's own array
        elif root in arena.offsets:
            env.offsets[key] = arena.offsets[root]
        if key in env.offsets and prog.shifted(key):      # a piece of its root's buffer
            env.offsets[key] += prog.shift(key, env)
    for op, check in prog.checks:
        try:
            check(env)
        except OpError:
            raise
        except (ValueError, IndexError) as exc:
            raise InvalidArgumentError(f"{op.type} op '{op.name}' failed on inputs "
                                       f"{_shapes_text(op, shapes)}: {exc}", op) from None
    return shapes, env, arena


def record_table(prog: Program, env: Env) -> np.ndarray:
    """The int64 record table ``M`` of one shape signature (every call's record at its position)."""
    M = np.zeros(max(prog.record_size, 1), np.int64)
    with threads.lowered_shares(prog.shares):       # T <= G: no worker without its share call
        recs = [call.record(env) for call in prog.all_calls]
    for call, rec in zip(prog.all_calls, recs):
        if len(rec) != call.size:
            raise InternalError(f"record of {call.kernel} has {len(rec)} entries, expected {call.size}", call.op)
        M[call.pos:call.pos + call.size] = rec
    return M


def kernel_error(prog: Program, positions: List[int], E, env: Env) -> OpError:
    """The error a kernel reported in the slots ``E`` (code, record position...), naming its op."""
    code, pos = int(E[0]), int(E[1])
    op = prog.all_calls[bisect.bisect_right(positions, pos) - 1].op
    msg = library.ERRORS.get(code, f"kernel error {code}")
    if callable(msg):          # a message built from the error slots: msg(op, E, env)
        msg = msg(op, E, env)
    return InvalidArgumentError(f"{op.type} op '{op.name}' failed on inputs "
                                f"{_shapes_text(op, env.shapes)}: {msg}", op)


class Layout:
    """Everything one shape signature needs: arenas, record table, views of feeds and fetches."""

    def __init__(self, prog: Program, state, feed_values):
        t0 = time.perf_counter()
        shapes, env, arena = plan_host(prog, state, [v.shape for v in feed_values])
        self.arena = arena
        self.env = env
        arrays = {f"A_{np.dtype(dt).name}": np.zeros(max(n, 1), dt) for dt, n in arena.sizes.items()}
        for dt, buf in state.values.storage.items():
            arrays[f"S_{np.dtype(dt).name}"] = buf
        for t in prog.schedule.feeds:
            arrays[prog.array_name(t)] = np.zeros(max(1, num_elements(shapes[t], "")), prog.dtypes[t])
        M = record_table(prog, env)
        self.E = np.zeros(4, np.int64)
        names = codegen.arg_names(prog)
        for name in names:
            if name not in arrays:   # a dtype with no buffers this signature (e.g. all sizes 0)
                arrays[name] = np.zeros(1, np.dtype(name[2:]))
        self.args = tuple(arrays[n] for n in names) + (M, self.E)
        self.B = native.NativeStep.table(self.args)     # addresses: the arrays above must stay alive
        self.M = M
        self.arrays = arrays
        view = lambda key: self._view(prog, arrays, env, key)   # noqa: E731
        for key, fn in prog.consts.items():
            view(key)[...] = fn(env)
        self.feed_views = [view(t) for t in prog.schedule.feeds]
        # feeds the step may read in place (``feed``): large ones the step never fetches; their
        # entries in the buffer table B, and their own arrays' addresses
        fetched = {prog.root(k) for k in prog.fetch_keys}
        self.direct = {i: 2 * names.index(prog.array_name(t)) for i, t in enumerate(prog.schedule.feeds)
                       if prog.array_name(t) in names and t not in fetched
                       and self.feed_views[i].nbytes >= DIRECT_FEED_BYTES}
        self.own = {i: int(self.B[k]) for i, k in self.direct.items()}
        self.hosts = [(view(k), fn) for k, fn in prog.hosts.items()]
        self.fetch_views = [view(k) for k in prog.fetch_keys]
        self.ran = False
        self.plan_seconds = time.perf_counter() - t0
        STATS["layouts"] += 1

    def feed(self, values) -> None:
        """This run's fed values into the step: a direct feed that is C-contiguous and aligned is
        read in place (its address written into B; no copy of a large batch), every other value
        is copied into the feed's own array."""
        if not self.direct:      # small feeds only (dag_tiny): the plain copies, nothing else per step
            for view, value in zip(self.feed_views, values):
                view[...] = value
            return
        B = self.B
        for i, value in enumerate(values):
            k = self.direct.get(i)
            if k is not None:
                if value.flags.c_contiguous and value.flags.aligned:
                    B[k] = value.ctypes.data
                    continue
                B[k] = self.own[i]
            self.feed_views[i][...] = value

    @staticmethod
    def _view(prog, arrays, env, key) -> np.ndarray:
        shape = env.shape(key)
        n = num_elements(shape, "")
        buf = arrays[prog.array_name(key)]
        off = env.off(key)
        return buf[off:off + n].reshape(shape)


def plan_arena(prog: Program, shapes) -> Arena:
    """Liveness of every arena root, then ``memory.plan_memory``."""
    end_of_step = len(prog.all_calls) + 1
    start: Dict[object, int] = {}
    end: Dict[object, int] = {}

    def use(key, t):
        root = prog.root(key)
        if isinstance(root, Slot) or root in prog.feed_index:     # not in the arena
            return
        start.setdefault(root, t)
        end[root] = max(end.get(root, t), t)
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
        size = num_elements(shapes[root], "")     # checked by concrete_shapes
        buffers.append(Buffer(root, np.dtype(prog.dtypes[root]), size, start[root], end[root], root in pinned))
    for root in pinned - set(start):
        buffers.append(Buffer(root, np.dtype(prog.dtypes[root]), num_elements(shapes[root], ""),
                              0, end_of_step, True))
    inplace = []
    for call in prog.calls:
        out = call.args[-1]
        for key in call.inplace:
            if prog.space(key) == "A" and shapes[key] == shapes[out] and not prog.shifted(key) \
                    and not prog.shifted(out):
                inplace.append((out, prog.root(key), call.index))
    return plan_memory(buffers, inplace)


class Tier:
    """One lowered program: its readable generated module (``plan.py``, run as Python only under
    ``NUMBA_DISABLE_JIT=1``), its native step (``native.NativeStep``, made by ``build()``) and its
    layouts."""

    def __init__(self, sched: Schedule, report, title: str):
        from compiler.cache import PlanCache, cache_key
        t0 = time.perf_counter()
        self.schedule, self.report, self.title = sched, list(report or []), title
        self.prog = prog = Lowering(sched).lower()
        self.source = codegen.generate(prog, title)
        self.cache = PlanCache()
        version = native.numba_version()
        self.key = cache_key("staticgraph-cpu-plan", self.source, library.SOURCE_HASH, version,
                             f"py{sys.version_info[0]}.{sys.version_info[1]}", "cpu")
        manifest = {"target": "cpu", "numba": version, "kernels": library.SOURCE_HASH,
                    "ops": len(sched.ops), "tier": title,
                    "op_versions": sorted({f"{op.type}:{op.opdef.version}" for op in sched.ops})}
        self._manifest, self._entry = manifest, None
        self.native = None
        self.module = None
        self.layouts: Dict[tuple, Layout] = {}
        self.positions = [c.pos for c in prog.all_calls]
        self.build_seconds = time.perf_counter() - t0

    @property
    def entry(self):
        """The plan's cache entry (its readable plan.py), written when first needed: by ``build()``
        or ``explain()``, never by compiling or a warm-up run, which need no disk cache."""
        if self._entry is None:
            self._entry = self.cache.entry(self.key, {"plan.py": self.source}, self._manifest)
        return self._entry

    @property
    def ready(self) -> bool:
        return self.native is not None or self.module is not None

    def build(self) -> "Tier":
        """Compile or load the kernels (native step), or import plan.py under NUMBA_DISABLE_JIT."""
        if not self.ready:
            t0 = time.perf_counter()
            _BUILDING[id(self)] = self
            try:
                self.entry       # noqa: B018 - the readable plan.py lands in the cache with the build
                if native.enabled():     # (the kernel library is imported where a wrapper needs it)
                    self.native = native.NativeStep(self.prog, codegen.arg_names(self.prog) + ["M", "E"])
                else:
                    library.load()
                    self.module = self.cache.load_module(self.entry, "plan.py")
                library.seal()
            finally:
                _BUILDING.pop(id(self), None)
            self.build_seconds += time.perf_counter() - t0
        return self

    def bind(self, lay: "Layout") -> None:
        """Give ``lay`` its ``go()``: the step on its buffers (errors are left in ``lay.E``)."""
        if self.native is not None and len(self.native.parts) > 1:     # host calls (collectives) between
            lay.go = functools.partial(self.native.go, lay.B, lay.M, lay.E)
        elif self.native is not None:
            lay.go = functools.partial(self.native.run, self.native.F, lay.B, self.native.C)
        elif any(c.host is not None for c in self.prog.all_calls):
            lay.go = functools.partial(self.module.step, *lay.args, hosts=[c.host for c in self.prog.all_calls
                                                                           if c.host is not None])
        else:
            lay.go = functools.partial(self.module.step, *lay.args)
            lay.direct = {}         # the Python step takes the layout's own arrays: feeds are copied


MOVES_DATA = frozenset({"Const", "Assign", "Identity", "NoOp", "Variable"})


def only_moves_data(sched: Schedule) -> bool:
    """True for a plan that only copies values (an initializer: constants into variables). Its kernels
    would be copies that NumPy makes as fast, so it warms up on the reference interpreter even under
    ``STATICGRAPH_WARMUP=wait``, and a plan run once (the usual initializer) compiles nothing."""
    return all(op.type in MOVES_DATA for op in sched.ops)


class CpuTiers(Tiers):
    """The cpu plan's tier policy: which program runs a step, and when the next one is built.

    Warm-up (``STATICGRAPH_WARMUP``; a plan that only moves data always warms up): while the base
    tier's kernels are neither loaded in the process nor compiled on disk (``native.all_at_hand``:
    then the build only loads them, a tenth of a second, and runs at once), runs go to the
    reference interpreter (``reference``); the second such run, or
    ``wait()``, builds the base tier in a thread, which takes over when ready. Both native
    tiers share the plan's kernel wrappers: the base tier runs the optimised program without
    elementwise fusion (ready as soon as its kernels are, which plans share); the fused tier
    (``jit()``, or ``STATICGRAPH_JIT``) adds one generated loop kernel per fused elementwise
    group, compiled once per distinct group."""

    def __init__(self, sched: Schedule, base: Tier):
        self.original = sched
        self.base = base            # built at once, or in a thread during warm-up
        self.fused = None           # built by jit()
        self.jitted = False         # True once the fused tier runs the plan
        self.runs = 0               # native runs
        self.warmup_runs = 0
        self.jit_seconds = None
        self._jit_thread = None
        self._jit_lock = threading.Lock()
        self._jit_mode, self._jit_after = jit_mode(), jit_after()
        self._want_jit = self._jit_mode != "off" and self._jit_after <= 0
        self.reference = None       # the reference interpreter, while the base tier is built
        self.build_error = None
        self.build_thread = None
        self._build_lock = threading.Lock()
        if only_moves_data(sched):      # (run once, usually: loading its copies would not pay either)
            warm_up = not native.all_loaded(base.prog)
        else:
            warm_up = warmup_mode() == "reference" and not native.all_at_hand(base.prog)
        if warm_up and native.enabled():
            from ..reference import ReferenceExecutable
            self.reference = ReferenceExecutable(sched)      # the build starts at the second run
        else:
            base.build()

    # -- warm-up -------------------------------------------------------------------------------
    @property
    def warming_up(self) -> bool:
        """True while runs go to the reference interpreter (the base tier is being built)."""
        return not self.base.ready and self.build_error is None

    def warm_up(self) -> Executable:
        """Count a warm-up run and return the interpreter that runs it; the second run starts
        the build (a plan run only once, an initializer, never builds)."""
        if self.warmup_runs >= 1:
            self._start_build()
        self.warmup_runs += 1
        self._check_orphaned()
        return self.reference

    def _check_orphaned(self) -> bool:
        """True (warning once) in a process forked while this plan's build ran in a thread of its
        parent: that thread does not exist here, and Numba's compiler lock and the cache's locks
        may be held by it, so building again could hang; runs stay on the reference interpreter
        (same results, slower). Build plans before forking (``plan.wait()``), or start processes
        with multiprocessing's "spawn" or "forkserver"."""
        t = self.build_thread
        orphaned = t is not None and not t.is_alive() and not self.base.ready and self.build_error is None
        if orphaned and not getattr(self, "_orphan_warned", False):
            self._orphan_warned = True
            import warnings
            warnings.warn(f"staticgraph: this process was forked while cpu plan {self.base.key[:16]} was being "
                          f"compiled in a thread of its parent; it cannot safely compile here, so its runs stay on "
                          f"the reference interpreter (same results, slower). Build plans before forking "
                          f"(plan.wait()) or use multiprocessing's 'spawn'/'forkserver'", RuntimeWarning, stacklevel=4)
        return orphaned

    def _start_build(self) -> None:
        """Start building the base tier in a thread (once). Called by the second warm-up run, or
        ``wait()``: a plan run only once (an initializer) never builds, and the first step does
        not share the CPU and the GIL with Numba's import and the kernel loads."""
        exit_mode()                   # a bad STATICGRAPH_EXIT_COMPILES fails here, not at exit
        with self._build_lock:
            if self.build_thread is None and not self.base.ready:
                self.build_thread = t = threading.Thread(target=self._build_in_background, daemon=True,
                                                         name=f"staticgraph-warmup-{self.base.key[:8]}")
                _THREADS.append(t)
                t.start()

    def _build_in_background(self) -> None:
        try:
            self.base.build()
        except BaseException as exc:  # noqa: BLE001 - raised by the next run, naming the cause
            self.build_error = exc
        finally:
            _THREADS[:] = [t for t in _THREADS if t is not threading.current_thread()]

    def wait(self) -> None:
        """Block until the base tier is built (starting the build if a warm-up has not yet)."""
        if self.reference is not None:
            self._start_build()
        t = self.build_thread
        if t is not None:
            t.join()
        if self._check_orphaned():
            return
        if self.build_error is not None:
            raise InternalError(f"staticgraph: building the cpu plan failed: {self.build_error!r}") \
                from self.build_error

    # -- native tiers ----------------------------------------------------------------------------
    @property
    def current(self) -> Tier:
        """The tier that runs the plan now (waiting for the base tier if it is being built)."""
        if not self.base.ready:
            self.wait()
        return self.fused if self.jitted else self.base

    def native_run(self) -> None:
        """Count a native run; start the fused tier when ``STATICGRAPH_JIT`` says this run is due."""
        self.runs += 1
        if (self._jit_mode != "off" and not self.jitted and self._jit_thread is None
                and (self._want_jit or self.runs > self._jit_after)):
            self._start_jit()

    def _fused_tier(self) -> Tier:
        if self.fused is None:
            opt = _optimize(self.original, fusion=True)
            if opt is None or not any(op.type == "FusedElementwise" for op in opt.schedule.ops):
                self.fused = self.base
            else:
                self.fused = Tier(opt.schedule, opt.report, "fused tier").build()
        return self.fused

    def _start_jit(self) -> None:
        if self._jit_mode != "background" or self._want_jit:
            self.jit()
            return
        self._jit_thread = t = threading.Thread(target=self._background_jit, daemon=True,
                                                name=f"staticgraph-jit-{self.base.key[:8]}")
        _THREADS.append(t)
        t.start()

    def _background_jit(self) -> None:
        try:
            self.jit()
        except Exception as exc:  # noqa: BLE001 - the base tier keeps running; say why once
            import warnings
            warnings.warn(f"staticgraph: compiling the fused tier of plan {self.base.key[:16]} failed, "
                          f"staying on the base tier: {exc}", RuntimeWarning)
        finally:
            _THREADS[:] = [t for t in _THREADS if t is not threading.current_thread()]

    def jit(self) -> None:
        """Switch to the fused tier now (its group kernels compiled, or loaded from the disk cache)."""
        with self._jit_lock:
            if not self.jitted:
                self.wait()
                t0 = time.perf_counter()
                self._fused_tier()
                library.seal()
                self.jit_seconds = time.perf_counter() - t0
                self.jitted = True

    def describe(self) -> str:
        """One line: the compile time of the fused tier, or when it will be built."""
        if self.jitted:
            return f"fused tier {self.jit_seconds * 1e3:.1f} ms"
        return f"fused tier not built (STATICGRAPH_JIT={jit_mode()}, after {jit_after()} runs; plan.jit())"


class CpuExecutable(Executable):
    """One compiled plan: ``run(state, feed_values) -> fetch_values`` (assigns land inside, under
    the session lock). Its tiers (warm-up, base and fused native steps) are ``self.tiers``."""

    target = "cpu"

    def __init__(self, sched: Schedule):
        t0 = time.perf_counter()
        self._fallback = set()      # signatures the fused program cannot take (FusionMismatch)
        self._layout_version = -1
        self._hot = None            # (layout version, feed shapes, jitted, tier, layout) of the last run
        opt = _optimize(sched, fusion=False)
        base = Tier(opt.schedule if opt else sched, opt.report if opt else [], "base tier")
        prog = base.prog
        self._vars = sorted(set(prog.reads) | {v for v, _, _, _ in prog.assigns}, key=lambda o: o.id)
        self._assigned = [v for v, _, _, _ in prog.assigns]
        self.tiers = CpuTiers(sched, base)
        self.compile_seconds = time.perf_counter() - t0
        threads.track(self)
        STATS["plans"] += 1

    def drop_layouts(self) -> None:
        """Plan every shape signature again at its next run (a forked child: ``threads``)."""
        self._layout_version = -1
        self._hot = None

    # -- compatibility views ------------------------------------------------------------------
    @property
    def base(self) -> Tier:
        return self.tiers.base

    @property
    def warming_up(self) -> bool:
        return self.tiers.warming_up

    @property
    def jitted(self) -> bool:
        return self.tiers.jitted

    @property
    def tier(self) -> Tier:
        return self.tiers.current

    @property
    def prog(self) -> Program:
        return self.tier.prog

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

    # -- running -------------------------------------------------------------------------
    def layout(self, state, values):
        """(tier, layout) for these feed values (planned on first sight of their shapes)."""
        vals = state.values
        if self._layout_version != vals.layout_version:
            vals.ensure_slots(self._vars)
            if self._layout_version != vals.layout_version:
                self.base.layouts.clear()
                if self.tiers.fused is not None:
                    self.tiers.fused.layouts.clear()
                self._layout_version = vals.layout_version
        sig = tuple(v.shape for v in values)
        tier = self.tiers.fused if self.tiers.jitted and sig not in self._fallback else self.base
        lay = tier.layouts.get(sig)
        if lay is None:
            with gc_paused():       # a large plan's layout: see gc_pause
                try:
                    lay = Layout(tier.prog, state, values)
                except FusionMismatch:
                    self._fallback.add(sig)
                    tier = self.base
                    lay = tier.layouts.get(sig) or Layout(tier.prog, state, values)
                tier.bind(lay)
                tier.layouts[sig] = lay
        return tier, lay

    def run(self, state: SessionState, values: Sequence[np.ndarray]) -> List[np.ndarray]:
        tiers = self.tiers
        if not tiers.base.ready:
            if tiers.warming_up:
                return self._run_reference(state, values)
            tiers.wait()     # raises the build error
        with state.lock:
            tiers.native_run()
            hot = self._hot
            if (hot is not None and hot[0] == state.values.layout_version and hot[1] == [v.shape for v in values]
                    and hot[2] == tiers.jitted):
                tier, lay = hot[3], hot[4]
            else:
                tier, lay = self.layout(state, values)
                self._hot = (state.values.layout_version, [v.shape for v in values], tiers.jitted, tier, lay)
            lay.feed(values)
            for view, fn in lay.hosts:
                view[...] = fn(state, lay.env)
            E = lay.E
            E[0] = 0
            lay.go()
            if E[0]:
                raise self._error(tier, lay)
            if not lay.ran:
                state.values.mark_initialized(self._assigned)
                lay.ran = True
                self._hot = None      # a new tier may be ready: re-check next run
            return [v.copy() for v in lay.fetch_views]

    def profile(self, state: SessionState, values: Sequence[np.ndarray], runs: int = 10) -> List[ProfileRow]:
        """Run ``runs`` real steps one kernel call at a time; return one
        ``(seconds per run, op type, op name, kernel, user line)`` per call, in schedule order (a split
        call's shares as one call: their group, timed as the step runs it)."""
        self.run(state, values)                       # plan the layout, leave the warm-up
        tier, lay = self.layout(state, values)
        step = tier.native
        if step is None:
            raise RuntimeError("profile() needs the native step (not available under NUMBA_DISABLE_JIT=1)")
        rows = [step.C[a:b] for a, b in step.rows]
        totals = np.zeros(len(rows))
        with state.lock:
            for _ in range(runs):
                lay.feed(values)
                for view, fn in lay.hosts:
                    view[...] = fn(state, lay.env)
                lay.E[0] = 0
                for i, row in enumerate(rows):
                    if i in step.hosts:       # a host call (a collective)
                        t0 = time.perf_counter()
                        step.run_host(i, lay.B, lay.M, lay.E)
                        totals[i] += time.perf_counter() - t0
                        continue
                    if not row.size:          # a later share of a group: run with share 0
                        continue
                    t0 = time.perf_counter()
                    step.run(step.F, lay.B, row)
                    totals[i] += time.perf_counter() - t0
                if lay.E[0]:
                    raise self._error(tier, lay)
        return [(totals[i] / runs, c.op.type if c.op else "", c.op.name if c.op else "", c.kernel,
                 c.op.defined_at if c.op else "") for i, c in enumerate(tier.prog.all_calls) if rows[i].size or i in step.hosts]

    def _run_reference(self, state: SessionState, values: Sequence[np.ndarray]) -> List[np.ndarray]:
        """A warm-up run on the reference interpreter, under the session lock like a native run
        (its assigns land before the lock is released; fetches are copied before they land)."""
        with state.lock:
            return self.tiers.warm_up().run(state, values)

    def _error(self, tier: Tier, lay: Layout) -> OpError:
        return kernel_error(tier.prog, tier.positions, lay.E, lay.env)

    # -- description ------------------------------------------------------------------------
    def explain(self) -> str:
        if self.warming_up:
            return ("cpu plan: kernels are being compiled in the background; until they are ready, runs use "
                    "the reference interpreter (STATICGRAPH_WARMUP=wait waits instead)\n"
                    + self.tiers.reference.explain())
        tier = self.tier
        prog = tier.prog
        lines = [f"cpu plan {tier.key[:16]} ({tier.title}; {tier.entry})"]
        if tier.report:
            lines.append("  passes (ops before -> after, time):")
            for name, before, after, secs in tier.report:
                lines.append(f"    {name:<18} {before:>5} -> {after:<5} {secs * 1e3:8.2f} ms")
        else:
            lines.append("  passes: none applied")
        lines.append(f"  compile: passes+lower+kernels {self.compile_seconds * 1e3:.1f} ms; {self.tiers.describe()}")
        lines.append(f"  kernels: {len(prog.all_calls)} calls of {len({c.kernel for c in prog.all_calls})} "
                     f"kernels; {len(prog.fused)} fused groups")
        if tier.native is not None:
            if tier.native.precompiled:
                lines.append(f"  {tier.native.precompiled} kernel wrappers compiled by {native.compile_workers()} "
                             f"worker processes in {tier.native.precompile_seconds * 1e3:.0f} ms")
            lines.append("  kernel wrappers (compile or load time; 0 = already loaded in this process):")
            for title, secs in tier.native.kernels:
                lines.append(f"    {title:<48} {secs * 1e3:9.2f} ms")
        for name, _, op in prog.fused:
            members = " ".join(t for t, _, _, _ in op.attrs["program"])
            lines.append(f"    {name}: {len(op.attrs['program'])} ops ({members}) -> {len(op.outputs)} outputs")
        lines.append("  calls:")
        lines += call_lines(prog)
        for sig, lay in tier.layouts.items():
            a = lay.arena
            lines.append(f"  buffers for feed shapes {sig}: {len(a.offsets)} buffers in "
                         f"{len(a.intervals)} slots, {len(a.inplace)} in place, peak {a.peak_bytes} bytes; "
                         f"planned in {lay.plan_seconds * 1e3:.2f} ms")
        return "\n".join(lines)


def _optimize(sched: Schedule, fusion: bool):
    """``compiler.passes.optimize`` (without fusion for the base tier); None if unavailable."""
    try:
        from compiler.passes import optimize
    except ImportError:
        return None
    return optimize(sched, disabled=() if fusion else ("fusion",))


def base_wrapper_keys(sched: Schedule) -> List[tuple]:
    """The wrapper keys (``native.wrapper_keys``) of ``sched``'s base tier, lowered without compiling
    anything: what ``python -m staticgraph cache warm`` compiles (``staticgraph/warm.py``)."""
    opt = _optimize(sched, fusion=False)
    return native.wrapper_keys(Lowering(opt.schedule if opt else sched).lower())


class CpuBackend(Backend):
    """Backend object: compiles a Schedule into a CpuExecutable."""

    executable = CpuExecutable
