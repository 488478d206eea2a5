"""``Session``: owns variable values and runs (cached) plans of a graph."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Sequence

import numpy as np

from . import default_session
from .graph import Graph, Operation, get_default_graph
from .nest import flatten
from .tensor import Tensor

TARGETS = ("cpu", "cuda", "reference")


class Session:
    """Runs graphs: ``sg.Session(graph=None, target="cpu", check_numerics=None)``; a context manager.

    ``check_numerics=True`` checks every floating tensor of every step for NaN and inf (as TF1's
    ``add_check_numerics_ops``; ``sg.errors.InvalidArgumentError`` naming the tensor and its op's
    line); None: ``STATICGRAPH_CHECK_NUMERICS=1`` turns it on, off by default."""

    def __init__(self, graph: Optional[Graph] = None, target: str = "cpu", check_numerics: Optional[bool] = None):
        from compiler.backends import get_backend
        from compiler.numerics import session_default
        from compiler.state import SessionState
        self.graph = graph if graph is not None else get_default_graph()
        self.target = target
        self.check_numerics = session_default() if check_numerics is None else bool(check_numerics)
        self._backend = get_backend(target)
        self._state = SessionState()
        self._plans: Dict[tuple, Any] = {}
        self._fast: Dict[tuple, Any] = {}        # (fetch ids, feed tensor ids) -> (plan, feed order)
        self._closed = False
        self._last_version = self.graph.version
        self._growth_runs = 0

    # -- running --------------------------------------------------------------------
    def run(self, fetches, feed_dict: Optional[Dict[Any, Any]] = None):
        """Run one step: fetch tensors (arrays) / ops (None) in the structure of ``fetches``."""
        feed_dict = feed_dict or {}
        fast = _fast_key(fetches, feed_dict)
        hit = self._fast.get(fast) if fast is not None else None
        if hit is not None:                      # hot path: same fetches and feed tensors as before
            plan, order = hit
            if self.graph.version != self._last_version:
                self._watch_growth()
            values = list(feed_dict.values())
            return plan(*[values[i] for i in order])
        feed_tensors = [self._as_feed_tensor(k) for k in feed_dict]
        order = sorted(range(len(feed_tensors)), key=lambda i: (feed_tensors[i].op.id, feed_tensors[i].value_index))
        feeds = [feed_tensors[i] for i in order]
        values = list(feed_dict.values())
        key = (_structure_key(fetches), tuple(id(t) for t in feeds))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self.compile(fetches, feeds)
        if fast is not None:
            self._fast[fast] = (plan, order)
        self._watch_growth()
        return plan(*[values[i] for i in order])

    def compile(self, fetches, feeds: Sequence[Tensor] = ()):
        """Compile ``fetches`` given positional ``feeds`` into a ``Plan``."""
        from compiler.gc_pause import gc_paused
        self._check_open()
        with gc_paused():
            return self._compile(fetches, feeds)

    def _compile(self, fetches, feeds: Sequence[Tensor]):
        from compiler.numerics import checks_of
        from compiler.plan import Plan
        from compiler.schedule import schedule
        leaves, pack = flatten(fetches, lambda x: isinstance(x, (Tensor, Operation)))
        for leaf in leaves:
            if leaf.graph is not self.graph:
                raise ValueError(f"cannot fetch '{leaf.name}': it belongs to another graph than this session's")
        feeds = [self._as_feed_tensor(t) for t in feeds]
        if len(set(feeds)) != len(feeds):
            raise ValueError("a tensor is fed twice")
        tensors = [x for x in leaves if isinstance(x, Tensor)]
        targets = [x for x in leaves if isinstance(x, Operation)]
        sched = schedule(tensors, targets, feeds)
        checks = checks_of(sched, self.check_numerics)
        if checks:     # fetched too, so every target keeps them to the step's end
            sched = schedule(tensors + [c.tensor for c in checks], targets, feeds)
        kinds = ["op" if isinstance(x, Operation) else "tensor" for x in leaves]
        return Plan(sched, self._backend.compile(sched), self._state, pack, kinds, self.target, checks)

    def _as_feed_tensor(self, key) -> Tensor:
        if isinstance(key, str):
            key = self.graph.get_tensor_by_name(key if ":" in key else key + ":0")
        if not isinstance(key, Tensor):
            raise TypeError(f"feed_dict keys must be Tensors (or tensor names), got {key!r}")
        if key.graph is not self.graph:
            raise ValueError(f"cannot feed '{key.name}': it belongs to another graph than this session's")
        return key

    def _watch_growth(self) -> None:
        version = self.graph.version
        if version > self._last_version:
            self._growth_runs += 1
            if self._growth_runs == 20:
                warnings.warn(f"the graph has grown between 20 runs (now {version} ops): are ops being "
                              f"created inside the training loop? Build them once before it, and call "
                              f"graph.finalize() to catch this", RuntimeWarning, stacklevel=3)
        self._last_version = version

    # -- variable values (checkpoints) ----------------------------------------------
    def get_variable_value(self, var: Tensor) -> np.ndarray:
        """A copy of ``var``'s current value (``FailedPreconditionError`` if uninitialized), taken
        between runs of this session (under its lock), never in the middle of one's assigns."""
        return self._get_variable_values([var])[0]

    def set_variable_value(self, var: Tensor, value: Any) -> None:
        """Set ``var``'s value outside a run, by the rule feeds follow (``staticgraph.values``):
        its exact shape, ``same_kind`` casting, no lossy integer narrowing; else
        ``sg.errors.InvalidArgumentError`` naming the variable. Lands between runs of this session."""
        self._set_variable_values([(var, value)])

    def _get_variable_values(self, variables: Sequence[Tensor]) -> list:
        """Copies of the values of ``variables``, all of one moment (one hold of the session lock:
        no run of this session lands its assigns in between); what ``Saver.save`` reads."""
        self._check_open()
        ops = [self._variable_op(v) for v in variables]
        with self._state.lock:
            return [np.array(self._state.read(op), copy=True) for op in ops]

    def _set_variable_values(self, pairs: Sequence[tuple]) -> None:
        """Set each ``(variable, value)`` of ``pairs``, every value checked first, then all landed
        in one hold of the session lock (``Saver.restore``: a run sees all or none of them)."""
        self._check_open()
        checked = [(op, np.array(_variable_value(op, value), copy=True))
                   for op, value in ((self._variable_op(v), value) for v, value in pairs)]
        with self._state.lock:
            for op, value in checked:
                self._state.values[op] = value

    def _variable_op(self, var: Tensor) -> Operation:
        if not isinstance(var, Tensor) or var.op.type != "Variable":
            raise TypeError(f"expected a sg.Variable, got {var!r}")
        if var.graph is not self.graph:
            raise ValueError(f"variable '{var.op.name}' belongs to another graph than this session's")
        return var.op

    # -- lifetime -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("attempted to use a closed Session")

    def close(self) -> None:
        """Release the session's state and plans."""
        self._closed = True
        self._state.closed = True
        self._plans.clear()
        self._fast.clear()

    def as_default(self):
        """``with sess.as_default():`` makes this the thread's default session (for ``t.eval()``,
        ``op.run()``) inside the block; unlike ``with sess:``, it does not close the session."""
        return default_session.as_default(self)

    def __enter__(self) -> "Session":
        """``with sg.Session() as sess:`` makes the session and its graph the thread's defaults (TF1)."""
        default_session.enter_session(self)
        return self

    def __exit__(self, *exc) -> None:
        default_session.exit_session(self)
        self.close()


class InteractiveSession(Session):
    """A Session that installs itself (and its graph) as this thread's defaults until ``close()``,
    for shells and notebooks: ``t.eval()`` and ``op.run()`` then need no ``session=``."""

    def __init__(self, graph: Optional[Graph] = None, target: str = "cpu", check_numerics: Optional[bool] = None):
        super().__init__(graph, target, check_numerics)
        default_session.enter_session(self)

    def close(self) -> None:
        """Close the session and stop it (and its graph) being the defaults."""
        try:
            if not self._closed:
                default_session.exit_session(self)
        finally:
            super().close()


def _variable_value(op: Operation, value: Any) -> np.ndarray:
    from .values import convert_value
    out = op.outputs[0]
    return convert_value(value, out.dtype, out.shape, f"variable '{op.name}'", op=op, verb="set")


def _fast_key(fetches, feed_dict) -> Optional[tuple]:
    """A cheap key for the common cases (a Tensor/Operation or a flat list/tuple of them, fed by
    Tensor keys), else None. Ids are safe: the keyed objects belong to the session's graph."""
    if not all(isinstance(k, Tensor) for k in feed_dict):
        return None
    if isinstance(fetches, (Tensor, Operation)):
        head = (id(fetches),)
    elif type(fetches) in (list, tuple) and all(isinstance(x, (Tensor, Operation)) for x in fetches):
        head = (type(fetches),) + tuple(map(id, fetches))
    else:
        return None
    return head + (None,) + tuple(map(id, feed_dict))


def _structure_key(fetches) -> tuple:
    leaves, _ = flatten(fetches, lambda x: isinstance(x, (Tensor, Operation)))
    return tuple(id(x) for x in leaves) + (_shape_of(fetches),)


def _shape_of(s):
    if isinstance(s, (Tensor, Operation)):
        return "."
    if isinstance(s, dict):
        return (type(s), tuple((k, _shape_of(v)) for k, v in s.items()))
    if isinstance(s, (list, tuple)):
        return (type(s), tuple(_shape_of(v) for v in s))
    return "?"
