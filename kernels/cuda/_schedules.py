"""CUDA twin of fastnn.kernels._schedules: ``learning_rate`` is a device function, which
the update kernels evaluate on the device from the schedule (a float64 device array
(code, lr, a, b, c, scale)) and the update count; ``host_learning_rate`` is its
host-callable twin (same signature, evaluated by a one-thread kernel)."""
import numpy as np

from .. import _schedules as schedules
from ._backend import cuda

#: The CPU kernel's own Python source, compiled for the device: one formula for both.
learning_rate = cuda.jit(device=True)(schedules.learning_rate.py_func)


@cuda.jit
def _learning_rate(schedule, t, out):
    if cuda.grid(1) == 0:
        out[0] = learning_rate(schedule, t)


def host_learning_rate(schedule, t):
    """The rate in force for update t, computed on the device (``schedule`` a host or
    device array)."""
    if isinstance(schedule, np.ndarray):
        schedule = cuda.to_device(np.ascontiguousarray(schedule, dtype=np.float64))
    out = cuda.device_array(1, dtype=np.float64)
    _learning_rate[1, 1](schedule, np.int64(t), out)
    return float(out.copy_to_host()[0])
