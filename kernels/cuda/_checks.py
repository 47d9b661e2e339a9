"""``check_layout`` for the device: the CPU's check (kernels._checks) on device arrays,
with the device's ``net`` and ``buf`` (from ``to_device``)."""
import numpy as np

from .._checks import ArrayKind, check_arrays
from ._buffers import acc_size


def _is_device_array(a):
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host") and \
        hasattr(a, "is_c_contiguous")


DEVICE = ArrayKind("device array", _is_device_array, lambda a: a.is_c_contiguous(),
                   lambda a: a.copy_to_host())


def check_layout(net, buf, *, batch_size, X=None, T=None, perm=None, upd=None):
    """kernels.check_layout for a loop on the device: the same checks of ``buf``, X, T,
    perm (its indices copied to the host once) and ``upd``, on device arrays; ``net``
    and ``buf`` as ``to_device`` made them (``buf.acc`` of at least ``acc_size(net)``).
    Raises TypeError or ValueError naming the argument."""
    if isinstance(getattr(getattr(net, "seg", None), "bounds", None), np.ndarray):
        raise TypeError("net has its segments on the host: pass the net that "
                        "fastnn.kernels.cuda.to_device returned")
    check_arrays(DEVICE, net, buf, batch_size, X, T, perm, upd, acc_size)
