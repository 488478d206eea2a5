"""Datasets that ship with an installed dependency (no network): scikit-learn's digits."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Tuple

import numpy as np


def digits() -> Tuple[np.ndarray, np.ndarray]:
    """The 1,797 8×8 handwritten digits bundled with scikit-learn (``load_digits``).

    Returns ``(images, labels)``: float32 N×1×8×8 with pixels scaled by 1/16
    into [0, 1], and int64 labels 0-9, in scikit-learn's sample order.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError("sg.datasets.digits() needs scikit-learn, which ships the data: "
                          "pip install scikit-learn")
    data = _read_csv(_digits_file(spec))
    if data is not None:
        pixels, labels = data[:, :-1], data[:, -1]
    else:                         # the file moved: take the (slower to import) public loader
        from sklearn.datasets import load_digits
        bunch = load_digits()
        pixels, labels = bunch.data, bunch.target
    images = (pixels.astype(np.float32) / np.float32(16)).reshape(-1, 1, 8, 8)
    return images, labels.astype(np.int64)


def _digits_file(spec) -> Optional[Path]:
    """``sklearn/datasets/data/digits.csv.gz``, found without importing scikit-learn (seconds)."""
    for folder in spec.submodule_search_locations or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _read_csv(path: Optional[Path]) -> Optional[np.ndarray]:
    """The 1797×65 table (64 pixels then the label) as load_digits reads it, or None if unusable."""
    if path is None:
        return None
    try:
        data = np.loadtxt(path, delimiter=",")
    except (OSError, ValueError):
        return None
    return data if data.ndim == 2 and data.shape[1] == 65 else None
