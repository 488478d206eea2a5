"""sg.onnx: every exportable op, the lecture DAG, an MLP and LeNet run in ONNX Runtime and give the
session's outputs at two batch sizes from one exported file; exported models load back
(``sg.onnx.load``) with the same outputs and gradients; a PyTorch-exported LeNet loads, matches
PyTorch and trains one step like PyTorch; unsupported ops are errors naming them.

Tolerance: float32, 1e-5 relative (with an absolute floor of 1e-6 for values near zero; for
gradients of a loaded model, 1e-5 of the gradient's largest entry).
"""
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import staticgraph as sg
from staticgraph import nn
from staticgraph.nn import functional as F

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx and onnxruntime are not installed "
                                                      "(pip install -e '.[onnx]')")
RTOL, ATOL = 1e-5, 1e-6
BATCHES = (2, 3)
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def ort_session(path):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def feed_value(rng, shape, dtype, kind):
    if np.dtype(dtype).kind in "iu":
        low, high = kind if isinstance(kind, tuple) else (0, 4)
        return rng.integers(low, high, size=shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "positive":
        return np.abs(x) + np.asarray(0.5, dtype)
    if kind == "ties":          # few distinct values: comparisons and max see equal elements
        return np.round(x).astype(dtype)
    return x


def feeds_for(placeholders, kinds, batch, rng):
    return {p: feed_value(rng, tuple(batch if d is None else d for d in p.shape), p.dtype, k)
            for p, k in zip(placeholders, kinds)}


def check_close(actual, expected, what, scaled=False):
    """Equal within RTOL (ATOL near zero); ``scaled``: the absolute floor is RTOL times the array's
    largest magnitude (gradients: rounding differences of equivalent graphs, such as ``x * x`` for
    ``square(x)``, cancel in small entries)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, \
        f"{what}: {actual.shape} {actual.dtype} != {expected.shape} {expected.dtype}"
    if expected.dtype.kind == "f":
        atol = max(ATOL, RTOL * float(np.max(np.abs(expected), initial=0))) if scaled else ATOL
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def check_in_onnxruntime(sess, outputs, placeholders, kinds, path, rng, batches=BATCHES, opset=None):
    """Export once; at each batch size ONNX Runtime's outputs equal the session's."""
    sg.onnx.export(sess, outputs, placeholders, path, opset=opset)
    ort_sess = ort_session(path)
    names = [i.name for i in ort_sess.get_inputs()]
    assert names == [p.op.name for p in placeholders]
    all_feeds = []
    for batch in batches:
        feeds = feeds_for(placeholders, kinds, batch, rng)
        expected = sess.run(list(outputs), feeds)
        got = ort_sess.run(None, {p.op.name: feeds[p] for p in placeholders})
        for k, (a, e) in enumerate(zip(got, expected)):     # scaled: a float32 conv's sum of 36 products
            # that cancels to ~0 differs between summation orders by ~1e-6 (seed 1715798394)
            check_close(a, e, f"output {k} ('{outputs[k].name}') at batch {batch}", scaled=True)
        all_feeds.append(feeds)
    return all_feeds


def float_gradients(outputs, xs, rng):
    """Gradients of a fixed random weighting of the floating outputs wrt ``xs`` (None where none)."""
    terms = [sg.reduce_sum(o * sg.constant(rng.standard_normal(o.shape), dtype=o.dtype))
             for o in outputs if o.dtype.kind == "f" and o.shape is not None and None not in o.shape]
    terms += [sg.reduce_sum(o) for o in outputs if o.dtype.kind == "f" and (o.shape is None or None in o.shape)]
    if not terms or not xs:
        return []
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return sg.gradients(total, xs)


def check_round_trip(sess, outputs, placeholders, feeds_list, path, seed=7, grads=True):
    """sg.onnx.load(path) in a new graph: the same outputs and the same gradients (wrt the float
    inputs and every variable, matched by name) as the original graph."""
    variables = [v for v in sg.global_variables(sess.graph) if v.dtype.kind == "f"]
    xs = [p for p in placeholders if p.dtype.kind == "f"] + variables
    with sess.graph.as_default():
        grads = float_gradients(outputs, xs, np.random.default_rng(seed)) if grads else []
    graph = sg.Graph()
    with graph.as_default():
        inputs, loaded = sg.onnx.load(path)
        assert len(inputs) == len(placeholders) and len(loaded) == len(outputs)
        by_name = {v.op.name: v for v in sg.global_variables()}
        assert sorted(by_name) == sorted(v.op.name for v in sg.global_variables(sess.graph))
        loaded_xs = [i for i in inputs if i.dtype.kind == "f"] + [by_name[v.op.name] for v in variables]
        loaded_grads = float_gradients(loaded, loaded_xs, np.random.default_rng(seed)) if grads else []
        with sg.Session(target="reference") as sess2:
            sess2.run(sg.global_variables_initializer())
            for feeds in feeds_list:
                new_feeds = {i: feeds[p] for i, p in zip(inputs, placeholders)}
                for k, (a, e) in enumerate(zip(sess2.run(loaded, new_feeds), sess.run(list(outputs), feeds))):
                    check_close(a, e, f"loaded output {k}")
                pairs = [(a, e) for a, e in zip(loaded_grads, grads) if e is not None]
                assert all(a is not None for a, _ in pairs)
                got = sess2.run([a for a, _ in pairs], new_feeds)
                want = sess.run([e for _, e in pairs], feeds)
                for k, (a, e) in enumerate(zip(got, want)):
                    check_close(a, e, f"gradient {k}", scaled=True)


# -- every exportable op ------------------------------------------------------------------------------
# (id, [(shape, dtype, kind)], build(*placeholders) -> output tensor or list of them)

F32 = np.float32
X = ((None, 3), F32, "normal")
Y = ((None, 3), F32, "normal")
POS = ((None, 3), F32, "positive")
TIES = ((None, 4), F32, "ties")
IMG1 = ((None, 2, 7), F32, "normal")
IMG2 = ((None, 4, 6, 5), F32, "normal")
IMG3 = ((None, 2, 5, 4, 4), F32, "normal")
LABELS = ((None,), np.int64, (0, 3))


def _w(*shape, seed=0):
    return sg.constant(np.random.default_rng(seed).standard_normal(shape).astype(F32))


OP_CASES = [
    ("neg", [X], lambda x: -x),
    ("exp", [X], sg.exp),
    ("log", [POS], sg.log),
    ("sin", [X], sg.sin),
    ("cos", [X], sg.cos),
    ("tanh", [X], sg.tanh),
    ("sigmoid", [X], sg.sigmoid),
    ("sqrt", [POS], sg.sqrt),
    ("abs", [X], sg.abs),
    ("sign", [TIES], sg.sign),
    ("relu", [X], sg.relu),
    ("square", [X], sg.square),
    ("add_broadcast", [X], lambda x: x + _w(3)),
    ("sub", [X, Y], lambda x, y: x - y),
    ("mul", [X, Y], lambda x, y: x * y),
    ("div", [X, POS], lambda x, y: x / y),
    ("pow_scalar", [POS], lambda x: x ** 1.5),
    ("pow_tensor", [POS, X], lambda x, y: x ** y),
    ("maximum", [TIES, TIES], sg.maximum),
    ("minimum", [TIES, TIES], sg.minimum),
    ("comparisons", [TIES, TIES], lambda a, b: [a < b, a <= b, a > b, a >= b, sg.equal(a, b),
                                                sg.not_equal(a, b)]),
    ("where", [X, Y], lambda x, y: sg.where(x > 0, x, y * 2.0)),
    ("matmul", [X], lambda x: x @ _w(3, 4)),
    ("matmul_batched", [((None, 2, 3), F32, "normal")], lambda x: x @ _w(3, 4)),
    ("matmul_vector", [X], lambda x: x @ _w(3)),
    ("linear", [X], lambda x: F.linear(x, _w(5, 3), _w(5, seed=1))),
    ("reshape", [((None, 2, 3), F32, "normal")], lambda x: x.view(-1, 6)),
    ("expand_dims", [X], lambda x: sg.expand_dims(x, (0, 2))),
    ("transpose", [((None, 2, 3), F32, "normal")], lambda x: [sg.transpose(x, (2, 0, 1)), sg.transpose(x)]),
    ("concat_stack", [X, Y], lambda x, y: [sg.concat([x, y], 1), sg.stack([x, y], axis=1)]),
    ("getitem", [((None, 5, 4), F32, "normal")],
     lambda x: [x[:, 0], x[:, 1:4], x[..., None], x[:, ::-2, 1], x[-1], x[:, -1, None, 2:]]),
    ("cast", [X, ((None, 3), np.int64, (-5, 5))], lambda x, i: [sg.cast(x * 3.0, sg.int32),
                                                                  sg.cast(i, sg.float32)]),
    ("identity", [X], lambda x: sg.identity(x) * x),
    # ONNX has no stop_gradient: it is exported as Identity, so a loaded model differentiates through it
    ("stop_gradient", [X], lambda x: sg.stop_gradient(x) * x, "no gradients"),
    # ONNX has no assertions: check_numerics is exported as Identity (the check stays in staticgraph)
    ("check_numerics", [X], lambda x: sg.debugging.check_numerics(x, "x is finite") * x),
    ("fills", [X], lambda x: [sg.zeros_like(x) + x, sg.ones_like(x, dtype=sg.int64), sg.ones((3,)) + x]),
    ("one_hot", [((None, 2), np.int64, (-1, 7))], lambda i: sg.one_hot(i, 5)),
    ("reductions", [((None, 3, 4), F32, "ties")],
     lambda x: [sg.reduce_sum(x), sg.reduce_sum(x, 1, keepdims=True), sg.reduce_mean(x, (0, 2)),
                sg.reduce_max(x, -1), sg.norm(x)]),
    ("argmax", [((None, 3, 4), F32, "ties")], lambda x: [sg.argmax(x, 1), sg.argmax(x)]),
    ("conv1d", [IMG1], lambda x: F.conv1d(x, _w(4, 2, 3), _w(4), stride=2, padding=1)),
    ("conv2d", [IMG2], lambda x: [F.conv2d(x, _w(6, 2, 3, 3), _w(6), padding=(1, 2), dilation=(1, 2), groups=2),
                                  F.conv2d(x, _w(3, 4, 3, 3), padding="same"),
                                  F.conv2d(x, _w(2, 4, 2, 3), stride=(2, 1))]),
    ("conv3d", [IMG3], lambda x: F.conv3d(x, _w(3, 2, 2, 3, 2), _w(3), stride=(1, 2, 1), padding=1)),
    ("conv2d_unbatched", [((4, 6, 5), F32, "normal")], lambda x: F.conv2d(x, _w(2, 4, 3, 3), padding=1)),
    ("max_pool", [IMG2], lambda x: [*F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True, return_indices=True),
                                    F.max_pool2d(x, 2, dilation=2),
                                    F.max_pool1d(x[:, :, 0], 2, ceil_mode=True)]),
    ("max_pool3d", [IMG3], lambda x: F.max_pool3d(x, 2, (1, 2, 2), return_indices=True)),
    ("max_pool_unbatched", [((4, 6, 5), F32, "normal")], lambda x: F.max_pool2d(x, 2, return_indices=True)),
    ("avg_pool", [IMG2], lambda x: [F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True),
                                    F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                    F.avg_pool2d(x, (2, 3), 1),
                                    F.avg_pool1d(x[:, :, 0], 2, ceil_mode=True)]),
    ("avg_pool3d", [IMG3], lambda x: F.avg_pool3d(x, 2, padding=1, count_include_pad=False)),
    ("softmax", [((None, 3, 4), F32, "normal")], lambda x: [F.softmax(x, 1), F.log_softmax(x, -1)]),
    ("losses", [((None, 3), F32, "normal"), LABELS, Y],
     lambda x, t, y: [F.cross_entropy(x, t), F.nll_loss(F.log_softmax(x), t, reduction="sum"),
                      F.cross_entropy(x, t, reduction="none"), F.mse_loss(x, y), F.mse_loss(x, y, "none")]),
    ("nll_unbatched", [((3,), F32, "normal"), (((), np.int64, (0, 3)))],
     lambda x, t: F.cross_entropy(x, t)),
    ("tf1_losses", [((None, 3), F32, "normal"), LABELS, ((None, 3), F32, "positive")],
     lambda x, t, p: [nn.sparse_softmax_cross_entropy_with_logits(t, x),
                      nn.softmax_cross_entropy_with_logits(p / sg.reduce_sum(p, 1, keepdims=True), x),
                      nn.sigmoid_cross_entropy_with_logits(p * 0.3, x)]),
    ("float64", [((None, 3), np.float64, "normal")],
     lambda x: [F.softmax(sg.tanh(x) @ sg.constant(np.eye(3) * 2.0, dtype=sg.float64), 1), sg.reduce_mean(x * x)]),
]


@needs_onnx
@pytest.mark.parametrize("case", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_op_in_onnxruntime_and_round_trip(case, tmp_path, rng):
    _, specs, build = case[:3]
    graph = sg.Graph()
    with graph.as_default():
        placeholders = [sg.placeholder(dtype, shape, name=f"in{i}") for i, (shape, dtype, _) in enumerate(specs)]
        out = build(*placeholders)
        outputs = list(out) if isinstance(out, (list, tuple)) else [out]
        with sg.Session(target="reference") as sess:
            sess.run(sg.global_variables_initializer())
            batched = any(None in s[0] for s in specs)
            feeds = check_in_onnxruntime(sess, outputs, placeholders, [s[2] for s in specs], tmp_path / "op.onnx",
                                         rng, BATCHES if batched else (None,))
            check_round_trip(sess, outputs, placeholders, feeds, tmp_path / "op.onnx", grads=case[3:] == ())


@needs_onnx
@pytest.mark.parametrize("opset", [13, 18, 21])
def test_other_opsets(opset, tmp_path, rng):
    """Opset 13 (the oldest supported) and later ones (reduction axes become inputs at 18)."""
    with sg.Graph().as_default():
        x = sg.placeholder(sg.float32, (None, 3, 4), name="x")
        outputs = [sg.reduce_sum(x, 1), sg.reduce_mean(x, (0, 2), keepdims=True), sg.reduce_max(x, -1),
                   F.log_softmax(x, 1), x[:, 1:, None, ::2], F.max_pool1d(x, 2, return_indices=True)[1]]
        with sg.Session(target="reference") as sess:
            check_in_onnxruntime(sess, outputs, [x], ["normal"], tmp_path / "m.onnx", rng, opset=opset)
    import onnx
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == opset


@needs_onnx
def test_outputs_that_are_inputs_or_repeated_and_inputs_inside_the_graph(tmp_path, rng):
    with sg.Graph().as_default():
        x = sg.placeholder(sg.float32, (None, 3), name="x")
        hidden = sg.relu(x * 2.0, name="hidden")
        y = sg.exp(hidden, name="y")
        with sg.Session(target="reference") as sess:
            model = sg.onnx.export(sess, [x, y, y], [x], tmp_path / "a.onnx")
            assert len({o.name for o in model.graph.output}) == 3
            feeds = check_in_onnxruntime(sess, [x, y, y], [x], ["normal"], tmp_path / "a.onnx", rng)
            check_round_trip(sess, [x, y, y], [x], feeds, tmp_path / "a.onnx")
            # an intermediate tensor as the input: its producers are cut off, as a feed does
            model = sg.onnx.export(sess, y, [hidden], tmp_path / "b.onnx")
            assert [n.op_type for n in model.graph.node] == ["Exp"]
            h = np.abs(rng.standard_normal((2, 3))).astype(F32)
            (got,) = ort_session(tmp_path / "b.onnx").run(None, {"hidden:0": h})
            check_close(got, sess.run(y, {hidden: h}), "y from hidden")


def test_every_op_type_is_exported_or_refused_with_a_reason():
    """A new op type must get an exporter in staticgraph/onnx/opset.py or a reason it has none."""
    from staticgraph.opdef import get_opdef, registered_types
    ours = {t for t in registered_types() if get_opdef(t).infer.__module__.startswith("staticgraph.")}
    assert ours - set(sg.onnx.EXPORTERS) - set(sg.onnx.opset.NO_ONNX_FORM) == {"Placeholder", "Variable"}


def test_every_forward_op_type_has_a_case():
    """Each op type in the export table appears in a case above (the cases' graphs list them)."""
    seen = set()
    for _, specs, build, *_ in OP_CASES:
        with sg.Graph().as_default() as g:
            build(*[sg.placeholder(dtype, shape) for shape, dtype, _ in specs])
            seen |= {op.type for op in g.get_operations()}
    assert set(sg.onnx.EXPORTERS) - seen == set()


# -- models --------------------------------------------------------------------------------------------

def lecture_dag():
    """The README's 5x5 DAG with the vector x fed as columns (a batch of columns)."""
    rng = np.random.default_rng(0)
    w1 = sg.Variable(rng.standard_normal((5, 5)).astype(F32), name="w1")
    w2 = sg.Variable(rng.standard_normal((5, 5)).astype(F32), name="w2")
    x = sg.placeholder(sg.float32, (5, None), name="x")
    x1 = w1 @ x
    x2 = x + w2 @ x1
    x3 = w1 @ (x1 + x2)
    return [x], [x3, sg.norm(x3)]


def mlp():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10))
    x = sg.placeholder(sg.float32, (None, 20), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    logits = model(x)
    return [x, labels], [logits, F.cross_entropy(logits, labels)]


def lenet():
    sys.path.insert(0, EXAMPLES)
    from lenet_module import Net
    nn.manual_seed(0)
    x = sg.placeholder(sg.float32, (None, 1, 28, 28), name="images")
    return [x], [Net()(x)]


@needs_onnx
@pytest.mark.parametrize("model, kinds, target", [
    (lecture_dag, ["normal"], "reference"),
    (mlp, ["normal", (0, 10)], "cpu"),
    (lenet, ["normal"], "reference"),
], ids=["lecture_dag", "mlp", "lenet"])
def test_model_in_onnxruntime_and_round_trip(model, kinds, target, tmp_path, rng):
    with sg.Graph().as_default():
        placeholders, outputs = model()
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            path = tmp_path / "model.onnx"
            feeds = check_in_onnxruntime(sess, outputs, placeholders, kinds, path, rng)
            check_round_trip(sess, outputs, placeholders, feeds, path)


@needs_onnx
def test_export_holds_current_values_names_lines_and_symbolic_dims(tmp_path):
    with sg.Graph().as_default():
        x = sg.placeholder(sg.float32, (None, 3), name="x")
        w = sg.Variable(np.ones((3, 2), F32), name="w")
        y = sg.relu(x @ w, name="y")
        loss = sg.reduce_sum(y)
        train = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
        with sg.Session(target="reference") as sess:
            sess.run(sg.global_variables_initializer())
            sess.run(train, {x: np.ones((4, 3), F32)})
            model = sg.onnx.export(sess, y, [x], tmp_path / "y.onnx")
            current = sess.get_variable_value(w)
    import onnx
    from onnx import numpy_helper
    assert not np.array_equal(current, np.ones((3, 2), F32))          # the step changed w
    (init,) = model.graph.initializer
    assert init.name == "w" and np.array_equal(numpy_helper.to_array(init), current)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Relu"]   # no gradient or update ops
    relu = model.graph.node[1]
    assert relu.name == "y" and __file__ in relu.doc_string and "Relu 'y' defined at" in relu.doc_string
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "x_dim0" and dims[1].dim_value == 3
    assert onnx.load(str(tmp_path / "y.onnx")) == model
    assert os.listdir(tmp_path) == ["y.onnx"]                             # no temp file left behind


# -- errors --------------------------------------------------------------------------------------------

@needs_onnx
def test_unexportable_ops_are_errors_naming_them(tmp_path):
    with sg.Graph().as_default():
        x = sg.placeholder(sg.float32, (None, 3), name="x")
        noise = sg.random_normal((3,), name="noise")
        w = sg.Variable(np.ones((3,), F32), name="w")
        (g,) = sg.gradients(sg.reduce_sum(x * w), [w])
        y = sg.placeholder(sg.float32, (3,), name="y")
        with sg.Session(target="reference") as sess:
            sess.run(sg.global_variables_initializer())
            random_op = r"RandomNormal 'noise': no ONNX form \(a random op.*\n.*test_onnx\.py"
            with pytest.raises(ValueError, match=random_op):
                sg.onnx.export(sess, x + noise, [x], tmp_path / "a.onnx")
            gradient_op = r"BroadcastLike .*a gradient op(.|\n)*part of the gradient of ReduceSum"
            with pytest.raises(sg.errors.InvalidArgumentError, match=gradient_op):
                sg.onnx.export(sess, g, [x], tmp_path / "b.onnx")
            with pytest.raises(ValueError, match=r"Placeholder 'y': .*not among `inputs`"):
                sg.onnx.export(sess, x + y, [x], tmp_path / "c.onnx")
            anything = sg.placeholder(sg.float32, None, name="anything")
            with pytest.raises(ValueError, match="tensor 'anything:0' has an unknown rank"):
                sg.onnx.export(sess, anything * 2.0, [anything], tmp_path / "d.onnx")
            with pytest.raises(sg.errors.NotFoundError, match="does not exist"):
                sg.onnx.export(sess, x * w, [x], tmp_path / "missing" / "d.onnx")
    assert os.listdir(tmp_path) == []


IMPORT_CASES = [   # (id, nodes, {input: shape}, {initializer: array}, {output: rank}); batch axis symbolic
    ("max_min_variadic", [("Max", ["a", "b", "c"], ["y0"], {}), ("Min", ["a", "b", "c"], ["y1"], {})],
     {"a": (4, 3), "b": (4, 3), "c": (4, 3)}, {}, {"y0": 2, "y1": 2}),
    ("pow_int_exponent", [("Pow", ["a", "two"], ["y0"], {})], {"a": (4, 3)}, {"two": np.array(2, np.int64)},
     {"y0": 2}),
    ("reshape_copy_dim", [("Reshape", ["a", "shape"], ["y0"], {})], {"a": (4, 2, 6)},
     {"shape": np.array([0, 3, -1], np.int64)}, {"y0": 3}),
    ("argmax_keepdims", [("ArgMax", ["a"], ["y0"], {"axis": 1})], {"a": (4, 3, 2)}, {}, {"y0": 3}),
    ("constant_forms", [("Constant", [], ["c"], {"value_float": 1.5}),
                        ("ConstantOfShape", ["shape"], ["f"], {"value": np.array([0.25], F32)}),
                        ("Add", ["a", "c"], ["y0"], {}), ("Mul", ["y0", "f"], ["y1"], {})],
     {"a": (4, 3)}, {"shape": np.array([3], np.int64)}, {"y0": 2, "y1": 2}),
    ("squeeze_flatten", [("Squeeze", ["a", "axis"], ["y0"], {}), ("Flatten", ["y0"], ["y1"], {"axis": 2})],
     {"a": (4, 1, 2, 3, 5)}, {"axis": np.array([1], np.int64)}, {"y0": 4, "y1": 2}),
    ("shape_arithmetic", [   # PyTorch's x.view(x.size(0), -1) and x.view(-1, x.size(1)), torch.zeros_like(x)
        ("Shape", ["a"], ["s"], {}), ("Gather", ["s", "zero"], ["n"], {}), ("Unsqueeze", ["n", "zeros1"], ["n1"], {}),
        ("Concat", ["n1", "minus1"], ["target"], {"axis": 0}), ("Reshape", ["a", "target"], ["y0"], {}),
        ("Gather", ["s", "one"], ["c"], {}), ("Unsqueeze", ["c", "zeros1"], ["c1"], {}),
        ("Concat", ["minus1", "c1"], ["target2"], {"axis": 0}), ("Reshape", ["a", "target2"], ["y1"], {}),
        ("ConstantOfShape", ["s"], ["y2"], {"value": np.array([0.0], F32)})],
     {"a": (4, 2, 6)}, {"zero": np.array(0, np.int64), "one": np.array(1, np.int64),
                        "zeros1": np.array([0], np.int64), "minus1": np.array([-1], np.int64)},
     {"y0": 2, "y1": 2, "y2": 3}),
    ("gemm", [("Gemm", ["a", "w", "b"], ["y0"], {"alpha": 0.5, "beta": 2.0, "transB": 1})],
     {"a": (4, 3)}, {"w": np.ones((5, 3), F32) / 3, "b": np.arange(5, dtype=F32)}, {"y0": 2}),
]


@needs_onnx
@pytest.mark.parametrize("case", IMPORT_CASES, ids=[c[0] for c in IMPORT_CASES])
def test_import_forms_that_export_does_not_write(case, tmp_path, rng):
    """Models written with onnx.helper (as other exporters write them): sg.onnx.load gives what ONNX
    Runtime gives, at two batch sizes."""
    from onnx import helper, numpy_helper
    _, nodes, inputs, inits, outputs = case
    graph = helper.make_graph(
        [helper.make_node(t, i, o, name=f"n{k}", **{n: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
                                                     for n, v in a.items()})
         for k, (t, i, o, a) in enumerate(nodes)], "g",
        [helper.make_tensor_value_info(n, 1, ["N"] + list(s[1:])) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, 7 if nodes[0][0] == "ArgMax" else 1, [None] * rank)
         for o, rank in outputs.items()],
        [numpy_helper.from_array(v, n) for n, v in inits.items()])
    path = tmp_path / "m.onnx"
    import onnx
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with sg.Graph().as_default():
        placeholders, loaded = sg.onnx.load(path)
        with sg.Session(target="reference") as sess:
            sess.run(sg.global_variables_initializer())
            for batch in BATCHES:
                feeds = {n: rng.standard_normal((batch,) + s[1:]).astype(F32) for n, s in inputs.items()}
                want = ort_session(path).run(None, feeds)
                got = sess.run(loaded, {p: feeds[p.op.name] for p in placeholders})
                for k, (a, e) in enumerate(zip(got, want)):
                    check_close(a, e, f"output {k} at batch {batch}")


def _model_with(node, inputs, outputs, path, initializers=()):
    import onnx
    from onnx import helper
    graph = helper.make_graph([node], "g", inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@needs_onnx
def test_unsupported_onnx_nodes_are_errors_naming_them(tmp_path):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)
    erf = _model_with(helper.make_node("Erf", ["x"], ["y"], name="my_erf"), [x], [y], tmp_path / "erf.onnx")
    with sg.Graph().as_default(), pytest.raises(ValueError, match=r"node 'my_erf' \(Erf\): op type Erf is not"):
        sg.onnx.load(erf)
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 3, 3], np.zeros(54, F32))
    conv = _model_with(helper.make_node("Conv", ["x", "w"], ["y"], name="same_conv", auto_pad="SAME_UPPER"),
                       [x], [y], tmp_path / "conv.onnx", [w])
    with sg.Graph().as_default(), pytest.raises(ValueError, match=r"node 'same_conv' \(Conv\): auto_pad"):
        sg.onnx.load(conv)
    asym = _model_with(helper.make_node("Conv", ["x", "w"], ["y"], name="asym", pads=[0, 0, 1, 1]),
                       [x], [y], tmp_path / "asym.onnx", [w])
    with sg.Graph().as_default(), pytest.raises(ValueError, match=r"node 'asym' \(Conv\): pads .* symmetric"):
        sg.onnx.load(asym)
    import onnx
    shape_sum = helper.make_graph([helper.make_node("Shape", ["x"], ["s"], name="shape"),
                                   helper.make_node("Cast", ["s"], ["y"], name="cast_shape", to=1)], "g", [x],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    onnx.save(helper.make_model(shape_sum, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "s.onnx"))
    with sg.Graph().as_default(), pytest.raises(ValueError, match=r"node 'cast_shape' \(Cast\): input 's' can only "
                                                                  r"be read by Gather, .* \(shape arithmetic\)"):
        sg.onnx.load(tmp_path / "s.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all")
    with sg.Graph().as_default(), pytest.raises(sg.errors.DataLossError, match="junk.onnx"):
        sg.onnx.load(tmp_path / "junk.onnx")


def test_import_staticgraph_does_not_import_onnx():
    code = "import sys, staticgraph; assert not any(m.split('.')[0] in ('onnx', 'onnxruntime') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(EXAMPLES)] + sys.path)))


# -- a model exported by PyTorch -------------------------------------------------------------------------

def torch_lenet_onnx(path):
    """The lecture's LeNet in PyTorch, exported with ``torch.onnx.export`` (its new exporter where
    its dependency onnxscript is installed, else the TorchScript one); returns the torch model."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    tnn, TF = torch.nn, torch.nn.functional

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 32, 5), tnn.Conv2d(32, 64, 5)
            self.fc1, self.fc2 = tnn.Linear(256, 200), tnn.Linear(200, 10)

        def forward(self, x):
            x = TF.relu(TF.max_pool2d(self.conv1(x), 3, 3))
            x = TF.relu(TF.max_pool2d(self.conv2(x), 2, 2))
            return self.fc2(TF.relu(self.fc1(x.view(x.size(0), -1))))   # Shape, Gather, Concat, Reshape

    torch.manual_seed(0)
    model = Net()
    dynamo = importlib.util.find_spec("onnxscript") is not None
    try:
        with warnings.catch_warnings():     # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), str(path), input_names=["x"],
                              output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
                              dynamo=dynamo)
    except ImportError as exc:
        pytest.skip(f"torch.onnx.export is unavailable here: {exc}")
    return torch, model


@needs_onnx
def test_pytorch_lenet_loads_matches_and_trains_one_step(tmp_path, rng):
    torch, model = torch_lenet_onnx(tmp_path / "lenet.onnx")
    import onnx
    assert {"Conv", "MaxPool", "Gemm", "Shape", "Reshape"} <= {n.op_type for n in onnx.load(
        str(tmp_path / "lenet.onnx")).graph.node}
    x_val = rng.standard_normal((3, 1, 28, 28)).astype(F32)
    labels = rng.integers(0, 10, size=3)
    with sg.Graph().as_default():
        (x,), (logits,) = sg.onnx.load(tmp_path / "lenet.onnx")
        assert x.shape == (None, 1, 28, 28) and logits.shape == (None, 10)
        y = sg.placeholder(sg.int64, (None,), name="labels")
        loss = F.cross_entropy(logits, y)
        step = sg.train.GradientDescentOptimizer(0.1).minimize(loss)
        weights = {v.op.name: v for v in sg.trainable_variables()}
        with sg.Session(target="reference") as sess:
            sess.run(sg.global_variables_initializer())
            for n in BATCHES:
                check_close(sess.run(logits, {x: x_val[:n]}), model(torch.from_numpy(x_val[:n])).detach().numpy(),
                            f"logits at batch {n}")
            sess.run(step, {x: x_val, y: labels})
            trained = {name: sess.get_variable_value(v) for name, v in weights.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(torch.from_numpy(x_val)), torch.from_numpy(labels)).backward()
    opt.step()
    assert sorted(trained) == sorted(name for name, _ in model.named_parameters())
    for name, p in model.named_parameters():
        check_close(trained[name], p.detach().numpy(), f"{name} after one SGD step")


# -- the example -------------------------------------------------------------------------------------------

@needs_onnx
def test_export_onnx_example(tmp_path, monkeypatch):
    """examples/export_onnx.py trains, exports and runs in ONNX Runtime: the same accuracy both ways."""
    from test_examples import number_after, run_example
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    out = run_example(Path(EXAMPLES) / "export_onnx.py", tmp_path, ["--epochs", "1", "--target", "reference"])
    ours = number_after(out, "staticgraph held-out accuracy:")
    theirs = number_after(out, "ONNX Runtime held-out accuracy:")
    assert ours == theirs and ours > 0.3, out                  # 1 epoch; chance is 0.1
    assert number_after(out, "largest logit difference:") < 1e-4
    assert (tmp_path / "digits_convnet.onnx").is_file()
