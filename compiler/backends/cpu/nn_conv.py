"""CPU kernels of the conv op family (Conv, ConvBackpropInput, ConvBackpropFilter): templates and lowerings.

SKELETON: being written. ``SOURCE`` is appended to the kernel library (library.py);
lowerings register with ``@lowers`` (kernels.py).
"""
SOURCE = ""
