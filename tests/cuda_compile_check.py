"""Compile every cuda kernel of the registry to PTX with Numba's real CUDA compiler (NVVM, no GPU
needed): the typing and lowering a GPU's first launch would do, which the simulator never does.
Run by tests/test_cuda_compile.py in a process without NUMBA_ENABLE_CUDASIM; prints one line
per kernel and "compiled N kernels" at the end; exits 1 if any failed.

Without a GPU, Numba cannot ask a device for its compute capability when it compiles a device
function that a kernel calls, so this script answers for it (``CC``)."""
import sys
import traceback

from numba import cuda, types
from numba.cuda import dispatcher

CC = (8, 0)


class _Device:
    compute_capability = CC


dispatcher.get_current_device = lambda: _Device()     # device functions: compiled for CC


def arr(dtype):
    return types.Array(dtype, 1, "C")


F32, F64, I64, B = arr(types.float32), arr(types.float64), arr(types.int64), arr(types.boolean)
TAIL = (I64, I64, types.int64)       # M, E, p


def signatures():
    """(name, kernel, argument types) of every kernel the launchers run, for its dtypes."""
    from compiler.backends.cpu.library import ELEMENTWISE
    from compiler.backends.cuda.kernels import array, elementwise, gemm, reduce, softmax
    bool_out = {"Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual", "CastBool"}
    for name, (arity, _, _) in ELEMENTWISE.items():
        k = elementwise.KERNELS[f"ew_{name}"]
        if name == "PowInt":
            yield f"ew_{name}", k, (I64, I64, I64) + TAIL
            continue
        ins = (B, F32, F32) if name == "Where" else (F32,) * arity
        for ins_, out in ((ins, B if name in bool_out else F32),
                          (tuple(F64 if a is F32 else a for a in ins), B if name in bool_out else F64)):
            yield f"ew_{name}", k, ins_ + (out,) + TAIL
    yield "ew_Copy(cast)", elementwise.KERNELS["ew_Copy"], (F32, I64) + TAIL
    yield "fill", array.fill, (F32,) + TAIL
    yield "onehot", array.onehot, (I64, F32) + TAIL
    for (name, ints), k in reduce.KERNELS.items():
        x = I64 if ints else F32
        y = I64 if name == "red_ArgMax" or (ints and name != "red_Mean") else F32
        yield f"{name}({'int' if ints else 'float'})", k, (x, y) + TAIL
    yield "red_Dot", reduce.red_Dot, (F32, F32, F32, F64) + TAIL
    yield "softmax_rows", softmax.softmax_rows, (F32, F32) + TAIL
    yield "nll_loss", softmax.nll_loss, (F32, I64, F32) + TAIL
    yield "nll_loss_grad", softmax.nll_loss_grad, (F32, I64, F32) + TAIL
    for dt, (mm, update) in gemm.KERNELS.items():
        a = {"float32": F32, "float64": F64, "int": I64}[dt]
        yield f"mm({dt})", mm, (a, a, a) + TAIL
        yield f"mm_update({dt})", update, (a, a, a, a) + TAIL
    yield from conv_pool_signatures()


def conv_pool_signatures():
    """The conv and pool kernels (their launchers pass scalars beside the record)."""
    from compiler.backends.cuda.kernels import conv, pool
    f, i64 = types.float32, types.int64
    gemm = (F32, F32, F32, I64, i64, i64, i64, f)
    yield "conv_fwd", conv._fwd, gemm
    yield "conv_bpi", conv._bpi, gemm
    yield "conv_bpf", conv._bpf, gemm
    yield "conv_bpf (sum of slices)", conv._bpf_sum, (F32, F32, I64, i64, i64, f)
    yield "conv_bpf (bias gradient)", conv._bias_grad, (F32, F32, I64, i64, f)
    yield "pool_max", pool._pool_max, (F32, F32, I64, I64, i64, f)
    yield "pool_max (int32)", pool._pool_max, (arr(types.int32),) * 2 + (I64, I64, i64, types.int32)
    yield "pool_avg", pool._pool_avg, (F32, F32, I64, i64)
    yield "pool_avg_grad", pool._pool_avg_grad, (F32, F32, I64, i64)
    yield "pool_max_grad", pool._pool_max_grad, (F32, I64, F32, I64, i64)
    yield "pool_max_gather", pool._pool_max_gather, (F32, I64, F32, I64, i64, f)


def main() -> int:
    failed = 0
    count = 0
    for name, kernel, sig in signatures():
        count += 1
        try:
            cuda.compile_ptx(kernel.py_func, sig, cc=CC)
        except Exception:  # noqa: BLE001 - report every kernel, then fail
            failed += 1
            print(f"FAILED {name} {sig}\n{traceback.format_exc(limit=1)}")
        else:
            print(f"ok {name}")
    print(f"compiled {count - failed} of {count} kernels")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
