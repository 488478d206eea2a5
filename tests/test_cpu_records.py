"""Kernel records (compiler/backends/cpu/records.py): every ``RecordSpec`` of the cpu backend names each
field once at contiguous offsets, packs and unpacks consistently and is part of the kernels' cache key;
the kernel modules, the generated kernel library (``library.SOURCE``: the elementwise loops and the Winograd
kernels) and the cuda kernel modules read their record by field name, never at a literal position of ``M``."""
import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import compiler.backends.cpu as cpu
from compiler.backends.cpu import library, records
from compiler.backends.cpu.records import RecordSpec

KERNELS = Path(cpu.__file__).parent / "kernels"
CUDA_KERNELS = sorted((KERNELS.parents[1] / "cuda" / "kernels").glob("*.py"))
# kernel modules that read their record by field name only (a family's modules join once converted)
NAMED_READERS = [KERNELS / f for f in ("pool.py", "softmax.py", "matmul.py", "dot.py", "reduce.py", "array.py", "conv.py",
                                       "conv_pool.py", "wino_tile.py")]
# a read of M at a literal position: M[p] (the record's first field), M[3], M[p + 3], M[q + 4 + 29], M[2 + p]
MAGIC_READ = re.compile(r"\bM\[\s*(p\s*\]|\d+\s*[\]+]|\w+\s*\+\s*\d+)")


def _specs() -> list:
    """Every RecordSpec bound at module level in the cpu backend (each once)."""
    found = {}
    for info in pkgutil.walk_packages(cpu.__path__, cpu.__name__ + "."):
        for value in vars(importlib.import_module(info.name)).values():
            if isinstance(value, RecordSpec):
                found[id(value)] = value
    return list(found.values())


ALL_SPECS = _specs()
SPECS = {spec.name: spec for spec in ALL_SPECS}


def test_the_converted_families_specs_are_found():
    assert {"ew_loop", "ew_operand", "wino", "wino_share", "wino_bwd", "wino_bwd_share",
            "pool_window", "pool_plane", "softmax_rows", "softmax_nll", "matmul_batched", "matmul_update",
            "dot_sum", "reduce", "array_fill", "array_onehot"} <= set(SPECS), sorted(SPECS)


def test_spec_names_are_unique():
    assert len(SPECS) == len(ALL_SPECS), sorted(spec.name for spec in ALL_SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_field_has_one_offset_and_the_offsets_are_contiguous(name):
    spec = SPECS[name]
    assert spec.at._fields == tuple(field for field, _ in spec.fields)
    pos = 0
    for field, width in spec.fields:
        assert width >= 1 and getattr(spec.at, field) == pos, (field, pos)
        pos += width
    assert spec.size == pos


def _sample(spec: RecordSpec) -> dict:
    """Distinct values for every field (a wide field: a list of its width)."""
    values, n = {}, 100
    for field, width in spec.fields:
        values[field] = n if width == 1 else list(range(n, n + width))
        n += width
    return values


@pytest.mark.parametrize("name", sorted(SPECS))
def test_pack_and_unpack_round_trip(name):
    spec = SPECS[name]
    values = _sample(spec)
    rec = spec.pack(values)
    assert rec == list(range(100, 100 + spec.size))
    assert spec.unpack(rec) == values


@pytest.mark.parametrize("name", sorted(SPECS))
def test_pack_refuses_missing_extra_and_misshapen_fields(name):
    spec = SPECS[name]
    values = _sample(spec)
    first, width = spec.fields[0]
    with pytest.raises(ValueError, match="missing fields"):
        spec.pack({k: v for k, v in values.items() if k != first})
    with pytest.raises(ValueError, match="unknown fields"):
        spec.pack({**values, "not_a_field": 0})
    wide = next(((f, w) for f, w in spec.fields if w > 1), None)
    if wide is not None:
        with pytest.raises(ValueError, match="takes"):
            spec.pack({**values, wide[0]: [0] * (wide[1] - 1)})


def test_every_spec_definition_is_in_the_kernels_cache_key():
    """Kernels freeze a spec's offsets: ``library.config_text`` (plan, wrapper and kernel cache keys)
    covers the text of every spec's definition (``records.definitions_digest``)."""
    folder = KERNELS.parent
    found = " ".join(m.group(0) for path in sorted(folder.glob("*.py"))
                     for m in records._DEFINITION.finditer(path.read_text()))
    for name in SPECS:
        assert f'"{name}"' in found, f"the definition of record spec {name!r} is not found by records._DEFINITION"
    assert records.definitions_digest(folder)[:16] in library.config_text()


def test_the_digest_follows_spec_definitions_only(tmp_path):
    def digest(text: str) -> str:
        (tmp_path / "nn_x.py").write_text(text)
        records.definitions_digest.cache_clear()
        return records.definitions_digest(tmp_path)
    base = 'X = RecordSpec("x", "a b*3")\nY = X.extend("y",\n             "c")\n\n\ndef f():\n    return [1]\n'
    d = digest(base)
    assert digest(base.replace("[1]", "[2]")) == d                          # other code: same key
    assert digest(base.replace("a b*3", "b*3 a")) != d                      # a field moved
    assert digest(base.replace('"c"', '"c d"')) != d                      # an extension changed
    records.definitions_digest.cache_clear()


def magic_reads(source: str) -> list:
    """(line number, line) of each read of ``M`` at a literal position."""
    return [(number, line.strip()) for number, line in enumerate(source.splitlines(), 1) if MAGIC_READ.search(line)]


@pytest.mark.parametrize("path", NAMED_READERS, ids=lambda p: p.name)
def test_kernels_read_their_record_by_field_name(path):
    found = magic_reads(path.read_text())
    assert not found, "\n".join(f"{path.name}:{n}: {line}" for n, line in found)


def test_the_generated_kernel_library_reads_records_by_field_name():
    """The elementwise loops (``library.loop_kernel``) and the Winograd kernels are generated text:
    the scan reads ``library.SOURCE`` itself."""
    found = magic_reads(library.SOURCE)
    assert not found, "\n".join(f"library.SOURCE:{n}: {line}" for n, line in found)


def _code(text: str) -> str:
    """A module's text without its docstrings (which may name ``M[p]``, the record's start)."""
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            for i in range(body[0].lineno - 1, body[0].end_lineno):
                lines[i] = ""
    return "\n".join(lines)


@pytest.mark.parametrize("path", CUDA_KERNELS, ids=lambda p: p.name)
def test_cuda_kernels_read_their_record_by_field_name(path):
    """The cuda kernels (their generator's templates included: ``elementwise.kernel_source``) read the
    shared records by field name; the generated cuda sources are scanned in tests/test_cuda_registry.py."""
    found = magic_reads(_code(path.read_text()))
    assert not found, "\n".join(f"{path.name}:{n}: {line}" for n, line in found)


def test_the_cuda_scan_skips_docstrings_only():
    src = '''"""M[p] in a docstring"""\n\n\ndef f(M, p):\n    """M[p + 3]"""\n    return M[p + 3]\n'''
    assert [n for n, _ in magic_reads(_code(src))] == [6]


def test_elementwise_spec_layout():
    """``ew_spec(n)``: the op's code in its family, the loop's rank and shape, then per operand its
    offset and strides; operand j's fields do not depend on the operand count (a loop over fewer
    operands reads a prefix)."""
    two, five = library.ew_spec(2), library.ew_spec(5)
    assert two is library.ew_spec(2)
    assert [f for f, _ in two.fields] == ["op", "nd", "shape", "off0", "strides0", "off1", "strides1"]
    assert two.size == 2 + library.MAXR + 2 * (1 + library.MAXR)
    assert five.at[:len(two.at)] == two.at
    assert library.ew_bindings("M[p + EW3.off1] + M[p + EW12.nd] + EW3.nd") == ["EW3 = ew_spec(3).at",
                                                                                 "EW12 = ew_spec(12).at"]


def test_the_scan_finds_literal_positions():
    magic = ["M[p]", "M[p + 3]", "M[q + 4 + 29]", "M[2]", "M[2 + p]"]
    named = ["M[p + WIN.kernel + 1]", "M[p + MM.batch + d]", "M[q]"]
    src = "".join(f"x = {read}\n" for read in magic + named)
    assert [n for n, _ in magic_reads(src)] == [1, 2, 3, 4, 5]


def test_kernel_modules_define_distinct_names():
    """``library.SOURCE`` imports every kernel module's names into one namespace (a record's offsets
    bound in two modules under one name would shadow each other there)."""
    seen = {}
    for path in library._kernel_files()[2:]:
        for name in library._exported(path):
            assert name not in seen, f"{name} in both {seen.get(name)} and {path.name}"
            seen[name] = path.name
