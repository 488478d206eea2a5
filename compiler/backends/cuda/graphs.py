"""CUDA graphs: a shape signature's launches captured once and replayed, one launch a phase.

A layout's second step (its first compiled the kernels) captures its main launches, and its
write-back launches, each into a CUDA graph (``cuStreamBeginCapture`` on the step's stream, the
launchers called as usual, ``cuStreamEndCapture``, ``cuGraphInstantiate``); later steps replay
them with ``cuGraphLaunch``. Feeds, fetches and the error slots stay plain copies outside the
graphs (their staging addresses never change). A capture that fails leaves the layout on plain
launches, the reason kept for ``plan.explain()``. Never on the simulator.

Untested on hardware (no GPU was lent while this was written); ``STATICGRAPH_CUDA_GRAPHS=0``
turns capture off."""
from __future__ import annotations

import os
from typing import Optional, Sequence

from .driver import simulated


def why_not() -> Optional[str]:
    """Why this process does not capture graphs, or None when it does."""
    if simulated():
        return "the CUDA simulator has no CUDA graphs"
    if os.environ.get("STATICGRAPH_CUDA_GRAPHS", "1") == "0":
        return "STATICGRAPH_CUDA_GRAPHS=0"
    try:
        from cuda.bindings import driver  # noqa: F401
    except ImportError as exc:
        return f"cuda-bindings unavailable ({exc})"
    return None


def _ok(result, what: str):
    from cuda.bindings import driver as cu
    err = result[0] if isinstance(result, tuple) else result
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"{what} failed: {err}")
    return result[1] if isinstance(result, tuple) and len(result) > 1 else None


def _handle(stream):
    from cuda.bindings import driver as cu
    return cu.CUstream(int(stream.handle))


class Graph:
    """``launches`` (a layout's bound launches) captured on ``stream``: ``launch(stream)`` replays them."""

    def __init__(self, launches: Sequence[tuple], M, E, stream):
        from cuda.bindings import driver as cu
        h = _handle(stream)
        _ok(cu.cuStreamBeginCapture(h, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            "cuStreamBeginCapture")
        graph = None
        try:
            for fn, arrays, p, rec in launches:
                fn(arrays, M, E, p, rec, stream)
        finally:
            graph = _ok(cu.cuStreamEndCapture(h), "cuStreamEndCapture")
        try:
            self.exec = _ok(cu.cuGraphInstantiate(graph, 0), "cuGraphInstantiate")
        finally:
            cu.cuGraphDestroy(graph)

    def launch(self, stream) -> None:
        from cuda.bindings import driver as cu
        _ok(cu.cuGraphLaunch(self.exec, _handle(stream)), "cuGraphLaunch")

    def __del__(self):
        try:
            from cuda.bindings import driver as cu
            cu.cuGraphExecDestroy(self.exec)
        except Exception:  # noqa: BLE001 - at teardown the driver may be gone
            pass
