"""The executable protocol: what every backend (reference, cpu, cuda) gives ``Plan``.

A ``Backend`` compiles a Schedule into an ``Executable``; ``Plan`` (compiler/plan.py) calls
only the methods declared here, never probes for optional ones:

- ``run(state, feeds) -> fetches``: one step. The executable lands the step's assigns itself,
  together and under ``state.lock`` (every read of the step sees the values from before it),
  and returns arrays the caller owns: never views of variable storage, of the plan's buffers
  or of the fed arrays. Only the backend knows where its values live (the cpu arena, a GPU's
  memory), so it copies out once and nobody copies again.
- ``explain() -> str``: the compiled program, readable.
- ``profile(state, feeds, runs) -> [ProfileRow]``: real steps timed call by call; a backend that
  cannot raises ``NotImplementedError`` saying so.
- ``tiers``: the executable's tier policy, an object of its own (``Tiers``): ``wait()`` blocks
  until the native program is ready, ``jit()`` switches to the fastest tier now. The base
  policy is one tier, ready at compile time (both no-ops: the reference interpreter); the cpu
  backend's warms up on the reference interpreter and has a fused tier
  (``cpu/executable.py: CpuTiers``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..schedule import Schedule
from ..state import SessionState

ProfileRow = Tuple[float, str, str, str, str]
"""(seconds per run, op type, op name, kernel, user line) of one call of the step."""


class Tiers:
    """A tier policy with a single tier, ready when compiled: nothing to wait for or switch to."""

    def wait(self) -> None:
        """Block until the executable's native program is ready (here it always is)."""

    def jit(self) -> None:
        """Switch to the fastest tier now (here there is only one)."""


class Executable(ABC):
    """One compiled step of a Schedule on one backend (see the module docstring)."""

    target: str = "?"           # the Session target that builds it, for messages
    tiers: Tiers = Tiers()      # stateless: one instance serves every single-tier executable

    @abstractmethod
    def run(self, state: SessionState, feeds: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Run one step on the converted ``feeds`` (the schedule's feed order); land its assigns
        atomically under ``state.lock``; return the fetched values, owned by the caller."""

    @abstractmethod
    def explain(self) -> str:
        """A readable description of the compiled program."""

    def profile(self, state: SessionState, feeds: Sequence[np.ndarray], runs: int = 10) -> List[ProfileRow]:
        """Run ``runs`` real steps (their assigns land) timing each call; one row per call."""
        raise NotImplementedError(f"profile() is not available on target '{self.target}': it times the "
                                  f"kernel calls of a compiled step; use target='cpu'")


class Backend:
    """Compiles Schedules for one Session target into instances of ``executable``."""

    executable: type = Executable

    def __init__(self, target: Optional[str] = None):
        self.target = target or self.executable.target

    def compile(self, sched: Schedule) -> Executable:
        return self.executable(sched)
