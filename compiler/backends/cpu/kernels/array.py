"""Kernels that write arrays from the record alone or from indices: ``fill``, ``onehot``."""
from numba import njit

from .base import JIT


@njit(**JIT)
def fill(Y, M, E, p):
    """Y[off:off+n] = value (record: n, off, value)."""
    n = M[p]
    off = M[p + 1]
    v = M[p + 2]
    for i in range(n):
        Y[off + i] = v


@njit(**JIT)
def onehot(X, Y, M, E, p):
    """Record: n, x_off, y_off, depth."""
    n = M[p]
    xo = M[p + 1]
    yo = M[p + 2]
    depth = M[p + 3]
    for i in range(n):
        v = X[xo + i]
        for j in range(depth):
            Y[yo + i * depth + j] = 1.0 if v == j else 0.0
