"""On-disk cache of compiled plans and kernels (API.md §7, §10 "Compile cache").

Layout under the root (``$STATICGRAPH_CACHE_DIR``, else ``$HOME/.cache/staticgraph``; read
each time it is needed, so a changed variable takes effect)::

    <root>/plans/<key[:2]>/<key>/        one plan entry (content-addressed by ``cache_key``)
        plan.py ...                      generated sources (the ``files`` given to ``entry``)
        manifest.json                    {"format", "key", "meta", "files": {name: sha256}}
        numba.json                       record of Numba's files, written by ``seal``
        __pycache__/*.nbi, *.nbc         Numba's index pickle and compiled data for the entry
    <root>/plans/<key[:2]>/.<key>.lock   flock serialising builders/compilers of that key
    <root>/kernels/<numba>-py<XY>/<fp>/  Numba files of the library's own @njit(cache=True) kernels
        <package.dir>/*.nbi, *.nbc       (<fp>: fingerprint of the library source)
        numba.json                       their record
    <root>/kernels/<numba>-py<XY>/.<fp>.lock
    <root>/memo/<name>-<key[:32]>.json   small derived facts a warm start reuses (``PlanCache.read_memo``):
                                         {"format", "name", "key", "items", "sha256" of the items}

Every folder the library creates (root and missing parents included) is made with
``os.mkdir(p, 0o700)`` and then ``os.chmod(p, 0o700)``, so the umask never widens or narrows it.
Files are written 0600 by us; Numba's own files are created inside 0700 folders.

How Numba 0.68 caches (``numba/core/caching.py``), and what this module does about it:

1. ``@njit(cache=True)`` builds a ``FunctionCache`` when the function is DECORATED
   (``Dispatcher.enable_caching``). ``CacheImpl.__init__`` asks each class of
   ``CacheImpl._locator_classes`` in turn (``UserProvidedCacheLocator`` — only when
   ``NUMBA_CACHE_DIR``/``numba.config.CACHE_DIR`` is set, then ``<CACHE_DIR>/<dir>_<sha1(dir)>``;
   ``InTreeCacheLocator`` — ``<dir of source>/__pycache__`` when writable; ``UserWideCacheLocator``;
   IPython; zip) and binds the first that accepts, for the life of the dispatcher. Files are
   ``<module>.<qualname>-<line>.py<XY>.nbi`` (index: ``pickle(numba version)`` then
   ``pickle((source stamp = sha256 of the source file, {(sig, target magic, code hashes):
   data name}))``) and ``...<n>.nbc`` (pickled compiled library). Both are written through a
   temp file ``<name>.tmp.<uuid16>`` and ``os.replace``. Nothing checks them before
   ``pickle.load``: a garbage index raises ``UnpicklingError`` out of the compile.
2. ``install_kernel_cache_locator()`` puts ``CacheLocator`` FIRST in that list (so it also wins
   over ``NUMBA_CACHE_DIR``). It accepts (a) sources of a plan entry -> ``<entry>/__pycache__``
   (the in-tree place, confirmed: a plan in ``<entry>/plan.py`` caches there); (b) sources inside
   the library packages (``KERNEL_SOURCE_DIRS``) -> ``kernel_cache_dir()/<package.dir>``, never
   site-packages; any other file is left to Numba's own locators. The kernel folder is bound at
   decoration, i.e. with the root current when the kernel module is imported;
   ``bound_kernel_dirs()`` lists every folder bound in this process, and all of them are verified
   and sealed. ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's list and so bypasses this.
3. A plan loaded from Numba's cache contains its callees' machine code: kernels are not even
   loaded on a warm start, and a changed kernel does not invalidate a cached plan — so plan keys
   must include the hash of the kernel source (or ``code_fingerprint()``). The environment of
   cached code is rebuilt by ``importlib.import_module(<module name>)``: the plan module must be
   in ``sys.modules`` under a deterministic name before Numba loads it (``load_module`` does
   this; without it a warm load fails with ``No module named '<dynamic>'``).
4. Verification: ``seal(path)`` records the sha256 and size of every Numba file of a folder in
   ``numba.json`` (temp file + ``os.replace``); ``verify_compiled(path)`` deletes every file that
   is unrecorded or differs, so Numba recompiles instead of unpickling it. ``compiling(*paths)``
   holds the folders' locks (``fcntl.flock``, taken in path order) and those of the bound kernel
   folders around verify -> compile -> seal, so no cooperating process writes Numba files in
   between (the seal is skipped for a folder this process wrote nothing into since its last seal
   and whose files all verified: its record is exact; a warm load writes no record). Concurrent
   compilers of one plan are serialised: the second loads what the first sealed. Numba files
   written outside such a block stay unrecorded until this process's next block seals them; if
   it never comes, the next process deletes them and recompiles (safe).
5. Last line of defence: ``install_kernel_cache_locator`` also replaces
   ``caching.IndexDataCacheFile`` (read by ``Cache.__init__``) with a subclass whose
   ``_load_index``/``_load_data`` read the file ONCE, check those bytes against ``numba.json`` (or
   against what this process's Numba wrote, noted by ``_save_index``/``_save_data``) and unpickle
   the same bytes (``_checked_read``: nothing can swap the file between check and load); an
   unvouched file is treated as absent (warning if it was recorded with another hash), so even a
   compile outside a ``compiling`` block never unpickles an unverified file. Files of other
   folders are untouched.
8. Trust (issue 27): hashes beside the files only catch corruption, not a writer, so the root and
   every folder code or pickles are read from must be owned by this user and writable by no group
   or others, checked on the real folder a symlink leads to (``trust_problem``; folders above the
   root may not be world-writable unless sticky). ``usable_root`` checks the root and its
   ``plans``/``kernels``, ``PlanCache.entry`` every folder down to the entry's ``__pycache__``, the
   kernel locator down to its folder. A refused root, or one that cannot be written (read-only,
   full disk, no permission: ``unwritable``), costs one CacheWarning naming it and the reason;
   from then on this process never loads from or writes into it and uses a private folder
   (``tempfile.mkdtemp``, 0700, removed at exit, passed to compile workers: ``worker_env``).
   ``load_module`` checks a source against the hash this process's ``entry`` call asked for
   (the manifest only for an entry another process made, in a trusted folder).
6. Entries: built in ``plans/<xx>/.tmp-<key>-<pid>-<rand>/`` and ``os.rename``d into place (a
   killed writer leaves only a temp folder; the next build of the key, any build in that shard
   after 10 minutes, and ``clear`` remove it; ``info`` counts it). A rename that loses a race
   discards its temp folder and uses the winner's entry once it verifies.
7. Keys are sha256 of length-prefixed, type-tagged parts: no ``hash()``, no ids, so the same
   under any ``PYTHONHASHSEED``. Problems with a file are reported (``CacheWarning`` or
   ``CacheError``) naming the file; a bad entry or record is rebuilt, never trusted.
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import importlib.util
import io
import json
import marshal
import os
import pickle
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import types
import uuid
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Union

_LOAD_LOCK = threading.RLock()

try:  # POSIX advisory locks; elsewhere the atomic renames alone keep entries consistent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

ENV_VAR = "STATICGRAPH_CACHE_DIR"
FORMAT = 1
MANIFEST = "manifest.json"
RECORD = "numba.json"
COMPILED_DIR = "__pycache__"
MEMO_DIR = "memo"
STALE_TEMP_SECONDS = 600
_CONTROL_NAMES = {MANIFEST, RECORD}
_RESERVED_NAMES = _CONTROL_NAMES | {COMPILED_DIR}
_NUMBA_TEMP = re.compile(r"\.tmp\.[0-9a-f]{16}$")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_KEY = re.compile(r"[0-9a-f]{16,128}")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Folders whose @njit(cache=True) functions cache under kernel_cache_dir() (tests may extend it).
KERNEL_SOURCE_DIRS: list[Path] = [_PACKAGE_ROOT / "compiler", _PACKAGE_ROOT / "staticgraph"]


class CacheError(OSError):
    """The cache folder or one of its files cannot be used; the message names the path."""


class CacheWarning(UserWarning):
    """A cache file was corrupt, partial or foreign and is being rebuilt (names the file)."""


class CacheStats:
    """Process-wide counters (``compiler.cache.STATS``) that tests read.

    hits/misses: ``entry`` found a verified entry / had to build one; rebuilt: entries removed as
    corrupt, partial or foreign; rejected: Numba files deleted by ``verify_compiled``; compiles:
    ``compiling`` blocks in which Numba wrote new files into a given entry (it compiled, not loaded).
    """

    FIELDS = ("hits", "misses", "rebuilt", "rejected", "compiles")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            for name in self.FIELDS:
                setattr(self, name, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict:
        with self._lock:
            return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"CacheStats({self.snapshot()})"


STATS = CacheStats()


# ---------------------------------------------------------------------------------- paths, keys
def configured_root() -> Path:
    """The folder the user asked for: ``$STATICGRAPH_CACHE_DIR`` or ``$HOME/.cache/staticgraph``."""
    env = os.environ.get(ENV_VAR)
    return Path(os.path.abspath(os.path.expanduser(env))) if env else Path.home() / ".cache" / "staticgraph"


def cache_root(create: bool = True) -> Path:
    """The cache folder this process uses (absolute): ``configured_root()`` if only this user can
    write into it, else this process's private fallback folder (see ``usable_root``).

    With ``create`` it and any missing parents are made 0700; a non-folder there is a CacheError.
    """
    return usable_root(configured_root(), create)


def make_private_dirs(path: Union[str, os.PathLike]) -> Path:
    """Create ``path`` and its missing parents, each 0700 whatever the umask; return it."""
    path = Path(path)
    missing = []
    probe = path
    while probe.parent != probe:
        try:
            if stat.S_ISDIR(os.stat(probe).st_mode):
                break
        except (FileNotFoundError, NotADirectoryError):
            missing.append(probe)
            probe = probe.parent
            continue
        except OSError as exc:
            raise CacheError(f"staticgraph cache: cannot use {probe}: {exc.strerror}") from exc
        raise CacheError(f"staticgraph cache: {probe} exists but is not a folder "
                         f"(set {ENV_VAR} to another folder)")
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise CacheError(f"staticgraph cache: {folder} exists but is not a folder") from None
            continue  # made at the same moment by another process or thread
        except OSError as exc:
            raise CacheError(f"staticgraph cache: cannot create folder {folder}: {exc.strerror} "
                             f"(set {ENV_VAR} to a writable folder)") from exc
        os.chmod(folder, 0o700)
    return path


# ------------------------------------------------------------- trust, private fallback folder
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}
_TRUST_GUARD = threading.RLock()
_FALLBACK: dict = {}     # real path of a refused root -> the private folder this process uses instead
_PRIVATE: list = []      # this process's private fallback folder (made on first need, removed at exit)


def trust_problem(folder: Union[str, os.PathLike], ancestors: bool = True) -> Optional[str]:
    """Why files in ``folder`` could have been written by another user; None if they could not.

    Checked on the real folder a symlink leads to (as pip's cache and git's ``safe.directory``
    do): it must be a folder owned by this user and writable by no group or others. With
    ``ancestors``, no folder above it may be writable by others unless sticky (as /tmp is), since
    whoever can rename it can swap it. A missing folder is no problem (we create it 0700).
    Without POSIX owners (Windows) there is nothing to check.

    The answer is a function of the ``os.stat`` of the folders it looked at (the folder as given,
    the real folder, its ancestors): it is remembered with them and given again only while a
    fresh ``os.stat`` of each still shows the same folder (device, inode), mode and owner, so a
    chmod, chown, a folder replaced or a symlink pointed elsewhere is seen at the next call. That
    skips ``os.path.realpath`` (a Python loop over the path's parts) on the warm start's hundreds
    of calls."""
    if not hasattr(os, "geteuid"):      # pragma: no cover - not POSIX
        return None
    uid = os.geteuid()
    given = os.fspath(folder)
    key = (given, ancestors, uid)
    memo = _TRUST_MEMO.get(key) if os.path.isabs(given) else None
    if memo is not None and tuple(map(_stat_sig, memo[0])) == memo[1]:
        return memo[2]
    real = os.path.realpath(folder)
    probes = (real,) + (tuple(str(p) for p in Path(real).parents) if ancestors else ())
    if given != real:        # where the given path leads now (a symlink on it pointed elsewhere)
        probes += (given,)
    sigs = tuple(map(_stat_sig, probes))    # taken before the answer is derived from them
    answer = _trust_answer(folder, Path(real), sigs[:len(sigs) - (given != real)], uid)
    if os.path.isabs(given):
        with _TRUST_GUARD:
            if len(_TRUST_MEMO) > 4096:
                _TRUST_MEMO.clear()
            _TRUST_MEMO[key] = (probes, sigs, answer)
    return answer


_TRUST_MEMO: dict = {}   # (folder, ancestors, euid) -> (folders stat'ed, their _stat_sig, answer)


def _stat_sig(path: str) -> tuple:
    """What ``trust_problem``'s answer depends on in ``os.stat(path)``: (dev, inode, mode, owner),
    or the error raised (errno and message)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return (None, exc.errno, exc.strerror, type(exc).__name__)
    return (st.st_dev, st.st_ino, st.st_mode, st.st_uid)


def _trust_answer(folder: Union[str, os.PathLike], real: Path, sigs: tuple, uid: int) -> Optional[str]:
    """``trust_problem`` from the stat signatures of the real folder, then of its ancestors."""
    name = str(folder) if str(real) == os.path.abspath(folder) else f"{folder} (a link to {real})"
    st = sigs[0]
    if st[0] is None:
        if st[3] in ("FileNotFoundError", "NotADirectoryError"):
            return None       # missing (a non-folder on the way is make_private_dirs' clear error)
        return f"cannot inspect {name}: {st[2]}"
    _, _, mode, owner = st
    if not stat.S_ISDIR(mode):
        return f"{name} is not a folder"
    if owner != uid:
        return f"{name} is owned by uid {owner}, not by this user (uid {uid})"
    if mode & 0o022:
        who = "group and others" if mode & 0o022 == 0o022 else "group" if mode & 0o020 else "others"
        return f"{name} is writable by {who} (mode {stat.S_IMODE(mode):04o})"
    for parent, sig in zip(real.parents, sigs[1:]):
        if sig[0] is not None and sig[2] & 0o002 and not sig[2] & stat.S_ISVTX:
            return f"{parent}, a folder above {name}, is writable by others and not sticky"
    return None


def chain_problem(root: Path, folder: Path) -> Optional[str]:
    """``trust_problem`` of ``root`` (ancestors included) and of every existing folder from it down
    to ``folder`` (below ``root``)."""
    problem = trust_problem(root)
    if problem is None and folder != root:
        probe, below = os.fspath(root), os.fspath(folder)
        if below.startswith(probe.rstrip(os.sep) + os.sep) and os.path.normpath(below) == below:
            parts = below[len(probe.rstrip(os.sep)) + 1:].split(os.sep)
        else:
            parts = Path(folder).relative_to(root).parts      # (a ValueError when not below root)
        for part in parts:
            probe = os.path.join(probe, part)
            if not os.path.isdir(probe):      # missing, or a damaged entry (rebuilt by PlanCache.entry)
                break
            problem = trust_problem(probe, ancestors=False)
            if problem is not None:
                break
    return problem


def unwritable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says a folder cannot be written: no permission,
    read-only file system, full disk or quota."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _UNWRITABLE:
            return True
        exc = exc.__cause__
    return False


def usable_root(root: Path, create: bool = True) -> Path:
    """``root`` if this process may use it, else its private fallback folder.

    A root (or its ``plans``/``kernels`` folder) that another user could write into is refused
    (``trust_problem``), as is one that cannot be created; either way one CacheWarning names it
    and the reason, and this process compiles into a private fallback folder from then on."""
    if _FALLBACK:       # (no realpath while no root was refused: usable_root runs hundreds of times)
        with _TRUST_GUARD:
            fallback = _FALLBACK.get(os.path.realpath(root))
        if fallback is not None:
            return fallback
    if create:
        try:
            make_private_dirs(root)
        except CacheError as exc:
            if not unwritable(exc):
                raise
            return fall_back(root, str(exc))
    problem = trust_problem(root)      # chain_problem of root, root/plans and root/kernels
    for sub in ("plans", "kernels"):
        folder = os.path.join(root, sub)
        if problem is None and os.path.isdir(folder):
            problem = trust_problem(folder, ancestors=False)
    if problem is not None:
        return fall_back(root, problem)
    return root


def fall_back(root: Path, reason: str) -> Path:
    """Stop using ``root`` in this process (never load from it or write into it again): warn
    once, naming it and ``reason``, and return the private fallback folder (made 0700 by
    ``tempfile.mkdtemp``, removed at exit; compile workers started from now on share it)."""
    with _TRUST_GUARD:
        key = os.path.realpath(root)
        if key in _FALLBACK:
            return _FALLBACK[key]
        if _PRIVATE and os.path.realpath(_PRIVATE[0]) == key:
            raise CacheError(f"staticgraph cache: cannot use the private fallback folder {root} "
                             f"either: {reason}")
        if not _PRIVATE:
            try:
                _PRIVATE.append(Path(tempfile.mkdtemp(prefix="staticgraph-cache-")))
            except OSError as exc:
                raise CacheError(f"staticgraph cache: cannot use {root} ({reason}) and cannot make "
                                 f"a private fallback folder: {exc}") from exc
        _FALLBACK[key] = _PRIVATE[0]
        _warn(f"not using {root}: {reason}. This process compiles into a private temporary folder "
              f"instead ({_PRIVATE[0]}, removed at exit); nothing is loaded from or written into {root}")
        return _PRIVATE[0]


def private_fallback() -> Optional[Path]:
    """This process's private fallback folder, if some root was refused (else None)."""
    return _PRIVATE[0] if _PRIVATE else None


def worker_env() -> dict:
    """Environment entries a compile worker needs to share this process's cache folder."""
    return {ENV_VAR: str(cache_root(create=False))}


@atexit.register
def _remove_private() -> None:
    # registered at import, so it runs after the exit handlers of modules imported later (LIFO),
    # e.g. the cpu executable's, which joins the builds still writing into this folder
    if _PRIVATE:
        shutil.rmtree(_PRIVATE[0], ignore_errors=True)


def cache_key(*parts: Union[str, bytes]) -> str:
    """sha256 hex of the parts (each type-tagged and length-prefixed, so no two lists collide)."""
    digest = hashlib.sha256(b"staticgraph-cache-key\0")
    for i, part in enumerate(parts):
        if isinstance(part, str):
            tag, data = b"s", part.encode("utf-8")
        elif isinstance(part, (bytes, bytearray, memoryview)):
            tag, data = b"b", bytes(part)
        else:
            raise TypeError(f"cache_key part {i} is a {type(part).__name__}; pass canonical text "
                            f"(str) or bytes, never an object whose repr or hash may vary")
        digest.update(tag + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


_FINGERPRINT: dict = {}


def code_fingerprint() -> str:
    """sha256 of the library's Python sources (``KERNEL_SOURCE_DIRS``), computed once per process.

    Include it in plan keys: a plan cached by Numba embeds the kernels it calls.
    """
    dirs = tuple(str(d) for d in KERNEL_SOURCE_DIRS)
    if dirs not in _FINGERPRINT:
        digest = hashlib.sha256()
        for base in KERNEL_SOURCE_DIRS:
            for path in sorted(Path(base).rglob("*.py")):
                if COMPILED_DIR in path.parts:
                    continue
                digest.update(str(path.relative_to(base.parent)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        _FINGERPRINT[dirs] = digest.hexdigest()
    return _FINGERPRINT[dirs]


_KERNEL_CONFIG = [""]


def set_kernel_config(text: str) -> None:
    """What the library's compiled kernels depend on beyond their source (the machine's BLAS
    symbols, the library's constants: ``library.config_text``); part of ``kernel_cache_dir``.
    Set it before the first kernel module is imported (Numba binds the folder then)."""
    _KERNEL_CONFIG[0] = text


def kernel_cache_dir(root: Optional[Path] = None) -> Path:
    """``<root>/kernels/<numba version>-py<XY>/<fingerprint[:16]>`` (not created): the fingerprint
    of the library's sources (``code_fingerprint``) and of its configuration (``set_kernel_config``)."""
    import numba

    tag = f"numba{numba.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    fp = code_fingerprint()
    if _KERNEL_CONFIG[0]:
        fp = hashlib.sha256(f"{fp}\0{_KERNEL_CONFIG[0]}".encode()).hexdigest()
    return Path(root or cache_root(create=False)) / "kernels" / tag / fp[:16]


# ----------------------------------------------------------------------------- hashing, I/O
_HASH_MEMO: dict = {}


def _file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a regular file, memoised on its (size, mtime, ctime, inode)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        sig = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        memo = _HASH_MEMO.get(str(path))
        if memo is not None and memo[0] == sig:
            return memo[1]
        result = (st.st_size, hashlib.sha256(f.read()).hexdigest())
    _HASH_MEMO[str(path)] = (sig, result)
    return result


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        _write_private(tmp, json.dumps(obj, indent=1, sort_keys=True).encode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict:
    """Parse a JSON object; any failure is a CacheError naming the file."""
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise CacheError(f"unreadable {path.name} {path}: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CacheError(f"foreign {path.name} {path} (not a staticgraph format-{FORMAT} file)")
    return obj


def _remove_tree(path: Path) -> None:
    """Remove a folder atomically for readers: rename it to a trash name, then delete it."""
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash = path
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(trash)


def _warn(message: str) -> None:
    warnings.warn(f"staticgraph cache: {message}", CacheWarning, stacklevel=3)


# ------------------------------------------------------------------------------------- locks
_LOCKS_GUARD = threading.Lock()
_THREAD_LOCKS: dict = {}
_HELD: dict = {}


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Exclusive lock on ``lock_path``: a thread lock in-process plus ``flock`` across processes.

    Re-entrant within a thread; the file is created 0600 beside the folder it guards.
    """
    key = str(lock_path)
    with _LOCKS_GUARD:
        rlock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    with rlock:
        depth = _HELD.get(key, 0)
        fd = None
        if depth == 0 and fcntl is not None:
            make_private_dirs(lock_path.parent)
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise CacheError(f"staticgraph cache: cannot open lock file {lock_path}: "
                                 f"{exc.strerror}") from exc
            fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD[key] = depth + 1
        try:
            yield
        finally:
            _HELD[key] -= 1
            if fd is not None:
                os.close(fd)  # releases the flock


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


# --------------------------------------------------------------- records of Numba's files
def _compiled_files(folder: Path, sources: Iterable[str] = ()) -> dict[str, Path]:
    """Numba's files under ``folder`` (relative posix name -> path); control/source files and
    Numba's in-flight temp files are not part of it."""
    skip = _CONTROL_NAMES | set(sources)
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel in skip or _NUMBA_TEMP.search(name) or name.startswith(".staticgraph-probe"):
                continue
            found[rel] = path
    return found


def _sources_of(folder: Path) -> list[str]:
    """Source names listed in an entry's manifest (empty for a kernel folder or a bad manifest)."""
    if not (folder / MANIFEST).exists():
        return []
    try:
        return sorted(_read_json(folder / MANIFEST).get("files", {}))
    except CacheError:
        return []


def _seal_folder(folder: Path) -> bool:
    """Record Numba's files of ``folder`` in its numba.json; True when the record changed. The
    folder stops counting as written (``_DIRTY``) as the seal starts: a file written meanwhile makes
    it written again; a seal that fails leaves it written."""
    real = Path(os.path.realpath(folder))
    _DIRTY.discard(real)
    try:
        return _seal_files(folder)
    except BaseException:
        _DIRTY.add(real)
        raise


def _seal_files(folder: Path) -> bool:
    files = _compiled_files(folder, _sources_of(folder))
    record = {}
    for rel, path in files.items():
        with contextlib.suppress(FileNotFoundError):
            size, digest = _file_digest(path)
            record[rel] = {"size": size, "sha256": digest}
    old = None
    with contextlib.suppress(CacheError):
        old = _read_json(folder / RECORD).get("files") if (folder / RECORD).exists() else {}
    if old == record:
        return False
    make_private_dirs(folder)
    _write_json_atomic(folder / RECORD, {"format": FORMAT, "files": record})
    return True


def _verify_folder(folder: Path) -> list[Path]:
    """Delete Numba files of ``folder`` that its numba.json does not record exactly."""
    if not folder.is_dir():
        return []
    record_path = folder / RECORD
    recorded: dict = {}
    if record_path.exists():
        try:
            recorded = _read_json(record_path).get("files", {})
            if not isinstance(recorded, dict):
                raise CacheError(f"foreign {RECORD} {record_path} (no file table)")
        except CacheError as exc:
            _warn(f"{exc}; deleting the Numba files it should vouch for")
            recorded = {}
            with contextlib.suppress(OSError):
                os.unlink(record_path)
    removed = []
    now = time.time()
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:  # Numba temp files left by killed writers
            path = Path(dirpath) / name
            if _NUMBA_TEMP.search(name):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                        os.unlink(path)
    for rel, path in _compiled_files(folder, _sources_of(folder)).items():
        want = recorded.get(rel)
        try:
            found = None if path.is_symlink() else _file_digest(path)
            ok = found is not None and (
                (isinstance(want, dict) and found == (want.get("size"), want.get("sha256")))
                or _WRITTEN.get(os.path.realpath(path)) == found)  # this process's Numba wrote it
        except OSError:
            ok = False
        if not ok:
            if want is not None:
                _warn(f"{path} does not match its hash in {record_path}; deleted, Numba recompiles")
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            removed.append(path)
    STATS.add("rejected", len(removed))
    return removed


# ------------------------------------------------------------- Numba locator for our files
_EXPECTED: dict = {}   # entry folder -> {file: sha256} that this process's entry() call asked for
_INSTALLED: dict = {}  # "locator": our locator class, "original_index_file": Numba's class
_BOUND_KERNEL_DIRS: list[Path] = []
_PLAN_ROOTS: set = set()


def _is_under(path: Path, base: Path) -> bool:
    try:
        path.relative_to(base)
        return True
    except ValueError:
        return False


def _numba_cache_dir_for(py_file: str) -> Optional[Path]:
    """Where Numba should keep the cache files of functions defined in ``py_file`` (None: not ours)."""
    real = Path(os.path.realpath(py_file))
    if "plans" in real.parts[:-2]:      # (else under no <root>/plans: no need to find the roots)
        roots = set(_PLAN_ROOTS)
        with contextlib.suppress(CacheError, RuntimeError):
            roots.add(os.path.realpath(cache_root(create=False)))
        for root in roots:
            if _is_under(real, Path(root) / "plans") and (real.parent / MANIFEST).exists():
                return real.parent / COMPILED_DIR
    for base in KERNEL_SOURCE_DIRS:
        base = Path(os.path.realpath(base))
        if _is_under(real, base):
            sub = ".".join(real.parent.relative_to(base.parent).parts)
            root = cache_root()
            problem = chain_problem(root, kernel_cache_dir(root) / sub)
            if problem is not None:
                root = fall_back(root, problem)
            kdir = Path(os.path.realpath(kernel_cache_dir(root)))
            if kdir not in _BOUND_KERNEL_DIRS:  # first use in this process: check what is there
                _verify_folder(kdir)  # unlocked: this may run inside a compiling() block (lock order)
                _BOUND_KERNEL_DIRS.append(kdir)
            return kdir / sub
    return None


_LOCATED: dict = {}   # source file -> (its _stat_sig, root, kernel folder, its _stat_sig, sub) (_kernel_dir_for)
_EXECUTING: dict = {}  # source file load_module is running -> [its Numba folder or None] once derived


def _kernel_dir_for(py_file: str) -> Optional[Path]:
    """``_numba_cache_dir_for``, with the kernel folder of a library source remembered: the
    library's import decorates some 200 kernels from a dozen files, each asking. A remembered
    answer is given only while the file and the folder are the same files (device, inode; so their
    real paths are the same), the root in use (``cache_root``) is the same, the folder is still
    bound (verified) and the trust checks (``chain_problem``, re-run) still pass; else it is
    derived again. A file ``load_module`` is running (a cache entry's module, which it has just
    checked) has its folder derived once for the run (``_EXECUTING``)."""
    running = _EXECUTING.get(py_file)
    if running is not None:
        if not running:
            running.append(_numba_cache_dir_for(py_file))
        return running[0]
    key = (py_file, tuple(map(str, KERNEL_SOURCE_DIRS)), _KERNEL_CONFIG[0])
    hit = _LOCATED.get(key)
    if hit is not None:
        file_sig, root, given, kdir, kdir_sig, sub = hit
        with contextlib.suppress(CacheError, RuntimeError):
            if (_stat_sig(py_file)[:2] == file_sig and cache_root() == root
                    and chain_problem(root, given / sub) is None and _stat_sig(str(given))[:2] == kdir_sig
                    and kdir in _BOUND_KERNEL_DIRS):
                return kdir / sub
    file_sig = _stat_sig(py_file)[:2]
    folder = _numba_cache_dir_for(py_file)
    if folder is not None and folder.parent in _BOUND_KERNEL_DIRS:     # a kernel folder (not a plan's)
        root = cache_root()
        given = kernel_cache_dir(root)
        kdir_sig = _stat_sig(str(given))[:2]
        if file_sig[0] is not None and kdir_sig[0] is not None and Path(os.path.realpath(given)) == folder.parent:
            _LOCATED[key] = (file_sig, root, given, folder.parent, kdir_sig, folder.name)
    return folder


def install_kernel_cache_locator() -> None:
    """Make Numba keep every cache file of the library under the cache root and check each of
    them right before it is unpickled (idempotent; ``load_module`` calls it).

    Call it BEFORE importing any module with ``@njit(cache=True)`` kernels: Numba picks the
    folder, and makes the object that reads the files, at decoration.
    """
    if _INSTALLED:
        return
    from numba.core import caching

    base = getattr(caching, "_CacheLocator")
    mixin = getattr(caching, "_SourceFileBackedLocatorMixin")
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")

    class CacheLocator(mixin, base):
        """Numba locator: plan entries -> <entry>/__pycache__, library kernels -> kernel_cache_dir()."""

        def __init__(self, py_func, py_file, cache_path):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(cache_path)

        def get_cache_path(self):
            return self._cache_path

        def ensure_cache_path(self):
            """The folder exists and takes a file (probed once per folder while its stat stays
            the same: the library's import asks for each of its ~200 kernels; a folder that can no
            longer be written despite that is met at the write, ``_degrade_on_write_error``)."""
            sig = _PROBED.get(self._cache_path)
            if sig is not None and sig[0] is not None and _stat_sig(self._cache_path) == sig:
                return
            make_private_dirs(self._cache_path)
            tempfile.TemporaryFile(dir=self._cache_path, prefix=".staticgraph-probe").close()
            _PROBED[self._cache_path] = _stat_sig(self._cache_path)

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.exists(py_file):
                return None
            for _ in range(2):
                folder = _kernel_dir_for(py_file)
                if folder is None:
                    return None
                locator = cls(py_func, py_file, folder)
                try:
                    locator.ensure_cache_path()  # a CacheError here names the folder
                    return locator
                except OSError as exc:
                    if not unwritable(exc):
                        raise
                    fall_back(_root_of(folder), f"cannot write into it ({exc})")
            raise CacheError(f"staticgraph cache: no writable folder for the Numba files of {py_file}")

    class VerifiedIndexDataCacheFile(caching.IndexDataCacheFile):
        """Numba's index/data file access, refusing files of our folders that nothing vouches for."""

        def _load_index(self):
            ours, data = _checked_read(Path(self._index_path))
            if not ours:
                return super()._load_index()
            if data is None:
                return {}  # absent or not vouched for: Numba compiles and rewrites it
            stream = io.BytesIO(data)       # Numba's own format (``_load_index``), from the checked bytes
            if pickle.load(stream) != self._version:
                return {}
            stamp, overloads = pickle.loads(stream.read())
            return overloads if stamp == self._source_stamp else {}

        def _load_data(self, name):
            path = Path(self._data_path(name))
            ours, data = _checked_read(path)
            if not ours:
                return super()._load_data(name)
            if data is None:
                raise FileNotFoundError(errno.ENOENT, "absent or not vouched for by numba.json", str(path))
            return pickle.loads(data)

        def _save_index(self, overloads):
            with _degrade_on_write_error(Path(self._index_path)):
                super()._save_index(overloads)
                _note_written(Path(self._index_path))

        def _save_data(self, name, data):
            with _degrade_on_write_error(Path(self._data_path(name))):
                super()._save_data(name, data)
                _note_written(Path(self._data_path(name)))

    impl._locator_classes.insert(0, CacheLocator)
    _INSTALLED.update(locator=CacheLocator, original_index_file=caching.IndexDataCacheFile)
    caching.IndexDataCacheFile = VerifiedIndexDataCacheFile  # read by every Cache made from now on


_PROBED: dict = {}   # Numba cache folder -> its _stat_sig when CacheLocator.ensure_cache_path probed it
_WRITTEN: dict = {}  # Numba files this process wrote since they were last sealed: path -> (size, sha)


_DIRTY: set = set()  # sealed folders (real paths) this process wrote Numba or code files into since
                     # it last sealed them (``compiling`` seals only these, and folders it rejected files of)


def _note_written(path: Path) -> None:
    with contextlib.suppress(OSError):
        _WRITTEN[os.path.realpath(path)] = _file_digest(path)
    folder = _managed_folder(path)
    if folder is not None:
        _DIRTY.add(folder)


def _managed_folder(path: Path) -> Optional[Path]:
    """The sealed folder (plan entry or kernel folder) that Numba file ``path`` belongs to."""
    return _managed_folder_of(Path(os.path.realpath(path)))


def _managed_folder_of(real: Path) -> Optional[Path]:
    """``_managed_folder`` of a real path."""
    for kdir in _BOUND_KERNEL_DIRS:
        if _is_under(real, kdir):
            return kdir
    entry = real.parent.parent
    in_plans = entry.parent.parent.name == "plans"
    if real.parent.name == COMPILED_DIR and in_plans and (entry / MANIFEST).exists():
        return entry
    return None


def _checked_read(path: Path) -> tuple:
    """(ours, data) for a Numba file about to be unpickled. ours: ``path`` is in a folder this module
    manages (else (False, None): Numba reads it itself). data: its bytes, read ONCE and hashed, when
    this process wrote exactly them or its folder's numba.json records their size and hash; None when
    absent or not vouched for (as if absent: Numba recompiles). The caller unpickles these bytes."""
    real = Path(os.path.realpath(path))
    folder = _managed_folder_of(real)
    if folder is None:
        return False, None
    try:
        with open(real, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return True, None
    except OSError:
        return True, None
    found = (len(data), hashlib.sha256(data).hexdigest())
    if _WRITTEN.get(str(real)) == found:
        return True, data
    want = None
    with contextlib.suppress(CacheError, AttributeError):
        want = _read_json(folder / RECORD).get("files", {}).get(real.relative_to(folder).as_posix())
    if isinstance(want, dict) and (want.get("size"), want.get("sha256")) == found:
        return True, data
    if (str(real), found) not in _REFUSED:  # report each refused file version once
        _REFUSED.add((str(real), found))
        STATS.add("rejected")
        if want is not None:
            _warn(f"{path} does not match its hash in {folder / RECORD}; ignored, Numba recompiles")
    return True, None


def read_vouched(path: Union[str, os.PathLike]) -> Optional[bytes]:
    """The bytes of Numba file ``path`` of a folder this module manages, when its ``numba.json`` (or
    this process's write) vouches for exactly them (``_checked_read``: read once, then checked); None
    when absent, not vouched for (counted in ``STATS.rejected``) or outside our folders. Callers
    unpickle only bytes this returns."""
    ours, data = _checked_read(Path(path))
    return data if ours else None


def _root_of(folder: Path) -> Path:
    """The cache root above a Numba cache folder (a plan entry's __pycache__ or a kernel folder)."""
    real = Path(os.path.realpath(folder))
    for parent in real.parents:
        if parent.name in ("plans", "kernels"):
            return parent.parent
    return real


@contextlib.contextmanager
def _degrade_on_write_error(path: Path) -> Iterator[None]:
    """Around a write into the cache: a full, read-only or forbidden folder ends this process's
    use of its root (one warning naming it and the OS error); what was compiled stays in memory."""
    try:
        yield
    except OSError as exc:
        if not unwritable(exc):
            raise
        fall_back(_root_of(path.parent), f"cannot write {path} ({exc.strerror or exc})")


_REFUSED: set = set()


def bound_kernel_dirs() -> list[Path]:
    """Kernel cache folders Numba has been pointed at in this process (all get verified/sealed)."""
    return list(_BOUND_KERNEL_DIRS)


def verify_kernels() -> list[Path]:
    """``verify_compiled`` for every bound kernel folder (under their locks)."""
    removed = []
    for kdir in bound_kernel_dirs():
        with _locked(_lock_path(kdir)):
            removed += _verify_folder(kdir)
    return removed


def seal_kernels() -> None:
    """``seal`` for every bound kernel folder (under their locks)."""
    for kdir in bound_kernel_dirs():
        with _degrade_on_write_error(kdir / RECORD), _locked(_lock_path(kdir)):
            if kdir.is_dir():
                _seal_folder(kdir)


# ------------------------------------------------------------------------------- plan cache
class PlanCache:
    """Content-addressed plan entries under ``<root>/plans`` (root: ``cache_root()`` when None)."""

    def __init__(self, root: Optional[Union[str, os.PathLike]] = None):
        self._root = None if root is None else Path(os.path.abspath(root))

    @property
    def root(self) -> Path:
        """The root folder this process uses (``usable_root``), created 0700 if missing."""
        return usable_root(self._configured())

    def _configured(self) -> Path:
        return self._root if self._root is not None else configured_root()

    def _root_nocreate(self) -> Path:
        return usable_root(self._configured(), create=False)

    def path_of(self, key: str) -> Path:
        """The folder of ``key``'s entry (it may not exist)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"cache key {key!r} is not a lowercase hex digest (use cache_key(...))")
        return self._root_nocreate() / "plans" / key[:2] / key

    # ---------------------------------------------------------------------------- entries
    def entry(self, key: str, files: Mapping[str, Union[str, bytes]], manifest: dict) -> Path:
        """A verified entry holding ``files`` and ``manifest.json``; built (atomically) on a miss.

        An existing entry that is corrupt, partial, foreign or holds other content is removed and
        rebuilt, with a CacheWarning naming the offending file.
        """
        self.path_of(key)
        blobs = self._check_files(key, files)
        expected = {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()}
        try:
            meta = json.loads(json.dumps(manifest, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"manifest of cache entry {key} is not JSON data: {exc}") from None
        for _ in range(3):     # the configured root, then (once refused) the private fallback folder
            root = self.root
            dest = root / "plans" / key[:2] / key
            try:
                problem = chain_problem(root, dest / COMPILED_DIR)
                if problem is None:
                    dest = self._entry_in(root, dest, key, blobs, expected, meta)
                    problem = chain_problem(root, dest / COMPILED_DIR)
            except OSError as exc:       # CacheError included
                if not unwritable(exc):
                    raise
                problem = f"cannot write into it ({exc})"
            if problem is None:
                with _TRUST_GUARD:
                    _EXPECTED[str(dest)] = expected
                return dest
            fall_back(root, problem)
        raise CacheError(f"staticgraph cache: no usable folder for entry {key}")

    def _entry_in(self, root: Path, dest: Path, key: str, blobs: dict, expected: dict, meta: dict) -> Path:
        _PLAN_ROOTS.add(os.path.realpath(root))
        make_private_dirs(dest.parent)
        with _locked(_lock_path(dest)):
            problem = self._problem(dest, key, expected)
            if problem is None:
                STATS.add("hits")
                return dest
            if problem != "missing":
                _warn(f"{problem}; rebuilding entry {dest}")
                STATS.add("rebuilt")
                _remove_tree(dest)
            STATS.add("misses")
            self._sweep(dest.parent, key)
            tmp = self._write_temp(dest, key, blobs, expected, meta)
            return self._install(tmp, dest, key, expected)

    @staticmethod
    def _check_files(key: str, files: Mapping[str, Union[str, bytes]]) -> dict[str, bytes]:
        if not files:
            raise ValueError(f"cache entry {key}: no files given")
        blobs = {}
        for name, text in files.items():
            if (not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name in _RESERVED_NAMES
                    or name.endswith(".lock")):
                raise ValueError(f"cache entry {key}: file name {name!r} is not a plain file name "
                                 f"(letters, digits, _ . -; not {sorted(_RESERVED_NAMES)})")
            if isinstance(text, str):
                blobs[name] = text.encode("utf-8")
            elif isinstance(text, bytes):
                blobs[name] = text
            else:
                raise TypeError(f"cache entry {key}: file {name!r} content is a {type(text).__name__}, "
                                f"expected str")
        return blobs

    @staticmethod
    def _problem(dest: Path, key: str, expected: dict[str, str]) -> Optional[str]:
        """Why ``dest`` is not a valid entry of ``key`` with ``expected`` files (None: it is)."""
        if not os.path.lexists(dest):
            return "missing"
        if dest.is_symlink() or not dest.is_dir():
            return f"{dest} is not a folder"
        manifest_path = dest / MANIFEST
        if not manifest_path.exists():
            return f"partial entry: {manifest_path} is missing"
        try:
            manifest = _read_json(manifest_path)
        except CacheError as exc:
            return str(exc)
        if manifest.get("key") != key:
            return f"foreign {MANIFEST} {manifest_path} (it is for key {manifest.get('key')!r})"
        if manifest.get("files") != expected:
            return (f"{manifest_path} records other files or content than requested "
                    f"(non-deterministic code generation, or a key that misses an input)")
        for name, digest in expected.items():
            path = dest / name
            try:
                if path.is_symlink():
                    return f"{path} is a symlink"
                if _file_digest(path)[1] != digest:
                    return f"{path} does not match its hash in {manifest_path}"
            except OSError as exc:
                return f"{path} is unreadable ({exc.strerror})"
        allowed = set(expected) | _RESERVED_NAMES
        for child in sorted(os.listdir(dest)):
            if child not in allowed and not child.startswith(f".{RECORD}.tmp-"):  # killed seal
                return f"foreign file {dest / child} in the entry"
        pycache = dest / COMPILED_DIR
        if os.path.lexists(pycache) and (pycache.is_symlink() or not pycache.is_dir()):
            return f"{pycache} is not a folder"
        return None

    @staticmethod
    def _write_temp(dest: Path, key: str, blobs: dict, expected: dict, meta: dict) -> Path:
        tmp = dest.with_name(f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        make_private_dirs(tmp)
        try:
            for name, data in blobs.items():
                _write_private(tmp / name, data)
            record = {"format": FORMAT, "key": key, "files": expected, "meta": meta,
                      "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _write_private(tmp / MANIFEST, json.dumps(record, indent=1, sort_keys=True).encode())
            make_private_dirs(tmp / COMPILED_DIR)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def _install(self, tmp: Path, dest: Path, key: str, expected: dict, tries: int = 3) -> Path:
        """Rename ``tmp`` to ``dest``; if another writer got there first, keep its valid entry."""
        for _ in range(tries):
            try:
                os.rename(tmp, dest)
                return dest
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise CacheError(f"staticgraph cache: cannot move {tmp} to {dest}: "
                                     f"{exc.strerror}") from exc
            problem = self._problem(dest, key, expected)
            if problem is None:  # lost the race to an equal entry: use it
                shutil.rmtree(tmp, ignore_errors=True)
                return dest
            if problem != "missing":
                _warn(f"{problem}; rebuilding entry {dest}")
                _remove_tree(dest)
        shutil.rmtree(tmp, ignore_errors=True)
        raise CacheError(f"staticgraph cache: could not install entry {dest} after {tries} tries")

    @staticmethod
    def _sweep(shard: Path, key: str) -> None:
        """Remove temp/trash folders of ``key`` (its lock is held) and stale ones of other keys."""
        now = time.time()
        for child in shard.iterdir():
            name = child.name
            if not (name.startswith(".tmp-") or name.startswith(".trash-")):
                continue
            with contextlib.suppress(OSError):
                if (name.startswith(f".tmp-{key}-") or name.startswith(".trash-")
                        or now - child.lstat().st_mtime > STALE_TEMP_SECONDS):
                    shutil.rmtree(child, ignore_errors=True)

    # ------------------------------------------------------------------------ loading code
    def load_module(self, path: Path, filename: str = "plan.py",
                    module_name: Optional[str] = None, keep_code: bool = False) -> types.ModuleType:
        """Execute ``path/filename`` as a module after checking its bytes against the manifest.

        The module is registered in ``sys.modules`` under a deterministic name (default
        ``_staticgraph_plan_<key>``, plus ``_<stem>`` for files other than plan.py): code that
        Numba loads from its cache re-imports the module it was compiled in BY NAME, so every
        process must load an entry under the same name. A module already loaded from the same
        bytes is returned as is (its dispatchers reused).

        ``keep_code``: keep the compiled code object of a source of ``KEEP_CODE_FROM`` bytes or
        more (the kernel library's generated module, the kernel wrappers) in the entry's
        ``__pycache__``, where the entry's seal records it like Numba's files (``_module_code``);
        the caller seals the entry afterwards.
        """
        path = Path(path)
        source_path = path / filename
        root = _root_of(path / COMPILED_DIR)
        problem = chain_problem(root, path) if _is_under(Path(os.path.realpath(path)), root) else trust_problem(path)
        if problem is not None:
            raise CacheError(f"staticgraph cache: will not run code from {source_path}: {problem}")
        with _TRUST_GUARD:
            recorded = _EXPECTED.get(str(path))
        where = "the hash this process recorded for it"
        if recorded is None:       # an entry this process did not make: its manifest (trusted folder)
            recorded, where = _read_json(path / MANIFEST).get("files", {}), f"its hash in {path / MANIFEST}"
        want = recorded.get(filename)
        try:
            data = source_path.read_bytes()       # read once: these bytes are checked and run
        except OSError as exc:
            raise CacheError(f"staticgraph cache: cannot read {source_path}: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if want is None or digest != want:
            raise CacheError(f"staticgraph cache: {source_path} does not match {where}; "
                             f"call PlanCache.entry again to rebuild it")
        install_kernel_cache_locator()  # before the module's @njit(cache=True) decorators run
        stem = Path(filename).stem
        name = module_name or f"_staticgraph_plan_{path.name}" + ("" if stem == "plan" else f"_{stem}")
        with _LOAD_LOCK:   # threads loading one entry at once: one executes it, the others reuse it
            old = sys.modules.get(name)
            if old is not None and getattr(old, "__staticgraph_sha256__", None) == digest:
                return old
            module = types.ModuleType(name)
            module.__file__ = str(source_path)
            if keep_code and len(data) >= KEEP_CODE_FROM:
                code = _module_code(path, source_path, data, digest)
            else:
                code = compile(data, str(source_path), "exec", dont_inherit=True)
            sys.modules[name] = module
            # its @njit(cache=True) functions (the library's ~100) ask the locator for their folder
            # as the module runs: derived once for the file (its entry's __pycache__, or not ours)
            _EXECUTING[str(source_path)] = []
            try:
                exec(code, module.__dict__)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            finally:
                _EXECUTING.pop(str(source_path), None)
            module.__staticgraph_sha256__ = digest     # only a fully executed module is reused
            return module

    # ------------------------------------------------------------------------ memo files
    def memo_path(self, name: str, key: str) -> Path:
        """The file of memo ``name`` for ``key`` (it may not exist)."""
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_-]{1,64}", name):
            raise ValueError(f"memo name {name!r} is not lowercase letters, digits, _ and -")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"memo key {key!r} is not a lowercase hex digest (use cache_key(...))")
        return self._root_nocreate() / MEMO_DIR / f"{name}-{key[:32]}.json"

    def read_memo(self, name: str, key: str) -> dict:
        """The items of memo ``name`` recorded for ``key`` (a dict of JSON values), or {} when there
        is none, it is for another key, or it is corrupt (a CacheWarning names the file): what a
        memo holds can always be derived again, and is then written back by ``update_memo``.

        Memos keep facts a warm start would otherwise derive again (the kernel wrappers' parts,
        keyed by everything they are derived from). Like code, they are read only from folders no
        one else can write into (``chain_problem``), and their items are checked against the
        sha256 beside them."""
        path = self.memo_path(name, key)
        if chain_problem(self._root_nocreate(), path.parent) is not None:
            return {}     # a refused root: the next write falls back to the private folder
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            _warn(f"memo {path} is unreadable ({exc.strerror or exc}); deriving its items again")
            return {}
        problem = _memo_problem(data, name, key)
        if problem is not None:
            _warn(f"memo {path}: {problem}; deriving its items again")
            return {}
        return json.loads(data)["items"]

    def update_memo(self, name: str, key: str, items: Mapping) -> None:
        """Add ``items`` (JSON values) to memo ``name`` of ``key``: under the memo's lock its file
        is read, merged and replaced atomically (temp file + ``os.replace``, 0600). A root that
        cannot be written or is not trusted is refused as by ``entry`` (private folder from then on)."""
        items = json.loads(json.dumps(dict(items), sort_keys=True))
        file_name = self.memo_path(name, key).name
        for _ in range(2):     # the root, then (once refused) the private fallback folder
            root = self.root
            folder = root / MEMO_DIR
            path = folder / file_name
            problem = chain_problem(root, folder)
            if problem is None:
                try:
                    make_private_dirs(folder)
                    with _locked(_lock_path(path)):
                        old = {}
                        with contextlib.suppress(OSError):
                            data = _read_regular(path)
                            if _memo_problem(data, name, key) is None:
                                old = json.loads(data)["items"]
                        if any(k not in old or old[k] != v for k, v in items.items()):
                            merged = {**old, **items}
                            _write_json_atomic(path, {"format": FORMAT, "name": name, "key": key,
                                                      "items": merged, "sha256": _memo_digest(merged)})
                    return
                except OSError as exc:       # CacheError included
                    if not unwritable(exc):
                        raise
                    problem = f"cannot write {path} ({exc.strerror or exc})"
            fall_back(root, problem)

    # ----------------------------------------------------------------- Numba's own files
    def seal(self, path: Path) -> None:
        """Record the hash of every Numba file of entry/kernel folder ``path`` in its numba.json."""
        path = Path(path)
        with _degrade_on_write_error(path / RECORD), _locked(_lock_path(path)):
            _seal_folder(path)

    def verify_compiled(self, path: Path) -> list[Path]:
        """Delete every Numba file of ``path`` that numba.json does not vouch for; return them."""
        path = Path(path)
        with _locked(_lock_path(path)):
            return _verify_folder(path)

    @contextlib.contextmanager
    def compiling(self, *paths: Path) -> Iterator[None]:
        """Hold the locks of the entry folders ``paths`` (a plan, the kernel-library entry, ...)
        for the block; verify their Numba files and the bound kernel folders' first and seal them
        after the block (those this process wrote into, or rejected files of: the record of any
        other is already exact, so a warm load reads and writes no record after it). Trigger every
        Numba compile or cache load inside such a block.
        ``STATS.compiles`` counts blocks in which Numba wrote new files into one of ``paths``.

        The kernel folders (every hand-written kernel's helpers, shared by all wrappers) are verified
        once, when first bound in a process (``CacheLocator``), and locked only while sealed, not
        during the compile: held throughout, they made the parallel compile workers take turns, and
        verified at every block, they cost a warm start hashing every helper file at each wrapper. A helper another process writes meanwhile is
        recorded by the next seal; until then the checked loader treats it as absent (Numba compiles
        it again), so nothing unverified is ever unpickled. Locks are taken in path order, and a
        kernel folder's lock is never held while waiting for another, so blocks never deadlock."""
        given = sorted({Path(p) for p in paths}, key=str)
        with contextlib.ExitStack() as stack:
            for folder in given:
                stack.enter_context(_locked(_lock_path(folder)))
            stale = [folder for folder in given if _verify_folder(folder)]     # records naming deleted files
            yield
            wrote = False
            for folder in given:
                # A folder this process wrote nothing into since its last seal, and whose files all
                # verified, is recorded as it is (the lock kept others out): a warm load skips the seal.
                if folder in stale or Path(os.path.realpath(folder)) in _DIRTY:
                    with _degrade_on_write_error(folder / RECORD):
                        if folder.is_dir() and _seal_folder(folder):
                            wrote = True
            for folder in bound_kernel_dirs():      # those bound during the block too
                if folder not in given and folder in _DIRTY and folder.is_dir():
                    with _degrade_on_write_error(folder / RECORD), _locked(_lock_path(folder)):
                        _seal_folder(folder)
            if wrote:
                STATS.add("compiles")

    # ------------------------------------------------------------------------ management
    def info(self) -> dict:
        """{"path", "exists", "entries", "kernel_files", "temp", "bytes"} of the cache (read-only;
        of the configured folder even when this process does not trust it: listing loads nothing)."""
        root = self._configured()
        result = {"path": str(root), "exists": root.is_dir(), "entries": 0, "kernel_files": 0,
                  "temp": 0, "bytes": 0}
        plans = root / "plans"
        for shard in _listdir(plans):
            for child in _listdir(plans / shard):
                if child.startswith(".tmp-") or child.startswith(".trash-"):
                    result["temp"] += 1
                elif not child.startswith(".") and (plans / shard / child).is_dir():
                    result["entries"] += 1
        for folder in ("plans", "kernels", MEMO_DIR):
            for dirpath, _, filenames in os.walk(root / folder):
                for name in filenames:
                    with contextlib.suppress(OSError):
                        st = os.lstat(os.path.join(dirpath, name))
                        result["bytes"] += st.st_size
                        numba_file = stat.S_ISREG(st.st_mode) and name.endswith((".nbi", ".nbc"))
                        if folder == "kernels" and numba_file:
                            result["kernel_files"] += 1
        return result

    def clear(self) -> dict:
        """Remove every plan entry, kernel file and memo (the folders the library made below the root);
        the root itself and anything else in it stay. Returns ``info()`` from before."""
        before = self.info()
        root = self._configured()
        for folder in ("plans", "kernels", MEMO_DIR):
            if os.path.lexists(root / folder):
                _remove_tree(root / folder)
        for child in _listdir(root):
            if child.startswith(".trash-"):
                _remove_tree(root / child)
        _HASH_MEMO.clear()
        return before


KEEP_CODE_FROM = 1024     # load_module(keep_code=True) keeps the code of sources at least this long
                          # (a kernel wrapper's few kB: reading kept code is cheaper than compiling them)


def _code_path(source_path: Path) -> Path:
    """Where ``load_module(keep_code=True)`` keeps the code of ``source_path`` (in its entry's
    __pycache__, beside Numba's files; not a name Numba uses: theirs end in .nbi/.nbc)."""
    return source_path.parent / COMPILED_DIR / f"{source_path.stem}.{sys.implementation.cache_tag}.code"


def _module_code(entry: Path, source_path: Path, data: bytes, digest: str) -> types.CodeType:
    """The code object of ``data`` (the checked bytes of ``source_path``, sha256 ``digest``): read
    from its code file when the entry's numba.json vouches for that file's bytes (``_checked_read``:
    read once, hashed, then unmarshalled) and they begin with this Python's magic number and
    ``digest``; else compiled, and, when there is no such file, written (temp file + ``os.replace``,
    0600; recorded by the entry's next seal: until then only this process trusts it). A file is
    never replaced: a seal may have recorded it, and an unvouched one is deleted by the
    ``verify_compiled`` that precedes a load (``library.load``)."""
    path = _code_path(source_path)
    header = importlib.util.MAGIC_NUMBER + bytes.fromhex(digest)
    ours, blob = _checked_read(path)
    if ours and blob is not None and blob.startswith(header):
        try:
            code = marshal.loads(blob[len(header):])
        except (ValueError, EOFError, TypeError):
            code = None
        if isinstance(code, types.CodeType) and code.co_filename == str(source_path):
            return code
    code = compile(data, str(source_path), "exec", dont_inherit=True)
    if ours and blob is None:
        tmp = path.with_name(f"{path.name}.tmp.{uuid.uuid4().hex[:16]}")   # Numba's temp pattern: never sealed
        try:
            with _locked(_lock_path(entry)):
                if not os.path.lexists(path):     # (one written meanwhile is another process's: it seals it)
                    make_private_dirs(path.parent)
                    _write_private(tmp, header + marshal.dumps(code))
                    os.replace(tmp, path)
                    _note_written(path)
        except OSError:     # not kept (a full or read-only disk): compiled again next time
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return code


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, a regular file and not a symlink (else an OSError)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return f.read()


def _memo_digest(items: dict) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def _memo_problem(data: bytes, name: str, key: str) -> Optional[str]:
    """What is wrong with the bytes of a memo file of ``name`` and ``key`` (None: nothing)."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        return f"unreadable ({exc})"
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("items"), dict):
        return f"not a staticgraph format-{FORMAT} memo"
    if (obj.get("name"), obj.get("key")) != (name, key):
        return f"written for another key ({obj.get('name')!r}, {obj.get('key')!r})"
    if obj.get("sha256") != _memo_digest(obj["items"]):
        return "its items do not match their sha256"
    return None


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
