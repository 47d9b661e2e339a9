"""The one knob for the threads fastnn uses, and the one pool they come from.

A Numba parallel region started right after a threaded BLAS call waits on the BLAS
pool's spinning threads (DESIGN.md, "Thread pools fight": 8 ms instead of 0.5 ms per
step). So the two pools never run together: a network with a parallel plan
(``net.plan.parallel``: its widest layer has kernels._layout.PARALLEL_WEIGHTS weights)
splits its products across Numba's threads, one block per thread, each block one
single-threaded BLAS call (kernels._matmul.matmul_parallel), and ``one_pool(net)``
holds BLAS at one thread while its kernels run, restoring it after. Smaller networks
run serial kernels and BLAS's own threads, as before. ``set_num_threads`` sets both.
"""
import contextlib

import numba
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from fastnn.validation import check_positive_int

_limits = None


def _load_blas():
    """Load the BLAS that Numba's np.dot calls (SciPy's), so that its pool can be set
    before the first kernel runs."""
    import scipy.linalg.cython_blas  # noqa: F401


_blas_pools = None


def _blas_controllers():
    """threadpoolctl's controllers of the BLAS libraries loaded (found once)."""
    global _blas_pools
    if _blas_pools is None:
        _load_blas()
        _blas_pools = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_pools


@contextlib.contextmanager
def one_pool(net):
    """While the kernels of ``net`` (a kernels.Network) run: for a parallel plan, BLAS at
    one thread (its products are split across Numba's threads), restored on exit; for
    a serial plan, nothing. Wrap a custom loop's compiled call of a parallel network in
    it too."""
    if not net.plan.parallel:
        yield
        return
    pools = _blas_controllers()
    before = [pool.get_num_threads() for pool in pools]
    for pool in pools:
        pool.set_num_threads(1)
    try:
        yield
    finally:
        for pool, n in zip(pools, before):
            pool.set_num_threads(n)


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
