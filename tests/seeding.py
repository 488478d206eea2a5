"""Per-test random seeds (a pytest plugin imported by conftest.py).

Each test that takes the ``rng`` fixture gets a fresh seed; when the test fails, its report
gets a "random seed" section with the command that reruns it with the same seed
(``STATICGRAPH_TEST_SEED=<seed> python -m pytest '<test id>'``).
"""
import os

import numpy as np
import pytest

SEED_ENV = "STATICGRAPH_TEST_SEED"


@pytest.fixture
def rng(request):
    """A NumPy generator with a fresh seed per test (``$STATICGRAPH_TEST_SEED`` forces one);
    the seed is printed when the test fails."""
    forced = os.environ.get(SEED_ENV)
    seed = int(forced) if forced else int(np.random.SeedSequence().entropy % (2 ** 32))
    request.node.user_properties.append(("seed", seed))
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Add the test's seed to the report of a failing test (shown with its traceback)."""
    outcome = yield
    report = outcome.get_result()
    seeds = [value for key, value in item.user_properties if key == "seed"]
    if report.failed and seeds:
        report.sections.append(("random seed", f"seed {seeds[-1]}; rerun with: "
                                 f"{SEED_ENV}={seeds[-1]} python -m pytest '{item.nodeid}'"))
