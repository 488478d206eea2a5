"""Summaries: ``sg.summary.scalar``, ``histogram``, ``merge`` and ``merge_all``.

A summary is a *fetch*: a ``Summary``, a dict from ``SummaryKey(kind, tag)`` to the tensor to
record. ``sess.run`` rebuilds fetched dicts with their own type, so ``sess.run(summary)`` returns a
``Summary`` of arrays, fetched in the same step as anything else, which
``FileWriter.add_summary`` turns into TensorBoard's ``Summary`` protobuf. Each summary adds an
``Identity`` op named after it (where TF1 has a ``ScalarSummary`` node), so it shows in the graph;
no new op type is needed, so summaries run on every backend.

Tags are the summary's name inside the enclosing name scopes (``train/loss``); characters
TensorBoard does not allow in tags become ``_`` (as TF1 does).
"""
from __future__ import annotations

import re
from typing import Iterable, List, NamedTuple, Optional, Sequence

import numpy as np

from .. import dtypes
from ..errors import InvalidArgumentError
from ..graph import get_default_graph
from ..shapes import fmt
from ..tensor import Tensor

SUMMARIES = "summaries"
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w.]")


class SummaryKey(NamedTuple):
    """One entry of a ``Summary``: its kind (``"scalar"`` or ``"histogram"``) and TensorBoard tag."""
    kind: str
    tag: str


class Summary(dict):
    """A summary to fetch (values are Tensors) or a fetched summary (values are arrays), keyed by
    ``SummaryKey``. Fetch it with ``sess.run`` and pass the result to ``FileWriter.add_summary``."""

    @property
    def tags(self) -> List[str]:
        return [k.tag for k in self]

    @property
    def fetched(self) -> bool:
        """True once it holds values (the result of ``sess.run``), False while it holds tensors."""
        return not any(isinstance(v, Tensor) for v in self.values())

    def to_proto(self):
        """TensorBoard's ``Summary`` protobuf (tensorboardX's) of a fetched summary."""
        from ._tbx import tensorboardx
        tbx_summary = tensorboardx().summary
        if not self.fetched:
            tags = ", ".join(self.tags)
            raise TypeError(f"summary ({tags}) holds tensors, not values: fetch it first, e.g. "
                            f"writer.add_summary(sess.run(summary), step)")
        proto = tbx_summary.Summary()
        for key, value in self.items():
            proto.value.extend(_value_proto(tbx_summary, key, np.asarray(value)).value)
        return proto

    def __repr__(self) -> str:
        parts = []
        for key, value in self.items():
            if isinstance(value, Tensor):
                parts.append(f"{key.kind} '{key.tag}': {value.name}")
            else:
                parts.append(f"{key.kind} '{key.tag}': array{np.shape(value)}")
        return "<sg.summary.Summary " + ", ".join(parts) + ">"


def _value_proto(tbx_summary, key: SummaryKey, value: np.ndarray):
    if key.kind == "scalar":
        if value.ndim != 0:
            raise InvalidArgumentError(f"scalar summary '{key.tag}' got a value of shape {value.shape}; "
                                       f"it needs a single value (reduce the tensor, e.g. sg.reduce_mean)")
        return tbx_summary.scalar(key.tag, float(value))
    if value.size == 0:
        raise InvalidArgumentError(f"histogram summary '{key.tag}' got an empty array (shape {value.shape})")
    if not np.all(np.isfinite(value)):
        raise InvalidArgumentError(f"non-finite values (nan or inf) in histogram summary '{key.tag}'")
    return tbx_summary.histogram(key.tag, value.astype(np.float64), bins=_tf_bucket_limits())


_BUCKETS: List[float] = []


def _tf_bucket_limits() -> List[float]:
    """TensorFlow's histogram bucket limits: +-1e-12 growing by 10% up to 1e20, and 0."""
    if not _BUCKETS:
        v, pos = 1e-12, []
        while v < 1e20:
            pos.append(v)
            v *= 1.1
        _BUCKETS.extend([-x for x in reversed(pos)] + [0.0] + pos)
    return _BUCKETS


def _summary(kind: str, name: str, tensor, collections: Optional[Sequence[str]]) -> Summary:
    from ..ops import as_tensor, identity
    if not isinstance(name, str) or not name:
        raise ValueError(f"summary.{kind}: the name must be a non-empty string, got {name!r}")
    t = as_tensor(tensor)
    if t.dtype == dtypes.bool_ or t.dtype.kind not in "iuf":
        raise TypeError(f"summary.{kind} '{name}': tensor '{t.name}' has dtype {t.dtype.name}; summaries "
                        f"record numbers (cast bools with sg.cast)")
    graph = t.graph
    with graph.name_scope(name) as scoped:   # the tag is the name inside the enclosing name scopes
        pass
    tag = _INVALID_TAG_CHARACTERS.sub("_", scoped).lstrip("/")
    summary = Summary({SummaryKey(kind, tag): identity(t, name=_INVALID_TAG_CHARACTERS.sub("_", name))})
    for key in (SUMMARIES,) if collections is None else collections:
        graph.add_to_collection(key, summary)
    return summary


def scalar(name: str, tensor, collections: Optional[Sequence[str]] = None) -> Summary:
    """A summary recording the 0-d ``tensor`` under the tag ``name`` (added to ``merge_all()``)."""
    t = tensor
    if isinstance(t, Tensor) and t.shape is not None and t.shape != ():
        raise ValueError(f"summary.scalar '{name}': tensor '{t.name}' has shape {fmt(t.shape)}; a scalar "
                         f"summary needs a 0-d tensor (reduce it, e.g. sg.reduce_mean)")
    return _summary("scalar", name, tensor, collections)


def histogram(name: str, tensor=None, collections: Optional[Sequence[str]] = None, values=None) -> Summary:
    """A summary recording the distribution of ``tensor`` (any shape) under the tag ``name``
    (``values=`` is TF1's name for ``tensor``)."""
    if (tensor is None) == (values is None):
        raise TypeError("summary.histogram takes the tensor to record: histogram(name, tensor)")
    return _summary("histogram", name, tensor if values is None else values, collections)


def merge(inputs: Iterable[Summary], collections: Optional[Sequence[str]] = None) -> Summary:
    """One summary holding every entry of ``inputs`` (fetch it once per step)."""
    merged = Summary()
    graph = None
    for s in inputs:
        if not isinstance(s, Summary):
            raise TypeError(f"summary.merge takes summaries made by sg.summary.scalar/histogram/merge, "
                            f"got {type(s).__name__}")
        for key, t in s.items():
            if isinstance(t, Tensor):
                if graph is not None and t.graph is not graph:
                    raise ValueError(f"summary.merge: summary '{key.tag}' belongs to another graph")
                graph = t.graph
            if key in merged and merged[key] is not t:
                raise ValueError(f"summary.merge: two different {key.kind} summaries have the tag "
                                 f"'{key.tag}'; give them different names")
            merged[key] = t
    for key in collections or ():
        (graph or get_default_graph()).add_to_collection(key, merged)
    return merged


def merge_all(key: str = SUMMARIES, scope: Optional[str] = None) -> Optional[Summary]:
    """Every summary of the default graph's collection ``key`` (tags matching the regex ``scope``
    when given) merged into one; ``None`` when there is none (as TF1)."""
    summaries = get_default_graph().get_collection(key)
    if scope is not None:
        summaries = [Summary({k: v for k, v in s.items() if re.match(scope, k.tag)}) for s in summaries]
        summaries = [s for s in summaries if s]
    return merge(summaries) if summaries else None


def to_proto(value):
    """TensorBoard's ``Summary`` protobuf from a fetched ``Summary``, a ``Summary`` protobuf or its
    serialized bytes."""
    from ._tbx import tensorboardx
    proto_cls = tensorboardx().summary.Summary
    if isinstance(value, Summary):
        return value.to_proto()
    if isinstance(value, proto_cls):
        return value
    if isinstance(value, (bytes, bytearray)):
        return proto_cls.FromString(bytes(value))
    raise TypeError(f"add_summary takes the result of sess.run(summary) (an sg.summary.Summary), a "
                    f"Summary protobuf or its bytes; got {type(value).__name__}"
                    + (" (sg.summary.merge_all() returns None when the graph has no summaries)"
                       if value is None else ""))
