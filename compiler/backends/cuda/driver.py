"""What ``Session(target="cuda")`` needs, checked at once: numba-cuda, a CUDA driver and a device
(or the CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``, which needs neither).

Nothing here imports ``numba.cuda`` at module level: ``import staticgraph`` never needs CUDA.
"""
from __future__ import annotations

import os
from typing import Optional

INSTALL = 'pip install -e ".[cuda]"'


class CudaUnavailableError(NotImplementedError):
    """``Session(target="cuda")`` on a machine without numba-cuda, a CUDA driver or a device (a
    ``NotImplementedError``, as the target raised before it existed: callers that skip targets
    this machine lacks, ``tests/test_threads.py``, keep working)."""


def simulated() -> bool:
    """The CUDA simulator runs the kernels (``NUMBA_ENABLE_CUDASIM=1``: tests and CI)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def _driver_error() -> Optional[str]:
    """Why no CUDA driver library loads, or None when one does."""
    from numba.cuda.cudadrv import driver
    try:
        driver.find_driver()
    except Exception as exc:  # noqa: BLE001 - numba's CudaSupportError or an OSError: reported, not raised
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def _device_count() -> int:
    from numba import cuda
    try:
        return len(cuda.gpus) if cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a driver that loads but cannot list devices: none usable
        return 0


def missing() -> Optional[str]:
    """What the cuda target lacks on this machine (a sentence), or None when it can run."""
    try:
        import numba.cuda  # noqa: F401
    except ImportError as exc:
        return f"numba-cuda is not installed (import numba.cuda failed: {exc})"
    if simulated():
        return None
    why = _driver_error()
    if why is not None:
        return f"no CUDA driver could be loaded ({why})"
    if _device_count() == 0:
        return "no CUDA device was found (the driver loads, but lists no GPU)"
    return None


def require() -> None:
    """Raise ``CudaUnavailableError`` naming what is missing and how to install it."""
    why = missing()
    if why is not None:
        hint = ("" if why.startswith("numba-cuda") else
                " (set NUMBA_ENABLE_CUDASIM=1 to run the cuda target on the CUDA simulator, slowly)")
        raise CudaUnavailableError(f"Session(target='cuda') cannot run: {why}. Install the CUDA extra with "
                                   f"{INSTALL} on a machine with an NVIDIA GPU and driver{hint}")


def quiet_small_grids() -> None:
    """Switch off numba-cuda's low-occupancy warning (a grid under 128 blocks) unless the user set
    ``NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS``: the backend sizes each grid to its work, and a small
    model's step is many small grids by design (the warning would also cost every launch a check)."""
    if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" in os.environ:
        return
    try:
        from numba.cuda.core import config
    except ImportError:
        return
    config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

