"""``Plan``: one compiled step with positional feeds, built once and called many times.

Calling a plan validates and converts the fed arrays (``staticgraph.values``:
``same_kind`` casting, no lossy integer narrowing, shape against the
placeholder's static shape), runs the backend executable (which lands the
assigns and hands back arrays the caller owns: ``backends/base.py``), and
returns the fetches in the caller's structure. No graph work happens per call.
"""
from __future__ import annotations

from typing import Any, Callable, List, Sequence

import numpy as np

from staticgraph.shapes import fmt
from staticgraph.tensor import Tensor
from staticgraph.values import convert_value

from .backends.base import Executable
from .numerics import Check, check
from .schedule import Schedule
from .state import SessionState


class Plan:
    """A compiled step: ``plan(*arrays)`` feeds ``arrays`` positionally and returns the fetches."""

    def __init__(self, sched: Schedule, executable: Executable, state: SessionState, pack: Callable[[List[Any]], Any],
                 leaf_kinds: Sequence[str], target: str, checks: Sequence[Check] = ()):
        self.schedule = sched
        self._checks = tuple(checks)     # numerics.py: fetched after the caller's fetches, checked, dropped
        self.feeds = sched.feeds
        self._exe = executable
        self._state = state
        self._pack = pack
        self._leaf_kinds = tuple(leaf_kinds)
        # where each fetched value goes among the leaves (an op leaf gets None), or None: all tensors
        self._slots = None if "op" not in self._leaf_kinds else [
            i for i, kind in enumerate(self._leaf_kinds) if kind != "op"]
        self.target = target
        self._dtypes = [t.dtype for t in self.feeds]
        self._accepted: List[Any] = [None] * len(self.feeds)

    def __call__(self, *arrays) -> Any:
        if self._state.closed:
            raise RuntimeError("attempted to run a plan of a closed Session")
        if len(arrays) != len(self.feeds):
            names = ", ".join(t.name for t in self.feeds)
            raise TypeError(f"this plan takes {len(self.feeds)} feeds ({names}), got {len(arrays)}")
        values = list(arrays)
        for i, a in enumerate(arrays):   # fast path: an ndarray of the dtype and a shape accepted before
            if type(a) is not np.ndarray or a.dtype != self._dtypes[i] or a.shape != self._accepted[i]:
                values[i] = convert_feed(self.feeds[i], a)
                self._accepted[i] = values[i].shape
        fetched = self._exe.run(self._state, values)
        if self._checks:
            mine = len(fetched) - len(self._checks)
            check(fetched[mine:], self._checks)
            fetched = fetched[:mine]
        if self._slots is not None:
            leaves = [None] * len(self._leaf_kinds)
            for i, value in zip(self._slots, fetched):
                leaves[i] = value
            fetched = leaves
        return self._pack(fetched)

    def jit(self) -> "Plan":
        """Switch to the fused native step now (cpu target: fused elementwise groups compiled as
        one loop each; by default plans run the unfused native step)."""
        self._exe.tiers.jit()
        return self

    def wait(self) -> "Plan":
        """Block until the native step is ready (cpu target: a new plan's first runs may use the
        reference interpreter while its kernels compile; see STATICGRAPH_WARMUP)."""
        self._exe.tiers.wait()
        return self

    def profile(self, *arrays, runs: int = 10, top: int = 15) -> str:
        """Time each kernel call of the step (cpu target): runs ``runs`` real training steps on
        ``arrays`` (their assigns land), one call at a time, and returns a table of the ``top``
        most expensive calls with their share of the step and the user's line."""
        values = [convert_feed(t, a) for t, a in zip(self.feeds, arrays)]
        rows = self._exe.profile(self._state, values, runs)
        total = sum(r[0] for r in rows) or 1.0
        lines = [f"{len(rows)} kernel calls, {total * 1e3:.3f} ms per step (sum of calls; {runs} runs)",
                 f"{'ms':>9} {'share':>6}  {'op':<42} {'kernel':<14} line"]
        for secs, op_type, name, kernel, where in sorted(rows, key=lambda r: -r[0])[:top]:
            lines.append(f"{secs * 1e3:9.3f} {100 * secs / total:5.1f}%  {op_type + ' ' + repr(name):<42} "
                         f"{kernel:<14} {where}")
        return "\n".join(lines)

    def explain(self) -> str:
        """A readable description of the compiled program."""
        feeds = ", ".join(f"{t.name} {fmt(t.shape)} {t.dtype.name}" for t in self.feeds) or "none"
        fetches = ", ".join(t.name for t in self.schedule.fetches) or "none"
        head = [f"Plan (target '{self.target}')", f"  feeds:   {feeds}", f"  fetches: {fetches}",
                f"  assigns: {len(self.schedule.assigns)}"]
        return "\n".join(head) + "\n" + self._exe.explain()


def convert_feed(t: Tensor, value: Any) -> np.ndarray:
    """Check and convert one fed value for tensor ``t`` (the one value rule: staticgraph/values.py)."""
    what = f"placeholder '{t.op.name}'" if t.op.type == "Placeholder" else f"tensor '{t.name}'"
    return convert_value(value, t.dtype, t.shape, what, op=t.op)
