"""Default sessions, as TF1 has them: ``sess.as_default()``, ``with sg.Session() as sess:``,
``sg.get_default_session()``, ``Tensor.eval()`` and ``Operation.run()``.

The stack of default sessions is per thread (like the default graph): a session made
default in one thread is not the default of another.

This module sits *below* the API, beside the IR (TF1 keeps the stack in framework/ops.py):
it imports nothing from staticgraph or compiler, so ``Tensor.eval`` and ``Operation.run``
reach a session through it without the IR importing ``session.py``. A session is any object
with ``graph`` and ``run(fetches, feed_dict)``; ``Session`` registers itself here
(``as_default``, ``enter_session``, ``exit_session``). tests/test_import_direction.py
keeps it that way.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict, Iterator, List, Optional


class _ThreadSessions(threading.local):
    """Each thread's stack of default sessions, and the contexts ``with sess:`` entered."""

    def __init__(self):
        self.stack: List[Any] = []
        self.entered: Dict[int, List[contextlib.ExitStack]] = {}


_local = _ThreadSessions()


def get_default_session():
    """The calling thread's innermost default session, or ``None`` when there is none (as TF1)."""
    return _local.stack[-1] if _local.stack else None


def _remove(session) -> None:
    """Drop the innermost entry of ``session`` from this thread's stack (wherever it is)."""
    stack = _local.stack
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is session:
            del stack[i]
            return


@contextlib.contextmanager
def as_default(session) -> Iterator[Any]:
    """Make ``session`` this thread's default session inside the block; it is not closed on exit."""
    _local.stack.append(session)
    try:
        yield session
    finally:
        _remove(session)


def enter_session(session) -> None:
    """``Session.__enter__``: make the session's graph and the session the defaults (TF1)."""
    ctx = contextlib.ExitStack()
    ctx.enter_context(session.graph.as_default())
    ctx.enter_context(as_default(session))
    _local.entered.setdefault(id(session), []).append(ctx)


def exit_session(session) -> None:
    """Undo the innermost ``enter_session(session)`` of this thread (no-op if there is none)."""
    contexts = _local.entered.get(id(session))
    if not contexts:
        return
    ctx = contexts.pop()
    if not contexts:
        del _local.entered[id(session)]
    ctx.close()


def _session_for(kind: str, verb: str, name: str, graph: Any, session, call: str):
    """The explicit ``session``, else the default one; it must run ``graph``."""
    if session is None:
        session = get_default_session()
        if session is None:
            raise ValueError(f"Cannot {verb} {kind} '{name}' using `{call}()`: no default session is "
                             f"registered. Use `with sess.as_default():` (or `with sg.Session() as sess:`), "
                             f"create an `sg.InteractiveSession()`, or pass an explicit session: "
                             f"`{call}(session=sess)`")
        origin = "the default session"
    else:
        origin = "the given session"
    if session.graph is not graph:
        raise ValueError(f"Cannot use {origin} to {verb} {kind} '{name}': the {kind}'s graph is different "
                         f"from the session's graph; pass a session of its graph: `{call}(session=sess)`")
    return session


def eval_tensor(tensor, feed_dict: Optional[dict] = None, session=None):
    """``tensor.eval()``: ``session.run(tensor, feed_dict)`` in the given or default session."""
    sess = _session_for("tensor", "evaluate", tensor.name, tensor.graph, session, "eval")
    return sess.run(tensor, feed_dict)


def run_operation(op, feed_dict: Optional[dict] = None, session=None) -> None:
    """``op.run()``: ``session.run(op, feed_dict)`` in the given or default session."""
    sess = _session_for("operation", "run", op.name, op.graph, session, "run")
    sess.run(op, feed_dict)

