"""The step's CUDA-graph path (``cuda/graphs.py``), checked without a GPU: a stand-in graph
records the launches it is given at capture (running none, as a real capture runs none) and
replays them on launch, so what is tested is the executable's part: capture at a signature's
second step, replays after, the error check between main and write-back, the fallback."""
import numpy as np
import pytest

import staticgraph as sg
from cuda_helpers import fast_simulator_switching, simulator_only  # noqa: F401  (autouse)


class RecordingGraph:
    made = 0

    def __init__(self, launches, M, E, stream):
        self.launches, self.M, self.E = list(launches), M, E
        RecordingGraph.made += 1

    def launch(self, stream):
        for fn, arrays, p, rec in self.launches:
            fn(arrays, self.M, self.E, p, rec, stream)


def _model():
    x = sg.placeholder(sg.float32, (None, 3), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    w = sg.Variable(np.full((3, 2), 0.5, np.float32), name="w")
    loss = sg.reduce_mean(sg.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x @ w))
    return x, labels, w, loss, sg.train.GradientDescentOptimizer(0.5).minimize(loss)


def _steps(target, feeds_list):
    """Training steps on ``target``: (losses, the weight after them, its plans' explain())."""
    x, labels, w, loss, train = _model()
    with sg.Session(target=target) as sess:
        sess.run(sg.global_variables_initializer())
        out = [sess.run([loss, train], {x: a, labels: b})[0] for a, b in feeds_list]
        return out, sess.get_variable_value(w), "\n".join(plan.explain() for plan in sess._plans.values())


def _feeds(rng, n=4, steps=4):
    return [(rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 2, size=n)) for _ in range(steps)]


def test_captured_steps_replay_and_match_the_reference(rng, monkeypatch):
    from compiler.backends.cuda import graphs
    monkeypatch.setattr(graphs, "why_not", lambda: None)
    monkeypatch.setattr(graphs, "Graph", RecordingGraph)
    RecordingGraph.made = 0
    feeds = _feeds(rng)
    got, w_got, text = _steps("cuda", feeds)
    want, w_want, _ = _steps("reference", feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    np.testing.assert_allclose(w_got, w_want, rtol=1e-4)
    assert RecordingGraph.made == 2                  # main and write-back, once for the signature
    assert "replayed as CUDA graphs (main, write-back)" in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # see test_cuda_training's label test
def test_a_data_error_in_a_replayed_step_still_stops_the_write_back(rng, monkeypatch):
    from compiler.backends.cuda import graphs
    monkeypatch.setattr(graphs, "why_not", lambda: None)
    monkeypatch.setattr(graphs, "Graph", RecordingGraph)
    x, labels, w, loss, train = _model()
    with sg.Session(target="cuda") as sess:
        sess.run(sg.global_variables_initializer())
        for a, b in _feeds(rng, steps=2):
            sess.run([loss, train], {x: a, labels: b})      # the second step captured
        before = sess.get_variable_value(w)
        with pytest.raises(sg.errors.InvalidArgumentError, match="label 5"):
            sess.run([loss, train], {x: np.zeros((4, 3), np.float32), labels: np.array([0, 5, 1, 0])})
        np.testing.assert_array_equal(sess.get_variable_value(w), before)


def test_a_failed_capture_falls_back_to_launches(rng, monkeypatch):
    from compiler.backends.cuda import graphs

    def refuse(*args):
        raise RuntimeError("cuStreamBeginCapture failed: CUDA_ERROR_NOT_SUPPORTED")
    monkeypatch.setattr(graphs, "why_not", lambda: None)
    monkeypatch.setattr(graphs, "Graph", refuse)
    feeds = _feeds(rng, steps=3)
    got, _, text = _steps("cuda", feeds)
    want, _, _ = _steps("reference", feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert "plain launches: capture failed (RuntimeError: cuStreamBeginCapture failed" in text


@simulator_only
def test_the_simulator_never_captures():
    from compiler.backends.cuda import graphs
    assert graphs.why_not() == "the CUDA simulator has no CUDA graphs"
