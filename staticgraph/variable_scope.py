"""Variable scopes, as TF1 has them: ``sg.get_variable`` and ``sg.variable_scope``.

``get_variable(name, ...)`` creates, or with ``reuse`` returns, the variable called
``"<variable scope>/<name>"``; the variables it creates are kept in a per-graph store, so
a model function called twice under ``reuse=True`` (or ``sg.AUTO_REUSE``) shares them.

- ``variable_scope(name)`` prefixes variable names with ``name/`` and opens a name scope of the
  same name for the ops built inside (variable names ignore enclosing *name* scopes, as in TF1);
- ``reuse=True``: every ``get_variable`` inside must find an existing variable; ``sg.AUTO_REUSE``:
  find it or create it; ``None``/``False``: inherit the enclosing scope's reuse, else create
  (an existing name is an error). Reuse is inherited by nested scopes;
- ``initializer=`` sets the default initializer of ``get_variable`` calls inside.

The stack of variable scopes is per thread and per graph, like the name scopes.
"""
from __future__ import annotations

import contextlib
import enum
import threading
import weakref
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from . import dtypes
from .graph import Graph, get_default_graph
from .initializers import Initializer, glorot_uniform_initializer, zeros_initializer
from .shapes import compatible, fmt
from .tensor import Tensor
from .variables import Variable

__all__ = ["AUTO_REUSE", "VariableScope", "get_variable", "get_variable_scope", "variable_scope"]


class _ReuseMode(enum.Enum):
    AUTO_REUSE = 1

    def __repr__(self) -> str:
        return "sg.AUTO_REUSE"


AUTO_REUSE = _ReuseMode.AUTO_REUSE
"""``reuse=sg.AUTO_REUSE``: ``get_variable`` returns the variable if it exists, else creates it."""


class VariableScope:
    """A variable scope: its ``name`` (the prefix of its variables), ``reuse`` mode, default
    ``initializer`` and the name scope its ops were built in (``original_name_scope``)."""

    def __init__(self, name: str, reuse=None, initializer=None, original_name_scope: str = ""):
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.original_name_scope = original_name_scope

    def reuse_variables(self) -> None:
        """From now on in this scope, ``get_variable`` returns existing variables (``reuse=True``)."""
        self.reuse = True

    def get_variable(self, name: str, *args, **kwargs) -> Variable:
        """``sg.get_variable`` inside this scope."""
        with variable_scope(self):
            return get_variable(name, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<sg.VariableScope '{self.name}' reuse={self.reuse!r}>"


class _Store:
    """One graph's variables made by ``get_variable`` (by full name) and variable-scope entry counts."""

    def __init__(self):
        self.variables: Dict[str, Variable] = {}
        self.scope_counts: Dict[str, int] = {}
        self.lock = threading.RLock()      # an initializer may itself call get_variable


_stores: "weakref.WeakKeyDictionary[Graph, _Store]" = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def _store(graph: Graph) -> _Store:
    with _stores_lock:
        store = _stores.get(graph)
        if store is None:
            store = _stores[graph] = _Store()
        return store


class _ThreadScopes(threading.local):
    """Each thread's variable-scope stack of each graph."""

    def __init__(self):
        self.stacks: "weakref.WeakKeyDictionary[Graph, List[VariableScope]]" = weakref.WeakKeyDictionary()


_local = _ThreadScopes()


def _scope_stack(graph: Graph) -> List[VariableScope]:
    stack = _local.stacks.get(graph)
    if stack is None:
        stack = _local.stacks[graph] = [VariableScope("")]
    return stack


def get_variable_scope() -> VariableScope:
    """The current variable scope of the default graph (the root scope has name ``""``)."""
    return _scope_stack(get_default_graph())[-1]


@contextlib.contextmanager
def _absolute_name_scope(graph: Graph, path: str) -> Iterator[None]:
    """Build ops named ``path/...`` whatever the enclosing name scopes (TF1's ``name_scope("a/b/")``)."""
    stack = graph._name_stack          # this thread's list of scope names: edited in place
    saved = list(stack)
    stack[:] = [path] if path else []
    try:
        yield
    finally:
        stack[:] = saved


def _check_reuse(reuse) -> None:
    if reuse not in (None, False, True) and reuse is not AUTO_REUSE:
        raise TypeError(f"variable_scope: reuse must be True, False, None or sg.AUTO_REUSE, got {reuse!r}")


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if not name or ":" in name or name.startswith("/") or name.endswith("/"):
        raise ValueError(f"{what} {name!r} is not a valid name (non-empty, no ':', no leading or "
                         f"trailing '/')")


@contextlib.contextmanager
def variable_scope(name_or_scope: Union[str, VariableScope, None] = None, default_name: Optional[str] = None,
                   *, initializer=None, reuse=None, name: Optional[str] = None) -> Iterator[VariableScope]:
    """``with sg.variable_scope("layer1"):`` names variables ``layer1/...`` and ops ``layer1/...``.

    Args:
        name_or_scope: a name (relative to the current variable scope) or a ``VariableScope`` to
            re-enter (with its own reuse mode and name scope).
        default_name: used, made unique (``dense``, ``dense_1``...), when ``name_or_scope`` is None.
        initializer: default initializer of the ``get_variable`` calls inside.
        reuse: ``True`` (variables must exist), ``sg.AUTO_REUSE`` (get or create), ``None``/``False``
            (inherit the enclosing scope's mode).
        name: another spelling of ``name_or_scope`` (``variable_scope(name="layer1")``).
    """
    if name is not None:
        if name_or_scope is not None:
            raise TypeError("variable_scope: give name_or_scope or name, not both")
        name_or_scope = name
    _check_reuse(reuse)
    graph = get_default_graph()
    stack = _scope_stack(graph)
    store = _store(graph)
    if isinstance(name_or_scope, VariableScope):       # re-enter it, in its own name scope
        scope = VariableScope(name_or_scope.name, reuse or name_or_scope.reuse,
                              initializer or name_or_scope.initializer, name_or_scope.original_name_scope)
        name_ctx = _absolute_name_scope(graph, scope.original_name_scope)
    else:
        parent = stack[-1]
        name = _scope_name(store, parent, name_or_scope, default_name, reuse)
        full = f"{parent.name}/{name}" if parent.name else name
        scope = VariableScope(full, reuse or parent.reuse, initializer or parent.initializer)
        name_ctx = graph.name_scope(name)
    with store.lock:
        store.scope_counts[scope.name] = store.scope_counts.get(scope.name, 0) + 1
    with name_ctx as opened:
        if opened is not None:
            scope.original_name_scope = opened
        stack.append(scope)
        try:
            yield scope
        finally:
            stack.pop()


def _scope_name(store: _Store, parent: VariableScope, name: Optional[str], default_name: Optional[str],
                reuse) -> str:
    """The new scope's name relative to ``parent``: ``name``, or ``default_name`` made unique."""
    if name is not None:
        _check_name(name, "variable_scope name")
        return name
    if default_name is None:
        raise ValueError("variable_scope: give name_or_scope, or default_name to make a unique one")
    if reuse is True:
        raise ValueError("variable_scope: reuse=True cannot be used without a name_or_scope "
                         "(a default_name is made unique, so there is nothing to reuse)")
    _check_name(default_name, "variable_scope default_name")
    return _unique_scope_name(store, parent.name, default_name)


def _unique_scope_name(store: _Store, parent: str, base: str) -> str:
    """``base``, ``base_1``, ... : the first whose full scope name was never entered."""
    with store.lock:
        i = 0
        while True:
            name = base if i == 0 else f"{base}_{i}"
            if (f"{parent}/{name}" if parent else name) not in store.scope_counts:
                return name
            i += 1


def get_variable(name: str, shape: Optional[Sequence[int]] = None, dtype=dtypes.float32,
                 initializer=None, trainable: bool = True) -> Variable:
    """The variable ``"<current variable scope>/<name>"``: created, or with reuse returned (TF1).

    Args:
        name: the variable's name inside the current variable scope.
        shape: its shape; needed when ``initializer`` is a callable (or None); checked against an
            existing variable's when reusing.
        dtype: its dtype (default float32); checked against an existing variable's when reusing.
        initializer: a callable ``init(shape, dtype)`` (e.g. ``sg.zeros_initializer()``), a tensor or
            an array-like initial value; default: the scope's, else ``sg.glorot_uniform_initializer()``
            (``sg.zeros_initializer()`` for integer and bool dtypes).
        trainable: add it to ``sg.trainable_variables()``.

    Raises:
        ValueError: creating a variable that exists (without reuse), reusing one that does not
            exist (``reuse=True``), or a shape/dtype that does not match the existing variable.
    """
    _check_name(name, "get_variable name")
    shape = _as_shape(shape)
    dt = dtypes.as_dtype(dtype)
    graph = get_default_graph()
    scope = _scope_stack(graph)[-1]
    full = f"{scope.name}/{name}" if scope.name else name
    store = _store(graph)
    with store.lock:
        existing = store.variables.get(full)
        if existing is None and scope.reuse is True:
            raise ValueError(f"variable '{full}' does not exist, or was not created with sg.get_variable(); "
                             f"reuse=True needs it created first (or use reuse=sg.AUTO_REUSE to create it "
                             f"when it is missing)")
        if existing is not None:
            if scope.reuse is True or scope.reuse is AUTO_REUSE:
                _check_shared(existing, full, shape, dt)
                return existing
            raise ValueError(f"variable '{full}' already exists; set reuse=True or AUTO_REUSE to share it "
                             f"(`with sg.variable_scope(..., reuse=True):`); it was created at "
                             f"{existing.op.defined_at}")
        var = _create(graph, full, shape, dt, initializer if initializer is not None else scope.initializer,
                      trainable)
        store.variables[full] = var
        return var


def _as_shape(shape) -> Optional[tuple]:
    """``shape`` as a tuple of ints and ``None`` (an int is a 1-D shape), or None."""
    if shape is None:
        return None
    dims = (shape,) if isinstance(shape, int) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"get_variable: shape must be a list of ints, got {shape!r}") from None
    for d in dims:
        if d is not None and (isinstance(d, bool) or not hasattr(d, "__index__") or int(d) < 0):
            raise TypeError(f"get_variable: shape must be a list of non-negative ints (or None), got {shape!r}")
    return tuple(None if d is None else int(d) for d in dims)


def _check_shared(var: Variable, full: str, shape, dtype) -> None:
    if shape is not None and not compatible(shape, var.shape):
        raise ValueError(f"Trying to share variable '{full}', but specified shape {fmt(shape)} and "
                         f"found shape {fmt(var.shape)}")
    if dtype != var.dtype:
        raise ValueError(f"Trying to share variable '{full}', but specified dtype {dtype.name} and found "
                         f"dtype {var.dtype.name}")


def _initial_value(full: str, shape, dtype, initializer: Any) -> Tensor:
    """Build the initial value of a new variable from its initializer (in the current name scope)."""
    from .ops import constant
    if isinstance(initializer, type) and issubclass(initializer, Initializer):
        initializer = initializer()            # TF1 accepts the class itself: initializer=sg.zeros_initializer
    if initializer is None:
        initializer = glorot_uniform_initializer() if dtypes.is_floating(dtype) else zeros_initializer()
    if callable(initializer):
        if shape is None or any(d is None for d in shape):
            raise ValueError(f"the shape of a new variable ('{full}') must be fully defined, but instead was "
                             f"{shape if shape is None else fmt(tuple(shape))}; pass shape=")
        value = initializer(tuple(shape), dtype)
        if not isinstance(value, Tensor):
            value = constant(value, dtype=dtype)
    elif isinstance(initializer, Tensor):
        value = initializer
    else:
        value = constant(initializer, dtype=dtype)
    if value.dtype != dtype:
        raise TypeError(f"the initializer of variable '{full}' made a {value.dtype.name} value, but the "
                        f"variable's dtype is {dtype.name}")
    if value.shape is None or None in value.shape:
        raise ValueError(f"the initial value of variable '{full}' must have a fully known shape, got "
                         f"{fmt(value.shape)}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"the initializer of variable '{full}' has shape {fmt(value.shape)}, but shape "
                         f"{fmt(tuple(shape))} was given")
    return value


def _create(graph: Graph, full: str, shape, dtype, initializer, trainable: bool) -> Variable:
    parent, _, short = full.rpartition("/")
    with graph.as_default(), graph.control_dependencies(None):
        with _absolute_name_scope(graph, f"{full}/Initializer"):
            value = _initial_value(full, shape, dtype, initializer)
        with _absolute_name_scope(graph, parent):
            return Variable(value, trainable=trainable, name=short)
