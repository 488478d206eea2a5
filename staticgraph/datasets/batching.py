"""Mini-batches of aligned arrays for training loops."""
from __future__ import annotations

from typing import Iterator, Tuple, Union

import numpy as np

Seed = Union[None, int, np.random.Generator]


def batches(*arrays, batch_size: int, shuffle: bool = False, seed: Seed = None, epoch: int = 0,
            drop_last: bool = False, num_shards: int = 1, shard_index: int = 0) -> Iterator[Tuple[np.ndarray, ...]]:
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

    Data-parallel training (``sg.distributed``): ``batch_size`` stays the *global* batch, and with
    ``num_shards=K`` each global batch is cut into K contiguous parts whose sizes differ by at most
    one (the first ``len % K`` parts one row longer); shard ``shard_index`` gets its part. So K
    shards with the same ``seed`` and ``epoch`` together see exactly the batches of one unsharded
    iterator (a part may be empty when a batch has fewer rows than shards).
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
    for what, value, low in (("num_shards", num_shards, 1), ("shard_index", shard_index, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"batches(): {what} must be an int >= {low}, got {value!r}")
    if shard_index >= num_shards:
        raise ValueError(f"batches(): shard_index must be below num_shards={num_shards}, got {shard_index}")
    order = _permutation(n, seed, epoch) if shuffle else None
    return _generate(arrays, n, batch_size, order, drop_last, int(num_shards), int(shard_index))


def _generate(arrays, n, batch_size, order, drop_last, num_shards, shard_index):
    """The batches themselves (arguments already checked, so errors surface at the call)."""
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        lo, hi = shard_bounds(end - start, num_shards, shard_index)
        if order is None:
            part = slice(start + lo, start + hi)
        else:
            part = order[start + lo:start + hi]
        yield tuple(a[part] for a in arrays)


def shard_bounds(rows: int, num_shards: int, shard_index: int) -> Tuple[int, int]:
    """``[lo, hi)`` of shard ``shard_index`` among ``num_shards`` contiguous parts of ``rows`` rows
    whose sizes differ by at most one (the first ``rows % num_shards`` one longer)."""
    small, extra = divmod(rows, num_shards)
    lo = shard_index * small + min(shard_index, extra)
    return lo, lo + small + (shard_index < extra)


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
