"""Graph passes of the compiler: ``optimize(schedule)`` rewrites a private copy of a Schedule.

Passes, in order (each a function ``pass(program) -> number of rewrites``, switchable off by
name): ``constant_folding``, ``cse``, ``simplify`` (followed by a second ``cse`` when it
rewrote anything), ``dce``, ``fusion``. Disable some with ``optimize(sched, disabled=[...])``
or the environment variable ``STATICGRAPH_DISABLE_PASSES="cse,fusion"`` (``"all"``: every pass).

The user's graph is never changed: the optimised Schedule's ops live in a private Graph, each
op's ``origin`` names the user op it stands for (None for ops the passes made), and its feeds,
fetches and targets correspond one-to-one, in order, to the input Schedule's. The result is
deterministic: the same schedule gives the same program (op order, names) in every process.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Sequence, Tuple

from ..schedule import Schedule
from .cse import cse
from .dce import dce
from .fold import constant_folding
from .fusion import fusion
from .rewrite import Program, origin
from .simplify import simplify

__all__ = ["optimize", "Optimized", "origin", "Program", "PASSES", "PASS_NAMES", "ENV_DISABLE", "disabled_passes"]

PASSES: Tuple[Tuple[str, Callable[[Program], int]], ...] = (
    ("constant_folding", constant_folding), ("cse", cse), ("simplify", simplify), ("dce", dce),
    ("fusion", fusion))
PASS_NAMES = tuple(name for name, _ in PASSES)
ENV_DISABLE = "STATICGRAPH_DISABLE_PASSES"

ReportRow = Tuple[str, int, int, float]   # (pass name, ops before, ops after, seconds)


@dataclass(frozen=True)
class Optimized:
    """``schedule``: the optimised Schedule (private graph); ``report``: one row per pass run."""
    schedule: Schedule
    report: List[ReportRow]

    @property
    def fused_groups(self) -> int:
        return sum(1 for op in self.schedule.ops if op.type == "FusedElementwise")

    def explain(self) -> str:
        """One line per pass run: ops before -> after and the time it took."""
        lines = [f"  {name:<17} {before:>6} -> {after:<6} ops  {seconds * 1e3:8.2f} ms"
                 for name, before, after, seconds in self.report]
        return "\n".join(["passes:"] + (lines or ["  (all disabled)"]))


def optimize(sched: Schedule, disabled: Iterable[str] = ()) -> Optimized:
    """Run the enabled passes over a private copy of ``sched``."""
    off = disabled_passes(disabled)
    prog = Program.from_schedule(sched)
    report: List[ReportRow] = []

    def run(name: str, fn: Callable[[Program], int]) -> int:
        before, t0 = len(prog.ops), time.perf_counter()
        changed = fn(prog)
        report.append((name, before, len(prog.ops), time.perf_counter() - t0))
        return changed

    for name, fn in PASSES:
        if name in off:
            continue
        changed = run(name, fn)
        if name == "simplify" and changed and "cse" not in off:
            run("cse", cse)
    return Optimized(prog.to_schedule(), report)


def disabled_passes(disabled: Iterable[str] = ()) -> Tuple[str, ...]:
    """The pass names switched off by ``disabled`` and ``$STATICGRAPH_DISABLE_PASSES``
    (``"all"`` names every pass); an unknown name is a ``ValueError`` listing the passes."""
    return switched_off(PASS_NAMES, ENV_DISABLE, disabled, "pass", "passes")


def switched_off(known: Sequence[str], env: str, disabled: Iterable[str] = (), kind: str = "pass",
                 kinds: str = "passes") -> Tuple[str, ...]:
    """The names of ``known`` switched off by ``disabled`` and by the comma-separated ``$env``
    (``"all"``: every one), in ``known``'s order; an unknown name is a ``ValueError`` naming where it
    came from and listing ``known`` (the graph passes here, the cpu backend's call rewrites)."""
    if isinstance(disabled, str):
        disabled = [disabled]
    names = [(str(n).strip(), "disabled=") for n in disabled]
    names += [(n.strip(), f"${env}") for n in os.environ.get(env, "").split(",")]
    off = set()
    for name, where in names:
        if not name:
            continue
        if name == "all":
            off.update(known)
        elif name in known:
            off.add(name)
        else:
            raise ValueError(f"unknown {kind} '{name}' in {where}; the {kinds} are {', '.join(known)} (or 'all')")
    return tuple(n for n in known if n in off)
