"""staticgraph: a static-graph deep-learning compiler.

``import staticgraph as sg``; declare placeholders, variables and ops into a
graph, derive gradients symbolically with ``sg.gradients``, run with
``sg.Session``. The public names are those of API.md.
"""
from . import errors  # noqa: F401
from .dtypes import bool_, float32, float64, int32, int64  # noqa: F401
from .graph import Graph, Operation, control_dependencies, get_default_graph, name_scope, reset_default_graph  # noqa: F401
from .tensor import Tensor  # noqa: F401
from .ops import (  # noqa: F401
    abs, add, argmax, assign, assign_add, assign_sub, cast, concat, constant, cos, divide, dot, equal,
    exp, expand_dims, greater, greater_equal, group, identity, less, less_equal, log, matmul, maximum,
    minimum, multiply, negative, norm, not_equal, one_hot, ones, ones_like, placeholder, pow,
    random_normal, random_uniform, reduce_max, reduce_mean, reduce_sum, relu, reshape, sigmoid, sign, sin,
    sqrt, square, stack, stop_gradient, subtract, tanh, transpose, where, zeros, zeros_like,
)
from .variables import (  # noqa: F401
    Variable, global_variables, global_variables_initializer, trainable_variables, variables_initializer,
)
from .gradients import gradients  # noqa: F401
from .gradcheck import check_gradients  # noqa: F401
from .session import InteractiveSession, Session  # noqa: F401
from .default_session import get_default_session  # noqa: F401
from .initializers import (  # noqa: F401
    constant_initializer, glorot_uniform_initializer, ones_initializer, random_normal_initializer,
    random_uniform_initializer, zeros_initializer,
)
from .variable_scope import AUTO_REUSE, VariableScope, get_variable, get_variable_scope, variable_scope  # noqa: F401
from . import initializers, summary  # noqa: F401
from . import train  # noqa: F401
from . import nn, datasets  # noqa: F401
from . import debugging  # noqa: F401
from . import distributed  # noqa: F401
from .viz import to_dot, write_graph  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name: str):
    """``sg.onnx`` is imported on first use: its op table is a twentieth of ``import staticgraph``,
    which every run pays (the onnx package itself is imported only by export/import calls)."""
    if name == "onnx":
        import importlib
        return importlib.import_module(f"{__name__}.onnx")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
