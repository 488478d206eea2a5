"""What a warm start reuses instead of deriving again (compiler/cache.py, native.py), and that none
of it is served once stale: the trust checks' memo (``trust_problem``), the kernel locator's
memo (``_kernel_dir_for``), memo files (``PlanCache.read_memo``/``update_memo``: the kernel
wrappers' parts) and the kernel library's kept code object (``load_module(keep_code=True)``)."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler import cache
from compiler.backends.cpu import library, native
from compiler.cache import CacheWarning, PlanCache, cache_key

WORKTREE = Path(__file__).resolve().parent.parent
OTHER_UID = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="os.chown to another uid needs root")


@pytest.fixture
def root(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(path))
    return path


# ------------------------------------------------------------------------ trust_problem's memo
def test_trust_answers_follow_every_change_of_the_folders(tmp_path):
    """Each answer is remembered with the stat of the folders it read; any change is seen."""
    outer = tmp_path / "outer"
    folder = outer / "f"
    folder.mkdir(parents=True, mode=0o700)
    os.chmod(outer, 0o755)
    assert cache.trust_problem(folder) is None
    assert cache.trust_problem(folder) is None                      # remembered
    os.chmod(folder, 0o770)
    assert cache.trust_problem(folder) == f"{folder} is writable by group (mode 0770)"
    os.chmod(folder, 0o700)
    assert cache.trust_problem(folder) is None
    os.chmod(outer, 0o777)                                          # a folder above: others can swap f
    assert cache.trust_problem(folder) == f"{outer}, a folder above {folder}, is writable by others and not sticky"
    assert cache.trust_problem(folder, ancestors=False) is None
    os.chmod(outer, 0o755)
    assert cache.trust_problem(folder) is None
    folder.rmdir()
    assert cache.trust_problem(folder) is None                      # missing: we would create it 0700
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o707)
    assert cache.trust_problem(folder) == f"{folder} is writable by others (mode 0707)"
    folder.rmdir()
    folder.write_text("not a folder")
    assert cache.trust_problem(folder) == f"{folder} is not a folder"


def test_a_folder_replaced_by_a_link_elsewhere_is_checked_where_it_leads(tmp_path):
    link, mine, open_ = tmp_path / "link", tmp_path / "mine", tmp_path / "open"
    mine.mkdir(mode=0o700)
    open_.mkdir()
    os.chmod(open_, 0o777)
    link.symlink_to(mine)
    assert cache.trust_problem(link) is None
    link.unlink()
    link.symlink_to(open_)                                           # same path, another folder
    assert cache.trust_problem(link) == f"{link} (a link to {open_}) is writable by group and others (mode 0777)"
    link.unlink()
    mine.rename(link)                                                # the folder itself, moved there
    assert cache.trust_problem(link) is None


@needs_root
def test_a_folder_given_to_another_user_is_refused_at_once(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir(mode=0o700)
    assert cache.trust_problem(folder) is None
    os.chown(folder, OTHER_UID, OTHER_UID)
    assert cache.trust_problem(folder) == (f"{folder} is owned by uid {OTHER_UID}, not by this user "
                                           f"(uid {os.geteuid()})")


def test_a_kernels_folder_opened_after_the_root_was_used_is_refused(root):
    assert cache.cache_root() == root
    (root / "kernels").mkdir()
    assert cache.cache_root() == root
    os.chmod(root / "kernels", 0o777)
    with pytest.warns(CacheWarning, match=f"not using {re.escape(str(root))}: .*kernels is writable"):
        assert cache.cache_root() == cache.private_fallback() != root
    cache._FALLBACK.pop(os.path.realpath(root))                    # (this test's root only)


def test_chain_problem_checks_each_folder_below_the_root(tmp_path):
    root = tmp_path / "r"
    (root / "a" / "b").mkdir(parents=True, mode=0o700)
    os.chmod(root / "a", 0o700)
    assert cache.chain_problem(root, root / "a" / "b" / "missing" / "c") is None
    os.chmod(root / "a" / "b", 0o720)
    assert cache.chain_problem(root, root / "a" / "b" / "c") == f"{root / 'a' / 'b'} is writable by group (mode 0720)"
    with pytest.raises(ValueError):
        cache.chain_problem(root, tmp_path / "elsewhere")


# ---------------------------------------------------------------------- the kernel locator's memo
def test_kernel_locator_memo_gives_what_the_locator_derives():
    kernels_dir = WORKTREE / "compiler" / "backends" / "cpu" / "kernels"
    library.load()                                                   # binds the kernel folder
    for name in ("conv.py", "pool.py", "conv.py"):
        assert cache._kernel_dir_for(str(kernels_dir / name)) == cache._numba_cache_dir_for(str(kernels_dir / name))
    assert cache._kernel_dir_for(str(WORKTREE / "tests" / "conftest.py")) is None


def test_kernel_locator_memo_sees_a_kernel_folder_opened_later(tmp_path):
    """A subprocess: the kernels bind their folder at import (process-wide state)."""
    root = tmp_path / "cache"
    code = textwrap.dedent("""\
        import os
        from pathlib import Path
        from compiler import cache
        from compiler.backends.cpu.kernels import base
        src = base.__file__
        first = cache._kernel_dir_for(src)
        assert cache._kernel_dir_for(src) == first and cache.private_fallback() is None
        os.chmod(first.parent.parent, 0o777)          # kernels/<numba>-py<XY>: others could swap the folder
        again = cache._kernel_dir_for(src)
        print(first); print(again); print(cache.private_fallback())
        """)
    env = dict(os.environ, STATICGRAPH_CACHE_DIR=str(root), PYTHONPATH=str(WORKTREE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=WORKTREE,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    first, again, fallback = out.stdout.split()
    assert first.startswith(str(root)) and again.startswith(fallback) and fallback != "None"
    assert "is writable by group and others" in out.stderr


# ---------------------------------------------------------------------------------- memo files
def test_memo_round_trip_merge_and_clear(root, rng):
    pc = PlanCache()
    key = cache_key("memo", str(rng.integers(1 << 62)))
    assert pc.read_memo("parts", key) == {}
    pc.update_memo("parts", key, {"a": [1, "x"]})
    pc.update_memo("parts", key, {"b": {"c": 2}})
    assert pc.read_memo("parts", key) == {"a": [1, "x"], "b": {"c": 2}}
    path = pc.memo_path("parts", key)
    assert path.parent == root / "memo" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert pc.read_memo("parts", cache_key("memo", "another key")) == {}
    assert pc.read_memo("other", key) == {}
    assert pc.info()["bytes"] >= path.stat().st_size
    pc.clear()
    assert not path.exists() and pc.read_memo("parts", key) == {}
    with pytest.raises(ValueError):
        pc.memo_path("../x", key)
    with pytest.raises(ValueError):
        pc.memo_path("x", "not-a-key")


@pytest.mark.parametrize("damage", ["truncated", "items changed", "key changed", "symlink", "not json"])
def test_a_damaged_memo_is_not_served_and_is_rewritten(root, rng, damage):
    pc = PlanCache()
    key = cache_key("memo", str(rng.integers(1 << 62)))
    pc.update_memo("parts", key, {"a": "good"})
    path = pc.memo_path("parts", key)
    data = json.loads(path.read_text())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:20])
    elif damage == "items changed":                                   # its sha256 no longer matches
        data["items"]["a"] = "evil"
        path.write_text(json.dumps(data))
    elif damage == "key changed":
        data["key"] = cache_key("memo", "other")
        path.write_text(json.dumps(data))
    elif damage == "symlink":
        elsewhere = root / "elsewhere.json"
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
    else:
        path.write_bytes(b"\x00\xff")
    with pytest.warns(CacheWarning, match=re.escape(str(path))):
        assert pc.read_memo("parts", key) == {}
    pc.update_memo("parts", key, {"a": "good"})                        # derived again, written back
    assert not path.is_symlink() and pc.read_memo("parts", key) == {"a": "good"}


def test_a_memo_in_a_folder_others_can_write_is_not_read(root, rng):
    pc = PlanCache()
    key = cache_key("memo", str(rng.integers(1 << 62)))
    pc.update_memo("parts", key, {"a": "good"})
    os.chmod(root / "memo", 0o777)
    assert pc.read_memo("parts", key) == {}
    os.chmod(root / "memo", 0o700)
    assert pc.read_memo("parts", key) == {"a": "good"}


# ------------------------------------------------------------------- the kernel wrappers' parts
KERNELS = [("ew_Add", ("float32",) * 3), ("ew_PowInt", ("int64",) * 3), ("conv_fwd", ("float32",) * 4),
           ("softmax_rows", ("float32",) * 2)]


def _fresh_parts(monkeypatch):
    """This process as a new one would be: no parts in memory, nothing derived yet."""
    monkeypatch.setattr(native, "_PARTS", {})
    native._kernel_parts.cache_clear()
    native._wrapper_source.cache_clear()


def _kernels():
    lib = library.load()
    return [(k, d) for k, d in KERNELS if hasattr(lib, k)]


def test_wrapper_parts_come_from_the_memo_and_equal_the_derived_ones(root, monkeypatch):
    kernels = _kernels()
    assert len(kernels) >= 2
    _fresh_parts(monkeypatch)
    derived = []
    derive = native._derive_kernel_parts
    monkeypatch.setattr(native, "_derive_kernel_parts", lambda *a: derived.append(a[1]) or derive(*a))
    sources = [native.wrapper_source(k, d) for k, d in kernels]
    assert sorted(derived) == sorted(k for k, _ in kernels)
    native._save_parts()
    memo = PlanCache().read_memo(native.PARTS_MEMO, native._PARTS["key"])
    assert sorted(memo) == sorted(k for k, _ in kernels)

    _fresh_parts(monkeypatch)                                          # a later process
    monkeypatch.setattr(native, "_derive_kernel_parts", lambda *a: pytest.fail(f"derived {a[1]} again"))
    assert [native.wrapper_source(k, d) for k, d in kernels] == sources


def test_wrapper_parts_are_derived_again_for_other_code_or_a_damaged_memo(root, monkeypatch):
    kernels = _kernels()
    _fresh_parts(monkeypatch)
    sources = [native.wrapper_source(k, d) for k, d in kernels]
    native._save_parts()
    derived = []
    derive = native._derive_kernel_parts

    def counting(*a):
        derived.append(a[1])
        return derive(*a)
    monkeypatch.setattr(native, "_derive_kernel_parts", counting)

    _fresh_parts(monkeypatch)                                          # the library's code changed
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "0" * 64)
    assert [native.wrapper_source(k, d) for k, d in kernels] == sources
    assert len(derived) == len(kernels)
    monkeypatch.undo()
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(root))
    monkeypatch.setattr(native, "_derive_kernel_parts", counting)

    _fresh_parts(monkeypatch)                                          # the memo was altered
    key = cache_key(native.PARTS_MEMO, cache.code_fingerprint(), library.SOURCE_HASH, native.numba_version(),
                    sys.version)
    path = PlanCache().memo_path(native.PARTS_MEMO, key)
    data = json.loads(path.read_text())
    data["items"][kernels[0][0]][4] = "    import os\n"
    path.write_text(json.dumps(data))
    derived.clear()
    with pytest.warns(CacheWarning, match="do not match their sha256"):
        assert [native.wrapper_source(k, d) for k, d in kernels] == sources
    assert len(derived) == len(kernels)


def test_malformed_parts_in_a_memo_are_derived_again(root, monkeypatch):
    kernel, dtypes = _kernels()[0]
    _fresh_parts(monkeypatch)
    source = native.wrapper_source(kernel, dtypes)
    key = native._PARTS["key"]
    PlanCache().update_memo(native.PARTS_MEMO, key, {kernel: ["only", "three", "parts"]})
    _fresh_parts(monkeypatch)
    assert native.wrapper_source(kernel, dtypes) == source


# --------------------------------------------------------------------- keep_code: the code object
BIG = textwrap.dedent('''\
    from numba import njit

    @njit(cache=True)
    def f(x):
        return x * {factor} + 1.0

    DATA = {data!r}
    ''')


def _big_entry(pc, rng, factor=3.0):
    source = BIG.format(factor=factor, data="x" * cache.KEEP_CODE_FROM)
    key = cache_key("keep-code", str(rng.integers(1 << 62)))
    return pc.entry(key, {"big.py": source}, {}), key


def _load(pc, entry, name, monkeypatch=None, compiles=None):
    sys.modules.pop(name, None)
    if monkeypatch is not None:
        real = compile
        monkeypatch.setattr(cache, "compile", lambda *a, **k: compiles.append(a[1]) or real(*a, **k), raising=False)
    return pc.load_module(entry, "big.py", module_name=name, keep_code=True)


def test_kept_code_is_loaded_once_sealed_and_only_then(root, rng, monkeypatch):
    pc = PlanCache()
    entry, key = _big_entry(pc, rng)
    compiles = []
    name = f"_test_keep_code_{key[:12]}"
    module = _load(pc, entry, name, monkeypatch, compiles)
    assert module.f(2.0) == 7.0 and len(compiles) == 1
    code = cache._code_path(entry / "big.py")
    assert code.exists() and oct(code.stat().st_mode & 0o777) == "0o600"
    pc.seal(entry)
    assert f"__pycache__/{code.name}" in json.loads((entry / "numba.json").read_text())["files"]

    monkeypatch.setattr(cache, "_WRITTEN", {})                         # another process: only numba.json vouches
    compiles.clear()
    again = _load(pc, entry, name, monkeypatch, compiles)
    assert again is not module and again.f(2.0) == 7.0 and compiles == []

    code.write_bytes(code.read_bytes()[:-8] + b"tampered")            # not what numba.json records
    compiles.clear()
    with pytest.warns(CacheWarning, match=re.escape(str(code))):
        third = _load(pc, entry, name, monkeypatch, compiles)
    assert third.f(2.0) == 7.0 and len(compiles) == 1
    with pytest.warns(CacheWarning, match=re.escape(str(code)) + " does not match its hash"):
        assert code in pc.verify_compiled(entry) and not code.exists()  # (library.load verifies first)
    _load(pc, entry, name)
    pc.seal(entry)
    monkeypatch.setattr(cache, "_WRITTEN", {})
    compiles.clear()
    assert _load(pc, entry, name, monkeypatch, compiles).f(1.0) == 4.0 and compiles == []


def test_kept_code_of_another_source_or_path_is_not_used(root, rng, monkeypatch):
    pc = PlanCache()
    first, key1 = _big_entry(pc, rng, factor=3.0)
    second, key2 = _big_entry(pc, rng, factor=5.0)
    _load(pc, first, f"_test_keep_code_{key1[:12]}")
    pc.seal(first)
    code1, code2 = cache._code_path(first / "big.py"), cache._code_path(second / "big.py")
    code2.parent.mkdir(exist_ok=True)
    code2.write_bytes(code1.read_bytes())                              # the first source's code, vouched for
    pc.seal(second)
    monkeypatch.setattr(cache, "_WRITTEN", {})
    compiles = []
    module = _load(pc, second, f"_test_keep_code_{key2[:12]}", monkeypatch, compiles)
    assert module.f(2.0) == 11.0 and len(compiles) == 1                # its own source, compiled
    assert module.f.py_func.__code__.co_filename == str(second / "big.py")


def test_small_sources_and_callers_not_asking_keep_no_code(root, rng):
    pc = PlanCache()
    key = cache_key("keep-code", str(rng.integers(1 << 62)))
    entry = pc.entry(key, {"plan.py": BIG.format(factor=2.0, data="")}, {})
    pc.load_module(entry, module_name=f"_test_keep_small_{key[:12]}", keep_code=True)
    big, key2 = _big_entry(pc, rng)
    pc.load_module(big, "big.py", module_name=f"_test_keep_no_{key2[:12]}")
    assert not list((entry / "__pycache__").glob("*.code")) and not list((big / "__pycache__").glob("*.code"))


# ------------------------------------------------------- kernel wrappers: kept code, warm seal
def _exp_plan(rng):
    """A float64 plan of two wrappers (exp, add), run on the native step, and the reference answer."""
    import numpy as np
    import staticgraph as sg
    x = sg.placeholder(sg.float64, (None,), name="x")
    xv = rng.normal(size=7)
    with sg.Session() as sess:
        plan = sess.compile(sg.exp(x) + x, [x]).wait()
        got = plan(xv)
        sources = list(dict.fromkeys(native.wrapper_source(*k) for k in native.wrapper_keys(plan._exe.base.prog)))
    np.testing.assert_allclose(got, np.exp(xv) + xv, rtol=1e-12)
    return sources


def _as_another_process(monkeypatch, sources):
    """Forget the wrappers loaded here and what this process wrote (only numba.json vouches)."""
    monkeypatch.setattr(native, "_WRAPPERS", {})
    monkeypatch.setattr(native, "_BY_KEY", {})
    monkeypatch.setattr(cache, "_WRITTEN", {})
    for src in sources:
        sys.modules.pop(f"sg_native_wrapper_{native.hashlib.sha256(src.encode()).hexdigest()[:16]}", None)


def _spy(monkeypatch, name):
    """Record the first argument of every call of ``cache.<name>`` (a module function)."""
    calls, real = [], getattr(cache, name)
    monkeypatch.setattr(cache, name, lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    return calls


@pytest.mark.parametrize("direct", [False, True], ids=["numba-path", "direct-load"])
def test_wrappers_keep_their_code_and_a_warm_load_seals_nothing(rng, monkeypatch, direct):
    """Numba's path runs each wrapper's kept code object; the direct loader (cached_code) runs none."""
    monkeypatch.setattr(native, "DIRECT_LOADS", direct)
    sources = _exp_plan(rng)
    entries = [PlanCache().path_of(native._entry_key("wrapper", src)) for src in sources]
    codes = [cache._code_path(entry / "native.py") for entry in entries]
    for entry, code in zip(entries, codes):
        assert code.exists() and f"__pycache__/{code.name}" in json.loads((entry / "numba.json").read_text())["files"]

    _as_another_process(monkeypatch, sources)
    compiles = []
    real = compile
    monkeypatch.setattr(cache, "compile", lambda *a, **k: compiles.append(a[1]) or real(*a, **k), raising=False)
    sealed = _spy(monkeypatch, "_seal_folder")
    loads = native.STATS["kernel_loads"]
    _exp_plan(rng)
    assert native.STATS["kernel_loads"] == loads + len(sources)        # from the disk cache, as before
    assert not [c for c in compiles if c.endswith("native.py")]       # their code objects, not their text
    assert not set(map(str, entries)) & set(map(str, sealed))          # nothing written: records left as they are


def test_a_tampered_wrapper_code_file_is_deleted_and_compiled_again(rng, monkeypatch):
    monkeypatch.setattr(native, "DIRECT_LOADS", False)     # the code object is run on Numba's path only
    sources = _exp_plan(rng)
    entry = PlanCache().path_of(native._entry_key("wrapper", sources[0]))
    code = cache._code_path(entry / "native.py")
    blob = code.read_bytes()
    code.write_bytes(blob[:-8] + bytes(b ^ 0xFF for b in blob[-8:]))  # same size, other bytes
    _as_another_process(monkeypatch, sources)
    compiles = []
    real = compile
    monkeypatch.setattr(cache, "compile", lambda *a, **k: compiles.append(a[1]) or real(*a, **k), raising=False)
    with pytest.warns(CacheWarning, match=re.escape(str(code)) + " does not match its hash"):
        _exp_plan(rng)                                                 # right answers
    assert compiles.count(str(entry / "native.py")) == 1
    assert code.read_bytes() == blob                                  # written again (the same code) ...
    record = json.loads((entry / "numba.json").read_text())["files"][f"__pycache__/{code.name}"]
    assert record["sha256"] == cache.hashlib.sha256(blob).hexdigest()  # ... and recorded


# ------------------------------------------------------------- compiling(): which folders are sealed
def _numba_file(entry, name="plan.f-1.py311.nbi", data=b"index"):
    path = entry / "__pycache__" / name
    path.write_bytes(data)
    return path


def test_compiling_seals_what_this_process_wrote_and_only_that(root, rng, monkeypatch):
    pc = PlanCache()
    entry = pc.entry(cache_key("seal", str(rng.integers(1 << 62))), {"plan.py": "x = 1\n"}, {})
    written = _numba_file(entry)
    cache._note_written(written)                     # as Numba's save does, outside any block
    with pc.compiling(entry):
        pass
    record = json.loads((entry / "numba.json").read_text())["files"]
    assert list(record) == ["__pycache__/plan.f-1.py311.nbi"]

    sealed = _spy(monkeypatch, "_seal_folder")
    with pc.compiling(entry):                        # a warm load: nothing written, nothing rejected
        pass
    assert sealed == []

    with pc.compiling(entry):
        cache._note_written(_numba_file(entry, "plan.f-1.py311.1.nbc", b"data"))
    assert sealed == [entry]
    assert sorted(json.loads((entry / "numba.json").read_text())["files"]) == [
        "__pycache__/plan.f-1.py311.1.nbc", "__pycache__/plan.f-1.py311.nbi"]

    monkeypatch.setattr(cache, "_WRITTEN", {})
    written.write_bytes(b"INDEX")                    # a recorded file tampered: rejected, record updated
    with pytest.warns(CacheWarning, match=re.escape(str(written))):
        with pc.compiling(entry):
            assert not written.exists()
    assert sealed == [entry, entry]
    assert list(json.loads((entry / "numba.json").read_text())["files"]) == ["__pycache__/plan.f-1.py311.1.nbc"]


def test_a_failed_seal_leaves_the_folder_to_be_sealed_again(root, rng, monkeypatch):
    pc = PlanCache()
    entry = pc.entry(cache_key("seal", str(rng.integers(1 << 62))), {"plan.py": "x = 1\n"}, {})
    cache._note_written(_numba_file(entry))

    def fail(folder):
        raise RuntimeError("seal failed")
    monkeypatch.setattr(cache, "_seal_files", fail)
    with pytest.raises(RuntimeError, match="seal failed"):
        with pc.compiling(entry):
            pass
    monkeypatch.undo()
    assert Path(os.path.realpath(entry)) in cache._DIRTY
    with pc.compiling(entry):
        pass
    assert list(json.loads((entry / "numba.json").read_text())["files"]) == ["__pycache__/plan.f-1.py311.nbi"]
    assert Path(os.path.realpath(entry)) not in cache._DIRTY


def test_the_locator_probes_a_folder_again_once_its_stat_changes(tmp_path, monkeypatch):
    import tempfile
    cache.install_kernel_cache_locator()
    folder = tmp_path / "numba"
    locator = cache._INSTALLED["locator"](_numba_file, __file__, folder)
    probes = []
    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: probes.append(k["dir"]) or real(*a, **k))
    locator.ensure_cache_path()
    locator.ensure_cache_path()
    assert probes == [str(folder)] and folder.is_dir()
    os.chmod(folder, 0o755)                                            # another mode
    locator.ensure_cache_path()
    folder.rmdir()                                                     # gone: made again, probed
    locator.ensure_cache_path()
    assert probes == [str(folder)] * 3 and folder.is_dir()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_a_module_run_by_load_module_locates_its_kernels_once(root, rng, monkeypatch):
    """Its @njit(cache=True) functions all cache in its entry's __pycache__; the folder is derived
    once per run of the module, not once per function, and not remembered after the run."""
    source = "from numba import njit\n" + "".join(
        f"\n\n@njit(cache=True)\ndef f{i}(x):\n    return x + {i}\n" for i in range(3))
    pc = PlanCache()
    key = cache_key("locate-once", str(rng.integers(1 << 62)))
    entry = pc.entry(key, {"plan.py": source}, {})
    derived = _spy(monkeypatch, "_numba_cache_dir_for")
    module = pc.load_module(entry, module_name=f"_test_locate_once_{key[:12]}")
    assert derived == [str(entry / "plan.py")] and cache._EXECUTING == {}
    real = Path(os.path.realpath(entry / "__pycache__"))
    assert {module.f0._cache._cache_path, module.f2._cache._cache_path} == {str(real)}
    with pc.compiling(entry):
        assert module.f2(1.0) == 3.0
    assert list((entry / "__pycache__").glob("plan.f2-*.nbi"))
