"""The 1-d Winograd matrices F(m, r) of the single-tile kernels (``nn_wino_tile``), as plain NumPy:
shared by the lowering side (which chooses and sizes) and the kernels (which read the table)."""
import math

import numpy as np

POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
MAX_A = len(POINTS) + 1          # the largest tile side the points serve
ALIGN = 16                       # regions start on 64-byte lines of float32


def matrices(m: int, r: int):
    """B^T (a x a), G (a x r), A^T (m x a) of the 1-d Winograd F(m, r), a = m + r - 1, from the
    first a - 1 of ``POINTS`` and the point at infinity (Toom-Cook): A^T and G evaluate the output
    and filter polynomials, B^T solves A^T [(G g) * (B^T d)] = the correlation of d and g."""
    a = m + r - 1
    pts = POINTS[:a - 1]
    AT, G = np.zeros((m, a)), np.zeros((a, r))
    for j, p in enumerate(pts):
        AT[:, j] = [p ** i for i in range(m)]
        f = math.prod(p - q for k, q in enumerate(pts) if k != j)
        G[j] = [p ** k / f for k in range(r)]
    AT[m - 1, a - 1] = G[a - 1, r - 1] = 1.0
    Q = np.einsum("ij,jk->ikj", AT, G).reshape(m * r, a)         # rows (i, k): A^T[i, j] G[j, k]
    want = np.array([[1.0 if t == i + k else 0.0 for t in range(a)] for i in range(m) for k in range(r)])
    BT = np.linalg.lstsq(Q, want, rcond=None)[0]
    assert np.abs(Q @ BT - want).max() < 1e-12, (m, r)
    return BT, G, AT


def table():
    """Every F(m, r) with a <= MAX_A flattened into one float64 array, and where each starts."""
    flat, at = [], np.full((MAX_A + 1, MAX_A + 1), -1, np.int64)
    for m in range(1, MAX_A + 1):
        for r in range(1, MAX_A + 2 - m):
            at[m, r] = sum(len(x) for x in flat)
            flat.append(np.concatenate([x.ravel() for x in matrices(m, r)]))
    return np.concatenate(flat), at

