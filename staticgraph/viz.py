"""Graph visualisation and export: Graphviz DOT text, rendered images, networkx.

``to_dot`` writes DOT directly (no pydot/pygraphviz): one node per op, labelled
with its name, type and output shape/dtype; name scopes become nested
``cluster_`` subgraphs; gradient ops are dashed red; control edges dashed.
``write_graph`` saves ``.dot`` or renders ``.svg/.png/.pdf`` with Graphviz's
``dot`` program. ``to_networkx`` gives the same nodes and edges as a DiGraph.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .graph import Graph, Operation, get_default_graph
from .tensor import Tensor

Target = Union[None, Graph, Tensor, Operation, Sequence[Union[Tensor, Operation]]]

_IMAGE_FORMATS = ("svg", "png", "pdf")
# (shape, style, fillcolor) per kind of op; gradient ops are restyled by _node_attrs.
_KIND_STYLE = {
    "placeholder": ("invhouse", "filled", "#fff2b3"),
    "variable": ("cylinder", "filled", "#cfe2ff"),
    "constant": ("box", "filled", "#e8e8e8"),
    "op": ("box", "filled,rounded", "white"),
}


# -- selecting the ops ---------------------------------------------------------------
def _select(target: Target, include_gradients: bool) -> Tuple[Graph, List[Operation]]:
    """The graph and the ops to draw (in id order): all, or those ``target`` needs."""
    if target is None:
        target = get_default_graph()
    if isinstance(target, Graph):
        graph, ops = target, target.get_operations()
    else:
        items = [target] if isinstance(target, (Tensor, Operation)) else list(target)
        roots = [_as_op(t) for t in items]
        if not roots:
            raise ValueError("to_dot: empty target list")
        graph = roots[0].graph
        if any(op.graph is not graph for op in roots):
            raise ValueError("to_dot: the target tensors/operations belong to different graphs")
        ops = _ancestors(roots)
    return graph, [op for op in ops if include_gradients or not op.is_gradient]


def _as_op(item) -> Operation:
    if isinstance(item, Tensor):
        return item.op
    if isinstance(item, Operation):
        return item
    raise TypeError(f"to_dot: target must be a Graph, Tensor, Operation or a list of them, "
                    f"got {type(item).__name__}")


def _ancestors(roots: Iterable[Operation]) -> List[Operation]:
    """``roots`` and every op they depend on (data or control), sorted by id."""
    seen: Dict[int, Operation] = {}
    stack = list(roots)
    while stack:
        op = stack.pop()
        if op.id in seen:
            continue
        seen[op.id] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [seen[i] for i in sorted(seen)]


def _edges(ops: Sequence[Operation]) -> List[Tuple[Operation, Operation, Optional[Tensor]]]:
    """``(producer, consumer, tensor)`` between drawn ops; ``tensor`` is None for control edges."""
    ids = {op.id for op in ops}
    out = []
    for op in ops:
        out += [(t.op, op, t) for t in op.inputs if t.op.id in ids]
        out += [(c, op, None) for c in op.control_inputs if c.id in ids]
    return out


# -- labels --------------------------------------------------------------------------
def _quote(text: str) -> str:
    """A DOT quoted string; real newlines become DOT's ``\\n`` line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _fmt_shape(shape) -> str:
    if shape is None:
        return "?"
    if shape == ():
        return "scalar"
    return "\u00d7".join("?" if d is None else str(d) for d in shape)


def _kind(op: Operation) -> str:
    if op.type == "Placeholder":
        return "placeholder"
    if op.type == "Variable":
        return "variable"
    return "constant" if op.type == "Const" else "op"


def _node_attrs(op: Operation, short_name: str) -> str:
    outs = ", ".join(f"{_fmt_shape(t.shape)} {t.dtype.name}" for t in op.outputs)
    label = "\n".join(part for part in (short_name, op.type, outs) if part)
    shape, style, fill = _KIND_STYLE[_kind(op)]
    colors = 'color="black"'
    if op.is_gradient:  # dashed red outline and pink fill, whatever the kind
        style, fill = style + ",dashed", "#fdecea"
        colors = 'color="#c0392b", fontcolor="#922b21"'
    tooltip = f"{op.name} ({op.type}) at {_short_location(op.defined_at)}"
    return (f"label={_quote(label)}, tooltip={_quote(tooltip)}, shape={shape}, "
            f"style={_quote(style)}, fillcolor={_quote(fill)}, {colors}")


def _short_location(where: str) -> str:
    """``file:line`` with the file relative to the working directory when it lies below it."""
    path, sep, line = where.rpartition(":")
    try:
        rel = os.path.relpath(path) if path and os.path.isabs(path) else path
    except ValueError:  # another drive on Windows
        rel = path
    return f"{rel}{sep}{line}" if path and not rel.startswith("..") else where


def _edge_attrs(tensor: Optional[Tensor]) -> str:
    if tensor is None:
        return 'style=dashed, color="#7f8c8d", arrowhead=odot, tooltip="control dependency"'
    label = _fmt_shape(tensor.shape)
    if len(tensor.op.outputs) > 1:
        label = f":{tensor.value_index} {label}"
    attrs = f"label={_quote(label)}, tooltip={_quote(tensor.name)}"
    if tensor.op.is_gradient:
        attrs += ', color="#c0392b"'
    return attrs


# -- scopes -> clusters --------------------------------------------------------------
class _Scope:
    """A name scope: its ops and child scopes (in first-appearance order)."""

    def __init__(self, path: Tuple[str, ...]):
        self.path = path
        self.ops: List[Operation] = []
        self.children: Dict[str, "_Scope"] = {}

    def child(self, part: str) -> "_Scope":
        if part not in self.children:
            self.children[part] = _Scope(self.path + (part,))
        return self.children[part]

    def all_gradient(self) -> bool:
        return (all(op.is_gradient for op in self.ops)
                and all(c.all_gradient() for c in self.children.values()))


def _scope_tree(ops: Sequence[Operation]) -> _Scope:
    """Nest ops by the '/'-separated scopes of their names; an op named like a scope joins it."""
    scopes = {tuple(op.name.split("/")[:-1]) for op in ops}
    prefixes = {path[:i] for path in scopes for i in range(1, len(path) + 1)}
    root = _Scope(())
    for op in ops:
        parts = tuple(op.name.split("/"))
        path = parts if parts in prefixes else parts[:-1]
        node = root
        for part in path:
            node = node.child(part)
        node.ops.append(op)
    return root


def _emit_scope(scope: _Scope, lines: List[str], depth: int) -> None:
    pad = "  " * depth
    for op in scope.ops:
        short = op.name[len("/".join(scope.path)) + 1:] if scope.path else op.name
        short = short or op.name.split("/")[-1]  # an op named like its own scope
        lines.append(f"{pad}{_quote(op.name)} [{_node_attrs(op, short)}];")
    for child in scope.children.values():
        style = 'style="rounded,dashed"; color="#c0392b"' if child.all_gradient() else \
            'style=rounded; color="#95a5a6"'
        lines.append(f"{pad}subgraph {_quote('cluster_' + '/'.join(child.path))} {{")
        lines.append(f"{pad}  label={_quote(child.path[-1])}; {style}; fontsize=11;")
        _emit_scope(child, lines, depth + 1)
        lines.append(f"{pad}}}")


# -- public API ----------------------------------------------------------------------
def to_dot(target: Target = None, include_gradients: bool = True, rankdir: str = "TB") -> str:
    """Graphviz DOT text for a Graph (default graph if None), or the subgraph a Tensor,
    Operation or list of them needs. Gradient ops are dashed red; ``include_gradients=False``
    leaves them out. ``rankdir`` is Graphviz's layout direction ("TB" or "LR")."""
    _, ops = _select(target, include_gradients)
    lines = ["digraph staticgraph {",
             f"  rankdir={_quote(rankdir)}; nodesep=0.25; ranksep=0.35;",
             '  graph [fontname="Helvetica", fontsize=11];',
             '  node [fontname="Helvetica", fontsize=10, margin="0.08,0.03", height=0.3];',
             '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.6];']
    ops_sorted = sorted(ops, key=lambda o: o.id)
    _emit_scope(_scope_tree(ops_sorted), lines, 1)
    for src, dst, tensor in _edges(ops_sorted):
        lines.append(f"  {_quote(src.name)} -> {_quote(dst.name)} [{_edge_attrs(tensor)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(target: Target, path: Union[str, os.PathLike], include_gradients: bool = True,
                rankdir: str = "TB") -> str:
    """Write ``target`` as ``.dot`` text or render ``.svg/.png/.pdf`` with Graphviz ``dot``.
    The file is replaced atomically. Returns ``path``."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in ("dot",) + _IMAGE_FORMATS:
        raise ValueError(f"write_graph: unsupported file type {path!r}; use .dot, .svg, .png or .pdf")
    text = to_dot(target, include_gradients=include_gradients, rankdir=rankdir)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="." + fmt, dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use a normal file's mode
        if fmt == "dot":
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            os.close(fd)
            _render(text, fmt, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _render(text: str, fmt: str, out_path: str) -> None:
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("the Graphviz program 'dot' was not found on PATH; install graphviz "
                           "(apt-get install graphviz) or write a .dot file")
    proc = subprocess.run([exe, f"-T{fmt}", "-o", out_path], input=text.encode("utf-8"),
                          capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"Graphviz 'dot -T{fmt}' failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace').strip()}")


def to_networkx(target: Target = None, include_gradients: bool = True):
    """A ``networkx.DiGraph`` keyed by op name; nodes carry ``op_type``, ``shape``, ``dtype``,
    ``is_gradient``, ``defined_at``; edges go producer -> consumer with ``tensor`` (name) or
    ``control=True``. Parallel edges (an op using one tensor twice) collapse into one."""
    import networkx as nx
    _, ops = _select(target, include_gradients)
    g = nx.DiGraph()
    for op in ops:
        out0 = op.outputs[0] if op.outputs else None
        g.add_node(op.name, op_type=op.type, shape=None if out0 is None else out0.shape,
                   dtype=None if out0 is None else out0.dtype.name, is_gradient=op.is_gradient,
                   defined_at=op.defined_at)
    for src, dst, tensor in _edges(ops):
        if tensor is None:
            if not g.has_edge(src.name, dst.name):
                g.add_edge(src.name, dst.name, control=True)
        else:
            g.add_edge(src.name, dst.name, tensor=tensor.name, control=False)
    return g
