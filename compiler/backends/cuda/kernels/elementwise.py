"""The elementwise kernels ``ew_<name>``, one per entry of ``cpu/library.ELEMENTWISE`` (the op
table both backends generate from), over the record of ``cpu/library.loop_kernel``
(``cpu/library.ew_spec``, written by ``lowerings.ew_record``: nd, shape[MAXR], then per operand,
outputs first, its offset and strides[MAXR]; read by field name as ``EW<n>``): broadcasting and
strided views work as on cpu. One thread per element of the loop (a grid-stride loop), its
operands' offsets from its flat index; a table entry's check (``PowInt``'s negative exponent) sets
``E`` as the cpu kernel does.

The table's expressions are NumPy on scalars; device code spells them with ``math`` (``CUDA``
below), float32 transcendentals still computed in float64 and rounded once on store."""
from __future__ import annotations

import math  # noqa: F401  (the generated kernels' namespace)

import numpy as np
from numba import cuda, float64  # noqa: F401

from ...cpu.library import ELEMENTWISE, check_lines, ew_bindings, ew_spec  # noqa: F401
from ...cpu.lowerings import loop_elements
from . import launches
from .common import SIMULATED, TPB, _ipow, _maximum, _minimum, _power, _relu, _sigmoid, _sign, blocks  # noqa: F401

# NumPy scalar functions of the op table -> their device spelling
CUDA = {"np.float64(": "float64(", "np.exp(": "math.exp(", "np.log(": "math.log(", "np.sin(": "math.sin(",
        "np.cos(": "math.cos(", "np.tanh(": "math.tanh(", "np.sqrt(": "math.sqrt(", "np.power(": "_power("}


def device_expr(expr: str) -> str:
    """The table's expression as device code. On the simulator, which runs kernels as Python, the
    NumPy spelling stays: Python's ``math`` raises where a GPU's returns NaN or inf (``log(-1)``,
    ``exp(1000)``); NumPy on scalars returns them, as the GPU and the reference do."""
    if SIMULATED:
        return expr
    for numpy_name, device_name in CUDA.items():
        expr = expr.replace(numpy_name, device_name)
    if "np." in expr:
        raise ValueError(f"elementwise expression {expr!r} uses a NumPy function with no device spelling in CUDA")
    return expr


def kernel_source(name: str, arity: int, expr: str, check: str) -> str:
    """Source of ``ew_<name>(X0.., Y0, M, E, p)``: a grid-stride loop over the record's elements."""
    xs = [f"X{i}" for i in range(arity)]
    ops = ["Y0"] + xs
    EW = f"EW{len(ops)}"
    L = [f"def ew_{name}({', '.join(xs)}, Y0, M, E, p):", f"    nd = M[p + {EW}.nd]", "    n = 1",
         "    for d in range(nd):", f"        n *= M[p + {EW}.shape + d]",
         "    i = cuda.grid(1)", "    step = cuda.gridsize(1)", "    while i < n:", "        r = i"]
    L += [f"        c{o} = M[p + {EW}.off{j}]" for j, o in enumerate(ops)]
    L += ["        for d in range(nd - 1, -1, -1):", f"            sz = M[p + {EW}.shape + d]",
          "            k = r % sz", "            r //= sz"]
    L += [f"            c{o} += k * M[p + {EW}.strides{j} + d]" for j, o in enumerate(ops)]
    L += [f"        x{k} = X{k}[cX{k}]" for k in range(arity)]
    L += ["        " + line for line in check_lines(check)]
    L += [f"        Y0[cY0] = {device_expr(expr)}", "        i += step"]
    return "\n".join(L) + "\n"


def _launcher(kernel):
    def launch(arrays, M, E, p, rec, stream):
        n = loop_elements(rec)
        if n:
            kernel[blocks(n), TPB, stream](*arrays, M, E, p)
    return launch


KERNELS = {}     # "ew_<name>" -> its kernel


def _build() -> None:
    namespace = dict(globals())
    for name, (arity, expr, check) in ELEMENTWISE.items():
        source = kernel_source(name, arity, expr, check)
        exec("\n".join(ew_bindings(source)), namespace)       # the record's fields: EW<n>
        exec(compile(source, f"<cuda ew_{name}>", "exec"), namespace)
        KERNELS[f"ew_{name}"] = kernel = cuda.jit(namespace[f"ew_{name}"])
        launches(f"ew_{name}")(_launcher(kernel))


_build()
