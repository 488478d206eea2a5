"""The per-test seed (tests/seeding.py): a failing test prints it, and the printed seed
reproduces the failing draw."""
import os
import re
import subprocess
import sys

import numpy as np

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

TEST_FILE = '''
def test_fails(rng):
    value = rng.random()
    assert False, f"drew {value!r}"


def test_passes(rng):
    rng.random()
'''


def run_pytest(tmp_path, seed=None):
    (tmp_path / "conftest.py").write_text("from seeding import pytest_runtest_makereport, rng  # noqa\n")
    (tmp_path / "test_draws.py").write_text(TEST_FILE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS_DIR, os.environ.get("PYTHONPATH", "")]))
    env.pop("STATICGRAPH_TEST_SEED", None)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"     # third-party plugins only slow the start
    if seed is not None:
        env["STATICGRAPH_TEST_SEED"] = str(seed)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_draws.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr     # one test failed
    return proc.stdout


def test_failing_test_prints_its_seed_and_the_seed_reproduces_it(tmp_path):
    out = run_pytest(tmp_path)
    seeds = re.findall(r"seed (\d+); rerun with: STATICGRAPH_TEST_SEED=(\d+) python -m pytest "
                       r"'test_draws.py::test_fails'", out)
    assert len(seeds) == 1 and seeds[0][0] == seeds[0][1], out     # printed once: for the failing test only
    seed = int(seeds[0][0])
    drawn = re.search(r"drew ([0-9.e-]+)", out).group(1)
    assert drawn == repr(np.random.default_rng(seed).random())      # the printed seed is the one used
    again = run_pytest(tmp_path, seed=seed)
    assert f"drew {drawn}" in again and f"seed {seed};" in again
