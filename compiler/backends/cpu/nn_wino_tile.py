"""Single-tile Winograd CPU kernels: 2-d convolutions whose (padded) input plane is one Winograd tile.

LeNet's second conv reads 8x8 planes with a 5x5 filter and writes 4x4 planes: the whole plane is
the input tile of F(4x4, 5x5), a = m + r - 1 = 8 along each axis. With one tile per plane the
transforms are fixed linear maps of whole planes, so every stage is one GEMM over a chunk of
samples (``A2 = a_h a_w``, ``M2 = m_h m_w``, ``R2 = r_h r_w``; KB = B_h^T (x) B_w^T, KA = A_h^T (x)
A_w^T, KG = G_h (x) G_w, Kronecker products of the 1-d matrices of ``matrices``)::

    U  (A2 x C O) = KG @ W^T                          the filters, once per call
    V  (A2 x n C) = KB @ X^T                           X: the chunk's (zero-padded) planes, (n C x A2)
    Mx[xi] (n x O) = V[xi] (n x C) @ U[xi] (C x O)    A2 GEMMs
    Y  (n O x M2) = Mx^T @ KA^T                        straight into Y's (N, O, OH, OW) rows

The kernels use (c, o) order U for the forward and (o, c) order for the gradients:

- ``tile_fwd``: the four stages above (W copied to (C, O, R2) first, so U's GEMMs run NN); a fused
  bias (``nn_conv.fuse_bias``) is added to Y's rows;
- ``tile_bpi``: dM (A2 x n O) = KA^T @ dY^T, dV[xi] (n x C) = dM[xi] @ U[xi], dX planes = dV^T @ KB;
- ``tile_bpf``: V and dM as above, dU[xi] (O x C) += dM[xi]^T @ V[xi] over the worker's chunks, the
  workers' dU summed, dW (O C x R2) = dU^T @ KG; a fused bias gradient (``nn_conv.fuse_bias_grad``)
  sums dY's planes per worker (``_bias_sums``).

Each worker takes a contiguous share of the samples and runs it in chunks of ``nb`` samples (V and
Mx ~``CHUNK_ELEMENTS``, cache-sized), every GEMM on one BLAS thread (an idle multi-threaded OpenBLAS
spins against the workers: a first version computing U on two BLAS threads before the workers made
the whole LeNet step 10x slower, every later kernel included). U's columns and dW's rows are split
over the workers too. ``applies`` takes a conv only where the multiply-adds (transforms included) are
at most ``MAX_COST`` of im2col's: LeNet's conv2 (4x4 outputs, 5x5 filter, 32 -> 64 channels) 0.40;
the demo's 3x3 convs on 4x4 planes 0.78 (kept on im2col). The 1-d matrices use the points 0, 1, -1,
2, -2, 1/2, -1/2 (a <= 8); float32 results are within a few 1e-6 of the float64 sums, like
F(4x4, 3x3)'s (``nn_winograd``, whose tile layout serves wide planes: tried on LeNet's conv2 with a
5x5 variant of its matrices, its per-row transforms and scalar filter transform made the forward
1.5x and the gradients 1.6x slower than im2col).

Measured (plan profiles, same minutes, two workers), LeNet's conv2 im2col -> tile kernels: batch 64
forward 0.69 -> 0.39 ms, input gradient 0.61 -> 0.35, filter gradient 0.52 -> 0.41 (the step 3.37 ->
2.60 ms); batch 256: 2.74 -> 1.05, 2.40 -> 1.25, 2.56 -> 1.16 (the step 13.3 -> 8.9 ms).

Record: ``nn_conv.ConvRecord``'s, with the chunk size at q + 22 and each worker's region at q + 26
(``geometry``). Workspace: KB, KA, KG, U, W's copy, the workers' bias sums, then per worker V, Mx
(or dM), the padded planes and its partial dU (regions on 16-element boundaries).
"""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

from . import threads
from .lowerings import Phase, runs_in_phases
from .records import CONV
from .tile_matrices import ALIGN, MAX_A, POINTS, matrices  # noqa: F401  (re-exported: the family's matrices)

MAX_COST = 0.6                   # at most this share of im2col's multiply-adds
CHUNK_ELEMENTS = 1 << 18         # V and Mx of a chunk hold about this many elements

# -- lowering side ---------------------------------------------------------------------------------

def _ld(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def applies(attrs: dict, xshape, wshape, yshape, dtype) -> bool:
    """A 2-d conv whose padded input plane is one tile of a <= ``MAX_A`` along each axis (so stride 1,
    dilation 1), one group, static channels, plane and filter shapes, float32 or float64, where
    the transforms and GEMMs take at most ``MAX_COST`` of im2col's multiply-adds.
    ``STATICGRAPH_WINOGRAD=0`` turns it off (with ``nn_winograd``)."""
    if os.environ.get("STATICGRAPH_WINOGRAD", "1") == "0":
        return False
    shapes = [tuple(s) if s is not None else None for s in (xshape, wshape, yshape)]
    if any(s is None or len(s) != 4 or None in s[1:] for s in shapes) or None in shapes[1]:
        return False
    (_, c, h, w), (o, cg, kh, kw), (_, _, oh, ow) = shapes
    if attrs["groups"] != 1 or any(s != 1 for s in attrs["stride"]) or any(d != 1 for d in attrs["dilation"]):
        return False
    ah, aw = oh + kh - 1, ow + kw - 1
    if np.dtype(dtype) not in (np.float32, np.float64) or min(c, o, oh, ow) < 1 or max(ah, aw) > MAX_A:
        return False
    a2, m2 = ah * aw, oh * ow
    tile = c * a2 * a2 + a2 * c * o + o * a2 * m2
    return tile <= MAX_COST * m2 * kh * kw * c * o


def geometry(attrs: dict, xshape, wshape, yshape) -> Dict[str, int]:
    """``nn_conv._geometry`` with this family's chunk samples (``nb``), workers and worker region."""
    from .nn_conv import _geometry
    g = _geometry(attrs, xshape, wshape, yshape)
    n, c = xshape[:2]
    o, _, kh, kw = wshape
    oh, ow = yshape[2:]
    a2 = (oh + kh - 1) * (ow + kw - 1)
    workers = max(1, min(threads.kernel_threads(), n))
    nb = max(1, min(-(-n // workers), CHUNK_ELEMENTS // (a2 * (c + o))))
    g.update(nb=nb, T=workers, region=_ld(a2 * nb * c) + _ld(a2 * nb * o) + _ld(nb * c * a2) + _ld(a2 * o * c))
    return g


def workspace_size(attrs: dict, xshape, wshape, yshape) -> int:
    """KB, KA, KG, U, W's copy, the workers' bias sums, then their regions (``_tile_layout``; each
    of its five alignments may skip up to ALIGN - 1 elements)."""
    g = geometry(attrs, xshape, wshape, yshape)
    o, c, kh, kw = wshape
    oh, ow = yshape[2:]
    a2, r2, workers = (oh + kh - 1) * (ow + kw - 1), kh * kw, g["T"]
    head = a2 * a2 + oh * ow * a2 + a2 * r2 + a2 * o * c + c * o * r2 + workers * o * oh * ow
    return head + 5 * ALIGN + workers * g["region"]



def _workers(rec: list) -> int:
    """The workers of a conv-family record (``records.CONV``'s T)."""
    return rec[CONV.at.T]


# The kernels run in phases (``lowerings.PHASES``): the transform matrices, then U's bands and the
# samples' shares on the kernel workers; the filter gradient's partial dU per worker, then dW's bands.
# args: tile_fwd / tile_bpi (X or dY, W, Y or dX, WS); tile_bpf (X, dY, dW, WS, BG)
runs_in_phases("tile_fwd", _workers, Phase("tile_prep", (3,), 0, False), Phase("tile_fwd_u", (1, 3), 1, True),
               Phase("tile_fwd", (0, 1, 2, 3), 2, True))
runs_in_phases("tile_bpi", _workers, Phase("tile_prep", (3,), 0, False), Phase("tile_bpi_u", (1, 3), 1, True),
               Phase("tile_bpi", (0, 1, 2, 3), 2, True))
runs_in_phases("tile_bpf", _workers, Phase("tile_prep", (3,), 0, False), Phase("tile_bpf", (0, 1, 3), 2, True),
               Phase("tile_bpf_dw", (2, 3, 4), 0, True))
