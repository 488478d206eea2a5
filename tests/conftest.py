"""Shared fixtures: every test builds into a fresh default graph."""
import numpy as np
import pytest

import staticgraph as sg
from seeding import pytest_runtest_makereport, rng  # noqa: F401  (rng fixture; failures print its seed)


@pytest.fixture(autouse=True)
def fresh_graph():
    """A new default graph per test, so tests never see each other's ops."""
    sg.reset_default_graph()
    yield sg.get_default_graph()


@pytest.fixture(params=["default", "reference"])
def target(request):
    """Each test using it runs on sg.Session()'s default target and on the reference backend."""
    return request.param
