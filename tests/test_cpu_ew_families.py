"""Elementwise op families (``library.EW_FAMILIES``): the ops of a family share one loop kernel
``ew_<family>``, the op picked by the record's ``op`` code, so a plan compiles one wrapper per
family and dtypes. Every case of every family is checked against the reference backend through real
cpu plans (broadcast rows and columns, rows longer than the row buffer, in place, split into worker
shares), the strided loop at kernel level (transposed and strided views), and a dtype tuple that a
family does not serve falls back to the op's own kernel."""
import re

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import library, lowerings, native

CHUNK = library.ROW_CHUNK
# (x's shape, the other operand's): a row broadcast, a column broadcast (the row buffer), rows longer
# than the row buffer (chunks)
SHAPES = [((7, 33), (33,)), ((6, 9), (6, 1)), ((2, CHUNK + 5), (2, CHUNK + 5))]

BINARY = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Div": lambda a, b: a / b, "Pow": sg.pow, "Maximum": sg.maximum, "Minimum": sg.minimum}
COMPARE = {"Less": sg.less, "LessEqual": sg.less_equal, "Greater": sg.greater, "GreaterEqual": sg.greater_equal,
           "Equal": sg.equal, "NotEqual": sg.not_equal}
UNARY = {"Neg": sg.negative, "Abs": sg.abs, "Sign": sg.sign, "Square": sg.square, "Relu": sg.relu,
         "Copy": sg.transpose, "Exp": sg.exp, "Sqrt": sg.sqrt, "Log": sg.log, "Sin": sg.sin, "Cos": sg.cos,
         "Tanh": sg.tanh, "Sigmoid": sg.sigmoid}


def test_every_op_of_a_family_has_a_builder_here():
    assert set(BINARY) == set(library.EW_FAMILIES["ew_binary"])
    assert set(COMPARE) == set(library.EW_FAMILIES["ew_compare"])
    assert set(UNARY) == set(library.EW_FAMILIES["ew_unary"]) | set(library.EW_FAMILIES["ew_math"])


def test_family_kernel_serves_only_dtypes_every_case_types_for():
    fk = library.family_kernel
    assert fk("ew_Add", ("float32",) * 3) == fk("ew_Minimum", ("int64",) * 3) == "ew_binary"
    assert fk("ew_Less", ("int32", "int32", "bool")) == "ew_compare"
    assert fk("ew_Exp", ("float64", "float64")) == "ew_unary" and fk("ew_Tanh", ("float32",) * 2) == "ew_math"
    assert fk("ew_Add", ("int16",) * 3) == "ew_Add"                        # not a family dtype
    assert fk("ew_Add", ("float32", "float64", "float64")) == "ew_Add"     # mixed operands
    assert fk("ew_Less", ("float32", "float32", "float32")) == "ew_Less"   # not a bool output
    assert fk("ew_Neg", ("int64", "int64")) == "ew_unary" and fk("ew_Log", ("int64",) * 2) == "ew_Log"
    assert fk("ew_Neg", ("bool", "bool")) == "ew_Neg"
    assert fk("ew_Copy", ("float32", "float64")) == "ew_Copy"              # a cast
    for own in ("ew_PowInt", "ew_CastBool", "ew_Where", "ew_SubMul", "mm_blas"):
        assert fk(own, ("float32",) * 3) == own
    assert library.ew_op_code("Sub") == 1 and library.ew_op_code("Where") == 0
    codes = [library.ew_op_code(n) for f in library.EW_FAMILIES.values() for n in f]
    assert all(len({library.ew_op_code(n) for n in f}) == len(f) for f in library.EW_FAMILIES.values()), codes


def _check(fetches, feeds, dtype):
    """Run ``fetches`` in a cpu plan (its native step, no fusion; some outputs in place) and on the
    reference backend; return the plan's wrapper keys."""
    with sg.Session() as sess:
        plan = sess.compile(fetches, list(feeds))
        plan.wait()
        got = plan(*feeds.values())
        keys = native.wrapper_keys(plan._exe.base.prog)
        assert int(re.search(r"(\d+) in place", plan.explain()).group(1)) > 0
    with sg.Session(target="reference") as ref:
        want = ref.run(fetches, feeds)
    for g, w, t in zip(got, want, fetches):
        assert g.dtype == w.dtype, t
        if np.dtype(dtype).kind == "f" and g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=2e-7 if dtype == np.float64 else 1e-6, atol=0, err_msg=str(t))
        else:
            np.testing.assert_array_equal(g, w, err_msg=str(t))
    return keys


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "i":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    v.flat[0] = 0.0                         # ties for the comparisons, Sign's zero
    v.flat[v.size // 2] = np.nan            # every comparison with NaN is False but NotEqual
    return v


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("shape, other", SHAPES)
def test_binary_and_compare_families_match_the_reference(shape, other, dtype, rng):
    """Each op of ew_binary and ew_compare (ints: the ops the graph allows them), out of place and in
    place on x's dead temporary, the batch dim unknown (the calls split into worker shares)."""
    xv, bv = _values(rng, shape, dtype), _values(rng, other, dtype)
    yv = _values(rng, shape, dtype)
    yv[..., 2:4] = xv[..., 2:4]                                      # ties
    x = sg.placeholder(dtype, (None,) + shape[1:], name="x")
    y = sg.placeholder(dtype, (None,) + shape[1:], name="y")
    b = sg.placeholder(dtype, other, name="b")
    ints = np.dtype(dtype).kind == "i"
    binary = {k: f for k, f in BINARY.items() if not (ints and k in ("Div", "Pow"))}
    if not ints:
        xv = np.where(np.arange(xv.size).reshape(shape) % 3 == 0, np.abs(xv), xv)   # Pow: real results too
    fetches = [f(x, b) for f in binary.values()]
    fetches += [f(x - y * (k + 2), b) for k, f in enumerate(binary.values())]     # in place on a dead temporary
    fetches += [f(x, y) for f in COMPARE.values()] + [f(x, b) for f in COMPARE.values()]
    keys = _check(fetches, {x: xv, y: yv, b: bv}, dtype)
    name = np.dtype(dtype).name
    assert ("ew_binary", (name,) * 3, "") in keys and ("ew_compare", (name, name, "bool"), "") in keys
    assert not any(k[0] in {f"ew_{n}" for n in binary} | {f"ew_{n}" for n in COMPARE} for k in keys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_unary_families_match_the_reference(dtype, rng):
    """Each op of ew_unary and ew_math (ints: ew_unary's ops but Exp, the graph allows no more) on
    several shapes, out of place and in place (on x + k's dead temporary); Copy through a transpose
    (the strided loop)."""
    ints = np.dtype(dtype).kind == "i"
    unary = {k: f for k, f in UNARY.items() if not ints or (k in library.EW_FAMILIES["ew_unary"] and k != "Exp")}
    fetches, feeds = [], {}
    for n, (shape, _) in enumerate(SHAPES):
        x = sg.placeholder(dtype, (None,) + shape[1:], name=f"x{n}")
        feeds[x] = _values(rng, shape, dtype) * 2
        fetches += [f(x) for f in unary.values()] + [f(x + (k + 1)) for k, f in enumerate(unary.values())]
    keys = _check(fetches, feeds, dtype)
    name = np.dtype(dtype).name
    assert ("ew_unary", (name,) * 2, "") in keys and (ints or ("ew_math", (name,) * 2, "") in keys)
    assert not any(k[0][3:] in unary for k in keys)


def test_two_ops_of_a_family_share_one_wrapper_and_other_dtypes_fall_back(rng):
    """Add and Maximum on float32 run one wrapper (ew_binary's), Greater and Less on int32 another
    (ew_compare's), Neg and Abs on int32 a third (ew_unary's); Equal on bools and a cast (Copy from
    float32 to float64), dtypes no family serves, each run their own kernel; all with the
    reference's results."""
    x, y = sg.placeholder(sg.float32, (None, 5), name="x"), sg.placeholder(sg.float32, (None, 5), name="y")
    i, j = sg.placeholder(sg.int32, (None, 5), name="i"), sg.placeholder(sg.int32, (None, 5), name="j")
    fetches = [x + y, sg.maximum(x, y), -i, sg.abs(i), sg.equal(i > j, i < j), sg.cast(x, sg.float64)]
    feeds = {x: _values(rng, (4, 5), np.float32), y: _values(rng, (4, 5), np.float32),
             i: _values(rng, (4, 5), np.int32), j: _values(rng, (4, 5), np.int32)}
    with sg.Session() as sess:
        plan = sess.compile(fetches, list(feeds))
        plan.wait()
        got = plan(*feeds.values())
        step = plan._exe.base.native
        kernels = {c.kernel for c in plan._exe.base.prog.all_calls}
    assert {"ew_Add", "ew_Maximum", "ew_Greater", "ew_Less", "ew_Neg", "ew_Abs"} <= kernels   # the lowering's names
    titles = sorted(t for t, _ in step.kernels)
    assert titles == ["ew_Copy(float32, float64)", "ew_Equal(bool, bool, bool)", "ew_binary(float32, float32, float32)",
                      "ew_compare(int32, int32, bool)", "ew_unary(int32, int32)"], titles
    assert len(step.F) == 5
    with sg.Session(target="reference") as ref:
        want = ref.run(fetches, feeds)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_every_case_runs_the_strided_loop_on_views(rng):
    """At kernel level (the njit kernels, float64): each case of each family with X0 a transposed
    view, X1 every other element, into a strided output (no unit inner stride: the strided loop),
    and into a contiguous one; the other elements of the output are left alone."""
    lib = library.load()
    E = np.zeros(4, np.int64)
    n0, n1 = 5, 7
    a = rng.standard_normal(n0 * n1) + 0.5
    b = rng.standard_normal(2 * n0 * n1)
    a_view = lowerings.View(0, (n0, n1), (1, n0))                  # a.reshape(n1, n0).T
    b_view = lowerings.View(1, (n0, n1), (2 * n1, 2))              # b[1::2].reshape(n0, n1)
    av, bv = a.reshape(n1, n0).T, b[1::2].reshape(n0, n1)
    outs = [(lowerings.View(0, (n0, n1), (n1, 1)), slice(None)),                 # contiguous
            (lowerings.View(1, (n0, n1), (2 * n1, 2)), slice(1, None, 2))]       # every other element
    numpy = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
             "Maximum": np.maximum, "Minimum": np.minimum, "Less": np.less, "LessEqual": np.less_equal,
             "Greater": np.greater, "GreaterEqual": np.greater_equal, "Equal": np.equal, "NotEqual": np.not_equal,
             "Neg": np.negative, "Abs": np.abs, "Sign": np.sign, "Square": np.square,
             "Relu": lambda v: np.maximum(v, 0), "Copy": lambda v: v, "Exp": np.exp, "Sqrt": np.sqrt, "Log": np.log,
             "Sin": np.sin, "Cos": np.cos, "Tanh": np.tanh, "Sigmoid": lambda v: 1 / (1 + np.exp(-v))}
    with np.errstate(invalid="ignore"):
        for family, names in library.EW_FAMILIES.items():
            kernel = getattr(lib, family)
            bool_out = family == "ew_compare"
            for name in names:
                binary = library.ELEMENTWISE[name][0] == 2
                want = numpy[name](av, bv) if binary else numpy[name](av)
                for out_view, part in outs:
                    y = np.zeros(2 * n0 * n1, bool if bool_out else np.float64)
                    before = y.copy()
                    views = [a_view, b_view] if binary else [a_view]
                    rec = np.array(lowerings.ew_record(out_view, views, op=library.ew_op_code(name)), np.int64)
                    kernel(a, b, y, rec, E, 0) if binary else kernel(a, y, rec, E, 0)
                    got = y[part][:n0 * n1].reshape(n0, n1)
                    np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{family} {name}")
                    rest = np.ones(y.size, bool)
                    rest[np.arange(y.size)[part][:n0 * n1]] = False
                    np.testing.assert_array_equal(y[rest], before[rest])
    assert E[0] == 0
