"""``sg.train``: optimizers that build training steps as graph ops, and checkpoints (``Saver``)."""
from .optimizers import AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer, Optimizer  # noqa: F401
from .saver import Saver  # noqa: F401

__all__ = ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer", "Saver"]
