"""The kernel library: facts every kernel and lowering shares, and its one generated module.

Every kernel has the signature ``kernel(*arrays, M, E, p)``:

- ``arrays``: flat 1-D buffers (a plan arena or the session's variable storage,
  one per dtype); inputs first, the output last;
- ``M``: the plan's int64 table; the kernel's record starts at ``M[p]`` and holds
  the concrete shapes, element offsets and strides of its operands (written at
  plan entry for each shape signature, so a new batch size never recompiles);
- ``E``: int64 error slots: a kernel that meets bad data sets ``E[0]`` to an
  error code (see ``ERRORS``) and ``E[1] = p``, and returns; the plan raises the
  matching ``sg.errors`` exception naming the op after the step.

Hand-written kernels are ordinary modules of the package (``kernels/``). What is truly
generated is generated here, as the text of one module (``SOURCE``): the elementwise kernels
(one per entry of ``ELEMENTWISE``, the op table: a Python expression over the scalars ``x0``,
``x1``...; and one per op family, ``EW_FAMILIES``, that plans run instead where it serves the
dtypes) and the Winograd F(4x4, 3x3) transforms (unrolled from their matrices, ``nn_winograd``).
That module also imports every kernel and helper of ``kernels/`` by name, so wrappers and plans
find any kernel in one namespace. Numba cannot cache ``exec``'d code, so it is written to a
verified PlanCache entry and imported from there (``load``). ``SOURCE`` is made when first
asked for; ``SOURCE_HASH`` (which covers the text of ``kernels/`` and the machine's BLAS symbols
too) is taken at import, over all of it but its import lines (which follow from ``kernels/``),
and is part of every plan and wrapper key.

This module imports neither Numba nor the kernels: lowering and plan keys need only its facts.
"""
from __future__ import annotations

import ast
import atexit
import functools
import hashlib
import re
import sys
from pathlib import Path
from typing import List, Sequence, Union

from . import blas, opt_levels, records
from .records import RecordSpec

MAXR = 8   # the largest rank a kernel record describes

# error codes a kernel can report -> message (the op and its inputs are named by the plan)
ERRORS = {1: "Integers to negative integer powers are not allowed.",
          2: "internal error: an elementwise kernel without a strided loop was given strided operands "
             "(a cpu lowering bug: please report it)"}

# elementwise scalar expressions: name -> (arity, expression, check-expression or "")
# float32 transcendentals are computed in float64 and rounded once on store, like the reference.
ELEMENTWISE = {
    "Neg": (1, "-x0", ""), "Abs": (1, "abs(x0)", ""), "Sign": (1, "_sign(x0)", ""),
    "Square": (1, "x0 * x0", ""), "Relu": (1, "_relu(x0)", ""), "Sqrt": (1, "np.sqrt(x0)", ""),
    "Exp": (1, "np.exp(np.float64(x0))", ""), "Log": (1, "np.log(np.float64(x0))", ""),
    "Sin": (1, "np.sin(np.float64(x0))", ""), "Cos": (1, "np.cos(np.float64(x0))", ""),
    "Tanh": (1, "np.tanh(np.float64(x0))", ""), "Sigmoid": (1, "_sigmoid(np.float64(x0))", ""),
    "Copy": (1, "x0", ""), "CastBool": (1, "x0 != 0", ""),
    "Add": (2, "x0 + x1", ""), "Sub": (2, "x0 - x1", ""), "Mul": (2, "x0 * x1", ""),
    "Div": (2, "x0 / x1", ""), "Pow": (2, "np.power(x0, x1)", ""),
    "PowInt": (2, "_ipow(x0, x1)", "x1 < 0"),
    "Maximum": (2, "_maximum(x0, x1)", ""), "Minimum": (2, "_minimum(x0, x1)", ""),
    "Less": (2, "x0 < x1", ""), "LessEqual": (2, "x0 <= x1", ""), "Greater": (2, "x0 > x1", ""),
    "GreaterEqual": (2, "x0 >= x1", ""), "Equal": (2, "x0 == x1", ""), "NotEqual": (2, "x0 != x1", ""),
    "Where": (3, "x1 if x0 else x2", ""),
    "SubMul": (3, "x0 - x1 * x2", ""),      # compiler-internal: the write-back of assign_sub(v, a * b)
    "StridedCopy": (1, "x0", ""),           # compiler-internal: a copy between views (transpose, slice, concat)
}
# The kernels with a loop for any strides (``loop_kernel(strided=True)``): the lowering gives only
# them views of its own (``in_views``/``out_view``). Every other kernel's operands are whole arena
# tensors, contiguous or broadcast, so its loops all read unit inner strides (or 0, a broadcast)
# and the strided loop, a quarter of its compile, is left out.
EW_STRIDED = frozenset({"StridedCopy"})
# The kernels whose output rarely shares input 0's buffer: Where's input 0 is its bool condition and
# CastBool's is never a bool (a cast to the same dtype is no op), so the memory planner, which
# requires the same dtype, offers it only to a Where over bools. The loop that reads input 0
# through the output (only faster, in place: ``loop_kernel``) is left out of them.
EW_NOT_IN_PLACE = frozenset({"Where", "CastBool"})

# Op families: the ops of one family share ONE loop kernel ``ew_<family>``, so ONE compiled wrapper per
# operand dtypes instead of one per op (wrapper compiles are most of a plan's start); the record's ``op``
# (the op's index in its family) picks the op at run time, around each innermost loop only (the loops
# stay tight and vectorizable; broadcasting and the outer loops are shared). A family kernel compiles
# every member for its dtypes, so it serves only the dtypes in ``EW_FAMILY_DTYPES`` (every member types,
# with its own kernel's arithmetic); other dtypes, and ops outside a family (an error check: PowInt;
# CastBool, Where, SubMul), run the op's own kernel ``ew_<name>``. The lowering names the op's kernel
# (``ew_Add``); ``family_kernel`` maps it, per dtypes, where a wrapper is chosen (``native.wrapper_keys``).
# A family's compile grows with its cases (each case has its loops): the ops most training graphs
# use (LeNet's, an MLP's: Add, Sub, Mul, Div; Relu, Copy, Exp, Neg, Square) are kept apart from the
# rarer ones (``_rare``), so such a graph compiles two smaller families (measured: a 7-case family
# 1.9 s, its 4 common cases 1.25 s) and one that uses the rare ones too compiles one more wrapper.
EW_FAMILIES = {
    "ew_binary": ("Add", "Sub", "Mul", "Div"),
    "ew_binary_rare": ("Pow", "Maximum", "Minimum"),
    "ew_compare": ("Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual"),
    "ew_unary": ("Neg", "Square", "Relu", "Copy", "Exp"),      # Exp: softmax, losses
    "ew_unary_rare": ("Abs", "Sign"),
    "ew_math": ("Sqrt", "Log", "Sin", "Cos", "Tanh", "Sigmoid"),
}
# family -> (input dtypes, output dtype or None: the inputs'): every operand of one of the input dtypes
EW_FAMILY_DTYPES = {
    "ew_binary": (("float32", "float64", "int32", "int64"), None),
    "ew_binary_rare": (("float32", "float64", "int32", "int64"), None),
    "ew_compare": (("float32", "float64", "int32", "int64"), "bool"),
    "ew_unary": (("float32", "float64", "int32", "int64"), None),
    "ew_unary_rare": (("float32", "float64", "int32", "int64"), None),
    "ew_math": (("float32", "float64"), None),
}
# The comparisons need no cases: one expression of loop-invariant flags computes each of them (bit 1: strict,
# 16: operands swapped, so x1 < x0 is Greater; 32: equality; 8: negated), NaN included (every comparison
# with NaN is False, so NotEqual is the negated Equal); its kernel then costs what one comparison's does.
# family -> (codes, setup, body)
EW_FLAGGED = {"ew_compare": (dict(Less=1, LessEqual=0, Greater=17, GreaterEqual=16, Equal=32, NotEqual=40),
                             ["strict = (op & 1) != 0", "inv = (op & 8) != 0", "swap = (op & 16) != 0",
                              "equality = (op & 32) != 0"],
                             "y0 = ((x0 == x1) if equality else ((x1 < x0) if strict else (x1 <= x0)) if swap "
                             "else ((x0 < x1) if strict else (x0 <= x1))) != inv")}
EW_OP = {name: (family, EW_FLAGGED[family][0][name] if family in EW_FLAGGED else code)
         for family, names in EW_FAMILIES.items() for code, name in enumerate(names)}


def ew_op_code(name: str) -> int:
    """The record's ``op`` of elementwise op ``name``: its index in its family (a flagged family's:
    its flags), 0 outside one."""
    return EW_OP[name][1] if name in EW_OP else 0


def family_kernel(kernel: str, dtypes: Sequence[str]) -> str:
    """The kernel that runs a call of ``kernel`` (``ew_<name>``) on operands of ``dtypes`` (inputs,
    then the output): its family's where the family serves those dtypes, else ``kernel`` itself."""
    family = EW_OP.get(kernel[3:], (None,))[0] if kernel.startswith("ew_") else None
    if family is None:
        return kernel
    ins, out = EW_FAMILY_DTYPES[family]
    if len(set(dtypes[:-1])) == 1 and dtypes[0] in ins and dtypes[-1] == (out or dtypes[0]):
        return family
    return kernel


# the elementwise loops' record (``lowerings.ew_record``): the op's code in its family (``EW_FAMILIES``;
# 0 for a kernel of one op or a fused group), the loop's rank and shape, then per operand (outputs
# first, then inputs) its offset and strides; nd >= 2 (padded with leading 1s)
EW_LOOP = RecordSpec("ew_loop", f"op nd shape*{MAXR}")
EW_OPERAND = RecordSpec("ew_operand", f"off strides*{MAXR}")


@functools.lru_cache(maxsize=None)
def ew_spec(n_operands: int) -> RecordSpec:
    """The record of an elementwise loop over ``n_operands`` operands: ``EW_LOOP``, then operand j's
    ``EW_OPERAND`` fields as ``off<j>``, ``strides<j>`` (a kernel reads ``M[p + EW3.off1]``)."""
    return EW_LOOP.extend(f"ew{n_operands}", " ".join(
        f"{field}{j}*{width}" if width > 1 else f"{field}{j}"
        for j in range(n_operands) for field, width in EW_OPERAND.fields))


def ew_bindings(source: str) -> List[str]:
    """The lines binding each ``EW<n>`` (``ew_spec(n).at``) that generated ``source`` reads: the
    module holding a loop kernel runs them (``ew_spec`` imported) before its definition."""
    counts = sorted({int(n) for n in re.findall(r"\bEW(\d+)\.", source)})
    return [f"EW{n} = ew_spec({n}).at" for n in counts]


# what the generated loops call besides an expression's scalar helpers (``kernels/base``): a
# module holding loop kernels imports these (``codegen`` for a plan's fused groups)
LOOP_HELPERS = ("row_buffer", "_ew_rows", "_ew_bases", "_ew_same_view", "_spread")
EXPRESSION_HELPERS = ("_sign", "_relu", "_maximum", "_minimum", "_sigmoid", "_ipow")


def loop_kernel(fname: str, n_in: int, n_out: int, body: Union[List[str], List[List[str]]],
                decorate: bool = True, setup: Sequence[str] = (), in_place: bool = True,
                strided: bool = False) -> str:
    """Source of a broadcast, strided elementwise loop kernel ``fname(X0.., Y0.., M, E, p)``.

    ``body``: statements run per element, reading input scalars ``x0``... and assigning the
    output scalars ``y0``...; a statement may report an error (``E[0] = code; E[1] = p; return``).
    Or a list of such bodies, the cases of a family kernel: case k runs where the record's ``op`` is
    k, chosen around each innermost loop (each case's outputs named apart, ``y0_k``, so Numba types
    each case's value on its own, as the op's own kernel does). ``setup``: statements run once
    before the loops, after ``op`` is read (a flagged family's flags). ``in_place=False``: the
    loop that reads input 0 through the output (where the output shares its buffer, LLVM then
    vectorizes) is left out (a quarter of the compile): for outputs that never or rarely share it
    (a dtype of their own; ``EW_NOT_IN_PLACE``). Sharing stays correct without it, only slower.
    ``strided=False``: every operand's inner stride is 1 or 0 (a broadcast), as it is for whole
    tensors (``EW_STRIDED``): the loop for any strides is left out, and a record that needs it
    reports error 2 instead of running.
    Its record at p is ``ew_spec(n_out + n_in)``'s, read as ``EW<n>`` (``ew_bindings``)."""
    cases = body if body and isinstance(body[0], list) else None
    xs = [f"X{i}" for i in range(n_in)]
    ys = [f"Y{i}" for i in range(n_out)]
    ops = ys + xs
    EW = f"EW{len(ops)}"
    stride = {o: f"M[p + {EW}.strides{j} + " for j, o in enumerate(ops)}  # operand o's stride along dim <expr>]
    L = (["@njit(**_JIT)"] if decorate else []) + [f"def {fname}({', '.join(xs + ys)}, M, E, p):",
                                                   f"    nd = M[p + {EW}.nd]"]
    L += [f"    n0 = M[p + {EW}.shape + nd - 2]", f"    n1 = M[p + {EW}.shape + nd - 1]"]
    if cases or setup:
        L += [f"    op = M[p + {EW}.op]"] + ["    " + line for line in setup]
    for o in ops:
        L += [f"    s{o}0 = {stride[o]}nd - 2]", f"    s{o}1 = {stride[o]}nd - 1]"]
    fast = " and ".join([f"s{o}1 == 1" for o in ys] + [f"0 <= s{o}1 <= 1" for o in xs])
    L += [f"    fast = {fast}"]
    if not strided:
        L += ["    if not fast:", "        E[0] = 2", "        E[1] = p", "        return"]
    in_place = in_place and n_in > 0
    if in_place:
        # in place (the plan put Y0 on X0's buffer): the loop then reads x0 through Y0 itself, so
        # LLVM sees a distance-0 dependence and vectorizes; through X0 its overlap check fails
        # (a copy of each chunk of x0 into T0 instead, one loop fewer to compile, made large
        # in-place calls 1.5-2x slower: measured on 1M floats)
        L += ["    alias = fast and X0.ctypes.data == Y0.ctypes.data and sX01 == 1 and "
              f"_ew_same_view(M, p, np.int64({n_out}))"]
    # a row buffer per input, on the stack (``base.row_buffer``: no allocation), ROW_CHUNK long (the
    # fast loop runs the inner dim in chunks): an input broadcast along the inner dim is spread over
    # it, so the loop still reads unit strides
    L += [f"    nb = min(n1, {ROW_CHUNK})"]
    L += [f"    T{k} = row_buffer(X{k})" for k in range(n_in)]
    L += [f"    t{k} = -1" for k in range(n_in)]          # the offset T<k> was last filled from
    # the rows and each operand's offset at a row: helpers shared by every loop kernel (``kernels/base``),
    # so Numba types and lowers them once per process, not in every kernel; one call per row (LLVM
    # keeps ``_ew_bases`` a call), its offsets written to a stack buffer (``row_buffer`` of M's int64)
    L += ["    bases = row_buffer(M)", "    for q in range(_ew_rows(M, p)):",
          f"        _ew_bases(M, p, q, bases, np.int64({len(ops)}))"]
    L += [f"        b{o} = bases[{j}]" for j, o in enumerate(ops)]
    L += ["        for i in range(n0):"]
    for o in ops:
        L.append(f"            c{o} = b{o} + i * s{o}0")
    # unsigned indices: Numba then emits no negative-index wraparound, so loops vectorize.
    # Loops: all unit inner strides (inputs broadcast along the inner dim - stride 0: a scalar,
    # a column - are first spread into a row buffer T<k>, so the loop still reads unit strides
    # and vectorizes); any strides.
    at = " " * (16 if strided else 12)     # the unit-stride loops' indent (under ``if fast:`` where strided)
    if strided:
        L += ["            if fast:"]
    for k in range(n_in):
        L += [at + line for line in [
            f"S{k} = X{k}", f"o{k} = cX{k}", f"if sX{k}1 == 0:", f"    t{k} = _spread(X{k}, cX{k}, T{k}, nb, t{k})",
            f"    S{k} = T{k}", f"    o{k} = 0", f"    e{k} = 0", "else:", f"    e{k} = 1"]]

    def inner(head: str, loads: List[str], stores: List[str]) -> List[str]:
        """The innermost loop ``head`` (loads, body, stores), once per case under ``if op == k``."""
        if not cases:
            return [head] + ["    " + line for line in loads + body + stores]
        lines = []
        for k, case in enumerate(cases):
            named = [re.sub(r"\by(\d+)\b", rf"y\1_{k}", line) for line in case + stores]
            lines += [f"{'if' if k == 0 else 'elif'} op == {k}:", "    " + head]
            lines += ["        " + line for line in loads + named]
        return lines

    def fast_loop(indent: str, x0: str) -> list:
        lines = [f"for j0 in range(0, n1, {ROW_CHUNK}):"]
        lines += [f"    u{k} = o{k} + e{k} * j0" for k in range(n_in)] + [f"    w{k} = cY{k} + j0" for k in range(n_out)]
        loads = [f"x{k} = S{k}[np.uint64(u{k} + j)]" for k in range(n_in)]
        loads = ([f"x0 = {x0}"] + loads[1:]) if n_in else []
        lines += ["    " + line for line in inner("for j in range(min(nb, n1 - j0)):", loads,
                                                   [f"Y{k}[np.uint64(w{k} + j)] = y{k}" for k in range(n_out)])]
        return [indent + line for line in lines]
    if in_place:
        L += [at + "if alias:"] + fast_loop(at + "    ", "Y0[np.uint64(w0 + j)]")
        L += [at + "else:"] + fast_loop(at + "    ", "S0[np.uint64(u0 + j)]")
    else:
        L += fast_loop(at, "S0[np.uint64(u0 + j)]" if n_in else "")
    if not strided:
        return "\n".join(L) + "\n"
    L += ["            else:"]
    L += ["                " + line for line in inner(
        "for j in range(n1):", [f"x{k} = X{k}[np.uint64(cX{k} + j * sX{k}1)]" for k in range(n_in)],
        [f"Y{k}[np.uint64(cY{k} + j * sY{k}1)] = y{k}" for k in range(n_out)])]
    return "\n".join(L) + "\n"


def check_lines(check: str) -> list:
    """Statements reporting error 1 when ``check`` holds."""
    return [f"if {check}:", "    E[0] = 1", "    E[1] = p", "    return"] if check else []


def _elementwise(name: str, arity: int, expr: str, check: str) -> str:
    return loop_kernel(f"ew_{name}", arity, 1, check_lines(check) + [f"y0 = {expr}"], strided=name in EW_STRIDED,
                       in_place=name not in EW_NOT_IN_PLACE)


def _family(family: str, names: Sequence[str]) -> str:
    """The family kernel ``family``: one case per op of ``names`` (no op of a family has a check), or
    a flagged family's one body."""
    arities = {ELEMENTWISE[n][0] for n in names}
    assert len(arities) == 1 and not any(ELEMENTWISE[n][2] for n in names), family
    if family in EW_FLAGGED:
        _, setup, body = EW_FLAGGED[family]
        return loop_kernel(family, arities.pop(), 1, [body], setup=setup, in_place=False)   # bool out
    return loop_kernel(family, arities.pop(), 1, [[f"y0 = {ELEMENTWISE[n][1]}"] for n in names])


# STATICGRAPH_BLAS_THREADS=auto: mid-size GEMMs run on one BLAS thread: on a busy machine (more runnable threads than cores) a
# multi-threaded OpenBLAS call waits for a descheduled worker, tens of ms for a sub-ms GEMM; from
# BLAS_SMALL multiply-adds (512^3) up the threads pay off. The thread count of the kernels' BLAS
# (blas.KERNEL_BLAS) is set through the library's exported symbols, resolved by name (``load``
# makes them visible), so the kernels stay cacheable.
# Off by default: on an idle machine two threads make MLP-sized GEMMs ~1.6x faster (measured).
BLAS_SMALL = 1 << 27
BLAS_TINY = 1 << 18      # OpenBLAS itself runs GEMMs up to this size on one thread
BLAS_AUTO = blas.auto()
PAR_GEMM = 1 << 18       # GEMMs of at least this many multiply-adds split over the kernel workers (_gemm_par)
# the elementwise loops run their inner dim in chunks of this many elements (the row buffer's length)
ROW_CHUNK = 4096

# float GEMMs of at most this many multiply-adds run as plain loops: a BLAS call costs more than the
# work (the lecture DAG's 5x5 products), and the loops accumulate in float64
MM_LOOPS_UP_TO = 4096

KERNEL_FILES = ("tile_matrices.py",) + tuple(f"kernels/{m}.py" for m in (
    "__init__", "base", "gemm", "array", "matmul", "dot", "reduce", "conv", "pool", "conv_pool", "softmax",
    "wino_tile"))


def config_text() -> str:
    """What compiled kernels depend on beyond their source: the kernels' BLAS symbols, the
    library's constants, the helpers' optimization level (``opt_levels``) and the record specs' definitions (``records.definitions_digest``; Numba's
    cache sees none of them, so the kernel cache folder and ``SOURCE_HASH`` include this)."""
    kb = blas.KERNEL_BLAS
    symbols = (kb.gemm, kb.get_threads, kb.set_threads) if kb is not None else None
    facts = dict(MAXR=MAXR, BLAS_SMALL=BLAS_SMALL, BLAS_TINY=BLAS_TINY, BLAS_AUTO=BLAS_AUTO, PAR_GEMM=PAR_GEMM,
                 ROW_CHUNK=ROW_CHUNK, MM_LOOPS_UP_TO=MM_LOOPS_UP_TO,
                 OPT=(opt_levels.HELPER_LEVEL, sorted(opt_levels.ENTRY_NAMES)),
                 RECORDS=records.definitions_digest(Path(__file__).parent)[:16])
    return repr((symbols, sorted(facts.items())))


def _kernel_files() -> List[Path]:
    here = Path(__file__).resolve().parent
    return [here / f for f in KERNEL_FILES]


def _exported(path: Path) -> List[str]:
    """The top-level functions and assigned names of a kernel module (read, not imported)."""
    names: List[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.If):      # names defined either way (``gemm``'s DISABLE_JIT switch)
            names += [n.name for n in node.body + node.orelse if isinstance(n, ast.FunctionDef)]
            names += [n.id for a in node.body + node.orelse if isinstance(a, ast.Assign)
                      for t in a.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return sorted(set(names))


def _imports() -> str:
    """``from <kernel module> import <everything it defines>`` for each module of ``kernels/``."""
    pkg = __package__ + ".kernels"
    lines = []
    for path in _kernel_files()[2:]:
        names = [n for n in _exported(path) if n not in ("JIT", "PJIT")]
        lines.append(f"from {pkg}.{path.stem} import ({', '.join(names)})  # noqa: F401")
    return "\n".join(lines)


_GENERATED_HEADER = '''\
# Generated by staticgraph (compiler/backends/cpu/library.py): the kernel library's generated module.
# kernels: {kernels}
# config: {config}
import numpy as np
from numba import njit

from {pkg}.base import HELPER as _HELPER, JIT as _JIT
from {lib} import ew_spec
{imports}

MAXR = {maxr}
{bindings}
'''


_IMPORTS = "# (the kernel modules' imports)"


def _template() -> str:
    """``SOURCE`` with a mark where the kernel modules' imports go: all of it but them. The imports
    follow from the kernel files, whose digest the header holds, so this text determines ``SOURCE``
    (and its hash, ``SOURCE_HASH``, is taken over it: reading the kernel files' names is most of
    generating ``SOURCE``, which only compiling the library needs)."""
    digest = hashlib.sha256()
    for path in _kernel_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    kernels = ["\n" + _elementwise(name, arity, expr, check) for name, (arity, expr, check) in ELEMENTWISE.items()]
    kernels += ["\n" + _family(family, names) for family, names in EW_FAMILIES.items()]
    parts = [_GENERATED_HEADER.format(kernels=digest.hexdigest(), config=config_text(), pkg=__package__ + ".kernels",
                                      lib=__name__, imports=_IMPORTS, maxr=MAXR,
                                      bindings="\n".join(ew_bindings("".join(kernels))))] + kernels
    from .nn_winograd import SOURCE as winograd     # the one generated family
    parts.append(winograd)
    return "".join(parts)


_TEMPLATE = _template()
SOURCE_HASH = hashlib.sha256(_TEMPLATE.encode()).hexdigest()
MODULE_NAME = f"sg_kernels_{SOURCE_HASH[:16]}"


@functools.lru_cache(maxsize=None)
def _source() -> str:
    return _TEMPLATE.replace(_IMPORTS, _imports(), 1)


def __getattr__(name: str):
    if name == "SOURCE":        # the generated module's text, made when first asked for (``load``)
        return _source()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ENTRY = []


def load():
    """The kernel library's generated module (``SOURCE``, which imports every hand-written kernel):
    a verified PlanCache entry, imported from there.

    Numba's files for the generated kernels go to the entry's ``__pycache__``, those of
    ``kernels/`` to the kernel cache folder (CACHE's locator); unrecorded ones are deleted before
    import (``verify_compiled``) and ``seal()`` records new ones."""
    mod = sys.modules.get(MODULE_NAME)
    if mod is not None and hasattr(mod, "__staticgraph_sha256__"):     # fully loaded (cache.load_module)
        return mod
    import numba
    from compiler.cache import PlanCache, cache_key
    from . import kernels  # noqa: F401  (the locator, the BLAS: before the generated module imports kernels)
    cache = PlanCache()
    source = _source()
    key = cache_key("staticgraph-cpu-kernels", source, numba.__version__)
    path = cache.entry(key, {"sg_kernels.py": source}, {"kind": "kernel library", "numba": numba.__version__})
    cache.verify_compiled(path)
    mod = cache.load_module(path, "sg_kernels.py", module_name=MODULE_NAME, keep_code=True)   # sealed by seal()
    _ENTRY[:] = [path]
    blas.apply_env()
    atexit.register(seal)
    return mod


def seal() -> None:
    """Record the Numba files compiled so far for the library (called after compiles and at exit)."""
    if _ENTRY:
        from compiler.cache import PlanCache
        try:
            PlanCache().seal(_ENTRY[0])
        except OSError:
            pass
