"""CUDA kernel tests run only on the CUDA simulator, in their own process
(tests/test_cuda_simulator.py starts it): NUMBA_ENABLE_CUDASIM must be set before
Numba is imported, which a plain pytest run has already done."""
import os
import sys
import threading

import pytest


def pytest_ignore_collect(collection_path, config):
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0")


@pytest.fixture(autouse=True, scope="session")
def tiny_blocks():
    """Small tiles and blocks, so that the tiny shapes still span several blocks."""
    from fastnn.kernels.cuda import configure

    configure(tile=4, threads=8, block_2d=4)


@pytest.fixture(autouse=True, scope="session")
def quick_thread_switches():
    """The simulator runs one Python thread per CUDA thread, and its block manager polls
    them: with the default 5 ms switch interval every syncthreads() waits for each
    thread's turn. 50 µs halves the time of these tests."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture(autouse=True, scope="session")
def thread_safe_shared_arrays():
    """The simulator's ``cuda.shared.array`` (numba 0.68) looks an allocation up and
    creates it unlocked: two threads of a block that both miss make two arrays, and the
    block no longer shares its tiles (a product then rarely comes out wrong; the short
    switch interval above makes it likelier). The same lookup, under a lock."""
    from numba import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support
    import numpy as np

    original = kernelapi.FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype):
        if shape == 0:                      # dynamic shared memory: no lookup
            return original(self, shape, dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            found = self._allocations.get(caller)
            if found is None:
                if isinstance(dtype, types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                found = self._allocations[caller] = np.empty(shape, dtype)
        return found

    kernelapi.FakeCUDAShared.array = array
    yield
    kernelapi.FakeCUDAShared.array = original


@pytest.fixture(autouse=True, scope="session")
def driver_array_semantics():
    """Where the simulator's device arrays behave unlike a real GPU's, behave like the
    GPU: ``a.T`` / ``a.transpose()`` of a DeviceNDArray launches a transpose kernel into
    a new array (a copy: writes to it never reach ``a``), and ``reshape`` of a
    non-contiguous array raises instead of copying. The simulator's numpy-backed views
    would hide code that writes through such a "view"."""
    import numpy as np
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    transpose, reshape = FakeCUDAArray.transpose, FakeCUDAArray.reshape

    def copying_transpose(self, axes=None):
        return FakeCUDAArray(np.ascontiguousarray(np.transpose(self._ary, axes)))

    def strict_reshape(self, *args, **kwargs):
        shaped = self._ary.reshape(*args, **kwargs)
        if shaped.size and not np.shares_memory(shaped, self._ary):
            raise NotImplementedError("operation requires copying")
        return FakeCUDAArray(shaped)

    FakeCUDAArray.transpose, FakeCUDAArray.reshape = copying_transpose, strict_reshape
    yield
    FakeCUDAArray.transpose, FakeCUDAArray.reshape = transpose, reshape
