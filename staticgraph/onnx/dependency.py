"""The one place ``sg.onnx`` imports the ``onnx`` package: lazily, so ``import staticgraph`` works
without it, and with an error that says how to install it."""
from __future__ import annotations

from types import ModuleType


def require_onnx() -> ModuleType:
    """The ``onnx`` package (with ``onnx.helper``, ``onnx.numpy_helper``, ``onnx.checker`` loaded)."""
    try:
        import onnx
        import onnx.checker  # noqa: F401
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError as exc:
        raise ImportError("sg.onnx needs the onnx package: pip install 'staticgraph[onnx]' "
                          "(or pip install onnx onnxruntime)") from exc
    return onnx
