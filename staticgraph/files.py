"""One rule for every file the library reads (checkpoints today; datasets, cache manifests later):
an error about a file says which file and what is wrong with it. And one for the files it writes:
``write_atomically`` (temp file, fsync, rename), so a reader never sees a half-written file.

``file_error(path, problem)`` builds such an error; ``reading(path)`` wraps the reading code
so that low-level failures (``OSError``, ``zipfile.BadZipFile``, NumPy's ``ValueError``...)
become one too, instead of leaking a bare library message without the path.
"""
from __future__ import annotations

import contextlib
import os
import uuid
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


def write_atomically(path, data: bytes, what: str = "file") -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, fsynced and renamed
    over ``path``: a crash leaves the previous file or the new one, never a mix. A missing
    directory is a ``NotFoundError`` naming the file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise file_error(path, f"cannot be written: directory '{directory}' does not exist", what, NotFoundError)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):     # make the rename durable (not every platform opens folders)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["file_error", "reading", "sniff", "write_atomically", "DataLossError"]
