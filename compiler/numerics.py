"""Finite-value checks of a step: ``sg.debugging.check_numerics`` ops and the session-wide switch.

The tensors to check are fetched with the step's own fetches (so the planner keeps them until
the step ends, on every target) and checked after it, NaN and inf propagating through one
``min``/``max`` pass each; a failure is an ``InvalidArgumentError`` naming the tensor, the line
of its op and the message. The step's assigns have landed by then (the native step is one call).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from staticgraph.errors import InvalidArgumentError
from staticgraph.graph import Operation
from staticgraph.tensor import Tensor

from .schedule import Schedule

ENV_VAR = "STATICGRAPH_CHECK_NUMERICS"


def session_default() -> bool:
    """``STATICGRAPH_CHECK_NUMERICS``: "1" checks every step of sessions not told otherwise."""
    return os.environ.get(ENV_VAR, "0").lower() not in ("", "0", "off", "false", "no")


@dataclass(frozen=True)
class Check:
    tensor: Tensor      # fetched and checked
    what: str           # names it in the error
    message: str
    op: Operation       # whose line the error names


def checks_of(sched: Schedule, every: bool) -> List[Check]:
    """The checks a step of ``sched`` makes: its CheckNumerics ops; with ``every``, each floating
    output of its ops too (fed tensors excepted: they are the caller's)."""
    fed = set(sched.feeds)
    checks = []
    for op in sched.ops:
        if op.type == "CheckNumerics":
            checks.append(Check(op.outputs[0], f"tensor '{op.inputs[0].name}'", op.attrs["message"], op))
        elif every:
            checks += [Check(t, f"tensor '{t.name}' ({op.type} op)", "found by the session's check_numerics", op)
                       for t in op.outputs if t.dtype.kind == "f" and t not in fed]
    return checks


def check(values: Sequence[np.ndarray], checks: Sequence[Check]) -> None:
    """Raise for the first of ``checks`` whose value holds a NaN or an inf."""
    for value, c in zip(values, checks):
        if not value.size or (np.isfinite(value.min()) and np.isfinite(value.max())):
            continue
        nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
        found = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "inf")) if n)
        raise InvalidArgumentError(f"check_numerics: {c.what} of shape {value.shape} has {found} "
                                   f"(of {value.size} values): {c.message}", c.op)
