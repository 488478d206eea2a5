"""Shared fixtures: every test builds into a fresh default graph.

The compile cache of the whole pytest session lives in one temporary folder
(``STATICGRAPH_TEST_CACHE_DIR`` to keep one across sessions), shared by the
pytest-xdist workers, so identical graphs hit it within a run and the user's
home is never touched.
"""
import os
import shutil
import tempfile

import numpy as np
import pytest

# pytest-xdist's workers (setup.cfg: ``-n``) inherit the folder of the process that made it (its
# pid in _OWNER), so every worker loads what another compiled; only that process deletes it.
_OWNER = "STATICGRAPH_TEST_CACHE_OWNER"
if os.environ.get("STATICGRAPH_TEST_CACHE_DIR"):
    _CACHE_DIR = os.environ["STATICGRAPH_TEST_CACHE_DIR"]
elif os.environ.get(_OWNER) and os.environ.get("STATICGRAPH_CACHE_DIR"):
    _CACHE_DIR = os.environ["STATICGRAPH_CACHE_DIR"]
else:
    _CACHE_DIR = tempfile.mkdtemp(prefix="staticgraph-test-cache-")
    os.environ[_OWNER] = str(os.getpid())
os.environ["STATICGRAPH_CACHE_DIR"] = _CACHE_DIR
# Plans run their base tier (native, unfused); the fused tier compiles one kernel per fused group,
# so the suite builds it only where a test asks (tests/test_cpu_*.py: ``plan.jit()`` or
# STATICGRAPH_JIT=sync). A plan waits for its kernels instead of warming up on the reference
# interpreter: cpu tests must test the cpu kernels (tests/test_cpu_warmup.py tests the warm-up).
os.environ.setdefault("STATICGRAPH_JIT", "off")
os.environ.setdefault("STATICGRAPH_WARMUP", "wait")
# The suite's xdist workers already keep every core busy: a plan compiles its missing kernels in its
# own process instead of starting compile workers (each imports Numba and the kernel library and
# compiles the helpers again: measured 12% more CPU on the compile-heavy files). The worker path is
# tested where a test sets STATICGRAPH_COMPILE_WORKERS itself (test_cpu_native.py; test_cache_warm.py passes --jobs 2).
os.environ.setdefault("STATICGRAPH_COMPILE_WORKERS", "1")
# The cuda target's tests (tests/test_cuda_*.py) run on Numba's CUDA simulator (no GPU in CI),
# set before anything imports numba.cuda; STATICGRAPH_TEST_REAL_CUDA=1 runs them on a real GPU.
if os.environ.get("STATICGRAPH_TEST_REAL_CUDA") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import staticgraph as sg
from seeding import pytest_runtest_makereport, rng  # noqa: F401  (rng fixture; failures print its seed)


@pytest.fixture(autouse=True)
def fresh_graph():
    """A new default graph per test, so tests never see each other's ops."""
    sg.reset_default_graph()
    yield sg.get_default_graph()


@pytest.fixture(params=["default", "reference"])
def target(request):
    """Each test using it runs on sg.Session()'s default target ("cpu", compiled) and on the
    reference backend (the NumPy oracle)."""
    return request.param


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("STATICGRAPH_TEST_CACHE_DIR") and os.environ.get(_OWNER) == str(os.getpid()):
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


# Seconds each slow file took in a cold run on 2 cores (`pytest --durations=0`, summed per file;
# 2026-12-08). With `--dist loadfile` the xdist workers take files in collection order, so the
# slow ones go first: a worker that finishes early then picks up short files instead of idling
# while the other runs a long file at the end. Only the order changes; a stale figure costs balance.
SLOW_FILES = {
    "test_cpu_nn_winograd.py": 91, "test_cpu_nn_conv.py": 78, "test_ops_forward.py": 75, "test_threads.py": 43,
    "test_distributed.py": 40, "test_cpu_nn_wino_tile.py": 38, "test_kinks_and_ties.py": 31,
    "test_cuda_compile.py": 31, "test_cpu_exit_handoff.py": 29, "test_cpu_subprocess.py": 28,
    "test_cuda_conv_pool.py": 27, "test_cpu_nn_pool.py": 27, "test_cpu_nn_conv_pool.py": 24,
    "test_cpu_backend.py": 20, "test_cuda_training.py": 19, "test_nn_examples.py": 17, "test_cache_warm.py": 16,
    "test_examples.py": 12, "test_cpu_native.py": 12, "test_cpu_ew_families.py": 10, "test_cuda_ops.py": 10,
}


def pytest_collection_modifyitems(session, config, items):
    """The slowest files first (``SLOW_FILES``), each file's tests in their own order."""
    items.sort(key=lambda item: -SLOW_FILES.get(os.path.basename(str(item.fspath)), 0))
