"""Op builders: every public op of API.md §1-2 (importing this registers the op types)."""
from .core import as_tensor, constant, placeholder, operands, make  # noqa: F401
from .math import (  # noqa: F401
    abs, add, cos, divide, dot, equal, exp, greater, greater_equal, less, less_equal, log, matmul,
    maximum, minimum, multiply, negative, not_equal, pow, relu, sigmoid, sign, sin, sqrt, square,
    subtract, tanh, where,
)
from .reduce import (  # noqa: F401
    argmax, broadcast_like, norm, reduce_max, reduce_mean, reduce_sum, reduced_count, sum_to_like,
)
from .array import (  # noqa: F401
    cast, concat, expand_dims, getitem, identity, one_hot, ones, ones_like, reshape, reshape_like,
    scatter_like, split_like, stack, stop_gradient, transpose, zeros, zeros_like,
)
from .random import random_normal, random_uniform  # noqa: F401
from .debugging import check_numerics  # noqa: F401
from .state import assign, assign_add, assign_sub, group  # noqa: F401
from .collective import all_reduce  # noqa: F401
