"""``sg.onnx``: ONNX export and import (API.md section 12).

``sg.onnx.export(sess, outputs, inputs, path)`` writes the forward subgraph the outputs need, with
the session's variable values as initializers; ``sg.onnx.load(path)`` builds an ONNX model into the
default graph as ordinary ops, returning ``(inputs, outputs)``. The op table of both directions is
``staticgraph.onnx.opset``. The ``onnx`` package (``pip install 'staticgraph[onnx]'``) is imported
only when one of them is called, so ``import staticgraph`` works without it.
"""
from .exporter import DEFAULT_OPSET, export  # noqa: F401
from .importer import load  # noqa: F401
from .opset import EXPORTERS, IMPORTERS  # noqa: F401

__all__ = ["export", "load", "DEFAULT_OPSET", "EXPORTERS", "IMPORTERS"]
