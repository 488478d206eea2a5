"""``sg.debugging``: TF1's numerical guards. ``check_numerics(t, message)`` checks one tensor;
``sg.Session(..., check_numerics=True)`` (or ``STATICGRAPH_CHECK_NUMERICS=1``) every floating
tensor of every step (``compiler/numerics.py``)."""
from .ops.debugging import check_numerics  # noqa: F401
