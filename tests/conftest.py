"""Shared fixtures: every test builds into a fresh default graph."""
import numpy as np
import pytest

import staticgraph as sg


@pytest.fixture(autouse=True)
def fresh_graph():
    """A new default graph per test, so tests never see each other's ops."""
    sg.reset_default_graph()
    yield sg.get_default_graph()


@pytest.fixture
def rng(request):
    """A NumPy generator with a fresh seed per test (printed on failure via the test id)."""
    seed = np.random.SeedSequence().entropy % (2 ** 32)
    request.node.user_properties.append(("seed", seed))
    return np.random.default_rng(seed)


@pytest.fixture(params=["default", "reference"])
def target(request):
    """Each test using it runs on sg.Session()'s default target and on the reference backend."""
    return request.param
