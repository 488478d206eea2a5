"""Visualisation: DOT text (parsed back with regexes), networkx export, write_graph."""
import os
import re
import runpy
import shutil
import stat

import pytest

import staticgraph as sg

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "export_graph.py")
_QSTR = r'"((?:[^"\\]|\\.)*)"'
_NODE_RE = re.compile(r"^\s*" + _QSTR + r" \[(.*)\];$")
_EDGE_RE = re.compile(r"^\s*" + _QSTR + r" -> " + _QSTR + r" \[(.*)\];$")


def _unquote(s):
    return re.sub(r"\\(.)", r"\1", s)


def parse_dot(text):
    """{node name: attr text}, [(src, dst, attr text)], and cluster names with their nesting depth."""
    nodes, edges, clusters, depth = {}, [], [], 0
    for line in text.splitlines():
        if m := _EDGE_RE.match(line):
            edges.append((_unquote(m[1]), _unquote(m[2]), m[3]))
        elif m := _NODE_RE.match(line):
            nodes[_unquote(m[1])] = m[2]
        elif m := re.match(r"^\s*subgraph " + _QSTR + r" \{$", line):
            depth += 1
            clusters.append((_unquote(m[1]), depth))
        elif line.strip() == "}":
            depth -= 1
    assert depth == -1, "unbalanced braces"  # the closing brace of the digraph itself
    return nodes, edges, clusters


def lecture_dag():
    """The lecture's 5x5 DAG and its gradients."""
    w1 = sg.Variable(sg.random_normal((5, 5)), name="w1")
    w2 = sg.Variable(sg.random_normal((5, 5)), name="w2")
    x = sg.Variable(sg.random_normal((5, 1)), name="x")
    x1 = w1 @ x
    x2 = x + w2 @ x1
    x3 = w1 @ (x1 + x2)
    q = sg.norm(x3)
    gw1, gw2 = sg.gradients(q, [w1, w2])
    return dict(w1=w1, w2=w2, x=x, x1=x1, x2=x2, x3=x3, q=q, gw1=gw1, gw2=gw2)


def graph_edges(ops):
    names = {op.name for op in ops}
    data = [(t.op.name, op.name) for op in ops for t in op.inputs if t.op.name in names]
    ctrl = [(c.name, op.name) for op in ops for c in op.control_inputs if c.name in names]
    return data + ctrl


def test_dot_nodes_and_edges_match_graph():
    lecture_dag()
    ops = sg.get_default_graph().get_operations()
    nodes, edges, _ = parse_dot(sg.to_dot())
    assert set(nodes) == {op.name for op in ops} and len(nodes) == len(ops)
    assert sorted((s, d) for s, d, _ in edges) == sorted(graph_edges(ops))
    assert any(op.is_gradient for op in ops)


def test_dot_without_gradients():
    lecture_dag()
    forward = [op for op in sg.get_default_graph().get_operations() if not op.is_gradient]
    nodes, edges, clusters = parse_dot(sg.to_dot(include_gradients=False))
    assert set(nodes) == {op.name for op in forward}
    assert sorted((s, d) for s, d, _ in edges) == sorted(graph_edges(forward))
    assert not any("gradients" in c for c, _ in clusters)


def test_dot_labels_show_type_name_shape_dtype_and_edges_shapes():
    d = lecture_dag()
    nodes, edges, _ = parse_dot(sg.to_dot(d["q"]))
    assert 'label="matmul_2\\nMatMul\\n5×1 float32"' in nodes["matmul_2"]
    assert 'label="norm\\nSqrt\\nscalar float32"' in nodes["norm"]
    assert {a for s, t, a in edges if (s, t) == ("w1", "matmul")} == {'label="5×5", tooltip="w1:0"'}


def test_name_scopes_become_nested_clusters():
    p = sg.placeholder(sg.float32, (None, 3), name="p")
    with sg.name_scope("layer1"):
        with sg.name_scope("inner"):
            h = sg.relu(p * 2.0)
        out = h.sum()
    sg.gradients(out, [p])
    nodes, _, clusters = parse_dot(sg.to_dot())
    assert ("cluster_layer1", 1) in clusters and ("cluster_layer1/inner", 2) in clusters
    assert ("cluster_gradients", 1) in clusters and ("cluster_gradients/layer1", 2) in clusters
    assert 'label="relu\\n' in nodes[h.op.name] and h.op.name.startswith("layer1/inner/")


def test_op_named_like_a_scope_joins_its_cluster():
    sg.Variable(sg.zeros((2,)), name="w")  # op "w" and its initializer "w/Assign"
    text = sg.to_dot()
    block = text[text.index('subgraph "cluster_w" {'):]
    block = block[:block.index("}")]
    assert '"w" [label="w\\nVariable' in block and '"w/Assign" [label="Assign\\nAssign"' in block


def test_gradient_and_kind_styles_are_distinct():
    lecture_dag()
    p = sg.placeholder(sg.float32, (None, 5), name="p")
    sg.constant(1.0, name="c")
    nodes, _, _ = parse_dot(sg.to_dot())
    g = sg.get_default_graph()
    for op in g.get_operations():
        assert ("dashed" in nodes[op.name]) == op.is_gradient, op.name
        assert ("#c0392b" in nodes[op.name]) == op.is_gradient, op.name
    assert "shape=cylinder" in nodes["w1"] and "shape=invhouse" in nodes[p.op.name]
    styles = {re.search(r"shape=\w+, style=\"[^\"]*\", fillcolor=\"[^\"]*\"", nodes[n])[0]
              for n in ("w1", "p", "c", "matmul", "gradients/norm/divide")}
    assert len(styles) == 5


def test_target_subgraph_only_needed_ops():
    d = lecture_dag()
    sg.placeholder(sg.float32, (2,), name="unrelated")
    nodes, _, _ = parse_dot(sg.to_dot(d["x1"]))
    assert set(nodes) == {"w1", "x", "matmul"}
    nodes, _, _ = parse_dot(sg.to_dot([d["x1"].op, d["x2"]]))
    assert set(nodes) == {"w1", "w2", "x", "matmul", "matmul_1", "add"}
    nodes, _, _ = parse_dot(sg.to_dot([d["q"], d["gw1"], d["gw2"]]))
    assert "unrelated" not in nodes and "w1/Assign" not in nodes and "random_normal" not in nodes
    assert "gradients/w1/add" in nodes and "norm" in nodes
    nodes, _, _ = parse_dot(sg.to_dot([d["gw1"]], include_gradients=False))
    assert not any(n.startswith("gradients/") for n in nodes) and "norm" in nodes


def test_control_edges_dashed():
    a = sg.Variable(1.0, name="a")
    with sg.control_dependencies([a.initializer]):
        b = sg.identity(a, name="b")
    _, edges, _ = parse_dot(sg.to_dot(b))
    attrs = {(s, t): attr for s, t, attr in edges}
    assert "style=dashed" in attrs[("a/Assign", "b")]
    assert "style=dashed" not in attrs[("a", "b")]


def test_escaping_and_deterministic_output(tmp_path):
    sg.constant(1.0, name='we"ird\\name')
    text = sg.to_dot()
    assert '"we\\"ird\\\\name" [' in text
    nodes, _, _ = parse_dot(text)
    assert 'we"ird\\name' in nodes
    assert text == sg.to_dot()
    if shutil.which("dot"):  # Graphviz accepts the escaped text
        assert os.path.getsize(sg.write_graph(None, str(tmp_path / "w.svg"))) > 0


def test_deterministic_across_graphs():
    texts = []
    for _ in range(2):
        sg.reset_default_graph()
        lecture_dag()
        texts.append(sg.to_dot())
    assert texts[0] == texts[1]


def test_bad_targets():
    with pytest.raises(TypeError, match="to_dot: target must be a Graph, Tensor, Operation or a list of them, got float"):
        sg.to_dot([1.0])
    a = sg.constant(1.0)
    other = sg.Graph()
    with other.as_default():
        b = sg.constant(2.0)
    with pytest.raises(ValueError, match="different graphs"):
        sg.to_dot([a, b])


def test_to_networkx_nodes_edges_attributes():
    d = lecture_dag()
    sg.constant(1.0, name="c")
    graph = sg.get_default_graph()
    ops = graph.get_operations()
    g = graph.to_networkx()
    assert g.number_of_nodes() == len(ops)
    assert set(g.edges) == set(graph_edges(ops))
    for op in ops:
        attrs = g.nodes[op.name]
        assert attrs["op_type"] == op.type and attrs["is_gradient"] is op.is_gradient
        assert attrs["defined_at"] == op.defined_at
    assert {n for n, a in g.nodes(data=True) if a["is_gradient"]} == \
        {op.name for op in ops if op.is_gradient} != set()
    assert g.nodes["w2"]["shape"] == (5, 5) and g.nodes["w2"]["dtype"] == "float32"
    assert g.nodes["w1/Assign"]["shape"] is None and g.nodes["w1/Assign"]["dtype"] is None
    assert g.edges["matmul", "matmul_1"] == {"tensor": "matmul:0", "control": False}
    grad = d["gw1"].op.name
    assert g.has_edge("gradients/matmul/matmul", grad) and not g.has_edge(grad, "gradients/matmul/matmul")


def test_to_networkx_target_and_control_edges():
    from staticgraph.viz import to_networkx
    a = sg.Variable(1.0, name="a")
    with sg.control_dependencies([a.initializer]):
        b = sg.identity(a, name="b")
    sg.constant(3.0, name="unused")
    g = to_networkx(b)
    assert set(g.nodes) == {"a", "a/Assign", "b", a.initial_value.op.name}
    assert g.edges["a/Assign", "b"]["control"] is True


def test_write_dot_is_atomic_and_returns_path(tmp_path):
    lecture_dag()
    path = str(tmp_path / "g.dot")
    assert sg.write_graph(sg.get_default_graph(), path) == path
    with open(path, encoding="utf-8") as f:
        assert f.read() == sg.to_dot()
    assert os.listdir(tmp_path) == ["g.dot"]


def test_write_svg_with_graphviz(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz 'dot' is not installed (apt-get install graphviz)")
    d = lecture_dag()
    path = sg.write_graph([d["q"], d["gw1"], d["gw2"]], tmp_path / "g.svg")
    with open(path, encoding="utf-8") as f:
        svg = f.read()
    assert "<svg" in svg and "gradients/w1/add" in svg
    assert os.listdir(tmp_path) == ["g.svg"]


def test_missing_dot_raises_runtime_error_naming_dot(tmp_path, monkeypatch):
    sg.constant(1.0)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="'dot'"):
        sg.write_graph(None, str(tmp_path / "g.png"))
    assert os.listdir(tmp_path) == []


def test_failing_dot_reports_stderr(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'boom: layout failed' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(fake.parent))
    sg.constant(1.0)
    with pytest.raises(RuntimeError, match="boom: layout failed"):
        sg.write_graph(None, str(tmp_path / "g.pdf"))
    assert sorted(os.listdir(tmp_path)) == ["bin"]


def test_unknown_suffix_raises_value_error(tmp_path):
    sg.constant(1.0)
    with pytest.raises(ValueError, match=r"\.dot"):
        sg.write_graph(None, str(tmp_path / "g.jpeg"))


def test_example_script_writes_dot_and_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(EXAMPLE, run_name="not_main")["main"](str(tmp_path / "out.svg"))
    assert (tmp_path / "dag.dot").exists()
    assert (tmp_path / "out.svg").exists() == (shutil.which("dot") is not None)
