"""The reference backend: a NumPy interpreter over a Schedule, the correctness oracle.

Each op runs its OpDef's ``reference`` implementation; every output is checked
against the op's static shape and dtype, so shape-inference bugs surface here.
Stateful ops collect their assigns in the run context; the executable lands them
at the end of the step (the protocol of ``base.py``).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from staticgraph.errors import InternalError, InvalidArgumentError, OpError, ResourceExhaustedError
from staticgraph.graph import Operation
from staticgraph.shapes import fmt, is_compatible
from staticgraph.tensor import Tensor

from ..passes.rewrite import origin
from ..schedule import Schedule
from ..sizes import checked_size
from ..state import SessionState
from .base import Backend, Executable


class RunContext:
    """What stateful reference implementations see: the op being run and the session state.
    State is keyed by the user-graph op (``origin``), so optimised schedules run here too."""

    def __init__(self, state: SessionState):
        self.state = state
        self.op: Operation = None
        self.updates: Dict[Operation, tuple] = {}

    def read_variable(self) -> np.ndarray:
        return self.state.read(origin(self.op))

    def assign(self, value: np.ndarray, mode: str) -> tuple:
        self.updates[origin(self.op.inputs[0].op)] = (mode, value)
        return ()

    def rng(self) -> np.random.Generator:
        return self.state.rng(origin(self.op))

    def missing_feed(self):
        raise InvalidArgumentError(f"You must feed a value for placeholder '{self.op.name}'", self.op)


class ReferenceExecutable(Executable):
    """One step interpreted op by op: ``run(state, feed_values) -> fetch_values`` (assigns landed)."""

    target = "reference"

    def __init__(self, sched: Schedule):
        self.schedule = sched
        fed = self._fed = set(sched.feeds)
        self.steps = [op for op in sched.ops if not (op.outputs and all(o in fed for o in op.outputs))]
        # outputs whose static shape is beyond int64 or this machine's memory (sizes.py): each run
        # raises the named error before anything runs, never NumPy's
        self._oversized = [t for op in self.steps for t in op.outputs
                           if t.shape is not None and None not in tuple(t.shape) and t not in fed
                           and not _fits(t)]

    def run(self, state: SessionState, feed_values: Sequence[np.ndarray]) -> List[np.ndarray]:
        """The step under the session lock: fetches are copied (they may be views of variables or
        feeds) before the assigns land together."""
        with state.lock:
            fetched, updates = self._interpret(state, feed_values)
            fetched = [np.array(v, copy=True) for v in fetched]
            state.apply(updates)
        return fetched

    def _interpret(self, state: SessionState, feed_values: Sequence[np.ndarray]) -> Tuple[List[np.ndarray], dict]:
        """Every op in schedule order: the fetched values and the assigns, ``{var_op: (mode, value)}``."""
        for t in self._oversized:
            checked_size(t.shape, t.dtype, f"tensor '{t.name}' of {t.op.type} op '{t.op.name}'", t.op)
        env: Dict[Tensor, np.ndarray] = dict(zip(self.schedule.feeds, feed_values))
        ctx = RunContext(state)
        with np.errstate(all="ignore"):
            for op in self.steps:
                refs = op.opdef.ref_inputs
                args = [None if i in refs else env[t] for i, t in enumerate(op.inputs)]
                out = _run_op(op, args, ctx)
                if len(op.outputs) == 1:
                    out = (out,)
                for t, value in zip(op.outputs, out):
                    if t not in self._fed:     # a fed output keeps its fed value
                        env[t] = _checked(t, value)
        return [env[t] for t in self.schedule.fetches], ctx.updates

    def explain(self) -> str:
        lines = [f"reference interpreter: {len(self.steps)} ops, one NumPy call each"]
        for op in self.steps:
            ins = ", ".join(t.name for t in op.inputs)
            outs = ", ".join(f"{t.name} {fmt(t.shape)} {t.dtype.name}" for t in op.outputs) or "-"
            lines.append(f"  {op.type:<14} {op.name}({ins}) -> {outs}    # {op.defined_at}")
        return "\n".join(lines)


def _run_op(op: Operation, args: list, ctx: RunContext):
    opdef = op.opdef
    try:
        if opdef.stateful:
            ctx.op = op
            return opdef.reference(ctx, *args, **op.attrs)
        return opdef.reference(*args, **op.attrs)
    except OpError:
        raise
    except (ValueError, IndexError, TypeError, FloatingPointError, MemoryError) as exc:
        shapes = ", ".join(f"'{t.name}' {np.shape(a)}" for t, a in zip(op.inputs, args))
        error = ResourceExhaustedError if isinstance(exc, MemoryError) else InvalidArgumentError
        raise error(f"{op.type} op '{op.name}' failed on inputs {shapes}: {exc}", op) from exc


def _fits(t: Tensor) -> bool:
    try:
        checked_size(t.shape, t.dtype, "")
        return True
    except OpError:
        return False


def _checked(t: Tensor, value) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype != t.dtype or not is_compatible(t.shape, value.shape):
        raise InternalError(f"op '{t.op.name}' ({t.op.type}) produced {value.dtype.name} {value.shape}, but "
                            f"its static type is {t.dtype.name} {fmt(t.shape)}", t.op)
    return value


class ReferenceBackend(Backend):
    """Backend object: compiles a Schedule into a ReferenceExecutable."""

    executable = ReferenceExecutable
