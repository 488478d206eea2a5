"""Kernel wrappers (and the step loop) loaded straight from their Numba cache files, without a dispatcher.

Numba loads a cached ``cfunc`` by executing its module (the decorator compiles or loads), and its
first load in a process refreshes the CPU target: it imports every typing and lowering registry
(SciPy's BLAS check included) that only a compile needs. A cached wrapper's machine code needs
none of that: this module reads the entry's index and data files through the cache's verified
read (``compiler.cache.read_vouched``: their bytes are checked against the entry's ``numba.json``
before anything is unpickled), rebuilds the code library as ``CompileResult._rebuild`` does (its
reload functions run, its object code linked in the CPU target's JIT, NRT started, every
referenced environment set), and takes the address of the wrapper's C entry symbol (the step loop's module is imported, so
its entry point is made as Numba makes it: ``get_executable``). Two steps of Numba's load are
left out, a warm start's largest: parsing the shared bitcode cached beside the object code (the
symbols it defines come from the object code's ELF symbol table: ``_library``), and importing the
modules of the environments it references (a stand-in where a module is not imported:
``_environment``), so no kernel module is decorated for a load.

Only what Numba itself would load is taken: this Numba version's index, the source's stamp, ONE
overload of the wrapper's signature for this CPU (``magic_tuple``), a nopython compile result of
the shape ``CompileResult._reduce`` writes, environments without constants. Anything else raises
``Unsupported`` and the caller takes Numba's own path (``native._load``), which stays the reference.
"""
from __future__ import annotations

import io
import pickle
import struct
import sys
from collections import namedtuple
from pathlib import Path
from typing import Tuple

from compiler.cache import COMPILED_DIR, read_vouched


class Unsupported(Exception):
    """The entry's Numba files are absent, not vouched for, or not what this loader understands."""


_EnvRef = namedtuple("_EnvRef", "modname consts env_name")     # a pickled Environment, not rebuilt yet


class _Payload(pickle.Unpickler):
    """Numba's data file, with each Environment kept as its reference (``_rebuild_env`` would import
    its module: a wrapper's own module is never imported on this path)."""

    def find_class(self, module, name):
        if (module, name) == ("numba.core.environment", "_rebuild_env"):
            return _EnvRef
        return super().find_class(module, name)


class LoadedWrapper:
    """What keeps a directly loaded wrapper's code alive (the code library, its environments)."""

    cache_hits = 1      # like a cfunc loaded from Numba's cache

    def __init__(self, library, environments: list, fndesc):
        self.library = library
        self.environments = environments
        self.native_name = fndesc.llvm_cfunc_wrapper_name


def load_wrapper(entry: Path, source: str, stamp: bytes) -> Tuple[LoadedWrapper, int]:
    """(keeper, C entry address) of the cached cfunc ``wrapper`` of entry ``entry`` (its
    ``native.py`` is ``source``, whose sha256 is ``stamp``). Call it inside the entry's
    ``PlanCache.compiling`` block. Raises ``Unsupported`` (or any error) where Numba's path must run."""
    from numba import types
    signature = types.int64(types.CPointer(types.int64), types.CPointer(types.int64))
    library, fndesc, environments = _rebuild(entry, _file_base(source, "@cfunc(", "wrapper"), stamp,
                                             signature, signature)
    if not isinstance(getattr(fndesc, "llvm_cfunc_wrapper_name", None), str):
        raise Unsupported("not a cfunc")
    address = library.get_pointer_to_function(fndesc.llvm_cfunc_wrapper_name)
    if not address:
        raise Unsupported("no C entry symbol")
    return LoadedWrapper(library, environments, fndesc), address


def load_entry_point(entry: Path, source: str, stamp: bytes, name: str, args: tuple):
    """The compiled entry point (``CompileResult.entry_point``) of the cached ``@njit`` function
    ``name`` of entry ``entry`` for argument types ``args``; its module (``source``, whose sha256
    is ``stamp``) must be imported already. Raises as ``load_wrapper``."""
    from numba.core.registry import cpu_target
    library, fndesc, environments = _rebuild(entry, _file_base(source, f"def {name}(", name, decorated=True),
                                             stamp, args, None)
    if tuple(fndesc.argtypes) != tuple(args) or fndesc.modname not in sys.modules:
        raise Unsupported("another function")
    return cpu_target.target_context.get_executable(library, fndesc, environments[0])


def _file_base(source: str, marker: str, qualname: str, decorated: bool = False) -> str:
    """Numba's file name base of function ``qualname`` of an entry's ``native.py`` (``source``):
    module, qualified name, the line of the first decorator (the line starting with ``marker``,
    or the one above it when ``decorated``), Python version and ABI flags."""
    lines = source.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith(marker)) - (1 if decorated else 0)
    if decorated and not lines[line - 1].startswith("@"):
        raise Unsupported(f"{qualname}: not one decorator")
    return f"native.{qualname}-{line}.py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"


def _rebuild(entry: Path, base: str, stamp: bytes, key_sig, signature) -> tuple:
    """(code library, function descriptor, environments: its own first) of the one overload of
    key ``key_sig`` in the Numba files ``base`` of ``entry``, rebuilt as ``CompileResult._rebuild``
    does (``signature``: the compile result's, checked when given)."""
    import numba
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target
    from numba.core.runtime import rtsys

    folder = entry / COMPILED_DIR
    stream = io.BytesIO(_vouched(folder / f"{base}.nbi"))
    if pickle.load(stream) != numba.__version__:
        raise Unsupported("index of another Numba version")
    found_stamp, overloads = pickle.loads(stream.read())
    context = cpu_target.target_context
    codegen = context.codegen()
    if found_stamp != stamp or not isinstance(overloads, dict) or len(overloads) != 1:
        raise Unsupported("index of another source, or of several overloads")
    (key, data_name), = overloads.items()
    if not (isinstance(key, tuple) and len(key) == 3 and key[0] == key_sig and key[1] == codegen.magic_tuple()
            and isinstance(data_name, str) and data_name.startswith(f"{base}.") and data_name.endswith(".nbc")
            and "/" not in data_name):
        raise Unsupported("overload of another signature or CPU")
    payload = _Payload(io.BytesIO(_vouched(folder / data_name))).load()
    if not (isinstance(payload, tuple) and len(payload) == 9):
        raise Unsupported("data of an unknown shape")
    libdata, fndesc, env, sig, objectmode, lifted, _, reload_init, referenced = payload
    if (objectmode or lifted or (signature is not None and sig != signature) or not isinstance(env, _EnvRef)
            or not (isinstance(libdata, tuple) and len(libdata) == 3 and libdata[1] == "object"
                    and isinstance(libdata[2], tuple) and len(libdata[2]) == 2)
            or not isinstance(getattr(fndesc, "modname", None), str) or not isinstance(reload_init, list)):
        raise Unsupported("not a nopython compile result in object code")
    environments = [_environment(ref) for ref in (env, *referenced)]
    with global_compiler_lock:         # the JIT is shared with compiles in other threads
        rtsys.initialize(context)      # NRT, as the target's refresh() starts it before a load
        for init in reload_init:       # as CompileResult._rebuild (the parallel runtime's start)
            init()
        engine = codegen._engine
        object_code = libdata[2][0]
        defined, undefined = _symbols(object_code)
        missing = _unresolved(undefined, engine)
        if missing:         # (registered by a module refresh() imports): linking it would end the process
            raise Unsupported(f"symbols not registered yet: {missing[:3]}")
        library = _library(codegen, libdata[0], object_code, defined)
        for environment in environments:
            if not engine.get_global_value_address(environment.env_name):
                raise Unsupported(f"environment {environment.env_name} not in the code")
        for environment in environments:
            codegen.set_env(environment.env_name, environment)
    return library, fndesc, environments


def _library(codegen, name: str, object_code: bytes, defined: list):
    """The code library of cached object code, as ``CPUCodeLibrary._unserialize`` makes it, less
    the parse of its shared bitcode (a third of a load): that module only serves to link the
    library into another one, which is never done with a loaded wrapper, and to list the symbols
    it defines, which the object code's own symbol table lists (``defined``)."""
    library = codegen.create_library(name)
    library.enable_object_caching()
    library._set_compiled_object(object_code)
    library._finalize_final_module()        # the JIT takes the object code through its object cache
    codegen._engine._defined_symbols.update(defined)
    return library


def _unresolved(undefined: list, engine) -> list:
    """The symbols of ``undefined`` (those object code needs) that neither the process
    (``llvmlite.binding.add_symbol``, its shared libraries) nor code already in the JIT defines:
    MCJIT ends the process on such a symbol when it links the code, so they are looked up first."""
    from llvmlite import binding as ll
    return [name for name in undefined
            if not (engine.is_symbol_defined(name) or ll.address_of_symbol(name))]


def _symbols(obj: bytes) -> Tuple[list, list]:
    """(defined, undefined) symbol names of an ELF64 little-endian object file (the object code
    Numba caches on Linux x86-64 and AArch64; any other format is ``Unsupported``): every named
    function, object or untyped symbol, local ones included (as Numba lists a module's
    definitions), without section and file symbols."""
    if not (isinstance(obj, bytes) and obj[:4] == b"\x7fELF" and obj[4:6] == b"\x02\x01"):
        raise Unsupported("object code not in ELF64 little-endian")
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize) for i in range(shnum)]
    defined, undefined = [], []
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2 or not entsize:            # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for at in range(offset, offset + size - entsize + 1, entsize):
            name, info, _, section = struct.unpack_from("<IBBH", obj, at)
            if name and (info & 0xF) <= 2:      # STT_NOTYPE, STT_OBJECT, STT_FUNC
                text = obj[strings + name:obj.index(b"\0", strings + name)].decode()
                (undefined if section == 0 else defined).append(text)      # SHN_UNDEF: 0
    return defined, undefined


def _vouched(path: Path) -> bytes:
    data = read_vouched(path)
    if data is None:
        raise Unsupported(f"{path} absent or not vouched for")
    return data


def _environment(ref: "_EnvRef"):
    """The Environment ``ref`` names: the one this process has; else, for an environment without
    constants whose module is not imported, a stand-in holding only the module's name; else
    rebuilt like Numba's ``_rebuild_env`` (its module imported).

    Nopython code reads an environment only for its constants (none here) and object-mode
    globals (none: object mode is refused above), so the module's namespace is never read:
    importing it would decorate its kernels (a wrapper's own module would even compile its
    wrapper) for nothing. The stand-in is not registered with Numba: a later compile in this
    process makes its own environment, as it would have."""
    from numba.core.environment import Environment, _rebuild_env, lookup_environment
    if not isinstance(ref, _EnvRef) or not isinstance(ref.consts, list) or not isinstance(ref.modname, str):
        raise Unsupported("environment of an unknown shape")
    env = lookup_environment(ref.env_name)
    if env is not None:
        return env
    if ref.consts:
        raise Unsupported("environment with constants")
    if ref.modname not in sys.modules:
        env = Environment({"__name__": ref.modname})
        env.env_name = ref.env_name
        return env
    return _rebuild_env(*ref)
