"""CPU kernels of the softmax op family (Softmax, LogSoftmax, NllLoss, NllLossGrad): templates and lowerings.

SKELETON: being written. ``SOURCE`` is appended to the kernel library (library.py);
lowerings register with ``@lowers`` (kernels.py).
"""
SOURCE = ""
