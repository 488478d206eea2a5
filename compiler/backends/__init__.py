"""Backends, each a kernel registry plus a way to run a Schedule. ``get_backend(target)`` picks one."""
from __future__ import annotations


def get_backend(target: str):
    """The backend object for a Session target."""
    from .reference import ReferenceBackend
    if target in ("reference", "cpu"):
        # "cpu" runs on the reference interpreter until the Numba CPU backend lands.
        return ReferenceBackend(target)
    if target == "cuda":
        raise NotImplementedError("the 'cuda' target is not implemented yet; use target='cpu' or 'reference'")
    raise ValueError(f"unknown Session target {target!r}; choose 'cpu', 'cuda' or 'reference'")
