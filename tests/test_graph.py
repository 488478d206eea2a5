"""Graph mechanics (API.md §1, §6, §10): default graphs, op registry of a graph, names and
name scopes, control dependencies, collections, finalize, recorded source locations."""
import os

import numpy as np
import pytest

import staticgraph as sg

THIS_FILE = os.path.basename(__file__)


def test_builders_add_to_the_default_graph():
    g = sg.get_default_graph()
    assert isinstance(g, sg.Graph)
    n0 = len(g.get_operations())
    x = sg.placeholder(sg.float32, (2,))
    y = x + 1.0
    assert x.graph is g and y.graph is g
    ops = g.get_operations()
    assert len(ops) == n0 + 3              # placeholder, constant 1.0, add
    assert ops[-1] is y.op and ops[n0] is x.op


def test_as_default_nesting():
    outer = sg.get_default_graph()
    g1, g2 = sg.Graph(), sg.Graph()
    with g1.as_default() as entered:
        assert entered is g1
        assert sg.get_default_graph() is g1
        a = sg.constant(1.0)
        with g2.as_default():
            assert sg.get_default_graph() is g2
            b = sg.constant(2.0)
        assert sg.get_default_graph() is g1
    assert sg.get_default_graph() is outer
    assert a.graph is g1 and b.graph is g2
    assert g1.get_operations() == [a.op] and g2.get_operations() == [b.op]
    assert outer.get_operations() == []


def test_as_default_restores_on_exception():
    outer = sg.get_default_graph()
    g = sg.Graph()
    with pytest.raises(KeyError, match="boom"):
        with g.as_default():
            raise KeyError("boom")
    assert sg.get_default_graph() is outer


def test_reset_default_graph():
    old = sg.get_default_graph()
    c = sg.constant(1.0)
    sg.reset_default_graph()
    new = sg.get_default_graph()
    assert new is not old and new.get_operations() == []
    assert c.graph is old
    d = sg.constant(1.0)
    assert d.graph is new and d.name == "const:0"
    with sg.Graph().as_default():
        with pytest.raises(AssertionError, match=r"reset_default_graph\(\) called inside"):
            sg.reset_default_graph()


def test_ops_built_from_tensors_go_to_their_graph():
    g = sg.Graph()
    with g.as_default():
        x = sg.placeholder(sg.float32, (3,))
    # outside the block the default graph is another one, but the ops follow x
    y = x * 2.0 + 1.0
    z = sg.reduce_sum(sg.exp(x))
    w = x[0]
    assert y.graph is g and z.graph is g and w.graph is g
    assert sg.get_default_graph().get_operations() == []


def test_operation_lookup():
    x = sg.placeholder(sg.float32, (2,), name="x")
    y = sg.identity(x, name="y")
    g = sg.get_default_graph()
    assert g.get_operation_by_name("y") is y.op
    assert g.get_tensor_by_name("y:0") is y
    assert g.get_tensor_by_name("x:0") is x
    with pytest.raises(KeyError, match="nope"):
        g.get_operation_by_name("nope")
    with pytest.raises(KeyError, match="no tensor named 'y:1': op 'y' has 1 output"):
        g.get_tensor_by_name("y:1")
    with pytest.raises(ValueError, match="tensor names look like '<op name>:<output index>', got 'y'"):
        g.get_tensor_by_name("y")


def test_every_op_and_tensor_is_found_by_name(rng):
    g = sg.get_default_graph()
    ops = []
    for i in range(int(rng.integers(50, 120))):
        scope = ["a", "b", "a/b"][int(rng.integers(3))]
        with sg.name_scope(scope):
            ops.append(sg.constant(float(i), name=["c", "c_1", "d"][int(rng.integers(3))]).op)
    assert len({op.name for op in g.get_operations()}) == len(g.get_operations())
    for op in g.get_operations():
        assert g.get_operation_by_name(op.name) is op
        assert g.get_tensor_by_name(op.name + ":0") is op.outputs[0]


def test_operation_records_inputs_attrs_and_location():
    x = sg.placeholder(sg.float32, (2, 3), name="x")
    t = sg.transpose(x, (1, 0))          # this line is recorded
    op = t.op
    assert op.type == "Transpose"
    assert op.inputs == (x,)
    assert op.attrs["perm"] == (1, 0)
    assert op.graph is sg.get_default_graph()
    assert THIS_FILE in op.defined_at
    line = int(op.defined_at.rsplit(":", 1)[1])
    with open(__file__) as f:
        assert "this line is recorded" in f.readlines()[line - 1]
    assert not op.is_gradient


def test_op_names_are_unique_across_many_ops():
    x = sg.placeholder(sg.float32, (2,))
    for _ in range(30):
        x = x + 1.0
    names = [op.name for op in sg.get_default_graph().get_operations()]
    assert len(names) == len(set(names))
    adds = [n for n in names if n == "add" or n.startswith("add_")]
    assert len(adds) == 30
    assert set(adds) == {"add"} | {f"add_{i}" for i in range(1, 30)}


def test_name_scope_yields_scope_and_nests():
    with sg.name_scope("outer") as scope:
        assert scope == "outer"
        with sg.name_scope("inner") as inner:
            assert inner == "outer/inner"
            c = sg.constant(1.0, name="c")
        d = sg.constant(1.0)
    assert c.op.name == "outer/inner/c"
    assert d.op.name.startswith("outer/") and "/inner/" not in d.op.name
    e = sg.constant(1.0, name="c")
    assert e.op.name == "c"


def test_name_scope_on_a_graph_and_variables():
    g = sg.Graph()
    with g.as_default(), g.name_scope("net"):
        v = sg.Variable(np.zeros(2, np.float32), name="w")
        v2 = sg.Variable(np.zeros(2, np.float32), name="w")
    assert v.name == "net/w:0" and v2.name == "net/w_1:0"
    assert v.var_name == "net/w"
    # the initializer lives next to its variable (not under a doubled scope)
    assert v.initializer.name == "net/w/Assign"
    assert v2.initializer.name == "net/w_1/Assign"
    names = [op.name for op in g.get_operations()]
    assert not any(n.startswith("net/net/") for n in names), names


def test_control_dependencies_are_recorded():
    a = sg.constant(1.0, name="a")
    b = sg.constant(2.0, name="b")
    with sg.control_dependencies([a]):
        c = sg.constant(3.0)
        with sg.control_dependencies([b.op]):
            d = sg.constant(4.0)
        with sg.control_dependencies(None):
            e = sg.constant(5.0)
    f = sg.constant(6.0)
    assert c.op.control_inputs == (a.op,)
    assert set(d.op.control_inputs) == {a.op, b.op}
    assert e.op.control_inputs == ()
    assert f.op.control_inputs == ()
    with pytest.raises(TypeError, match="control_dependencies takes Tensors or Operations, got int"):
        with sg.control_dependencies([42]):
            pass


def test_group_is_an_op_without_outputs():
    a = sg.constant(1.0)
    v = sg.Variable(np.float32(0.0))
    grp = sg.group(a, v.initializer, name="both")
    assert isinstance(grp, sg.Operation)
    assert grp.outputs == ()
    assert grp.name == "both"
    assert set(grp.control_inputs) == {a.op, v.initializer}


def test_variable_structure():
    v = sg.Variable(np.ones((2, 3)), name="w")
    assert isinstance(v, sg.Variable) and isinstance(v, sg.Tensor)
    assert v.op.type == "Variable"
    assert v.op.outputs == (v,)
    assert v.shape == (2, 3) and v.dtype == sg.float32
    assert isinstance(v.initializer, sg.Operation) and v.initializer.type == "Assign"
    assert v.initializer.inputs[0] is v
    assert v.trainable
    assert sg.global_variables() == [v]


def test_finalize_and_unfinalize():
    g = sg.get_default_graph()
    a = sg.constant(1.0)
    g.finalize()
    with pytest.raises(RuntimeError, match="finalized"):
        a * 2.0
    with pytest.raises(RuntimeError, match="finalized"):
        sg.group(a)
    g.unfinalize()
    assert not g.finalized
    assert (a * 2.0).graph is g


def test_graph_growth_in_a_loop_is_flagged():
    x = sg.placeholder(sg.float32, ())
    with sg.Session() as sess:
        with pytest.warns(RuntimeWarning, match="grown"):
            for i in range(25):
                sess.run(x + float(i), {x: 1.0})     # builds a new op each iteration


def test_version_counts_ops():
    g = sg.get_default_graph()
    v0 = g.version
    sg.constant(1.0) + 2.0
    assert g.version == v0 + 3


def test_static_shape_compatibility():
    from staticgraph.shapes import compatible
    assert compatible((None, 3), (5, 3)) and compatible(None, (1, 2)) and compatible((), ())
    assert not compatible((None, 3), (5, 4)) and not compatible((3,), (3, 1))
