"""Collectives across the processes of an MPI job: the ``Allreduce`` op and the job it runs over.

The job is MPI's ``COMM_WORLD`` through ``mpi4py`` (the optional extra ``distributed``), used
only when a launcher started this process (``mpirun``/``mpiexec``, Slurm's ``srun``): without one,
or with one process, there is no communicator and ``Allreduce`` is the identity, so every graph
runs as in one process. ``sg.distributed`` is the public face of this module.

``Allreduce(x, op, parts)`` combines ``x`` element for element over the ranks (``"sum"``, or
``"mean"``: the sum divided by the number of ranks). It is stateful (it talks to other processes,
so no pass may fold, merge or drop it). ``parts`` describes what ``x`` packs, ``((name, dtype,
shape), ...)`` of every gradient the step combines: the first run of each distinct ``parts``
gathers every rank's and fails, on every rank, naming the first variable that differs (graphs
that differ would otherwise exchange buffers of different layouts). Each backend lowers the op
to one call of :func:`allreduce` on a flat buffer of its own (the reference interpreter on a
NumPy copy, the cpu backend between two native calls of its step).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Optional, Sequence, Tuple

import numpy as np

from .. import dtypes
from ..errors import FailedPreconditionError
from .core import def_op, make

REDUCTIONS = ("mean", "sum")
# environment variables by which launchers tell a process its job size (MPICH/Hydra and Intel MPI,
# Open MPI, PMIx, MVAPICH, a step of Slurm's srun: not SLURM_NTASKS, also set in a batch script's
# own single process)
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE",
                      "SLURM_STEP_NUM_TASKS")
Parts = Tuple[Tuple[str, str, tuple], ...]
# seconds between printing an uncaught error and MPI_Abort: without it mpiexec sometimes dropped
# the output of the ranks it was killing (the traceback was lost in 1 of 6 runs)
ABORT_DELAY = 0.5

_lock = threading.Lock()
_job: dict = {}              # "comm": the communicator (None: one process), set once by world()
_checked: set = set()        # the ``parts`` whose layouts all ranks have compared


def launcher_size() -> Optional[int]:
    """The job size a launcher announced in this process's environment, else None."""
    for var in LAUNCHER_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


def world():
    """The job's communicator (``mpi4py``'s ``COMM_WORLD``) when a launcher started 2 or more
    processes, else None (one process). Connects on first use, installing :func:`abort_on_error`."""
    if "comm" not in _job:
        with _lock:
            if "comm" not in _job:
                _job["comm"] = _connect()
    return _job["comm"]


def _connect():
    announced = launcher_size()
    if announced is None:
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if announced > 1:
            raise ImportError(f"staticgraph.distributed: a launcher started {announced} processes, but mpi4py is "
                              f"not installed, so each would train alone; pip install 'staticgraph[distributed]'") \
                from exc
        return None
    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        return None
    abort_on_error(comm)
    share_cores(comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size())
    return comm


THREAD_VARS = ("STATICGRAPH_KERNEL_THREADS", "STATICGRAPH_BLAS_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def share_cores(local_ranks: int) -> Optional[int]:
    """Ranks on one node split its cores: when ``local_ranks`` > 1 and the user set none of
    ``THREAD_VARS``, this process's kernel workers, kernel BLAS, OpenBLAS and OpenMP default to its
    share (its CPUs / local ranks; all of its CPUs when the launcher bound it to fewer than the
    node's), and the BLAS already loaded (NumPy's) is limited now. Each rank's BLAS threads busy-wait
    for their partners: 2 ranks on 2 cores with a BLAS thread per core each made the MLP step 100x
    slower (docs/distributed.md). Returns the thread count set, None when nothing was."""
    if local_ranks < 2 or any(os.environ.get(var) for var in THREAD_VARS):
        return None
    mine = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    bound = mine < (os.cpu_count() or mine)
    n = max(1, mine if bound else mine // local_ranks)
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    import threadpoolctl
    threadpoolctl.threadpool_limits(n)
    return n


def rank() -> int:
    """This process's rank in the job (0 in a single process)."""
    comm = world()
    return 0 if comm is None else comm.Get_rank()


def size() -> int:
    """The number of processes in the job (1 without a launcher or without mpi4py)."""
    comm = world()
    return 1 if comm is None else comm.Get_size()


def abort_on_error(comm) -> None:
    """Make an uncaught exception end the whole job: print it, then ``MPI_Abort``. Otherwise the
    other ranks would wait forever in their next collective for a rank that has left."""
    previous = sys.excepthook
    if getattr(previous, "_sg_aborts", False):
        return

    def hook(kind, value, tb):
        try:
            previous(kind, value, tb)
            sys.stderr.write(f"staticgraph.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed "
                             f"({kind.__name__}); aborting the MPI job\n")
            sys.stderr.flush()
            time.sleep(ABORT_DELAY)       # the launcher forwards what was printed before it kills the job
        finally:
            comm.Abort(1)
    hook._sg_aborts = True
    sys.excepthook = hook


def allreduce(buf: np.ndarray, op: str, parts: Parts = (), who=None) -> np.ndarray:
    """Combine the flat contiguous ``buf`` over the job, in place (``op``: ``"mean"`` or ``"sum"``),
    and return it. The first call for each ``parts`` first checks that every rank packs the same
    variables (``FailedPreconditionError`` naming the first that differs, raised on every rank;
    ``who``: the op, for the message). One process: ``buf`` unchanged."""
    comm = world()
    if comm is None:
        return buf
    if parts not in _checked:
        _check_layouts(comm, parts, who)
        _checked.add(parts)
    from mpi4py import MPI
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    if op == "mean":
        np.divide(buf, comm.Get_size(), out=buf)
    return buf


def _check_layouts(comm, parts: Parts, who) -> None:
    layouts = comm.allgather(parts)
    problem = layout_difference(layouts)
    if problem:
        raise FailedPreconditionError(f"the ranks of this MPI job build different graphs: {problem}; every rank "
                                      f"must build the same variables", who)


def layout_difference(layouts: Sequence[Parts]) -> str:
    """The first difference between rank 0's ``parts`` and another rank's, as text ("" if none)."""
    first = {name: (dt, shape) for name, dt, shape in layouts[0]}
    for r, parts in enumerate(layouts[1:], start=1):
        mine = {name: (dt, shape) for name, dt, shape in parts}
        for name in list(first) + [n for n in mine if n not in first]:
            a, b = first.get(name), mine.get(name)
            if a == b:
                continue
            if a is None or b is None:
                has, lacks = (0, r) if b is None else (r, 0)
                return f"variable '{name}' exists on rank {has} but not on rank {lacks}"
            return (f"variable '{name}' is {a[0]} {list(a[1])} on rank 0 but {b[0]} {list(b[1])} on rank {r}")
        if [p[0] for p in parts] != [p[0] for p in layouts[0]]:
            return f"rank {r} orders its variables differently from rank 0"
    return ""


# -- the op ---------------------------------------------------------------------------------

def _allreduce_infer(x, op, parts):
    if op not in REDUCTIONS:
        raise ValueError(f"op must be one of {', '.join(REDUCTIONS)}, got {op!r}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"can only combine floating point tensors over ranks, got {x.dtype.name}")
    return x.shape, x.dtype


def _allreduce_reference(ctx, x, op, parts):
    return allreduce(np.array(x, copy=True, order="C"), op, parts, ctx.op)


def _allreduce_grad(op, g):
    # self-adjoint: y_r = sum_s x_s (/ K) for every rank r, so dL/dx_s = sum_r dL/dy_r (/ K)
    return [all_reduce(g, op.attrs["op"], op.attrs["parts"])]


def_op("Allreduce", _allreduce_infer, _allreduce_reference, _allreduce_grad, default_name="allreduce",
       stateful=True)


def all_reduce(x, op: str = "mean", parts: Parts = (), name: Optional[str] = None):
    """``x`` combined over the ranks of the job (``op``: ``"mean"`` or ``"sum"``), as a graph tensor."""
    return make("Allreduce", [x], name=name, op=op, parts=tuple(parts))
