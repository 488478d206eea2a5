"""The compile cache trusts only folders no one else can write into (compiler/cache.py,
``trust_problem``/``usable_root``), and checks and unpickles the same bytes (issue 27)."""
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler import cache
from compiler.cache import CacheError, CacheWarning, PlanCache, cache_key

WORKTREE = Path(__file__).resolve().parent.parent
PLAN = textwrap.dedent("""\
    from numba import njit

    @njit(cache=True)
    def step(x):
        return x * {factor} + 1.0
    """)
OTHER_UID = 65534          # "nobody"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a folder owned by another uid "
                                                          "(os.chown) needs root")


class Planted:
    """Unpickling it creates ``path``: proof that planted code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(index: Path, marker: Path) -> None:
    """What an attacker who can write the folder does: a malicious Numba index, re-hashed in numba.json."""
    data = pickle.dumps(Planted(marker))
    index.write_bytes(data)
    entry = index.parent.parent
    record = json.loads((entry / "numba.json").read_text())
    record["files"][f"__pycache__/{index.name}"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (entry / "numba.json").write_text(json.dumps(record))


def _compiled_entry(pc, key, source):
    """A legitimate entry, compiled and sealed by the owner; returns (entry, its Numba index)."""
    path = pc.entry(key, {"plan.py": source}, {})
    module = pc.load_module(path, module_name=f"_test_trust_{key[:12]}_owner")
    with pc.compiling(path):
        module.step(1.0)
    return path, next((path / "__pycache__").glob("*.nbi"))


def _listing(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _chmod_777(root, entry):
    os.chmod(root, 0o777)


def _plans_of_other_uid(root, entry):
    os.chown(root / "plans", OTHER_UID, OTHER_UID)


def _pycache_of_other_uid(root, entry):
    os.chown(entry / "__pycache__", OTHER_UID, OTHER_UID)


@pytest.mark.parametrize("attack", [
    pytest.param(_chmod_777, id="root 0777"),
    pytest.param(_plans_of_other_uid, id="plans owned by another uid", marks=needs_root),
    pytest.param(_pycache_of_other_uid, id="__pycache__ owned by another uid", marks=needs_root),
    pytest.param(None, id="root is a symlink to a world-writable folder"),
])
def test_folder_others_can_write_is_refused_and_what_was_planted_never_runs(tmp_path, monkeypatch, rng, attack):
    real = tmp_path / "real"
    root = real if attack is not None else tmp_path / "private" / "link"
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(real))
    factor = float(rng.integers(2, 50))
    key = cache_key("trust", str(rng.integers(1 << 62)))
    pc = PlanCache()
    entry, index = _compiled_entry(pc, key, PLAN.format(factor=factor))
    marker = tmp_path / "planted-code-ran"
    _plant(index, marker)
    if attack is None:
        os.chmod(real, 0o777)
        root.parent.mkdir(mode=0o700)
        root.symlink_to(real)
        monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(root))
    else:
        attack(real, entry)
    before = _listing(real)

    with pytest.warns(CacheWarning, match=f"not using {re.escape(str(root))}: .*"
                                          f"(owned by uid {OTHER_UID}|writable by)"):
        victim = pc.entry(key, {"plan.py": PLAN.format(factor=factor)}, {})
    module = pc.load_module(victim, module_name=f"_test_trust_{key[:12]}_victim")
    with pc.compiling(victim):
        assert module.step(3.0) == 3.0 * factor + 1.0
    assert not marker.exists()
    assert victim.parents[2] == cache.private_fallback() != real
    assert sum(module.step.stats.cache_misses.values()) == 1      # compiled, nothing loaded
    assert _listing(real) == before                                # nothing written into it
    assert cache.cache_root() == cache.private_fallback()          # refused for the rest of the process


def test_a_file_swapped_between_check_and_load_is_not_what_is_loaded(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    factor = float(rng.integers(2, 50))
    key = cache_key("swap", str(rng.integers(1 << 62)))
    pc = PlanCache()
    entry, index = _compiled_entry(pc, key, PLAN.format(factor=factor))
    marker = tmp_path / "planted-code-ran"
    checked = cache._checked_read

    def check_then_swap(path):    # the attacker's moment: right after the bytes were checked
        result = checked(path)
        if path.suffix == ".nbi":
            path.write_bytes(pickle.dumps(Planted(marker)))
        return result
    monkeypatch.setattr(cache, "_checked_read", check_then_swap)
    module = pc.load_module(entry, module_name=f"_test_trust_{key[:12]}_swap")
    with pc.compiling(entry):
        assert module.step(2.0) == 2.0 * factor + 1.0
    assert sum(module.step.stats.cache_hits.values()) == 1        # loaded: the checked bytes
    assert not marker.exists()


def test_load_module_checks_against_the_hash_this_process_asked_for(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    key = cache_key("manifest", str(rng.integers(1 << 62)))
    pc = PlanCache()
    entry = pc.entry(key, {"plan.py": "VALUE = 1\n"}, {})
    marker = tmp_path / "planted-code-ran"
    evil = f"open({str(marker)!r}, 'w')\nVALUE = 1\n".encode()
    (entry / "plan.py").write_bytes(evil)                           # and the manifest re-hashed
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"]["plan.py"] = hashlib.sha256(evil).hexdigest()
    (entry / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match=re.escape(str(entry / "plan.py")) + " does not match the hash "
                                         "this process recorded"):
        pc.load_module(entry, module_name=f"_test_trust_{key[:12]}")
    assert not marker.exists()


def test_trust_problem_names_folder_and_reason(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir(mode=0o700)
    assert cache.trust_problem(folder) is None
    os.chmod(folder, 0o720)
    assert cache.trust_problem(folder) == f"{folder} is writable by group (mode 0720)"
    os.chmod(folder, 0o700)
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o777)                # not sticky: whoever can write it can swap f
    inner = tmp_path / "open" / "f"
    inner.mkdir(mode=0o700)
    assert cache.trust_problem(inner) == f"{tmp_path / 'open'}, a folder above {inner}, is writable by others and not sticky"
    os.chmod(tmp_path / "open", 0o1777)               # sticky, like /tmp: fine
    assert cache.trust_problem(inner) is None
    assert cache.trust_problem(tmp_path / "missing") is None


def test_kernel_folders_of_a_refused_root_are_not_used(tmp_path):
    """A subprocess: the library's kernels bind their Numba folder at import."""
    root = tmp_path / "cache"
    (root / "kernels").mkdir(parents=True)
    os.chmod(root / "kernels", 0o777)
    code = ("from compiler import cache; from compiler.backends.cpu.kernels import array; "
            "print(cache.private_fallback()); print(*cache.bound_kernel_dirs(), sep='\\n')")
    env = dict(os.environ, STATICGRAPH_CACHE_DIR=str(root), PYTHONPATH=str(WORKTREE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=WORKTREE, timeout=300)
    assert out.returncode == 0, out.stderr
    fallback, *bound = out.stdout.split()
    assert bound and all(d.startswith(fallback) for d in bound)
    assert re.search(f"not using {re.escape(str(root))}: {re.escape(str(root / 'kernels'))} is writable "
                     f"by group and others", out.stderr)
    assert not os.path.exists(fallback)               # removed at exit
    assert os.listdir(root / "kernels") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder owned by another uid (os.chown) needs root")
def test_load_module_refuses_an_entry_below_a_folder_of_another_uid(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    pc = PlanCache()
    entry = pc.entry(cache_key("other", str(rng.integers(1 << 62))), {"plan.py": "VALUE = 1\n"}, {})
    os.chown(entry.parent, OTHER_UID, OTHER_UID)            # the shard: its owner could swap the entry
    with pytest.raises(CacheError, match=f"will not run code from .*: {re.escape(str(entry.parent))} is owned "
                                         f"by uid {OTHER_UID}"):
        pc.load_module(entry, module_name="_test_trust_other_shard")


def test_compile_workers_share_the_fallback_folder(tmp_path, monkeypatch):
    root = tmp_path / "open"
    root.mkdir()
    os.chmod(root, 0o777)
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(root))
    from compiler.backends.cpu import native
    with pytest.warns(CacheWarning, match=f"not using {re.escape(str(root))}"):
        fallback = cache.cache_root()
    assert fallback == cache.private_fallback() and fallback != root
    assert native._worker_env()["STATICGRAPH_CACHE_DIR"] == str(fallback)
    assert cache.PlanCache().info()["path"] == str(root)    # listing and clearing: the folder asked for
