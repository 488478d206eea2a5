"""Helpers shared by the test modules (the ``target`` fixture lives in conftest.py)."""
import staticgraph as sg

# "default" is sg.Session()'s own target ("cpu"); "reference" is the NumPy oracle.
TARGETS = ["default", "reference"]


def session(target, graph=None):
    """A Session on ``target`` ("default" means no target argument)."""
    if target == "default":
        return sg.Session(graph) if graph is not None else sg.Session()
    return sg.Session(graph=graph, target=target)


def run(target, fetches, feed_dict=None):
    """Run ``fetches`` once in a fresh session on ``target``."""
    with session(target) as sess:
        return sess.run(fetches, feed_dict)


def run_cpu_and_reference(fetches, feed_dict=None):
    """``fetches`` run on the cpu target and on the reference backend: ``(cpu, reference)``."""
    out = {}
    for target in ("cpu", "reference"):
        with sg.Session(target=target) as sess:
            out[target] = sess.run(fetches, feed_dict)
    return out["cpu"], out["reference"]
