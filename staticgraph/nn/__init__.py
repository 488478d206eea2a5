"""``sg.nn``: functional ops (``sg.nn.conv2d``...) and PyTorch-style Modules (``sg.nn.Conv2d``...).

SKELETON: owned by the nn-functional/modules work.
"""
from . import functional  # noqa: F401
from .functional import *  # noqa: F401,F403
