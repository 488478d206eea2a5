"""The kernel library's source (compiler/backends/cpu/kernels/, library.py's generated module) and the
step loop's (native.py): helper calls pass no bare literal constants, each of which would cost one more Numba specialization (a
compile and link of the callee) of the helper (see docs/ARCHITECTURE.md, kernel compile time)."""
import re

from pathlib import Path

from compiler.backends.cpu import library, native

KERNEL_FILES = [Path(library.__file__).parent / f for f in library.KERNEL_FILES]

# (helper, argument position) where a literal selects the kernel's mode on purpose
MODE_ARGUMENTS = {("_chunk_cols", 11), ("_conv_taps", 7), ("_conv_implicit_taps", 10),
                  ("_pool_avg_run", 5), ("_wino_share", 9)}
LITERAL = re.compile(r"-?\d+|True|False")


def _calls(line: str):
    """(name, [top-level argument texts]) of each ``_helper(...)`` call on a source line."""
    for m in re.finditer(r"\b(_[a-z][a-z0-9_]*|int_at|run_group)\(", line):     # the step loop's helpers too
        depth, args, cur = 1, [], ""
        for ch in line[m.end():]:
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
            if depth == 0 or (ch == "," and depth == 1):
                args.append(cur.strip())
                cur = ""
                if depth == 0:
                    break
                continue
            cur += ch
        # a call continued on the next line: the arguments complete on this one
        yield m.group(1), args


def literal_arguments(source: str) -> list:
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if text.startswith(("def ", "#", "@", '"""')) or not line.startswith(" "):     # module level: Python
            continue
        for name, args in _calls(text):
            found += [(name, i, number, text) for i, a in enumerate(args)
                      if LITERAL.fullmatch(a) and (name, i) not in MODE_ARGUMENTS]
    return found


def test_helper_calls_pass_no_literal_constants():
    for path in KERNEL_FILES:
        assert literal_arguments(path.read_text()) == [], path
    assert literal_arguments(library.SOURCE) == []
    assert literal_arguments(native.RUNTIME_SOURCE) == []


def test_the_check_finds_literals():
    src = "    _gemm(0, 0, m, n)\n    x = _pool_avg_run(X, X, Y, M, p, True)\n    _conv_rows(A, 1, B, ON)\n"
    assert [(name, i) for name, i, _, _ in literal_arguments(src)] == [("_gemm", 0), ("_gemm", 1), ("_conv_rows", 1)]
