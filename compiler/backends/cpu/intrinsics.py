"""The two LLVM-level operations of native steps that Numba has no Python spelling for.

``as_ptr`` lets a kernel wrapper view the step's buffers by address (``numba.carray``), and
``call_wrapper`` lets the step loop call a wrapper through its C function pointer. They live in
a module of their own, not in the step loop's generated source, so compiling a wrapper needs
nothing but this module: a compile worker starts on its wrappers at once instead of first
compiling (or waiting on another worker to compile) the step loop.
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def as_ptr(typingctx, addr):
    """An int64 address as a void pointer (for numba.carray)."""
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())
    return types.voidptr(types.int64), codegen


@intrinsic
def call_wrapper(typingctx, fn, b, r):
    """Call the int64(int64*, int64*) function at address fn with the addresses b and r."""
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i64.as_pointer(), i64.as_pointer()])
        f = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(f, [builder.inttoptr(args[1], i64.as_pointer()),
                                builder.inttoptr(args[2], i64.as_pointer())])
    return types.int64(types.int64, types.int64, types.int64), codegen
