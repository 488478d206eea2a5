"""One rule for every file the library reads (checkpoints today; datasets, cache manifests later):
an error about a file says which file and what is wrong with it.

``file_error(path, problem)`` builds such an error; ``reading(path)`` wraps the reading code
so that low-level failures (``OSError``, ``zipfile.BadZipFile``, NumPy's ``ValueError``...)
become one too, instead of leaking a bare library message without the path.
"""
from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from typing import Iterator, Type

from .errors import DataLossError, NotFoundError, OpError


def file_error(path, problem: str, what: str = "file", error: Type[OpError] = DataLossError,
               op=None) -> OpError:
    """The exception for a file the library cannot use: ``"<what> '<path>': <problem>"``.

    ``error`` picks the class (``DataLossError`` for unreadable/corrupt files, ``NotFoundError``
    for something missing, ``InvalidArgumentError`` for content that does not fit); ``op``
    attaches a graph element (e.g. the variable being restored)."""
    return error(f"{what} '{os.fspath(path)}': {problem}", op)


@contextlib.contextmanager
def reading(path, what: str = "file", op=None) -> Iterator[None]:
    """Turn low-level failures raised while reading ``path`` into ``file_error`` (``DataLossError``);
    ``OpError``s raised inside (already naming the file) pass through unchanged."""
    try:
        yield
    except OpError:
        raise
    except FileNotFoundError as exc:
        raise file_error(path, f"does not exist ({exc.strerror})", what, NotFoundError, op) from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise file_error(path, f"cannot be read: {_describe(exc)}", what, DataLossError, op) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def sniff(path, size: int = 8) -> bytes:
    """The first ``size`` bytes of ``path`` (to tell a damaged file from one of another format)."""
    with open(path, "rb") as f:
        return f.read(size)


__all__ = ["file_error", "reading", "sniff", "DataLossError"]
