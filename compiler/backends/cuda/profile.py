"""The cuda target's lowering profile (``cpu/lowering.LoweringProfile``): the cpu lowering, records
and memory plan, with the cpu-only machinery off.

- ``shares=False``, ``phases=False``, ``split_elementwise=False``: a kernel call is never cut into
  per-thread shares; a GPU kernel spreads its work over its own grid;
- ``rewrites=("fuse_sum_of_products", "fuse_bias", "fuse_bias_grad")``: ``red_Dot`` has a cuda kernel; the conv rewrites
  (``fuse_bias``, ``fuse_bias_grad``, ``keep_columns``, ``fuse_pool``, Winograd's
  ``fuse_backward``) change the conv kernels' records or emit cpu-only kernels, so they stay off;
- ``kernels``: the names the cuda registry has (or expects from the conv and pool modules,
  ``kernels.PENDING``), so the conv lowering never chooses Winograd or single-tile Winograd.

The graph passes run without elementwise fusion (``cpu/executable._optimize(fusion=False)``):
the cuda plan is the base, unfused tier."""
from __future__ import annotations

from ..cpu.lowering import LoweringProfile


def _has_kernel(name: str) -> bool:
    from .kernels import PENDING, load_all
    return name in load_all() or name in PENDING


CUDA_PROFILE = LoweringProfile(name="cuda", shares=False, phases=False, split_elementwise=False,
                               rewrites=("fuse_sum_of_products", "fuse_bias", "fuse_bias_grad"), kernels=_has_kernel)
