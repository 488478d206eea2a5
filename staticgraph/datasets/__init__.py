"""``sg.datasets``: bundled digits, MNIST IDX files, a batch iterator.

SKELETON: owned by the datasets work.
"""
