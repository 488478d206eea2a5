"""``sg.nn`` functional ops (API.md section 3), PyTorch names and NC[D]HW layout.

SKELETON: owned by the nn-functional work.
"""
from ..ops import relu, sigmoid, tanh  # noqa: F401
from ..ops.conv import conv1d, conv2d, conv3d  # noqa: F401
from ..ops.pool import avg_pool1d, avg_pool2d, avg_pool3d, max_pool1d, max_pool2d, max_pool3d  # noqa: F401
from ..ops.losses import cross_entropy, log_softmax, mse_loss, nll_loss, softmax  # noqa: F401


def linear(input, weight, bias=None):
    raise NotImplementedError("linear")
