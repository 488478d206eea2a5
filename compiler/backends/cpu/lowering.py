"""Lowering a Schedule to a list of kernel calls over buffers (once per plan, shape-independent).

Buffers are keyed by Tensor, by ``Slot(var_op)`` (a variable's place in the
session's flat storage) or by ``Scratch`` (plan-private copies). Every key has a
root: aliases (reshape, identity...) share their source's root. Roots live in
space "S" (variable storage) or "A" (the plan's arena).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from staticgraph.errors import InternalError
from staticgraph.graph import Operation
from staticgraph.shapes import fmt

from ...schedule import Schedule
from .lowerings import (ARRAY_FILL, EW_SIZE, LOWERINGS, MATMUL_UPDATE, PHASES, Env, View, ew_record, ew_share,
                        loop_elements, mm_update_record)
from . import threads
from .library import ELEMENTWISE, EW_STRIDED, ew_op_code


class FusionMismatch(Exception):
    """At plan entry, a fused group's concrete shapes differ from its loop shape: plan that
    shape signature without fusion."""


class Slot:
    """A variable's slot in the session's flat storage."""
    __slots__ = ("var",)

    def __init__(self, var: Operation):
        self.var = var

    def __eq__(self, other):
        return isinstance(other, Slot) and other.var is self.var

    def __hash__(self):
        return hash(("slot", id(self.var)))

    def __repr__(self):
        return f"Slot({self.var.name})"


class Scratch:
    """A plan-private buffer shaped like ``like`` (snapshots, outputs that are fed), or by
    ``shape_fn(env)`` (kernel workspace, see ``Lowering.workspace``)."""
    __slots__ = ("like", "why", "shape_fn")

    def __init__(self, like, why: str, shape_fn=None):
        self.like, self.why, self.shape_fn = like, why, shape_fn

    def __repr__(self):
        return f"Scratch({self.why} of {getattr(self.like, 'name', self.like)})"


@dataclass(eq=False)
class Call:
    """One kernel call: ``kernel(*arrays(args), M, E, pos)``; ``args`` = inputs then output.
    Compared by identity: each is one place in the step (``in``, ``index`` and ``remove`` on a
    list of calls find that place at C speed, not by comparing every field of every call)."""
    kernel: str
    args: tuple
    record: Callable[[Env], list]
    size: int
    op: Operation
    inplace: tuple = ()        # input keys the output may overwrite element for element
    pos: int = 0               # record position in M
    index: int = 0             # time of the call (1-based)
    n_in: Optional[int] = None      # how many of args are inputs (None: all but the last)
    share: tuple = ()               # (t, G): share t of a call split in G (``Lowering.split_call``)
    host: Optional[Callable] = None  # a host call (``Lowering.host_call``): this Python function, not a kernel

    @property
    def leads(self) -> bool:
        """A call of its own or the first share of a group (the later shares join its row and time)."""
        return not self.share or self.share[0] == 0

    @property
    def inputs(self) -> tuple:
        return self.args[:self.n_in] if self.n_in is not None else self.args[:-1]


@functools.lru_cache(maxsize=None)
def _dtype_name(dtype) -> str:
    """``np.dtype(dtype).name``, asked once per dtype (it costs microseconds: a plan asks per argument)."""
    return np.dtype(dtype).name


@dataclass
class Program:
    """The lowered step: main calls, then write-back calls (after the error check)."""
    schedule: Schedule
    calls: List[Call] = field(default_factory=list)
    writeback: List[Call] = field(default_factory=list)
    alias: Dict[object, object] = field(default_factory=dict)       # key -> source key
    shifts: Dict[object, Callable] = field(default_factory=dict)     # alias key -> fn(env): elements past its source
    consts: Dict[object, Callable] = field(default_factory=dict)      # key -> fn(env) -> ndarray
    hosts: Dict[object, Callable] = field(default_factory=dict)       # key -> fn(state, env) -> ndarray
    checks: List[tuple] = field(default_factory=list)                 # (op, fn(env))
    dtypes: Dict[object, np.dtype] = field(default_factory=dict)
    reads: List[Operation] = field(default_factory=list)              # variables read
    assigns: List[tuple] = field(default_factory=list)                # (var, value key, mode, op)
    fetch_keys: List[object] = field(default_factory=list)
    fused: List[tuple] = field(default_factory=list)                 # (kernel name, source, op)
    record_size: int = 0
    shares: int = 1         # G: the calls a split call became (``Lowering._shares``); T <= G at plan entry

    def root(self, key):
        while key in self.alias:
            key = self.alias[key]
        return key

    def shift(self, key, env) -> int:
        """Elements from the start of ``key``'s root to ``key`` (0 but for a piece of a buffer)."""
        total = 0
        while key in self.alias:
            if key in self.shifts:
                total += self.shifts[key](env)
            key = self.alias[key]
        return total

    def shifted(self, key) -> bool:
        """True when ``key`` is a piece of its root's buffer (at a shift, or shorter): no call may
        write it in place of another buffer, nor another buffer in place of it."""
        while key in self.alias:
            if key in self.shifts:
                return True
            key = self.alias[key]
        return False

    def space(self, key) -> str:
        """"S" (a variable's slot), "F<i>" (feed i: an array of its own, the fed value itself
        where ``Layout.feed`` can pass it in place) or "A" (the arena)."""
        return self._root_space(self.root(key))

    def _root_space(self, root) -> str:
        if isinstance(root, Slot):
            return "S"
        i = self.feed_index.get(root)
        return "A" if i is None else f"F{i}"

    @functools.cached_property
    def feed_index(self) -> Dict[object, int]:
        return {t: i for i, t in enumerate(self.schedule.feeds)}

    def array_name(self, key) -> str:
        root = self.root(key)
        return f"{self._root_space(root)}_{_dtype_name(self.dtypes[root])}"

    @functools.cached_property
    def arg_names(self) -> List[str]:
        """The step's array parameters (``codegen.arg_names``): asked once the program is lowered,
        by the generated source, the native step and every layout, so kept."""
        names = set()
        for call in self.all_calls:
            names.update(self.array_name(k) for k in call.args)
        return sorted(names)

    @property
    def all_calls(self) -> List[Call]:
        return self.calls + self.writeback


@dataclass(frozen=True)
class LoweringProfile:
    """What a target's lowering does beyond the op lowerings themselves (the default: the cpu's).

    - ``shares``: ``split_call`` makes G = ``threads.shares()`` calls (False: one call, G = 1);
    - ``phases`` / ``split_elementwise``: ``Lowering._split_phases`` / ``_split_elementwise`` run;
    - ``rewrites``: the names of ``call_rewrites.REWRITES`` that run (None: all of them);
    - ``kernels``: the kernel names the target has (None: every one); lowerings that choose
      between kernels ask ``b.supports(name)`` (Winograd, single-tile Winograd)."""
    name: str = "cpu"
    shares: bool = True
    phases: bool = True
    split_elementwise: bool = True
    rewrites: Optional[Tuple[str, ...]] = None
    kernels: Optional[Callable[[str], bool]] = None

    def supports(self, kernel: str) -> bool:
        return self.kernels is None or self.kernels(kernel)


CPU_PROFILE = LoweringProfile()


# a split call's shares run on the workers from this many elements of work (a launch costs ~10 us);
# elementwise loops (~1 ns per element) from more
GROUP_WORK = 1 << 16
EW_GROUP_WORK = 1 << 18


class Lowering:
    """The builder a kernel registry entry talks to (see ``kernels.py``)."""

    def __init__(self, sched: Schedule, profile: LoweringProfile = CPU_PROFILE):
        self.prog = Program(sched, shares=threads.shares() if profile.shares else 1)
        self.profile = profile
        self._fed = set(sched.feeds)
        self._op: Optional[Operation] = None
        self._scratch: Dict[object, Scratch] = {}
        for t in sched.feeds:
            self.prog.dtypes[t] = t.dtype

    # -- keys ------------------------------------------------------------------------
    def write_key(self, t):
        """Where an op writes output ``t``: ``t`` itself, or a scratch buffer when ``t`` is fed."""
        if t in self._fed:
            if t not in self._scratch:
                self._scratch[t] = Scratch(t, "discarded output")
                self.prog.dtypes[self._scratch[t]] = t.dtype
            return self._scratch[t]
        self.prog.dtypes.setdefault(t, t.dtype)
        return t

    def supports(self, kernel: str) -> bool:
        """The target has ``kernel`` (``LoweringProfile.kernels``): for lowerings that choose one."""
        return self.profile.supports(kernel)

    # -- verbs -------------------------------------------------------------------------
    def call(self, kernel: str, inputs: Sequence, out, record: Callable[[Env], list], size: int,
             inplace: Sequence = (), extra: Sequence = ()) -> None:
        """``kernel(*inputs, out, *extra, M, E, p)``; ``extra``: more outputs or workspaces."""
        key = self.write_key(out) if not isinstance(out, (Slot, Scratch)) else out
        extra = tuple(self.write_key(t) if not isinstance(t, (Slot, Scratch)) else t for t in extra)
        self.prog.calls.append(Call(kernel, tuple(inputs) + (key,) + extra, record, size, self._op,
                                    tuple(inplace), n_in=len(inputs)))

    def split_call(self, kernel: str, inputs: Sequence, out, record: Callable[[Env, int, int], list], size: int,
                   work: Callable[[Env], int], extra: Sequence = ()) -> None:
        """``kernel`` as G = ``threads.shares()`` calls, share t doing its part of the work
        (``record(env, t, G)``: e.g. planes [t P / G, (t + 1) P / G)). The native step loop runs
        them on the kernel workers when the layout's flag says so (``kernel_threads()`` > 1 and
        ``work(env)`` elements at least ``GROUP_WORK``), else one after the other; each share's
        record carries one more int, the flag (read in share 0's). For kernels that report no
        errors and whose shares write disjoint parts of their outputs."""
        key = self.write_key(out) if not isinstance(out, (Slot, Scratch)) else out
        extra = tuple(self.write_key(t) if not isinstance(t, (Slot, Scratch)) else t for t in extra)
        self._shares(kernel, tuple(inputs) + (key,) + extra, record, size, work, GROUP_WORK, len(inputs), ())

    def _shares(self, kernel: str, args: tuple, record, size: int, work, least: int, n_in, inplace: tuple) -> None:
        """Append the G calls of ``split_call`` (their flag set from ``least`` elements of ``work``)."""
        from .threads import kernel_threads
        g = self.prog.shares

        def share(env, t):
            flag = int(g > 1 and t == 0 and kernel_threads() > 1 and work(env) >= least)
            return record(env, t, g) + [flag]
        self.prog.calls.extend(Call(kernel, args, functools.partial(share, t=t), size + 1, self._op, inplace,
                                    n_in=n_in, share=(t, g) if g > 1 else ()) for t in range(g))

    def _split_phases(self) -> None:
        """Every main call of a kernel of ``PHASES`` becomes its phases: the single ones with the
        call's record, the shared ones as ``_shares`` whose records add the share's index (on the
        workers where the record's worker count is 2 or more)."""
        prog = self.prog
        calls, prog.calls = prog.calls, []
        for call in calls:
            if call.kernel not in PHASES:
                prog.calls.append(call)
                continue
            workers, phases = PHASES[call.kernel]
            self._op = call.op
            for ph in phases:
                args = tuple(call.args[i] for i in ph.args)
                if not ph.shared:
                    prog.calls.append(Call(ph.kernel, args, call.record, call.size, call.op, n_in=ph.n_in))
                    continue
                self._shares(ph.kernel, args, lambda env, t, g, rec=call.record: rec(env) + [t], call.size + 1,
                             lambda env, rec=call.record, w=workers: w(rec(env)), 2, ph.n_in, ())
        self._op = None

    def _split_elementwise(self) -> None:
        """Every main elementwise call of a kernel with no error check becomes a ``split_call``
        along its outermost loop dim (``kernels.ew_share``), run on the workers from ``EW_GROUP_WORK``
        elements (calls whose static output shape is smaller stay whole: no per-step cost for small
        graphs). After the call rewrites, which match single elementwise calls."""
        prog = self.prog
        calls, prog.calls = prog.calls, []
        for call in calls:
            name = call.kernel[3:] if call.kernel.startswith("ew_") else None
            shape = getattr(call.args[-1], "shape", None)
            small = shape is None or (None not in tuple(shape) and int(np.prod(tuple(shape))) < EW_GROUP_WORK)
            if name not in ELEMENTWISE or ELEMENTWISE[name][2] or small:      # small: static shapes below the bar
                prog.calls.append(call)
                continue
            self._op = call.op
            self._shares(call.kernel, call.args, lambda env, t, g, rec=call.record: ew_share(rec(env), t, g),
                         call.size, lambda env, rec=call.record: loop_elements(rec(env)), EW_GROUP_WORK,
                         call.n_in, call.inplace)
        self._op = None

    def host_call(self, name: str, inputs: Sequence, out, record: Callable[[Env], list], size: int,
                  fn: Callable, inplace: Sequence = ()) -> None:
        """A call the step makes on the host, between two native calls of its code table: ``fn(*inputs,
        out, M, E, p)`` with the kernels' calling convention (flat arrays, its record at ``M[p]``),
        in Python (a collective through mpi4py). The native step splits its code table around it
        (``native.NativeStep``); raising is how it reports an error."""
        key = self.write_key(out) if not isinstance(out, (Slot, Scratch)) else out
        self.prog.calls.append(Call(name, tuple(inputs) + (key,), record, size, self._op, tuple(inplace),
                                    n_in=len(inputs), host=fn))

    def workspace(self, dtype, shape_fn: Callable[[Env], tuple], why: str = "workspace") -> Scratch:
        """A scratch buffer for one call (pass it in ``extra``); ``shape_fn(env)`` gives its shape
        from the concrete shapes. It lives only during the call, so its memory is reused."""
        key = Scratch(None, why, shape_fn)
        self.prog.dtypes[key] = np.dtype(dtype)
        return key

    def ew(self, name: str, out, inputs: Sequence, in_views: Optional[Sequence] = None,
           out_view: Optional[Callable] = None, inplace: bool = True, writeback: bool = False) -> None:
        if (in_views or out_view) and name not in EW_STRIDED:
            raise InternalError(f"ew_{name} has no strided loop: views of its own need one of {sorted(EW_STRIDED)}",
                                self._op)
        inputs = list(inputs)
        key = self.write_key(out) if not isinstance(out, (Slot, Scratch)) else out
        ins = [(in_views[i] if in_views and in_views[i] else (lambda env, t=t: env.view(t)))
               for i, t in enumerate(inputs)]
        ov = out_view or (lambda env: env.view(key))

        code = ew_op_code(name)

        def record(env):
            return ew_record(ov(env), [f(env) for f in ins], op=code)
        # in place only on input 0: the loop reads x0 through the output and LLVM vectorizes it
        # (``library.loop_kernel``); on another input its overlap check failed and the loop ran
        # scalar (mlp's relu-gradient Where, its condition a load: ~95 us a call with mispredicted
        # branches instead of ~15). Only plain views (no in_views, no out_view) are candidates.
        call = Call(f"ew_{name}", tuple(inputs) + (key,), record, EW_SIZE[len(inputs)], self._op,
                    tuple(inputs[:1]) if inplace and in_views is None and out_view is None else ())
        (self.prog.writeback if writeback else self.prog.calls).append(call)

    def fused(self, op: Operation) -> None:
        """A FusedElementwise op: a loop kernel generated into the plan module."""
        from .fused import fused_source
        from .lowerings import ew_record, loop_record_size
        name = f"fused_{len(self.prog.fused)}"
        self.prog.fused.append((name, fused_source(name, op), op))
        outs = [self.write_key(t) for t in op.outputs]
        ins = list(op.inputs)

        def record(env):
            shapes = [env.shape(k) for k in outs]
            loop = tuple(np.broadcast_shapes(*[env.shape(t) for t in ins])) if ins else shapes[0]
            from compiler.passes.fusion import _program_shapes
            inner = _program_shapes([env.shape(t) for t in ins], op.attrs["program"])
            if any(tuple(s) != loop for s in shapes + [tuple(x) for x in inner]):
                raise FusionMismatch(op)
            views = [env.view(k) for k in outs]
            return ew_record(views[0], [env.view(t) for t in ins], views[1:])
        self.prog.calls.append(Call(name, tuple(ins) + tuple(outs), record, loop_record_size(len(ins) + len(outs)),
                                    self._op, n_in=len(ins)))

    def fill(self, out, value: int) -> None:
        key = self.write_key(out)
        self.call("fill", [], out, lambda env: ARRAY_FILL.pack(dict(
            n=int(np.prod(env.shape(key), dtype=np.int64)), y_off=env.off(key), value=int(value))), ARRAY_FILL.size)

    def alias(self, out, src, shift: Optional[Callable] = None) -> None:
        """``out`` is ``src``'s buffer (another shape), or with ``shift(env)`` the piece of it that
        starts that many elements in."""
        key = self.write_key(out)
        self.prog.alias[key] = src
        if shift is not None:
            self.prog.shifts[key] = shift

    def const(self, out, fn: Callable) -> None:
        self.prog.consts[self.write_key(out)] = fn

    def host(self, out, fn: Callable) -> None:
        self.prog.hosts[self.write_key(out)] = fn

    def check(self, fn: Callable) -> None:
        self.prog.checks.append((self._op, fn))

    def variable(self, out, var: Operation) -> None:
        slot = Slot(var)
        self.prog.dtypes[slot] = np.dtype(var.attrs["dtype"])
        self.prog.reads.append(var)
        self.alias(out, slot)

    def assign(self, var: Operation, value, mode: str, op: Operation) -> None:
        self.prog.dtypes[Slot(var)] = np.dtype(var.attrs["dtype"])
        self.prog.assigns.append((var, value, mode, op))

    # -- driver ------------------------------------------------------------------------
    def lower(self) -> Program:
        prog = self.prog
        fed = self._fed
        for op in prog.schedule.ops:
            if op.outputs and all(t in fed for t in op.outputs):
                continue
            fn = LOWERINGS.get(op.type)
            if fn is None:
                raise NotImplementedError(
                    f"the {self.profile.name} backend has no kernel for op type '{op.type}' (op '{op.name}' defined at "
                    f"{op.defined_at}); add one in compiler/backends/cpu/lowerings.py (kernels: compiler/backends/cpu/kernels/), or run this graph "
                    f"with sg.Session(target='reference')")
            self._op = op
            fn(op, self)
        self._op = None
        self._finish()
        return prog

    def _finish(self) -> None:
        """Snapshots where write-back would clobber a read, then the write-back calls."""
        prog = self.prog
        from .call_rewrites import run_rewrites     # the families' rewrites import this module
        run_rewrites(self)
        assigned = {var for var, _, _, _ in prog.assigns}
        for t in prog.schedule.fetches:
            prog.dtypes.setdefault(t, t.dtype)
            prog.fetch_keys.append(self._snapshot(t, assigned, "fetched value"))
        factors = self._scaled_updates()
        gemms = self._gemm_updates(factors)
        values = [tuple(self._snapshot(f, assigned, "assigned value") for f in factors[i]) if i in factors
                  else self._snapshot(v, assigned, "assigned value") for i, (_, v, _, _) in enumerate(prog.assigns)]
        from ...state import check_assign_shape
        for i, ((var, _, mode, op), value) in enumerate(zip(prog.assigns, values)):
            self._op = op
            slot = Slot(var)
            if i in gemms:                    # var -= s * op(x) @ op(y): one GEMM into the variable
                self._gemm_update(slot, *gemms[i])
                continue
            if isinstance(value, tuple):      # var - a * b in one pass (see _scaled_updates)
                self.check(lambda env, var=var, a=value[0], b=value[1]: check_assign_shape(
                    var, np.broadcast_shapes(env.shape(a), env.shape(b)), "sub"))
                self.ew("SubMul", slot, [slot, *value], inplace=False, writeback=True)
                continue
            self.check(lambda env, var=var, value=value, mode=mode: check_assign_shape(var, env.shape(value), mode))
            if mode == "set":
                self.ew("Copy", slot, [value], inplace=False, writeback=True)
            else:
                self.ew("Add" if mode == "add" else "Sub", slot, [slot, value], inplace=False, writeback=True)
        self._op = None
        if self.profile.phases:
            self._split_phases()
        if self.profile.split_elementwise:
            self._split_elementwise()
        pos = 0
        for i, call in enumerate(prog.all_calls):     # a group's shares are one time (they run at once)
            call.pos, call.index = pos, (i + 1 if call.leads else prog.all_calls[i - 1].index)
            pos += call.size
        prog.record_size = pos

    def _readers(self) -> tuple:
        """How many main calls (and fetches) read each key, and the keys some view is taken of."""
        prog = self.prog
        readers: Dict[object, int] = {}
        for key in [k for c in prog.calls for k in c.inputs] + list(prog.schedule.fetches):
            readers[key] = readers.get(key, 0) + 1
        return readers, {prog.root(k) for k in prog.alias}

    def _scaled_updates(self) -> Dict[int, tuple]:
        """``assign_sub(var, a * b)`` (an SGD step: ``lr * grad``) where nothing else reads the
        product: drop the product's call, and let the write-back compute ``var - a * b`` in one pass
        over the variable. Returns {assign index: (a, b)}. The value is the same (a * b was checked
        to broadcast to the variable when the assign was built; no fused multiply-add)."""
        prog = self.prog
        readers, viewed = self._readers()
        product = {c.args[-1]: c for c in prog.calls if c.kernel == "ew_Mul" and len(c.args) == 3}
        found, dropped = {}, set()
        for i, (var, value, mode, _) in enumerate(prog.assigns):
            call = product.get(value)
            if mode != "sub" or call is None or readers.get(value, 0) or value in viewed:
                continue
            readers[value] = 1           # a second assign of the same product keeps it
            dropped.add(call)
            found[i] = call.args[:2]
        self._drop(dropped)
        return found

    def _gemm_updates(self, factors: Dict[int, tuple]) -> Dict[int, tuple]:
        """Of the scaled updates, those of a matrix by a scalar times a float matmul's result that
        nothing else reads (an SGD step on a dense layer's weight): their GEMM moves to the
        write-back and runs into the variable itself (``var += (-s) * op(x) @ op(y)``, BLAS's
        alpha and beta = 1; the same value up to rounding: the product is not rounded before
        scaling). Only where the static shapes are the variable's (rank 2, no batch), the GEMM is
        not one of the tiny ones run as loops, and x, y, s are not variables whose write-back has
        run by then (write-back runs in assign order: a variable assigned later still holds the
        value every read saw, so ``A -= s * dY @ B^T`` fuses where B's own update comes after it;
        B's, which reads the updated A, does not).
        Returns {assign index: (x, y, s, transpose_a, transpose_b)}; drops the matmul calls."""
        from .library import MM_LOOPS_UP_TO
        prog = self.prog
        readers, viewed = self._readers()
        gemm = {c.args[-1]: c for c in prog.calls if c.kernel == "mm_blas" and len(c.args) == 3}
        first_write = {}
        for j, (var, _, _, _) in enumerate(prog.assigns):
            first_write.setdefault(var, j)
        found, dropped = {}, set()
        for i, (a, b) in factors.items():
            var = prog.assigns[i][0]
            s, g = (a, b) if getattr(a, "shape", None) == () else (b, a)
            call = gemm.get(g)
            if call is None or getattr(s, "shape", None) != () or readers.get(g, 0) or g in viewed:
                continue
            x, y = call.args[:2]
            shape = tuple(var.outputs[0].shape)
            if len(shape) != 2 or tuple(g.shape) != shape or len(x.shape) != 2 or len(y.shape) != 2:
                continue
            if any(isinstance(prog.root(t), Slot) and first_write.get(prog.root(t).var, i + 1) <= i for t in (x, y, s)):
                continue
            ta, tb = bool(call.op.attrs.get("transpose_a")), bool(call.op.attrs.get("transpose_b"))
            k = x.shape[0] if ta else x.shape[1]
            if k is not None and shape[0] * shape[1] * k <= MM_LOOPS_UP_TO:
                continue
            dropped.add(call)
            found[i] = (x, y, s, ta, tb)
        self._drop(dropped)
        return found

    def _drop(self, calls: set) -> None:
        """Remove ``calls`` from the main calls in one pass (one ``list.remove`` each was quadratic)."""
        if calls:
            self.prog.calls = [c for c in self.prog.calls if c not in calls]

    def _gemm_update(self, slot, x, y, s, ta: bool, tb: bool) -> None:
        def record(env):
            return mm_update_record(env, x, y, s, slot, ta, tb)
        self.prog.writeback.append(Call("mm_update", (x, y, s, slot), record, MATMUL_UPDATE.size, self._op))

    def _snapshot(self, key, assigned, why: str):
        root = self.prog.root(key)
        if isinstance(root, Slot) and root.var in assigned:
            snap = Scratch(key, why)
            self.prog.dtypes[snap] = self.prog.dtypes[root]
            op = self._op
            self._op = root.var
            self.ew("Copy", snap, [key], inplace=False)
            self._op = op
            return snap
        return key


def describe(prog: Program, call: Call) -> str:
    op = call.op
    return f"{op.type} '{op.name}' at {op.defined_at}" if op is not None else "plan"


__all__ = ["Lowering", "LoweringProfile", "CPU_PROFILE", "Program", "Call", "Slot", "Scratch", "View", "fmt"]


def call_lines(prog: Program) -> List[str]:
    """``plan.explain()``'s listing of ``prog``'s calls, one line each: kernel, op, first output,
    share, the user's line (every backend's explain lists its program this way)."""
    lines = []
    for c in prog.all_calls:
        op = c.op
        outs = c.args[len(c.inputs)]      # the first output (workspaces and more outputs follow)
        share = f" [share {c.share[0] + 1}/{c.share[1]}]" if c.share else ""
        lines.append(f"    {c.kernel:<14} {op.type + ' ' + repr(op.name) if op else '':<36} -> "
                     f"{getattr(outs, 'name', outs)}{share}    # {op.defined_at if op else ''}")
    return lines
