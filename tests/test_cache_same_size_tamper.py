"""Numba cache files replaced by others OF THE SAME SIZE (compiler/cache.py checks sha256, not
size): an index pickle whose unpickling would create a file is never unpickled, neither by a plan
run in a new process on that cache (the public path) nor by a compile outside a ``compiling()``
block (the check right before Numba loads a file), and folder verification deletes it."""
import io
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
from compiler.cache import CacheWarning, PlanCache, cache_key

WORKTREE = Path(__file__).resolve().parent.parent

RUN_PLAN = textwrap.dedent("""\
    import json
    import numpy as np
    import staticgraph as sg
    x = sg.placeholder(sg.float64, (4,), name="x")
    with sg.Session() as sess:
        plan = sess.compile(sg.relu(x), [x])
        print(json.dumps(plan(np.array([-1.0, 0.0, 0.5, 3.0])).tolist()))
    """)
RESULT = [0.0, 0.0, 0.5, 3.0]


class _CreateFile:
    """Unpickling this creates ``path`` (an open() of it for writing): a visible effect."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _plant(index: Path, marker: Path) -> bytes:
    """Replace ``index`` by a pickle that creates ``marker`` when loaded, padded to the original
    size (pickle.load stops at the pickle's end, as Numba's index reader does), atomically. Checks
    that loading it really has the effect; returns the planted bytes."""
    original = index.read_bytes()
    payload = pickle.dumps(_CreateFile(marker), protocol=4)
    assert len(payload) <= len(original), (len(payload), index)
    planted = payload + b"\0" * (len(original) - len(payload))
    assert len(planted) == len(original) and planted != original
    pickle.load(io.BytesIO(planted)).close()               # what an unchecked load would do
    assert marker.exists()
    marker.unlink()
    tmp = index.with_name(index.name + ".planting")
    tmp.write_bytes(planted)
    os.replace(tmp, index)
    return planted


def _vouched(folder: Path, path: Path) -> bool:
    """``path`` is recorded with its exact sha256 in ``folder``'s numba.json."""
    record = json.loads((folder / cache.RECORD).read_text())["files"]
    want = record.get(path.relative_to(folder).as_posix())
    return want is not None and want["sha256"] == cache._file_digest(path)[1]


def _run_plan(cache_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, STATICGRAPH_CACHE_DIR=str(cache_dir), STATICGRAPH_WARMUP="wait",
               PYTHONPATH=os.pathsep.join([str(WORKTREE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.run([sys.executable, "-c", RUN_PLAN], capture_output=True, text=True, env=env,
                          cwd=WORKTREE, timeout=300)


def test_same_size_index_is_refused_by_a_plan_run_in_a_new_process(tmp_path):
    """A plan's kernel wrapper index and a library kernel index, each replaced by a same-size
    pickle that would create a file: the next process on the cache creates neither file, gets the
    right result, and leaves neither on disk: the wrapper is recompiled and sealed, and the kernel
    file, which that process never loads (a BLAS helper of the step loop, which loads from its own
    untouched entry), is gone only because verification deleted it."""
    root = tmp_path / "cache"
    first = _run_plan(root)
    assert first.returncode == 0 and json.loads(first.stdout) == RESULT, first.stderr[-3000:]
    wrappers = sorted(root.glob("plans/*/*/__pycache__/native.wrapper-*.nbi"))
    helpers = sorted(root.glob("kernels/*/*/*/gemm._blas_*.nbi"))
    assert wrappers and helpers
    planted = {}
    for index, marker in ((wrappers[0], tmp_path / "from_wrapper"), (helpers[0], tmp_path / "from_kernel")):
        planted[index] = (_plant(index, marker), marker)

    second = _run_plan(root)
    assert second.returncode == 0 and json.loads(second.stdout) == RESULT, second.stderr[-3000:]
    for index, (data, marker) in planted.items():
        assert not marker.exists(), f"{index} was unpickled"
        assert re.search(re.escape(str(index)) + " does not match its hash", second.stderr), second.stderr[-3000:]
        # deleted, or rewritten by Numba and sealed (the sealed folder: the entry or kernel folder)
        assert not index.exists() or (index.read_bytes() != data and _vouched(index.parent.parent, index))
    assert wrappers[0].exists()                  # the plan needed it: recompiled


# ------------------------------------------------- each of the two checks on its own, in-process
PLAN_SOURCE = textwrap.dedent("""\
    from numba import njit

    @njit(cache=True)
    def step(x):
        return x * {factor} + 1.0
    """)


@pytest.fixture
def sealed_entry(tmp_path, monkeypatch, rng):
    """A plan entry in a fresh cache root whose Numba files were compiled and sealed; returns
    (PlanCache, entry, its index file, factor)."""
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    cache.STATS.reset()
    factor = float(rng.integers(2, 50))
    pc = PlanCache()
    path = pc.entry(cache_key("same-size tamper", str(rng.integers(1 << 62))),
                    {"plan.py": PLAN_SOURCE.format(factor=factor)}, {})
    with pc.compiling(path):
        assert _fresh_module(pc, path, "a").step(3.0) == 3.0 * factor + 1.0
    (index,) = (path / cache.COMPILED_DIR).glob("*.nbi")
    assert _vouched(path, index)
    return pc, path, index, factor


def _fresh_module(pc, path, tag):
    """The entry's plan as a new module object, so Numba makes a new dispatcher that reads the files."""
    return pc.load_module(path, module_name=f"_test_same_size_{path.name[:12]}_{tag}")


def test_verification_deletes_a_same_size_index(sealed_entry, tmp_path):
    pc, path, index, _ = sealed_entry
    _plant(index, tmp_path / "marker")
    with pytest.warns(CacheWarning, match=re.escape(str(index)) + " does not match its hash"):
        assert pc.verify_compiled(path) == [index]
    assert not index.exists() and not (tmp_path / "marker").exists()


def test_a_same_size_index_is_not_loaded_outside_a_compiling_block(sealed_entry, tmp_path):
    """The check right before Numba reads a file (no verification ran): ignored, recompiled."""
    pc, path, index, factor = sealed_entry
    _plant(index, tmp_path / "marker")
    with pytest.warns(CacheWarning, match=re.escape(str(index)) + " does not match"):
        module = _fresh_module(pc, path, "b")
        assert module.step(2.0) == 2.0 * factor + 1.0
    assert not (tmp_path / "marker").exists()
    assert sum(module.step.stats.cache_misses.values()) == 1 and cache.STATS.rejected == 1
