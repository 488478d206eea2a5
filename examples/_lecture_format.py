"""Print arrays the way the course's PyTorch sessions print tensors (shared by the examples)."""
import numpy as np


def torch_style(a):
    """Format an array the way the lecture's PyTorch session prints it: tensor([2., 4., 8.])."""
    a = np.asarray(a)
    if a.ndim == 0:
        v = float(a)
        return "tensor(%s)" % ("%.0f." % v if v == round(v) else "%.4f" % v)
    flat = a.ravel()
    ints = np.all(flat == np.round(flat))
    items = ["%.0f." % v if ints else "%.4f" % v for v in flat]
    width = max(len(s) for s in items)
    return "tensor([%s])" % ", ".join(s.rjust(width) for s in items)
