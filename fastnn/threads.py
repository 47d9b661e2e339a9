"""One knob for the threads fastnn uses: Numba's pool and the BLAS pools."""
import numba

from fastnn.layers import check_positive_int


def set_num_threads(n):
    """Use ``n`` threads in Numba kernels and in BLAS (when threadpoolctl is installed)."""
    n = check_positive_int(n, "n")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """Threads of Numba's pool in use."""
    return numba.get_num_threads()
