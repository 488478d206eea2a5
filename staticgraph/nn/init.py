"""Parameter initialisation: NumPy draws from one module-level generator.

Layers draw their initial weights at construction, like PyTorch. The generator starts from a fixed
seed (so a script builds the same model in every process, as PyTorch does); ``manual_seed(seed)``
reseeds it, e.g. at the top of a script or test, to get reproducible but different models.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

DEFAULT_SEED = 0
_generator = np.random.default_rng(DEFAULT_SEED)


def manual_seed(seed: int) -> None:
    """Reseed the generator that layers draw their initial Parameter values from."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The generator layers draw from (reseeded by ``manual_seed``)."""
    return _generator


def uniform(shape: Sequence[int], bound: float, dtype) -> np.ndarray:
    """Values uniform in ``[-bound, bound]``, drawn in float64 and cast to ``dtype``."""
    return _generator.uniform(-bound, bound, size=tuple(shape)).astype(dtype)


def fan_in_bound(fan_in: int) -> float:
    """PyTorch's default bound ``1/sqrt(fan_in)`` for weights and biases (0 for an empty fan-in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
