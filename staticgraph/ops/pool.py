"""Max and average pooling (N-d, NC[D]HW): forward ops and their backward ops, each one OpDef.

SKELETON: owned by the pooling work; the builders below are the public names.
"""
from __future__ import annotations


def _todo(*args, **kwargs):
    raise NotImplementedError("pooling")


max_pool1d = max_pool2d = max_pool3d = _todo
avg_pool1d = avg_pool2d = avg_pool3d = _todo
