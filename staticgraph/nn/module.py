"""``Module`` and ``Parameter``: PyTorch's module system over a static graph.

A Module's Parameters and sub-modules are *discovered* from its attributes (no registration
step): held directly, in ``ModuleList``/``Sequential``, or anywhere inside plain lists, tuples and
dicts (nested), which PyTorch would miss. Order and names follow PyTorch: a module's direct
Parameter attributes first (attribute order), then its children in attribute order, each with its
own subtree; container entries are named by index or key (``"layers.0.weight"``). An object reached
twice (a shared Parameter or module) is yielded once. All walks are iterative.

Calling a module runs ``forward`` inside the module's name scope (``linear_1/matmul``) and adds ops to
the graph; calling it again reuses its Parameters (weight sharing).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Tuple

from ..graph import get_default_graph
from ..variables import Variable


class Parameter(Variable):
    """A trainable Variable owned by a Module: ``Parameter(initial_value)``.

    It is an ordinary ``sg.Variable`` (listed by ``sg.trainable_variables()``, initialised by
    ``sg.global_variables_initializer()``); ``requires_grad=False`` makes it non-trainable.
    """

    def __init__(self, initial_value, requires_grad: bool = True, name: Optional[str] = None, dtype=None):
        super().__init__(initial_value, trainable=requires_grad, name=name or "Parameter", dtype=dtype)

    @property
    def requires_grad(self) -> bool:
        return self.trainable

    def __repr__(self) -> str:
        return f"<sg.nn.Parameter '{self.name}' shape={self.shape} dtype={self.dtype.name}>"


Member = Tuple[str, Any]
_REPR_ACTIVE = set()  # ids of the modules whose repr is being built  # (dotted name, Parameter or Module)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _members_of(value: Any, name: str) -> List[Member]:
    """The Parameters and Modules in ``value``: itself, or inside nested lists, tuples and dicts
    (not inside Modules), in order, named ``name.index`` / ``name.key``."""
    out: List[Member] = []
    stack: List[Member] = [(name, value)]
    seen_containers = set()
    while stack:
        path, v = stack.pop()
        if isinstance(v, (Parameter, Module)):
            out.append((path, v))
            continue
        if isinstance(v, (list, tuple, dict)):
            if id(v) in seen_containers:
                continue
            seen_containers.add(id(v))
            items = v.items() if isinstance(v, dict) else enumerate(v)
            stack.extend(reversed([(_join(path, str(k)), x) for k, x in items]))
    return out


class Module:
    """Base class of layers and models: subclass it, define ``__init__`` and ``forward``.

    ``module(*args)`` calls ``forward`` and adds ops to the graph. Parameters are created in
    ``__init__`` (in the default graph) and reused by every call.
    """

    training: bool = True

    def __init__(self) -> None:
        self.training = True

    # -- calling -------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def __call__(self, *args, **kwargs):
        with self._name_scope():
            return self.forward(*args, **kwargs)

    @contextlib.contextmanager
    def _name_scope(self) -> Iterator[None]:
        """Enter this module's name scope in the default graph (``linear``, ``linear_1``...)."""
        graph = get_default_graph()
        scope = self.__dict__.get("_scope")
        if scope is None or self.__dict__.get("_scope_graph") is not graph:
            full = graph.unique_name(type(self).__name__.lower())
            prefix = "/".join(graph._name_stack)
            scope = full[len(prefix) + 1:] if prefix else full
            self.__dict__["_scope"], self.__dict__["_scope_graph"] = scope, graph
        with graph.name_scope(scope):
            yield

    def _new_parameter(self, name: str, value) -> Parameter:
        """A Parameter named ``<module scope>/<name>`` holding the array ``value`` (in its dtype)."""
        with self._name_scope():
            return Parameter(value, name=name, dtype=value.dtype)

    # -- discovery -------------------------------------------------------------------------------
    def _slots(self) -> List[Tuple[str, Any]]:
        """The (name, value) pairs searched for Parameters and sub-modules (the attributes)."""
        return [(k, v) for k, v in vars(self).items() if k not in ("_scope", "_scope_graph")]

    def _layout(self) -> Tuple[List[Member], List[Member]]:
        """(direct Parameter attributes, then the rest: child modules and Parameters in containers)."""
        own: List[Member] = []
        rest: List[Member] = []
        for name, value in self._slots():
            if isinstance(value, Parameter):
                own.append((name, value))
            elif isinstance(value, (Module, list, tuple, dict)):
                rest.extend(_members_of(value, name))
        return own, rest

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[Tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs in PyTorch's order; a shared Parameter comes once."""
        seen = set()
        stack: List[Member] = [(prefix, self)]
        while stack:
            name, obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, Parameter):
                yield name, obj
                continue
            if obj is not self and not recurse:
                continue
            own, rest = obj._layout()
            stack.extend(reversed([(_join(name, n), m) for n, m in own + rest]))

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of this module and its sub-modules (see ``named_parameters``)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """Direct sub-modules: attributes, and modules inside plain containers (``"blocks.0"``)."""
        seen = set()
        for name, m in self._layout()[1]:
            if isinstance(m, Module) and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """This module (named ``prefix``) and every sub-module, depth first; each once."""
        seen = set()
        stack: List[Tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            stack.extend(reversed([(_join(name, n), c) for n, c in m.named_children()]))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    # -- modes ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this module and every sub-module; returns ``self``."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """``train(False)``."""
        return self.train(False)

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's one-line repr."""
        return ""

    def __repr__(self) -> str:
        if id(self) in _REPR_ACTIVE:  # a module that holds one of its ancestors
            return f"<cycle: {type(self).__name__}>"
        _REPR_ACTIVE.add(id(self))
        try:
            extra = self.extra_repr()
            lines = extra.split("\n") if extra else []
            lines += [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        finally:
            _REPR_ACTIVE.discard(id(self))
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and extra:
            return head + extra + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
