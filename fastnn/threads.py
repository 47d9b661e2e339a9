"""The one knob for the threads fastnn uses.

fastnn's own kernels are serial: on the machines measured (DESIGN.md, "Thread pools
fight") a Numba parallel region started right after a BLAS call either waited on the
BLAS pool's spinning threads (8 ms instead of 0.5 ms per step with the OpenMP layer)
or cost more than it saved (an mnist-sized Adam update took 554 µs per step with two
Numba threads against 428 µs with one). The threads are BLAS's: every matrix product
of a step runs on them, and ``set_num_threads`` sets how many.
"""
import numba
from threadpoolctl import threadpool_info, threadpool_limits

from fastnn.validation import check_positive_int

_limits = None


def _load_blas():
    """Load the BLAS that Numba's np.dot calls (SciPy's), so that its pool can be set
    before the first kernel runs."""
    import scipy.linalg.cython_blas  # noqa: F401


def set_num_threads(n):
    """Use ``n`` threads for the matrix products (every BLAS library loaded in the
    process, SciPy's included, which Numba's ``np.dot`` calls) and for Numba."""
    global _limits
    n = check_positive_int(n, "n")
    _load_blas()
    _limits = threadpool_limits(limits=n, user_api="blas")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads():
    """Threads of the BLAS library that fastnn's products run on (SciPy's OpenBLAS)."""
    _load_blas()
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    scipy_pools = [p for p in pools if "scipy" in p.get("filepath", "")]
    return (scipy_pools or pools or [{"num_threads": numba.get_num_threads()}])[0]["num_threads"]
