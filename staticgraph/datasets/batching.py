"""Mini-batches of aligned arrays for training loops."""
from __future__ import annotations

from typing import Iterator, Tuple, Union

import numpy as np

Seed = Union[None, int, np.random.Generator]


def batches(*arrays, batch_size: int, shuffle: bool = False, seed: Seed = None, epoch: int = 0,
            drop_last: bool = False) -> Iterator[Tuple[np.ndarray, ...]]:
    """An iterator of tuples ``(a[idx], b[idx], ...)`` of consecutive mini-batches of aligned ``arrays``.

    All arrays must have the same length (first dimension). Batches hold
    ``batch_size`` samples, the last one fewer unless ``drop_last=True`` drops
    it. Without ``shuffle`` the samples come in order (batches are views).

    With ``shuffle=True`` every sample appears once per pass, in an order drawn from:

    - ``seed=None``: fresh randomness (a new order each call);
    - an int ``seed``: a pure function of ``(seed, epoch)``, so pass the epoch
      number to reshuffle per epoch reproducibly: ``batches(x, y, batch_size=64,
      shuffle=True, seed=0, epoch=e)``;
    - a ``numpy.random.Generator``: drawn from, so successive calls (epochs)
      give successive orders, reproducible when the generator is seeded.
    """
    if not arrays:
        raise TypeError("batches() needs at least one array")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches(): batch_size must be a positive int, got {batch_size!r}")
    arrays = tuple(np.asarray(a) for a in arrays)
    for k, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"batches(): array {k} is a scalar; each array needs a first (sample) dimension")
    n = len(arrays[0])
    for k, a in enumerate(arrays[1:], start=1):
        if len(a) != n:
            raise ValueError(f"batches(): array {k} has {len(a)} samples but array 0 has {n}; "
                             f"the arrays must be aligned")
    order = _permutation(n, seed, epoch) if shuffle else None
    return _generate(arrays, n, batch_size, order, drop_last)


def _generate(arrays, n, batch_size, order, drop_last):
    """The batches themselves (arguments already checked, so errors surface at the call)."""
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            part = slice(start, min(start + batch_size, n))
        else:
            part = order[start:start + batch_size]
        yield tuple(a[part] for a in arrays)


def _permutation(n: int, seed: Seed, epoch: int) -> np.ndarray:
    if isinstance(seed, np.random.Generator):
        return seed.permutation(n)
    if seed is None:
        return np.random.default_rng().permutation(n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"batches(): seed must be None, a non-negative int or a numpy Generator, "
                         f"got {seed!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"batches(): epoch must be a non-negative int, got {epoch!r}")
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)
