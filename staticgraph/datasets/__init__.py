"""``sg.datasets``: bundled digits, MNIST IDX files, a batch iterator (API.md section 9).

- :func:`digits`: scikit-learn's 8×8 handwritten digits (no network).
- :func:`mnist`: MNIST from its standard IDX files, with a verified download.
- :func:`batches`: mini-batches of aligned arrays, optionally shuffled reproducibly.
"""
from .batching import batches  # noqa: F401
from .bundled import digits  # noqa: F401
from .idx import IDXError, read_idx, write_idx  # noqa: F401
from .mnist_files import ChecksumError, DownloadError, download_mnist, mnist  # noqa: F401
