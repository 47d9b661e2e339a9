"""The one module through which fastnn reaches CUDA.

``numba.cuda`` is numba-cuda's implementation when that package is installed
(``pip install -e '.[cuda]'``), numba's built-in (deprecated) one otherwise; both run
the kernels of ``fastnn.kernels.cuda``, which use only the plain ``cuda.jit`` subset,
and both provide the simulator (NUMBA_ENABLE_CUDASIM=1, set before Numba is imported).
Moving to another front end means changing this file only.
"""
import os

from numba import cuda

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def available():
    """True when kernels can run: a CUDA GPU and driver, or the simulator."""
    if SIMULATOR:
        return True
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reports through exceptions
        return False


def require_cuda():
    """Raise a RuntimeError that says how to get CUDA support when it is missing."""
    if not available():
        raise RuntimeError(
            "fastnn: device='cuda' needs a CUDA GPU with its driver and the CUDA extra "
            "(pip install -e '.[cuda]', which installs numba-cuda); without a GPU, set "
            "NUMBA_ENABLE_CUDASIM=1 before importing fastnn to run the kernels on the "
            "CUDA simulator")
    return cuda
