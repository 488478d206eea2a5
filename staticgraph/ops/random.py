"""Random tensors. Each op draws fresh values every run from its own generator,
seeded by ``seed`` when given (reproducible across sessions), else by the OS."""
from __future__ import annotations

from typing import Optional

from .. import dtypes
from .array import _fill_shape
from .core import def_op, graph_of, make


def _random_infer(shape, a, b, dtype, seed):
    if not dtypes.is_floating(dtype):
        raise TypeError(f"random values must be floating point, got {dtype.name}")
    return shape, dtype


def_op("RandomNormal", _random_infer,
       lambda ctx, shape, a, b, dtype, seed: ctx.rng().normal(a, b, size=shape).astype(dtype),
       None, default_name="random_normal", stateful=True)
def_op("RandomUniform", _random_infer,
       lambda ctx, shape, a, b, dtype, seed: ctx.rng().uniform(a, b, size=shape).astype(dtype),
       None, default_name="random_uniform", stateful=True)


def random_normal(shape, mean: float = 0.0, stddev: float = 1.0, dtype=dtypes.float32,
                  seed: Optional[int] = None, name: Optional[str] = None):
    """Normally distributed values, drawn anew each run."""
    return make("RandomNormal", [], name=name, graph=graph_of(), shape=_fill_shape(shape), a=float(mean),
                b=float(stddev), dtype=dtypes.as_dtype(dtype), seed=seed)


def random_uniform(shape, minval: float = 0.0, maxval: float = 1.0, dtype=dtypes.float32,
                   seed: Optional[int] = None, name: Optional[str] = None):
    """Uniformly distributed values in ``[minval, maxval)``, drawn anew each run."""
    return make("RandomUniform", [], name=name, graph=graph_of(), shape=_fill_shape(shape), a=float(minval),
                b=float(maxval), dtype=dtypes.as_dtype(dtype), seed=seed)
