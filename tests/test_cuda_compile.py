"""Every cuda kernel compiles to PTX with Numba's real CUDA compiler (tests/cuda_compile_check.py),
where NVVM and NVRTC are installed (no GPU needed): the simulator runs kernels as Python and
never types them for a device. The test extra installs them (``numba-cuda[cu13]``); skipped with
the reason where they are missing."""
import os
import re
import subprocess
import sys

import pytest

import cuda_helpers  # noqa: F401  (skips the module without numba-cuda)
from helpers import ROOT

PROBE = "from cuda.pathfinder import load_nvidia_dynamic_lib as f; f('nvvm'); f('nvrtc')"


def _env():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_every_kernel_compiles_for_a_real_gpu():
    if subprocess.run([sys.executable, "-c", PROBE], env=_env(), capture_output=True).returncode:
        pytest.skip("NVVM or NVRTC (the CUDA compiler libraries) are not installed")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cuda_compile_check.py")], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    done = re.search(r"compiled (\d+) of (\d+) kernels", proc.stdout)
    assert done and done.group(1) == done.group(2) and int(done.group(1)) > 70, proc.stdout[-2000:]
