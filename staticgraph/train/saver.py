"""``Saver``: checkpoints of variable values as one ``.npz`` file, written atomically.

Entries are named by variable op name (``var.op.name``, e.g. ``"w"`` or ``"w/Adam_m"``), or by
the keys of a ``{name: var}`` dict. A save writes a temporary file in the target's directory,
flushes and fsyncs it, then renames it over the target: a crash mid-write leaves any previous
checkpoint intact (at worst a stray ``.<name>.*.tmp`` file if the process is killed outright).
"""
from __future__ import annotations

import contextlib
import os
import uuid
import zipfile
from typing import Dict, Iterable, Mapping, Optional, Union

import numpy as np

from ..errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
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
        ``<path>-<step>.npz``). Returns the path written."""
        path = os.fspath(path)
        if global_step is not None:
            path = f"{path}-{int(global_step)}"
        path = path if path.endswith(SUFFIX) else path + SUFFIX
        arrays = {name: _value_to_save(sess, name, var) for name, var in self._variables(sess).items()}
        _atomic_write(path, arrays)
        return path

    def restore(self, sess, path: PathLike) -> None:
        """Set the variables from the checkpoint at ``path`` (as given to or returned by ``save``).
        Nothing is changed unless every variable is found with its exact shape and dtype."""
        file = _find_checkpoint(os.fspath(path))
        named = self._variables(sess)
        with _open_checkpoint(file) as data:
            values = {name: _checked_entry(data, file, name, var) for name, var in named.items()}
        for name, var in named.items():
            sess.set_variable_value(var, values[name])

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

def _value_to_save(sess, name: str, var: Variable) -> np.ndarray:
    try:
        return sess.get_variable_value(var)
    except FailedPreconditionError:
        raise FailedPreconditionError(
            f"cannot save variable '{name}': it is uninitialized in this session; run its initializer "
            f"(or sg.global_variables_initializer()) first", var.op) from None


def _atomic_write(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an .npz at ``path`` via temp file + fsync + rename (never half-written)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise NotFoundError(f"cannot save checkpoint '{path}': directory '{directory}' does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


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

def _find_checkpoint(path: str) -> str:
    candidates = [path] if path.endswith(SUFFIX) else [path + SUFFIX, path]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise NotFoundError(f"checkpoint not found: '{path}' (no file "
                        + " or ".join(f"'{c}'" for c in dict.fromkeys(candidates)) + ")")


@contextlib.contextmanager
def _open_checkpoint(file: str):
    if not zipfile.is_zipfile(file):
        raise InvalidArgumentError(f"'{file}' is not a checkpoint (not an .npz archive)")
    with np.load(file, allow_pickle=False) as data:
        yield data


def _checked_entry(data, file: str, name: str, var: Variable) -> np.ndarray:
    if name not in data.files:
        held = sorted(data.files)
        listing = ", ".join(f"'{n}'" for n in held[:10]) + (", ..." if len(held) > 10 else "")
        raise NotFoundError(f"variable '{name}' not found in checkpoint '{file}' (it holds: {listing or 'nothing'})",
                            var.op)
    arr = data[name]
    if arr.shape != tuple(var.shape):
        raise InvalidArgumentError(f"shape mismatch restoring variable '{name}' from '{file}': expected "
                                   f"{tuple(var.shape)}, found {arr.shape}", var.op)
    if arr.dtype != var.dtype:
        raise InvalidArgumentError(f"dtype mismatch restoring variable '{name}' from '{file}': expected "
                                   f"{var.dtype.name}, found {arr.dtype.name}", var.op)
    return arr
