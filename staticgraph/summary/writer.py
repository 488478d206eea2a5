"""``sg.summary.FileWriter``: TensorBoard event files, written by tensorboardX's writer."""
from __future__ import annotations

import os
from typing import Optional, Union

from ..graph import Graph
from ..ops.collective import rank
from ._tbx import tensorboardx
from .graph_def import graph_def
from .ops import to_proto


class _Discard:
    """The writer of a rank other than 0: accepts every event and writes nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class FileWriter:
    """Writes summaries and graphs to an event file in ``logdir`` for TensorBoard (TF1's API).

    ``FileWriter(logdir, graph=sess.graph)`` also writes the graph (TensorBoard's Graphs tab);
    in the training loop, ``writer.add_summary(sess.run(merged, feed_dict), step)``; ``close()``
    at the end (or use it as a context manager). Events are flushed every ``flush_secs`` seconds,
    after ``max_queue`` pending events, on ``flush()`` and on ``close()``. In an MPI job
    (``sg.distributed``) only rank 0's writer writes; the others accept and drop every event.
    """

    def __init__(self, logdir: Union[str, os.PathLike], graph: Optional[Graph] = None, max_queue: int = 10,
                 flush_secs: float = 120, filename_suffix: str = ""):
        self._logdir = os.fspath(logdir)
        # in an MPI job (sg.distributed) rank 0 writes and the other ranks' writers discard everything
        self._writer = tensorboardx().FileWriter(self._logdir, max_queue=max_queue, flush_secs=flush_secs,
                                                 filename_suffix=filename_suffix) if rank() == 0 else _Discard()
        self._closed = False
        if graph is not None:
            self.add_graph(graph)

    def get_logdir(self) -> str:
        """The directory the event file is written to."""
        return self._logdir

    def add_summary(self, summary, global_step: Optional[int] = None) -> None:
        """Record a fetched summary (``sess.run(summary)``; a Summary protobuf or its bytes also do)
        at step ``global_step``."""
        self._check_open()
        self._writer.add_summary(to_proto(summary), None if global_step is None else int(global_step))

    def add_scalar(self, tag: str, value: float, global_step: Optional[int] = None) -> None:
        """Record a plain Python number (e.g. an accuracy computed outside the graph) under ``tag``."""
        self._check_open()
        summary = tensorboardx().summary.scalar(tag, float(value))
        self._writer.add_summary(summary, None if global_step is None else int(global_step))

    def add_graph(self, graph: Graph, global_step: Optional[int] = None) -> None:
        """Write ``graph`` (ops, types, shapes, user lines, name scopes) for TensorBoard's Graphs tab."""
        from tensorboardX.proto import event_pb2
        self._check_open()
        event = event_pb2.Event(graph_def=graph_def(graph).SerializeToString())
        self._writer.add_event(event, None if global_step is None else int(global_step))

    def flush(self) -> None:
        """Write pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if not self._closed:
            self._writer.close()
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this FileWriter (logdir '{self.get_logdir()}') is closed")

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
