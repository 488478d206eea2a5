"""sg.summary and FileWriter: event files written through tensorboardX, read back with
TensorBoard's own EventAccumulator (scalars, histograms, the graph of the Graphs tab)."""
import glob

import numpy as np
import pytest

import staticgraph as sg
from helpers import session

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(logdir):
    ea = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    ea.Reload()
    return ea


def build_model():
    x = sg.placeholder(sg.float32, (None, 4), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    with sg.variable_scope("layer1"):
        w1 = sg.get_variable("w", [4, 5])
        h = sg.relu(sg.matmul(x, w1))
    with sg.variable_scope("layer2"):
        w2 = sg.get_variable("w", [5, 3])
        logits = sg.matmul(h, w2)
    with sg.name_scope("loss"):
        onehot = sg.one_hot(labels, 3)
        loss = sg.reduce_mean(sg.reduce_sum(sg.square(logits - onehot), axis=1))
    with sg.name_scope("train"):
        step = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, labels, w1, loss, step


def test_scalars_and_histograms_round_trip(target, rng, tmp_path):
    x, labels, w1, loss, step = build_model()
    loss_summary = sg.summary.scalar("loss", loss)
    with sg.name_scope("weights"):
        sg.summary.histogram("w1", w1)
    merged = sg.summary.merge_all()
    assert merged.tags == ["loss", "weights/w1"] and loss_summary.tags == ["loss"]
    written = {}
    w1_values = []
    with session(target) as sess, sg.summary.FileWriter(tmp_path) as writer:
        sess.run(sg.global_variables_initializer())
        for i in range(7):
            feed = {x: rng.normal(size=(6, 4)), labels: rng.integers(0, 3, size=6)}
            summary, loss_value, w1_value, _ = sess.run([merged, loss, w1, step], feed)
            assert isinstance(summary, sg.summary.Summary) and summary.fetched
            gstep = 3 * i + 1
            writer.add_summary(summary, global_step=gstep)
            written[gstep] = float(loss_value)
            w1_values.append(w1_value)
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 1
    ea = read_events(tmp_path)
    assert set(ea.Tags()["scalars"]) == {"loss"} and set(ea.Tags()["histograms"]) == {"weights/w1"}
    scalars = ea.Scalars("loss")
    assert [e.step for e in scalars] == sorted(written)
    np.testing.assert_allclose([e.value for e in scalars], [written[s] for s in sorted(written)], rtol=1e-6)
    hists = ea.Histograms("weights/w1")
    assert [h.step for h in hists] == sorted(written)
    for h, value in zip(hists, w1_values):
        hv = h.histogram_value
        assert hv.num == value.size == sum(hv.bucket)
        assert hv.min == pytest.approx(value.min()) and hv.max == pytest.approx(value.max())
        assert hv.sum == pytest.approx(value.astype(np.float64).sum(), rel=1e-6, abs=1e-6)
        assert hv.sum_squares == pytest.approx((value.astype(np.float64) ** 2).sum(), rel=1e-6)


def test_graph_round_trip(tmp_path):
    x, labels, w1, loss, step = build_model()
    sg.summary.scalar("loss", loss)
    graph = sg.get_default_graph()
    ops = graph.get_operations()
    with sg.summary.FileWriter(tmp_path, graph=graph):
        pass
    gd = read_events(tmp_path).Graph()
    nodes = {n.name: n for n in gd.node}
    assert len(gd.node) == len(ops) and set(nodes) == {op.name for op in ops}
    for op in ops:
        node = nodes[op.name]
        assert node.op == op.type
        assert node.attr["defined_at"].s.decode() == op.defined_at
        shapes = node.attr["_output_shapes"].list.shape
        assert len(shapes) == len(op.outputs)
        for proto, t in zip(shapes, op.outputs):
            if t.shape is None:
                assert proto.unknown_rank
            else:
                assert [d.size for d in proto.dim] == [-1 if d is None else d for d in t.shape]
        assert ("gradient_of" in node.attr) == op.is_gradient
    # edges: data inputs "name" / "name:i" and control inputs "^name", as TensorFlow writes them
    data, control = set(), set()
    for node in gd.node:
        for inp in node.input:
            if inp.startswith("^"):
                control.add((inp[1:], node.name))
            else:
                name, _, index = inp.partition(":")
                data.add((name, int(index or 0), node.name))
    assert data == {(t.op.name, t.value_index, op.name) for op in ops for t in op.inputs}
    assert control == {(c.name, op.name) for op in ops for c in op.control_inputs}
    assert control                                   # the optimizer's group has control inputs
    # scope groups: TensorBoard groups by '/'; gradients sit apart under train/gradients/
    groups = {n.split("/")[0] for n in nodes if "/" in n}
    assert {"layer1", "layer2", "loss", "train"} <= groups
    gradient_nodes = {op.name for op in ops if op.is_gradient}
    assert gradient_nodes and all(n.startswith("train/gradients/") for n in gradient_nodes)
    assert {n for n in nodes if n.startswith("train/gradients/")} == gradient_nodes
    assert nodes["layer1/w"].op == "Variable" and nodes["x"].attr["_output_shapes"].list.shape[0].dim[0].size == -1
    assert "test_summary.py" in nodes["layer1/w"].attr["defined_at"].s.decode()


def test_summary_tags_and_graph_nodes(rng):
    v = sg.Variable(rng.normal(size=(3,)).astype(np.float32), name="loss")
    with sg.name_scope("train"):
        s1 = sg.summary.scalar("loss", sg.reduce_sum(v))
    s2 = sg.summary.scalar("bad name!", sg.reduce_mean(v))
    assert s1.tags == ["train/loss"] and s2.tags == ["bad_name_"]
    (node,) = s1.values()
    assert node.op.type == "Identity" and node.op.name == "train/loss"
    with sg.Session() as sess:
        sess.run(v.initializer)
        fetched, value = sess.run([s1, v])
    assert fetched.tags == ["train/loss"]
    assert fetched[sg.summary.SummaryKey("scalar", "train/loss")] == pytest.approx(value.sum(), rel=1e-6)
    assert fetched.to_proto().value[0].simple_value == pytest.approx(value.sum(), rel=1e-6)


def test_merge_and_collections():
    a, b = sg.constant(1.0), sg.constant(2.0)
    assert sg.summary.merge_all() is None
    sa = sg.summary.scalar("a", a)
    sb = sg.summary.scalar("b", b, collections=["extra"])
    assert sg.summary.merge_all().tags == ["a"] and sg.summary.merge_all("extra").tags == ["b"]
    assert sg.summary.merge([sa, sb, sa]).tags == ["a", "b"]
    with sg.name_scope("other"):
        sg.summary.scalar("c", a)
    assert sg.summary.merge_all(scope="other/").tags == ["other/c"]
    with pytest.raises(ValueError, match="two different scalar summaries have the tag 'a'"):
        sg.summary.merge([sa, sg.summary.Summary({sg.summary.SummaryKey("scalar", "a"): b})])
    with pytest.raises(TypeError, match="summary.merge takes summaries made by"):
        sg.summary.merge([a])
    assert sg.summary.histogram("h", values=a).tags == ["h"]      # TF1's keyword
    with pytest.raises(TypeError, match=r"takes the tensor to record: histogram\(name, tensor\)"):
        sg.summary.histogram("h")


def test_fetched_value_protos_and_bytes(tmp_path):
    t = sg.constant(np.float32(0.75))
    s = sg.summary.scalar("t", t)
    with sg.Session() as sess:
        fetched = sess.run(s)
    proto = fetched.to_proto()
    assert [(v.tag, v.simple_value) for v in proto.value] == [("t", 0.75)]
    with sg.summary.FileWriter(tmp_path) as writer:
        writer.add_summary(proto.SerializeToString(), 5)     # a serialized Summary, as TF1 fetches give
        writer.add_summary(proto, np.int64(6))
        writer.add_scalar("held_out", np.float64(0.5), 2)     # a number computed outside the graph
    ea = read_events(tmp_path)
    assert [(e.step, e.value) for e in ea.Scalars("t")] == [(5, 0.75), (6, 0.75)]
    assert [(e.step, e.value) for e in ea.Scalars("held_out")] == [(2, 0.5)]


def test_errors(tmp_path):
    x = sg.placeholder(sg.float32, (None,), name="x")
    with pytest.raises(ValueError, match=r"summary.scalar 'x': tensor 'x:0' has shape \(\?,\); a scalar summary "
                                         r"needs a 0-d tensor"):
        sg.summary.scalar("x", x)
    with pytest.raises(TypeError, match="summary.histogram 'flags': tensor '.*' has dtype bool"):
        sg.summary.histogram("flags", x > 0)
    unknown = sg.placeholder(sg.float32, None, name="u")
    s = sg.summary.scalar("u", unknown)
    h = sg.summary.histogram("h", x)
    writer = sg.summary.FileWriter(tmp_path)
    with pytest.raises(TypeError, match=r"summary \(u\) holds tensors, not values: fetch it first"):
        writer.add_summary(s, 0)
    with pytest.raises(TypeError, match="returns None when the graph has no summaries"):
        writer.add_summary(None, 0)
    with sg.Session() as sess:
        with pytest.raises(sg.errors.InvalidArgumentError, match=r"scalar summary 'u' got a value of shape \(2,\)"):
            writer.add_summary(sess.run(s, {unknown: np.ones(2, np.float32)}))
        with pytest.raises(sg.errors.InvalidArgumentError, match="non-finite values .* in histogram summary 'h'"):
            writer.add_summary(sess.run(h, {x: np.array([1.0, np.nan], np.float32)}))
    writer.close()
    with pytest.raises(RuntimeError, match="FileWriter .* is closed"):
        writer.add_summary(sg.summary.Summary())


def test_summaries_in_a_compiled_training_step(target, rng, tmp_path):
    x, labels, w1, loss, step = build_model()
    sg.summary.scalar("loss", loss)
    summaries = sg.summary.merge_all()
    losses = []
    init = sg.global_variables_initializer()          # the graph is complete before it is written
    with session(target) as sess, sg.summary.FileWriter(tmp_path, sess.graph) as writer:
        sess.run(init)
        train = sess.compile([loss, step, summaries], [x, labels])
        for i in range(4):
            loss_value, _, summary = train(rng.normal(size=(5, 4)), rng.integers(0, 3, size=5))
            writer.add_summary(summary, i)
            losses.append(float(loss_value))
    ea = read_events(tmp_path)
    assert [e.step for e in ea.Scalars("loss")] == [0, 1, 2, 3]
    np.testing.assert_allclose([e.value for e in ea.Scalars("loss")], losses, rtol=1e-6)
    assert len(ea.Graph().node) == len(sg.get_default_graph().get_operations())
