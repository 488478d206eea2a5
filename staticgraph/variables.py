"""``Variable``: graph state that persists across runs of a Session.

A Variable is a Tensor (the value read at the start of a run), so it can be
used in any op. Its ``initializer`` assigns ``initial_value``.
"""
from __future__ import annotations

from typing import Iterable, List, Optional


from . import dtypes
from .graph import Operation, get_default_graph
from .tensor import Tensor

GLOBAL_VARIABLES = "variables"
TRAINABLE_VARIABLES = "trainable_variables"


class Variable(Tensor):
    """A persistent, assignable tensor: ``sg.Variable(initial_value, trainable=True, name=None, dtype=None)``."""

    def __init__(self, initial_value, trainable: bool = True, name: Optional[str] = None, dtype=None):
        from .ops import as_tensor, assign, cast
        graph = initial_value.graph if isinstance(initial_value, Tensor) else get_default_graph()
        with graph.as_default():
            if isinstance(initial_value, Tensor):
                init = initial_value if dtype is None else cast(initial_value, dtype)
            else:
                init = as_tensor(initial_value, dtype=dtype)
            if init.shape is None or None in init.shape:
                raise ValueError(f"Variable '{name or 'Variable'}': initial value must have a fully known "
                                 f"shape, got {init.shape}")
            if trainable and not dtypes.is_floating(init.dtype):
                raise TypeError(f"only floating point tensors can require gradients: Variable "
                                f"'{name or 'Variable'}' has dtype {init.dtype.name}; pass trainable=False")
            op = graph.create_op("Variable", [], {"shape": init.shape, "dtype": init.dtype},
                                 name=name or "Variable")
            super().__init__(op, 0, init.shape, init.dtype)
            op.outputs = (self,)
            op.variable = self
            self.initial_value = init
            self.trainable = bool(trainable)
            # op.name already carries the enclosing name scope: name the initializer relative to it
            scope = "/".join(graph._name_stack)
            local = op.name[len(scope) + 1:] if scope and op.name.startswith(scope + "/") else op.name
            self.initializer = assign(self, init, name=f"{local}/Assign")
        graph.add_to_collection(GLOBAL_VARIABLES, self)
        if trainable:
            graph.add_to_collection(TRAINABLE_VARIABLES, self)

    @property
    def var_name(self) -> str:
        """The variable's op name (``"w"`` for a tensor named ``"w:0"``); checkpoints use it."""
        return self.op.name

    def __repr__(self) -> str:
        return f"<sg.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}>"



def global_variables(graph=None) -> List[Variable]:
    """Every Variable of the (default) graph, in creation order."""
    return (graph or get_default_graph()).get_collection(GLOBAL_VARIABLES)


def trainable_variables(graph=None) -> List[Variable]:
    """The trainable Variables of the (default) graph, in creation order."""
    return (graph or get_default_graph()).get_collection(TRAINABLE_VARIABLES)


def variables_initializer(var_list: Iterable[Variable], name: str = "init") -> Operation:
    """An op that runs the initializers of ``var_list``."""
    from .ops import group
    var_list = list(var_list)
    for v in var_list:
        if not isinstance(v, Variable):
            raise TypeError(f"variables_initializer takes Variables, got {v!r}")
    graph = var_list[0].graph if var_list else get_default_graph()
    with graph.as_default():
        return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    """An op that initializes every Variable of the default graph."""
    return variables_initializer(global_variables(), name="init")
