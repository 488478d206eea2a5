"""The cuda target's lowering profile (``cpu/lowering.LoweringProfile``): the cpu lowering, records
and memory plan, with the cpu-only machinery off.

- ``shares=False``, ``phases=False``, ``split_elementwise=False``: a kernel call is never cut into
  per-thread shares; a GPU kernel spreads its work over its own grid;
- ``rewrites=("fuse_sum_of_products", "fuse_bias", "fuse_bias_grad")``: ``red_Dot`` has a cuda
  kernel, and the cuda conv kernels read a fused bias (``conv_fwd``) and its gradient
  (``conv_bpf``) from the record like the cpu ones; ``keep_columns`` stays off (the implicit-GEMM
  kernels never build im2col columns, so kept columns would only take arena space), and so do
  ``fuse_pool`` and Winograd's ``fuse_backward`` (they emit cpu-only kernels);
- ``kernels``: the names the cuda registry has, so the conv lowering never chooses Winograd,
  single-tile Winograd or a fused conv + pool kernel.

The graph passes run without elementwise fusion (``cpu/executable._optimize(fusion=False)``):
the cuda plan is the base, unfused tier."""
from __future__ import annotations

from ..cpu.lowering import LoweringProfile


def _has_kernel(name: str) -> bool:
    from .kernels import load_all
    return name in load_all()


CUDA_PROFILE = LoweringProfile(name="cuda", shares=False, phases=False, split_elementwise=False,
                               rewrites=("fuse_sum_of_products", "fuse_bias", "fuse_bias_grad"),
                               kernels=_has_kernel)
