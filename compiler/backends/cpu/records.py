"""Kernel records: each kernel family names the int64 fields of its record once, here or beside
its lowering, as a ``RecordSpec``.

A record is the slice of the plan's table ``M`` that one kernel call reads (concrete shapes,
element offsets, strides, modes), written at plan entry for each shape signature. Both sides come
from the one spec: the lowering writes a record with ``spec.pack(...)`` (every field named, none
missing, none extra), and the kernels read ``M[p + SPEC.field]`` with ``SPEC = spec.at``, a
namedtuple of offsets that Numba freezes as constants (no cost against a literal offset). A field
of width w (``"shape*8"``) is w ints; the spec's offset is its first. No kernel reads a record at a
magic position (``tests/test_cpu_records.py`` checks the sources).

Compiled kernels freeze the offsets, and a spec defined beside its lowering lies outside the
kernel sources that ``library.SOURCE_HASH`` (plan and wrapper keys) covers: ``definitions_digest``
hashes the spec definitions' text for ``library.config_text``, so a changed layout recompiles
what reads it.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections import namedtuple
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

Value = Union[int, Sequence[int]]


class RecordSpec:
    """The named fields of one kernel family's record, in order."""

    def __init__(self, name: str, fields: str):
        self.name = name
        self.fields: Tuple[Tuple[str, int], ...] = tuple(_parse(fields))
        offsets, pos = {}, 0
        for field, width in self.fields:
            if field in offsets:
                raise ValueError(f"record {name}: field {field!r} twice")
            offsets[field] = pos
            pos += width
        self.size = pos
        self.at = namedtuple(f"{name.title().replace('_', '')}Fields", list(offsets))(**offsets)

    def extend(self, name: str, fields: str) -> "RecordSpec":
        """This record followed by more fields (a kernel that reads a family's record and its own tail)."""
        return RecordSpec(name, " ".join(f"{f}*{w}" if w > 1 else f for f, w in self.fields) + " " + fields)

    def pack(self, values: Dict[str, Value]) -> List[int]:
        """The record as ints from ``{field: value}`` (a wide field takes a sequence of its width)."""
        missing = [f for f, _ in self.fields if f not in values]
        extra = sorted(set(values) - {f for f, _ in self.fields})
        if missing or extra:
            raise ValueError(f"record {self.name}: missing fields {missing}, unknown fields {extra}")
        out: List[int] = []
        for field, width in self.fields:
            v = values[field]
            items = [v] if width == 1 else list(v)
            if len(items) != width:
                raise ValueError(f"record {self.name}: field {field!r} takes {width} ints, got {len(items)}")
            out += [int(x) for x in items]
        return out

    def unpack(self, rec: Sequence[int]) -> Dict[str, Value]:
        """``{field: value}`` of a packed record (the inverse of ``pack``)."""
        out: Dict[str, Value] = {}
        for field, width in self.fields:
            at = getattr(self.at, field)
            out[field] = rec[at] if width == 1 else list(rec[at:at + width])
        return out


def _parse(fields: str) -> Iterable[Tuple[str, int]]:
    for item in fields.split():
        name, _, width = item.partition("*")
        yield name, int(width) if width else 1


# a module-level spec definition: NAME = RecordSpec(...) or NAME = OTHER.extend(...) (one level of
# nested parentheses)
_DEFINITION = re.compile(r"^[A-Z_][A-Z0-9_]*\s*=\s*(?:RecordSpec|[\w.]+\.extend)\((?:[^()]|\([^()]*\))*\)", re.M)


@functools.lru_cache(maxsize=None)
def definitions_digest(folder: Path) -> str:
    """sha256 of the text of every module-level spec definition (``NAME = RecordSpec(...)``,
    ``NAME = SPEC.extend(...)``) of the modules in ``folder``, read, not imported (``library``
    computes it before the lowering modules exist). A constant in a spec's fields (``MAXR``) is
    covered by ``library.config_text``."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        for m in _DEFINITION.finditer(path.read_text()):
            digest.update(f"{path.name}\0{m.group(0)}\0".encode())
    return digest.hexdigest()


# -- the conv family (nn_conv, nn_conv_pool, nn_wino_tile): one record, two tails ------------------
# offsets of the kernel's 2 inputs, output and workspace; input dims; output channels; kernel
# dims; output dims; stride, padding, dilation (depth, height, width); groups; samples per chunk;
# an implicit conv's column block (0: im2col); batch-minor im2col (0/1); workers T and each one's
# workspace region; a fused per-channel bias (0/1) and its offset in the weight's array; where
# the whole batch's im2col columns are kept (-1: not kept)
CONV = RecordSpec("conv", "x_off w_off y_off ws_off N C D H W O KD KH KW OD OH OW sd sh sw pd ph pw dd dh dw "
                          "groups nb block minor T region has_bias bias_off kept")
# conv_pool_fwd: the pooling indices' offset, the pooled dims, the pooling's kernel, stride, dilation
CONV_POOL_FWD = CONV.extend("conv_pool_fwd", "i_off pool_out*3 pool_kernel*3 pool_stride*3 pool_dilation*3")
# conv_pool_bpf: the pooling indices' offset, the pooled plane's size
CONV_POOL_BPF = CONV.extend("conv_pool_bpf", "i_off pool_plane")
# a share of a kernel that runs in phases (``lowerings.PHASES``): the family's record, then the
# share's index and the step loop's group flag (read in share 0's: run the shares on the workers)
CONV_SHARE = CONV.extend("conv_share", "share group")
CONV_POOL_FWD_SHARE = CONV_POOL_FWD.extend("conv_pool_fwd_share", "share group")
CONV_POOL_BPF_SHARE = CONV_POOL_BPF.extend("conv_pool_bpf_share", "share group")

# -- the generated Winograd F(4x4, 3x3) kernels (nn_winograd) -----------------------------------------
# offsets of the kernel's two inputs, its output and its workspace (wino_fwd: X, W, Y; wino_bpi: dY, W,
# dX; wino_bpf: X, dY, dW; wino_bwd: X, dY, dX); the input dims, output channels, output dims and
# padding; the tile rows per block; the workers T and each one's workspace region
WINO = RecordSpec("wino", "a_off b_off z_off ws_off N C H W O OH OW pad_h pad_w rows T region")
# a share of wino_fwd / wino_bpi / wino_bpf: its index and the step loop's group flag (as CONV_SHARE)
WINO_SHARE = WINO.extend("wino_share", "share group")
# wino_bwd (``nn_winograd.fuse_backward``: both gradients in one pass): then W's and dW's offsets
WINO_BWD = WINO.extend("wino_bwd", "w_off dw_off")
WINO_BWD_SHARE = WINO_BWD.extend("wino_bwd_share", "share group")
