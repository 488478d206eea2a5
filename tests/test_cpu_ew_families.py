"""Elementwise op families (``library.EW_FAMILIES``): the ops of a family share one loop kernel
``ew_<family>``, the op picked by the record's ``op`` code, so a plan compiles one wrapper per
family and dtypes. Every case of every family is checked against the reference backend through real
cpu plans (broadcast rows and columns, rows longer than the row buffer, in place, split into worker
shares); at kernel level, a family kernel (no strided loop) refuses strided views and
``ew_StridedCopy`` copies between them; a dtype tuple that a family does not serve falls back to
the op's own kernel."""
import re

import numpy as np
import pytest

import staticgraph as sg
from compiler.backends.cpu import library, lowerings, native
from staticgraph.ops.reduce import broadcast_like

CHUNK = library.ROW_CHUNK
# (x's shape, the other operand's): a row broadcast, a column broadcast (the row buffer), rows longer
# than the row buffer (chunks)
SHAPES = [((7, 33), (33,)), ((6, 9), (6, 1)), ((2, CHUNK + 5), (2, CHUNK + 5))]

BINARY = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Div": lambda a, b: a / b, "Pow": sg.pow, "Maximum": sg.maximum, "Minimum": sg.minimum}
COMPARE = {"Less": sg.less, "LessEqual": sg.less_equal, "Greater": sg.greater, "GreaterEqual": sg.greater_equal,
           "Equal": sg.equal, "NotEqual": sg.not_equal}
UNARY = {"Neg": sg.negative, "Abs": sg.abs, "Sign": sg.sign, "Square": sg.square, "Relu": sg.relu,
         "Copy": lambda x: broadcast_like(x, x), "Exp": sg.exp, "Sqrt": sg.sqrt, "Log": sg.log, "Sin": sg.sin, "Cos": sg.cos,
         "Tanh": sg.tanh, "Sigmoid": sg.sigmoid}


def test_every_op_of_a_family_has_a_builder_here():
    fam = library.EW_FAMILIES
    assert set(BINARY) == set(fam["ew_binary"]) | set(fam["ew_binary_rare"])
    assert set(COMPARE) == set(fam["ew_compare"])
    assert set(UNARY) == set(fam["ew_unary"]) | set(fam["ew_unary_rare"]) | set(fam["ew_math"])
    members = [n for names in fam.values() for n in names]
    assert len(members) == len(set(members))                # an op in one family at most


def test_family_kernel_serves_only_dtypes_every_case_types_for():
    fk = library.family_kernel
    assert fk("ew_Add", ("float32",) * 3) == fk("ew_Div", ("int64",) * 3) == "ew_binary"
    assert fk("ew_Minimum", ("int64",) * 3) == fk("ew_Pow", ("float32",) * 3) == "ew_binary_rare"
    assert fk("ew_Abs", ("float32",) * 2) == "ew_unary_rare"
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
    assert ("ew_binary_rare", (name,) * 3, "") in keys
    assert not any(k[0] in {f"ew_{n}" for n in binary} | {f"ew_{n}" for n in COMPARE} for k in keys)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_unary_families_match_the_reference(dtype, rng):
    """Each op of ew_unary and ew_math (ints: ew_unary's ops but Exp, the graph allows no more) on
    several shapes, out of place and in place (on x + k's dead temporary); Copy through a
    BroadcastLike of the batch dim."""
    ints = np.dtype(dtype).kind == "i"
    int_ops = library.EW_FAMILIES["ew_unary"] + library.EW_FAMILIES["ew_unary_rare"]
    unary = {k: f for k, f in UNARY.items() if not ints or (k in int_ops and k != "Exp")}
    fetches, feeds = [], {}
    for n, (shape, _) in enumerate(SHAPES):
        x = sg.placeholder(dtype, (None,) + shape[1:], name=f"x{n}")
        feeds[x] = _values(rng, shape, dtype) * 2
        fetches += [f(x) for f in unary.values()] + [f(x + (k + 1)) for k, f in enumerate(unary.values())]
    keys = _check(fetches, feeds, dtype)
    name = np.dtype(dtype).name
    assert ("ew_unary", (name,) * 2, "") in keys and ("ew_unary_rare", (name,) * 2, "") in keys
    assert ints or ("ew_math", (name,) * 2, "") in keys
    assert not any(k[0][3:] in unary for k in keys)


def test_two_ops_of_a_family_share_one_wrapper_and_other_dtypes_fall_back(rng):
    """Add and Mul on float32 run one wrapper (ew_binary's), Greater and Less on int32 another
    (ew_compare's), Neg and Square on int32 a third (ew_unary's); Equal on bools and a cast (Copy from
    float32 to float64), dtypes no family serves, each run their own kernel; all with the
    reference's results."""
    x, y = sg.placeholder(sg.float32, (None, 5), name="x"), sg.placeholder(sg.float32, (None, 5), name="y")
    i, j = sg.placeholder(sg.int32, (None, 5), name="i"), sg.placeholder(sg.int32, (None, 5), name="j")
    fetches = [x + y, x * y, -i, sg.square(i), sg.equal(i > j, i < j), sg.cast(x, sg.float64)]
    feeds = {x: _values(rng, (4, 5), np.float32), y: _values(rng, (4, 5), np.float32),
             i: _values(rng, (4, 5), np.int32), j: _values(rng, (4, 5), np.int32)}
    with sg.Session() as sess:
        plan = sess.compile(fetches, list(feeds))
        plan.wait()
        got = plan(*feeds.values())
        step = plan._exe.base.native
        kernels = {c.kernel for c in plan._exe.base.prog.all_calls}
    assert {"ew_Add", "ew_Mul", "ew_Greater", "ew_Less", "ew_Neg", "ew_Square"} <= kernels   # the lowering's names
    titles = sorted(t for t, _ in step.kernels)
    assert titles == ["ew_Copy(float32, float64)", "ew_Equal(bool, bool, bool)", "ew_binary(float32, float32, float32)",
                      "ew_compare(int32, int32, bool)", "ew_unary(int32, int32)"], titles
    assert len(step.F) == 5
    with sg.Session(target="reference") as ref:
        want = ref.run(fetches, feeds)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


STRIDED_A = lowerings.View(0, (5, 7), (1, 5))            # a.reshape(7, 5).T
STRIDED_B = lowerings.View(1, (5, 7), (14, 2))           # b[1::2].reshape(5, 7)
OUTS = [(lowerings.View(0, (5, 7), (7, 1)), slice(None)),            # contiguous
        (lowerings.View(1, (5, 7), (14, 2)), slice(1, None, 2))]     # every other element


def test_a_family_kernel_refuses_strided_views_with_an_error_and_writes_nothing(rng):
    """At kernel level (the njit kernels, float64): the families have no strided loop (whole
    tensors never need one): given a transposed X0, a strided X1 or a strided output, each case
    reports error 2 at its record and leaves the output alone. (ew_math's and the rare families'
    loops are generated as ew_unary's and ew_binary's: left out, they would only add compiles.)"""
    lib = library.load()
    a, b = rng.standard_normal(35) + 0.5, rng.standard_normal(70)
    contiguous = lowerings.View(0, (5, 7), (7, 1))
    for family, names in library.EW_FAMILIES.items():
        if family in ("ew_math", "ew_binary_rare", "ew_unary_rare"):
            continue
        kernel = getattr(lib, family)
        for name in names:
            binary = library.ELEMENTWISE[name][0] == 2
            for out_view, views in [(contiguous, [STRIDED_A, contiguous]), (contiguous, [contiguous, STRIDED_B]),
                                    (OUTS[1][0], [contiguous, contiguous])]:
                E = np.zeros(4, np.int64)
                y = np.zeros(70, bool if family == "ew_compare" else np.float64)
                views = views if binary else views[:1]
                if not binary and views[0] is contiguous and out_view is contiguous:
                    continue
                rec = np.array([0] * 3 + lowerings.ew_record(out_view, views, op=library.ew_op_code(name)), np.int64)
                kernel(a, b, y, rec, E, 3) if binary else kernel(a, y, rec, E, 3)
                assert list(E[:2]) == [2, 3], (family, name)
                assert not y.any()
    assert "strided operands" in library.ERRORS[2]


def test_strided_copy_runs_the_strided_loop_on_views(rng):
    """``ew_StridedCopy`` (a transpose's, a slice's, a concatenation's copy) from a transposed view and
    from every other element, into a strided output and into a contiguous one; the other elements
    of the output are left alone."""
    lib = library.load()
    E = np.zeros(4, np.int64)
    a, b = rng.standard_normal(35), rng.standard_normal(70)
    for src, view, want in [(a, STRIDED_A, a.reshape(7, 5).T), (b, STRIDED_B, b[1::2].reshape(5, 7))]:
        for out_view, part in OUTS:
            y = np.zeros(70)
            rec = np.array(lowerings.ew_record(out_view, [view]), np.int64)
            lib.ew_StridedCopy(src, y, rec, E, 0)
            np.testing.assert_array_equal(y[part][:35].reshape(5, 7), want)
            rest = np.ones(70, bool)
            rest[np.arange(70)[part][:35]] = False
            assert not y[rest].any()
    assert E[0] == 0


def test_only_a_strided_kernel_takes_views_of_its_own(monkeypatch):
    """The lowering gives views of its own (``in_views``/``out_view``) only to a kernel with a strided
    loop (``library.EW_STRIDED``): a lowering that tries another fails at compile, naming its op; a
    transpose and a slice lower to ``ew_StridedCopy``."""
    from compiler.backends.cpu.lowerings import LOWERINGS
    from staticgraph.errors import InternalError

    def neg_of_a_view(op, b):
        b.ew("Neg", op.outputs[0], op.inputs, in_views=[lambda env: env.view(op.inputs[0])])
    x = sg.placeholder(sg.float32, (None, 6), name="x")
    with monkeypatch.context() as patch:
        patch.setitem(LOWERINGS, "Neg", neg_of_a_view)
        with sg.Session() as sess, pytest.raises(InternalError, match="ew_Neg has no strided loop") as err:
            sess.compile(sg.negative(x, name="negated"), [x])
        assert "negated" in str(err.value)
    with sg.Session() as sess:
        plan = sess.compile([sg.transpose(x), x[:, 1::2]], [x])
        kernels = [c.kernel for c in plan._exe.base.prog.all_calls]
        xv = np.arange(24, dtype=np.float32).reshape(4, 6)
        got = plan(xv)
    assert set(kernels) == {"ew_StridedCopy"}
    np.testing.assert_array_equal(got[0], xv.T)
    np.testing.assert_array_equal(got[1], xv[:, 1::2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.bool_])
def test_row_buffer_is_a_fresh_stack_array_of_the_operand_dtype(dtype):
    """``base.row_buffer``: ROW_CHUNK elements of the operand's dtype, one buffer per call site, each
    writable over its whole length (the loops spread a broadcast input over it)."""
    from numba import njit
    from compiler.backends.cpu.kernels.base import row_buffer

    @njit
    def fill(x):
        a = row_buffer(x)
        b = row_buffer(x)
        for j in range(a.size):
            a[j] = x[0]
            b[j] = x[1]
        return a.size, a[0], a[a.size - 1], b[b.size - 1], a.ndim
    x = np.array([1, 0], dtype)
    assert fill(x) == (CHUNK, x[0], x[0], x[1], 1)
    assert fill.nopython_signatures[0].return_type[1] == fill.nopython_signatures[0].args[0].dtype
