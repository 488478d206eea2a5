"""Imports point down the layers (docs/ARCHITECTURE.md): the IR knows no session and no compiler.

Every import of the package sources is read with ``ast``: module-level, function-level,
class-level and ``if TYPE_CHECKING:`` ones alike (a function-level import is still an edge: it
is how ``Tensor.eval`` once reached ``session.py``), relative ones resolved against the
importing module, and ``importlib.import_module("literal")``. An upward edge fails the test,
named by file and line.

Layers, bottom up:

- **IR** (``IR_MODULES``, ``IR_PACKAGES``): the graph and what it is made of. ``graph``,
  ``tensor``, ``opdef``, ``ops/`` (every op family, TF1's losses included), ``variables``; the
  value foundations ``dtypes``, ``shapes``, ``values``, ``errors``; ``default_session``, the
  per-thread stack of default sessions that ``Tensor.eval`` / ``Operation.run`` go through
  (TF1 keeps it in framework/ops.py; ``Session`` registers itself there); and ``viz``, the
  graph's own export (``Graph.to_networkx`` delegates to it), which reads the IR only.
  The IR imports only the IR.
- **compiler/**: autodiff, schedules, passes, plans, backends. It may import the IR, never
  the API.
- **API**: every other module of ``staticgraph`` (``session``, ``gradients``, ``train``,
  ``nn``, ``summary``, ``gradcheck``, ...) and the package facade ``staticgraph/__init__.py``.
  It may import anything.

A module of a package runs the package's ``__init__`` first (Python does that, not the
module): the test checks the edges a module's source writes, so ``from staticgraph import
dtypes`` is an edge to ``staticgraph.dtypes``, and ``from staticgraph import Session`` one to
the facade.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("staticgraph", "compiler")
IR_MODULES = frozenset(f"staticgraph.{m}" for m in (
    "graph", "tensor", "opdef", "variables", "dtypes", "shapes", "values", "errors",
    "default_session", "viz"))
IR_PACKAGES = ("staticgraph.ops",)
# what each layer must not import
FORBIDDEN = {"IR": ("API", "compiler"), "compiler": ("API",)}


def source_modules(root: Path = ROOT) -> Dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layer(module: str) -> Optional[str]:
    """``"IR"``, ``"compiler"`` or ``"API"`` for a module of the packages, else None (outside)."""
    top = module.split(".")[0]
    if top == "compiler":
        return "compiler"
    if top != "staticgraph":
        return None
    if module in IR_MODULES or any(module == p or module.startswith(p + ".") for p in IR_PACKAGES):
        return "IR"
    return "API"


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imports(module: str, source: str, is_package: bool, known) -> Iterator[Tuple[str, int]]:
    """``(imported module, line)`` for every import in ``source``, wherever it stands. ``from X
    import n`` imports ``X.n`` when that is a module of ``known``, else ``X``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def upward_edges(sources: Dict[str, Tuple[Path, str]]) -> List[str]:
    """One line per upward import among ``sources`` (``module -> (path, source text)``)."""
    found = []
    for module, (path, text) in sorted(sources.items()):
        src = layer(module)
        for target, line in imports(module, text, path.name == "__init__.py", sources):
            dst = layer(target)
            if dst in FORBIDDEN.get(src, ()):
                found.append(f"{path}:{line}: {module} ({src}) imports {target} ({dst})")
    return found


def test_no_module_imports_upward():
    sources = {m: (p.relative_to(ROOT), p.read_text(encoding="utf-8")) for m, p in source_modules().items()}
    bad = upward_edges(sources)
    assert not bad, "upward imports (see tests/test_import_direction.py for the layers):\n" + "\n".join(bad)


def test_the_ir_list_names_existing_modules():
    """A renamed or moved IR module must not silently drop out of the check."""
    known = source_modules()
    missing = sorted(m for m in IR_MODULES | set(IR_PACKAGES) if m not in known)
    assert not missing, f"IR modules listed but not found: {missing}"
    assert {"staticgraph.ops.core", "staticgraph.ops.math"} <= {m for m in known if layer(m) == "IR"}


def test_upward_edges_are_found_wherever_they_stand():
    """The walker itself: function-level, class-level, relative and facade imports are edges."""
    graph = '''
from .tensor import Tensor
from . import errors
import numpy as np

def run(op):
    from .session import Session
    return Session

class Op:
    def plan(self):
        import compiler.plan
        from staticgraph import Session
'''
    ops_core = "from ..graph import Graph\nfrom ..gradients import gradients\n"
    plan = "from staticgraph.tensor import Tensor\nfrom staticgraph.session import Session\n"
    known = ["staticgraph", "staticgraph.tensor", "staticgraph.errors", "staticgraph.session",
             "staticgraph.gradients", "compiler", "compiler.plan"]
    sources = {m: (Path(m.replace(".", "/") + ".py"), "") for m in known}
    sources["staticgraph.graph"] = (Path("staticgraph/graph.py"), graph)
    sources["staticgraph.ops.core"] = (Path("staticgraph/ops/core.py"), ops_core)
    sources["compiler.plan"] = (Path("compiler/plan.py"), plan)
    assert upward_edges(sources) == [
        "compiler/plan.py:2: compiler.plan (compiler) imports staticgraph.session (API)",
        "staticgraph/graph.py:7: staticgraph.graph (IR) imports staticgraph.session (API)",
        "staticgraph/graph.py:12: staticgraph.graph (IR) imports compiler.plan (compiler)",
        "staticgraph/graph.py:13: staticgraph.graph (IR) imports staticgraph (API)",
        "staticgraph/ops/core.py:2: staticgraph.ops.core (IR) imports staticgraph.gradients (API)",
    ]
