"""The optional ``tensorboardX`` dependency, imported when first needed."""
from __future__ import annotations


def tensorboardx():
    """The ``tensorboardX`` module, or an ImportError that says how to install it."""
    try:
        import tensorboardX
    except ImportError:
        raise ImportError("sg.summary writes TensorBoard event files with the optional 'tensorboardX' "
                          "package: pip install \"staticgraph[tensorboard]\" (or pip install tensorboardX)"
                          ) from None
    return tensorboardX
