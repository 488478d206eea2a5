"""A cache folder that cannot be written (read-only, full) costs one warning naming it and the OS
error; the process compiles into its private fallback folder, and interpreter runs need no cache
at all (compiler/cache.py ``usable_root``/``fall_back``, issue 27).

Root ignores mode bits, so the folders are real read-only and full file systems: a small tmpfs
mounted in a private mount namespace (``unshare --mount``) that vanishes with the subprocess.
Where that is not allowed (no root, no unshare, a container without CAP_SYS_ADMIN) the tests are
skipped, saying so."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORKTREE = Path(__file__).resolve().parent.parent


def _can_mount() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs root and `unshare --mount` to mount a "
                                                         "small read-only or full tmpfs")

PLAN_CACHE = textwrap.dedent("""\
    import warnings
    from compiler import cache
    pc = cache.PlanCache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = pc.entry(cache.cache_key("unwritable", "{tag}"), {{"plan.py": "from numba import njit\\n"
                        "@njit(cache=True)\\ndef step(x):\\n    return 2.0 * x + 1.0\\n"}}, {{}})
        module = pc.load_module(path)
        with pc.compiling(path):
            print("value", module.step(3.0))
    print("fallback", cache.private_fallback(), path)
    for w in caught:
        print("warning", w.message)
    """)


def _run(setup: str, code: str, **env) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python after ``setup`` (sh), in a private mount namespace."""
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), **env}
    script = f"{setup} && exec {sys.executable} -c \"$CODE\""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, env=dict(env, CODE=code), cwd=WORKTREE, timeout=600)


@pytest.mark.parametrize("setup, error", [
    ("mount -t tmpfs -o size=1m tmpfs {d} && mkdir -m 700 {d}/cache && mount -o remount,ro {d}",
     "Read-only file system"),
    ("mount -t tmpfs -o size=64k tmpfs {d} && mkdir -m 700 {d}/cache && "
     "(dd if=/dev/zero of={d}/fill bs=4k 2>/dev/null || true)", "No space left on device"),
], ids=["read-only", "full"])
def test_unwritable_cache_compiles_into_the_fallback_with_one_warning(tmp_path, setup, error):
    d = tmp_path / "mnt"
    d.mkdir()
    out = _run(setup.format(d=d), PLAN_CACHE.format(tag=error), STATICGRAPH_CACHE_DIR=str(d / "cache"))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "value 7.0" in lines
    _, fallback, path = next(line for line in lines if line.startswith("fallback")).split()
    assert path.startswith(fallback + "/plans/")
    warnings = [line for line in lines if line.startswith("warning")]
    assert len(warnings) == 1, warnings
    assert f"not using {d / 'cache'}: cannot write" in warnings[0] and error in warnings[0]
    assert not os.path.exists(fallback)                       # removed at exit


SESSION = textwrap.dedent("""\
    import numpy as np, staticgraph as sg
    x = sg.placeholder(sg.float32, [None], name="x")
    y = sg.reduce_sum(x * 3.0 + 1.0)
    with sg.Session() as sess:
        print("value", sess.run(y, {x: np.arange(4, dtype=np.float32)}))
    """)


def test_interpreter_runs_need_no_cache_at_all():
    """Warm-up (the default): compile and the first run use the reference interpreter, which
    touches no disk cache, even when no folder at all can be written (so no fallback either:
    /tmp, /var/tmp and the working folder are read-only in the subprocess's namespace)."""
    # the project is bound read-only at /mnt first: a checkout under /tmp would vanish under the new /tmp
    setup = (f"mount --bind {WORKTREE} /mnt && mount -o remount,bind,ro /mnt "
             "&& mount -t tmpfs -o size=1m tmpfs /tmp && mkdir -m 700 /tmp/cache && mount -o remount,ro /tmp "
             "&& mount -t tmpfs -o ro,size=64k tmpfs /var/tmp && cd /tmp")
    out = _run(setup, SESSION, STATICGRAPH_CACHE_DIR="/tmp/cache", TMPDIR="/tmp", STATICGRAPH_WARMUP="reference",
               PYTHONPATH="/mnt")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "value 22.0" in out.stdout.splitlines()
    assert "Traceback" not in out.stderr
