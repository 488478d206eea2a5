"""Exceptions raised while running a graph (``sg.errors``), TF1-style.

Each names the graph element involved; ``op`` holds the Operation when known.
``InvalidArgumentError`` is also a ``ValueError`` so generic handlers work.
"""
from __future__ import annotations

from typing import Any, Optional


class OpError(Exception):
    """Base class of run-time errors that concern one graph element."""

    def __init__(self, message: str, op: Optional[Any] = None):
        if op is not None and getattr(op, "defined_at", None):
            message = f"{message}\n  (op '{op.name}' defined at {op.defined_at})"
            fwd = getattr(op, "grad_of", None)
            if fwd is not None:
                message += f"\n  (part of the gradient of {fwd.type} '{fwd.name}' defined at {fwd.defined_at})"
        super().__init__(message)
        self.message = message
        self.op = op


class InvalidArgumentError(OpError, ValueError):
    """A fed value (or a missing feed) does not fit the placeholder it is fed to."""


class FailedPreconditionError(OpError):
    """The graph state does not allow the run, e.g. reading an uninitialized variable."""


class NotFoundError(OpError):
    """Something named (a checkpoint, a variable in a checkpoint) does not exist."""


class InternalError(OpError):
    """A backend produced something inconsistent with the graph (a bug: please report)."""


class DataLossError(InvalidArgumentError):
    """A file the library reads is unreadable, truncated or not in the expected format
    (see ``staticgraph.files``); the message names the file and what is wrong with it."""


class ResourceExhaustedError(OpError):
    """A buffer the run needs is larger than this machine's memory (the message names the op and
    the shape); TF1's ``tf.errors.ResourceExhaustedError``."""
