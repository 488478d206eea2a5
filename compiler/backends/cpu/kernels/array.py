"""Kernels that write arrays from the record alone or from indices: ``fill``, ``onehot``. Records:
``lowerings.ARRAY_FILL`` (``FILL``) and ``lowerings.ARRAY_ONEHOT`` (``HOT``)."""
from numba import njit

from ..lowerings import ARRAY_FILL, ARRAY_ONEHOT
from .base import JIT

FILL = ARRAY_FILL.at     # module names: unique over kernels/ (library.SOURCE imports them all)
HOT = ARRAY_ONEHOT.at


@njit(**JIT)
def fill(Y, M, E, p):
    """Y[y_off:y_off + n] = value."""
    n = M[p + FILL.n]
    off = M[p + FILL.y_off]
    v = M[p + FILL.value]
    for i in range(n):
        Y[off + i] = v


@njit(**JIT)
def onehot(X, Y, M, E, p):
    """Y (n, depth) = the one-hot rows of the n indices in X."""
    n = M[p + HOT.n]
    xo = M[p + HOT.x_off]
    yo = M[p + HOT.y_off]
    depth = M[p + HOT.depth]
    for i in range(n):
        v = X[xo + i]
        for j in range(depth):
            Y[yo + i * depth + j] = 1.0 if v == j else 0.0
