"""The on-disk plan cache (compiler/cache.py) and ``python -m staticgraph cache info|clear``."""
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numba
import pytest

from compiler import cache
from compiler.cache import CacheError, CacheWarning, PlanCache, cache_key

WORKTREE = Path(__file__).resolve().parent.parent
PLAN_SOURCE = textwrap.dedent("""\
    from numba import njit

    @njit(cache=True)
    def step(x):
        return x * {factor} + 1.0
    """)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A fresh cache root (not yet created) that STATICGRAPH_CACHE_DIR points at; counters reset."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(path))
    cache.STATS.reset()
    return path


def subprocess_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(WORKTREE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(**env), cwd=WORKTREE, timeout=120)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def new_key(rng, tag="plan"):
    return cache_key(tag, str(rng.integers(1 << 62)))


# ------------------------------------------------------------------------------------ keys, root
def test_cache_key_is_canonical_and_typed():
    assert cache_key("a", "b") == cache_key("a", "b")
    assert re.fullmatch(r"[0-9a-f]{64}", cache_key("a"))
    assert cache_key("ab", "c") != cache_key("a", "bc")          # parts are length-prefixed
    assert cache_key("ab") != cache_key(b"ab")                   # and type-tagged
    assert cache_key() != cache_key("")
    with pytest.raises(TypeError, match=r"cache_key part 1 is a dict"):
        cache_key("graph", {"a": 1})


def test_cache_key_same_under_two_hash_seeds():
    parts = ["graph: MatMul(x, w) -> Relu", "numba 0.68.1", "target=cpu", "\u00e9t\u00e9"]
    code = (f"from compiler.cache import cache_key; import json; "
            f"print(json.dumps([cache_key(*{parts!r}), hash('staticgraph')]))")
    results = []
    for seed in ("1", "2"):
        proc = run_python(code, PYTHONHASHSEED=seed)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout))
    assert results[0][1] != results[1][1], "the two seeds should change str hashes"
    assert results[0][0] == results[1][0] == cache_key(*parts)


def test_cache_root_env_var_is_read_when_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STATICGRAPH_CACHE_DIR", raising=False)
    assert cache.cache_root(create=False) == tmp_path / "home" / ".cache" / "staticgraph"
    assert not (tmp_path / "home").exists()
    default = cache.cache_root()
    assert default.is_dir() and mode(default) == 0o700
    assert mode(tmp_path / "home" / ".cache") == 0o700 and mode(tmp_path / "home") == 0o700
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "a"))
    assert cache.cache_root() == tmp_path / "a"
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "b"))
    assert PlanCache().path_of("ab" * 8).parent.parent.parent == tmp_path / "b"


def test_root_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(CacheError, match=re.escape(str(blocker)) + ".*not a folder"):
        PlanCache().entry(cache_key("k"), {"plan.py": "x = 1\n"}, {})
    assert PlanCache().info()["exists"] is False


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_folders_are_private_whatever_the_umask(tmp_path, monkeypatch, umask):
    base = tmp_path / "deep" / "er"
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(base / "cache"))
    old = os.umask(umask)
    try:
        pc = PlanCache()
        path = pc.entry(cache_key("umask", str(umask)), {"plan.py": "x = 1\n"}, {"umask": umask})
        pc.seal(path)
    finally:
        os.umask(old)
    created = [p for p in (tmp_path / "deep").rglob("*")] + [tmp_path / "deep"]
    folders = [p for p in created if p.is_dir()]
    assert {path, path / "__pycache__", base / "cache" / "plans"} <= set(folders)
    for folder in folders:
        assert mode(folder) == 0o700, folder
    for file in (p for p in created if p.is_file()):
        assert mode(file) & 0o077 == 0, file


# ------------------------------------------------------------------------------------- entries
def test_entry_miss_then_hit(root, rng):
    key = new_key(rng)
    pc = PlanCache()
    files = {"plan.py": PLAN_SOURCE.format(factor=2.0), "notes.txt": "caf\u00e9\n"}
    path = pc.entry(key, files, {"graph": "g1", "target": "cpu"})
    assert path == root / "plans" / key[:2] / key
    assert (path / "notes.txt").read_text(encoding="utf-8") == files["notes.txt"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["key"] == key and manifest["meta"] == {"graph": "g1", "target": "cpu"}
    assert sorted(manifest["files"]) == ["notes.txt", "plan.py"]
    assert cache.STATS.snapshot()["misses"] == 1 and cache.STATS.hits == 0
    assert pc.entry(key, files, {"graph": "g1", "target": "cpu"}) == path
    assert PlanCache(root).entry(key, files, {}) == path            # explicit root, same place
    other = pc.entry(new_key(rng), files, {})
    assert other != path
    assert (cache.STATS.hits, cache.STATS.misses, cache.STATS.rebuilt) == (2, 2, 0)
    assert pc.info()["entries"] == 2


def _truncate(path):
    data = (path / "plan.py").read_bytes()
    (path / "plan.py").write_bytes(data[: len(data) // 2])


def _flip_byte(path):
    data = bytearray((path / "plan.py").read_bytes())
    data[5] ^= 1
    (path / "plan.py").write_bytes(bytes(data))


def _other_key_manifest(path):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["key"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(manifest))


def _replace_with_file(path):
    import shutil
    shutil.rmtree(path)
    path.write_text("not a folder")


def _symlinked_source(path):
    outside = path.parent.parent.parent.parent / "outside.py"
    outside.write_bytes((path / "plan.py").read_bytes())
    (path / "plan.py").unlink()
    (path / "plan.py").symlink_to(outside)


DAMAGES = {
    "truncated source": (_truncate, "plan.py does not match its hash"),
    "flipped byte": (_flip_byte, "plan.py does not match its hash"),
    "source missing": (lambda p: (p / "plan.py").unlink(), "plan.py is unreadable"),
    "partial (no manifest)": (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
    "garbage manifest": (lambda p: (p / "manifest.json").write_bytes(b"\x80\x04garbage"),
                         "unreadable manifest.json .*manifest.json"),
    "foreign format": (lambda p: (p / "manifest.json").write_text('{"format": 99}'),
                       "foreign manifest.json .*manifest.json"),
    "other key's manifest": (_other_key_manifest, "foreign manifest.json .*manifest.json"),
    "foreign file": (lambda p: (p / "evil.py").write_text("import os\n"), "foreign file .*evil.py"),
    "not a folder": (_replace_with_file, "is not a folder"),
    "symlinked source": (_symlinked_source, "plan.py is a symlink"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_corrupt_partial_or_foreign_entry_is_rebuilt(root, rng, damage):
    spoil, message = DAMAGES[damage]
    key = new_key(rng)
    files = {"plan.py": PLAN_SOURCE.format(factor=float(rng.integers(1, 9)))}
    pc = PlanCache()
    path = pc.entry(key, files, {"n": 1})
    spoil(path)
    with pytest.warns(CacheWarning, match=message) as record:
        assert pc.entry(key, files, {"n": 1}) == path
    assert any(str(path) in str(w.message) for w in record), "the warning names the entry"
    assert (path / "plan.py").read_text() == files["plan.py"] and not (path / "plan.py").is_symlink()
    assert sorted(os.listdir(path)) == ["__pycache__", "manifest.json", "plan.py"]
    assert (cache.STATS.rebuilt, cache.STATS.misses) == (1, 2)
    assert pc.entry(key, files, {"n": 1}) == path and cache.STATS.hits == 1
    assert pc.info()["temp"] == 0


def test_same_key_with_other_content_is_rebuilt(root, rng):
    key = new_key(rng)
    pc = PlanCache()
    path = pc.entry(key, {"plan.py": "x = 1\n"}, {})
    with pytest.warns(CacheWarning, match="records other files or content"):
        pc.entry(key, {"plan.py": "x = 2\n"}, {})
    assert (path / "plan.py").read_text() == "x = 2\n"


def test_bad_arguments_are_named(root):
    pc = PlanCache()
    key = cache_key("k")
    with pytest.raises(ValueError, match="cache key 'KEY!' is not a lowercase hex digest"):
        pc.entry("KEY!", {"plan.py": ""}, {})
    with pytest.raises(ValueError, match=r"file name '\.\./x\.py' is not a plain file name"):
        pc.entry(key, {"../x.py": ""}, {})
    with pytest.raises(ValueError, match="file name 'manifest.json'"):
        pc.entry(key, {"manifest.json": "{}"}, {})
    with pytest.raises(TypeError, match="file 'plan.py' content is a int"):
        pc.entry(key, {"plan.py": 3}, {})
    with pytest.raises(TypeError, match=f"manifest of cache entry {key} is not JSON data"):
        pc.entry(key, {"plan.py": ""}, {"obj": object()})
    assert not (root / "plans").exists() or pc.info()["entries"] == 0


def test_rename_that_loses_the_race_uses_the_winner(root, rng):
    key = new_key(rng)
    pc = PlanCache()
    files = {"plan.py": "x = 1\n"}
    expected = {"plan.py": cache.hashlib.sha256(b"x = 1\n").hexdigest()}
    dest = pc.path_of(key)
    cache.make_private_dirs(dest.parent)
    mine = pc._write_temp(dest, key, {"plan.py": b"x = 1\n"}, expected, {})
    theirs = pc._write_temp(dest, key, {"plan.py": b"x = 1\n"}, expected, {})
    os.rename(theirs, dest)                                # another writer renames first
    assert pc._install(mine, dest, key, expected) == dest
    assert not mine.exists() and pc.info()["temp"] == 0
    assert pc.entry(key, files, {}) == dest and cache.STATS.hits == 1


def test_killed_writer_leaves_only_temp_folders(root, rng):
    key, other, live = new_key(rng), new_key(rng), new_key(rng)
    pc = PlanCache()
    files = {"plan.py": "x = 1\n"}
    shard = pc.path_of(key).parent
    cache.make_private_dirs(shard)
    dead = shard / f".tmp-{key}-999999-deadbeef"            # writer of this key killed mid-write
    stale = shard / f".tmp-{other}-999998-deadbeef"          # of another key, long ago
    fresh = shard / f".tmp-{live}-999997-cafecafe"           # of another key, maybe still writing
    for folder in (dead, stale, fresh):
        folder.mkdir()
        (folder / "plan.py").write_text("x = ")
    old = time.time() - 2 * cache.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    info = pc.info()
    assert (info["entries"], info["temp"]) == (0, 3)
    pc.entry(key, files, {})
    assert not dead.exists() and not stale.exists() and fresh.exists()
    assert (pc.info()["entries"], pc.info()["temp"]) == (1, 1)
    pc.clear()
    assert pc.info()["temp"] == 0 and not (root / "plans").exists()


def test_threads_building_one_key_share_one_build(root, rng):
    import threading
    key = new_key(rng)
    files = {"plan.py": f"x = {rng.integers(1000)}\n"}
    start, paths = threading.Barrier(6), []

    def build():
        start.wait()
        paths.append(PlanCache().entry(key, files, {"threads": True}))

    threads = [threading.Thread(target=build) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(paths) == 6 and len(set(paths)) == 1
    assert (cache.STATS.misses, cache.STATS.hits) == (1, 5)
    assert PlanCache().info() | {"bytes": 0} == {"path": str(root), "exists": True, "entries": 1,
                                                 "kernel_files": 0, "temp": 0, "bytes": 0}


def test_load_module_checks_the_bytes_it_runs(root, rng):
    key = new_key(rng)
    pc = PlanCache()
    path = pc.entry(key, {"plan.py": "VALUE = 41 + 1\n"}, {})
    module = pc.load_module(path)
    assert module.VALUE == 42 and sys.modules[f"_staticgraph_plan_{key}"] is module
    assert pc.load_module(path) is module                   # same bytes: same module object
    (path / "plan.py").write_text("VALUE = 0\n")
    with pytest.raises(CacheError, match=re.escape(str(path / "plan.py")) + " does not match"):
        pc.load_module(path)
    sys.modules.pop(f"_staticgraph_plan_{key}")


# -------------------------------------------------------------------------- Numba's own files
def _fresh_module(pc, path, tag):
    """The entry's plan as a new module object, so Numba builds a new dispatcher for it (in this
    process only: code cached by Numba refers to the module name it was compiled under)."""
    return pc.load_module(path, module_name=f"_test_cache_{path.name[:12]}_{tag}")


def test_numba_files_are_sealed_and_a_tampered_index_is_never_unpickled(root, rng):
    factor = float(rng.integers(2, 50))
    key = new_key(rng)
    pc = PlanCache()
    path = pc.entry(key, {"plan.py": PLAN_SOURCE.format(factor=factor)}, {})
    first = _fresh_module(pc, path, "a")
    with pc.compiling(path):
        assert first.step(3.0) == 3.0 * factor + 1.0
    compiled = sorted(p.name for p in (path / "__pycache__").iterdir())
    assert any(n.endswith(".nbi") for n in compiled) and any(n.endswith(".nbc") for n in compiled)
    record = json.loads((path / "numba.json").read_text())["files"]
    assert sorted(record) == [f"__pycache__/{n}" for n in compiled]
    assert cache.STATS.compiles == 1
    index = next((path / "__pycache__").glob("*.nbi"))

    # a garbage index really breaks Numba's own reader ...
    index.write_bytes(b"\x80\x04not a pickle at all")
    numba_reader = cache._INSTALLED["original_index_file"](str(index.parent), index.name[:-4], None)
    with pytest.raises(Exception, match="pickle|unpickl|load|invalid"):
        numba_reader._load_index()
    # ... but a compile outside any compiling() block ignores it (naming it) and recompiles
    with pytest.warns(CacheWarning, match=re.escape(str(index)) + " does not match .* ignored"):
        second = _fresh_module(pc, path, "b")
        assert second.step(2.0) == 2.0 * factor + 1.0
    assert sum(second.step.stats.cache_misses.values()) == 1

    # inside compiling(), verification deletes a tampered file before Numba looks at it
    index.write_bytes(b"\x80\x04tampered again")
    (path / "__pycache__" / "stray.nbc").write_bytes(b"junk")       # unrecorded: dropped quietly
    with pytest.warns(CacheWarning, match=re.escape(str(index)) + " does not match its hash"):
        with pc.compiling(path):
            assert not index.exists() and not (path / "__pycache__" / "stray.nbc").exists()
            third = _fresh_module(pc, path, "c")
            assert third.step(4.0) == 4.0 * factor + 1.0
    assert sum(third.step.stats.cache_misses.values()) == 1
    assert cache.STATS.compiles == 2 and cache.STATS.rejected == 3

    # sealed again: a new dispatcher now loads from the cache without compiling
    with pc.compiling(path):
        fourth = _fresh_module(pc, path, "d")
        assert fourth.step(5.0) == 5.0 * factor + 1.0
    assert sum(fourth.step.stats.cache_hits.values()) == 1 and cache.STATS.compiles == 2


def test_unreadable_record_deletes_all_numba_files(root, rng):
    key = new_key(rng)
    pc = PlanCache()
    path = pc.entry(key, {"plan.py": "x = 1\n"}, {})
    (path / "__pycache__" / "plan.f-1.py311.nbi").write_bytes(b"index")
    (path / "__pycache__" / "plan.f-1.py311.1.nbc").write_bytes(b"data")
    pc.seal(path)
    assert pc.verify_compiled(path) == []
    (path / "numba.json").write_text("{ truncated")
    with pytest.warns(CacheWarning, match="unreadable numba.json " + re.escape(str(path / "numba.json"))):
        removed = pc.verify_compiled(path)
    assert sorted(p.name for p in removed) == ["plan.f-1.py311.1.nbc", "plan.f-1.py311.nbi"]
    assert list((path / "__pycache__").iterdir()) == []
    assert pc.entry(key, {"plan.py": "x = 1\n"}, {}) == path           # sources still verify


def test_compiling_covers_several_entries(root, rng):
    pc = PlanCache()
    plan = pc.entry(new_key(rng, "plan"), {"plan.py": "x = 1\n"}, {})
    library = pc.entry(new_key(rng, "library"), {"sg_kernels.py": "y = 2\n"}, {})
    for folder in (plan, library):
        (folder / "__pycache__" / "left.nbi").write_bytes(b"by a killed process")
    with pc.compiling(plan, library):
        assert not (plan / "__pycache__" / "left.nbi").exists()
        assert not (library / "__pycache__" / "left.nbi").exists()
        (library / "__pycache__" / "sg_kernels.k-3.py311.nbi").write_bytes(b"index")  # "Numba"
    assert cache.STATS.compiles == 1 and cache.STATS.rejected == 2
    record = json.loads((library / "numba.json").read_text())["files"]
    assert list(record) == ["__pycache__/sg_kernels.k-3.py311.nbi"]
    with pc.compiling(library, plan):                                   # nothing new: no compile
        pass
    assert cache.STATS.compiles == 1 and pc.verify_compiled(library) == []


KERNEL_SOURCE = textwrap.dedent("""\
    from numba import njit

    @njit(cache=True)
    def triple_plus(x, y):
        return 3 * x + y
    """)


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_kernel_cache_files_live_under_the_root(root, tmp_path, monkeypatch, rng):
    package = tmp_path / "src" / "mykernels"
    package.mkdir(parents=True)
    (package / "generic.py").write_text(KERNEL_SOURCE)
    elsewhere = tmp_path / "numba_cache_dir"
    monkeypatch.setattr(cache, "KERNEL_SOURCE_DIRS", cache.KERNEL_SOURCE_DIRS + [tmp_path / "src"])
    monkeypatch.setattr(cache, "_BOUND_KERNEL_DIRS", list(cache._BOUND_KERNEL_DIRS))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(elsewhere))   # ours wins over NUMBA_CACHE_DIR
    cache.install_kernel_cache_locator()
    cache.install_kernel_cache_locator()                            # idempotent
    from numba.core import caching
    assert sum(c.__name__ == "CacheLocator" for c in caching.CacheImpl._locator_classes) == 1

    old_umask = os.umask(0)
    try:
        name = f"mykernels_generic_{rng.integers(1 << 30)}"
        kernels = _import_file(package / "generic.py", name)
        kdir = cache.kernel_cache_dir(root).resolve()
        assert cache.bound_kernel_dirs()[-1] == kdir
        x, y = float(rng.integers(1, 100)), float(rng.integers(1, 100))
        with PlanCache().compiling():
            assert kernels.triple_plus(x, y) == 3 * x + y
    finally:
        os.umask(old_umask)
    files = sorted(p.relative_to(kdir).as_posix() for p in kdir.rglob("*") if p.is_file())
    assert any(f.startswith("src.mykernels/generic.triple_plus-") and f.endswith(".nbi") for f in files)
    assert any(f.endswith(".nbc") for f in files) and "numba.json" in files
    assert not (package / "__pycache__").exists() and not elsewhere.exists()
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        assert mode(folder) == 0o700, folder

    index = next(kdir.rglob("*.nbi"))
    index.write_bytes(b"\x80\x04 tampered")
    again = _import_file(package / "generic.py", name + "_again")   # a new dispatcher
    with pytest.warns(CacheWarning, match=re.escape(str(index))):
        with PlanCache().compiling():
            assert again.triple_plus(y, x) == 3 * y + x
    assert sum(again.triple_plus.stats.cache_misses.values()) == 1
    assert index.exists() and cache.verify_kernels() == []          # rewritten and resealed


# ------------------------------------------------------------------------ several processes
WORKER = textwrap.dedent("""\
    import json, os, sys, time
    from pathlib import Path
    from compiler import cache
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.005)
    pc = cache.PlanCache()
    key = cache.cache_key("concurrent plan", sys.argv[2])
    path = pc.entry(key, {"plan.py": sys.argv[3]}, {"graph": "concurrent"})
    module = pc.load_module(path)
    with pc.compiling(path):
        value = module.step(float(sys.argv[4]))
    print(json.dumps({"value": value, "stats": cache.STATS.snapshot(), "path": str(path)}))
    """)


def test_concurrent_compiles_both_succeed_and_a_later_process_hits(root, tmp_path, rng):
    factor, x = float(rng.integers(2, 50)), float(rng.integers(1, 50))
    tag = str(rng.integers(1 << 62))
    source = PLAN_SOURCE.format(factor=factor)
    go = tmp_path / "go"
    args = [sys.executable, "-c", WORKER, str(go), tag, source, str(x)]
    env = subprocess_env()
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=WORKTREE) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    results = [json.loads(out) for out, _ in outs]
    assert [r["value"] for r in results] == [x * factor + 1.0] * 2
    assert results[0]["path"] == results[1]["path"]
    # serialised by the key's lock: one built and compiled, the other found both in the cache
    assert sorted(r["stats"]["misses"] for r in results) == [0, 1]
    assert sorted(r["stats"]["compiles"] for r in results) == [0, 1]
    assert PlanCache().info()["temp"] == 0

    # this process finds entry and compiled code from the others: no compile here
    cache.STATS.reset()
    pc = PlanCache()
    path = pc.entry(cache_key("concurrent plan", tag), {"plan.py": source}, {"graph": "concurrent"})
    module = pc.load_module(path)        # the default name: the one the writers' code refers to
    with pc.compiling(path):
        assert module.step(x + 1.0) == (x + 1.0) * factor + 1.0
    assert sum(module.step.stats.cache_hits.values()) == 1
    sys.modules.pop(module.__name__)
    assert cache.STATS.snapshot() == {"hits": 1, "misses": 0, "rebuilt": 0, "rejected": 0, "compiles": 0}


# ----------------------------------------------------------------------------- info / clear
def cli(*args, cache_dir):
    return subprocess.run([sys.executable, "-m", "staticgraph", *args], capture_output=True, text=True,
                          env=subprocess_env(STATICGRAPH_CACHE_DIR=str(cache_dir)), cwd=WORKTREE,
                          timeout=120)


def test_cli_on_missing_and_empty_cache(tmp_path):
    missing = tmp_path / "missing"
    proc = cli("cache", "info", cache_dir=missing)
    assert proc.returncode == 0, proc.stderr
    assert f"cache folder: {missing} (missing)" in proc.stdout and "plan entries: 0" in proc.stdout
    proc = cli("cache", "clear", cache_dir=missing)
    assert proc.returncode == 0, proc.stderr
    assert not missing.exists()


def test_cli_on_filled_cache(root, rng):
    pc = PlanCache()
    for i in range(3):
        pc.entry(new_key(rng), {"plan.py": f"x = {i}\n"}, {})
    (root / "keep.txt").write_text("not ours")
    info = pc.info()
    assert (info["entries"], info["exists"]) == (3, True) and info["bytes"] > 0
    proc = cli("cache", "info", cache_dir=root)
    assert proc.returncode == 0, proc.stderr
    assert f"cache folder: {root}\n" in proc.stdout and "plan entries: 3" in proc.stdout
    assert f"({info['bytes']} bytes)" in proc.stdout
    proc = cli("cache", "clear", cache_dir=root)
    assert proc.returncode == 0, proc.stderr
    assert "removed 3 plan entries" in proc.stdout
    assert pc.info()["entries"] == 0 and pc.info()["bytes"] == 0
    assert root.is_dir() and (root / "keep.txt").read_text() == "not ours"   # only our folders go
    assert cli("cache", "info", cache_dir=root).returncode == 0


def test_cli_rejects_unknown_action(tmp_path):
    proc = cli("cache", "purge", cache_dir=tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'purge'" in proc.stderr
