"""The graph IR: ``Graph`` and ``Operation`` (``Tensor`` lives in tensor.py).

A graph is append-only: an operation's inputs always exist before it, so
ascending ``Operation.id`` is a deterministic topological order. Every
operation records the user's source line that created it (``defined_at``) and,
for gradient ops, the forward op it differentiates (``grad_of``).
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from .default_session import run_operation
from .tensor import Tensor

_PACKAGE_DIRS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compiler") + os.sep,
)


@functools.lru_cache(maxsize=4096)
def _is_internal(co_filename: str) -> bool:
    """Whether code from ``co_filename`` is staticgraph's own (or contextlib's): asked once per file."""
    filename = os.path.abspath(co_filename)
    return filename.startswith(_PACKAGE_DIRS) or "contextlib" in filename


def user_frame() -> str:
    """``file:line`` of the innermost caller outside staticgraph/ and compiler/."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_internal(frame.f_code.co_filename):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def located(exc: Exception, label: str, where: str) -> Exception:
    """A build-time error as the user sees it: ``exc``'s type and message prefixed with ``label:``
    and suffixed with ``(at file:line)``. An error already located (by an inner op or builder) is
    returned unchanged, so the innermost, most precise message wins."""
    if getattr(exc, "defined_at", None):
        return exc
    message = str(exc)
    if not message.startswith(f"{label}:"):
        message = f"{label}: {message}"
    try:
        new = type(exc)(f"{message}  (at {where})")
    except TypeError:       # an exception type that takes other arguments: leave it as it is
        return exc
    new.defined_at = where
    return new


class Operation:
    """A node of the graph: an op type, input tensors, attributes and output tensors."""

    def __init__(self, graph: "Graph", op_id: int, op_type: str, name: str,
                 inputs: Sequence[Tensor], attrs: Dict[str, Any],
                 control_inputs: Sequence["Operation"], out_specs: Sequence[tuple],
                 defined_at: str, grad_of: Optional["Operation"], opdef=None):
        self.graph = graph
        self.opdef = opdef
        self.id = op_id
        self.type = op_type
        self.name = name
        self.inputs = tuple(inputs)
        self.attrs = attrs
        self.control_inputs = tuple(control_inputs)
        self.defined_at = defined_at
        self.grad_of = grad_of
        self.outputs = tuple(Tensor(self, i, shape, dtype) for i, (shape, dtype) in enumerate(out_specs))

    @property
    def is_gradient(self) -> bool:
        """True for ops built by the gradient pass."""
        return self.grad_of is not None

    def run(self, feed_dict=None, session=None) -> None:
        """Run this op: ``session.run(self, feed_dict)`` in ``session`` or the default session."""
        run_operation(self, feed_dict, session)

    def __repr__(self) -> str:
        return f"<sg.Operation '{self.name}' type={self.type}>"


class _BuilderStacks(threading.local):
    """A graph's per-thread builder state: name scopes, control dependencies, gradient-of ops."""

    def __init__(self):
        self.names: List[str] = []
        self.controls: List[List[Operation]] = []
        self.grads: List[Operation] = []


class Graph:
    """A dataflow graph of Operations. Use ``with g.as_default():`` to build into it.

    Several threads may add ops to one graph at once (names and ids stay unique); the
    ``name_scope`` / ``control_dependencies`` contexts apply only to the thread that entered them.
    """

    def __init__(self):
        self._ops: List[Operation] = []
        self._names: Dict[str, int] = {}
        self._by_name: Dict[str, Operation] = {}
        self._stacks = _BuilderStacks()
        self._collections: Dict[str, list] = {}
        self._finalized = False
        self._lock = threading.RLock()

    # this thread's builder stacks (see _BuilderStacks)
    @property
    def _name_stack(self) -> List[str]:
        return self._stacks.names

    @property
    def _control_stack(self) -> List[List[Operation]]:
        return self._stacks.controls

    @_control_stack.setter
    def _control_stack(self, value: List[List[Operation]]) -> None:
        self._stacks.controls = value

    @property
    def _grad_stack(self) -> List[Operation]:
        return self._stacks.grads

    # -- construction --------------------------------------------------------------
    def create_op(self, op_type: str, inputs: Sequence[Tensor], attrs: Optional[Dict[str, Any]] = None,
                  name: Optional[str] = None) -> Operation:
        """Validate ``inputs`` with the op's shape/dtype inference and append a new Operation."""
        from .opdef import get_opdef

        if self._finalized:
            raise RuntimeError(f"Graph is finalized and cannot be modified (adding a '{op_type}' op at "
                               f"{user_frame()}); build ops before the training loop, or call "
                               f"graph.unfinalize()")
        opdef = get_opdef(op_type)
        attrs = dict(attrs or {})
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"{op_type}: expected Tensor inputs, got {type(t).__name__}")
            if t.graph is not self:
                raise ValueError(f"{op_type}: tensor '{t.name}' belongs to another graph; "
                                 f"all inputs of an op must come from the same graph")
        where = user_frame()
        try:
            specs = opdef.infer(*inputs, **attrs)
        except (ValueError, TypeError) as exc:
            raise located(exc, name or opdef.default_name, where) from None
        specs = _normalise_specs(specs)
        control = [op for group in self._control_stack for op in group]
        with self._lock:
            unique = self.unique_name(name or opdef.default_name)
            grad_of = self._grad_stack[-1] if self._grad_stack else None
            op = Operation(self, len(self._ops), op_type, unique, inputs, attrs, control, specs,
                           where, grad_of, opdef)
            self._ops.append(op)
            self._by_name[unique] = op
        return op

    def unique_name(self, name: str) -> str:
        """Scope ``name`` and make it unique in this graph (``x``, ``x_1``, ``x_2``...)."""
        full = "/".join(self._name_stack + [name]) if self._name_stack else name
        with self._lock:
            return self._reserve(full)

    def _reserve(self, full: str) -> str:
        if full not in self._names:
            self._names[full] = 0
            return full
        i = self._names[full]
        while True:
            i += 1
            candidate = f"{full}_{i}"
            if candidate not in self._names:
                self._names[full] = i
                self._names[candidate] = 0
                return candidate

    # -- contexts ------------------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self) -> Iterator["Graph"]:
        """Make this the calling thread's default graph inside the ``with`` block."""
        stack = _thread_defaults.stack
        stack.append(self)
        try:
            yield self
        finally:
            _pop_default(stack, self)

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[str]:
        """Prefix the names of ops created in the block with ``name/``."""
        self._name_stack.append(name.rstrip("/"))
        try:
            yield "/".join(self._name_stack)
        finally:
            self._name_stack.pop()

    @contextlib.contextmanager
    def control_dependencies(self, control_inputs) -> Iterator[None]:
        """Ops created in the block run only after ``control_inputs`` (``None`` clears)."""
        if control_inputs is None:
            saved, self._control_stack = self._control_stack, []
            try:
                yield
            finally:
                self._control_stack = saved
            return
        ops = []
        for c in control_inputs:
            op = c.op if isinstance(c, Tensor) else c
            if not isinstance(op, Operation):
                raise TypeError(f"control_dependencies takes Tensors or Operations, got {type(c).__name__}")
            if op.graph is not self:
                raise ValueError(f"control input '{op.name}' belongs to another graph")
            ops.append(op)
        self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    @contextlib.contextmanager
    def gradient_of(self, op: Operation) -> Iterator[None]:
        """Mark ops created in the block as part of the gradient of ``op``."""
        self._grad_stack.append(op)
        try:
            with self.name_scope(f"gradients/{op.name}"):
                yield
        finally:
            self._grad_stack.pop()

    # -- queries -------------------------------------------------------------------
    def get_operations(self) -> List[Operation]:
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        """The op called ``name`` (``KeyError`` if none); a dict lookup."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise KeyError(f"no operation named {name!r} in this graph") from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        """The tensor called ``"<op name>:<output index>"``."""
        op_name, colon, index = name.rpartition(":") if isinstance(name, str) else ("", "", "")
        if not colon or not index.isdigit():
            raise ValueError(f"tensor names look like '<op name>:<output index>', got {name!r}")
        op = self.get_operation_by_name(op_name)
        if int(index) >= len(op.outputs):
            raise KeyError(f"no tensor named {name!r}: op '{op_name}' has {len(op.outputs)} output(s)")
        return op.outputs[int(index)]

    @property
    def version(self) -> int:
        """Number of ops so far (grows as the graph is built)."""
        return len(self._ops)

    def add_to_collection(self, key: str, value: Any) -> None:
        self._collections.setdefault(key, []).append(value)

    def get_collection(self, key: str) -> list:
        return list(self._collections.get(key, []))

    def finalize(self) -> None:
        """Forbid adding ops (catches graphs that grow inside a training loop)."""
        self._finalized = True

    def unfinalize(self) -> None:
        self._finalized = False

    @property
    def finalized(self) -> bool:
        return self._finalized

    def to_networkx(self):
        """The graph as a ``networkx.DiGraph`` (see ``staticgraph.viz``)."""
        from .viz import to_networkx
        return to_networkx(self)


def _normalise_specs(specs) -> List[tuple]:
    """Accept ``(shape, dtype)`` or a list of them; return a list of (shape tuple|None, dtype)."""
    if isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], np.dtype):
        specs = [specs]
    out = []
    for shape, dtype in specs:
        out.append((None if shape is None else tuple(None if d is None else int(d) for d in shape),
                    np.dtype(dtype)))
    return out


class _ThreadDefaults(threading.local):
    """Each thread's stack of ``as_default()`` graphs (TF1: the default graph is per thread)."""

    def __init__(self):
        self.stack: List[Graph] = []


_thread_defaults = _ThreadDefaults()
_global_default = [Graph()]


def _pop_default(stack: List[Graph], graph: Graph) -> None:
    """Leave ``graph.as_default()``: it must be the innermost default graph of this thread."""
    if stack and stack[-1] is graph:
        stack.pop()
        return
    if graph in stack:   # drop it anyway so later exits can still succeed, then report
        del stack[len(stack) - 1 - stack[::-1].index(graph)]
    raise RuntimeError("graph.as_default() contexts were exited out of order (a graph made default "
                       "later in this thread is still the default); exit `with g.as_default():` "
                       "blocks innermost first")


def get_default_graph() -> Graph:
    """This thread's innermost ``as_default()`` graph, else the process-wide default graph."""
    stack = _thread_defaults.stack
    return stack[-1] if stack else _global_default[0]


def reset_default_graph() -> None:
    """Replace the process-wide default graph with a new empty one (threads inside their own
    ``as_default()`` blocks are unaffected; not allowed inside one in the calling thread)."""
    if _thread_defaults.stack:
        raise AssertionError("reset_default_graph() called inside a `with graph.as_default()` block")
    _global_default[0] = Graph()


def name_scope(name: str):
    """``with sg.name_scope("layer1"):`` prefixes op names in the default graph."""
    return get_default_graph().name_scope(name)


def control_dependencies(control_inputs):
    """``with sg.control_dependencies([a, b]):`` ops built inside run after ``a`` and ``b``."""
    return get_default_graph().control_dependencies(control_inputs)
