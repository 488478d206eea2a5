"""Backends, each a kernel registry plus a way to run a Schedule. ``get_backend(target)`` picks one.

Every backend implements the executable protocol of ``base.py`` (``Backend``, ``Executable``,
``Tiers``), the only surface ``Plan`` uses.
"""
from __future__ import annotations


def get_backend(target: str):
    """The backend object for a Session target."""
    if target == "reference":
        from .reference import ReferenceBackend
        return ReferenceBackend(target)
    if target == "cpu":
        from .cpu import CpuBackend
        return CpuBackend(target)
    if target == "cuda":
        from .cuda import CudaBackend      # raises at once if numba-cuda, a driver or a device is missing
        return CudaBackend(target)
    raise ValueError(f"unknown Session target {target!r}; choose 'cpu', 'cuda' or 'reference'")
