"""Numba parallel regions entered from several Python threads at once: safe under the omp
and tbb threading layers; under workqueue (Numba's fallback where neither OpenMP's libgomp
nor TBB is installed), which aborts the process on concurrent entry, they take turns."""
import contextlib
import threading

import numba

_regions_lock = threading.Lock()


@contextlib.contextmanager
def parallel_regions_in_turn():
    """Inside, this thread's compiled calls may open Numba parallel regions: under the
    workqueue threading layer (not thread-safe) one thread at a time; under omp or tbb
    (thread-safe) no waiting."""
    if _threading_layer() != "workqueue":
        yield
        return
    with _regions_lock:
        yield


def _threading_layer():
    """The threading layer Numba's parallel regions run on (its threads started, once)."""
    global _layer
    if _layer is None:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        _layer = numba.threading_layer()
    return _layer


_layer = None
