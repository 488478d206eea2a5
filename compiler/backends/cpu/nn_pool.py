"""CPU kernels of the pool op family (MaxPool, MaxPoolGrad, MaxPoolGather, AvgPool, AvgPoolGrad): templates and lowerings.

SKELETON: being written. ``SOURCE`` is appended to the kernel library (library.py);
lowerings register with ``@lowers`` (kernels.py).
"""
SOURCE = ""
