"""``Saver``: checkpoints of variable values as one ``.npz`` file, written atomically.

Entries are named by variable op name (``var.op.name``, e.g. ``"w"`` or ``"w/Adam_m"``), or by
the keys of a ``{name: var}`` dict. A save writes a temporary file in the target's directory,
flushes and fsyncs it, then renames it over the target: a crash mid-write leaves any previous
checkpoint intact (at worst a stray ``.<name>.<host>-<pid>-*.tmp`` file if the process is killed
outright, removed by the next save of that checkpoint on this host once that process is gone).
A restore refuses, naming the file, anything that is not a checkpoint of exactly the expected
entries (``staticgraph.files``); object arrays are refused from their header, never unpickled.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import uuid
import zipfile
from typing import Dict, Iterable, Mapping, Optional, Union

import numpy as np

from ..errors import DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from ..files import file_error, reading, sniff
from ..ops.collective import rank
from ..variables import Variable, global_variables

SUFFIX = ".npz"
PathLike = Union[str, "os.PathLike[str]"]


class Saver:
    """Saves and restores variables: ``Saver(var_list=None)``, where ``var_list`` is a list of
    Variables or a ``{name: Variable}`` dict. ``None`` means every global variable of the session's
    graph *at save/restore time* (so optimizer slots created later are included)."""

    def __init__(self, var_list: Union[None, Iterable[Variable], Mapping[str, Variable]] = None):
        self._named = None if var_list is None else _named(var_list)

    def save(self, sess, path: PathLike, global_step: Optional[int] = None) -> str:
        """Write the variables' values to ``path`` (``.npz`` appended if missing; with ``global_step``,
        ``<path>-<step>.npz``). Returns the path written. In an MPI job (``sg.distributed``) only
        rank 0 writes; every rank returns the path."""
        path = os.fspath(path)
        if global_step is not None:
            path = f"{path}-{int(global_step)}"
        path = path if path.endswith(SUFFIX) else path + SUFFIX
        arrays = _values_to_save(sess, self._variables(sess))     # all of one moment (between runs)
        if rank() == 0:         # data-parallel jobs (sg.distributed): one writer, the ranks hold the same values
            _atomic_write(path, arrays)
        return path

    def restore(self, sess, path: PathLike) -> None:
        """Set the variables from the checkpoint at ``path`` (as given to or returned by ``save``).
        Nothing is changed unless every variable is found with its exact shape and dtype. Every
        refusal names the file: ``NotFoundError`` (no such file, missing entry),
        ``DataLossError`` (not a checkpoint, truncated, corrupt, object arrays: never unpickled),
        ``InvalidArgumentError`` (an entry's shape or dtype differs from its variable's)."""
        file = _find_checkpoint(os.fspath(path))
        named = self._variables(sess)
        values = _read_checkpoint(file, named)
        sess._set_variable_values([(var, values[name]) for name, var in named.items()])   # landed together

    def _variables(self, sess) -> Dict[str, Variable]:
        named = self._named if self._named is not None else _named(global_variables(sess.graph))
        if not named:
            raise ValueError("Saver: no variables to save or restore")
        for name, var in named.items():
            if var.graph is not sess.graph:
                raise ValueError(f"Saver: variable '{name}' belongs to another graph than the session's")
        return named


# -- naming -------------------------------------------------------------------------------

def _named(var_list) -> Dict[str, Variable]:
    items = list(var_list.items()) if isinstance(var_list, Mapping) else [(_name_of(v), v) for v in var_list]
    named: Dict[str, Variable] = {}
    for name, var in items:
        if not isinstance(var, Variable):
            raise TypeError(f"Saver: expected sg.Variables, got {var!r} for '{name}'")
        if not isinstance(name, str) or not name:
            raise TypeError(f"Saver: checkpoint names must be non-empty strings, got {name!r}")
        if name in named:
            raise ValueError(f"Saver: two variables are saved under the name '{name}'")
        named[name] = var
    return named


def _name_of(var) -> str:
    if not isinstance(var, Variable):
        raise TypeError(f"Saver: expected sg.Variables, got {var!r}")
    return var.op.name


# -- saving -------------------------------------------------------------------------------

def _values_to_save(sess, named: Mapping[str, Variable]) -> Dict[str, np.ndarray]:
    """Copies of the variables' values, read in one hold of the session lock: a checkpoint saved
    while another thread trains holds the values after one whole step, never a mix of two."""
    try:
        return dict(zip(named, sess._get_variable_values(list(named.values()))))
    except FailedPreconditionError as exc:
        name = next(n for n, v in named.items() if v.op is exc.op)
        raise FailedPreconditionError(
            f"cannot save variable '{name}': it is uninitialized in this session; run its initializer "
            f"(or sg.global_variables_initializer()) first", exc.op) from None


def _atomic_write(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an .npz at ``path`` via temp file + fsync + rename (never half-written)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise NotFoundError(f"cannot save checkpoint '{path}': directory '{directory}' does not exist")
    name = os.path.basename(path)
    _remove_dead_temps(directory, name)
    tmp = os.path.join(directory, f".{name}.{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:     # the OS said no: name the checkpoint
            raise type(exc)(exc.errno, f"cannot save checkpoint '{path}' (writing in '{directory}'): "
                                       f"{exc.strerror}") from exc
        raise
    _fsync_dir(directory)


_HOST = socket.gethostname().replace(os.sep, "_") or "host"


def _remove_dead_temps(directory: str, name: str) -> None:
    """Remove temp files of checkpoint ``name`` left by killed saves: those of this host whose
    process is gone (a live save, here or on another host sharing the folder, is never touched)."""
    pattern = re.compile(rf"\.{re.escape(name)}\.{re.escape(_HOST)}-(\d+)-[0-9a-f]{{12}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.listdir(directory):
            m = pattern.fullmatch(entry)
            if m and not _alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(directory, entry))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # another user's process: alive
        return True
    return True


def _write_npz(f, arrays: Mapping[str, np.ndarray]) -> None:
    """``numpy.savez`` into an open file, without its keyword clash (a variable named ``file``)."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- restoring ----------------------------------------------------------------------------
# Every refusal names the checkpoint file (staticgraph.files); entries are checked from their
# .npy headers before any data is read, so an object (pickled) array is never unpickled.

WHAT = "checkpoint"


def _find_checkpoint(path: str) -> str:
    candidates = [path] if path.endswith(SUFFIX) else [path + SUFFIX, path]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise NotFoundError(f"checkpoint not found: '{path}' (no file "
                        + " or ".join(f"'{c}'" for c in dict.fromkeys(candidates)) + ")")


def _read_checkpoint(file: str, named: Mapping[str, Variable]) -> Dict[str, np.ndarray]:
    """Every variable's value from ``file``, each checked against its variable's shape and dtype."""
    with reading(file, WHAT):
        if not zipfile.is_zipfile(file):
            raise file_error(file, _not_a_zip(file), WHAT)
        with zipfile.ZipFile(file) as zf:
            members = {n[:-len(".npy")]: n for n in zf.namelist() if n.endswith(".npy")}
            return {name: _read_entry(zf, file, members, name, var) for name, var in named.items()}


def _not_a_zip(file: str) -> str:
    head = sniff(file, 4)
    if not head:
        return "not a checkpoint (the file is empty)"
    if head == b"PK\x03\x04":
        return "truncated or damaged (an .npz archive without its zip directory at the end)"
    return "not a checkpoint (not an .npz archive)"


def _read_entry(zf: zipfile.ZipFile, file: str, members: Mapping[str, str], name: str,
                var: Variable) -> np.ndarray:
    if name not in members:
        held = sorted(members)
        listing = ", ".join(f"'{n}'" for n in held[:10]) + (", ..." if len(held) > 10 else "")
        raise file_error(file, f"variable '{name}' not found (the checkpoint holds: {listing or 'nothing'})",
                         WHAT, NotFoundError, var.op)
    with zf.open(members[name]) as member:
        shape, fortran, dtype = _read_header(member, file, name)
        if dtype.hasobject:
            raise file_error(file, f"entry '{name}' holds an object (pickled) array of dtype {dtype}; refused "
                             f"without unpickling (checkpoints hold numeric arrays only)", WHAT, DataLossError,
                             var.op)
        if shape != tuple(var.shape):
            raise file_error(file, f"shape mismatch restoring variable '{name}': expected {tuple(var.shape)}, "
                             f"found {shape}", WHAT, InvalidArgumentError, var.op)
        if dtype.newbyteorder("=") != var.dtype:
            raise file_error(file, f"dtype mismatch restoring variable '{name}': expected {var.dtype.name}, "
                             f"found {dtype.name}", WHAT, InvalidArgumentError, var.op)
        count = int(np.prod(shape, dtype=np.int64))
        data = member.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise file_error(file, f"entry '{name}' is truncated: {len(data)} of {count * dtype.itemsize} data bytes",
                         WHAT, DataLossError, var.op)
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(arr, dtype=var.dtype, copy=True)


def _read_header(member, file: str, name: str):
    """``(shape, fortran_order, dtype)`` from an .npy header, without reading the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            return fmt.read_array_header_1_0(member)
        if version == (2, 0):
            return fmt.read_array_header_2_0(member)
        return fmt._read_array_header(member, version)   # 3.0 (utf-8 header); no public reader
    except (ValueError, EOFError, AttributeError, SyntaxError) as exc:
        raise file_error(file, f"entry '{name}' is not a valid .npy array: {exc}", WHAT) from None
