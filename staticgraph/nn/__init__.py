"""``sg.nn``: functional ops (``sg.nn.conv2d``, ``sg.nn.cross_entropy``...) and PyTorch-style Modules
(``sg.nn.Conv2d``, ``sg.nn.Sequential``...).

``sg.nn.functional`` is importable as a module (``import staticgraph.nn.functional as F``); every
functional name is also exported here. Layers draw their initial weights from a NumPy generator with
a fixed default seed; ``sg.nn.manual_seed(seed)`` reseeds it.
"""
from . import functional, init  # noqa: F401
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_names
from .init import manual_seed
from ..ops.tf_losses import (  # TF1 names, per-sample losses
    sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits,
)
from .module import Module, Parameter
from .containers import ModuleList, Sequential
from .layers import (
    AvgPool1d, AvgPool2d, AvgPool3d, Conv1d, Conv2d, Conv3d, CrossEntropyLoss, Flatten, Identity, Linear,
    LogSoftmax, MaxPool1d, MaxPool2d, MaxPool3d, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax, Tanh,
)

__all__ = list(_functional_names) + [
    "functional", "init", "manual_seed", "Module", "Parameter", "ModuleList", "Sequential",
    "Linear", "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "ReLU", "Tanh", "Sigmoid", "Identity", "Softmax", "LogSoftmax",
    "Flatten", "MSELoss", "CrossEntropyLoss", "NLLLoss",
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
]
