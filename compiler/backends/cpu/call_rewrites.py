"""The cpu backend's call rewrites: one declared, ordered pipeline over a program's lowered calls.

A call rewrite runs after every op is lowered and before the write-back is planned
(``Lowering._finish``); it folds a call into another where the kernels can do both in one pass
(a bias add into its conv, a max pooling into the conv it reads...). The order is part of the
design, not of the import order: each rewrite below may rely on those before it.

Each is switched off by name like the graph passes (``compiler.passes``):
``STATICGRAPH_DISABLE_REWRITES="fuse_pool,keep_columns"`` (``"all"``: every rewrite), which makes
the plan run the unfused kernels (slower, same results up to rounding): for debugging a kernel and
for measuring what a rewrite is worth.
"""
from __future__ import annotations

from typing import Callable, Tuple

from ...passes import switched_off
from . import collectives, lowerings, nn_conv, nn_conv_pool, nn_pool, nn_softmax, nn_wino_tile, nn_winograd  # noqa: F401 (every family: their lowerings register)

ENV_DISABLE = "STATICGRAPH_DISABLE_REWRITES"

REWRITES: Tuple[Tuple[str, Callable], ...] = (
    ("fuse_sum_of_products", lowerings.fuse_sum_of_products),   # sum(a * b) as one red_Dot
    ("fuse_backward", nn_winograd.fuse_backward),               # both Winograd gradients in one pass
    ("fuse_bias", nn_conv.fuse_bias),                           # conv + bias add
    ("fuse_bias_grad", nn_conv.fuse_bias_grad),                 # filter gradient + bias gradient
    ("keep_columns", nn_conv.keep_columns),                     # after the two above: marks their records
    ("fuse_pool", nn_conv_pool.fuse_pool),                      # after fuse_bias and keep_columns: takes
)                                                               # the bias-fused, one-sample convs only
REWRITE_NAMES = tuple(name for name, _ in REWRITES)


def disabled_rewrites() -> Tuple[str, ...]:
    """The rewrites ``$STATICGRAPH_DISABLE_REWRITES`` switches off; an unknown name is a
    ``ValueError`` listing the rewrites."""
    return switched_off(REWRITE_NAMES, ENV_DISABLE, (), "call rewrite", "rewrites")


def run_rewrites(lowering) -> Tuple[str, ...]:
    """Run the enabled rewrites in order on ``lowering``'s program (those of its profile,
    ``LoweringProfile.rewrites``); the names of those that ran."""
    off = disabled_rewrites()
    chosen = lowering.profile.rewrites
    ran = []
    for name, rewrite in REWRITES:
        if name not in off and (chosen is None or name in chosen):
            rewrite(lowering)
            ran.append(name)
    return tuple(ran)
