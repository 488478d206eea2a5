"""``sg.distributed``: data-parallel training over MPI (API.md section 11), Horovod's API shape.

Launch K copies of one training script (``mpirun -n K python train.py``, or ``srun`` under Slurm);
each rank reads its shard of every global batch (``sg.datasets.batches(..., num_shards=size(),
shard_index=rank())``), and ``DistributedOptimizer`` combines the gradients over the ranks
inside the compiled step before the update, so with a mean loss and equal shards K ranks give
the parameters one process gets on the whole global batch. Without mpi4py or outside a
launcher, ``rank()`` is 0, ``size()`` is 1 and everything runs as in one process.

The combination is graph ops: per dtype, the gradients are flattened into one buffer
(``concat``: Horovod's fusion buffer), one ``Allreduce`` op combines it, and ``split_like``
gives each variable its part back; so a step makes one allreduce per dtype, inside the step
each backend compiles (``staticgraph/ops/collective.py``). The cpu backend places the gradients
in that buffer as they are computed, so packing and unpacking copy nothing there.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import FailedPreconditionError
from .graph import Operation
from .ops import concat, reshape, split_like
from .ops.collective import REDUCTIONS, Parts, all_reduce, layout_difference, rank, size, world
from .tensor import Tensor
from .train.optimizers import GradsAndVars, Optimizer
from .variables import Variable, global_variables

__all__ = ["init", "rank", "size", "DistributedOptimizer", "broadcast_variables"]


def init() -> None:
    """Join the MPI job this process was launched in (no-op in a single process). From then on an
    uncaught exception on any rank aborts the whole job instead of leaving the others waiting."""
    world()


class DistributedOptimizer:
    """Wraps any ``sg.train`` optimizer: its gradients are combined over the ranks (``op="mean"``:
    their average, Horovod's default; ``"sum"``) before the update.

    ``compute_gradients`` returns the combined gradients; ``apply_gradients`` combines those it is
    given that are not already combined (so ``apply_gradients(compute_gradients(loss))`` combines
    once, and gradients from ``sg.gradients`` or clipped ones are combined too); ``minimize`` is
    both. Every other attribute (``get_slot``, ``variables``...) is the wrapped optimizer's."""

    def __init__(self, optimizer: Optimizer, op: str = "mean"):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer wraps a sg.train optimizer, got {optimizer!r}")
        if op not in REDUCTIONS:
            raise ValueError(f"DistributedOptimizer: op must be one of {', '.join(map(repr, REDUCTIONS))}, "
                             f"got {op!r}")
        self._optimizer = optimizer
        self._op = op
        self._combined: set = set()       # gradient tensors this optimizer's allreduce produced

    def compute_gradients(self, loss: Tensor, var_list: Optional[Iterable[Variable]] = None) -> GradsAndVars:
        """The wrapped optimizer's ``[(grad, var)]``, each grad combined over the ranks."""
        return self._combine(self._optimizer.compute_gradients(loss, var_list))

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[Optional[Tensor], Variable]],
                        name: Optional[str] = None) -> Operation:
        """The wrapped optimizer's update from the combined gradients."""
        return self._optimizer.apply_gradients(self._combine(list(grads_and_vars)), name=name)

    def minimize(self, loss: Tensor, var_list: Optional[Iterable[Variable]] = None,
                 name: Optional[str] = None) -> Operation:
        """``apply_gradients(compute_gradients(loss, var_list))``: the training step."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name)

    def __getattr__(self, name):
        return getattr(self._optimizer, name)

    def _combine(self, pairs: GradsAndVars) -> GradsAndVars:
        """Per dtype, one Allreduce over the flattened gradients not combined yet."""
        todo = [(g, v) for g, v in pairs if isinstance(g, Tensor) and g not in self._combined]
        if not todo:
            return pairs
        parts: Parts = tuple((v.op.name, np.dtype(v.dtype).name, tuple(v.shape)) for _, v in todo)
        by_dtype: Dict[np.dtype, List[Tuple[Tensor, Variable]]] = {}
        for g, v in todo:
            by_dtype.setdefault(np.dtype(g.dtype), []).append((g, v))
        graph = todo[0][1].graph
        combined: Dict[Tensor, Tensor] = {}
        with graph.as_default(), graph.name_scope("DistributedOptimizer"):
            for group in by_dtype.values():
                combined.update(_allreduce_group(group, self._op, parts))
        self._combined.update(combined.values())
        return [(combined.get(g, g) if isinstance(g, Tensor) else g, v) for g, v in pairs]


def _allreduce_group(group: Sequence[Tuple[Tensor, Variable]], op: str, parts: Parts) -> Dict[Tensor, Tensor]:
    """One dtype's gradients through one flat buffer: {grad: combined grad}."""
    flats = [reshape(g, [-1]) for g, _ in group]
    flat = flats[0] if len(flats) == 1 else concat(flats, axis=0, name="fusion_buffer")
    reduced = all_reduce(flat, op, parts)
    pieces = (reduced,) if len(flats) == 1 else split_like(reduced, flats, axis=0)
    return {g: reshape(p, list(v.shape)) for (g, v), p in zip(group, pieces)}


def broadcast_variables(sess, root: int = 0) -> None:
    """Every rank's variables (all of the session graph's) take rank ``root``'s values. Call it
    after the initializer (only root's values are read). Ranks whose graphs hold different
    variables fail, every one of them, with an error naming the first that differs."""
    comm = world()
    if comm is None:
        return
    if not 0 <= root < comm.Get_size():
        raise ValueError(f"broadcast_variables: root must be a rank of the job (0..{comm.Get_size() - 1}), "
                         f"got {root}")
    variables = global_variables(sess.graph)
    parts = tuple((v.op.name, np.dtype(v.dtype).name, tuple(v.shape)) for v in variables)
    problem = layout_difference(comm.allgather(parts))
    if problem:
        raise FailedPreconditionError(f"broadcast_variables: the ranks of this MPI job build different graphs: "
                                      f"{problem}")
    mine = comm.Get_rank() == root
    for v in variables:
        value = sess.get_variable_value(v) if mine else np.empty(tuple(v.shape), v.dtype)
        comm.Bcast(value, root=root)
        if not mine:
            sess.set_variable_value(v, value)
