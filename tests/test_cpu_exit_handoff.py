"""Nobody waits at exit: kernels a warm-up build is still compiling when the process ends are
finished by one detached process (one line on stderr says so), and a compile killed at any point
leaves nothing that a later process loads unverified (compiler/cache.py: seal and verify).

Each test starts from an empty cache folder, so its kernels really compile (seconds each): the
plans are one-kernel plans."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"staticgraph: (\d+) kernels? still compiling in the background \(pids? (\d+(?:, \d+)*)\); "
                  r"the next run loads them")
XS = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)

PLAN = r'''
import json, sys, numpy as np, staticgraph as sg
from compiler.backends.cpu import native
from compiler.cache import STATS
x = sg.placeholder(sg.float32, (None, 3), name="x")
with sg.Session() as s:
    plan = s.compile(x * 3.0, [x])
    out = [plan(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)).tolist() for _ in range(RUNS)]
print(json.dumps({"out": out, "stats": native.STATS, "cache": STATS.snapshot()}), flush=True)
'''


def _env(cache_dir, **extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "STATICGRAPH_CACHE_DIR": str(cache_dir), "STATICGRAPH_COMPILE_WORKERS": "0"}
    env.pop("STATICGRAPH_EXIT_COMPILES", None)
    return {**env, **extra}


def _run(code, cache_dir, **env):
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(cache_dir, **env),
                         capture_output=True, text=True, timeout=600)
    return out


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie nobody reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def _fresh_run(cache_dir):
    """The plan in a new process that waits for its native step: its result and compile counts."""
    out = _run(PLAN.replace("RUNS", "1"), cache_dir, STATICGRAPH_WARMUP="wait")
    assert out.returncode == 0, out.stderr[-3000:]
    assert not LINE.search(out.stderr)                       # nothing was pending at its exit
    result = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["out"][0], XS * 3.0, rtol=1e-6)
    return result


def test_exit_hands_running_compiles_to_a_detached_process(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = PLAN.replace("RUNS", "2") + 'print("ran", flush=True)\n'     # the second run starts the build
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(tmp_path / "cache", STATICGRAPH_WARMUP="reference", TMPDIR=str(tmp)))
    for line in proc.stdout:
        if line.strip() == "ran":
            break
    ran = time.monotonic()
    _, err = proc.communicate(timeout=600)
    exit_seconds = time.monotonic() - ran
    assert proc.returncode == 0, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("staticgraph:")]
    assert len(lines) == 1 and LINE.fullmatch(lines[0]), err[-3000:]
    count, pids = LINE.fullmatch(lines[0]).groups()
    [pid] = map(int, pids.split(", "))         # one kernel: compiled in the build thread, no workers
    assert int(count) >= 1
    assert _alive(pid)          # the kernels were still compiling when the process had ended ...
    assert exit_seconds < 30    # ... and it did not wait for them (the old join took the whole compile)
    assert _wait_gone(pid, 600), "the detached compile did not end"
    assert not list(tmp.glob("staticgraph-compile-*"))       # the worker deleted its JSON share
    result = _fresh_run(tmp_path / "cache")
    assert result["stats"]["kernel_compiles"] == result["stats"]["kernel_compiles_in_workers"] == 0
    assert result["stats"]["kernel_loads"] >= 1
    assert result["cache"]["compiles"] == 0                  # the step loop too was compiled already


KILL_BEFORE_SEAL = r'''
import json, os, signal
from compiler import cache
seal = cache._seal_folder

def seal_or_die(folder):
    """SIGKILL this process when a wrapper's Numba files are written but not yet recorded."""
    manifest = folder / "manifest.json"
    if (manifest.exists() and json.loads(manifest.read_text())["meta"].get("kind") == "kernel wrapper"
            and any((folder / "__pycache__").glob("*.nbc"))):
        os.kill(os.getpid(), signal.SIGKILL)
    return seal(folder)
cache._seal_folder = seal_or_die
'''


def _wrapper_entries(cache_dir):
    return [m.parent for m in Path(cache_dir).glob("plans/*/*/manifest.json")
            if json.loads(m.read_text())["meta"].get("kind") == "kernel wrapper"]


def test_a_compile_killed_before_its_seal_is_never_loaded(tmp_path):
    """Killed after Numba wrote a wrapper's files, before the cache recorded them: the next process
    deletes them and compiles again (here they are even truncated, as a torn write would leave them:
    loading them unverified would fail or crash)."""
    cache_dir = tmp_path / "cache"
    out = _run(KILL_BEFORE_SEAL + PLAN.replace("RUNS", "1"), cache_dir, STATICGRAPH_WARMUP="wait")
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    [entry] = _wrapper_entries(cache_dir)
    written = sorted((entry / "__pycache__").glob("*.nb[ic]"))
    assert written and not (entry / "numba.json").exists()
    for path in written:
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    result = _fresh_run(cache_dir)
    assert result["stats"]["kernel_compiles"] == 1 and result["stats"]["kernel_loads"] == 0
    assert result["cache"]["rejected"] >= len(written)
    result = _fresh_run(cache_dir)                             # and now it is sealed: loaded
    assert result["stats"]["kernel_compiles"] == 0 and result["stats"]["kernel_loads"] == 1


def test_a_compile_killed_at_any_moment_leaves_a_usable_cache(tmp_path):
    """SIGKILL from outside while the wrapper compiles (a moment chosen by the clock, not by a hook):
    the next process compiles or loads it, and computes the right result."""
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", PLAN.replace("RUNS", "1")], cwd=ROOT,
                            env=_env(cache_dir, STATICGRAPH_WARMUP="wait"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 300
        while not any((e / "__pycache__").is_dir() for e in _wrapper_entries(cache_dir)):
            assert proc.poll() is None and time.monotonic() < end, "the wrapper compile never started"
            time.sleep(0.05)
        time.sleep(0.5)                                        # inside Numba's compile of the wrapper
    finally:
        proc.kill()
        proc.wait()
    result = _fresh_run(cache_dir)
    stats = result["stats"]
    assert stats["kernel_compiles"] + stats["kernel_loads"] == 1
